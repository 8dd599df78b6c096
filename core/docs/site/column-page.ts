// A column's lineage: the columns it derives from and the columns derived
// from it, followed through as many models as GRAPH_DEPTH (loading each
// model's data file as the walk reaches it), drawn as a column graph
// (pass-through edges solid, transformations dashed) and listed as text.

import type { ColumnRef, SiteColumn, SiteNode } from '../model.js';
import { append, h } from './dom.js';
import type { Site } from './data.js';
import { columnHref, isCurrent, nodeHref } from './routes.js';
import { drawGraph, FANOUT, type GraphSpec } from './graph.js';
import { pageLib } from './lazy.js';
import { describeColumn } from './node-page.js';

const GRAPH_DEPTH = 6;
const MAX_COLUMNS = 200;

interface Visit {
  ref: ColumnRef;
  column?: SiteColumn;
}

function keyOf(ref: ColumnRef): string {
  return `${ref.node}\u0000${ref.column.toLowerCase()}`;
}

function findColumn(node: SiteNode | undefined, name: string): SiteColumn | undefined {
  const lower = name.toLowerCase();
  return node?.columns.find((c) => c.name.toLowerCase() === lower);
}

/** Columns of the graph left out of it: `count` more upstream (or downstream) of `of`. */
interface HiddenColumns {
  of: ColumnRef;
  count: number;
}

/**
 * Walks column lineage breadth first in one direction, loading node files
 * level by level: at most `fanout` new columns from each column (a hub's
 * others counted in `hidden`), MAX_COLUMNS in all.
 */
async function walk(site: Site, start: ColumnRef, next: (c: SiteColumn | undefined) => ColumnRef[], startColumn: SiteColumn, fanout: number): Promise<{ visits: Map<string, Visit>; edges: Array<[ColumnRef, ColumnRef]>; hidden: HiddenColumns[] }> {
  const visits = new Map<string, Visit>([[keyOf(start), { ref: start, column: startColumn }]]);
  const edges: Array<[ColumnRef, ColumnRef]> = [];
  const hidden: HiddenColumns[] = [];
  let frontier: Visit[] = [visits.get(keyOf(start))!];
  for (let depth = 0; depth < GRAPH_DEPTH && frontier.length && visits.size < MAX_COLUMNS; depth++) {
    const refs: Array<[Visit, ColumnRef]> = [];
    for (const v of frontier) {
      const all = next(v.column);
      const fresh = all.filter((r) => !visits.has(keyOf(r)));
      for (const r of all) if (visits.has(keyOf(r)) || fresh.indexOf(r) < fanout) refs.push([v, r]);
      if (fresh.length > fanout) hidden.push({ of: v.ref, count: fresh.length - fanout });
    }
    const nodes = await Promise.all(refs.map(([, r]) => site.nodeById(r.node)?.catch(() => undefined)));
    const nextFrontier: Visit[] = [];
    refs.forEach(([from, r], k) => {
      edges.push([from.ref, r]);
      const key = keyOf(r);
      if (visits.has(key) || visits.size >= MAX_COLUMNS) return;
      const visit = { ref: r, column: findColumn(nodes[k], r.column) };
      visits.set(key, visit);
      nextFrontier.push(visit);
    });
    frontier = nextFrontier;
  }
  return { visits, edges, hidden };
}

function refLabel(site: Site, ref: ColumnRef): string {
  const i = site.byId.get(ref.node);
  return `${i === undefined ? ref.node : site.index.names[i]}.${ref.column}`;
}

function refList(site: Site, refs: ColumnRef[], empty: string): HTMLElement {
  if (!refs.length) return h('p', { class: 'muted' }, empty);
  return h('ul', { class: 'node-list' }, refs.map((r) => h('li', null, h('a', { href: columnHref(r.node, r.column) }, refLabel(site, r)))));
}

export async function renderColumnPage(site: Site, view: HTMLElement, id: string, columnName: string, query: URLSearchParams, token: number): Promise<void> {
  const i = site.byId.get(id);
  const node = i === undefined ? undefined : await site.node(i);
  if (!isCurrent(token)) return;
  const column = findColumn(node, columnName);
  if (i === undefined || !node || !column) {
    view.append(h('h1', { tabindex: '-1' }, 'Column not found'), h('p', null, `No column ${columnName} in ${id}.`));
    return;
  }
  const lib = await pageLib();
  const md = (text: string) => h('div', { class: 'markdown' }, lib.markdown(text));
  const start: ColumnRef = { node: id, column: column.name };
  // A column many others derive from (or that derives from many) draws FANOUT of them per column
  // and a "+N more" node; ?all=1 draws them all (up to MAX_COLUMNS).
  const drawAll = query.get('all') === '1';
  const fanout = drawAll ? MAX_COLUMNS : FANOUT;
  const [up, down] = await Promise.all([walk(site, start, (c) => c?.lineage?.upstream ?? [], column, fanout), walk(site, start, (c) => c?.downstream ?? [], column, fanout)]);
  if (!isCurrent(token)) return;

  const lin = column.lineage;
  const kindText = !site.index.has_lineage
    ? 'No column lineage: target/lineage.json is missing (etl lineage writes it).'
    : !lin
      ? node.type === 'model' || node.type === 'snapshot'
        ? 'No lineage was computed for this column.'
        : `Data enters the project here (a ${node.type}'s column): nothing upstream.`
      : lin.kind === 'passthrough'
        ? 'Passed through unchanged from its upstream column.'
        : lin.kind === 'transform'
          ? 'Computed from its upstream columns:'
          : `Could not be resolved${lin.reason ? `: ${lin.reason}` : ''}.`;

  const all = new Map<string, Visit>([...up.visits, ...down.visits]);
  const spec: GraphSpec = {
    label: `Column lineage of ${node.name}.${column.name}: ${all.size} columns`,
    nodes: [...all.values()].map((v) => ({
      id: keyOf(v.ref),
      label: refLabel(site, v.ref),
      classes: `column-node ${v.column?.lineage?.kind ? `lineage-${v.column.lineage.kind}` : ''} ${keyOf(v.ref) === keyOf(start) ? 'center' : ''}`,
      href: columnHref(v.ref.node, v.ref.column),
      title: `${refLabel(site, v.ref)}${v.column?.lineage ? `, ${v.column.lineage.kind}${v.column.lineage.expression ? `: ${v.column.lineage.expression}` : ''}` : ''}`,
    })),
    edges: [],
  };
  const seen = new Set<string>();
  // Upstream edges point from the upstream column to the one derived from it; the edge's style is the derived column's kind.
  for (const [to, from] of up.edges) {
    const k = `${keyOf(from)}>${keyOf(to)}`;
    if (seen.has(k) || !all.has(keyOf(from)) || !all.has(keyOf(to))) continue;
    seen.add(k);
    spec.edges.push({ from: keyOf(from), to: keyOf(to), classes: `lineage-${all.get(keyOf(to))?.column?.lineage?.kind ?? ''}` });
  }
  for (const [from, to] of down.edges) {
    const k = `${keyOf(from)}>${keyOf(to)}`;
    if (seen.has(k) || !all.has(keyOf(from)) || !all.has(keyOf(to))) continue;
    seen.add(k);
    spec.edges.push({ from: keyOf(from), to: keyOf(to), classes: `lineage-${all.get(keyOf(to))?.column?.lineage?.kind ?? ''}` });
  }
  for (const [dir, hidden] of [['up', up.hidden], ['down', down.hidden]] as const) {
    for (const x of hidden) {
      const more = `more:${dir}:${keyOf(x.of)}`;
      const name = refLabel(site, x.of);
      spec.nodes.push({ id: more, label: `+${x.count} more`, classes: 'more', href: `${columnHref(id, column.name)}?all=1`, title: `${x.count} more columns ${dir === 'up' ? `${name} derives from` : `derived from ${name}`}: draw them all` });
      spec.edges.push(dir === 'up' ? { from: more, to: keyOf(x.of), classes: 'more' } : { from: keyOf(x.of), to: more, classes: 'more' });
    }
  }
  const graph = all.size > 1 ? await drawGraph(spec) : null;
  if (!isCurrent(token)) return;
  append(view, [
    h('p', { class: 'crumbs' }, h('a', { href: nodeHref(site, i) }, node.name), ' › column'),
    h('h1', { tabindex: '-1' }, `${node.name}.${column.name}`),
    h('p', { class: 'badges' }, column.type ? h('span', { class: 'badge mono' }, column.type) : null, lin ? h('span', { class: `badge lineage-${lin.kind}` }, lin.kind) : null),
    h('div', { class: 'desc' }, describeColumn(site, column, md)),
    h('section', { 'aria-labelledby': 'h-derivation' }, h('h2', { id: 'h-derivation' }, 'Derivation'), h('p', null, kindText), lin?.expression ? h('pre', { class: 'sql expression', tabindex: '0', 'aria-label': 'Expression' }, h('code', null, lib.highlightSql(lin.expression))) : null),
    graph ? h('section', { 'aria-labelledby': 'h-colgraph' }, h('h2', { id: 'h-colgraph' }, 'Column graph'), h('p', { class: 'muted legend' }, h('span', { class: 'swatch passthrough', 'aria-hidden': 'true' }), 'pass-through ', h('span', { class: 'swatch transform', 'aria-hidden': 'true' }), 'transformation'), graph) : null,
    h(
      'div',
      { class: 'two' },
      h('section', { 'aria-labelledby': 'h-colup' }, h('h2', { id: 'h-colup' }, 'Upstream columns'), refList(site, lin?.upstream ?? [], lin?.kind === 'unresolved' ? 'Unresolved.' : 'None (a literal, or a source column).')),
      h('section', { 'aria-labelledby': 'h-coldown' }, h('h2', { id: 'h-coldown' }, 'Downstream columns'), refList(site, column.downstream ?? [], 'None.')),
    ),
  ]);
}
