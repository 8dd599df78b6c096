// Compile stage 4: every node's SQL. A Renderer holds what rendering needs
// (helpers bound to the resolved relations, partials, the root context) and
// is shared with the tests stage, which renders custom generic tests and
// unit tests' models with it. Incremental models are rendered twice (full
// and incremental); ephemeral ancestors are then inlined as CTEs.

import type { Dialect } from '../../adapters/dialect.js';
import type { Diagnostic } from '../errors.js';
import type { DependencyGraph } from '../graph/graph.js';
import type { Project } from '../project/load.js';
import { builtinHelpers, type HelperScope } from '../templates/helpers.js';
import type { Ast } from '../templates/parse.js';
import { renderTemplate, TemplateRenderError, type HelperFn } from '../templates/render.js';
import { ephemeralCteName, injectCtes } from './ephemeral.js';
import type { ProjectMacros } from './macros.js';
import { sourceId, type ManifestNode } from './manifest.js';
import type { PendingNode, ProjectNodes } from './nodes.js';

export interface Renderer {
  /** Built-in helpers (bound to the project's relations) and the project's own. */
  helpers: Map<string, HelperFn>;
  scope: HelperScope;
  partials: Map<string, Ast>;
  partialFiles: Map<string, string>;
  /** The `target` template variable. */
  target: { name: string; type: string; schema: string; threads: number };
  /** The root template context of a node (is_incremental false). */
  rootContext(node: ManifestNode): Record<string, unknown>;
}

/** {{ref "orders" version=12}} / timestamp="...": an older version of a table, where the target keeps versions. */
function timeTravelRelation(dialect: Dialect, n: ManifestNode, at: { version?: unknown; timestamp?: unknown }): string {
  if (!dialect.versionedRelation) {
    throw Object.assign(new Error(`{{ref "${n.name}" ${'version' in at ? 'version=' : 'timestamp='}...}} reads an older version of a table, which a ${dialect.name} target does not keep`), { hint: 'time travel needs a delta target' });
  }
  if (n.config.materialized === 'ephemeral') throw Object.assign(new Error(`{{ref "${n.name}" ...}}: an ephemeral model has no older versions`), { hint: 'ref it without version= or timestamp=' });
  if (at.version !== undefined && !(Number.isInteger(Number(at.version)) && Number(at.version) >= 0)) throw Object.assign(new Error(`version=${String(at.version)} is not a version number`), { hint: 'e.g. {{ref "orders" version=12}}' });
  if (at.timestamp !== undefined && Number.isNaN(new Date(String(at.timestamp)).getTime())) throw Object.assign(new Error(`timestamp="${String(at.timestamp)}" is not a timestamp`), { hint: 'e.g. {{ref "orders" timestamp="2024-06-01T00:00:00Z"}}' });
  return dialect.versionedRelation(n.schema, n.alias, at.version !== undefined ? { version: Number(at.version) } : { timestamp: new Date(String(at.timestamp)).toISOString() });
}

export function createRenderer(project: Project, dialect: Dialect, macros: ProjectMacros, nodes: ProjectNodes, env: NodeJS.ProcessEnv, envRead: Set<string>): Renderer {
  const scope: HelperScope = {
    resolveRef: (name, at) => {
      const n = nodes.byName.get(name)!.node;
      if (at) return timeTravelRelation(dialect, n, at);
      return n.config.materialized === 'ephemeral' ? dialect.quoteIdentifier(ephemeralCteName(n.name)) : n.relation_name!;
    },
    resolveSource: (source, table) => nodes.sources[sourceId(project.name, source, table)]!.relation_name,
    vars: project.vars,
    env,
    onEnvRead: (n) => envRead.add(n),
  };
  const helpers = new Map<string, HelperFn>();
  for (const [name, fn] of builtinHelpers(scope)) helpers.set(name, fn);
  for (const [name, h] of macros.helpers) if (!helpers.has(name)) helpers.set(name, h.fn);
  const target = { name: project.targetName, type: project.target.type, schema: project.target.schema, threads: project.target.threads };
  return {
    helpers,
    scope,
    partials: new Map([...macros.partials].map(([k, v]) => [k, v.ast])),
    partialFiles: new Map([...macros.partials].map(([k, v]) => [k, v.path])),
    target,
    rootContext: (node) => ({
      is_incremental: false,
      target,
      model: { name: node.name, schema: node.schema, alias: node.alias, unique_id: node.unique_id, config: node.config },
      // Microbatch runs substitute these per batch; see the incremental strategies.
      batch_start: '__ETL_BATCH_START__',
      batch_end: '__ETL_BATCH_END__',
    }),
  };
}

/** Sets compiled_code (and compiled_incremental_code) of every templated node. */
export function renderNodes(nodes: ProjectNodes, graph: DependencyGraph, renderer: Renderer, dialect: Dialect, errors: Diagnostic[]): void {
  const rendered = new Map<string, { full: string; incremental?: string }>();
  let failed = false;
  for (const p of nodes.pending.values()) {
    if (!p.ast) continue;
    const node = p.node;
    const renderOnce = (isIncremental: boolean) =>
      renderTemplate(
        p.ast!,
        { ...renderer.rootContext(node), is_incremental: isIncremental },
        { file: p.file.path, helpers: renderer.helpers, partials: renderer.partials, partialFiles: renderer.partialFiles, thisRelation: node.relation_name ?? dialect.quoteIdentifier(ephemeralCteName(node.name)) },
      );
    try {
      const full = renderOnce(false);
      const incremental = node.config.materialized === 'incremental' ? renderOnce(true) : undefined;
      rendered.set(node.unique_id, { full, incremental });
    } catch (err) {
      if (err instanceof TemplateRenderError) {
        failed = true;
        errors.push({ file: err.file, line: err.line, col: err.col, message: err.message, hint: err.hint });
      } else throw err;
    }
  }
  // A node that failed to render has no SQL to inline.
  if (!failed) inlineEphemerals(nodes.pending, graph, rendered, dialect);
}

/** Prepends each node's ephemeral ancestors as CTEs, in dependency order. */
function inlineEphemerals(pending: ReadonlyMap<string, PendingNode>, graph: DependencyGraph, rendered: Map<string, { full: string; incremental?: string }>, dialect: Dialect): void {
  const ephemeralChain = (id: string, out: string[], seen: Set<string>) => {
    for (const parent of graph.parents.get(id) ?? []) {
      const pn = pending.get(parent);
      if (!pn || pn.node.config.materialized !== 'ephemeral' || seen.has(parent)) continue;
      seen.add(parent);
      ephemeralChain(parent, out, seen);
      out.push(parent);
    }
    return out;
  };
  for (const p of pending.values()) {
    const r = rendered.get(p.node.unique_id);
    if (!r) continue;
    const chain = ephemeralChain(p.node.unique_id, [], new Set());
    const ctes = chain.map((id) => ({ name: dialect.quoteIdentifier(ephemeralCteName(pending.get(id)!.node.name)), sql: rendered.get(id)!.full }));
    p.node.compiled_code = injectCtes(r.full, ctes);
    if (r.incremental !== undefined) p.node.compiled_incremental_code = injectCtes(r.incremental, ctes);
  }
}
