// The site's addresses: hash routes, so every page works from file:// and
// from any static host without server rewrites.

import type { Site } from './data.js';

export interface Route {
  path: string[];
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const cut = raw.indexOf('?');
  const p = cut < 0 ? raw : raw.slice(0, cut);
  const q = cut < 0 ? '' : raw.slice(cut + 1);
  return { path: p.split('/').filter(Boolean).map((s) => decodeURIComponent(s)), query: new URLSearchParams(q) };
}

export function nodeHref(site: Site, i: number): string {
  return `#/n/${encodeURIComponent(site.index.ids[i]!)}`;
}

export function columnHref(id: string, column: string): string {
  return `#/c/${encodeURIComponent(id)}/${encodeURIComponent(column)}`;
}

let renderToken = 0;

/** Starts a render; an async page checks isCurrent(token) before drawing, so a late page never replaces a newer one. */
export function nextRender(): number {
  return ++renderToken;
}

export function isCurrent(token: number): boolean {
  return token === renderToken;
}
