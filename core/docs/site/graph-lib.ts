// Loaded with the first graph (assets/graph.js): dagre lays out the part of
// the DAG that is shown (a neighbourhood, a cluster view), never all of it.

import dagre from '@dagrejs/dagre';

export interface LayoutInput {
  nodes: Array<{ id: string; width: number; height: number }>;
  edges: Array<{ from: string; to: string }>;
  direction?: 'LR' | 'TB';
}

export interface LayoutOutput {
  width: number;
  height: number;
  nodes: Map<string, { x: number; y: number; width: number; height: number }>;
  edges: Array<{ from: string; to: string; points: Array<{ x: number; y: number }> }>;
}

function layout(input: LayoutInput): LayoutOutput {
  const g = new dagre.graphlib.Graph({ multigraph: false });
  // network-simplex ranks best but grows fast with edges; longest-path is linear and fine for big views.
  const big = input.edges.length > 150 || input.nodes.length > 120;
  g.setGraph({ rankdir: input.direction ?? 'LR', nodesep: 14, ranksep: 60, marginx: 16, marginy: 16, ranker: big ? 'longest-path' : 'network-simplex' });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of input.nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const e of input.edges) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const nodes = new Map<string, { x: number; y: number; width: number; height: number }>();
  for (const id of g.nodes()) {
    const n = g.node(id);
    nodes.set(id, { x: n.x, y: n.y, width: n.width, height: n.height });
  }
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: (g.edge(e) as { points: Array<{ x: number; y: number }> }).points }));
  const graph = g.graph();
  return { width: graph.width ?? 0, height: graph.height ?? 0, nodes, edges };
}

(window as unknown as { etlLayout: typeof layout }).etlLayout = layout;
