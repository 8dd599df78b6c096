import { describe, it, expect } from 'vitest';
import { buildGraph, findCycle, topologicalOrder, type DependencyGraph } from '../core/graph/graph.js';

function graphOf(edges: Record<string, string[]>): DependencyGraph {
  return buildGraph(Object.keys(edges), (id) => edges[id] ?? []);
}

/** Every node comes after all of its parents. */
function expectParentsFirst(graph: DependencyGraph, order: string[]): void {
  const pos = new Map(order.map((id, i) => [id, i]));
  expect(order).toHaveLength(graph.parents.size);
  expect(new Set(order).size).toBe(order.length);
  for (const [id, ps] of graph.parents) for (const p of ps) expect(pos.get(p)!).toBeLessThan(pos.get(id)!);
}

describe('buildGraph', () => {
  it('builds parents and children, dropping unknown ids and duplicate edges', () => {
    const g = graphOf({ a: [], b: ['a', 'a', 'source.x'], c: ['a', 'b'] });
    expect(Object.fromEntries(g.parents)).toEqual({ a: [], b: ['a'], c: ['a', 'b'] });
    expect(Object.fromEntries(g.children)).toEqual({ a: ['b', 'c'], b: ['c'], c: [] });
  });
});

describe('findCycle', () => {
  it('returns undefined for a DAG', () => {
    expect(findCycle(graphOf({ a: [], b: ['a'], c: ['a', 'b'], d: ['c', 'b'] }))).toBeUndefined();
    expect(findCycle(graphOf({}))).toBeUndefined();
  });

  it('returns the members of a 3-cycle in dependency order', () => {
    // a depends on b, b on c, c on a; x hangs off the cycle and is not part of it.
    const cycle = findCycle(graphOf({ x: ['a'], a: ['b'], b: ['c'], c: ['a'] }));
    expect(cycle).toBeDefined();
    expect(cycle).toHaveLength(3);
    // Whatever member it starts at, each depends on the next and the last on the first.
    const edges: Record<string, string> = { a: 'b', b: 'c', c: 'a' };
    for (let i = 0; i < cycle!.length; i++) expect(edges[cycle![i]!]).toBe(cycle![(i + 1) % cycle!.length]);
    expect(cycle).toEqual(['a', 'b', 'c']);
  });

  it('finds a self-loop and a 2-cycle', () => {
    expect(findCycle(graphOf({ a: ['a'] }))).toEqual(['a']);
    expect(findCycle(graphOf({ a: [], b: ['c'], c: ['b'] }))).toEqual(['b', 'c']);
  });

  it('finds a cycle reachable only through a long acyclic path', () => {
    const edges: Record<string, string[]> = {};
    for (let i = 0; i < 50; i++) edges[`n${i}`] = [`n${i + 1}`];
    edges.n50 = ['m0'];
    edges.m0 = ['m1'];
    edges.m1 = ['m0'];
    expect(findCycle(graphOf(edges))).toEqual(['m0', 'm1']);
  });
});

describe('topologicalOrder', () => {
  it('puts parents before children', () => {
    const g = graphOf({ d: ['b', 'c'], c: ['a'], b: ['a'], a: [], e: [] });
    const order = topologicalOrder(g);
    expectParentsFirst(g, order);
    expect(order[order.length - 1]).toBe('d');
  });

  it('is deterministic for the same input', () => {
    const edges = { d: ['b', 'c'], c: ['a'], b: ['a'], a: [] };
    expect(topologicalOrder(graphOf(edges))).toEqual(topologicalOrder(graphOf(edges)));
  });
});

describe('a 20,000-node chain', () => {
  const N = 20_000;
  const ids = Array.from({ length: N }, (_, i) => `model.p.m${i}`);
  // m0 <- m1 <- ... : each depends on the previous one. Listed children-first to make the DFS go deep.
  const deps = (id: string) => {
    const i = Number(id.slice('model.p.m'.length));
    return i === 0 ? [] : [`model.p.m${i - 1}`];
  };

  it('does not overflow the stack in findCycle or topologicalOrder', () => {
    const g = buildGraph([...ids].reverse(), deps);
    expect(findCycle(g)).toBeUndefined();
    const order = topologicalOrder(g);
    expect(order).toEqual(ids);
  });

  it('finds the cycle closing the whole chain', () => {
    const g = buildGraph([...ids].reverse(), (id) => (id === ids[0] ? [ids[N - 1]!] : deps(id)));
    const cycle = findCycle(g);
    expect(cycle).toHaveLength(N);
    // Dependency order: each member depends on the next.
    expect(cycle![0]).toBe(ids[N - 1]);
    expect(cycle![1]).toBe(ids[N - 2]);
    expect(cycle![N - 1]).toBe(ids[0]);
  });
});
