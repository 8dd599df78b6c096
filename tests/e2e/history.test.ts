// Run history and audit trail (core/history, the state API's historyRows and
// pruneHistory) after real runs on each engine: DuckDB's etl_meta, Postgres's
// (in a database of its own, so pruning touches no other test's runs) and the
// Delta tables under the lake. The rows are read back through `etl history
// --output json` and, on DuckDB and Postgres, straight from etl_meta. The
// history is append-only from etl's side: on Postgres, triggers of the test's
// own database refuse any UPDATE or DELETE of it (prune excepted); on Delta,
// no commit of the history tables removes a file before prune.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { CURRENT_STATE_VERSION } from '../../adapters/sql-state.js';
import { recordSkippedInvocation } from '../../core/history/history.js';
import type { HistoryRows } from '../../core/state/state.js';
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
      for (const sql of [`drop table etl_meta.run_starts`, `drop table etl_meta.cdc_positions`, `delete from etl_meta.schema_version where version >= 3`]) await db.rows(sql);
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
});

describe('run history on Delta', () => {
  it('keeps the rows in Delta tables under the lake, and prunes them', async () => {
    const yml = etlYml('hist').replace('target: dev\n', 'target: lake\n').replace('targets:\n', 'targets:\n  lake: { type: delta, path: lake, schema: main, threads: 2 }\n');
    const dir = writeProject({ 'etl.yml': yml, ...FILES });
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
});
