// on_schema_change for incremental models: compares the new rows' columns
// with the existing table's and decides which columns to insert and which
// column changes to make first (in the same transaction as the rows).

import type { Adapter, AdapterSession, ColumnChange, ColumnDef, Relation } from '../../adapters/adapter.js';
import type { ManifestNode } from '../compiler/manifest.js';
import { formatTable } from '../reporting/table.js';

export class SchemaChangeError extends Error {}

export interface SchemaPlan {
  columns: string[];
  changes: ColumnChange[];
}

interface ColumnDiff {
  existing: ColumnDef[];
  added: ColumnDef[];
  removed: ColumnDef[];
  changed: Array<ColumnDef & { from: string }>;
  common: string[];
  /** The differences as a table, for messages. */
  table(): string;
}

/**
 * The table's columns: read here, or read already by the caller (`known`, while it waited for its source); the
 * new rows' likewise (`stagedKnown`: a stage that made its columns with the types it was given, StagedTable.columns).
 */
async function diffColumns(adapter: Adapter, session: AdapterSession, target: Relation, staged: Relation, internal: string[], known?: ColumnDef[], stagedKnown?: ColumnDef[]): Promise<ColumnDiff> {
  const existing = known ?? (await adapter.listColumns(session, target));
  const incoming = (stagedKnown ?? (await adapter.listColumns(session, staged))).filter((c) => !internal.includes(c.name));
  const canonical = (t: string) => adapter.dialect.canonicalType(t);
  const byName = (cols: ColumnDef[]) => new Map(cols.map((c) => [c.name.toLowerCase(), c]));
  const oldCols = byName(existing);
  const newCols = byName(incoming);
  const added = incoming.filter((c) => !oldCols.has(c.name.toLowerCase()));
  const removed = existing.filter((c) => !newCols.has(c.name.toLowerCase()));
  const changed = incoming.flatMap((c) => {
    const o = oldCols.get(c.name.toLowerCase());
    return o && canonical(o.type) !== canonical(c.type) ? [{ ...c, from: o.type }] : [];
  });
  const common = existing.filter((c) => newCols.has(c.name.toLowerCase())).map((c) => c.name);
  const table = () =>
    formatTable(
      ['column', 'in the table', 'in the new rows'],
      [...added.map((c) => [c.name, '(absent)', c.type]), ...removed.map((c) => [c.name, c.type, '(absent)']), ...changed.map((c) => [c.name, c.from, c.type])],
    );
  return { existing, added, removed, changed, common, table };
}

/** What a loader's default handling of source drift did: reported in run_results. */
export interface DriftPlan extends SchemaPlan {
  added: string[];
  /** Columns gone at the source: kept in the table, NULL in new rows (a warning). */
  removed: string[];
  /** Columns whose type widened at the source (int -> bigint, numeric(10,2) -> numeric(12,2), anything -> text). */
  widened: string[];
}

/**
 * A loader's default on_schema_change: new columns are added, removed ones
 * kept (a warning), a type that widens is widened, any other type change
 * fails the load and leaves the table as it was.
 */
export async function planSourceDrift(adapter: Adapter, session: AdapterSession, node: ManifestNode, target: Relation, staged: Relation, internal: string[] = [], targetColumns?: ColumnDef[], stagedColumns?: ColumnDef[]): Promise<DriftPlan> {
  const d = await diffColumns(adapter, session, target, staged, internal, targetColumns, stagedColumns);
  const canonical = (t: string) => adapter.dialect.canonicalType(t);
  const narrowing = d.changed.filter((c) => !widens(canonical(c.from), canonical(c.type)));
  if (narrowing.length) {
    throw new SchemaChangeError(
      `the type of ${narrowing.map((c) => `${c.name} (${c.from} -> ${c.type})`).join(', ')} changed at the source of ${node.name} in a way the raw table cannot take; the table is unchanged\n${d.table()}\n` +
        'run with --full-refresh to reload it with the new types, or set on_schema_change: sync_all_columns on the loader',
    );
  }
  return {
    columns: [...d.common, ...d.added.map((c) => c.name)],
    changes: [
      ...d.added.map((c): ColumnChange => ({ kind: 'add', column: c.name, type: c.type })),
      ...d.changed.map((c): ColumnChange => ({ kind: 'alter_type', column: c.name, from: c.from, type: c.type })),
    ],
    added: d.added.map((c) => c.name),
    removed: d.removed.map((c) => c.name),
    widened: d.changed.map((c) => c.name),
  };
}

const INTEGER_WIDTH: Record<string, number> = { tinyint: 1, smallint: 2, integer: 4, bigint: 8, hugeint: 16 };

/** Whether every value of type `from` (canonical) is a value of `to`. */
function widens(from: string, to: string): boolean {
  if (to === 'varchar') return true;
  if (from in INTEGER_WIDTH && to in INTEGER_WIDTH) return INTEGER_WIDTH[to]! >= INTEGER_WIDTH[from]!;
  if (from in INTEGER_WIDTH && to === 'double') return INTEGER_WIDTH[from]! <= 4;
  if (from === 'real' && to === 'double') return true;
  if (from === 'date' && (to === 'timestamp' || to === 'timestamptz')) return true;
  const dec = (t: string) => /^decimal\((\d+),(\d+)\)$/.exec(t);
  const a = dec(from);
  const b = dec(to);
  if (a && b) return Number(b[2]) >= Number(a[2]) && Number(b[1]) - Number(b[2]) >= Number(a[1]) - Number(a[2]);
  if (from in INTEGER_WIDTH && b) return Number(b[1]) - Number(b[2]) >= [3, 5, 10, 19, 39][Math.log2(INTEGER_WIDTH[from]!)]!;
  return false;
}

export async function planSchemaChange(adapter: Adapter, session: AdapterSession, node: ManifestNode, target: Relation, staged: Relation, internal: string[] = [], targetColumns?: ColumnDef[], stagedColumns?: ColumnDef[]): Promise<SchemaPlan> {
  const d = await diffColumns(adapter, session, target, staged, internal, targetColumns, stagedColumns);
  const { added, removed, changed, common } = d;
  const mode = node.config.on_schema_change ?? 'ignore';
  if (added.length === 0 && removed.length === 0 && changed.length === 0) return { columns: common, changes: [] };
  const diff = d.table;
  switch (mode) {
    case 'ignore':
      // New columns are left out; a type change is left to the engine's insert casts.
      return { columns: common, changes: [] };
    case 'fail':
      throw new SchemaChangeError(
        `the columns of ${node.name} changed and on_schema_change is fail; the table is unchanged\n${diff()}\n` +
          'run with --full-refresh to rebuild it, or set on_schema_change: append_new_columns or sync_all_columns',
      );
    case 'append_new_columns':
      return {
        columns: [...common, ...added.map((c) => c.name)],
        changes: added.map((c) => ({ kind: 'add', column: c.name, type: c.type })),
      };
    case 'sync_all_columns':
      return {
        columns: [...common, ...added.map((c) => c.name)],
        changes: [
          ...added.map((c): ColumnChange => ({ kind: 'add', column: c.name, type: c.type })),
          ...removed.map((c): ColumnChange => ({ kind: 'drop', column: c.name })),
          ...changed.map((c): ColumnChange => ({ kind: 'alter_type', column: c.name, from: c.from, type: c.type })),
        ],
      };
  }
}

/** Rewrites an engine's refusal of a type change into a message about the model. */
export function explainSchemaChangeFailure(node: ManifestNode, plan: SchemaPlan, err: unknown): Error {
  const alter = plan.changes.filter((c): c is Extract<ColumnChange, { kind: 'alter_type' }> => c.kind === 'alter_type');
  const message = (err as Error)?.message ?? String(err);
  if (alter.length && /cast|convert|type/i.test(message)) {
    const list = alter.map((c) => `${c.column}: ${c.from} -> ${c.type}`).join(', ');
    return new SchemaChangeError(`cannot change the type of ${list} in ${node.name}: ${message}\n  the table is unchanged; run with --full-refresh to rebuild it`);
  }
  return err instanceof Error ? err : new Error(message);
}
