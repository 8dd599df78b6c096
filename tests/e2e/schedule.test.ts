// `etl schedule` for real: --list, --once, and a long-lived scheduler stopped
// by SIGTERM while its job's model runs (the run is cancelled cleanly: the
// previous table stays, no temporary table is left, the process exits 0).

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, killAll, read, removeTempDirs, runCli, startCli, withDb, writeFiles, writeProject } from './helpers.js';

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

// ~10^12 rows of cross join: runs until interrupted.
const SLOW_SQL = 'select count(*) as v from range(1000000) a, range(1000000) b where (a.range * b.range) % 7 = 3\n';

function project(jobs: string, files: Record<string, string> = {}): string {
  return writeProject({
    'etl.yml': etlYml('sch', `models:\n  materialized: table\njobs:\n${jobs}`).replace('threads: 4 }', 'threads: 4, settings: { threads: 2 } }'),
    'models/daily_a.sql': '{{config tags="daily"}}\nselect 1 as id\n',
    'models/other.sql': 'select 2 as id\n',
    ...files,
  });
}

function scheduleLog(dir: string): Array<Record<string, unknown>> {
  return read(dir, 'target/schedule.jsonl').trim().split('\n').map((l) => JSON.parse(l));
}

describe('etl schedule --list', () => {
  it("prints each job's next fire times in its time zone", async () => {
    const dir = project('  - { name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin, command: "build -s tag:daily", sla: 30m }\n  - { name: quarter, cron: "*/15 * * * *", timezone: UTC }\n');
    const r = await runCli(['schedule', '--list', '--count', '2'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('nightly: "0 2 * * *" in Europe/Berlin, runs `etl build -s tag:daily`, sla 30m');
    for (const l of lines.slice(1, 3)) expect(l).toMatch(/^  \d{4}-\d\d-\d\d 02:00 GMT\+[12]  \(\d{4}-\d\d-\d\dT0[01]:00:00\.000Z\)$/);
    expect(lines[3]).toBe('quarter: "*/15 * * * *" in UTC, runs `etl build`');
    for (const l of lines.slice(4, 6)) expect(l).toMatch(/^  \d{4}-\d\d-\d\d \d\d:(00|15|30|45) UTC  \(/);
    expect(lines).toHaveLength(6);

    const j = await runCli(['schedule', '--list', '--log-format', 'json'], { cwd: dir });
    const json = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(json.map((l) => l.job)).toEqual(['nightly', 'quarter']);
    expect(json[0]).toMatchObject({ event: 'schedule_next', cron: '0 2 * * *', timezone: 'Europe/Berlin', command: 'build -s tag:daily', sla: '30m', catchup: false });
    expect(json[0].next).toHaveLength(3);
    for (const at of json[0].next) expect(new Date(at).getUTCHours()).toBeOneOf([0, 1]);
    const times = json[1].next.map((at: string) => new Date(at).getTime());
    expect(times[1] - times[0]).toBe(15 * 60_000);
    expect(times[0]).toBeGreaterThan(Date.now() - 1000);
  });
});

describe('etl schedule --once', () => {
  it('runs the job now, as its command says, and exits with its exit code', async () => {
    const dir = project('  - { name: nightly, cron: "0 2 * * *", command: "build -s tag:daily" }\n  - { name: all, cron: "0 3 * * *", command: "etl build" }\n', { 'models/broken.sql': "select error('boom') as v\n" });
    const r = await runCli(['schedule', '--once', 'nightly'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    await withDb(dbPathOf(dir), async (db) => expect(await db.relations()).toEqual({ daily_a: 'BASE TABLE' }));
    expect(scheduleLog(dir).map((l) => `${l.type}:${l.job}`)).toEqual(['started:nightly', 'finished:nightly']);
    expect(scheduleLog(dir)[1]).toMatchObject({ exit_code: 0 });

    const all = await runCli(['schedule', '--once', 'all'], { cwd: dir });
    expect(all.code, all.output).toBe(1);
    expect(all.output).toMatch(/Error in model broken/);
    expect(scheduleLog(dir)[3]).toMatchObject({ type: 'finished', job: 'all', exit_code: 1 });
  });

  it('a job another live process is running is skipped and recorded, exit 0; a lock left by a dead process is taken over', async () => {
    const dir = project('  - { name: nightly, cron: "0 2 * * *", command: "build -s tag:daily" }\n');
    mkdirSync(path.join(dir, 'target'), { recursive: true });
    // This test's own process stands for the other etl running the job.
    writeFileSync(path.join(dir, 'target/schedule-nightly.lock'), String(process.pid));
    const r = await runCli(['schedule', '--once', 'nightly'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).toContain(`nightly: skipped the run of `);
    expect(r.stdout).toContain(`another etl process (pid ${process.pid}) is running the job`);
    expect(scheduleLog(dir)).toEqual([expect.objectContaining({ type: 'skipped', job: 'nightly', reason: `another etl process (pid ${process.pid}) is running the job` })]);
    // The run history in the target has the skipped invocation; nothing was built.
    await withDb(dbPathOf(dir), async (db) => {
      expect(await db.rows("select job, command, status, message from etl_meta.runs")).toEqual([{ job: 'nightly', command: 'build -s tag:daily', status: 'skipped', message: `another etl process (pid ${process.pid}) is running the job` }]);
      expect(await db.relations()).toEqual({});
    });

    // A pid no process has: the lock is stale.
    writeFileSync(path.join(dir, 'target/schedule-nightly.lock'), '999999999');
    const again = await runCli(['schedule', '--once', 'nightly'], { cwd: dir });
    expect(again.code, again.output).toBe(0);
    expect(scheduleLog(dir).map((l) => l.type)).toEqual(['skipped', 'started', 'finished']);
    expect(existsSync(path.join(dir, 'target/schedule-nightly.lock'))).toBe(false);
    await withDb(dbPathOf(dir), async (db) => {
      expect(await db.relations()).toEqual({ daily_a: 'BASE TABLE' });
      expect(await db.rows('select job, status from etl_meta.runs order by started_at')).toEqual([{ job: 'nightly', status: 'skipped' }, { job: 'nightly', status: 'success' }]);
    });
  });

  it('an unknown job is exit 2, naming where the jobs are declared', async () => {
    const dir = project('  - { name: nightly, cron: "0 2 * * *" }\n');
    const r = await runCli(['schedule', '--once', 'nighlty'], { cwd: dir });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(/etl\.yml:8:1: unknown job "nighlty"/);
    expect(r.stderr).toContain('did you mean "nightly"?');
  });
});

describe('etl schedule stopped by SIGTERM while a model runs', () => {
  it('cancels the run cleanly: the previous table stays, no temporary table, exit 0', async () => {
    // catchup with a last run long ago: the missed slot runs as soon as the scheduler starts.
    const dir = project('  - { name: nightly, cron: "0 2 * * *", timezone: UTC, catchup: true }\n', { 'models/big.sql': 'select 42 as v\n' });
    const first = await runCli(['build'], { cwd: dir });
    expect(first.code, first.output).toBe(0);
    writeFiles(dir, { 'models/big.sql': SLOW_SQL });
    mkdirSync(path.join(dir, 'target'), { recursive: true });
    writeFileSync(path.join(dir, 'target/schedule-state.json'), JSON.stringify({ version: 1, jobs: { nightly: { last_slot: '2020-01-01T02:00:00.000Z' } } }));

    // ETL_TRACE_SQL prints each statement once done: after the drop of big's temporary name comes its slow create.
    const p = startCli(['schedule'], { cwd: dir, env: { ETL_TRACE_SQL: '1' } });
    await p.waitForOutput(/nightly: started \(catching up the run missed at /);
    await p.waitForOutput(/\] drop table if exists "main"\."big__etl_tmp"/);
    p.child.kill('SIGTERM');
    const r = await p.exitWithin(30_000);
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).toMatch(/stopping: waiting for nightly to stop cleanly/);
    expect(r.stdout).toMatch(/nightly: finished with exit code 130/);
    await withDb(dbPathOf(dir), async (db) => {
      expect(await db.rows('select v from big')).toEqual([{ v: 42 }]);
      expect(await db.tempRelations()).toEqual([]);
    });
    const log = scheduleLog(dir);
    expect(log.map((l) => l.type)).toEqual(['started', 'finished']);
    expect(log[0]).toMatchObject({ job: 'nightly', catchup: true });
    expect(log[1]).toMatchObject({ job: 'nightly', exit_code: 130 });
    expect(JSON.parse(read(dir, 'target/run_results.json')).results.find((x: { unique_id: string }) => x.unique_id === 'model.sch.big')).toMatchObject({ status: 'error', message: 'interrupted' });
  });
});

describe('bad jobs and alerts through the CLI', () => {
  it.each([
    ['an invalid cron expression', 'jobs:\n  - { name: n, cron: "61 2 * * *" }\n', /etl\.yml:\d+:\d+: .*invalid cron expression "61 2 \* \* \*" for job "n"/],
    ['an unknown time zone', 'jobs:\n  - { name: n, cron: "0 2 * * *", timezone: Europe/Berlinn }\n', /etl\.yml:\d+:\d+: .*unknown time zone "Europe\/Berlinn" for job "n".*did you mean "Europe\/Berlin"\?/s],
    ['an alert without a sink', 'alerts:\n  - { name: x, on: [failure] }\n', /etl\.yml:\d+:\d+: .*alert "x" has no sink/],
    ['an unknown event name', 'alerts:\n  - { on: [failure, test_fial], command: a }\n', /etl\.yml:\d+:\d+: .*did you mean "test_fail"\?/s],
    ['a webhook URL that is not http(s)', 'alerts:\n  - { on: [failure], webhook: { url: "file:///etc/passwd" } }\n', /etl\.yml:\d+:\d+: .*is not an http\(s\) URL/],
  ])('%s: exit 2 with etl.yml:line, for schedule and build alike, nothing written', async (_what, extra, message) => {
    const dir = writeProject({ 'etl.yml': etlYml('bad', extra), 'models/m.sql': 'select 1 as id\n' });
    for (const args of [['schedule', '--list'], ['build']]) {
      const r = await runCli(args, { cwd: dir });
      expect(r.code, r.output).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(path.join(dir, 'target/dev.duckdb'))).toBe(false);
  });
});
