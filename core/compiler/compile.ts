// The compiler: Project in, Manifest out, touching no database. A pipeline of
// stages, each a function with a typed hand-off, collecting every error with
// file:line before it stops (a stage whose input is broken is not run):
//   1. macros.ts     partials, custom generic tests, helper modules
//   2. nodes.ts      one node per file: template parsed, config read and validated
//   3. resolve.ts    refs, sources, helpers, partials -> depends_on; graph; cycles
//   4. render.ts     every node's SQL, ephemeral ancestors inlined as CTEs
//   5. test-nodes.ts generic, custom, unit and singular tests
//   6. assemble.ts   the manifest, with parent_map and child_map

import { dialectFor } from '../../adapters/dialect.js';
import { Diagnostics } from '../errors.js';
import type { Project } from '../project/load.js';
import { assembleManifest } from './assemble.js';
import { loadMacros } from './macros.js';
import type { Manifest, ManifestNode, ManifestSource } from './manifest.js';
import { parseNodes } from './nodes.js';
import { createRenderer, renderNodes } from './render.js';
import { resolveDependencies } from './resolve.js';
import { compileTestNodes } from './test-nodes.js';


/** What a command may start on while the compile goes on (`etl docs generate` starts its docs worker). */
export interface CompileHooks {
  /**
   * Every node's SQL is rendered (ephemeral ancestors inlined): called before
   * the tests stage, with the nodes that are not tests (models, seeds,
   * snapshots, loaders) and the sources. Later stages may still add to a
   * node's depends_on (a quarantined model's test inputs, a source's loader).
   */
  rendered?(nodes: ManifestNode[], sources: Record<string, ManifestSource>): void;
}

export interface CompileOutput {
  manifest: Manifest;
  /** Environment variables read by templates, for the compile cache key. */
  envRead: string[];
}

/** Compiles a loaded project into a manifest; throws ProjectError with every problem found. */
export async function compileProject(project: Project, env: NodeJS.ProcessEnv = process.env, hooks: CompileHooks = {}): Promise<CompileOutput> {
  const diagnostics = new Diagnostics();
  const errors = diagnostics.list;
  const dialect = dialectFor(project.target.type);
  const envRead = new Set<string>();

  const macros = await loadMacros(project, errors);
  const nodes = parseNodes(project, dialect, { vars: project.vars, env, onEnvRead: (n) => envRead.add(n) }, errors);
  const graph = resolveDependencies(project, macros, nodes, errors);
  diagnostics.throwIfAny();

  const renderer = createRenderer(project, dialect, macros, nodes, env, envRead);
  renderNodes(nodes, graph, renderer, dialect, errors);
  diagnostics.throwIfAny();
  if (hooks.rendered) {
    const rendered = [...nodes.pending.values()].filter((p) => p.node.resource_type !== 'test').map((p) => p.node);
    hooks.rendered([...rendered, ...Object.values(nodes.loaders)], nodes.sources);
  }

  const testNodes = compileTestNodes(project, dialect, macros, nodes, renderer, errors);
  diagnostics.throwIfAny();

  return { manifest: assembleManifest(project, nodes, testNodes), envRead: [...envRead].sort() };
}
