import { describe, it, expect } from 'vitest';
import { addEdge, buildGraph, contractGraph, findCycle, graphOfManifest, parentsThrough, reach, topologicalOrder, type DependencyGraph } from '../core/graph/graph.js';

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
    const { order, cycle } = topologicalOrder(g);
    expect(cycle).toBeUndefined();
    expectParentsFirst(g, order!);
    expect(order).toEqual(['a', 'e', 'c', 'b', 'd']);
  });

  it('is deterministic for the same input', () => {
    const edges = { d: ['b', 'c'], c: ['a'], b: ['a'], a: [] };
    expect(topologicalOrder(graphOf(edges))).toEqual(topologicalOrder(graphOf(edges)));
  });

  it('reports a cycle, its members in dependency order, instead of dropping its nodes', () => {
    // x and y are fine; a -> b -> c -> a loops, and d hangs below the loop.
    const result = topologicalOrder(graphOf({ x: [], a: ['c', 'x'], b: ['a'], c: ['b'], d: ['c'], y: ['x'] }));
    expect(result.order).toBeUndefined();
    expect(result.cycle).toEqual(['a', 'c', 'b']);
  });

  it('reports a self-loop', () => {
    expect(topologicalOrder(graphOf({ a: [], b: ['a', 'b'] }))).toEqual({ cycle: ['b'] });
  });
});

describe('reach', () => {
  // a -> b -> c -> d, and a -> e: parents first.
  const g = graphOf({ a: [], b: ['a'], c: ['b'], d: ['c'], e: ['a'] });

  it('walks down or up, nearest first, start included', () => {
    expect([...reach(g, ['a'], 'down')]).toEqual(['a', 'b', 'e', 'c', 'd']);
    expect([...reach(g, ['d'], 'up')]).toEqual(['d', 'c', 'b', 'a']);
    expect([...reach(g, ['c', 'e'], 'up')]).toEqual(['c', 'e', 'b', 'a']);
  });

  it('stops at the depth limit (2+name, name+1)', () => {
    expect([...reach(g, ['d'], 'up', 2)]).toEqual(['d', 'c', 'b']);
    expect([...reach(g, ['a'], 'down', 1)]).toEqual(['a', 'b', 'e']);
    expect([...reach(g, ['a'], 'down', 0)]).toEqual(['a']);
  });

  it('terminates on a cycle and ignores ids outside the graph', () => {
    expect(reach(graphOf({ a: ['b'], b: ['a'] }), ['a'], 'down')).toEqual(new Set(['a', 'b']));
    expect(reach(g, ['nope'], 'down')).toEqual(new Set(['nope']));
  });
});

describe('graphOfManifest', () => {
  const node = (deps: string[]) => ({ depends_on: { nodes: deps } });

  it('reads parent_map and child_map, sources included', () => {
    const g = graphOfManifest({
      nodes: { 'model.p.a': node(['source.p.raw.t']), 'model.p.b': node(['model.p.a']) },
      sources: { 'source.p.raw.t': {} },
      parent_map: { 'model.p.a': ['source.p.raw.t'], 'model.p.b': ['model.p.a'], 'source.p.raw.t': [] },
      child_map: { 'model.p.a': ['model.p.b'], 'model.p.b': [], 'source.p.raw.t': ['model.p.a'] },
    });
    expect([...reach(g, ['source.p.raw.t'], 'down')]).toEqual(['source.p.raw.t', 'model.p.a', 'model.p.b']);
    expect(g.parents.get('model.p.b')).toEqual(['model.p.a']);
  });

  it('falls back to depends_on and derives children when the maps are absent', () => {
    const g = graphOfManifest({ nodes: { a: node([]), b: node(['a']), c: node(['a', 'b']) } });
    expect(Object.fromEntries(g.children)).toEqual({ a: ['b', 'c'], b: ['c'], c: [] });
    expect(topologicalOrder(g)).toEqual({ order: ['a', 'b', 'c'] });
  });
});

describe('parentsThrough', () => {
  it('replaces each accepted parent by its own parents, up any depth; each ancestor once, in depth-first order', () => {
    // m reads e1 (ephemeral, reading e2 (ephemeral) and a) and b; e2 also reads src.
    const g = graphOf({ a: [], b: [], src: [], e2: ['a', 'src'], e1: ['e2', 'a'], m: ['e1', 'b'] });
    const ephemeral = (id: string) => id.startsWith('e');
    expect(parentsThrough(g, 'm', ephemeral)).toEqual(['a', 'src', 'b']);
    expect(parentsThrough(g, 'm', () => false)).toEqual(['e1', 'b']);
    expect(parentsThrough(g, 'a', ephemeral)).toEqual([]);
    expect(parentsThrough(g, 'unknown', ephemeral)).toEqual([]);
  });
});

describe('contractGraph', () => {
  it('keeps the chosen nodes, passing edges through the others it is told to', () => {
    // e is ephemeral between a and c; u is unselected between a and d.
    const g = graphOf({ a: [], e: ['a'], c: ['e'], u: ['a'], d: ['u', 'c'] });
    const small = contractGraph(g, ['a', 'c', 'd'], (id) => id === 'e');
    expect(Object.fromEntries(small.parents)).toEqual({ a: [], c: ['a'], d: ['c'] });
    expect(Object.fromEntries(small.children)).toEqual({ a: ['c'], c: ['d'], d: [] });
    addEdge(small, 'a', 'd');
    expect(small.parents.get('d')).toEqual(['c', 'a']);
    expect(small.children.get('a')).toEqual(['c', 'd']);
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

  it('does not overflow the stack in findCycle, topologicalOrder or reach', () => {
    const g = buildGraph([...ids].reverse(), deps);
    expect(findCycle(g)).toBeUndefined();
    expect(topologicalOrder(g)).toEqual({ order: ids });
    expect(reach(g, [ids[N - 1]!], 'up').size).toBe(N);
  });

  it('finds the cycle closing the whole chain', () => {
    const g = buildGraph([...ids].reverse(), (id) => (id === ids[0] ? [ids[N - 1]!] : deps(id)));
    const cycle = findCycle(g);
    expect(cycle).toHaveLength(N);
    expect(topologicalOrder(g).cycle).toEqual(cycle);
    // Dependency order: each member depends on the next.
    expect(cycle![0]).toBe(ids[N - 1]);
    expect(cycle![1]).toBe(ids[N - 2]);
    expect(cycle![N - 1]).toBe(ids[0]);
  });
});
