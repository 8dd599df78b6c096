// What a model's SQL read of its own table (`{{this}}`), for conflict
// detection (transaction.ts): an incremental model that reads its table
// (`where updated_at > (select max(updated_at) from {{this}})`) computed its
// rows from the version it read, so a file another writer adds to the part
// of the table it read must conflict, or both writers append the same rows.
//
// The read set comes from DuckDB's parse tree of the compiled SQL
// (json_serialize_sql). Each reference to the table is either the only
// FROM of a SELECT whose WHERE has simple conjuncts on the table's columns
// (`k in (1, 2)`, `day >= '2024-06-01'`, `v is not null`): those rows only,
// tested on a file by its partition values and statistics as a scan prunes;
// or anything else (a join, no WHERE, a SQL DuckDB cannot parse): the whole
// table. Conjuncts of any other form are dropped, which only widens the set,
// so the set never misses a row the SQL read. Reads of other tables are not
// part of a Delta commit's conflict check (the protocol checks one table).

import type { Relation } from '../adapter.js';
import type { AddFile } from './actions.js';
import { fileKey } from './actions.js';
import { fileMayMatch, type FilterOp, type ScanFilter } from './scan.js';
import type { Snapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Nothing of the table, all of it, or the rows of any one of these filter lists (each ANDed). */
export type TableReads = 'none' | 'all' | ScanFilter[][];

/** What a change read, as CommitRequest takes it. */
export interface ReadSet {
  readPredicate: 'none' | 'all' | ((file: AddFile) => boolean);
  readFiles: 'all' | Set<string>;
}

const COMPARISONS: Record<string, [FilterOp, FilterOp]> = {
  // [the operator as written `column op value`, the operator when written `value op column`]
  COMPARE_EQUAL: ['=', '='],
  COMPARE_NOTEQUAL: ['!=', '!='],
  COMPARE_LESSTHAN: ['<', '>'],
  COMPARE_GREATERTHAN: ['>', '<'],
  COMPARE_LESSTHANOREQUALTO: ['<=', '>='],
  COMPARE_GREATERTHANOREQUALTO: ['>=', '<='],
};

/** A constant's value (a cast constant too: `date '2024-06-01'`), or undefined for anything else. */
function constantOf(e: J | undefined): string | number | boolean | undefined {
  if (!e) return undefined;
  if (e.class === 'CAST') return constantOf(e.child);
  if (e.class !== 'CONSTANT' || e.value?.is_null) return undefined;
  const v = e.value?.value;
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
}

/** The table column a COLUMN_REF names (unqualified or qualified by the table's alias), or undefined. */
function columnOf(e: J | undefined, alias: string, columns: Map<string, string>): string | undefined {
  if (e?.class !== 'COLUMN_REF') return undefined;
  const names = (e.column_names as string[]).map((n) => n.toLowerCase());
  if (names.length === 1) return columns.get(names[0]!);
  if (names.length === 2 && names[0] === alias) return columns.get(names[1]!);
  return undefined;
}

/** The simple conjuncts of a WHERE clause as scan filters (the others dropped: the rows read only grow). */
function filtersOf(where: J | null | undefined, alias: string, columns: Map<string, string>): ScanFilter[] {
  if (!where) return [];
  if (where.type === 'CONJUNCTION_AND') return (where.children as J[]).flatMap((c) => filtersOf(c, alias, columns));
  const ops = COMPARISONS[where.type as string];
  if (ops) {
    const left = columnOf(where.left, alias, columns);
    const right = columnOf(where.right, alias, columns);
    if (left !== undefined && right === undefined) {
      const value = constantOf(where.right);
      return value === undefined ? [] : [{ column: left, op: ops[0], value }];
    }
    if (right !== undefined && left === undefined) {
      const value = constantOf(where.left);
      return value === undefined ? [] : [{ column: right, op: ops[1], value }];
    }
    return [];
  }
  if (where.type === 'COMPARE_IN') {
    const [first, ...rest] = where.children as J[];
    const column = columnOf(first, alias, columns);
    const values = rest.map(constantOf);
    if (column === undefined || values.length === 0 || values.some((v) => v === undefined)) return [];
    return [{ column, op: 'in', value: values as Array<string | number | boolean> }];
  }
  if (where.type === 'OPERATOR_IS_NULL' || where.type === 'OPERATOR_IS_NOT_NULL') {
    const column = columnOf(where.children?.[0], alias, columns);
    return column === undefined ? [] : [{ column, op: where.type === 'OPERATOR_IS_NULL' ? 'is null' : 'is not null' }];
  }
  return [];
}

/** Every CTE name of the statement (an unqualified name that is one of them is not the table). */
function cteNames(node: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const n of node) cteNames(n, into);
  else if (node && typeof node === 'object') {
    const o = node as J;
    for (const entry of (o.cte_map?.map as J[] | undefined) ?? []) into.add(String(entry.key).toLowerCase());
    for (const v of Object.values(o)) cteNames(v, into);
  }
  return into;
}

/**
 * What a parsed statement (json_serialize_sql's JSON) reads of `table`,
 * whose columns are `columns` (see the module header).
 */
export function tableReads(parsed: J, table: Relation, columns: string[]): TableReads {
  if (parsed.error || !Array.isArray(parsed.statements)) return 'all';
  const byName = new Map(columns.map((c) => [c.toLowerCase(), c]));
  const ctes = cteNames(parsed.statements);
  const schema = table.schema.toLowerCase();
  const name = table.name.toLowerCase();
  const isTable = (t: J): boolean => {
    if (t?.type !== 'BASE_TABLE' || String(t.table_name).toLowerCase() !== name) return false;
    // Unqualified: the table unless a CTE of that name shadows it (a schema search path could still find it: counted as read).
    return t.schema_name ? String(t.schema_name).toLowerCase() === schema : !ctes.has(name);
  };
  const reads: ScanFilter[][] = [];
  const handled = new Set<J>();
  let whole = false;
  const visit = (node: unknown): void => {
    if (whole) return;
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const o = node as J;
    if (o.type === 'SELECT_NODE' && isTable(o.from_table)) {
      handled.add(o.from_table);
      const alias = String(o.from_table.alias || o.from_table.table_name).toLowerCase();
      const filters = filtersOf(o.where_clause, alias, byName);
      if (filters.length === 0) whole = true;
      else reads.push(filters);
    } else if (o.type === 'BASE_TABLE' && isTable(o) && !handled.has(o)) {
      whole = true;
      return;
    }
    for (const v of Object.values(o)) visit(v);
  };
  visit(parsed.statements);
  if (whole) return 'all';
  return reads.length ? reads : 'none';
}

/** What `sql` reads of `table` (DuckDB parses it; nothing is run). */
export async function readsOfSql(session: SqlSession, sql: string, table: Relation, snapshot: Pick<Snapshot, 'schema'>): Promise<TableReads> {
  // Cheap first: SQL that never names the table cannot read it.
  if (!sql.toLowerCase().includes(table.name.toLowerCase())) return 'none';
  const r = await session.query('select json_serialize_sql($1::varchar)', [sql]);
  const parsed = JSON.parse(String(r.rows[0]?.[0] ?? '{"error":true}')) as J;
  return tableReads(parsed, table, snapshot.schema.fields.map((f) => f.name));
}

/** A change's read set widened by what its SQL read of the table (`reads`, of `snapshot`). */
export function widenReads(snapshot: Pick<Snapshot, 'files' | 'metadata' | 'schema'>, read: ReadSet, reads: TableReads): ReadSet {
  if (reads === 'none' || read.readPredicate === 'all') return reads === 'all' ? { readPredicate: 'all', readFiles: 'all' } : read;
  if (reads === 'all') return { readPredicate: 'all', readFiles: 'all' };
  const matches = (f: AddFile) => reads.some((filters) => fileMayMatch(snapshot, f, filters));
  const before = read.readPredicate;
  const readPredicate = before === 'none' ? matches : (f: AddFile) => before(f) || matches(f);
  if (read.readFiles === 'all') return { readPredicate, readFiles: 'all' };
  const readFiles = new Set(read.readFiles);
  for (const f of snapshot.files.values()) if (matches(f)) readFiles.add(fileKey(f));
  return { readPredicate, readFiles };
}
