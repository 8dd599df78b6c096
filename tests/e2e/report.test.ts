// `etl report` (core/history/report.ts) checked against the history rows it
// summarises: real builds on DuckDB, Postgres and Delta (one model failing, one
// retried), plus a previous period made of the same rows moved 40 days back
// with twice the time, so the trend is known. The budget alert is raised by
// the run whose cost crosses alert_at of the month's budget, and only by it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { CostReport } from '../../core/history/report.js';
import type { HistoryRows } from '../../core/state/state.js';
import { createPgDatabase, dbPathOf, dropPgDatabase, etlYml, killAll, pgConnect, removeTempDirs, runCli, withDb, writeFiles, writeProject } from './helpers.js';

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

const RATES = 'cost: { per_cpu_hour: 3600, per_gb_written: 2, per_gb_scanned: 1 }\n';
const FILES = {
  'models/staging/a.sql': '{{config materialized="table" tags=(list "daily")}}\nselect 1 as id\n',
  'models/staging/b.sql': '{{config materialized="table"}}\nselect id from {{ref "a"}}\n',
  'models/marts/bad.sql': '{{config materialized="table" tags=(list "daily")}}\nselect cast((select \'not a number\') as integer) as x\n',
};

async function json<T>(dir: string, args: string[]): Promise<T> {
  const r = await runCli([...args, '--output', 'json'], { cwd: dir });
  expect(r.code, r.output).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** percentile_cont, as the engines compute it. */
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const rank = p * (s.length - 1);
  const lo = Math.floor(rank);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (rank - lo);
}

/**
 * Three builds (bad fails each time), one node made a retry, the report, and
 * its figures against the rows. `exec` runs SQL on the target.
 */
async function checkReport(dir: string, exec: (sql: string) => Promise<void>) {
  for (let i = 0; i < 3; i++) expect((await runCli(['build', '--no-check'], { cwd: dir })).code).toBe(1);
  // b of the first run as a retried node: attempt 1 failed, attempt 2 (a second row) succeeded.
  const first = (await json<HistoryRows>(dir, ['history', '--limit', '0'])).runs.at(-1)!.run_id;
  await exec(`insert into etl_meta.node_runs (run_id, unique_id, relation, status, started_at, finished_at, rows_affected, message, attempt, execution_time) select run_id, unique_id, relation, 'error', started_at, finished_at, null, 'lost connection', 1, 0.25 from etl_meta.node_runs where run_id = '${first}' and unique_id like '%.b'`);
  await exec(`update etl_meta.node_runs set attempt = 2 where run_id = '${first}' and unique_id like '%.b' and status = 'success'`);
  const h = await json<HistoryRows>(dir, ['history', '--limit', '0']);
  expect(h.runs).toHaveLength(3);
  // The previous period: the same runs and node attempts 40 days earlier, each taking twice as long.
  const interval = '40 days';
  await exec(`insert into etl_meta.runs (run_id, command, target, etl_version, started_at, finished_at, status) select 'old-' || run_id, command, target, etl_version, started_at - interval '${interval}', finished_at - interval '${interval}', status from etl_meta.runs`);
  await exec(
    `insert into etl_meta.node_runs (run_id, unique_id, relation, status, started_at, finished_at, rows_affected, message, attempt, execution_time) select 'old-' || run_id, unique_id, relation, status, started_at - interval '${interval}', finished_at - interval '${interval}', rows_affected, message, attempt, execution_time * 2 from etl_meta.node_runs`,
  );
  const report = await json<CostReport>(dir, ['report', '--since', '30d']);
  const rows = h.node_runs.filter((n) => n.status !== 'skipped');
  const byModel = (name: string) => rows.filter((n) => n.unique_id.endsWith(`.${name}`));
  for (const name of ['a', 'b', 'bad']) {
    const attempts = byModel(name);
    // A node's run is its last attempt; time and cost count every attempt.
    const last = attempts.filter((n) => !attempts.some((o) => o.run_id === n.run_id && o.attempt > n.attempt));
    const total = attempts.reduce((x, n) => x + n.execution_time!, 0);
    const secs = last.map((n) => n.execution_time!);
    const g = report.groups.find((x) => x.group === name)!;
    expect(last).toHaveLength(3);
    expect(g.runs).toBe(3);
    expect(g.retries).toBe(name === 'b' ? 1 : 0);
    expect(g.failed).toBe(name === 'bad' ? 3 : 0);
    expect(g.success_rate).toBe(name === 'bad' ? 0 : 1);
    expect(g.seconds).toBeCloseTo(total, 6);
    // 3600 per cpu-hour: a second costs 1.
    expect(g.cost).toBeCloseTo(total, 6);
    expect(g.p50_seconds).toBeCloseTo(percentile(secs, 0.5), 6);
    expect(g.p95_seconds).toBeCloseTo(percentile(secs, 0.95), 6);
    expect(g.previous!.seconds).toBeCloseTo(2 * total, 6);
    expect(g.cost_trend_pct).toBeCloseTo(-50, 6);
  }
  // Ranked by cost, most first.
  expect(report.groups.map((g) => g.cost)).toEqual([...report.groups.map((g) => g.cost)].sort((x, y) => y - x));
  expect(report.current).toMatchObject({ runs: 3, succeeded: 0, failed: 3, node_runs: 9, node_failures: 3 });
  expect(report.previous).toMatchObject({ runs: 3, succeeded: 0, failed: 3, node_runs: 9, node_failures: 3 });
  expect(report.current.cost).toBeCloseTo(rows.reduce((x, n) => x + n.execution_time!, 0), 6);
  expect(report.previous.runs).toBe(3);
  expect(report.cost_trend_pct).toBeCloseTo(-50, 6);

  // --by tag: a and bad are daily, b is untagged.
  const tags = await json<CostReport>(dir, ['report', '--since', '30d', '--by', 'tag']);
  const daily = [...byModel('a'), ...byModel('bad')].reduce((x, n) => x + n.execution_time!, 0);
  expect(tags.groups.map((g) => g.group).sort()).toEqual(['(untagged)', 'daily']);
  expect(tags.groups.find((g) => g.group === 'daily')!.seconds).toBeCloseTo(daily, 6);
  expect(tags.groups.find((g) => g.group === '(untagged)')!.retries).toBe(1);
  expect(tags.groups.find((g) => g.group === 'daily')!.runs).toBe(6);
  // --by folder
  const folders = await json<CostReport>(dir, ['report', '--since', '30d', '--by', 'folder']);
  expect(folders.groups.map((g) => [g.group, g.runs]).sort()).toEqual([
    ['models/marts', 3],
    ['models/staging', 6],
  ]);
}

describe('etl report on DuckDB', () => {
  it('figures match the history rows they summarise', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('rep', RATES), ...FILES });
    await checkReport(dir, (sql) => withDb(dbPathOf(dir), async (db) => void (await db.rows(sql)), { readOnly: false }));
  });

  it('a bad cost or budget is exit 2 with file:line', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('rep', 'cost: { per_cpu_hour: -1 }\nbudget: { monthly: 100, alert_at: 2 }\n'), ...FILES });
    const r = await runCli(['report'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/etl\.yml:6:\d+: invalid cost\.per_cpu_hour -1/);
    expect(r.stderr).toMatch(/etl\.yml:7:\d+: invalid budget\.alert_at 2/);
  });

  it('the run that crosses alert_at of the monthly budget raises the alert, and only that run', async () => {
    // A second of a node costs 1; the budget's alert is at 50% of 1,000,000: no run crosses it.
    const dir = writeProject({ 'etl.yml': etlYml('rep', `${RATES}budget: { monthly: 1000000, alert_at: 0.5 }\n`), 'models/a.sql': 'select 1 as id\n' });
    const first = await runCli(['build'], { cwd: dir });
    expect(first.stdout).not.toContain('budget:');
    const spent = (await json<CostReport>(dir, ['report'])).budget!.month_to_date;
    expect(spent).toBeGreaterThan(0);
    // The month so far is every node attempt of the history (a second costs 1).
    const h = await json<HistoryRows>(dir, ['history', '--limit', '0']);
    expect(spent).toBeCloseTo(h.node_runs.reduce((x, n) => x + (n.execution_time ?? 0), 0), 6);
    // Now the threshold (50% of twice the spend so far) lies just past it: the next run crosses.
    writeFiles(dir, { 'etl.yml': etlYml('rep', `${RATES}budget: { monthly: ${spent * 2 + 1e-9}, alert_at: 0.5 }\n`) });
    const crossing = await runCli(['build'], { cwd: dir });
    expect(crossing.stdout).toMatch(/warning: budget: .* spent in \d{4}-\d{2}, .*% of the monthly .* \(alert at 50%\); this run cost/);
    const after = await runCli(['build'], { cwd: dir });
    expect(after.stdout).not.toContain('budget:');
  });
});

describe('etl report on Postgres', () => {
  let admin: pg.Client;
  let url: string;
  beforeAll(async () => {
    admin = await pgConnect();
    url = await createPgDatabase(admin, 'etl_rep');
  });
  afterAll(async () => {
    await killAll();
    await dropPgDatabase(admin, url);
    await admin.end();
  });

  it('figures match the history rows they summarise', async () => {
    const dir = writeProject({ 'etl.yml': `name: rep\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${url}", schema: rep, threads: 2 }\n${RATES}`, ...FILES });
    await checkReport(dir, async (sql) => {
      const db = await pgConnect(url);
      try {
        await db.query(sql);
      } finally {
        await db.end();
      }
    });
  });
});

describe('etl report on Delta', () => {
  it('figures, bytes written included, match the history rows in the lake', async () => {
    const yml = etlYml('rep', RATES).replace('target: dev\n', 'target: lake\n').replace('targets:\n', 'targets:\n  lake: { type: delta, path: lake, schema: main, threads: 2 }\n');
    const dir = writeProject({ 'etl.yml': yml, ...FILES });
    for (let i = 0; i < 2; i++) expect((await runCli(['build', '--no-check'], { cwd: dir })).code).toBe(1);
    const h = await json<HistoryRows>(dir, ['history', '--limit', '0']);
    const report = await json<CostReport>(dir, ['report', '--since', '30d']);
    for (const name of ['a', 'b', 'bad']) {
      const mine = h.node_runs.filter((n) => n.unique_id.endsWith(`.${name}`));
      const g = report.groups.find((x) => x.group === name)!;
      expect(mine).toHaveLength(2);
      expect(g.runs).toBe(2);
      expect(g.failed).toBe(name === 'bad' ? 2 : 0);
      expect(g.seconds).toBeCloseTo(mine.reduce((x, n) => x + n.execution_time!, 0), 6);
      const written = mine.reduce((x, n) => x + (n.bytes_written ?? 0), 0);
      expect(g.bytes_written).toBe(written);
      if (name !== 'bad') expect(written).toBeGreaterThan(0);
      // A second costs 1, a GB written 2, a GB scanned 1.
      expect(g.cost).toBeCloseTo(mine.reduce((x, n) => x + n.execution_time! + ((n.bytes_written ?? 0) / 1e9) * 2 + (n.bytes_scanned ?? 0) / 1e9, 0), 9);
    }
    expect(report.current).toMatchObject({ runs: 2, succeeded: 0, failed: 2, node_runs: 6, node_failures: 2 });
  });
});
