// catalog.json (dbt's catalog v1): every relation the project builds and every
// source, as the engine's catalog has it after a build: kind (table or view),
// columns with their engine types and positions. Read with one catalog query
// per run over the schemas the project uses (adapter.catalogColumns), so a
// project of 10k models costs one query, not 10k. `etl docs generate` writes
// it (core/docs/history.ts); the docs site and tools written for dbt's catalog read it.

import type { Adapter, AdapterSession, CatalogColumn } from '../../adapters/adapter.js';
import type { Manifest } from '../compiler/manifest.js';
import { ETL_VERSION } from '../compiler/version.js';
import { DBT_VERSION } from './manifest-json.js';

export const CATALOG_SCHEMA = 'https://schemas.getdbt.com/dbt/catalog/v1.json';

export interface CatalogTable {
  metadata: { type: string; schema: string; name: string; database: string | null; comment: null; owner: null };
  columns: Record<string, { type: string; index: number; name: string; comment: null }>;
  stats: Record<string, { id: string; label: string; value: boolean; include: boolean; description: string }>;
  unique_id: string;
}

export interface CatalogJson {
  metadata: { dbt_schema_version: string; dbt_version: string; generated_at: string; invocation_id: string | null; env: Record<string, string> };
  nodes: Record<string, CatalogTable>;
  sources: Record<string, CatalogTable>;
  errors: string[] | null;
}

/** What the catalog describes: built relations (not ephemeral models or tests) and sources. */
function relationsOf(manifest: Manifest): Array<{ id: string; schema: string; name: string; isSource: boolean }> {
  const out: Array<{ id: string; schema: string; name: string; isSource: boolean }> = [];
  for (const n of Object.values(manifest.nodes)) {
    if (n.resource_type === 'test' || !n.relation_name || n.config.materialized === 'ephemeral') continue;
    out.push({ id: n.unique_id, schema: n.schema, name: n.alias, isSource: false });
  }
  for (const s of Object.values(manifest.sources)) out.push({ id: s.unique_id, schema: s.schema, name: s.identifier, isSource: true });
  return out;
}

/** Reads the catalog of what `manifest` describes from the target `adapter` is connected to. */
export async function buildCatalog(adapter: Adapter, session: AdapterSession, manifest: Manifest, invocationId: string | null = null): Promise<CatalogJson> {
  const relations = relationsOf(manifest);
  const schemas = [...new Set(relations.map((r) => r.schema))].sort();
  const database = (await adapter.databaseName?.(session)) ?? null;
  let columns: CatalogColumn[];
  if (adapter.catalogColumns) {
    columns = await adapter.catalogColumns(session, schemas);
  } else {
    // An engine without a catalog query: relation by relation.
    columns = [];
    for (const r of relations) {
      const kind = await adapter.relationKind(session, { schema: r.schema, name: r.name });
      if (!kind) continue;
      (await adapter.listColumns(session, { schema: r.schema, name: r.name })).forEach((c, i) => columns.push({ schema: r.schema, table: r.name, kind, column: c.name, type: c.type, index: i + 1 }));
    }
  }
  const byRelation = new Map<string, CatalogColumn[]>();
  for (const c of columns) {
    const key = `${c.schema}\u0000${c.table}`;
    let list = byRelation.get(key);
    if (!list) byRelation.set(key, (list = []));
    list.push(c);
  }
  const catalog: CatalogJson = {
    metadata: { dbt_schema_version: CATALOG_SCHEMA, dbt_version: DBT_VERSION, generated_at: new Date().toISOString(), invocation_id: invocationId, env: { etl_version: ETL_VERSION } },
    nodes: {},
    sources: {},
    errors: null,
  };
  for (const r of relations) {
    const cols = byRelation.get(`${r.schema}\u0000${r.name}`);
    if (!cols) continue; // not built (yet) in this target
    const table: CatalogTable = {
      metadata: { type: cols[0]!.kind === 'view' ? 'VIEW' : 'BASE TABLE', schema: r.schema, name: r.name, database, comment: null, owner: null },
      columns: Object.fromEntries(cols.map((c) => [c.column, { type: c.type, index: c.index, name: c.column, comment: null }])),
      stats: { has_stats: { id: 'has_stats', label: 'Has Stats?', value: false, include: false, description: 'Indicates whether there are statistics for this table' } },
      unique_id: r.id,
    };
    (r.isSource ? catalog.sources : catalog.nodes)[r.id] = table;
  }
  return catalog;
}
