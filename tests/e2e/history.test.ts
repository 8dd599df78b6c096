// Run history and audit trail (core/history, the state API's historyRows and
// pruneHistory) after real runs on each engine: DuckDB's etl_meta, Postgres's
// (in a database of its own, so pruning touches no other test's runs) and the
// Delta tables under the lake. The rows are read back through `etl history
// --output json` and, on DuckDB and Postgres, straight from etl_meta. The
// history is append-only from etl's side: on Postgres, triggers of the test's
// own database refuse any UPDATE or DELETE of it (prune excepted); on Delta,
// no commit of the history tables removes a file before prune. A loader's
// attempts keep what it moved (rows read, loaded, rejected, deleted, rows/s)
// as run_results reports it, and a store from before those columns reads
// them as null, before and after the build that upgrades it.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createAdapter } from '../../adapters/index.js';
import type { DeltaAdapter } from '../../adapters/delta/adapter.js';
import { CURRENT_STATE_VERSION } from '../../adapters/sql-state.js';
import { recordSkippedInvocation } from '../../core/history/history.js';
import type { CostReport } from '../../core/history/report.js';
import { scanProject } from '../../core/project/load.js';
import { LOAD_COLUMNS, type HistoryNodeRun, type HistoryRows } from '../../core/state/state.js';
import { createPgDatabase, dbPathOf, dropPgDatabase, etlYml, killAll, pgConnect, readJson, removeTempDirs, runCli, withDb, writeFiles, writeProject } from './helpers.js';

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

const FILES = {
  'models/src.sql': '{{config materialized="table"}}\nselect * from (values (0), (1), (2)) as t(id)\n',
  'models/doubled.sql': '{{config materialized="table"}}\nselect id * 2 as id from {{ref "src"}}\n',
};

async function history(dir: string, ...args: string[]): Promise<HistoryRows> {
  const r = await runCli(['history', '--output', 'json', ...args], { cwd: dir });
  expect(r.code, r.output).toBe(0);
  return JSON.parse(r.stdout) as HistoryRows;
}

const runIdOf = (dir: string) => readJson(dir, 'target/run_results.json').metadata.invocation_id as string;

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } }).trim();
}

/** The audit facts and node attempts every engine must keep for a build of FILES. */
async function expectBuildRecorded(dir: string, engine: { versioned?: boolean } = {}) {
  git(dir, 'init', '-q');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'first');
  const commit = git(dir, 'rev-parse', 'HEAD');
  const r = await runCli(['build', '-s', 'src+', '--exclude', 'nothing_like_it'], { cwd: dir });
  expect(r.code, r.output).toBe(0);
  const runId = runIdOf(dir);
  const h = await history(dir);
  const run = h.runs.find((x) => x.run_id === runId)!;
  expect(run).toMatchObject({ command: 'build', selection: '-s src+ --exclude nothing_like_it', status: 'success', git_commit: commit, git_dirty: false, job: null, etl_version: expect.any(String), host: expect.any(String), user: expect.any(String) });
  expect(Date.parse(run.finished_at!)).toBeGreaterThanOrEqual(Date.parse(run.started_at!));
  const nodes = h.node_runs.filter((n) => n.run_id === runId).sort((a, b) => a.unique_id.localeCompare(b.unique_id));
  expect(nodes.map((n) => [n.unique_id, n.status, n.attempt, n.rows_affected])).toEqual([
    ['model.hist.doubled', 'success', 1, 3],
    ['model.hist.src', 'success', 1, 3],
  ]);
  // What doubled read: src, with the rows this run wrote to it (and its table version, where tables have versions).
  expect(nodes[0]!.upstream).toEqual([{ relation: expect.stringMatching(/"src"$/), rows: 3, ...(engine.versioned ? { version: expect.any(Number) } : {}) }]);
  expect(nodes[1]!.upstream).toEqual([]);
  for (const n of nodes) expect(n.execution_time).toEqual(expect.any(Number));

  // An edit to a tracked file makes the next run dirty; -s narrows to that node's attempts.
  writeFiles(dir, { 'models/src.sql': '{{config materialized="table"}}\nselect * from (values (0), (1), (2), (3)) as t(id)\n' });
  expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
  const second = runIdOf(dir);
  const only = await history(dir, '-s', 'doubled');
  expect(only.runs.map((x) => x.run_id)).toEqual([second, runId]);
  expect(only.runs[0]!.git_dirty).toBe(true);
  expect(only.node_runs.map((n) => [n.run_id, n.unique_id, n.rows_affected])).toEqual([
    [second, 'model.hist.doubled', 4],
    [runId, 'model.hist.doubled', 3],
  ]);
  return { first: runId, second, firstStarted: run.started_at!, secondStarted: only.runs[0]!.started_at! };
}

/** A files loader over a CSV with one malformed record (max_rejected lets it load the rest). */
const LOAD_FILES = {
  'models/shop.yml': 'sources:\n  - name: shop\n    tables:\n      - name: orders\n        loader: { type: files, path: "data/*.csv", max_rejected: 1 }\n        columns:\n          - { name: amount, data_type: integer }\n',
  'data/a.csv': 'id,amount\n1,10\n2,abc\n3,30\n',
};
const LOADER = 'loader.hist.shop.orders';

/** Rows of `etl history` text output as objects keyed by its headers. */
function textTable(out: string): Record<string, string>[] {
  const lines = out.split('\n').filter((l) => l.startsWith('| '));
  const cells = (l: string) => l.slice(2, -2).split(' | ').map((c) => c.trim());
  const heads = cells(lines[0]!);
  return lines.slice(1).map((l) => Object.fromEntries(cells(l).map((c, i) => [heads[i], c])));
}

/**
 * The loader's attempt in the history has the counts its run_results entry
 * reports (`etl history -o json` and the text table); then `downgrade` takes
 * the store back to before the loaders' columns (as an older etl left it):
 * the old attempt reads them as null, before and after the next build
 * upgrades the store, and that build's attempt has its own.
 */
async function expectLoadRecorded(dir: string, downgrade: () => Promise<void>): Promise<void> {
  const first = await runCli(['extract'], { cwd: dir });
  expect(first.code, first.output).toBe(0);
  const runId = runIdOf(dir);
  const loadOf = (h: HistoryRows, run: string) => h.node_runs.find((n) => n.run_id === run && n.unique_id === LOADER)!;
  const response = () => readJson(dir, 'target/run_results.json').results.find((r: { unique_id: string }) => r.unique_id === LOADER).adapter_response as Record<string, number | undefined>;
  const expectAsReported = (n: HistoryNodeRun, ar: Record<string, number | undefined>) => {
    for (const c of LOAD_COLUMNS) expect(n[c], c).toBe(ar[c] ?? null);
    // The load's bytes: read at the source and moved into the target.
    expect([n.bytes_scanned, n.bytes_written]).toEqual([ar.bytes, ar.bytes]);
  };
  const ar = response();
  expect(ar).toMatchObject({ rows_read: 3, rows_loaded: 2, rows_rejected: 1 });
  expect(ar.rows_per_second).toBeGreaterThan(0);
  const load = loadOf(await history(dir, '-s', 'source:shop.orders'), runId);
  expect(load).toMatchObject({ status: 'success', rows_affected: 2, rows_read: 3, rows_loaded: 2, rows_rejected: 1, rows_deleted: null });
  expectAsReported(load, ar);

  const text = await runCli(['history', '-s', 'source:shop.orders'], { cwd: dir });
  expect(text.code, text.output).toBe(0);
  expect(textTable(text.stdout)).toEqual([
    expect.objectContaining({ run: runId.slice(0, 8), node: 'shop.orders', status: 'success', 'rows read': '3', loaded: '2', rejected: '1', deleted: 'null', 'rows/s': String(ar.rows_per_second) }),
  ]);
  // Models only: no load columns in the table.
  const models = await runCli(['history', '-s', 'src'], { cwd: dir });
  expect(models.code, models.output).toBe(0);
  expect(models.stdout).not.toContain('rows read');
  // etl report sums a loader's rows loaded and rejected over the period.
  expect(await loadReport(dir)).toEqual({ rows_loaded: 2, rows_rejected: 1 });
  const reportText = await runCli(['report'], { cwd: dir });
  expect(reportText.code, reportText.output).toBe(0);
  expect(textTable(reportText.stdout)).toContainEqual(expect.objectContaining({ model: 'shop.orders', loaded: '2', rejected: '1' }));

  await downgrade();
  const old = loadOf(await history(dir, '-s', 'source:shop.orders'), runId);
  expect(old).toMatchObject({ status: 'success', rows_affected: 2, bytes_scanned: ar.bytes });
  for (const c of LOAD_COLUMNS) expect(old[c], c).toBeNull();
  expect(await loadReport(dir)).toEqual({ rows_loaded: null, rows_rejected: null });
  writeFiles(dir, { 'data/b.csv': 'id,amount\n4,40\n5,50\n' });
  expect((await runCli(['extract'], { cwd: dir })).code).toBe(0);
  const second = runIdOf(dir);
  const after = await history(dir, '-s', 'source:shop.orders');
  expect(after.runs.map((r) => r.run_id)).toEqual([second, runId]);
  expect(loadOf(after, second)).toMatchObject({ rows_read: 2, rows_loaded: 2, rows_rejected: 0 });
  expectAsReported(loadOf(after, second), response());
  expect(loadOf(after, runId)).toEqual(old);
  // The old attempt's counts are unknown: the report sums the new one's.
  expect(await loadReport(dir)).toEqual({ rows_loaded: 2, rows_rejected: 0 });
}

/** `etl report`'s figures for the loader. */
async function loadReport(dir: string): Promise<{ rows_loaded: number | null; rows_rejected: number | null }> {
  const r = await runCli(['report', '--output', 'json'], { cwd: dir });
  expect(r.code, r.output).toBe(0);
  const g = (JSON.parse(r.stdout) as CostReport).groups.find((x) => x.group === 'shop.orders')!;
  return { rows_loaded: g.rows_loaded, rows_rejected: g.rows_rejected };
}

/** etl_meta back at migration 4: node_runs without the loaders' columns. */
const DOWNGRADE_TO_4 = [
  ...LOAD_COLUMNS.map((c) => `alter table etl_meta.node_runs drop column ${c}`),
  'delete from etl_meta.schema_version where version >= 5',
];

describe('run history on DuckDB', () => {
  it('one row per run with its audit facts, one per node attempt with rows, duration and what it read', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('hist'), ...FILES });
    const { first, second } = await expectBuildRecorded(dir);
    // The same rows, straight from etl_meta.
    await withDb(dbPathOf(dir), async (db) => {
      const runs = await db.rows(`select run_id, command, status, git_dirty from etl_meta.runs order by started_at`);
      expect(runs).toEqual([
        { run_id: first, command: 'build', status: 'success', git_dirty: false },
        { run_id: second, command: 'build', status: 'success', git_dirty: true },
      ]);
      const upstream = await db.rows(`select upstream from etl_meta.node_runs where run_id = '${first}' and unique_id = 'model.hist.doubled'`);
      expect(JSON.parse(String(upstream[0]!.upstream))).toEqual([{ relation: '"main"."src"', rows: 3 }]);
    }, { readOnly: true });
  });

  it('a run starts as a row of run_starts and ends as one complete row of runs, never updated; an etl_meta of version 2 reads the same before and after its upgrade', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('hist'), ...FILES });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    const old = runIdOf(dir);
    await withDb(dbPathOf(dir), async (db) => {
      expect(await db.rows(`select run_id, command from etl_meta.run_starts`)).toEqual([{ run_id: old, command: 'build' }]);
      expect(await db.rows(`select run_id, command, status from etl_meta.runs`)).toEqual([{ run_id: old, command: 'build', status: 'success' }]);
      // A run that never ended (its process killed): only its start.
      await db.rows(`insert into etl_meta.run_starts (run_id, command, target, started_at) values ('killed', 'run', 'dev', now()::timestamp)`);
    }, { readOnly: false });
    expect((await history(dir)).runs.map((r) => [r.run_id, r.status, r.finished_at])).toEqual([
      ['killed', 'running', null],
      [old, 'success', expect.any(String)],
    ]);
    // Back to version 2, as an older etl left it: no run_starts, runs ended in place.
    await withDb(dbPathOf(dir), async (db) => {
      for (const sql of [...DOWNGRADE_TO_4, `drop table etl_meta.run_starts`, `drop table etl_meta.cdc_positions`, `delete from etl_meta.schema_version where version >= 3`]) await db.rows(sql);
    }, { readOnly: false });
    const before = await history(dir);
    expect(before.runs.map((r) => [r.run_id, r.status])).toEqual([[old, 'success']]);
    // The next build upgrades etl_meta (migrations 3 and on) and records its own run the new way.
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    const upgraded = runIdOf(dir);
    const after = await history(dir);
    expect(after.runs.map((r) => [r.run_id, r.status])).toEqual([
      [upgraded, 'success'],
      [old, 'success'],
    ]);
    expect(after.runs[1]).toEqual(before.runs[0]);
    await withDb(dbPathOf(dir), async (db) => expect(await db.rows(`select max(version) as v from etl_meta.schema_version`)).toEqual([{ v: CURRENT_STATE_VERSION }]), { readOnly: true });
  });

  it("a loader's attempt keeps rows read, loaded, rejected and rows/s as run_results has them; an etl_meta of version 4 reads them as null, and the next build migrates it", async () => {
    const dir = writeProject({ 'etl.yml': etlYml('hist'), ...FILES, ...LOAD_FILES });
    await expectLoadRecorded(dir, () => withDb(dbPathOf(dir), async (db) => {
      for (const sql of DOWNGRADE_TO_4) await db.rows(sql);
    }, { readOnly: false }));
    await withDb(dbPathOf(dir), async (db) => expect(await db.rows(`select max(version) as v from etl_meta.schema_version`)).toEqual([{ v: CURRENT_STATE_VERSION }]), { readOnly: true });
    // A model over the loaded source read one table, with the rows the loader put in it (the source and its loader are one relation).
    writeFiles(dir, { 'models/big.sql': "select * from {{source 'shop' 'orders'}} where amount >= 30\n", 'data/c.csv': 'id,amount\n6,60\n' });
    expect((await runCli(['build', '-s', 'source:shop.orders+'], { cwd: dir })).code).toBe(0);
    const built = await history(dir, '-s', 'big', '--limit', '1');
    expect(built.node_runs.map((n) => [n.unique_id, n.upstream])).toEqual([['model.hist.big', [{ relation: '"shop"."orders"', rows: 1 }]]]);
  });

  it('history prune deletes only the runs older than --older-than, with their node attempts', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('hist'), ...FILES });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    const first = runIdOf(dir);
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    // A run whose process was killed a day before: only its start row.
    await withDb(dbPathOf(dir), (db) => db.rows(`insert into etl_meta.run_starts (run_id, command, target, started_at) values ('killed', 'build', 'dev', now()::timestamp - interval 1 day)`), { readOnly: false });
    const h = await history(dir);
    expect(h.runs.at(-1)).toMatchObject({ run_id: 'killed', status: 'running' });
    const secondStart = h.runs[0]!.started_at!;
    const pruned = await runCli(['history', 'prune', '--older-than', secondStart], { cwd: dir });
    expect(pruned.code, pruned.output).toBe(0);
    expect(pruned.stdout).toContain('pruned 2 runs and 2 node attempts');
    await withDb(dbPathOf(dir), async (db) => expect(await db.rows(`select run_id from etl_meta.run_starts`)).toEqual([{ run_id: h.runs[0]!.run_id }]), { readOnly: true });
    const after = await history(dir);
    expect(after.runs.map((r) => r.run_id)).toEqual([h.runs[0]!.run_id]);
    expect(after.runs.map((r) => r.run_id)).not.toContain(first);
    expect(after.node_runs).toHaveLength(2);
  });

  it('a skipped job invocation is recorded with its reason', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('hist'), ...FILES });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    const skipped = await recordSkippedInvocation({ projectDir: dir, job: 'nightly', command: 'build -s tag:daily', reason: 'the previous run of nightly is still running' });
    expect(skipped.written).toBe('target');
    const h = await history(dir);
    expect(h.runs[0]).toMatchObject({ run_id: skipped.runId, job: 'nightly', command: 'build -s tag:daily', status: 'skipped', message: 'the previous run of nightly is still running' });
    expect(h.node_runs.filter((n) => n.run_id === skipped.runId)).toEqual([]);
  });

  it('bad --since is exit 2 with the fix', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('hist'), ...FILES });
    const r = await runCli(['history', '--since', 'last week'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--since "last week" is not a duration or a date');
  });
});

describe('run history on Postgres', () => {
  let admin: pg.Client;
  let url: string;
  beforeAll(async () => {
    admin = await pgConnect();
    url = await createPgDatabase(admin, 'etl_hist');
  });
  afterAll(async () => {
    await killAll();
    await dropPgDatabase(admin, url);
    await admin.end();
  });

  it('keeps the same rows in etl_meta, never updated or deleted but by prune', async () => {
    const dir = writeProject({ 'etl.yml': `name: hist\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${url}", schema: hist, threads: 2 }\n`, ...FILES });
    const db = await pgConnect(url);
    try {
      // etl_meta as a first run creates it, then triggers that refuse every UPDATE, DELETE and TRUNCATE of the history.
      expect((await runCli(['build', '-s', 'src'], { cwd: dir })).code).toBe(0);
      await db.query(`create function public.history_is_append_only() returns trigger language plpgsql as $$ begin raise exception 'history is append-only: % on %', tg_op, tg_table_name; end $$`);
      for (const table of ['runs', 'node_runs', 'run_starts']) {
        await db.query(`create trigger no_update before update on etl_meta.${table} for each statement execute function public.history_is_append_only()`);
        await db.query(`create trigger no_delete before delete or truncate on etl_meta.${table} for each statement execute function public.history_is_append_only()`);
      }
      await db.query(`delete from etl_meta.runs where false`).then(
        () => expect.unreachable('the trigger fires on any delete'),
        (err: Error) => expect(err.message).toBe('history is append-only: DELETE on runs'),
      );
      const { first, second, secondStarted } = await expectBuildRecorded(dir);
      // A failing run, a skipped invocation, `etl retry`, history and report: still nothing but inserts.
      writeFiles(dir, { 'models/doubled.sql': '{{config materialized="table"}}\nselect id / 0 as id from {{ref "src"}}\n' });
      expect((await runCli(['build'], { cwd: dir })).code).toBe(1);
      const failed = runIdOf(dir);
      writeFiles(dir, FILES);
      expect((await runCli(['retry'], { cwd: dir })).code).toBe(0);
      expect((await recordSkippedInvocation({ projectDir: dir, job: 'nightly', command: 'build', reason: 'overlap' })).written).toBe('target');
      const h = await history(dir);
      expect(h.runs.slice(0, 3).map((r) => r.status)).toEqual(['skipped', 'success', 'error']);
      expect(h.runs[2]!.run_id).toBe(failed);
      expect((await runCli(['report'], { cwd: dir })).code).toBe(0);
      const runs = await db.query(`select run_id, status, git_dirty, selection from etl_meta.runs where run_id in ($1, $2) order by started_at`, [first, second]);
      expect(runs.rows).toEqual([
        { run_id: first, status: 'success', git_dirty: 'false', selection: '-s src+ --exclude nothing_like_it' },
        { run_id: second, status: 'success', git_dirty: 'true', selection: null },
      ]);
      // Prune is the one command that deletes: refused while the triggers stand, done once they go.
      const refused = await runCli(['history', 'prune', '--older-than', secondStarted], { cwd: dir });
      expect(refused.code).not.toBe(0);
      expect(refused.output).toContain('history is append-only: DELETE on');
      for (const table of ['runs', 'node_runs', 'run_starts']) await db.query(`drop trigger no_delete on etl_meta.${table}`);
      const pruned = await runCli(['history', 'prune', '--older-than', secondStarted], { cwd: dir });
      expect(pruned.code, pruned.output).toBe(0);
      const left = await db.query(`select run_id from etl_meta.runs order by started_at`);
      expect(left.rows.map((r) => r.run_id)).not.toContain(first);
      expect(left.rows[0]).toEqual({ run_id: second });
      expect((await db.query(`select count(*)::int as n from etl_meta.node_runs where run_id = $1`, [first])).rows).toEqual([{ n: '0' }]);
      expect((await db.query(`select count(*)::int as n from etl_meta.run_starts where run_id = $1`, [first])).rows).toEqual([{ n: '0' }]);
    } finally {
      await db.end();
    }
  });

  it("a loader's attempt keeps what it moved; etl_meta of version 4 reads it as null until a build migrates it", async () => {
    // A schema of its own in the test's database (etl_meta is shared with the test above; this one looks only at its own runs).
    const dir = writeProject({ 'etl.yml': `name: hist\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${url}", schema: hist_load, threads: 2 }\n`, ...FILES, ...LOAD_FILES });
    const db = await pgConnect(url);
    try {
      await expectLoadRecorded(dir, async () => {
        await db.query('begin');
        for (const sql of DOWNGRADE_TO_4) await db.query(sql);
        await db.query('commit');
      });
      expect((await db.query(`select max(version)::int as v from etl_meta.schema_version`)).rows).toEqual([{ v: String(CURRENT_STATE_VERSION) }]);
    } finally {
      await db.end();
    }
  });
});

/** The columns of the lake's node_runs table, as its newest metaData action in the log has them. */
function nodeRunsColumns(dir: string): string[] {
  const log = path.join(dir, 'lake', 'etl_meta', 'node_runs', '_delta_log');
  const actions = readdirSync(log).filter((f) => f.endsWith('.json')).sort().flatMap((f) => readFileSync(path.join(log, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { metaData?: { schemaString: string } }));
  const schema = actions.filter((a) => a.metaData).at(-1)!.metaData!.schemaString;
  return (JSON.parse(schema) as { fields: Array<{ name: string }> }).fields.map((f) => f.name);
}

const LAKE_YML = etlYml('hist').replace('target: dev\n', 'target: lake\n').replace('targets:\n', 'targets:\n  lake: { type: delta, path: lake, schema: main, threads: 2 }\n');

describe('run history on Delta', () => {
  it('keeps the rows in Delta tables under the lake, and prunes them', async () => {
    const dir = writeProject({ 'etl.yml': LAKE_YML, ...FILES });
    const { second, secondStarted } = await expectBuildRecorded(dir, { versioned: true });
    // Append-only: no commit of the history tables has removed a file (a delete or rewrite would).
    const removes = () =>
      ['runs', 'node_runs'].flatMap((table) => {
        const log = path.join(dir, 'lake', 'etl_meta', table, '_delta_log');
        const commits = readdirSync(log).filter((f) => f.endsWith('.json'));
        expect(commits.length).toBeGreaterThan(1);
        return commits.flatMap((f) => readFileSync(path.join(log, f), 'utf8').trim().split('\n').filter((l) => 'remove' in JSON.parse(l)));
      });
    expect(removes()).toEqual([]);
    // Delta reports the bytes of the data files each table's commit added.
    const written = (await history(dir, '-s', 'src')).node_runs.map((n) => n.bytes_written);
    expect(written).toHaveLength(2);
    for (const b of written) expect(b).toBeGreaterThan(0);
    expect((await runCli(['history', 'prune', '--older-than', secondStarted], { cwd: dir })).code).toBe(0);
    const h = await history(dir);
    expect(h.runs.map((r) => r.run_id)).toEqual([second]);
    expect([...new Set(h.node_runs.map((n) => n.run_id))]).toEqual([second]);
    expect(removes().length).toBeGreaterThan(0);
    // The history is Delta tables of its own, beside the models'.
    expect(existsSync(path.join(dir, 'lake', 'etl_meta', 'runs', '_delta_log', '00000000000000000000.json'))).toBe(true);
  });

  it("a loader's attempt keeps what it moved; a node_runs table without those columns reads them as null, and the next run adds them", async () => {
    const dir = writeProject({ 'etl.yml': LAKE_YML, ...FILES, ...LOAD_FILES });
    await expectLoadRecorded(dir, async () => {
      // node_runs as an older etl wrote it: the same rows, without the loaders' columns (an overwrite's rows set the schema).
      const scan = scanProject(dir, { env: process.env });
      const adapter = (await createAdapter(scan.target, scan.root)) as DeltaAdapter;
      await adapter.open();
      try {
        await adapter.withSession((s) => adapter.overwriteRows(s as never, { schema: 'etl_meta', name: 'node_runs' }, `select * exclude (${LOAD_COLUMNS.join(', ')}) from "etl_meta"."node_runs"`));
      } finally {
        await adapter.close();
      }
      expect(nodeRunsColumns(dir)).not.toContain(LOAD_COLUMNS[0]);
    });
    // The next run's append added them (schema evolution of etl's own table).
    expect(nodeRunsColumns(dir)).toEqual(expect.arrayContaining([...LOAD_COLUMNS]));
  });
});
