// A plan: the selected nodes that will run, and which of them wait for which.
// Edges pass through ephemeral models (never run themselves) and stop at
// unselected nodes, which are assumed built already. The graph work itself
// (contracting, order, reach) is core/graph/graph.ts's.

import type { Manifest, ResourceType } from '../compiler/manifest.js';
import { ProjectError } from '../errors.js';
import { addEdge, contractGraph, graphOfManifest, reach, topologicalOrder, type MutableGraph } from '../graph/graph.js';

export interface Plan extends MutableGraph {
  /** Node ids in a topological order. */
  ids: string[];
}

/** Plans the selected nodes of the given resource types; throws ProjectError naming a dependency cycle's members in order. */
export function planRun(manifest: Manifest, selected: ReadonlySet<string>, resourceTypes: ReadonlySet<ResourceType>): Plan {
  const runnable = (id: string) => {
    const node = manifest.nodes[id];
    return !!node && selected.has(id) && resourceTypes.has(node.resource_type) && node.config.materialized !== 'ephemeral';
  };
  const ids = Object.keys(manifest.nodes).filter(runnable);
  const inPlan = new Set(ids);
  const full = graphOfManifest(manifest);
  const graph = contractGraph(full, ids, (id) => manifest.nodes[id]?.config.materialized === 'ephemeral');
  // A test blocks only its model's children (not every descendant, which is
  // what makes dbt slow on large projects): each child waits for the tests
  // attached to its parent, and a failing test skips them through that edge.
  for (const id of ids) {
    const test = manifest.nodes[id]!;
    if (test.resource_type !== 'test' || !test.attached_node) continue;
    const testParents = graph.parents.get(id)!;
    const guard = testParents.length > 1 ? reach(graph, testParents.filter((p) => p !== test.attached_node), 'up') : undefined;
    for (const child of full.children.get(test.attached_node) ?? []) {
      if (!inPlan.has(child) || manifest.nodes[child]!.resource_type === 'test' || child === id) continue;
      // A test that also reads another model must not wait on that model's own ancestors' children.
      if (guard?.has(child)) continue;
      addEdge(graph, id, child);
    }
  }
  const sorted = topologicalOrder(graph);
  if (sorted.cycle) {
    const names = sorted.cycle.map((id) => manifest.nodes[id]?.name ?? id);
    throw new ProjectError([
      {
        message: `cannot plan the run: dependency cycle ${[...names, names[0]].join(' -> ')} (${sorted.cycle.join(', ')})`,
        hint: 'each node in the cycle waits for the next; the compiler refuses such refs, so the manifest was edited or is stale: run etl compile --no-cache',
      },
    ]);
  }
  return { ids: sorted.order, ...graph };
}

/** Every node reachable downstream of `id` inside the plan, nearest first. */
export function descendantsInPlan(plan: Plan, id: string): string[] {
  const out = reach(plan, [id], 'down');
  out.delete(id);
  return [...out];
}
