// The site's entry (assets/app.js): the shell (header, search, main area) and
// the hash router. Each route renders into <main>; data comes from data.ts.

import { h, clear } from './dom.js';
import { loadIndex, startReceiving, type Site } from './data.js';
import { createSearchBox } from './search.js';
import { renderHome } from './home.js';
import { renderNodePage } from './node-page.js';
import { renderColumnPage } from './column-page.js';
import { renderProjectGraph, renderPathsPage } from './graph.js';
import { renderList } from './list.js';
import { isCurrent, nextRender, parseHash } from './routes.js';

let first = true;

async function route(site: Site, main: HTMLElement): Promise<void> {
  const token = nextRender();
  const r = parseHash(location.hash);
  const [page, a, b] = r.path;
  const view = h('div', { class: 'view' });
  try {
    if (!page) renderHome(site, view);
    else if (page === 'n' && a) await renderNodePage(site, view, a, r.query, token);
    else if (page === 'c' && a && b !== undefined) await renderColumnPage(site, view, a, b, r.query, token);
    else if (page === 'graph') await renderProjectGraph(site, view, r.query, token);
    else if (page === 'paths') await renderPathsPage(site, view, r.query, token);
    else if (page === 'list') renderList(site, view, r.query);
    else view.append(h('h1', { tabindex: '-1' }, 'Page not found'), h('p', null, h('a', { href: '#/' }, 'Back to the project')));
  } catch (err) {
    view.append(h('h1', { tabindex: '-1' }, 'Could not show this page'), h('p', { role: 'alert' }, String((err as Error).message)));
  }
  if (!isCurrent(token)) return;
  clear(main);
  main.append(view);
  const title = view.querySelector('h1');
  document.title = `${title?.textContent ?? ''} · ${site.index.project} · etl docs`;
  // A new page's heading takes the focus (a screen reader reads where it is now); not on the first
  // page, where the keyboard starts at the top (skip link, navigation, search).
  if (r.query.get('focus') !== 'keep' && !first) (title as HTMLElement | null)?.focus({ preventScroll: true });
  first = false;
  window.scrollTo(0, 0);
  document.dispatchEvent(new CustomEvent('etl:rendered', { detail: { hash: location.hash } }));
}

function shell(site: Site): HTMLElement {
  const main = h('main', { id: 'main', tabindex: '-1' });
  const search = createSearchBox(site, {
    id: 'search',
    label: 'Search models, sources, columns, tags and descriptions',
    placeholder: 'Search ( / )',
    onPick: (href) => {
      location.hash = href.slice(1);
    },
  });
  const header = h(
    'header',
    { class: 'top' },
    h('a', { class: 'skip', href: '#main', onclick: (e: Event) => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
    h('a', { class: 'brand', href: '#/' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), site.index.project),
    h('nav', { 'aria-label': 'Site' }, h('a', { href: '#/' }, 'Home'), h('a', { href: '#/graph' }, 'Graph')),
    search.element,
  );
  document.addEventListener('keydown', (e) => {
    const t = e.target as HTMLElement;
    if (e.key === '/' && !(t instanceof HTMLInputElement) && !(t instanceof HTMLTextAreaElement) && !(t instanceof HTMLSelectElement)) {
      e.preventDefault();
      search.focus();
    }
  });
  const root = document.getElementById('app')!;
  clear(root);
  root.append(header, main);
  return main;
}

startReceiving();
void loadIndex().then((site) => {
  const main = shell(site);
  window.addEventListener('hashchange', () => void route(site, main));
  void route(site, main);
  // Search beyond names needs the search index: fetched once the first page is drawn.
  const later = (window as unknown as { requestIdleCallback?: (f: () => void) => void }).requestIdleCallback ?? ((f: () => void) => setTimeout(f, 50));
  later(() => void site.search().catch(() => undefined));
  watchGenerations();
});

/**
 * Under `etl docs serve` (which marks the page), reload when the site has been
 * generated again, keeping the reader's place (the hash). A static copy never asks.
 */
function watchGenerations(): void {
  const url = document.documentElement.dataset.liveReload;
  if (!url) return;
  let seen: string | undefined;
  const check = () =>
    fetch(url, { cache: 'no-store' })
      .then((r) => (r.ok ? r.text() : undefined))
      .then((g) => {
        if (g === undefined) return;
        if (seen !== undefined && g !== seen) location.reload();
        seen = g;
      })
      .catch(() => undefined) // the server stopped: stay as is
      .finally(() => setTimeout(check, 1500));
  void check();
}
