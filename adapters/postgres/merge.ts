// New rows into an existing table on Postgres. Postgres converts a value on
// insert or update only where an assignment cast exists (integer -> bigint,
// not text -> integer; DuckDB always tries), so a column whose staged type
// differs from the table's gets an explicit cast. And before Postgres 15 there
// is no MERGE: an update of the matched rows, then an insert of the others.

import type { AdapterSession, ColumnDef, IncrementalChange, Relation } from '../adapter.js';

/** An incremental change with the casts the new rows need (column -> type). */
export type PgIncrementalChange = IncrementalChange & { casts?: Map<string, string> };

/** `change` with the casts its new rows need to go into the target's columns (as the column changes leave them). */
export async function withCasts(session: AdapterSession, change: IncrementalChange, listColumns: (session: AdapterSession, relation: Relation) => Promise<ColumnDef[]>): Promise<PgIncrementalChange> {
  // A query source (microbatch) is the model itself: its types are the table's.
  if ('sql' in change.staged) return change;
  const stagedTypes = new Map((await listColumns(session, change.staged)).map((c) => [c.name, c.type]));
  const targetTypes = new Map((await listColumns(session, change.target)).map((c) => [c.name, c.type]));
  for (const c of change.columnChanges) {
    if (c.kind === 'drop') targetTypes.delete(c.column);
    else targetTypes.set(c.column, c.type);
  }
  const casts = new Map<string, string>();
  for (const column of new Set([...change.columns, ...change.uniqueKey])) {
    const from = stagedTypes.get(column);
    const to = targetTypes.get(column);
    if (from && to && from !== to) casts.set(column, castTargetType(to));
  }
  return casts.size ? { ...change, casts } : change;
}

/** A new value (`plain`, its SQL) with the cast its column needs, if any. */
export function castNewValue(change: IncrementalChange, column: string, plain: string): string {
  const type = (change as PgIncrementalChange).casts?.get(column);
  return type ? `cast(${plain} as ${type})` : plain;
}

/** What a merge's SQL is made of. */
export interface MergeSql {
  relation(r: Relation): string;
  quote(column: string): string;
  /** A column of the new rows as it goes into the target, read through `qualifier`. */
  newValue(column: string, qualifier: string): string;
}

/** A merge without MERGE (Postgres before 15): update the matched rows, then insert the others. */
export function mergeWithoutMerge(change: IncrementalChange, sql: MergeSql): string[] {
  const target = sql.relation(change.target);
  const staged = 'sql' in change.staged ? `(\n${change.staged.sql}\n)` : sql.relation(change.staged);
  const keyMatch = change.uniqueKey.map((k) => `etl_target.${sql.quote(k)} = ${sql.newValue(k, 'etl_new')}`).join(' and ');
  const updates = change.columns.filter((c) => !change.uniqueKey.includes(c)).map((c) => `${sql.quote(c)} = ${sql.newValue(c, 'etl_new')}`);
  const statements: string[] = [];
  if (updates.length) statements.push(`update ${target} as etl_target set ${updates.join(', ')} from ${staged} as etl_new where ${keyMatch}`);
  statements.push(
    `insert into ${target} (${change.columns.map(sql.quote).join(', ')}) select ${change.columns.map((c) => sql.newValue(c, 'etl_new')).join(', ')} from ${staged} as etl_new ` +
      `where not exists (select 1 from ${target} as etl_target where ${keyMatch})`,
  );
  return statements;
}

/**
 * The type to cast new values to for a column of type `type`. A length-limited
 * character type is cast to text, so that the assignment still rejects a value
 * too long instead of an explicit cast cutting it short.
 */
function castTargetType(type: string): string {
  return /^(character varying|character|varchar|char|bpchar)\s*\(\s*\d+\s*\)$/i.test(type.trim()) ? 'text' : type;
}
