// Compile stage 6: the manifest, a plain object in dbt's shape (see
// manifest.ts), from the compiled nodes, tests and sources. parent_map and
// child_map are the dependency graph of all of them.

import { randomUUID } from 'node:crypto';
import { buildGraph } from '../graph/graph.js';
import type { Project } from '../project/load.js';
import { macroEntry, type Manifest, type ManifestNode } from './manifest.js';
import type { ProjectNodes } from './nodes.js';
import { ETL_VERSION } from './version.js';
import { targetDatabase } from '../../adapters/index.js';

export function assembleManifest(project: Project, projectNodes: ProjectNodes, testNodes: ManifestNode[]): Manifest {
  const { sources, disabled } = projectNodes;
  const nodes: Record<string, ManifestNode> = {};
  for (const p of projectNodes.pending.values()) nodes[p.node.unique_id] = p.node;
  for (const t of testNodes) nodes[t.unique_id] = t;
  for (const l of Object.values(projectNodes.loaders)) nodes[l.unique_id] = l;
  // A node that reads a loaded source (a model, a snapshot, a test on it) waits for its loader.
  if (Object.keys(projectNodes.loaders).length) {
    for (const node of Object.values(nodes)) {
      for (const dep of node.depends_on.nodes) {
        const loader = sources[dep]?.loaded_by;
        if (loader && !node.depends_on.nodes.includes(loader)) node.depends_on.nodes.push(loader);
      }
    }
  }
  const graph = buildGraph([...Object.keys(nodes), ...Object.keys(sources)], (id) => nodes[id]?.depends_on.nodes ?? []);
  return {
    metadata: {
      dbt_schema_version: 'https://schemas.getdbt.com/dbt/manifest/v12.json',
      etl_version: ETL_VERSION,
      generated_at: new Date().toISOString(),
      invocation_id: randomUUID(),
      project_name: project.name,
      project_root: project.root,
      target_name: project.targetName,
      adapter_type: project.target.type,
      target_schema: project.target.schema,
      database: targetDatabase(project.target),
      fingerprint: project.fingerprint,
    },
    nodes,
    sources,
    macros: Object.fromEntries(
      [...project.partials.map((p) => macroEntry(project.name, p.name, p.path, p.text)), ...project.genericTests.map((t) => macroEntry(project.name, `test_${t.name}`, t.path, t.text))].map((m) => [m.unique_id, m]),
    ),
    parent_map: Object.fromEntries(graph.parents),
    child_map: Object.fromEntries(graph.children),
    exposures: {},
    metrics: {},
    groups: {},
    selectors: {},
    disabled,
    docs: {},
  };
}
