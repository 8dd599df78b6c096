// Reading a snapshot: its active files handed to DuckDB's read_parquet as one
// SQL relation, with partition values as typed columns, every column cast to
// the table's type (a column a file lacks reads as NULL, int96 timestamps as
// UTC), and files pruned by partition values and min/max statistics for
// simple filters before DuckDB opens them.

import path from 'node:path';
import type { AddFile } from './actions.js';
import { canonicalPath, fileKey } from './actions.js';
import { readDeletionVector } from './deletion-vectors.js';
import { partitionLiteralSql } from './partitions.js';
import { duckdbTypeOf, quoteIdent, type DeltaType, type StructField } from './schema.js';
import { timestampMicros } from './stats.js';
import { fileList, quoteString, type SqlSession } from './sql.js';
import type { Snapshot } from './snapshot.js';
import type { DeltaStorage } from './storage.js';

export type FilterOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'is null' | 'is not null';

/** A simple predicate on one top-level column; a scan's filters are ANDed. */
export interface ScanFilter {
  column: string;
  op: FilterOp;
  value?: string | number | boolean | Array<string | number | boolean>;
}

export interface ScanOptions {
  filters?: ScanFilter[];
  /** Only these columns, in this order (all by default). */
  columns?: string[];
  /** Adds a column of this name holding each row's file as its index in Scan.files (copy-on-write and deletion vectors find the files that hold given rows). */
  fileIndexColumn?: string;
  /** Adds a column of this name holding each row's position in its file (deletion vectors mark rows by it). */
  rowNumberColumn?: string;
  /**
   * Reads every row physically in the files, those their deletion vectors
   * delete included: a merge that marks rows deleted unions its positions with
   * the file's earlier ones, so a row it finds again changes nothing, and the
   * scan is spared the join that drops deleted rows.
   */
  physicalRows?: boolean;
}

export interface Scan {
  /** A SELECT over the snapshot (filters applied). */
  sql: string;
  /** The files it reads, after pruning. */
  files: AddFile[];
}

/** Where DuckDB finds a file an add action names: relative to the table root, or an absolute file: URI or path. */
export function fileLocation(storage: DeltaStorage, logPath: string): string {
  const p = canonicalPath(logPath);
  if (p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || /^[a-z][a-z0-9+.-]*:/i.test(logPath)) return p;
  return storage.locate(p);
}

type Typed = { kind: 'number'; v: number } | { kind: 'bigint'; v: bigint } | { kind: 'string'; v: string } | { kind: 'bool'; v: boolean };

/** A value of a primitive Delta type in a form that compares correctly, or undefined when it cannot be compared. */
function typed(type: DeltaType, value: unknown): Typed | undefined {
  if (value === null || value === undefined || typeof type !== 'string') return undefined;
  try {
    if (type === 'long' || type === 'integer' || type === 'short' || type === 'byte') return { kind: 'bigint', v: BigInt(typeof value === 'number' ? Math.trunc(value) : String(value)) };
    if (type === 'float' || type === 'double' || type.startsWith('decimal')) {
      const n = Number(value);
      return Number.isNaN(n) ? undefined : { kind: 'number', v: n };
    }
    if (type === 'timestamp' || type === 'timestamp_ntz') return { kind: 'bigint', v: timestampMicros(String(value)) };
    if (type === 'boolean') return { kind: 'bool', v: value === true || value === 'true' };
    if (type === 'string' || type === 'date') return { kind: 'string', v: String(value) };
  } catch {
    return undefined;
  }
  return undefined;
}

function cmp(a: Typed, b: Typed): number | undefined {
  if (a.kind !== b.kind) return undefined;
  if (a.kind === 'string') return Buffer.compare(Buffer.from(a.v), Buffer.from(b.v as string));
  const x = a.v as number | bigint | boolean;
  const y = b.v as number | bigint | boolean;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Whether a file may hold rows matching the filter (true when unknown). */
function mayMatch(file: AddFile, stats: FileStatsJson | undefined, field: StructField, isPartition: boolean, filter: ScanFilter): boolean {
  const values = filter.op === 'in' ? (Array.isArray(filter.value) ? filter.value : [filter.value]) : [filter.value];
  if (isPartition) {
    const raw = file.partitionValues[field.name];
    const isNull = raw === null || raw === undefined || raw === '';
    if (filter.op === 'is null') return isNull;
    if (filter.op === 'is not null') return !isNull;
    if (isNull) return false; // a comparison with NULL is never true
    const v = typed(field.type, raw);
    if (!v) return true;
    return values.some((x) => {
      const c = typed(field.type, x);
      const r = c && cmp(v, c);
      if (r === undefined) return true;
      switch (filter.op) {
        case '=':
        case 'in':
          return r === 0;
        case '!=':
          return r !== 0;
        case '<':
          return r < 0;
        case '<=':
          return r <= 0;
        case '>':
          return r > 0;
        case '>=':
          return r >= 0;
        default:
          return true;
      }
    });
  }
  if (!stats) return true;
  const nulls = stats.nullCount?.[field.name];
  if (filter.op === 'is null') return typeof nulls !== 'number' || nulls > 0;
  if (filter.op === 'is not null') return typeof nulls !== 'number' || nulls < stats.numRecords;
  const min = typed(field.type, stats.minValues?.[field.name]);
  let max = typed(field.type, stats.maxValues?.[field.name]);
  if (!min || !max) return true;
  // Timestamp bounds are truncated to milliseconds: the true maximum may be up to 999 µs later.
  if ((field.type === 'timestamp' || field.type === 'timestamp_ntz') && max.kind === 'bigint') max = { kind: 'bigint', v: max.v + 999n };
  return values.some((x) => {
    const c = typed(field.type, x);
    if (!c) return true;
    const lo = cmp(c, min);
    const hi = cmp(c, max!);
    if (lo === undefined || hi === undefined) return true;
    switch (filter.op) {
      case '=':
      case 'in':
        return lo >= 0 && hi <= 0;
      case '<':
        return cmp(min, c)! < 0;
      case '<=':
        return cmp(min, c)! <= 0;
      case '>':
        return cmp(max!, c)! > 0;
      case '>=':
        return cmp(max!, c)! >= 0;
      default:
        return true;
    }
  });
}

interface FileStatsJson {
  numRecords: number;
  minValues?: Record<string, unknown>;
  maxValues?: Record<string, unknown>;
  nullCount?: Record<string, unknown>;
}

/** The active files that may hold rows matching every filter. */
export function pruneFiles(snapshot: Pick<Snapshot, 'files' | 'metadata' | 'schema'>, filters: ScanFilter[] = []): AddFile[] {
  const files = [...snapshot.files.values()];
  if (filters.length === 0) return files;
  return files.filter((file) => fileMayMatch(snapshot, file, filters));
}

/** Whether a file (of this table, active or added by another writer) may hold rows matching every filter, by its partition values and statistics. */
export function fileMayMatch(table: Pick<Snapshot, 'metadata' | 'schema'>, file: AddFile, filters: ScanFilter[]): boolean {
  const partitions = new Set(table.metadata.partitionColumns);
  let stats: FileStatsJson | undefined;
  if (file.stats) {
    try {
      stats = JSON.parse(file.stats) as FileStatsJson;
    } catch {
      stats = undefined;
    }
  }
  return filters.every((f) => {
    const field = table.schema.fields.find((x) => x.name === f.column);
    return !field || mayMatch(file, stats, field, partitions.has(f.column), f);
  });
}

function literal(v: string | number | boolean): string {
  return typeof v === 'string' ? quoteString(v) : String(v);
}

export function filterSql(f: ScanFilter): string {
  const c = quoteIdent(f.column);
  switch (f.op) {
    case 'is null':
      return `${c} is null`;
    case 'is not null':
      return `${c} is not null`;
    case 'in':
      return `${c} in (${(Array.isArray(f.value) ? f.value : [f.value!]).map(literal).join(', ')})`;
    default:
      return `${c} ${f.op} ${literal(f.value as string | number | boolean)}`;
  }
}

interface FileColumn {
  /** The name in the file (matched case-insensitively when not exact). */
  name: string;
  /** A timestamp stored without UTC adjustment (int96, or isAdjustedToUTC=0). */
  naiveTimestamp: boolean;
}

/** Data files never change once written (unique names), so their columns are read once per process. */
const COLUMNS_CACHE = new Map<string, Map<string, FileColumn>>();
const COLUMNS_CACHE_MAX = 200_000;

/** Top-level columns of each file, from the Parquet footers (parquet_schema lists schema elements depth-first). */
async function fileColumns(session: SqlSession, locations: string[]): Promise<Map<string, Map<string, FileColumn>>> {
  const out = new Map<string, Map<string, FileColumn>>();
  const missing = locations.filter((l) => {
    const cached = COLUMNS_CACHE.get(l);
    if (cached) out.set(l, cached);
    return !cached;
  });
  if (missing.length === 0) return out;
  if (COLUMNS_CACHE.size > COLUMNS_CACHE_MAX) COLUMNS_CACHE.clear();
  const result = await session.query(`select file_name, name, type, converted_type, logical_type, num_children from parquet_schema(${fileList(missing)})`);
  let remaining = new Map<string, number[]>(); // per file: a stack of children left at each depth
  for (const [file, name, type, converted, logical, children] of result.rows) {
    const f = String(file);
    let stack = remaining.get(f);
    if (!stack) {
      // The first element of a file is its root.
      remaining.set(f, [Number(children ?? 0)]);
      out.set(f, new Map());
      COLUMNS_CACHE.set(f, out.get(f)!);
      continue;
    }
    const depth = stack.length;
    stack[depth - 1]!--;
    if (depth === 1) {
      const naive = type === 'INT96' || /isAdjustedToUTC=0/.test(String(logical ?? ''));
      out.get(f)!.set(String(name), { name: String(name), naiveTimestamp: naive && converted !== 'DATE' });
    }
    if (children != null && Number(children) > 0) stack.push(Number(children));
    while (stack.length > 1 && stack[stack.length - 1] === 0) stack.pop();
  }
  remaining = new Map();
  return out;
}

/**
 * A file's columns among `fields` from its statistics alone, when they settle
 * it (its footer is not read then): a writer records a null count for each
 * column it wrote (etl for every one, Spark for the first 32), under the
 * column's name in the file (column mapping is refused). Undefined when a
 * field has no count, or is a timestamp (whether it is stored naive only the
 * footer says).
 */
function columnsFromStats(file: AddFile, fields: StructField[]): Map<string, FileColumn> | undefined {
  if (fields.length === 0) return new Map();
  let nullCount: Record<string, unknown> | undefined;
  try {
    nullCount = file.stats ? (JSON.parse(file.stats) as FileStatsJson).nullCount : undefined;
  } catch {
    return undefined;
  }
  if (!nullCount) return undefined;
  const out = new Map<string, FileColumn>();
  for (const f of fields) {
    if (f.type === 'timestamp' || !Object.hasOwn(nullCount, f.name)) return undefined;
    out.set(f.name, { name: f.name, naiveTimestamp: false });
  }
  return out;
}

function columnSql(field: StructField, column: FileColumn | undefined): string {
  const type = duckdbTypeOf(field.type);
  const alias = quoteIdent(field.name);
  if (!column) return `cast(null as ${type}) as ${alias}`;
  const c = quoteIdent(column.name);
  if (field.type === 'timestamp' && column.naiveTimestamp) return `timezone('UTC', ${c}) as ${alias}`;
  return `cast(${c} as ${type}) as ${alias}`;
}

/** A SELECT over the snapshot's active files (pruned by the filters, which are also applied as a WHERE). */
export async function scanSnapshot(storage: DeltaStorage, session: SqlSession, snapshot: Snapshot, options: ScanOptions = {}): Promise<Scan> {
  const pruned = pruneFiles(snapshot, options.filters);
  const fields = options.columns ? options.columns.map((c) => snapshot.schema.fields.find((f) => f.name === c) ?? missingColumn(snapshot, c)) : snapshot.schema.fields;
  const partitions = new Set(snapshot.metadata.partitionColumns);
  const where = options.filters?.length ? ` where ${options.filters.map(filterSql).join(' and ')}` : '';
  if (pruned.length === 0) {
    const cols = fields.map((f) => `cast(null as ${duckdbTypeOf(f.type)}) as ${quoteIdent(f.name)}`);
    if (options.fileIndexColumn) cols.push(`cast(null as bigint) as ${quoteIdent(options.fileIndexColumn)}`);
    if (options.rowNumberColumn) cols.push(`cast(null as bigint) as ${quoteIdent(options.rowNumberColumn)}`);
    return { sql: `select ${cols.join(', ')} where false`, files: pruned };
  }
  const locations = pruned.map((f) => fileLocation(storage, f.path));
  const fromStats = pruned.map((f) => columnsFromStats(f, fields.filter((x) => !partitions.has(x.name))));
  const columns = await fileColumns(session, locations.filter((_, i) => !fromStats[i]).map((l) => path.normalize(l)));
  // Files with the same partition values and the same physical columns are read by one read_parquet.
  const groups = new Map<string, { file: AddFile; location: string; cols: Map<string, FileColumn> }[]>();
  pruned.forEach((file, i) => {
    const cols = fromStats[i] ?? columns.get(path.normalize(locations[i]!)) ?? new Map<string, FileColumn>();
    const lower = new Map([...cols.values()].map((c) => [c.name.toLowerCase(), c]));
    const resolved = new Map<string, FileColumn>();
    for (const f of fields) {
      if (partitions.has(f.name)) continue;
      const c = cols.get(f.name) ?? lower.get(f.name.toLowerCase());
      if (c) resolved.set(f.name, c);
    }
    const key = JSON.stringify([fields.filter((f) => partitions.has(f.name)).map((f) => file.partitionValues[f.name] ?? null), [...resolved.entries()].map(([k, c]) => [k, c.name, c.naiveTimestamp])]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push({ file, location: locations[i]!, cols: resolved });
  });
  // Scan.files in the order of the groups, so a row's file index is its read_parquet's file_index plus the group's offset.
  const files: AddFile[] = [];
  const branches: string[] = [];
  for (const g of groups.values()) {
    const offset = files.length;
    files.push(...g.map((x) => x.file));
    const first = g[0]!;
    const select = fields.map((f) => (partitions.has(f.name) ? `${partitionLiteralSql(first.file.partitionValues[f.name], f.type)} as ${quoteIdent(f.name)}` : columnSql(f, first.cols.get(f.name))));
    if (options.fileIndexColumn) select.push(`cast(file_index as bigint) + ${offset} as ${quoteIdent(options.fileIndexColumn)}`);
    if (options.rowNumberColumn) select.push(`file_row_number as ${quoteIdent(options.rowNumberColumn)}`);
    const deleted = options.physicalRows ? '' : await deletedRowsSql(storage, session, g.map((x) => x.file));
    const read = `read_parquet(${fileList(g.map((x) => x.location))}${first.cols.size > 0 ? ', union_by_name = true' : ''}${deleted || options.rowNumberColumn ? ', file_row_number = true' : ''})`;
    // Rows deleted by the files' deletion vectors: an anti join on (file index, row number), two integers, with their positions.
    const from = deleted ? `${read} as etl_f anti join (${deleted}) as etl_d on etl_d.${DV_FILE} = etl_f.file_index and etl_d.${DV_POS} = etl_f.file_row_number` : read;
    branches.push(`select ${select.join(', ')} from ${from}`);
  }
  const body = branches.length === 1 ? branches[0]! : branches.map((b) => `(${b})`).join('\nunion all\n');
  return { sql: where ? `select * from (${body}) as etl_delta_scan${where}` : body, files };
}

/** A file outside the table (a deletion vector stored by absolute path), read by DuckDB: the library's own file access is the storage interface. */
async function readBlob(session: SqlSession, file: string): Promise<Buffer> {
  const r = await session.query(`select content from read_blob(${quoteString(file)})`);
  return Buffer.from(r.rows[0]?.[0] as Uint8Array);
}

/** Deleted positions of deletion vectors, read once per process (a DV never changes once written). */
const DELETED_CACHE = new Map<string, number[]>();
const DELETED_CACHE_MAX = 10_000;
const DV_FILE = '__etl_dv_file';
const DV_POS = '__etl_dv_pos';

/** The row positions a file's deletion vector deletes ([] without one). */
async function deletedPositions(storage: DeltaStorage, session: SqlSession, file: AddFile, read: (relative: string) => Promise<Buffer> = (f) => storage.read(f)): Promise<number[]> {
  const dv = file.deletionVector;
  if (!dv) return [];
  const key = `${storage.root}\u0000${fileKey(file)}`;
  let positions = DELETED_CACHE.get(key);
  if (!positions) {
    positions = await readDeletionVector({ read }, dv, (f) => readBlob(session, f), `file ${file.path} of ${storage.root}`);
    if (DELETED_CACHE.size > DELETED_CACHE_MAX) DELETED_CACHE.clear();
    DELETED_CACHE.set(key, positions);
  }
  return positions;
}

/** Records the positions a deletion vector just written deletes (ascending, not to be changed), so the next read of the file does not read the vector back. */
export function rememberDeletedPositions(storage: DeltaStorage, file: AddFile, positions: number[]): void {
  if (!file.deletionVector) return;
  if (DELETED_CACHE.size > DELETED_CACHE_MAX) DELETED_CACHE.clear();
  DELETED_CACHE.set(`${storage.root}\u0000${fileKey(file)}`, positions);
}

/** The deleted positions of each file with a deletion vector; a DV file several vectors share is read once. */
export async function deletedPositionsOf(storage: DeltaStorage, session: SqlSession, files: AddFile[]): Promise<Map<AddFile, number[]>> {
  const out = new Map<AddFile, number[]>();
  const reads = new Map<string, Promise<Buffer>>();
  const read = (relative: string) => {
    let bytes = reads.get(relative);
    if (!bytes) reads.set(relative, (bytes = storage.read(relative)));
    return bytes;
  };
  for (const file of files) if (file.deletionVector) out.set(file, await deletedPositions(storage, session, file, read));
  return out;
}

/**
 * The rows the deletion vectors of one read_parquet's files delete, as a
 * relation of (file_index, row position); '' when none has a vector. The
 * positions are in the SQL itself, one string per file that DuckDB splits, so
 * nothing is left in the database to drop (the relation lives as long as the
 * query or view that holds it).
 */
async function deletedRowsSql(storage: DeltaStorage, session: SqlSession, files: AddFile[]): Promise<string> {
  const deleted = await deletedPositionsOf(storage, session, files);
  const values: string[] = [];
  files.forEach((file, i) => {
    const positions = deleted.get(file);
    if (positions?.length) values.push(`(${i}, ${quoteString(positions.join(','))})`);
  });
  if (values.length === 0) return '';
  return `select cast(etl_dv.i as ubigint) as ${DV_FILE}, unnest(cast(string_split(etl_dv.p, ',') as bigint[])) as ${DV_POS} from (values ${values.join(', ')}) as etl_dv(i, p)`;
}

function missingColumn(snapshot: Snapshot, column: string): never {
  throw new Error(`Delta table ${snapshot.table} has no column ${column}`);
}
