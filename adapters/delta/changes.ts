// Incremental changes as copy-on-write (merge, delete+insert, replace_where):
// only the files holding rows the change replaces are rewritten. Candidate
// files are pruned by the key's min/max statistics, then DuckDB finds the
// files that really hold a matching row (reading the key columns and the
// file name). Their other rows are written again with the new rows, and the
// commit removes exactly those files. Snapshots (any SQL on a copy of the
// table) are compared with the table file by file (planCopyOnWrite).

import path from 'node:path';
import type { ColumnChange, IncrementalChange } from '../adapter.js';
import type { AddFile } from './actions.js';
import { fileLocation, pruneFiles, scanSnapshot, type ScanFilter } from './scan.js';
import { serializePartitionSql } from './partitions.js';
import { deltaTypeOfDuckDb, duckdbTypeOf, quoteIdent, schemaString, type StructField, type StructType } from './schema.js';
import type { Snapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';

const FILE_COLUMN = '__etl_file';

export interface Rewrite {
  /** The rows the new files hold: kept rows of rewritten files, then the new rows. */
  selectSql: string;
  /** Files replaced. */
  removeFiles: AddFile[];
  /** The schema when the change alters it. */
  schema?: StructType;
}

/** The table's schema after on_schema_change's column changes; `rewriteAll` when a type changes (every file must hold the table's types). */
export function schemaAfter(schema: StructType, changes: ColumnChange[]): { schema: StructType; changed: boolean; rewriteAll: boolean } {
  let fields: StructField[] = [...schema.fields];
  let rewriteAll = false;
  for (const c of changes) {
    if (c.kind === 'add') fields.push({ name: c.column, type: deltaTypeOfDuckDb(c.type, c.column), nullable: true, metadata: {} });
    else if (c.kind === 'drop') fields = fields.filter((f) => f.name !== c.column);
    else {
      fields = fields.map((f) => (f.name === c.column ? { ...f, type: deltaTypeOfDuckDb(c.type, c.column) } : f));
      rewriteAll = true;
    }
  }
  return { schema: { type: 'struct', fields }, changed: changes.length > 0, rewriteAll };
}

/** The condition (on alias etl_target) of the existing rows the change replaces, or undefined for none. */
function replacedRows(change: IncrementalChange, source: string): string | undefined {
  const q = quoteIdent;
  switch (change.strategy) {
    case 'append':
      return undefined;
    case 'merge':
    case 'delete+insert':
      return `exists (select 1 from ${source} as etl_new where ${change.uniqueKey.map((k) => `etl_target.${q(k)} = etl_new.${q(k)}`).join(' and ')})`;
    case 'replace_where':
      return `(${change.where})`;
    case 'insert_overwrite':
      return `exists (select 1 from ${source} as etl_new where ${(change.partitionBy ?? []).map((p) => `etl_target.${q(p)} is not distinct from etl_new.${q(p)}`).join(' and ')})`;
  }
}

/** Candidate files by the key's range in the new rows (single-column keys with statistics). */
async function candidates(session: SqlSession, snapshot: Snapshot, change: IncrementalChange, source: string): Promise<AddFile[]> {
  if ((change.strategy !== 'merge' && change.strategy !== 'delete+insert') || change.uniqueKey.length !== 1) return [...snapshot.files.values()];
  const k = quoteIdent(change.uniqueKey[0]!);
  const r = await session.query(`select cast(min(${k}) as varchar), cast(max(${k}) as varchar) from ${source}`);
  const [min, max] = r.rows[0] ?? [];
  if (min == null || max == null) return [];
  const filters: ScanFilter[] = [
    { column: change.uniqueKey[0]!, op: '>=', value: String(min) },
    { column: change.uniqueKey[0]!, op: '<=', value: String(max) },
  ];
  return pruneFiles(snapshot, filters);
}

/**
 * insert_overwrite on the table's own partition columns: the files of every
 * partition the new rows touch go whole (no row of them is kept), found from
 * the log alone; undefined when the change is not of that kind.
 */
async function partitionsReplaced(session: SqlSession, snapshot: Snapshot, change: IncrementalChange, source: string): Promise<AddFile[] | undefined> {
  const cols = change.partitionBy ?? [];
  if (change.strategy !== 'insert_overwrite' || cols.length === 0 || !cols.every((c) => snapshot.metadata.partitionColumns.includes(c))) return undefined;
  const types = new Map(snapshot.schema.fields.map((f) => [f.name, f.type]));
  // The new rows' partition values serialized as the writer writes them into partitionValues.
  const r = await session.query(`select distinct ${cols.map((c) => serializePartitionSql(c, types.get(c)!)).join(', ')} from ${source}`);
  const touched = new Set(r.rows.map((row) => JSON.stringify(row.map((v) => (v == null ? null : String(v))))));
  const key = (f: AddFile) => JSON.stringify(cols.map((c) => (f.partitionValues[c] === '' ? null : (f.partitionValues[c] ?? null))));
  return [...snapshot.files.values()].filter((f) => touched.has(key(f)));
}

/** Plans the files a change rewrites and the rows of the new files. `source`: the new rows as a relation (already staged). */
export async function planRewrite(storage: DeltaStorage, session: SqlSession, snapshot: Snapshot, change: IncrementalChange, source: string): Promise<Rewrite> {
  const after = schemaAfter(snapshot.schema, change.columnChanges);
  const schema = after.schema;
  // The new rows take the table's types, as an INSERT into it would (on_schema_change ignore keeps a column's type while the model's widens).
  const newRows = `select ${schema.fields.map((f) => `cast(${change.columns.includes(f.name) ? `etl_new.${quoteIdent(f.name)}` : 'null'} as ${duckdbTypeOf(f.type)}) as ${quoteIdent(f.name)}`).join(', ')} from ${source} as etl_new${change.deletedFlag ? ` where not etl_new.${quoteIdent(change.deletedFlag)}` : ''}`;
  const replaced = replacedRows(change, source);
  const wholeFiles = await partitionsReplaced(session, snapshot, change, source);
  if (wholeFiles && !after.rewriteAll) return { selectSql: newRows, removeFiles: wholeFiles, schema: after.changed ? schema : undefined };
  let affected: AddFile[] = [];
  if (after.rewriteAll) affected = [...snapshot.files.values()];
  else if (replaced) {
    const pool = await candidates(session, snapshot, change, source);
    if (pool.length) {
      const scan = await scanSnapshot(storage, session, { ...snapshot, files: new Map(pool.map((f) => [f.path, f])) }, { fileColumn: FILE_COLUMN });
      affected = await filesNamed(storage, session, pool, `select distinct ${quoteIdent(FILE_COLUMN)} from (${scan.sql}) as etl_target where ${replaced}`);
    }
  }
  const parts: string[] = [];
  if (affected.length) {
    const kept = await scanSnapshot(storage, session, { ...snapshot, schema, files: new Map(affected.map((f) => [f.path, f])) });
    parts.push(`select * from (${kept.sql}) as etl_target${replaced ? ` where not coalesce(${replaced}, false)` : ''}`);
  }
  parts.push(newRows);
  return { selectSql: parts.length === 1 ? parts[0]! : parts.map((p) => `(${p})`).join('\nunion all\n'), removeFiles: affected, schema: after.changed ? schema : undefined };
}

/** The files (of `pool`) whose locations a query returns in its first column. */
async function filesNamed(storage: DeltaStorage, session: SqlSession, pool: AddFile[], sql: string): Promise<AddFile[]> {
  const hit = await session.query(sql);
  const byLocation = new Map(pool.map((f) => [path.normalize(fileLocation(storage, f.path)), f]));
  return hit.rows.map((r) => byLocation.get(path.normalize(String(r[0])))).filter((f): f is AddFile => f !== undefined);
}

/**
 * The table changed by arbitrary SQL (a snapshot's SCD-2 statements ran on
 * `changed`, a copy of `snapshot`'s rows) as copy-on-write: the files holding
 * a row that is no longer there, or changed (compared as a multiset over
 * every column, NULL-safe), are removed; the new files hold the rows of
 * `changed` that the untouched files do not. Undefined when the columns
 * changed (the caller rewrites the whole table).
 */
export async function planCopyOnWrite(storage: DeltaStorage, session: SqlSession, snapshot: Snapshot, changed: string, changedSchema: StructType): Promise<Omit<Rewrite, 'schema'> | undefined> {
  if (schemaString(changedSchema) !== schemaString(snapshot.schema)) return undefined;
  const cols = snapshot.schema.fields.map((f) => quoteIdent(f.name));
  const list = cols.join(', ');
  const files = [...snapshot.files.values()];
  let removeFiles: AddFile[] = [];
  if (files.length) {
    const old = await scanSnapshot(storage, session, snapshot, { fileColumn: FILE_COLUMN });
    // Equal rows are told apart by their rank among equals, so a multiset difference finds each removed copy.
    const numbered = (from: string) => `select *, row_number() over (partition by ${list}) as etl_rank from (${from}) as etl_rows`;
    const same = [...cols.map((c) => `etl_old.${c} is not distinct from etl_now.${c}`), 'etl_old.etl_rank = etl_now.etl_rank'].join(' and ');
    removeFiles = await filesNamed(storage, session, files, `select distinct etl_old.${quoteIdent(FILE_COLUMN)} from (${numbered(old.sql)}) as etl_old anti join (${numbered(`select ${list} from ${changed}`)}) as etl_now on ${same}`);
  }
  const removed = new Set(removeFiles);
  const kept = files.filter((f) => !removed.has(f));
  if (kept.length === 0) return { selectSql: `select ${list} from ${changed}`, removeFiles };
  const untouched = await scanSnapshot(storage, session, { ...snapshot, files: new Map(kept.map((f) => [f.path, f])) });
  return { selectSql: `select ${list} from ${changed} except all select ${list} from (${untouched.sql}) as etl_kept`, removeFiles };
}
