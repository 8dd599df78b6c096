// Loads the site's data files (see ../model.ts): each is a classic script
// that calls window.etlDocs(key, value). index.html defines etlDocs before
// any script runs and queues what arrives before this module takes over.

import type { SearchIndex, SiteIndex, SiteNode } from '../model.js';
import { RESOURCE_TYPES, SHARD_SIZE } from '../model.js';

declare global {
  interface Window {
    __etl: { q: Array<[string, unknown]>; cb?: (key: string, value: unknown) => void; stamp: string };
  }
}

const values = new Map<string, unknown>();
const waiting = new Map<string, Array<(v: unknown) => void>>();
const requested = new Set<string>();

function receive(key: string, value: unknown): void {
  values.set(key, value);
  for (const resolve of waiting.get(key) ?? []) resolve(value);
  waiting.delete(key);
}

export function startReceiving(): void {
  for (const [k, v] of window.__etl.q) receive(k, v);
  window.__etl.q = [];
  window.__etl.cb = receive;
  requested.add('index'); // index.html's own <script> tag brings it
}

function load<T>(key: string, src: string): Promise<T> {
  if (values.has(key)) return Promise.resolve(values.get(key) as T);
  return new Promise<T>((resolve, reject) => {
    let list = waiting.get(key);
    if (!list) waiting.set(key, (list = []));
    list.push(resolve as (v: unknown) => void);
    if (requested.has(key)) return;
    requested.add(key);
    const script = document.createElement('script');
    script.src = `${src}?v=${window.__etl.stamp}`;
    script.onerror = () => {
      requested.delete(key);
      reject(new Error(`could not load ${src}`));
    };
    document.head.appendChild(script);
  });
}

export function loadScript(src: string, global: string): Promise<void> {
  if ((window as unknown as Record<string, unknown>)[global]) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = `${src}?v=${window.__etl.stamp}`;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(script);
  });
}

/** The index plus what the pages derive from it once. */
export class Site {
  readonly byId = new Map<string, number>();
  readonly children: number[][];
  constructor(readonly index: SiteIndex) {
    index.ids.forEach((id, i) => this.byId.set(id, i));
    this.children = index.ids.map(() => []);
    index.parents.forEach((ps, i) => {
      for (const p of ps) this.children[p]!.push(i);
    });
  }
  get size(): number {
    return this.index.ids.length;
  }
  type(i: number): string {
    return RESOURCE_TYPES[this.index.types[i]!]!;
  }
  folder(i: number): string {
    return this.index.folders[this.index.folder[i]!]!;
  }
  tags(i: number): string[] {
    const t = this.index.node_tags[i];
    return t ? t.map((k) => this.index.tags[k]!) : [];
  }
  node(i: number): Promise<SiteNode> {
    const k = Math.floor(i / SHARD_SIZE);
    return load<SiteNode[]>(`s${k}`, `data/nodes/${k}.js`).then((shard) => shard[i % SHARD_SIZE]!);
  }
  nodeById(id: string): Promise<SiteNode> | undefined {
    const i = this.byId.get(id);
    return i === undefined ? undefined : this.node(i);
  }
  search(): Promise<SearchIndex> {
    return load<SearchIndex>('search', 'data/search.js');
  }
}

export function loadIndex(): Promise<Site> {
  return load<SiteIndex>('index', 'data/index.js').then((index) => new Site(index));
}
