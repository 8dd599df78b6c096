// The dependency graph: the one home of parents/children, topological order,
// cycles and reach. The compiler builds it from each node's depends_on (and
// writes it out as the manifest's parent_map/child_map), selection reads it
// back from a manifest, and planning contracts it to the nodes that run.
// It knows ids and edges only, nothing of what a node is.
// O(V+E) everywhere and iterative: projects have 10,000+ nodes and chains
// deep enough to overflow a recursive walk.

export interface DependencyGraph {
  /** id -> the ids it depends on. Every node of the graph is a key. */
  parents: ReadonlyMap<string, readonly string[]>;
  /** id -> the ids that depend on it. */
  children: ReadonlyMap<string, readonly string[]>;
}

/** A graph built here (not read from a manifest), to which edges can be added. */
export interface MutableGraph extends DependencyGraph {
  parents: Map<string, string[]>;
  children: Map<string, string[]>;
}

/** A graph over `ids`; edges to ids outside it, and repeated edges, are dropped. */
export function buildGraph(ids: Iterable<string>, dependsOn: (id: string) => readonly string[]): MutableGraph {
  const parents = new Map<string, string[]>();
  const children = new Map<string, string[]>();
  for (const id of ids) {
    parents.set(id, []);
    children.set(id, []);
  }
  for (const id of parents.keys()) {
    const ps = parents.get(id)!;
    for (const p of dependsOn(id)) {
      if (!parents.has(p) || ps.includes(p)) continue;
      ps.push(p);
      children.get(p)!.push(id);
    }
  }
  return { parents, children };
}

/** The parts of a manifest the graph is read from (a structural type: the graph does not know the compiler). */
export interface ManifestEdges {
  nodes: Record<string, { depends_on: { nodes: string[] } }>;
  sources?: Record<string, unknown>;
  parent_map?: Record<string, string[]>;
  child_map?: Record<string, string[]>;
}

/**
 * The graph a manifest describes, sources included: its parent_map and
 * child_map as written (a node missing from parent_map falls back to its
 * depends_on, and children missing from child_map are derived from parents).
 * Read on demand, not copied: selecting and planning look up a few ids of
 * graphs of 40,000 nodes. The lists are the manifest's own arrays.
 */
export function graphOfManifest(manifest: ManifestEdges): DependencyGraph {
  const { nodes } = manifest;
  const sources = manifest.sources ?? {};
  const parentMap = manifest.parent_map ?? {};
  const childMap = manifest.child_map ?? {};
  const known = (id: string) => Object.hasOwn(nodes, id) || Object.hasOwn(sources, id) || Object.hasOwn(parentMap, id) || Object.hasOwn(childMap, id);
  const ids = () => new Set([...Object.keys(nodes), ...Object.keys(sources), ...Object.keys(parentMap), ...Object.keys(childMap)]);
  const parentsOf = (id: string): readonly string[] | undefined =>
    (Object.hasOwn(parentMap, id) ? parentMap[id] : undefined) ?? (Object.hasOwn(nodes, id) ? nodes[id]!.depends_on.nodes : undefined) ?? (known(id) ? [] : undefined);
  let derived: Map<string, string[]> | undefined;
  const derivedChildren = (): Map<string, string[]> => {
    if (derived) return derived;
    derived = new Map();
    for (const id of ids()) {
      for (const p of parentsOf(id) ?? []) {
        let list = derived.get(p);
        if (!list) derived.set(p, (list = []));
        list.push(id);
      }
    }
    return derived;
  };
  const childrenOf = (id: string): readonly string[] | undefined =>
    (Object.hasOwn(childMap, id) ? childMap[id] : undefined) ?? derivedChildren().get(id) ?? (known(id) ? [] : undefined);
  return { parents: new LookupMap(parentsOf, ids), children: new LookupMap(childrenOf, ids) };
}

/** A read-only Map computed on demand: get() looks one id up; iterating lists every id (once, then kept). */
class LookupMap implements ReadonlyMap<string, readonly string[]> {
  private listing?: Map<string, readonly string[]>;
  constructor(
    private readonly lookup: (id: string) => readonly string[] | undefined,
    private readonly ids: () => Iterable<string>,
  ) {}
  get(id: string): readonly string[] | undefined {
    return this.lookup(id);
  }
  has(id: string): boolean {
    return this.lookup(id) !== undefined;
  }
  get size(): number {
    return this.listed().size;
  }
  entries() {
    return this.listed().entries();
  }
  keys() {
    return this.listed().keys();
  }
  values() {
    return this.listed().values();
  }
  forEach(fn: (value: readonly string[], key: string, map: ReadonlyMap<string, readonly string[]>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.listed()) fn.call(thisArg, value, key, this);
  }
  [Symbol.iterator]() {
    return this.listed().entries();
  }
  private listed(): Map<string, readonly string[]> {
    if (!this.listing) {
      this.listing = new Map();
      for (const id of this.ids()) this.listing.set(id, this.lookup(id) ?? []);
    }
    return this.listing;
  }
}

/**
 * A cycle in the graph as the list of its members in dependency order
 * (each depends on the next, and the last on the first), or undefined.
 */
export function findCycle(graph: DependencyGraph): string[] | undefined {
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const colour = new Map<string, number>();
  for (const id of graph.parents.keys()) colour.set(id, WHITE);
  for (const start of graph.parents.keys()) {
    if (colour.get(start) !== WHITE) continue;
    const stack: Array<{ id: string; next: number }> = [{ id: start, next: 0 }];
    const onPath: string[] = [start];
    colour.set(start, GREY);
    while (stack.length) {
      const frame = stack[stack.length - 1]!;
      const ps = graph.parents.get(frame.id) ?? [];
      if (frame.next < ps.length) {
        const p = ps[frame.next++]!;
        const c = colour.get(p);
        if (c === GREY) return onPath.slice(onPath.indexOf(p));
        if (c === WHITE) {
          colour.set(p, GREY);
          stack.push({ id: p, next: 0 });
          onPath.push(p);
        }
      } else {
        colour.set(frame.id, BLACK);
        stack.pop();
        onPath.pop();
      }
    }
  }
  return undefined;
}

/** Every node in an order where parents come first; or, when there is none, a cycle (see findCycle). */
export type TopologicalOrder = { order: string[]; cycle?: undefined } | { order?: undefined; cycle: string[] };

/**
 * Kahn's algorithm, stable: nodes without parents in the graph's key order,
 * then each node's children in the order they are listed. A graph with a
 * cycle has no such order; its nodes are never silently dropped: the cycle
 * is returned instead.
 */
export function topologicalOrder(graph: DependencyGraph): TopologicalOrder {
  const pending = new Map<string, number>();
  const order: string[] = [];
  for (const [id, ps] of graph.parents) {
    pending.set(id, ps.length);
    if (ps.length === 0) order.push(id);
  }
  for (let i = 0; i < order.length; i++) {
    for (const c of graph.children.get(order[i]!) ?? []) {
      const left = pending.get(c)! - 1;
      pending.set(c, left);
      if (left === 0) order.push(c);
    }
  }
  if (order.length === graph.parents.size) return { order };
  return { cycle: findCycle(graph)! };
}

/**
 * The start ids plus every id reachable from them within maxDepth steps
 * (`up` follows parents, `down` children), breadth first: one multi-source
 * walk, nearest first, each id once.
 */
export function reach(graph: DependencyGraph, start: Iterable<string>, direction: 'up' | 'down', maxDepth = Infinity): Set<string> {
  const edges = direction === 'up' ? graph.parents : graph.children;
  const seen = new Set(start);
  let frontier = [...seen];
  for (let depth = 0; frontier.length > 0 && depth < maxDepth; depth++) {
    const next: string[] = [];
    for (const id of frontier) {
      for (const n of edges.get(id) ?? []) {
        if (!seen.has(n)) {
          seen.add(n);
          next.push(n);
        }
      }
    }
    frontier = next;
  }
  return seen;
}

/**
 * The graph over `keep` alone: an edge from a kept node upward passes through
 * the nodes `through` accepts (ephemeral models, never run themselves) and
 * stops at any other node outside `keep` (assumed built already).
 */
export function contractGraph(graph: DependencyGraph, keep: readonly string[], through: (id: string) => boolean): MutableGraph {
  const kept = new Set(keep);
  const parents = new Map<string, string[]>();
  const children = new Map<string, string[]>(keep.map((id) => [id, []]));
  const passes = (p: string) => !kept.has(p) && through(p);
  for (const id of keep) {
    const found = parentsThrough(graph, id, passes).filter((p) => kept.has(p));
    parents.set(id, found);
    for (const p of found) children.get(p)!.push(id);
  }
  return { parents, children };
}

/**
 * The nearest ancestors of `id` that `through` does not accept: its parents,
 * with each accepted one (an ephemeral model, say) replaced by its own
 * parents, and so on up. Each once, in the order a depth-first walk of the
 * parent lists meets them.
 */
export function parentsThrough(graph: DependencyGraph, id: string, through: (id: string) => boolean): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const stack = [...(graph.parents.get(id) ?? [])].reverse();
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    if (through(p)) {
      const ps = graph.parents.get(p) ?? [];
      for (let i = ps.length - 1; i >= 0; i--) stack.push(ps[i]!);
    } else found.push(p);
  }
  return found;
}

/** Adds the edge parent -> child (both already in the graph). */
export function addEdge(graph: MutableGraph, parent: string, child: string): void {
  graph.parents.get(child)!.push(parent);
  graph.children.get(parent)!.push(child);
}
