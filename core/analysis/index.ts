// Static analysis as the API uses it: the check stage wired to a target (its
// catalog read once for sources and for incremental models' current
// columns), and the bound columns written into the manifest where dbt's
// schema has room for them (columns.<name>.data_type).

import type { Adapter, ColumnDef, Relation } from '../../adapters/adapter.js';
import { createAdapter, opensWithoutWriting, targetLocation } from '../../adapters/index.js';
import { existsSync } from 'node:fs';
import { dialectFor } from '../../adapters/dialect.js';
import type { Manifest } from '../compiler/manifest.js';
import type { TargetConfig } from '../project/load.js';
import { checkManifest, type CheckResult as BaseCheckResult } from './check.js';

export type { BoundColumn } from './check.js';
export type CheckResult = BaseCheckResult & { manifestChanged?: boolean };

export interface CheckProjectOptions {
  target: TargetConfig;
  projectRoot: string;
  targetPath: string;
  selected?: Iterable<string>;
  /** An adapter already open on the target (a run's); otherwise one is opened read-only when the target exists. */
  adapter?: Adapter;
  allowMissingSources?: boolean;
  cache?: boolean;
}

/** Checks a compiled manifest against the target's catalog; the manifest's columns gain the bound types. */
export async function checkProject(manifest: Manifest, options: CheckProjectOptions): Promise<CheckResult> {
  let opened: Promise<Adapter | undefined> | undefined;
  const adapter = () =>
    (opened ??= options.adapter
      ? Promise.resolve(options.adapter)
      : openReadOnly(options.target, options.projectRoot));
  const readCatalog = async (relations: Relation[]): Promise<Map<string, ColumnDef[]>> => {
    const out = new Map<string, ColumnDef[]>();
    const a = await adapter();
    if (!a) return out;
    await a.withSession(async (s) => {
      for (const r of relations) out.set(`${r.schema}.${r.name}`, await a.listColumns(s, r));
    });
    return out;
  };
  const canRead = !!options.adapter || targetExists(options.target, options.projectRoot);
  try {
    const result: CheckResult = await checkManifest(manifest, options.targetPath, {
      selected: options.selected,
      readCatalog: canRead ? readCatalog : undefined,
      allowMissingSources: options.allowMissingSources,
      cache: options.cache,
      bindOnTarget:
        canRead && dialectFor(options.target.type).bindsOnServer
          ? async (request) => {
              const a = await adapter();
              if (!a) return undefined;
              const { bindOnPostgres } = await import('./postgres-binder.js');
              return bindOnPostgres(a, request);
            }
          : undefined,
    });
    if (canRead && result.errors.length === 0) result.schemaChanges = await predictSchemaChanges(manifest, result, readCatalog);
    result.manifestChanged = applyBoundColumns(manifest, result);
    return result;
  } finally {
    if (opened && !options.adapter) await (await opened)?.close();
  }
}

/** A server target exists; an embedded one once its file or folder does (opening it would create it). */
function targetExists(target: TargetConfig, root: string): boolean {
  if (opensWithoutWriting(target)) return true;
  const location = targetLocation(target, root);
  return !!location && existsSync(location);
}

async function openReadOnly(target: TargetConfig, root: string): Promise<Adapter | undefined> {
  try {
    const a = await createAdapter(target, root, { readOnly: true });
    await a.open();
    return a;
  } catch {
    // Locked by a running build, or unreachable: no catalog this time.
    return undefined;
  }
}

/** Incremental models whose bound columns differ from the table's current ones (on_schema_change on the next run). */
async function predictSchemaChanges(manifest: Manifest, result: CheckResult, readCatalog: (r: Relation[]) => Promise<Map<string, ColumnDef[]>>): Promise<CheckResult['schemaChanges']> {
  const models = [...result.columns.keys()].map((id) => manifest.nodes[id]).filter((n) => n?.config.materialized === 'incremental' && n.relation_name);
  if (!models.length) return [];
  const current = await readCatalog(models.map((n) => ({ schema: n!.schema, name: n!.alias })));
  const canonical = dialectFor(manifest.metadata.adapter_type as 'duckdb').canonicalType;
  const out: CheckResult['schemaChanges'] = [];
  for (const n of models) {
    const existing = current.get(`${n!.schema}.${n!.alias}`);
    if (!existing?.length) continue;
    const now = new Map(result.columns.get(n!.unique_id)!.map((c) => [c.name.toLowerCase(), c.type]));
    const before = new Map(existing.map((c) => [c.name.toLowerCase(), c.type]));
    const added = [...now.keys()].filter((c) => !before.has(c));
    const removed = [...before.keys()].filter((c) => !now.has(c));
    const retyped = [...now.keys()].filter((c) => before.has(c) && canonical(before.get(c)!) !== canonical(now.get(c)!));
    if (added.length || removed.length || retyped.length) out.push({ unique_id: n!.unique_id, added, removed, retyped });
  }
  return out;
}

/**
 * Bound types go into the manifest's `columns` (data_type), adding the
 * columns a yml does not describe. A model with an enforced contract keeps
 * exactly its declared columns: the contract is checked against those.
 */
export function applyBoundColumns(manifest: Manifest, result: CheckResult): boolean {
  let changed = false;
  for (const [id, cols] of result.columns) {
    const node = manifest.nodes[id] ?? manifest.sources[id];
    if (!node || ('config' in node && node.config.contract?.enforced)) continue;
    const declared = new Map(Object.values(node.columns).map((c) => [c.name.toLowerCase(), c]));
    const next: typeof node.columns = {};
    for (const c of cols) {
      const d = declared.get(c.name.toLowerCase());
      declared.delete(c.name.toLowerCase());
      // A column that has its type already is kept as it is (the same object: compared below by identity).
      next[d?.name ?? c.name] = d?.data_type ? d : d ? { ...d, data_type: c.type } : { name: c.name, description: '', data_type: c.type, meta: {}, tags: [] };
    }
    for (const d of declared.values()) next[d.name] = d;
    if (sameEntries(node.columns, next)) continue;
    node.columns = next;
    changed = true;
  }
  return changed;
}

/** The same keys in the same order, each the same object. */
function sameEntries(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}
