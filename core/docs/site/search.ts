// Search as you type over node names, tags, column names and descriptions,
// fuzzy (uFuzzy: one typo or missing letter per term), as an ARIA combobox:
// arrows move, Enter opens, Escape closes. Names and tags come with the
// index; columns and descriptions once data/search.js has arrived.

import uFuzzy from '@leeoniya/ufuzzy';
import type { SearchIndex } from '../model.js';
import { h, clear } from './dom.js';
import type { Site } from './data.js';
import { columnHref, nodeHref } from './routes.js';

export interface SearchResult {
  kind: string;
  label: string;
  detail: string;
  href: string;
  /** The node the result is about, if one. */
  node?: number;
}

const fuzzy = new uFuzzy({ intraMode: 1, intraIns: 1, intraSub: 1, intraTrn: 1, intraDel: 1, interIns: 3 });

const RANKED = 200;

/** Indices of haystack matching needle, best first, at most limit. */
function rank(haystack: string[], needle: string, limit: number): number[] {
  // Ranking is the costly part: beyond RANKED matches the shortest names come first instead.
  // (Matches of the previous keystroke are not reused: with typos allowed inside a word,
  // a longer word can match what its prefix did not.)
  const [idxs, info, order] = fuzzy.search(haystack, needle, 0, RANKED);
  if (!idxs) return [];
  if (info && order) return order.slice(0, limit).map((k) => info.idx[k]!);
  // Too many matches to rank them all: shortest first.
  return [...idxs].sort((a, b) => haystack[a]!.length - haystack[b]!.length).slice(0, limit);
}

const lowered = new WeakMap<string[], string[]>();

/** Descriptions: every word of the query, as typed, somewhere in the text (prose needs no fuzziness, and this is fast). */
function containing(texts: string[], query: string, limit: number): number[] {
  let lower = lowered.get(texts);
  if (!lower) lowered.set(texts, (lower = texts.map((t) => t.toLowerCase())));
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const out: number[] = [];
  for (let i = 0; i < lower.length && out.length < limit; i++) if (words.every((w) => lower![i]!.includes(w))) out.push(i);
  return out;
}

export function searchSite(site: Site, search: SearchIndex | undefined, query: string, options: { nodesOnly?: boolean } = {}): SearchResult[] {
  const q = query.trim();
  if (!q) return [];
  const out: SearchResult[] = [];
  const names = site.index.names;
  for (const i of rank(names, q, options.nodesOnly ? 20 : 12)) {
    out.push({ kind: site.type(i), label: names[i]!, detail: site.folder(i), href: nodeHref(site, i), node: i });
  }
  if (options.nodesOnly) return out;
  for (const t of rank(site.index.tags, q, 3)) {
    const tag = site.index.tags[t]!;
    out.push({ kind: 'tag', label: tag, detail: 'tag', href: `#/list?tag=${encodeURIComponent(tag)}` });
  }
  if (search) {
    let n = 0;
    for (const c of rank(search.columns, q, 5)) {
      for (const i of search.col_nodes[c]!) {
        if (n++ >= 8) break;
        out.push({ kind: 'column', label: `${names[i]}.${search.columns[c]}`, detail: site.folder(i), href: columnHref(site.index.ids[i]!, search.columns[c]!), node: i });
      }
    }
    if (q.length >= 3) {
      let m = 0;
      for (const t of containing(search.texts, q, 6)) {
        const refs = search.text_refs[t]!;
        for (let k = 0; k < refs.length && m < 6; k += 2, m++) {
          const i = refs[k] as number;
          const col = refs[k + 1] as string;
          out.push({ kind: 'description', label: col ? `${names[i]}.${col}` : names[i]!, detail: search.texts[t]!, href: col ? columnHref(site.index.ids[i]!, col) : nodeHref(site, i), node: i });
        }
      }
    }
  }
  return out;
}

let boxes = 0;

export function createSearchBox(site: Site, options: { id: string; label: string; placeholder: string; nodesOnly?: boolean; onPick(href: string, result: SearchResult): void }) {
  const n = ++boxes;
  const listId = `${options.id}-results`;
  let results: SearchResult[] = [];
  let active = -1;
  let index: SearchIndex | undefined;
  const input = h('input', {
    id: options.id,
    type: 'search',
    role: 'combobox',
    'aria-autocomplete': 'list',
    'aria-expanded': 'false',
    'aria-controls': listId,
    'aria-label': options.label,
    placeholder: options.placeholder,
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const list = h('ul', { id: listId, role: 'listbox', class: 'results', 'aria-label': 'Search results', hidden: true });
  const status = h('div', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });

  const close = () => {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  };
  const setActive = (k: number) => {
    const items = list.children;
    if (active >= 0) items[active]?.setAttribute('aria-selected', 'false');
    active = k;
    if (k < 0) return input.removeAttribute('aria-activedescendant');
    const el = items[k] as HTMLElement;
    el.setAttribute('aria-selected', 'true');
    input.setAttribute('aria-activedescendant', el.id);
    el.scrollIntoView({ block: 'nearest' });
  };
  const pick = (k: number) => {
    const r = results[k];
    if (!r) return;
    close();
    input.value = '';
    options.onPick(r.href, r);
  };
  const update = () => {
    results = searchSite(site, index, input.value, { nodesOnly: options.nodesOnly });
    clear(list);
    results.forEach((r, k) => {
      list.append(
        h(
          'li',
          { id: `s${n}-${k}`, role: 'option', 'aria-selected': 'false', class: `kind-${r.kind}`, onmousedown: (e: Event) => { e.preventDefault(); pick(k); } },
          h('span', { class: 'kind' }, r.kind),
          h('span', { class: 'label' }, r.label),
          h('span', { class: 'detail' }, r.detail),
        ),
      );
    });
    const open = input.value.trim() !== '';
    list.hidden = !open;
    input.setAttribute('aria-expanded', String(open));
    if (open && results.length === 0) list.append(h('li', { class: 'empty', role: 'option', 'aria-disabled': 'true' }, 'No match'));
    status.textContent = open ? `${results.length} result${results.length === 1 ? '' : 's'}` : '';
    active = -1;
    if (results.length) setActive(0);
  };
  input.addEventListener('input', update);
  input.addEventListener('focus', () => {
    if (!index && !options.nodesOnly) {
      void site.search().then((s) => {
        index = s;
        if (input.value) update();
      });
    }
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      if (results.length) setActive((active + 1) % results.length);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      if (results.length) setActive((active - 1 + results.length) % results.length);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      pick(active < 0 ? 0 : active);
    } else if (e.key === 'Escape') {
      if (!list.hidden) {
        e.preventDefault();
        close();
      } else input.value = '';
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 100));
  const element = h('div', { class: 'search', role: 'search' }, input, list, status);
  return { element, focus: () => input.focus(), input };
}
