// Lineage graphs: the neighbourhood of a node (levels up and down), the whole
// project clustered by folder or tag, and the paths between two nodes. Only
// what is shown is laid out (dagre, loaded with the first graph), so a graph
// costs the same at 100 models as at 10,000. Drawn as SVG: every node is a
// focusable link with a label, and the view pans and zooms by pointer, wheel,
// buttons and keyboard.

import { h, svg } from './dom.js';
import { loadScript, type Site } from './data.js';
import { nodeHref } from './routes.js';
import { createSearchBox } from './search.js';
import { isCurrent } from './routes.js';

/** The most nodes drawn in one graph; beyond it the view says what it left out. */
export const GRAPH_CAP = 300;
/**
 * The most nodes of a node page's lineage graph: a click from graph to graph
 * stays under 100 ms even on a hub (a seed read by hundreds of models), whose
 * whole neighbourhood is in its upstream and downstream lists below.
 */
export const NEIGHBOURHOOD_CAP = 100;
/**
 * Links drawn into each box of the project graph from other boxes (the
 * strongest). Many boxes keep one each: a link spanning many ranks costs the
 * layout a node per rank, and a project's folders link to nearly all the
 * folders before them.
 */
const clusterLinks = (boxes: number) => (boxes > 20 ? 1 : 3);

interface LayoutOut {
  width: number;
  height: number;
  nodes: Map<string, { x: number; y: number; width: number; height: number }>;
  edges: Array<{ from: string; to: string; points: Array<{ x: number; y: number }> }>;
}
type Layout = (input: { nodes: Array<{ id: string; width: number; height: number }>; edges: Array<{ from: string; to: string }>; direction?: 'LR' | 'TB' }) => LayoutOut;

export async function layoutLib(): Promise<Layout> {
  await loadScript('assets/graph.js', 'etlLayout');
  return (window as unknown as { etlLayout: Layout }).etlLayout;
}

export interface GraphNode {
  id: string;
  label: string;
  /** CSS classes: kind-model, status-error, center, on-path... */
  classes: string;
  href: string;
  title: string;
}

export interface GraphSpec {
  nodes: GraphNode[];
  /** layout: false draws the edge straight between its ends, not as a constraint of the layout (context links). */
  edges: Array<{ from: string; to: string; classes?: string; layout?: boolean }>;
  label: string;
  /** The node the first view is centred on when the whole graph cannot be shown readably. */
  focus?: string;
}

/** On a phone, a graph of at most this many nodes is also laid out left to right, and drawn so if narrower. */
const PHONE_LR_MAX = 60;

/** Below this scale labels cannot be read: the first view stays at it and the reader pans (Fit shows all). */
const READABLE = 0.75;

const CHAR_W = 7.2;
const NODE_H = 30;

function shorten(label: string, max = 34): string {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

/** Draws a laid-out graph with pan and zoom; returns the element. */
export async function drawGraph(spec: GraphSpec): Promise<HTMLElement> {
  const layout = await layoutLib();
  const sizes = new Map(spec.nodes.map((n) => [n.id, { id: n.id, width: Math.max(70, Math.min(34, n.label.length) * CHAR_W + 24), height: NODE_H }]));
  // A phone's screen is narrow: the graph runs top to bottom there, so a chain fits its width; but a
  // hub's children side by side do not: a small graph takes whichever direction is narrower.
  const layoutEdges = spec.edges.filter((e) => e.layout !== false);
  let direction: 'LR' | 'TB' = window.matchMedia('(max-width: 640px)').matches ? 'TB' : 'LR';
  let out = layout({ nodes: [...sizes.values()], edges: layoutEdges, direction });
  if (direction === 'TB' && spec.nodes.length <= PHONE_LR_MAX) {
    const across = layout({ nodes: [...sizes.values()], edges: layoutEdges, direction: 'LR' });
    if (across.width < out.width) (out = across), (direction = 'LR');
  }
  const edgeClass = new Map(spec.edges.map((e) => [`${e.from}\u0000${e.to}`, e.classes ?? '']));
  for (const e of spec.edges) {
    if (e.layout !== false) continue;
    const a = out.nodes.get(e.from)!;
    const b = out.nodes.get(e.to)!;
    out.edges.push({ from: e.from, to: e.to, points: direction === 'LR' ? [{ x: a.x + a.width / 2, y: a.y }, { x: b.x - b.width / 2, y: b.y }] : [{ x: a.x, y: a.y + a.height / 2 }, { x: b.x, y: b.y - b.height / 2 }] });
  }
  const viewport = svg('g', { class: 'viewport' });
  const edgeLayer = svg('g', { class: 'edges', 'aria-hidden': 'true' });
  for (const e of out.edges) {
    const d = e.points.map((p, k) => `${k ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join('');
    edgeLayer.append(svg('path', { d, class: `edge ${edgeClass.get(`${e.from}\u0000${e.to}`) ?? ''}`, 'marker-end': 'url(#arrow)', 'data-from': e.from, 'data-to': e.to }));
  }
  // A node under the pointer or the keyboard focus lights its edges (the faint context links too).
  const light = (target: EventTarget | null, on: boolean) => {
    const id = (target as Element | null)?.closest?.('a.gnode')?.getAttribute('data-id');
    if (!id) return;
    for (const p of edgeLayer.querySelectorAll(`path[data-from="${CSS.escape(id)}"], path[data-to="${CSS.escape(id)}"]`)) p.classList.toggle('lit', on);
  };
  const nodeLayer = svg('g', { class: 'nodes' });
  for (const n of spec.nodes) {
    const p = out.nodes.get(n.id)!;
    const g = svg(
      'a',
      { href: n.href, class: `gnode ${n.classes}`, transform: `translate(${(p.x - p.width / 2).toFixed(1)},${(p.y - p.height / 2).toFixed(1)})`, 'aria-label': n.title, 'data-id': n.id },
      svg('title', null, n.title),
      svg('rect', { width: p.width, height: p.height, rx: 6 }),
      svg('text', { x: 12, y: 19 }, shorten(n.label)),
    );
    nodeLayer.append(g);
  }
  nodeLayer.addEventListener('pointerover', (e) => light(e.target, true));
  nodeLayer.addEventListener('pointerout', (e) => light(e.target, false));
  nodeLayer.addEventListener('focusin', (e) => light(e.target, true));
  nodeLayer.addEventListener('focusout', (e) => light(e.target, false));
  viewport.append(edgeLayer, nodeLayer);
  const defs = svg('defs', null, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0L10,5L0,10z', class: 'arrowhead' })));
  const root = svg('svg', { class: 'graph', role: 'group', 'aria-label': `${spec.label}. Arrow keys pan, + and - zoom, 0 fits.`, tabindex: '0', style: `height:min(65vh,${Math.max(180, Math.round(out.height) + 60)}px)` }, defs, viewport) as SVGSVGElement;
  const wrap = h('div', { class: 'graph-wrap' });
  const view = { x: 0, y: 0, k: 1 };
  const apply = () => viewport.setAttribute('transform', `translate(${view.x.toFixed(1)},${view.y.toFixed(1)}) scale(${view.k.toFixed(4)})`);
  let moved = false;
  const fit = (all: boolean) => {
    moved = false;
    const w = root.clientWidth || 800;
    const hgt = root.clientHeight || 400;
    const k = Math.min(1.4, Math.max(0.02, Math.min(w / (out.width || 1), hgt / (out.height || 1))));
    view.k = all ? k : Math.max(k, READABLE);
    if (view.k === k) {
      view.x = (w - out.width * view.k) / 2;
      view.y = (hgt - out.height * view.k) / 2;
    } else {
      // Too big to read whole: centre the focus node (or start at the graph's beginning).
      const f = spec.focus !== undefined ? out.nodes.get(spec.focus) : undefined;
      view.x = f ? w / 2 - f.x * view.k : 16;
      view.y = f ? hgt / 2 - f.y * view.k : Math.min(16, (hgt - out.height * view.k) / 2);
    }
    apply();
  };
  const zoom = (factor: number, cx?: number, cy?: number) => {
    const w = root.clientWidth || 800;
    const hgt = root.clientHeight || 400;
    const px = cx ?? w / 2;
    const py = cy ?? hgt / 2;
    moved = true;
    const k = Math.min(4, Math.max(0.02, view.k * factor));
    view.x = px - ((px - view.x) * k) / view.k;
    view.y = py - ((py - view.y) * k) / view.k;
    view.k = k;
    apply();
  };
  root.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = root.getBoundingClientRect();
    zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  let drag: { x: number; y: number; vx: number; vy: number; moved: boolean; id: number } | undefined;
  root.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false, id: e.pointerId };
  });
  root.addEventListener('pointermove', (e) => {
    if (!drag || drag.id !== e.pointerId) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    if (!drag.moved) root.setPointerCapture(e.pointerId);
    drag.moved = true;
    moved = true;
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    apply();
  });
  const endDrag = (e: PointerEvent) => {
    if (drag?.moved) {
      // A drag is not a click on the node it ended on.
      const stop = (c: Event) => { c.preventDefault(); c.stopPropagation(); };
      root.addEventListener('click', stop, { capture: true, once: true });
      setTimeout(() => root.removeEventListener('click', stop, { capture: true }), 0);
      root.releasePointerCapture(e.pointerId);
    }
    drag = undefined;
  };
  root.addEventListener('pointerup', endDrag);
  root.addEventListener('pointercancel', endDrag);
  root.addEventListener('keydown', (e) => {
    if (e.target !== root) return;
    const step = 60;
    if (e.key === 'ArrowLeft') view.x += step;
    else if (e.key === 'ArrowRight') view.x -= step;
    else if (e.key === 'ArrowUp') view.y += step;
    else if (e.key === 'ArrowDown') view.y -= step;
    else if (e.key === '+' || e.key === '=') return zoom(1.25), e.preventDefault();
    else if (e.key === '-') return zoom(0.8), e.preventDefault();
    else if (e.key === '0') return fit(true), e.preventDefault();
    else return;
    e.preventDefault();
    moved = true;
    apply();
  });
  const controls = h(
    'div',
    { class: 'graph-controls' },
    h('button', { type: 'button', 'aria-label': 'Zoom in', onclick: () => zoom(1.25) }, '+'),
    h('button', { type: 'button', 'aria-label': 'Zoom out', onclick: () => zoom(0.8) }, '−'),
    h('button', { type: 'button', 'aria-label': 'Fit the whole graph in the view', onclick: () => fit(true) }, 'Fit'),
  );
  wrap.append(root, controls);
  // Fitted once the element has a size (it is drawn before the page attaches it), and again when
  // the window changes size, unless the reader has panned or zoomed since.
  new ResizeObserver(() => {
    if (root.clientWidth && !moved) fit(false);
  }).observe(root);
  apply();
  return wrap;
}

/**
 * Parents (or children) drawn per node in a node page's lineage graph: a hub
 * (a seed read by hundreds of models) shows this many and a "+N more" node
 * that draws the rest (up to NEIGHBOURHOOD_CAP), then lists them all.
 */
export const FANOUT = 12;

/** "+N more" nodes drawn at most, nearest first. */
const MORE_NODES = 40;

/** Neighbours of a drawn node left out of the graph, in one direction. */
export interface Hidden {
  node: number;
  dir: 'up' | 'down';
  count: number;
}

/**
 * Nodes within `up` levels upstream and `down` levels downstream, nearest
 * first, at most FANOUT neighbours per node (all, up to cap, for the nodes in
 * `expanded`), at most cap nodes; and, for each drawn node whose neighbours
 * within the levels were not all drawn, how many were left out.
 */
export function neighbourhood(site: Site, center: number, up: number, down: number, cap = NEIGHBOURHOOD_CAP, expanded: ReadonlySet<number> = new Set()): { nodes: number[]; truncated: boolean; hidden: Hidden[] } {
  const seen = new Set<number>([center]);
  let truncated = false;
  const walked: Array<{ node: number; dir: 'up' | 'down'; level: number }> = [];
  const walk = (dir: 'up' | 'down', next: (i: number) => number[], levels: number) => {
    let frontier = [center];
    for (let l = 0; l < levels && frontier.length; l++) {
      const nextFrontier: number[] = [];
      for (const i of frontier) {
        walked.push({ node: i, dir, level: l });
        let taken = 0;
        const fanout = expanded.has(i) ? cap : FANOUT;
        for (const j of next(i)) {
          if (seen.has(j)) continue;
          if (taken >= fanout) break;
          if (seen.size >= cap) {
            truncated = true;
            break;
          }
          seen.add(j);
          taken++;
          nextFrontier.push(j);
        }
      }
      frontier = nextFrontier;
    }
  };
  walk('up', (i) => site.index.parents[i]!, up);
  walk('down', (i) => site.children[i]!, down);
  const hidden: Hidden[] = [];
  for (const { node, dir } of walked) {
    const count = (dir === 'up' ? site.index.parents[node]! : site.children[node]!).reduce((n, j) => n + (seen.has(j) ? 0 : 1), 0);
    if (count && hidden.length < MORE_NODES) hidden.push({ node, dir, count });
  }
  return { nodes: [...seen], truncated, hidden };
}

export function nodeSpec(site: Site, ids: number[], extra: (i: number) => string = () => ''): GraphSpec {
  const set = new Set(ids);
  const nodes: GraphNode[] = ids.map((i) => ({
    id: String(i),
    label: site.index.names[i]!,
    classes: `kind-${site.type(i)} ${site.index.status[i] ? `status-${site.index.status[i]}` : ''} ${extra(i)}`,
    href: nodeHref(site, i),
    title: `${site.type(i)} ${site.index.names[i]}${site.index.status[i] ? `, last run ${site.index.status[i]}` : ''}`,
  }));
  const edges: GraphSpec['edges'] = [];
  for (const i of ids) for (const p of site.index.parents[i]!) if (set.has(p)) edges.push({ from: String(p), to: String(i) });
  return { nodes, edges, label: '' };
}

function levelSelect(label: string, value: number, onChange: (v: number) => void): HTMLElement {
  const id = `lvl-${label.replace(/\W+/g, '-').toLowerCase()}`;
  const select = h('select', { id, onchange: (e: Event) => onChange(Number((e.target as HTMLSelectElement).value)) });
  for (const v of [0, 1, 2, 3, 4, 5, 10, 99]) select.append(h('option', { value: v, selected: v === value }, v === 99 ? 'all' : String(v)));
  return h('span', { class: 'field' }, h('label', { for: id }, label), select);
}

/** The lineage section of a node page: neighbourhood graph with level controls and a path finder. */
export async function nodeLineage(site: Site, center: number, query: URLSearchParams, hrefWith: (q: URLSearchParams) => string): Promise<HTMLElement> {
  const up = Number(query.get('up') ?? 2);
  const down = Number(query.get('down') ?? 2);
  const expanded = new Set(query.getAll('expand').map((id) => site.byId.get(id)).filter((i): i is number => i !== undefined));
  const { nodes, truncated, hidden } = neighbourhood(site, center, up, down, NEIGHBOURHOOD_CAP, expanded);
  const spec = nodeSpec(site, nodes, (i) => (i === center ? 'center' : ''));
  spec.focus = String(center);
  spec.label = `Lineage of ${site.index.names[center]}: ${nodes.length} nodes, ${up} levels up and ${down} down`;
  const withParams = (change: (q: URLSearchParams) => void) => {
    const q = new URLSearchParams(query);
    change(q);
    q.set('focus', 'keep');
    return hrefWith(q);
  };
  // A hub's neighbours beyond FANOUT: one node saying how many, which draws them (up to the cap),
  // and once drawn lists them all.
  for (const x of hidden) {
    const id = `more:${x.dir}:${x.node}`;
    const name = site.index.names[x.node]!;
    const relation = x.dir === 'up' ? 'upstream' : 'downstream';
    const more = expanded.has(x.node);
    spec.nodes.push({
      id,
      label: `+${x.count} more`,
      classes: 'more',
      href: more ? `#/list?${x.dir === 'up' ? 'parents' : 'children'}=${encodeURIComponent(site.index.ids[x.node]!)}` : withParams((q) => q.append('expand', site.index.ids[x.node]!)),
      title: more ? `${x.count} more directly ${relation} of ${name}: list them all` : `${x.count} more directly ${relation} of ${name}: draw them`,
    });
    spec.edges.push(x.dir === 'up' ? { from: id, to: String(x.node), classes: 'more' } : { from: String(x.node), to: id, classes: 'more' });
  }
  const set = (k: string, v: number) => {
    location.hash = withParams((q) => q.set(k, String(v))).slice(1);
  };
  const picker = createSearchBox(site, {
    id: 'path-to',
    label: 'Highlight the paths from this node to another node',
    placeholder: 'Paths to…',
    nodesOnly: true,
    onPick: (_href, r) => {
      if (r.node !== undefined) location.hash = `/paths?from=${encodeURIComponent(site.index.ids[center]!)}&to=${encodeURIComponent(site.index.ids[r.node]!)}`;
    },
  });
  const graph = await drawGraph(spec);
  return h(
    'div',
    { class: 'lineage' },
    h('div', { class: 'toolbar' }, levelSelect('Levels up', up, (v) => set('up', v)), levelSelect('Levels down', down, (v) => set('down', v)), picker.element),
    truncated ? h('p', { class: 'muted' }, `Showing the nearest ${NEIGHBOURHOOD_CAP} nodes (all of them are in the upstream and downstream lists); lower the levels to see a smaller part.`) : null,
    graph,
  );
}

/** Members drawn for one open box of the project graph; a larger folder (or tag) opens into bands of this many. */
export const OPEN_MAX = 40;
/** Boxes and nodes drawn at once in the project graph: boxes opened beyond it stay closed. */
export const PROJECT_CAP = 400;

/** A box of the project graph: a folder (or tag), or a band of a large one (its members by depth in the DAG). */
interface Box {
  key: string;
  label: string;
  members: number[];
  bands?: Box[];
}

/** Each node's depth: the longest path from a node without parents (computed once). */
const depthCache = new WeakMap<Site, Int32Array>();
function depths(site: Site): Int32Array {
  let d = depthCache.get(site);
  if (d) return d;
  d = new Int32Array(site.size);
  const pending = site.index.parents.map((ps) => ps.length);
  const queue: number[] = [];
  pending.forEach((n, i) => n === 0 && queue.push(i));
  for (let k = 0; k < queue.length; k++) {
    const i = queue[k]!;
    for (const c of site.children[i]!) {
      if (d[c]! < d[i]! + 1) d[c] = d[i]! + 1;
      if (--pending[c]! === 0) queue.push(c);
    }
  }
  depthCache.set(site, d);
  return d;
}

function projectBoxes(site: Site, by: 'folder' | 'tag'): Box[] {
  const keyOf = (i: number): string => (by === 'folder' ? site.folder(i) : (site.tags(i)[0] ?? '(no tag)'));
  const members = new Map<string, number[]>();
  for (let i = 0; i < site.size; i++) {
    const k = keyOf(i);
    let list = members.get(k);
    if (!list) members.set(k, (list = []));
    list.push(i);
  }
  const depth = depths(site);
  return [...members.keys()].sort().map((key) => {
    const list = members.get(key)!;
    const box: Box = { key, label: `${key} (${list.length})`, members: list };
    if (list.length > OPEN_MAX) {
      // Upstream first: a band holds the nodes of neighbouring depths, so its edges mostly run band to band.
      list.sort((a, b) => depth[a]! - depth[b]! || site.index.names[a]!.localeCompare(site.index.names[b]!));
      box.bands = [];
      for (let k = 0; k * OPEN_MAX < list.length; k++) {
        const part = list.slice(k * OPEN_MAX, (k + 1) * OPEN_MAX);
        const lo = depth[part[0]!]!;
        const hi = depth[part.at(-1)!]!;
        box.bands.push({ key: `${key} ${k + 1}`, label: `${key.split('/').at(-1)} ${k + 1}/${Math.ceil(list.length / OPEN_MAX)} · depth ${lo === hi ? lo : `${lo}–${hi}`} (${part.length})`, members: part });
      }
    }
    return box;
  });
}

/**
 * The whole project as boxes, one per folder (or tag), edges counting the
 * nodes they link. A box opens in place (its link), showing its nodes, or,
 * when it holds more than OPEN_MAX, its bands, each of which opens in turn:
 * what is drawn stays a few hundred boxes and nodes at any project size, so
 * laying it out stays fast. The open boxes are in the address (open=...).
 */
export async function renderProjectGraph(site: Site, view: HTMLElement, query: URLSearchParams, token: number): Promise<void> {
  const by = query.get('by') === 'tag' ? 'tag' : 'folder';
  const open = new Set(query.getAll('open'));
  const hrefWith = (keys: Set<string>) => `#/graph?${new URLSearchParams([['by', by], ...[...keys].map((k) => ['open', k] as [string, string])]).toString()}`;
  const toggled = (box: Box, parent?: Box) => {
    const next = new Set(open);
    if (next.has(box.key)) {
      next.delete(box.key);
      for (const b of box.bands ?? []) next.delete(b.key);
    } else {
      next.add(box.key);
      if (parent) next.add(parent.key);
    }
    return hrefWith(next);
  };
  const boxes = projectBoxes(site, by);
  // What is drawn: node i is drawn as itself or as the box holding it.
  const repOf = new Array<string>(site.size);
  const drawnBoxes: Array<{ box: Box; parent?: Box }> = [];
  const openBoxes: Array<{ box: Box; parent?: Box }> = [];
  const drawnNodes: number[] = [];
  let budget = PROJECT_CAP - boxes.length;
  let refused = 0;
  const place = (box: Box, parent?: Box) => {
    const grow = box.bands ? box.bands.length - 1 : box.members.length - 1;
    if (open.has(box.key) && grow <= budget) {
      budget -= grow;
      openBoxes.push({ box, parent });
      if (box.bands) for (const b of box.bands) place(b, box);
      else for (const i of box.members) (repOf[i] = String(i)), drawnNodes.push(i);
      return;
    }
    if (open.has(box.key)) refused++;
    drawnBoxes.push({ box, parent });
    for (const i of box.members) repOf[i] = `g:${box.key}`;
  };
  for (const box of boxes) place(box);

  const edgeCounts = new Map<string, number>();
  for (let i = 0; i < site.size; i++) {
    const to = repOf[i]!;
    for (const p of site.index.parents[i]!) {
      const from = repOf[p]!;
      if (from !== to) edgeCounts.set(`${from}\u0000${to}`, (edgeCounts.get(`${from}\u0000${to}`) ?? 0) + 1);
    }
  }
  // Boxes of a large project link to many others: between two boxes each keeps its strongest
  // incoming links (by the number of nodes they join), which keeps the picture (and the
  // layout's time) readable; the others are counted, not drawn. Edges to a node are all drawn.
  const incoming = new Map<string, Array<{ from: string; to: string; n: number }>>();
  const drawn: GraphSpec['edges'] = [];
  const memberEdges: Array<{ from: string; to: string; n: number }> = [];
  for (const [key, n] of edgeCounts) {
    const [from, to] = key.split('\u0000') as [string, string];
    if (!from.startsWith('g:') || !to.startsWith('g:')) {
      memberEdges.push({ from, to, n });
      continue;
    }
    let list = incoming.get(to);
    if (!list) incoming.set(to, (list = []));
    list.push({ from, to, n });
  }
  let hidden = 0;
  const links = clusterLinks(drawnBoxes.length);
  for (const list of incoming.values()) {
    list.sort((a, b) => b.n - a.n);
    for (const e of list.slice(0, links)) drawn.push({ from: e.from, to: e.to, classes: e.n > 1 ? 'strong' : '' });
    hidden += Math.max(0, list.length - links);
  }
  // Between nodes, every edge places them; a node's links to and from closed boxes would each
  // stretch over many ranks: its strongest link from a box places it, the others are drawn straight.
  const placedBy = new Map<string, { from: string; n: number }>();
  for (const e of memberEdges) {
    if (e.from.startsWith('g:') && (placedBy.get(e.to)?.n ?? 0) < e.n) placedBy.set(e.to, e);
  }
  for (const e of memberEdges) {
    const layout = !e.from.startsWith('g:') && !e.to.startsWith('g:') ? true : placedBy.get(e.to) === e;
    drawn.push({ from: e.from, to: e.to, classes: `${e.n > 1 ? 'strong' : ''}${layout ? '' : ' context'}`, layout });
  }
  const nodes = nodeSpec(site, drawnNodes, () => 'member').nodes;
  for (const { box, parent } of drawnBoxes) {
    nodes.push({ id: `g:${box.key}`, label: box.label, classes: box.bands ? 'cluster has-bands' : 'cluster', href: toggled(box, parent), title: `${by} ${box.label}: open it` });
  }
  const spec: GraphSpec = { label: `Project ${site.index.project} by ${by}: ${drawnBoxes.length} boxes and ${drawnNodes.length} nodes`, nodes, edges: drawn };
  const graph = await drawGraph(spec);
  if (!isCurrent(token)) return;
  const toolbar = h(
    'div',
    { class: 'toolbar' },
    h('span', null, 'Cluster by '),
    h('a', { href: '#/graph?by=folder', 'aria-current': by === 'folder' ? 'page' : null }, 'folder'),
    ' · ',
    h('a', { href: '#/graph?by=tag', 'aria-current': by === 'tag' ? 'page' : null }, 'tag'),
  );
  const opened = openBoxes.length
    ? h(
        'ul',
        { class: 'open-boxes', 'aria-label': 'Open boxes' },
        openBoxes.map(({ box, parent }) => h('li', null, h('a', { href: toggled(box, parent), 'aria-label': `Close ${box.label}` }, `${box.label} ✕`))),
        h('li', null, h('a', { href: hrefWith(new Set()) }, 'close all')),
      )
    : null;
  view.append(
    h('h1', { tabindex: '-1' }, `Project graph by ${by}`),
    toolbar,
    h(
      'p',
      { class: 'muted' },
      `${site.size} nodes in ${boxes.length} ${by === 'folder' ? 'folders' : 'tags'}. Open a box to draw its nodes in place (a box of more than ${OPEN_MAX} opens into bands by depth); open a node to see its page.`,
      hidden ? ` Between boxes, each shows its ${links === 1 ? 'strongest incoming link' : `${links} strongest incoming links`}; ${hidden} weaker ones are not drawn.` : '',
      refused ? ` ${refused} open box${refused > 1 ? 'es' : ''} stayed closed: at most ${PROJECT_CAP} boxes and nodes are drawn at once.` : '',
    ),
    ...(opened ? [opened] : []),
    graph,
  );
}

function reach(site: Site, start: number, next: (i: number) => number[]): Set<number> {
  const seen = new Set<number>([start]);
  const stack = [start];
  while (stack.length) for (const j of next(stack.pop()!)) if (!seen.has(j)) seen.add(j), stack.push(j);
  return seen;
}

/** The nodes on some path from a to b (either direction), and the edges between them. */
export function pathsBetween(site: Site, a: number, b: number): Set<number> {
  const on = new Set<number>();
  for (const [from, to] of [[a, b], [b, a]] as const) {
    const down = reach(site, from, (i) => site.children[i]!);
    if (!down.has(to)) continue;
    const up = reach(site, to, (i) => site.index.parents[i]!);
    for (const i of down) if (up.has(i)) on.add(i);
  }
  return on;
}

export async function renderPathsPage(site: Site, view: HTMLElement, query: URLSearchParams, token: number): Promise<void> {
  const a = site.byId.get(query.get('from') ?? '');
  const b = site.byId.get(query.get('to') ?? '');
  if (a === undefined || b === undefined) {
    view.append(h('h1', { tabindex: '-1' }, 'Paths'), h('p', null, 'Open a node and pick the other end in "Paths to…".'));
    return;
  }
  const on = pathsBetween(site, a, b);
  const title = h('h1', { tabindex: '-1' }, `Paths between ${site.index.names[a]} and ${site.index.names[b]}`);
  if (on.size === 0) {
    view.append(title, h('p', null, 'No path: neither node is upstream of the other.'), h('p', null, h('a', { href: nodeHref(site, a) }, site.index.names[a]!), ' · ', h('a', { href: nodeHref(site, b) }, site.index.names[b]!)));
    return;
  }
  // The paths, plus each path node's direct neighbours for context, dimmed: at most FANOUT of a hub's.
  const shown = new Set(on);
  for (const i of on) {
    let context = 0;
    for (const j of [...site.index.parents[i]!, ...site.children[i]!]) {
      if (shown.has(j)) continue;
      if (context >= FANOUT || shown.size >= GRAPH_CAP) break;
      shown.add(j);
      context++;
    }
  }
  const spec = nodeSpec(site, [...shown], (i) => `${on.has(i) ? 'on-path' : 'off-path'}${i === a || i === b ? ' center' : ''}`);
  spec.edges = spec.edges.map((e) => ({ ...e, classes: on.has(Number(e.from)) && on.has(Number(e.to)) ? 'on-path' : 'off-path' }));
  spec.label = `${on.size} nodes on the paths between ${site.index.names[a]} and ${site.index.names[b]}`;
  const graph = await drawGraph(spec);
  if (!isCurrent(token)) return;
  const list = [...on].sort((x, y) => site.index.names[x]!.localeCompare(site.index.names[y]!));
  view.append(
    title,
    h('p', { class: 'muted' }, `${on.size} nodes on the paths (highlighted); their other neighbours are dimmed.`),
    graph,
    h('h2', null, 'Nodes on the paths'),
    h('ul', { class: 'node-list' }, list.map((i) => h('li', null, h('a', { href: nodeHref(site, i) }, site.index.names[i]!)))),
  );
}

