// The targets the shared end-to-end suites run on (incremental strategies,
// snapshots, data tests): the same project files and commands, the target
// `dev` being a DuckDB file or a Delta lake, and the built tables read back
// through one DuckDB connection either way: the DuckDB file itself, or an
// in-memory DuckDB over the lake's Delta tables read by etl's Delta reader
// (one view per table, under its schema and name).
//
// etl's state is stored differently (DuckDB: tables in etl_meta; Delta: each
// table's etl.state metadata domain, run history as an append-only Delta
// table of start and end rows), so on Delta the store also shows that state
// as the DuckDB target's etl_meta tables (watermarks, batches, snapshot_runs,
// runs with one row per run): the suites assert the same state on both.

import { cpSync, copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/**
 * The extract suites' etl.yml (2 threads): the target a DuckDB file
 * (target/dev.duckdb), a Delta lake (schema main), or the Postgres database at
 * `pgUrl` (schema `pgSchema`). Its name is the test's own (`dev_<random>`): a
 * CDC loader's default slot name is a hash of project, target and table, and
 * slots are per server, which every suite running at once on it shares.
 */
export function extractTargetYml(target: TargetName | 'postgres', name: string, pgUrl?: string, pgSchema = 'raw'): string {
  const dev =
    target === 'postgres' ? `{ type: postgres, url: "${pgUrl}", schema: ${pgSchema}, threads: 2 }` : target === 'delta' ? '{ type: delta, path: lake, schema: main, threads: 2 }' : '{ type: duckdb, path: target/dev.duckdb, schema: main, threads: 4 }';
  const own = `dev_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  return `name: ${name}\nversion: 1\ntarget: ${own}\ntargets:\n  ${own}: ${dev}\n`;
}

/** Points target `dev` of a copied project (project-template's: a DuckDB file) at `target`, keeping the rest of its etl.yml. */
export function useTarget(target: TargetName, dir: string): void {
  if (target === 'duckdb') return;
  const file = path.join(dir, 'etl.yml');
  const yml = readFileSync(file, 'utf8');
  const dev = /^ {2}dev: \{ type: duckdb, path: target\/dev\.duckdb, schema: main, threads: 4 \}$/m;
  if (!dev.test(yml)) throw new Error(`${file} has no DuckDB target dev to point at the lake`);
  writeFileSync(file, yml.replace(dev, '  dev: { type: delta, path: lake, schema: main, threads: 4 }'));
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

/** A Delta table's etl.state domain (adapters/delta/state-store.ts). */
interface DeltaTableState {
  uniqueId?: string;
  watermark?: { column: string; value: string | null; runId: string; updatedAt: string };
  batches?: Record<string, { end: string; status: string; rows: number | null; runId: string; message: string; updatedAt: string }>;
  snapshotRuns?: Array<{ runId: string; inserted: number; invalidated: number; updatedAt: string }>;
}

/** The DuckDB target's etl_meta tables (adapters/sql-state.ts) made from the Delta tables' state, as views the write-back skips. */
async function showStateAsEtlMeta(session: ReturnType<typeof duckDbSqlSession>, states: Array<{ relation: string; state: DeltaTableState }>): Promise<void> {
  const lit = (v: string | number | null | undefined) => (v === null || v === undefined ? 'null' : typeof v === 'number' ? String(v) : `'${v.replace(/'/g, "''")}'`);
  const table = async (name: string, columns: string, rows: string[]) => {
    const defs = columns.split(', ').map((c) => c.split(' ') as [string, string]);
    const typed = `select ${defs.map(([c, type], i) => `cast(col${i} as ${type}) as ${c}`).join(', ')}`;
    // An empty VALUES list is not SQL: one row of NULLs, filtered out.
    const values = rows.length ? rows.join(', ') : `(${defs.map(() => 'null').join(', ')})`;
    await session.execute(`create schema if not exists etl_meta`);
    await session.execute(`create view etl_meta.${name} as ${typed} from (values ${values}) as t(${defs.map((_, i) => `col${i}`).join(', ')})${rows.length ? '' : ' where false'}`);
  };
  // The state's times are ISO instants (UTC); DuckDB's etl_meta keeps them as UTC timestamps.
  const ts = (iso: string | undefined) => `timezone('UTC', cast(${lit(iso)} as timestamptz))`;
  await table(
    'watermarks',
    'relation varchar, unique_id varchar, event_time_column varchar, watermark varchar, run_id varchar, updated_at timestamp',
    states.filter((s) => s.state.watermark).map(({ relation, state: { uniqueId, watermark: w } }) => `(${lit(relation)}, ${lit(uniqueId)}, ${lit(w!.column)}, ${lit(w!.value)}, ${lit(w!.runId)}, ${ts(w!.updatedAt)})`),
  );
  await table(
    'batches',
    'relation varchar, batch_start varchar, batch_end varchar, unique_id varchar, status varchar, rows_affected bigint, run_id varchar, updated_at timestamp, message varchar',
    states.flatMap(({ relation, state }) => Object.entries(state.batches ?? {}).map(([start, b]) => `(${lit(relation)}, ${lit(start)}, ${lit(b.end)}, ${lit(state.uniqueId)}, ${lit(b.status)}, ${lit(b.rows)}, ${lit(b.runId)}, ${ts(b.updatedAt)}, ${lit(b.message)})`)),
  );
  await table(
    'snapshot_runs',
    'relation varchar, unique_id varchar, run_id varchar, inserted bigint, invalidated bigint, updated_at timestamp',
    states.flatMap(({ relation, state }) => (state.snapshotRuns ?? []).map((r) => `(${lit(relation)}, ${lit(state.uniqueId)}, ${lit(r.runId)}, ${lit(r.inserted)}, ${lit(r.invalidated)}, ${ts(r.updatedAt)})`)),
  );
  const hasRunLog = (await session.query(`select count(*) from duckdb_views() where schema_name = 'etl_meta' and view_name = 'runs_log'`)).rows[0]?.[0];
  if (Number(hasRunLog)) {
    // One row per run: the start row's facts, the end row's outcome.
    await session.execute(
      `create view etl_meta.runs as select run_id, max(command) as command, max(target) as target, max(etl_version) as etl_version, timezone('UTC', max(started_at)) as started_at, timezone('UTC', max(finished_at)) as finished_at, ` +
        `coalesce(max(status) filter (where finished_at is not null), max(status)) as status from etl_meta.runs_log group by run_id`,
    );
  }
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
    const states: Array<{ relation: string; state: DeltaTableState }> = [];
    for (const t of lakeTables(store)) {
      const storage = new LocalStorage(t.root);
      const snapshot = await loadSnapshot(storage, session);
      const scan = await scanSnapshot(storage, session, snapshot);
      const state = snapshot.domains.get('etl.state')?.configuration;
      if (state) states.push({ relation: `${t.schema}.${t.name}`, state: JSON.parse(state) as DeltaTableState });
      // The run log (a start row and an end row per run) is shown as etl_meta.runs below.
      const rel = t.schema === 'etl_meta' && t.name === 'runs' ? `${q(t.schema)}."runs_log"` : `${q(t.schema)}.${q(t.name)}`;
      await session.execute(`create schema if not exists ${q(t.schema)}`);
      await session.execute(`create ${writable ? 'table' : 'view'} ${rel} as ${scan.sql}`);
      if (writable) before.set(rel, await fingerprint(rel));
    }
    await showStateAsEtlMeta(session, states);
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
