// Lists of nodes: by folder, tag or resource type (home and search link here),
// or a node's direct parents or children (a hub's lineage links here).

import { h } from './dom.js';
import type { Site } from './data.js';
import { nodeHref } from './routes.js';

const PAGE = 500;

export function renderList(site: Site, view: HTMLElement, query: URLSearchParams): void {
  const folder = query.get('folder');
  const tag = query.get('tag');
  const type = query.get('type');
  const parentsOf = site.byId.get(query.get('parents') ?? '');
  const childrenOf = site.byId.get(query.get('children') ?? '');
  const ids: number[] = [];
  const only = parentsOf !== undefined ? new Set(site.index.parents[parentsOf]) : childrenOf !== undefined ? new Set(site.children[childrenOf]) : undefined;
  for (let i = 0; i < site.size; i++) {
    if (only && !only.has(i)) continue;
    if (folder !== null && site.folder(i) !== folder) continue;
    if (tag !== null && !site.tags(i).includes(tag)) continue;
    if (type !== null && site.type(i) !== type) continue;
    ids.push(i);
  }
  ids.sort((a, b) => site.index.names[a]!.localeCompare(site.index.names[b]!));
  const title = parentsOf !== undefined ? `Upstream of ${site.index.names[parentsOf]}` : childrenOf !== undefined ? `Downstream of ${site.index.names[childrenOf]}` : folder !== null ? `Folder ${folder}` : tag !== null ? `Tag ${tag}` : type !== null ? `${type[0]!.toUpperCase()}${type.slice(1)}s` : 'All nodes';
  const page = Number(query.get('page') ?? 0);
  const shown = ids.slice(page * PAGE, (page + 1) * PAGE);
  view.append(
    h('h1', { tabindex: '-1' }, title),
    h('p', { class: 'muted' }, `${ids.length} node${ids.length === 1 ? '' : 's'}`, folder !== null || tag !== null ? [' · ', h('a', { href: `#/graph?by=${folder !== null ? 'folder' : 'tag'}&open=${encodeURIComponent((folder ?? tag)!)}` }, 'show as a graph')] : ''),
    h(
      'ul',
      { class: 'node-list' },
      shown.map((i) => h('li', null, h('span', { class: `kind kind-${site.type(i)}` }, site.type(i)), h('a', { href: nodeHref(site, i) }, site.index.names[i]!), h('span', { class: 'muted' }, ` ${site.folder(i)}`))),
    ),
  );
  if (ids.length > PAGE) {
    const q = new URLSearchParams(query);
    const nav = h('nav', { 'aria-label': 'Pages', class: 'pager' });
    for (let p = 0; p * PAGE < ids.length; p++) {
      q.set('page', String(p));
      nav.append(h('a', { href: `#/list?${q}`, 'aria-current': p === page ? 'page' : null }, String(p + 1)));
    }
    view.append(nav);
  }
}
