// Incremental changes as copy-on-write (merge, delete+insert, replace_where):
// only the files holding rows the change replaces are rewritten. Candidate
// files are pruned by the key's min/max statistics, then DuckDB finds the
// files that really hold a matching row (reading the key columns and the
// file name). Their other rows are written again with the new rows, and the
// commit removes exactly those files. Snapshots (any SQL on a copy of the
// table) are compared with the table file by file (planCopyOnWrite).

import type { ColumnChange, IncrementalChange } from '../adapter.js';
import type { AddFile } from './actions.js';
import { fileKey } from './actions.js';
import { deletedPositionsOf, fileMayMatch, pruneFiles, scanSnapshot, type ScanFilter } from './scan.js';
import { serializePartitionSql } from './partitions.js';
import { deltaTypeOfDuckDb, duckdbTypeOf, quoteIdent, schemaString, type StructField, type StructType } from './schema.js';
import type { Snapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';

const FILE_COLUMN = '__etl_file';
const ROW_COLUMN = '__etl_row';

/**
 * With deletion vectors, a file whose deleted rows (earlier ones included)
 * would be at most this share of its rows keeps its rows in place and gets a
 * vector; a file losing more is rewritten (copy-on-write), so files do not
 * fill up with deleted rows that every read skips.
 */
export const DV_MAX_DELETED_SHARE = 0.5;

/** The rows physically in a file (its stats' numRecords, which counts rows a deletion vector deletes), when recorded. */
function physicalRows(file: AddFile): number | undefined {
  try {
    const n = (JSON.parse(file.stats ?? '{}') as { numRecords?: unknown }).numRecords;
    return typeof n === 'number' ? n : undefined;
  } catch {
    return undefined;
  }
}

export interface Rewrite {
  /** The rows the new files hold: kept rows of rewritten files, then the new rows. */
  selectSql: string;
  /** Files replaced. */
  removeFiles: AddFile[];
  /** Deletion vectors: files kept, whose replaced rows are marked deleted (all their deleted positions). */
  markDeleted: Array<{ file: AddFile; positions: number[] }>;
  /** The schema when the change alters it. */
  schema?: StructType;
  /** Conflict detection (transaction.ts): the files the plan read, and which files added by another writer it would have read. */
  readFiles: 'all' | Set<string>;
  readPredicate: 'none' | 'all' | ((file: AddFile) => boolean);
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

/**
 * The key ranges of the new rows (merge and delete+insert, every key column
 * with a min and max), as filters on the table's files: the files outside
 * them cannot hold a replaced row. Undefined when there is no such range
 * (other strategies): every file is a candidate.
 */
async function keyRanges(session: SqlSession, change: IncrementalChange, source: string): Promise<ScanFilter[] | 'no keys' | undefined> {
  if ((change.strategy !== 'merge' && change.strategy !== 'delete+insert') || change.uniqueKey.length === 0) return undefined;
  const r = await session.query(`select ${change.uniqueKey.map((k) => `cast(min(${quoteIdent(k)}) as varchar), cast(max(${quoteIdent(k)}) as varchar)`).join(', ')} from ${source}`);
  const row = r.rows[0] ?? [];
  const filters: ScanFilter[] = [];
  change.uniqueKey.forEach((k, i) => {
    const [min, max] = [row[2 * i], row[2 * i + 1]];
    if (min != null && max != null) filters.push({ column: k, op: '>=', value: String(min) }, { column: k, op: '<=', value: String(max) });
  });
  // No key values at all (no new rows, or all NULL keys): no existing row can match.
  return filters.length === 2 * change.uniqueKey.length ? filters : 'no keys';
}

/**
 * insert_overwrite on the table's own partition columns: the files of every
 * partition the new rows touch go whole (no row of them is kept), found from
 * the log alone; undefined when the change is not of that kind.
 */
async function partitionsReplaced(session: SqlSession, snapshot: Snapshot, change: IncrementalChange, source: string): Promise<{ files: AddFile[]; touched: Set<string>; key: (f: AddFile) => string } | undefined> {
  const cols = change.partitionBy ?? [];
  if (change.strategy !== 'insert_overwrite' || cols.length === 0 || !cols.every((c) => snapshot.metadata.partitionColumns.includes(c))) return undefined;
  const types = new Map(snapshot.schema.fields.map((f) => [f.name, f.type]));
  // The new rows' partition values serialized as the writer writes them into partitionValues.
  const r = await session.query(`select distinct ${cols.map((c) => serializePartitionSql(c, types.get(c)!)).join(', ')} from ${source}`);
  const touched = new Set(r.rows.map((row) => JSON.stringify(row.map((v) => (v == null ? null : String(v))))));
  const key = (f: AddFile) => JSON.stringify(cols.map((c) => (f.partitionValues[c] === '' ? null : (f.partitionValues[c] ?? null))));
  return { files: [...snapshot.files.values()].filter((f) => touched.has(key(f))), touched, key };
}

/** Plans the files a change rewrites and the rows of the new files. `source`: the new rows as a relation (already staged). */
export async function planRewrite(storage: DeltaStorage, session: SqlSession, snapshot: Snapshot, change: IncrementalChange, source: string, options: { deletionVectors?: boolean } = {}): Promise<Rewrite> {
  const after = schemaAfter(snapshot.schema, change.columnChanges);
  const schema = after.schema;
  // The new rows take the table's types, as an INSERT into it would (on_schema_change ignore keeps a column's type while the model's widens).
  const newRows = `select ${schema.fields.map((f) => `cast(${change.columns.includes(f.name) ? `etl_new.${quoteIdent(f.name)}` : 'null'} as ${duckdbTypeOf(f.type)}) as ${quoteIdent(f.name)}`).join(', ')} from ${source} as etl_new${change.deletedFlag ? ` where not etl_new.${quoteIdent(change.deletedFlag)}` : ''}`;
  const replaced = replacedRows(change, source);
  const wholeFiles = await partitionsReplaced(session, snapshot, change, source);
  if (wholeFiles && !after.rewriteAll) {
    // The partitions read are the ones replaced: a file another writer adds to one of them conflicts.
    return { selectSql: newRows, removeFiles: wholeFiles.files, markDeleted: [], schema: after.changed ? schema : undefined, readFiles: new Set(wholeFiles.files.map(fileKey)), readPredicate: (f) => wholeFiles.touched.has(wholeFiles.key(f)) };
  }
  let affected: AddFile[] = [];
  const markDeleted: Rewrite['markDeleted'] = [];
  let readFiles: Rewrite['readFiles'] = new Set();
  let readPredicate: Rewrite['readPredicate'] = 'none';
  if (after.rewriteAll) {
    affected = [...snapshot.files.values()];
    readFiles = 'all';
    readPredicate = 'all';
  } else if (replaced) {
    const ranges = await keyRanges(session, change, source);
    const pool = ranges === 'no keys' ? [] : pruneFiles(snapshot, ranges);
    readFiles = new Set(pool.map(fileKey));
    // A row another writer adds within the new rows' key ranges would have been replaced: its file conflicts.
    readPredicate = ranges === 'no keys' ? 'none' : ranges ? (f) => fileMayMatch(snapshot, f, ranges) : 'all';
    // Finding the replaced rows reads only the key columns when the condition is on the key.
    const columns = ranges ? change.uniqueKey : undefined;
    if (pool.length && options.deletionVectors) {
      // Every physical row is read (a row deleted already and found again changes nothing), so no join drops deleted rows first.
      const scan = await scanSnapshot(storage, session, { ...snapshot, files: new Map(pool.map((f) => [fileKey(f), f])) }, { fileIndexColumn: FILE_COLUMN, rowNumberColumn: ROW_COLUMN, columns, physicalRows: true });
      const hits = await replacedPositions(session, scan, `select * from (${scan.sql}) as etl_target where ${replaced}`);
      const earlier = await deletedPositionsOf(storage, session, hits.map(([file]) => file));
      hits.forEach(([file, withEarlier]) => {
        const before = earlier.get(file) ?? [];
        const positions = withEarlier(before);
        if (positions.length === before.length) return; // only rows its vector deletes already
        const physical = physicalRows(file);
        if (physical !== undefined && positions.length <= physical * DV_MAX_DELETED_SHARE) markDeleted.push({ file, positions });
        else affected.push(file);
      });
    } else if (pool.length) {
      const scan = await scanSnapshot(storage, session, { ...snapshot, files: new Map(pool.map((f) => [fileKey(f), f])) }, { fileIndexColumn: FILE_COLUMN, columns });
      affected = await filesAt(session, scan.files, `select distinct ${quoteIdent(FILE_COLUMN)} from (${scan.sql}) as etl_target where ${replaced}`);
    }
  }
  const parts: string[] = [];
  if (affected.length) {
    const kept = await scanSnapshot(storage, session, { ...snapshot, schema, files: new Map(affected.map((f) => [fileKey(f), f])) });
    parts.push(`select * from (${kept.sql}) as etl_target${replaced ? ` where not coalesce(${replaced}, false)` : ''}`);
  }
  parts.push(newRows);
  return { selectSql: parts.length === 1 ? parts[0]! : parts.map((p) => `(${p})`).join('\nunion all\n'), removeFiles: affected, markDeleted, schema: after.changed ? schema : undefined, readFiles, readPredicate };
}

/** Bits of the per-file bitmaps of replacedPositions, at most (256 MB); beyond, the positions come as lists. */
const BITMAP_BITS_MAX = 2 ** 31;

/**
 * The rows `hitsSql` returns, per file of the scan it reads (its FILE_COLUMN
 * and ROW_COLUMN): each file with a function giving its row positions united
 * with earlier ones (its vector's), ascending. When every file's stats give
 * its row count, DuckDB sets the positions in one bitmap per file
 * (bitstring_agg), which comes to JavaScript as bytes: the earlier positions
 * are set in it too and the union read off in order, without a JavaScript
 * number per position to convert, sort or merge. Otherwise (or when a file
 * holds more rows than its stats say) as sorted lists of doubles (exact below
 * 2^53), merged with the earlier ones.
 */
async function replacedPositions(session: SqlSession, scan: { files: AddFile[] }, hitsSql: string): Promise<Array<[AddFile, (earlier: number[]) => number[]]>> {
  const file = quoteIdent(FILE_COLUMN);
  const row = quoteIdent(ROW_COLUMN);
  const counts = scan.files.map(physicalRows);
  const rows = counts.every((n) => n !== undefined) ? Math.max(0, ...(counts as number[])) : undefined;
  if (rows !== undefined && rows > 0 && rows * scan.files.length <= BITMAP_BITS_MAX) {
    try {
      const r = await session.query(`select ${file}, bitstring_agg(${row}, 0, ${rows - 1}) from (${hitsSql}) as etl_hits group by all`);
      return r.rows.map(([index, bits]) => [scan.files[Number(index)]!, (earlier) => setBits(bits, earlier)]);
    } catch (err) {
      // A row number beyond the stats' count: the stats are wrong; the lists below need none.
      if (!/outside of provided min and max/i.test((err as Error).message)) throw err;
    }
  }
  const r = await session.query(`select ${file}, list(cast(${row} as double) order by ${row}) from (${hitsSql}) as etl_hits group by all`);
  return r.rows.map(([index, positions]) => [scan.files[Number(index)]!, (earlier) => unionSorted(earlier, positions as number[])]);
}

/** Set bits in each byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, v) => {
  let n = 0;
  for (let x = v; x; x >>= 1) n += x & 1;
  return n;
});

/**
 * The positions of the set bits of a DuckDB BITSTRING, ascending, united
 * with `also` (ascending): as bytes (the first one the count of padding bits
 * before the string's first bit), or as a string of 0s and 1s.
 */
export function setBits(value: unknown, also: readonly number[] = []): number[] {
  if (typeof value === 'string') {
    const out: number[] = [];
    for (let i = value.indexOf('1'); i >= 0; i = value.indexOf('1', i + 1)) out.push(i);
    return also.length ? unionSorted(also, out) : out;
  }
  const given = value as Uint8Array;
  const padding = given[0]!;
  const n = given.length;
  // Positions past the string (a file holding more rows than its stats say): merged as lists.
  if (also.length && also[also.length - 1]! >= (n - 1) * 8 - padding) return unionSorted(also, setBits(value));
  const bytes = Uint8Array.from(given);
  for (const p of also) {
    const k = p + padding;
    bytes[1 + (k >> 3)]! |= 0x80 >> (k & 7);
  }
  if (n > 1) bytes[1]! &= 0xff >> padding;
  let count = 0;
  for (let b = 1; b < n; b++) count += POPCOUNT[bytes[b]!]!;
  const out = new Array<number>(count);
  let i = 0;
  for (let b = 1; b < n; b++) {
    let v = bytes[b]!;
    if (v === 0) continue;
    // Bit 7 of a byte is its first position; clz32 counts 24 zeros above a byte.
    const base = (b - 1) * 8 - padding - 24;
    while (v !== 0) {
      const lead = Math.clz32(v);
      out[i++] = base + lead;
      v ^= 0x80000000 >>> lead;
    }
  }
  return out;
}

/** The union of two ascending lists of distinct numbers, ascending. */
function unionSorted(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = i < a.length ? a[i]! : Infinity;
    const y = j < b.length ? b[j]! : Infinity;
    if (x <= y) i++;
    if (y <= x) j++;
    out.push(Math.min(x, y));
  }
  return out;
}

/** The files (of a scan's) whose indexes a query returns in its first column. */
async function filesAt(session: SqlSession, files: AddFile[], sql: string): Promise<AddFile[]> {
  const hit = await session.query(sql);
  return hit.rows.map((r) => files[Number(r[0])]!);
}

/**
 * The table changed by arbitrary SQL (a snapshot's SCD-2 statements ran on
 * `changed`, a copy of `snapshot`'s rows) as copy-on-write: the files holding
 * a row that is no longer there, or changed (compared as a multiset over
 * every column, NULL-safe), are removed; the new files hold the rows of
 * `changed` that the untouched files do not. Undefined when the columns
 * changed (the caller rewrites the whole table).
 */
export async function planCopyOnWrite(storage: DeltaStorage, session: SqlSession, snapshot: Snapshot, changed: string, changedSchema: StructType): Promise<Pick<Rewrite, 'selectSql' | 'removeFiles'> | undefined> {
  if (schemaString(changedSchema) !== schemaString(snapshot.schema)) return undefined;
  const cols = snapshot.schema.fields.map((f) => quoteIdent(f.name));
  const list = cols.join(', ');
  const files = [...snapshot.files.values()];
  let removeFiles: AddFile[] = [];
  if (files.length) {
    const old = await scanSnapshot(storage, session, snapshot, { fileIndexColumn: FILE_COLUMN });
    // Equal rows are told apart by their rank among equals, so a multiset difference finds each removed copy.
    const numbered = (from: string) => `select *, row_number() over (partition by ${list}) as etl_rank from (${from}) as etl_rows`;
    const same = [...cols.map((c) => `etl_old.${c} is not distinct from etl_now.${c}`), 'etl_old.etl_rank = etl_now.etl_rank'].join(' and ');
    removeFiles = await filesAt(session, old.files, `select distinct etl_old.${quoteIdent(FILE_COLUMN)} from (${numbered(old.sql)}) as etl_old anti join (${numbered(`select ${list} from ${changed}`)}) as etl_now on ${same}`);
  }
  const removed = new Set(removeFiles);
  const kept = files.filter((f) => !removed.has(f));
  if (kept.length === 0) return { selectSql: `select ${list} from ${changed}`, removeFiles };
  const untouched = await scanSnapshot(storage, session, { ...snapshot, files: new Map(kept.map((f) => [f.path, f])) });
  return { selectSql: `select ${list} from ${changed} except all select ${list} from (${untouched.sql}) as etl_kept`, removeFiles };
}
