// The DuckDB session the library runs its SQL on (read_parquet, COPY,
// parquet_metadata), and the few SQL-building helpers it shares.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { AdapterSession, SessionContext } from '../adapter.js';

/** A session; `context` (the run and node working on it) goes into the commitInfo of what it commits. */
export type SqlSession = AdapterSession & { readonly context?: SessionContext };

export function quoteString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** A DuckDB list of file locations, for read_parquet([...]). */
export function fileList(locations: string[]): string {
  return `[${locations.map(quoteString).join(', ')}]`;
}

/** A SqlSession over one DuckDB connection (the maintenance commands' scratch engine, and tests). */
export function duckDbSqlSession(connection: DuckDBConnection): SqlSession {
  return {
    async execute(sql, params) {
      const r = await connection.run(sql, params as never);
      return { rowsAffected: r.rowsChanged };
    },
    async query(sql, params) {
      const r = await connection.runAndReadAll(sql, params as never);
      return { columns: r.columnNames(), types: r.columnTypes().map(String), rows: r.getRowsJS() as unknown[][] };
    },
  };
}
