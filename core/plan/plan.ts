// A plan: the selected nodes that will run, and which of them wait for which.
// Edges pass through ephemeral models (never run themselves) and stop at
// unselected nodes, which are assumed built already.

import type { Manifest, ResourceType } from '../compiler/manifest.js';

export interface Plan {
  /** Node ids in a topological order. */
  ids: string[];
  parents: Map<string, string[]>;
  children: Map<string, string[]>;
}

export function planRun(manifest: Manifest, selected: ReadonlySet<string>, resourceTypes: ReadonlySet<ResourceType>): Plan {
  const runnable = (id: string) => {
    const node = manifest.nodes[id];
    return !!node && selected.has(id) && resourceTypes.has(node.resource_type) && node.config.materialized !== 'ephemeral';
  };
  const ids = Object.keys(manifest.nodes).filter(runnable);
  const inPlan = new Set(ids);
  const parents = new Map<string, string[]>();
  const children = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const id of ids) {
    const found = new Set<string>();
    const stack = [...(manifest.parent_map[id] ?? [])];
    const seen = new Set<string>();
    while (stack.length) {
      const p = stack.pop()!;
      if (seen.has(p)) continue;
      seen.add(p);
      if (inPlan.has(p)) found.add(p);
      else if (manifest.nodes[p]?.config.materialized === 'ephemeral') stack.push(...(manifest.parent_map[p] ?? []));
    }
    parents.set(id, [...found]);
    for (const p of found) children.get(p)!.push(id);
  }
  // A test blocks only its model's children (not every descendant, which is
  // what makes dbt slow on large projects): each child waits for the tests
  // attached to its parent, and a failing test skips them through that edge.
  for (const id of ids) {
    const test = manifest.nodes[id]!;
    if (test.resource_type !== 'test' || !test.attached_node) continue;
    const testParents = parents.get(id)!;
    const guard = testParents.length > 1 ? ancestorsOf(testParents.filter((p) => p !== test.attached_node), parents) : undefined;
    for (const child of manifest.child_map[test.attached_node] ?? []) {
      if (!inPlan.has(child) || manifest.nodes[child]!.resource_type === 'test' || child === id) continue;
      // A test that also reads another model must not wait on that model's own ancestors' children.
      if (guard?.has(child)) continue;
      parents.get(child)!.push(id);
      children.get(id)!.push(child);
    }
  }
  // Kahn's order keeps the output stable and readable.
  const pending = new Map(ids.map((id) => [id, parents.get(id)!.length]));
  const order = ids.filter((id) => pending.get(id) === 0);
  for (let i = 0; i < order.length; i++) {
    for (const c of children.get(order[i]!)!) {
      const left = pending.get(c)! - 1;
      pending.set(c, left);
      if (left === 0) order.push(c);
    }
  }
  return { ids: order, parents, children };
}

/** Every node reachable downstream of `id` inside the plan. */
export function descendantsInPlan(plan: Plan, id: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>([id]);
  const stack = [...(plan.children.get(id) ?? [])];
  while (stack.length) {
    const c = stack.pop()!;
    if (seen.has(c)) continue;
    seen.add(c);
    out.push(c);
    stack.push(...(plan.children.get(c) ?? []));
  }
  return out;
}

function ancestorsOf(start: string[], parents: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const stack = [...start];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(parents.get(id) ?? []));
  }
  return seen;
}
