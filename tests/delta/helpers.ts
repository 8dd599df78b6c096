// Shared by the Delta tests: an in-memory DuckDB session, temporary folders,
// and the golden tables extracted from tests/fixtures/delta-golden.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { duckDbSqlSession, type SqlSession } from '../../adapters/delta/sql.js';

export const GOLDEN_DIR = path.resolve(import.meta.dirname, '../fixtures/delta-golden');

export interface TestDb {
  session: SqlSession;
  connection: DuckDBConnection;
  close(): void;
}

export async function openDuckDb(): Promise<TestDb> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  // Comparisons of timestamps print and cast in UTC, whatever the machine's zone.
  await connection.run(`set TimeZone = 'UTC'`);
  const session: SqlSession = duckDbSqlSession(connection);
  return {
    session,
    connection,
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Extracts a golden table into `into`; returns its folder (with delta/ and maybe expected/). */
export function extractGolden(name: string, into: string): string {
  execFileSync('tar', ['--zstd', '-xf', path.join(GOLDEN_DIR, `${name}.tar.zst`), '-C', into], { stdio: ['ignore', 'ignore', 'pipe'] });
  return path.join(into, name);
}

export async function count(session: SqlSession, sql: string): Promise<number> {
  const r = await session.query(`select count(*) from (${sql}) as counted`);
  return Number(r.rows[0]![0]);
}
