// The targets the shared end-to-end suites run on (incremental strategies,
// snapshots, data tests): the same project files and commands, the target
// `dev` being a DuckDB file or a Delta lake, and the built tables read back
// through one DuckDB connection either way: the DuckDB file itself, or an
// in-memory DuckDB over the lake's Delta tables read by etl's Delta reader
// (one view per table, under its schema and name).

import { cpSync, copyFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DeltaTable, LocalStorage, loadSnapshot, scanSnapshot } from '../../adapters/delta/index.js';
import { duckDbSqlSession } from '../../adapters/delta/sql.js';
import { Db, dbPathOf, withDb } from './helpers.js';

export type TargetName = 'duckdb' | 'delta';
/** For describe.each: every suite runs on both. */
export const TARGETS: Array<[TargetName]> = [['duckdb'], ['delta']];

/** An etl.yml whose target `dev` is `target` (schema main). */
export function targetYml(target: TargetName, name: string, extra = ''): string {
  const dev = target === 'duckdb' ? '{ type: duckdb, path: target/dev.duckdb, schema: main, threads: 4 }' : '{ type: delta, path: lake, schema: main, threads: 4 }';
  return `name: ${name}\nversion: 1\ntarget: dev\ntargets:\n  dev: ${dev}\n${extra}`;
}

/** Where the target keeps its tables: the DuckDB file or the lake folder. */
export function storeOf(target: TargetName, dir: string): string {
  return target === 'duckdb' ? dbPathOf(dir) : path.join(dir, 'lake');
}

/** A copy of the target's tables as they are now (to read later). */
export function copyStore(target: TargetName, dir: string, to: string): string {
  if (target === 'duckdb') copyFileSync(storeOf(target, dir), to);
  else cpSync(storeOf(target, dir), to, { recursive: true });
  return to;
}

const q = (s: string) => `"${s.replace(/"/g, '""')}"`;

function lakeTables(lake: string): Array<{ schema: string; name: string; root: string }> {
  if (!existsSync(lake)) return [];
  const out = [];
  for (const schema of readdirSync(lake)) {
    for (const name of readdirSync(path.join(lake, schema))) {
      const root = path.join(lake, schema, name);
      if (existsSync(path.join(root, '_delta_log'))) out.push({ schema, name, root });
    }
  }
  return out;
}

/**
 * Runs `fn` on the target's tables. DuckDB: the file (read-only unless
 * `readOnly: false`). Delta: each table a view of its latest version; when
 * writable, each a DuckDB table instead, and every table `fn` created or
 * changed is written back to the lake as a new version (sources the tests
 * prepare, or change between builds).
 */
export async function withStore<T>(target: TargetName, store: string, fn: (db: Db) => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
  if (target === 'duckdb') return withDb(store, fn, options);
  const writable = options.readOnly === false;
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const session = duckDbSqlSession(connection);
  // A whole row is the table alias (a struct): its hash covers every column.
  const fingerprint = async (rel: string) => String((await session.query(`select count(*) || ':' || coalesce(sum(hash(etl_row)), 0) from ${rel} as etl_row`)).rows[0]?.[0]);
  try {
    const before = new Map<string, string>();
    for (const t of lakeTables(store)) {
      const storage = new LocalStorage(t.root);
      const scan = await scanSnapshot(storage, session, await loadSnapshot(storage, session));
      const rel = `${q(t.schema)}.${q(t.name)}`;
      await session.execute(`create schema if not exists ${q(t.schema)}`);
      await session.execute(`create ${writable ? 'table' : 'view'} ${rel} as ${scan.sql}`);
      if (writable) before.set(rel, await fingerprint(rel));
    }
    const result = await fn(new Db(connection));
    if (writable) {
      const tables = (await session.query(`select schema_name, table_name from duckdb_tables() where database_name = current_database() and not temporary`)).rows;
      for (const [schema, name] of tables as Array<[string, string]>) {
        const rel = `${q(schema)}.${q(name)}`;
        if (before.get(rel) === (await fingerprint(rel))) continue;
        await new DeltaTable(new LocalStorage(path.join(store, schema, name)), session).write({ selectSql: `select * from ${rel}`, mode: 'overwrite' });
      }
    }
    return result;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}
