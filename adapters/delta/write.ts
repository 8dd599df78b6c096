// Data files: DuckDB writes the rows of a query as zstd Parquet files into the
// table folder (Hive-style `col=value/` folders for partition columns, a UUID
// in every name so no file is ever overwritten), and each file becomes an add
// action with its size and statistics. Nothing is committed here: files
// written by a run that then fails stay unreferenced until vacuum.

import path from 'node:path';
import type { AddFile } from './actions.js';
import { DeltaTableError } from './errors.js';
import { encodeLogPath, partitionValuesFromPath, serializePartitionSql } from './partitions.js';
import { duckdbTypeOf, quoteIdent, type StructType } from './schema.js';
import { collectStats, serializeStats } from './stats.js';
import { quoteString, type SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';

/** Files are cut at about this size (Delta's usual target). */
export const TARGET_FILE_SIZE = 128 * 1024 * 1024;

export interface WriteFilesOptions {
  /** The rows to write: a SELECT whose columns are the schema's, by name. */
  selectSql: string;
  schema: StructType;
  partitionColumns: string[];
  targetFileSize?: number;
  /** false for files that only rearrange existing rows (optimize). */
  dataChange?: boolean;
}

/** The SELECT list that casts each column to the type the schema records, so every file has the table's types. */
export function projectionSql(schema: StructType, partitionColumns: string[]): string {
  const partitions = new Set(partitionColumns);
  const cols = schema.fields.map((f) => (partitions.has(f.name) ? `${serializePartitionSql(f.name, f.type)} as ${quoteIdent(f.name)}` : `cast(${quoteIdent(f.name)} as ${duckdbTypeOf(f.type)}) as ${quoteIdent(f.name)}`));
  return cols.join(', ');
}

/** Writes the rows as data files and returns their add actions (not committed). */
export async function writeDataFiles(storage: DeltaStorage, session: SqlSession, options: WriteFilesOptions): Promise<AddFile[]> {
  const { schema, partitionColumns } = options;
  const root = storage.locate('');
  await storage.prepareDir('');
  const copyOptions = [
    'format parquet',
    'compression zstd',
    `filename_pattern 'part-{uuid}'`,
    'append true',
    'return_files true',
  ];
  // DuckDB cuts files by size only without partitions (it cannot combine the two options).
  if (partitionColumns.length) copyOptions.push(`partition_by (${partitionColumns.map(quoteIdent).join(', ')})`);
  else copyOptions.push(`file_size_bytes ${Math.max(1, Math.floor(options.targetFileSize ?? TARGET_FILE_SIZE))}`);
  const sql = `copy (select ${projectionSql(schema, partitionColumns)} from (${options.selectSql}) as etl_rows) to ${quoteString(root)} (${copyOptions.join(', ')})`;
  const result = await session.query(sql);
  const filesIndex = result.columns.findIndex((c) => c.toLowerCase() === 'files');
  const written = ((result.rows[0]?.[filesIndex] as unknown[] | undefined) ?? []).map(String);
  if (written.length === 0) return [];
  const stats = await collectStats(session, written, schema, new Set(partitionColumns));
  const adds: AddFile[] = [];
  for (const location of written) {
    const relative = path.relative(root, location).split(path.sep).join('/');
    if (relative.startsWith('..')) throw new DeltaTableError(`DuckDB wrote ${location} outside the table ${root}`);
    const stat = await storage.stat(relative);
    if (!stat) throw new DeltaTableError(`data file ${location} written by DuckDB is missing`);
    const s = stats.get(location);
    if (s?.numRecords === 0) {
      // DuckDB writes one empty file for no rows; a table needs no file for them.
      await storage.delete(relative);
      continue;
    }
    adds.push({
      path: encodeLogPath(relative),
      partitionValues: partitionValuesFromPath(relative, partitionColumns),
      size: stat.size,
      modificationTime: stat.modificationTime,
      dataChange: options.dataChange ?? true,
      ...(s ? { stats: serializeStats(s) } : {}),
    });
  }
  return adds;
}
