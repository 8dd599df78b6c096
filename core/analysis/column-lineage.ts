// Column lineage of a whole project, written as target/lineage.json: for
// every model column, its upstream columns (core/analysis/lineage.ts over
// DuckDB's parse of the compiled SQL, `select *` expanded with the bound
// schemas), and a description inherited along pass-through lineage where
// the model does not describe the column. Parses are cached by a hash of
// the SQL and of its inputs' columns, so a warm run parses only what changed.

import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { readJsonIfExists, writeFileAtomic } from '../compiler/artifacts.js';
import type { Manifest } from '../compiler/manifest.js';
import { ETL_VERSION } from '../compiler/version.js';
import { ephemeralCteName } from '../compiler/ephemeral.js';
import { buildGraph, topologicalOrder } from '../graph/graph.js';
import type { BoundColumn } from './binder.js';
import { DuckDbBinder } from './binder.js';
import { seedColumnTypes } from '../../adapters/index.js';
import { hashOf } from './cache.js';
import { queryLineage, type ColumnLineage, type KnownRelation, type UpstreamColumn } from './lineage.js';

export const LINEAGE_FILE = 'lineage.json';
const CACHE_FILE = path.join('.etl', 'lineage-cache.json');

export interface LineageColumn extends ColumnLineage {
  data_type?: string;
  inherited_description?: { text: string; from: UpstreamColumn };
}

export interface LineageArtifact {
  metadata: { generated_at: string; invocation_id: string; etl_version: string };
  nodes: Record<string, { columns: Record<string, LineageColumn> }>;
}

interface LineageCache {
  etl_version: string;
  entries: Record<string, { key: string; columns: Record<string, ColumnLineage> }>;
}

export interface ProjectLineageOptions {
  /**
   * Without a bind (`etl docs generate`): every model is traced, and its
   * output names are the ones the parse gives (an alias, a column's name, a
   * `select *` expanded with its inputs' columns, traced in graph order).
   * `columns` then only holds what is known without binding (the target's
   * catalog): a model's catalog names replace the parsed ones when as many;
   * seeds it lacks are described with DuckDB's CSV sniffing.
   */
  derive?: boolean;
  /** Models already parsed by prefetchLineage (compile --check starts it before writing its artifacts). */
  prefetched?: LineagePrefetch;
}

/** The lineage cache as read, and the parse trees of the models it has no entry for (a cold target: all of them). */
export interface LineagePrefetch {
  cache: LineageCache;
  parsed: Promise<Map<string, string>>;
}

/**
 * Starts DuckDB parsing, on its own thread, every model the lineage cache has
 * no entry for, so that the parse runs while the caller writes its artifacts
 * on the main thread rather than after them. Models whose entry is only stale
 * are parsed by projectLineage (their key needs the bound columns).
 */
export function prefetchLineage(manifest: Manifest, targetPath: string): LineagePrefetch {
  const cache = readCache(targetPath);
  const ids = Object.keys(manifest.nodes).filter((id) => {
    const n = manifest.nodes[id]!;
    return (n.resource_type === 'model' || n.resource_type === 'snapshot') && !cache.entries[id];
  });
  const parsed = ids.length
    ? (async () => {
        const binder = await DuckDbBinder.open();
        try {
          const trees = await binder.parseAll(ids.map((id) => manifest.nodes[id]!.compiled_code));
          return new Map(ids.map((id, i) => [id, trees[i]!]));
        } finally {
          binder.close();
        }
      })()
    : Promise.resolve(new Map<string, string>());
  // A failure surfaces where projectLineage awaits it; never as an unhandled rejection meanwhile.
  parsed.catch(() => undefined);
  return { cache, parsed };
}

function readCache(targetPath: string): LineageCache {
  const read = readJsonIfExists<LineageCache>(path.join(targetPath, CACHE_FILE));
  return read?.etl_version === ETL_VERSION ? read : { etl_version: ETL_VERSION, entries: {} };
}

/** Lineage of every model whose columns are known; `columns` are the bound schemas (core/analysis/check.ts), or see `derive`. */
export async function projectLineage(manifest: Manifest, columns: Map<string, BoundColumn[]>, targetPath: string, options: ProjectLineageOptions = {}): Promise<LineageArtifact> {
  const derive = options.derive === true;
  let binder: Promise<DuckDbBinder> | undefined;
  const openBinder = () => (binder ??= DuckDbBinder.open());
  try {
    if (derive) await describeSeeds(manifest, columns, openBinder);
    return await traceProject(manifest, columns, targetPath, derive, openBinder, options.prefetched);
  } finally {
    if (binder) (await binder).close();
  }
}

async function traceProject(manifest: Manifest, columns: Map<string, BoundColumn[]>, targetPath: string, derive: boolean, openBinder: () => Promise<DuckDbBinder>, prefetched?: LineagePrefetch): Promise<LineageArtifact> {
  const relations = new Map<string, KnownRelation>();
  const colsOf = (id: string, declared: Record<string, { name: string }>) => (columns.get(id) ?? Object.values(declared)).map((c) => c.name);
  for (const n of Object.values(manifest.nodes)) {
    if (n.resource_type === 'test') continue;
    const known = { node: n.unique_id, columns: colsOf(n.unique_id, n.columns) };
    if (n.relation_name) relations.set(`${n.schema}.${n.alias}`.toLowerCase(), known);
    else if (n.config.materialized === 'ephemeral') relations.set(ephemeralCteName(n.name).toLowerCase(), known);
  }
  for (const s of Object.values(manifest.sources)) relations.set(`${s.schema}.${s.identifier}`.toLowerCase(), { node: s.unique_id, columns: colsOf(s.unique_id, s.columns) });

  const cacheFile = path.join(targetPath, CACHE_FILE);
  const cache = prefetched?.cache ?? readCache(targetPath);
  let changed = false;
  const ids = Object.keys(manifest.nodes).filter((id) => {
    const n = manifest.nodes[id]!;
    return (n.resource_type === 'model' || n.resource_type === 'snapshot') && (derive || columns.has(id));
  });
  const traced = new Set(ids);
  const order = topologicalOrder(buildGraph(ids, (id) => manifest.nodes[id]!.depends_on.nodes)).order ?? [];
  const out: LineageArtifact['nodes'] = {};
  const keys = new Map<string, string>();
  const toParse: string[] = [];
  for (const id of order) {
    const n = manifest.nodes[id]!;
    const known = columns.get(id)?.map((c) => c.name).join(',') ?? '';
    // A derived model's columns follow from its own key: its parents' keys stand for their columns.
    const input = (p: string) => (derive && traced.has(p) ? `${p}#${keys.get(p)}` : `${p}=${(relations.get(relationKey(manifest, p)) ?? { columns: [] }).columns.join(',')}`);
    const key = hashOf([derive ? 'derive' : 'bound', n.compiled_code, known, ...n.depends_on.nodes.map(input)]);
    keys.set(id, key);
    if (cache.entries[id]?.key !== key) toParse.push(id);
  }
  // One parse for every model that changed (but those prefetched), in one round trip; each tree read from its JSON when traced.
  const parsed = new Map<string, string>();
  const early = (await prefetched?.parsed) ?? new Map<string, string>();
  const rest = toParse.filter((id) => !early.has(id));
  for (const id of toParse) if (early.has(id)) parsed.set(id, early.get(id)!);
  if (rest.length) {
    const trees = await (await openBinder()).parseAll(rest.map((id) => manifest.nodes[id]!.compiled_code));
    rest.forEach((id, i) => parsed.set(id, trees[i]!));
  }
  for (const id of order) {
    const n = manifest.nodes[id]!;
    const text = parsed.get(id);
    if (text !== undefined) {
      const tree = JSON.parse(text) as Record<string, unknown>;
      const bound = derive ? undefined : columns.get(id)!.map((c) => c.name);
      let lineage = [...queryLineage(n.compiled_code, tree, { relations, outputColumns: bound })];
      const catalog = derive ? columns.get(id) : undefined;
      // The engine's names (an expression without an alias) where the catalog agrees on the width.
      if (catalog && catalog.length === lineage.length) lineage = lineage.map(([, l], i) => [catalog[i]!.name, l]);
      cache.entries[id] = { key: keys.get(id)!, columns: Object.fromEntries(lineage) };
      changed = true;
    }
    // Graph order: a child reading this model with `select *` sees the columns just traced.
    if (derive) {
      const rel = relations.get(relationKey(manifest, id));
      if (rel) rel.columns = Object.keys(cache.entries[id]!.columns);
    }
  }
  for (const id of order) {
    const types = new Map((columns.get(id) ?? []).map((c) => [c.name, c.type]));
    out[id] = { columns: Object.fromEntries(Object.entries(cache.entries[id]!.columns).map(([c, l]) => [c, { data_type: types.get(c), ...l }])) };
  }
  if (changed) writeFileAtomic(cacheFile, JSON.stringify(cache));
  inheritDescriptions(manifest, order, out);
  return { metadata: { generated_at: new Date().toISOString(), invocation_id: randomUUID(), etl_version: ETL_VERSION }, nodes: out };
}

/** Seeds the catalog does not know, described as the check does (DuckDB's CSV sniffing, or the engine's own). */
async function describeSeeds(manifest: Manifest, columns: Map<string, BoundColumn[]>, openBinder: () => Promise<DuckDbBinder>): Promise<void> {
  const engineType = manifest.metadata.adapter_type as 'duckdb' | 'postgres' | 'delta';
  for (const n of Object.values(manifest.nodes)) {
    if (n.resource_type !== 'seed' || columns.has(n.unique_id)) continue;
    const csv = path.join(manifest.metadata.project_root, n.original_file_path);
    try {
      columns.set(n.unique_id, await seedColumnTypes(engineType, csv, { columnTypes: n.config.column_types ?? {}, delimiter: n.config.delimiter }, async (sql) => (await openBinder()).describe(sql)));
    } catch {
      // An unreadable seed: its readers' columns are unresolved, with the reason (the check reports the seed).
    }
  }
}

function relationKey(manifest: Manifest, id: string): string {
  const n = manifest.nodes[id];
  if (n) return (n.relation_name ? `${n.schema}.${n.alias}` : ephemeralCteName(n.name)).toLowerCase();
  const s = manifest.sources[id];
  return s ? `${s.schema}.${s.identifier}`.toLowerCase() : '';
}

/**
 * A column the model does not describe takes the description of the column
 * it passes through (dbt #2995), following pass-through hops upstream; the
 * entry says where the text came from. Parents come first in `order`.
 */
function inheritDescriptions(manifest: Manifest, order: string[], nodes: LineageArtifact['nodes']): void {
  const describedAt = (u: UpstreamColumn): { text: string; from: UpstreamColumn } | undefined => {
    const owner = manifest.nodes[u.node] ?? manifest.sources[u.node];
    const own = owner ? Object.values(owner.columns).find((c) => c.name.toLowerCase() === u.column.toLowerCase())?.description : undefined;
    if (own) return { text: own, from: u };
    return nodes[u.node]?.columns[u.column]?.inherited_description;
  };
  for (const id of order) {
    const n = manifest.nodes[id]!;
    for (const [name, col] of Object.entries(nodes[id]?.columns ?? {})) {
      const own = Object.values(n.columns).find((c) => c.name.toLowerCase() === name.toLowerCase())?.description;
      if (own || col.kind !== 'passthrough' || col.upstream.length === 0) continue;
      const found = col.upstream.map(describedAt);
      // Several upstreams (a union, USING) must agree, or nothing is inherited.
      if (found[0] && found.every((f) => f?.text === found[0]!.text)) col.inherited_description = found[0];
    }
  }
}

/** Writes target/lineage.json; returns its text. */
export function writeLineageArtifact(targetPath: string, artifact: LineageArtifact): string {
  const json = JSON.stringify(artifact);
  writeFileAtomic(path.join(targetPath, LINEAGE_FILE), json);
  return json;
}
