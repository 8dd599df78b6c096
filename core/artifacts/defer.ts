// --defer / --favor-state (dbt's slim CI): a selected node that reads a model,
// seed or snapshot that is not selected reads that node's relation as
// recorded in the --state manifest (production, say) instead of its own
// target's, when its own target does not have it (--defer), or always
// (--favor-state). Only the SQL of this run changes: the manifest, the
// compile cache and target/compiled keep the project's own relations.
//
// Refs are rendered at compile time as quoted relation names, so deferring
// replaces the quoted name of each deferred upstream in the SQL of the
// selected nodes (ephemeral upstreams are inlined, so their own upstreams
// count too). A quoted two-part name cannot be part of another identifier.

import type { Manifest, ManifestNode } from '../compiler/manifest.js';
import { graphOfManifest, parentsThrough, type DependencyGraph } from '../graph/graph.js';

export interface DeferOptions {
  /** The --state manifest. */
  state: Manifest;
  /** dbt's --favor-state: use the state's relation even when this target has one. */
  favorState: boolean;
  /** Whether this target has the relation (table or view) of an upstream. */
  exists(node: ManifestNode): Promise<boolean>;
}

export interface Deferral {
  /** The manifest the run executes: selected nodes' SQL reading the deferred relations. */
  manifest: Manifest;
  /** upstream unique_id -> the state relation read instead of its own. */
  deferred: Map<string, string>;
}

const DEFERRABLE = new Set(['model', 'seed', 'snapshot']);

/** Upstream nodes (not sources) of `node` whose relation its SQL names: parents, and parents of ephemeral parents. */
function relationParents(manifest: Manifest, graph: DependencyGraph, node: ManifestNode): string[] {
  return parentsThrough(graph, node.unique_id, (id) => manifest.nodes[id]?.config.materialized === 'ephemeral').filter((id) => manifest.nodes[id]);
}

/** The run's manifest with refs to unselected upstreams pointed at the state's relations. */
export async function deferToState(manifest: Manifest, selected: Iterable<string>, options: DeferOptions): Promise<Deferral> {
  const planned = new Set(selected);
  const graph = graphOfManifest(manifest);
  const candidates = new Set<string>();
  for (const id of planned) {
    const node = manifest.nodes[id];
    if (!node) continue;
    for (const p of relationParents(manifest, graph, node)) if (!planned.has(p)) candidates.add(p);
  }
  const deferred = new Map<string, string>();
  for (const id of candidates) {
    const own = manifest.nodes[id]!;
    const theirs = options.state.nodes[id];
    if (!DEFERRABLE.has(own.resource_type) || !own.relation_name || !theirs?.relation_name || theirs.relation_name === own.relation_name) continue;
    if (!options.favorState && (await options.exists(own))) continue;
    deferred.set(id, theirs.relation_name);
  }
  if (!deferred.size) return { manifest, deferred };
  const nodes = { ...manifest.nodes };
  for (const id of planned) {
    const node = nodes[id];
    if (!node) continue;
    const reads = [...relationParents(manifest, graph, node)].filter((p) => deferred.has(p));
    if (!reads.length) continue;
    const swap = (sql: string) => reads.reduce((s, p) => s.split(manifest.nodes[p]!.relation_name!).join(deferred.get(p)!), sql);
    nodes[id] = {
      ...node,
      compiled_code: swap(node.compiled_code),
      ...(node.compiled_incremental_code !== undefined ? { compiled_incremental_code: swap(node.compiled_incremental_code) } : {}),
    };
  }
  return { manifest: { ...manifest, nodes }, deferred };
}
