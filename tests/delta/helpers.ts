// Shared by the Delta tests: an in-memory DuckDB session, temporary folders,
// and the golden tables extracted from tests/fixtures/delta-golden.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

/**
 * The active data files of a table as a plain reader of the files finds them
 * (what Spark or delta-rs would read of a table whose log is all JSON):
 * every commit replayed in order, add and remove by path. Independent of
 * etl's reader on purpose.
 */
export function activeFilesByJsonReplay(tableDir: string): string[] {
  const log = path.join(tableDir, '_delta_log');
  const active = new Set<string>();
  for (const file of readdirSync(log).filter((f) => /^\d{20}\.json$/.test(f)).sort()) {
    for (const line of readFileSync(path.join(log, file), 'utf8').split('\n').filter(Boolean)) {
      const action = JSON.parse(line) as { add?: { path: string }; remove?: { path: string } };
      if (action.add) active.add(decodeURIComponent(action.add.path));
      if (action.remove) active.delete(decodeURIComponent(action.remove.path));
    }
  }
  return [...active].map((f) => path.join(tableDir, f));
}
