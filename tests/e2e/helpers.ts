// Shared helpers for the end-to-end tests: they spawn the built CLI
// (dist/bin/etl.js, the bundled `etl` command) on throw-away projects and look at what it leaves in the
// DuckDB file and in target/.
//
// dist/ must be built first (`npx tsc -p .`; `npm test` does it in pretest).

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The CLI under test; ETL_E2E_CLI points the suite at another build (e.g. an installed package). */
export const CLI = process.env.ETL_E2E_CLI ?? path.join(REPO_ROOT, 'dist/bin/etl.js');
export const TEMPLATE_DIR = path.join(REPO_ROOT, 'project-template');

export function assertCliBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p .\` (or \`npm test\`, which builds first)`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for assertions that do not care which. */
  output: string;
}

function childEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  delete env.FORCE_COLOR;
  return env;
}

/** A running CLI process whose output is collected as it arrives. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly done: Promise<CliResult>;
  private readonly listeners = new Set<() => void>();

  /** `command`: run this argv instead of `node <CLI> ...args`; `cleanEnv`: only options.env, not this process's environment. */
  constructor(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; command?: string[]; cleanEnv?: boolean }) {
    assertCliBuilt();
    const [file, ...argv] = options.command ?? [process.execPath, CLI, ...args];
    this.child = spawn(file!, argv, { cwd: options.cwd, env: options.cleanEnv ? { ...options.env } : childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      for (const l of this.listeners) l();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      for (const l of this.listeners) l();
    });
    running.add(this);
    this.done = new Promise<CliResult>((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => {
        running.delete(this);
        for (const l of this.listeners) l();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, output: `${this.stdout}\n${this.stderr}` });
      });
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Resolves once stdout+stderr match `pattern`; rejects if the process exits first or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pattern.test(this.stdout) || pattern.test(this.stderr)) {
          cleanup();
          resolve();
        } else if (this.exited) {
          cleanup();
          reject(new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${pattern}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Resolves with the result, or rejects if the process is still running after `timeoutMs`. */
  exitWithin(timeoutMs: number): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`process still running after ${timeoutMs}ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`)), timeoutMs);
      void this.done.then((r) => {
        clearTimeout(timer);
        resolve(r);
      }, reject);
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exited) this.child.kill(signal);
  }
}

const running = new Set<CliProcess>();

/** Starts `etl <args>` in `cwd` without waiting for it. */
export function startCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): CliProcess {
  return new CliProcess(args, options);
}

/** Starts a command line as is (`argv[0]` found on env.PATH), with only the environment given: what a service manager does. */
export function startCommand(argv: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): CliProcess {
  return new CliProcess([], { ...options, command: argv, cleanEnv: true });
}

/** Runs `etl <args>` in `cwd` to completion (killed after `timeoutMs`). */
export async function runCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult> {
  const p = startCli(args, options);
  try {
    return await p.exitWithin(options.timeoutMs ?? 45_000);
  } finally {
    p.kill();
  }
}

/** Kills every CLI process still running (call from afterEach), and waits for them to go. */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const p of left) p.kill('SIGKILL');
  await Promise.all(left.map((p) => p.done.catch(() => undefined)));
}

// ---------------------------------------------------------------------------
// Temporary projects

const tempDirs: string[] = [];

export function makeTempDir(prefix = 'etl-e2e-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Removes every temporary folder made so far (call from afterEach/afterAll). */
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A fresh copy of project-template/ (without any generated target/), returned as its path. */
export function copyTemplate(): string {
  const dir = path.join(makeTempDir(), 'shop');
  cpSync(TEMPLATE_DIR, dir, {
    recursive: true,
    filter: (p) => !/(^|[\\/])target([\\/]|$)/.test(path.relative(TEMPLATE_DIR, p)),
  });
  return dir;
}

/** A project made of the given files (paths relative to the project root). */
export function writeProject(files: Record<string, string>): string {
  const dir = path.join(makeTempDir(), 'proj');
  writeFiles(dir, files);
  return dir;
}

export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}

/** An etl.yml with one DuckDB target at target/dev.duckdb. */
export function etlYml(name: string, extra = ''): string {
  return `name: ${name}
version: 1
target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, schema: main, threads: 4 }
${extra}`;
}

export function read(root: string, rel: string): string {
  return readFileSync(path.join(root, rel), 'utf8');
}

export function readJson<T = any>(root: string, rel: string): T {
  return JSON.parse(read(root, rel)) as T;
}

/** Every file under `dir` (relative paths, sorted). */
export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p).split(path.sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/** path -> sha256:size:mtime of every file under `dir`; equal snapshots mean nothing was written. */
export function snapshotDir(dir: string): Record<string, string> {
  const snap: Record<string, string> = {};
  for (const rel of listFiles(dir)) {
    const file = path.join(dir, rel);
    const st = statSync(file);
    snap[rel] = `${createHash('sha256').update(readFileSync(file)).digest('hex')}:${st.size}:${st.mtimeMs}`;
  }
  return snap;
}

// ---------------------------------------------------------------------------
// DuckDB

export type Row = Record<string, unknown>;

/**
 * Opens the DuckDB file, runs `fn`, and closes it again before returning, so
 * the next CLI process can take the file's lock. Read-only by default, so that
 * looking never changes the file; `{ readOnly: false }` to write.
 */
export async function withDb<T>(dbPath: string, fn: (db: Db) => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
  // Writable: may create the file (e.g. to load source tables before a build), so its folder must exist.
  if (options.readOnly === false) mkdirSync(path.dirname(dbPath), { recursive: true });
  const instance = await DuckDBInstance.create(dbPath, options.readOnly === false ? {} : { access_mode: 'READ_ONLY' });
  let connection: DuckDBConnection | undefined;
  try {
    connection = await instance.connect();
    return await fn(new Db(connection));
  } finally {
    connection?.closeSync();
    instance.closeSync();
  }
}

export class Db {
  constructor(readonly connection: DuckDBConnection) {}

  /** Rows as objects; bigints that fit become numbers. */
  async rows(sql: string): Promise<Row[]> {
    const reader = await this.connection.runAndReadAll(sql);
    return reader.getRowObjectsJS().map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' && Number.isSafeInteger(Number(v)) ? Number(v) : v])),
    );
  }

  /** The single value of a one-row, one-column query. */
  async value(sql: string): Promise<unknown> {
    const rows = await this.rows(sql);
    if (rows.length !== 1) throw new Error(`expected one row from ${sql}, got ${rows.length}`);
    return Object.values(rows[0]!)[0];
  }

  async count(relation: string): Promise<number> {
    return Number(await this.value(`select count(*) from ${relation}`));
  }

  /** table_name -> 'BASE TABLE' | 'VIEW', for every relation in `schema` (the project's; etl's own meta schema is elsewhere). */
  async relations(schema = 'main'): Promise<Record<string, string>> {
    const rows = await this.rows(`select table_name, table_type from information_schema.tables where table_schema = '${schema}' order by all`);
    return Object.fromEntries(rows.map((r) => [r.table_name as string, r.table_type as string]));
  }

  /** schema.name of every leftover temporary relation (`*__etl_tmp*`), in any schema. */
  async tempRelations(): Promise<string[]> {
    const rows = await this.rows("select table_schema || '.' || table_name as name from information_schema.tables where position('__etl_tmp' in table_name) > 0 order by all");
    return rows.map((r) => r.name as string);
  }
}

/** Path of the DuckDB file of a project using the default target. */
export function dbPathOf(projectDir: string): string {
  return path.join(projectDir, 'target/dev.duckdb');
}

// ---------------------------------------------------------------------------
// Postgres (the tests/e2e/postgres-*.test.ts suites)

/** The test database, trust auth; ETL_PG_URL points the suites elsewhere. */
export const PG_URL = process.env.ETL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh schema name for one test: etl_t_<random>. */
export function newPgSchema(): string {
  return `etl_t_${createHash('sha1').update(`${process.pid}:${Math.random()}:${Date.now()}`).digest('hex').slice(0, 10)}`;
}

/**
 * A client on the test database whose values come back as the text Postgres
 * prints (booleans as true/false), so they compare with DuckDB's casts to varchar.
 */
/**
 * A database of the test's own, on the server PG_URL names; returns its URL.
 * etl_meta, the state's schema, is per database: a test with its own database
 * has state (runs, watermarks, history) no other test can see or migrate.
 */
export async function createPgDatabase(admin: pg.Client, prefix: string): Promise<string> {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  await admin.query(`create database ${pgQuoteIdent(name)}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops a database createPgDatabase made, connections and all. */
export async function dropPgDatabase(admin: pg.Client, url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  // Its replication slots (CDC loaders') first: they hold WAL, and a database with one cannot be dropped.
  await admin.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1 and not active`, [name]);
  await admin.query(`drop database if exists ${pgQuoteIdent(name)} with (force)`);
}

export async function pgConnect(url = PG_URL): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    application_name: 'etl e2e',
    types: { getTypeParser: (oid: number) => (oid === 16 ? (v: string) => (v === 't' ? 'true' : 'false') : (v: string) => v) } as pg.CustomTypesConfig,
  });
  client.on('error', () => undefined);
  return connectTestPostgres(client, url);
}

/**
 * Connects a client to the test server, or fails with what to do about it:
 * the Postgres suites need a real server, and a bare ECONNREFUSED does not say so.
 */
export async function connectTestPostgres<C extends pg.Client>(client: C, url = PG_URL): Promise<C> {
  try {
    await client.connect();
    return client;
  } catch (err) {
    const { hostname, port } = new URL(url);
    throw new Error(`Postgres is not reachable on ${hostname || '127.0.0.1'}:${port || 5432}: start it (see .ci/run), or point ETL_PG_URL at one (${(err as Error).message})`);
  }
}

/** Polls `probe` until it returns true, or returns false after `timeoutMs`: waiting on the server's state, not on a clock. */
export async function pollUntil(probe: () => Promise<boolean>, timeoutMs = 20_000, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
}

/** Polls pg_stat_activity until one client backend runs a statement containing every needle; returns its pid. */
export async function waitForBackend(client: pg.Client, needles: string[], timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await client.query<{ pid: string }>(
      `select pid from pg_stat_activity where datname = current_database() and state = 'active' and backend_type = 'client backend' and pid <> pg_backend_pid() and ${needles.map((_, i) => `position($${i + 1} in query) > 0`).join(' and ')}`,
      needles,
    );
    if (r.rows.length === 1) return Number(r.rows[0]!.pid);
    if (r.rows.length > 1) throw new Error(`${r.rows.length} backends match ${needles.join(', ')}`);
    if (Date.now() > deadline) throw new Error(`no backend ran a statement with ${needles.join(', ')} within ${timeoutMs}ms`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

export function pgQuoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Drops a test schema, the schemas etl derived from it (`<schema>_x`: audit, custom schemas), and its rows in etl_meta. */
export async function dropPgSchema(client: pg.Client, schema: string): Promise<void> {
  const derived = await client.query<{ nspname: string }>(`select nspname::text from pg_namespace where nspname = $1 or nspname like $2`, [schema, `${schema}\\_%`]);
  for (const { nspname } of derived.rows) await client.query(`drop schema if exists ${pgQuoteIdent(nspname)} cascade`);
  if (!(await client.query(`select 1 from pg_namespace where nspname = 'etl_meta'`)).rowCount) return;
  const relation = `"${schema}".%`;
  await client.query(`delete from etl_meta.runs where run_id in (select run_id from etl_meta.node_runs where relation like $1)`, [relation]);
  if ((await client.query(`select 1 from pg_tables where schemaname = 'etl_meta' and tablename = 'run_starts'`)).rowCount) {
    await client.query(`delete from etl_meta.run_starts where run_id in (select run_id from etl_meta.node_runs where relation like $1)`, [relation]);
  }
  await client.query(`delete from etl_meta.node_runs where relation like $1`, [relation]);
  for (const t of ['watermarks', 'batches', 'snapshot_runs']) await client.query(`delete from etl_meta.${t} where relation like $1`, [`${schema}.%`]);
}

// ---------------------------------------------------------------------------
// Artifacts

/**
 * target/run_results.json with etl's per-result extras (rows_affected,
 * quarantined, failing_rows_sample, compiled_path) lifted out of
 * adapter_response, where dbt's schema lets them live, onto each result.
 */
export function readRunResults<T = any>(root: string): T {
  const rr = readJson(root, 'target/run_results.json');
  rr.results = (rr.results as Array<Record<string, any>>).map((r) => {
    const { rows_affected = null, quarantined, failing_rows_sample, compiled_path = null } = r.adapter_response ?? {};
    return { ...r, rows_affected, compiled_path, ...(quarantined !== undefined && { quarantined }), ...(failing_rows_sample && { failing_rows_sample }) };
  });
  return rr as T;
}

/**
 * For a test file on Postgres: `admin`, a client connected before its tests,
 * and `schema()`, a fresh schema name dropped (with what etl derived from it)
 * after them, when the CLI processes and temporary folders are gone too.
 */
export function pgTestSchemas(): { readonly admin: pg.Client; schema(): string } {
  let admin: pg.Client | undefined;
  const made: string[] = [];
  beforeAll(async () => {
    admin = await pgConnect();
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
    if (!admin) return;
    for (const s of made) await dropPgSchema(admin, s);
    await admin.end();
  });
  return {
    get admin() {
      return admin!;
    },
    schema() {
      const s = newPgSchema();
      made.push(s);
      return s;
    },
  };
}
