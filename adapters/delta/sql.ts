// The DuckDB session the library runs its SQL on (read_parquet, COPY,
// parquet_metadata), and the few SQL-building helpers it shares.

import type { AdapterSession } from '../adapter.js';

export type SqlSession = AdapterSession;

export function quoteString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** A DuckDB list of file locations, for read_parquet([...]). */
export function fileList(locations: string[]): string {
  return `[${locations.map(quoteString).join(', ')}]`;
}
