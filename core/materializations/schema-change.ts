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

export async function planSchemaChange(adapter: Adapter, session: AdapterSession, node: ManifestNode, target: Relation, staged: Relation): Promise<SchemaPlan> {
  const existing = await adapter.listColumns(session, target);
  const incoming = await adapter.listColumns(session, staged);
  const canonical = (t: string) => adapter.dialect.canonicalType(t);
  const byName = (cols: ColumnDef[]) => new Map(cols.map((c) => [c.name.toLowerCase(), c]));
  const oldCols = byName(existing);
  const newCols = byName(incoming);
  const added = incoming.filter((c) => !oldCols.has(c.name.toLowerCase()));
  const removed = existing.filter((c) => !newCols.has(c.name.toLowerCase()));
  const changed = incoming.filter((c) => {
    const o = oldCols.get(c.name.toLowerCase());
    return o && canonical(o.type) !== canonical(c.type);
  });
  const common = existing.filter((c) => newCols.has(c.name.toLowerCase())).map((c) => c.name);
  const mode = node.config.on_schema_change ?? 'ignore';
  if (added.length === 0 && removed.length === 0 && changed.length === 0) return { columns: common, changes: [] };

  const diff = () =>
    formatTable(
      ['column', 'in the table', 'in the new rows'],
      [
        ...added.map((c) => [c.name, '(absent)', c.type]),
        ...removed.map((c) => [c.name, c.type, '(absent)']),
        ...changed.map((c) => [c.name, oldCols.get(c.name.toLowerCase())!.type, c.type]),
      ],
    );
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
          ...changed.map((c): ColumnChange => ({ kind: 'alter_type', column: c.name, from: oldCols.get(c.name.toLowerCase())!.type, type: c.type })),
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
