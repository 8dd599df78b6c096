// Alerts end to end: the real CLI builds a project whose etl.yml has alerts,
// and a real HTTP server on 127.0.0.1 (tests/webhook-receiver.ts) and a real
// command receive what it raises: failures, failing and warning tests, model
// SLAs, stale sources. An alert that cannot be delivered is a warning; the
// run's exit code stands. A secret header never reaches the output or target/.

import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startReceiver, type WebhookReceiver } from '../webhook-receiver.js';
import { dbPathOf, etlYml, killAll, listFiles, read, removeTempDirs, runCli, withDb, writeProject } from './helpers.js';

const receivers: WebhookReceiver[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
});
afterAll(async () => {
  await killAll();
  removeTempDirs();
});

async function receiver(statuses: Array<number | 'hang'>) {
  const r = await startReceiver(statuses);
  receivers.push(r);
  return r;
}

const SECRET = 'hdr-7c1e-do-not-print';

describe('alerts raised by a build', () => {
  it('delivers failure, test_fail, test_warn and sla_breach events; the secret header stays out of logs and target/', async () => {
    const hook = await receiver([200, 200, 200, 200, 200]);
    const dir = writeProject({
      'etl.yml': etlYml(
        'al',
        `models:\n  materialized: table\nalerts:\n  - name: ops\n    on: [failure, test_fail, test_warn, sla_breach]\n    webhook:\n      url: "${hook.url}"\n      headers: { Authorization: "Bearer {{env_var 'ETL_ENV_SECRET_HOOK'}}" }\n  - name: script\n    on: [failure]\n    command: "cat >> failures.jsonl"\n`,
      ),
      'models/good.sql': '{{config sla="0s"}}\nselect 1 as id, null as note, null as note2\n',
      'models/bad.sql': `{{config sla="1h"}}\nselect error('boom') as v\n`,
      'models/after_bad.sql': 'select * from {{ref "bad"}}\n',
      'models/schema.yml': `models:
  - name: good
    columns:
      - name: note
        tests: [not_null]
      - name: note2
        tests: [{ not_null: { config: { severity: warn } } }]
`,
    });
    const r = await runCli(['build', '--threads', '1'], { cwd: dir, env: { ETL_ENV_SECRET_HOOK: SECRET } });
    expect(r.code, r.output).toBe(1);
    await hook.closed;
    expect(hook.received).toHaveLength(5);
    for (const req of hook.received) expect(req.headers.authorization).toBe(`Bearer ${SECRET}`);
    const events = hook.received.map((req) => JSON.parse(req.body));
    const runId = readJsonResults(dir).metadata.invocation_id;
    const by = (event: string, kind?: string) => events.filter((e) => e.event === event && (!kind || e.details.kind === kind));
    for (const e of events) expect(e).toMatchObject({ version: 1, project: 'al', target: 'dev', run_id: runId, job: null });

    expect(by('failure')).toHaveLength(1);
    expect(by('failure')[0]).toMatchObject({ node: { unique_id: 'model.al.bad', name: 'bad', resource_type: 'model', relation: expect.stringContaining('bad') }, details: { status: 'error' } });
    expect(by('failure')[0].message).toMatch(/^model bad failed: .*boom/);
    expect(by('test_fail')).toHaveLength(1);
    expect(by('test_fail')[0]).toMatchObject({ node: { resource_type: 'test', name: 'not_null_good_note' }, details: { failures: 1 }, message: 'test not_null_good_note failed (1 failing row)' });
    expect(by('test_warn')).toHaveLength(1);
    expect(by('test_warn')[0].details.failures).toBe(1);
    // good took longer than its SLA of 0s; bad, never built, has no success within its SLA of 1h.
    expect(by('sla_breach', 'duration')).toHaveLength(1);
    expect(by('sla_breach', 'duration')[0]).toMatchObject({ node: { name: 'good' }, details: { sla: '0s', sla_seconds: 0 } });
    expect(by('sla_breach', 'stale')).toHaveLength(1);
    expect(by('sla_breach', 'stale')[0]).toMatchObject({ node: { name: 'bad' }, details: { sla: '1h', sla_seconds: 3600, observed_seconds: null, last_success_at: null }, message: 'model bad has never been built successfully (SLA 1h)' });

    // The command sink got the failure, as JSON on its stdin.
    const piped = read(dir, 'failures.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    expect(piped).toEqual([by('failure')[0]]);

    const log = read(dir, 'target/alerts.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => `${l.alert}:${l.event}:${l.delivered}`).sort()).toEqual(['ops:failure:true', 'ops:sla_breach:true', 'ops:sla_breach:true', 'ops:test_fail:true', 'ops:test_warn:true', 'script:failure:true']);
    expect(r.output).not.toContain(SECRET);
    for (const f of listFiles(path.join(dir, 'target'))) {
      if (f.endsWith('.duckdb') || f.endsWith('.wal')) continue;
      expect(readFileSync(path.join(dir, 'target', f), 'utf8'), f).not.toContain(SECRET);
    }
  });

  it('an alert that cannot be delivered is a warning, recorded; the run still succeeds', async () => {
    const hook = await receiver([503, 503]);
    const dir = writeProject({
      'etl.yml': etlYml('al2', `alerts:\n  - name: flaky\n    on: [test_warn]\n    retries: 1\n    webhook: { url: "${hook.url}", format: slack }\n`),
      'models/m.sql': 'select null as x\n',
      'models/schema.yml': 'models:\n  - name: m\n    columns:\n      - name: x\n        tests: [{ not_null: { config: { severity: warn } } }]\n',
    });
    const r = await runCli(['build'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    expect(hook.received).toHaveLength(2);
    expect(JSON.parse(hook.received[0]!.body).text).toMatch(/^etl Test warning: al2: test not_null_m_x warned/);
    expect(r.stdout).toContain(`warning: alert "flaky" (test_warn) not delivered to ${new URL(hook.url).origin} after 2 attempts: HTTP 503 Service Unavailable (recorded in target/alerts.jsonl)`);
    expect(JSON.parse(read(dir, 'target/alerts.jsonl'))).toMatchObject({ alert: 'flaky', event: 'test_warn', delivered: false, attempts: 2, status: 503 });
    await withDb(dbPathOf(dir), async (db) => expect(await db.count('main.m')).toBe(1));
  });

  it('a model whose last success is within its SLA raises nothing when a later run fails it', async () => {
    const hook = await receiver([200]);
    const dir = writeProject({
      'etl.yml': etlYml('al3', `models:\n  materialized: table\nalerts:\n  - { on: [sla_breach], webhook: { url: "${hook.url}" } }\n`),
      'models/m.sql': `{{config sla="1h"}}\nselect {{var "v" "1"}} as v\n`,
    });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    const r = await runCli(['build', '--vars', `{v: "error('boom')"}`], { cwd: dir });
    expect(r.code, r.output).toBe(1);
    expect(hook.received).toHaveLength(0);
    expect(listFiles(path.join(dir, 'target'))).not.toContain('alerts.jsonl');
  });

  it('a stale SLA is judged by the last success however old, past any number of later failures', async () => {
    const hook = await receiver([200]);
    const dir = writeProject({
      'etl.yml': etlYml('al4', `models:\n  materialized: table\nalerts:\n  - { on: [sla_breach], webhook: { url: "${hook.url}" } }\n`),
      'models/m.sql': `{{config sla="1h"}}\nselect {{var "v" "1"}} as v\n`,
    });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    const success = JSON.parse((await runCli(['history', '-s', 'm', '--output', 'json'], { cwd: dir })).stdout).node_runs[0];
    expect(success.status).toBe('success');
    // 150 failed runs of m after it (more than any window of recent runs would hold).
    await withDb(dbPathOf(dir), async (db) => {
      await db.rows(
        `insert into etl_meta.node_runs (run_id, unique_id, status, started_at, finished_at, message, attempt) select 'failed-' || i, 'model.al4.m', 'error', cast('${success.finished_at}' as timestamptz)::timestamp + i * interval 1 second, cast('${success.finished_at}' as timestamptz)::timestamp + i * interval 1 second, 'boom', 1 from range(1, 151) t(i)`,
      );
    }, { readOnly: false });
    const at = (minutes: number) => new Date(Date.parse(success.finished_at) + minutes * 60_000).toISOString();
    const fail = (minutes: number) => runCli(['build', '--vars', `{v: "error('boom')"}`], { cwd: dir, env: { ETL_NOW: at(minutes) } });
    // 30 minutes after the success: within the SLA, nothing raised.
    expect((await fail(30)).code).toBe(1);
    expect(hook.received).toHaveLength(0);
    // Two hours after: stale, and the alert names that success.
    expect((await fail(120)).code).toBe(1);
    await hook.closed;
    const body = JSON.parse(hook.received[0]!.body);
    expect(body).toMatchObject({ event: 'sla_breach', node: { name: 'm' }, details: { kind: 'stale', sla: '1h', last_success_at: success.finished_at } });
    expect(body.details.observed_seconds).toBeCloseTo(7200, 0);
  });

  it('on Delta too: the last success in the lake\'s history decides', async () => {
    const hook = await receiver([200]);
    const yml = etlYml('al5', `models:\n  materialized: table\nalerts:\n  - { on: [sla_breach], webhook: { url: "${hook.url}" } }\n`)
      .replace('target: dev\n', 'target: lake\n')
      .replace('targets:\n', 'targets:\n  lake: { type: delta, path: lake, schema: main, threads: 2 }\n');
    const dir = writeProject({ 'etl.yml': yml, 'models/m.sql': `{{config sla="1h"}}\nselect {{var "v" "1"}} as v\n` });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    const success = JSON.parse((await runCli(['history', '-s', 'm', '--output', 'json'], { cwd: dir })).stdout).node_runs[0];
    const at = (minutes: number) => new Date(Date.parse(success.finished_at) + minutes * 60_000).toISOString();
    const fail = (minutes: number) => runCli(['build', '--vars', `{v: "error('boom')"}`], { cwd: dir, env: { ETL_NOW: at(minutes) } });
    expect((await fail(30)).code).toBe(1);
    expect(hook.received).toHaveLength(0);
    expect((await fail(120)).code).toBe(1);
    await hook.closed;
    expect(JSON.parse(hook.received[0]!.body)).toMatchObject({ event: 'sla_breach', node: { name: 'm' }, details: { kind: 'stale', last_success_at: success.finished_at } });
  });
});

describe('alerts raised by source freshness', () => {
  it('a source past its error_after raises freshness_error', async () => {
    const hook = await receiver([200]);
    const dir = writeProject({
      'etl.yml': etlYml('fr', `alerts:\n  - { on: [freshness_error], webhook: { url: "${hook.url}" } }\n`),
      'models/sources.yml': 'sources:\n  - name: raw\n    schema: raw\n    freshness: { warn_after: 1h, error_after: 1d }\n    loaded_at_field: loaded_at\n    tables: [{ name: fresh }, { name: old }]\n',
    });
    mkdirSync(path.join(dir, 'target'), { recursive: true });
    await withDb(
      dbPathOf(dir),
      async (db) => {
        for (const sql of ['create schema raw', 'create table raw.fresh as select now() as loaded_at', "create table raw.old as select now() - interval 3 day as loaded_at"]) await db.connection.run(sql);
      },
      { readOnly: false },
    );
    const r = await runCli(['source', 'freshness'], { cwd: dir });
    expect(r.code, r.output).toBe(1);
    await hook.closed;
    const body = JSON.parse(hook.received[0]!.body);
    expect(body).toMatchObject({ event: 'freshness_error', project: 'fr', node: { unique_id: 'source.fr.raw.old', name: 'raw.old', resource_type: 'source' }, details: { error_after: '1d' } });
    expect(body.details.age_seconds).toBeGreaterThan(2 * 86400);
    expect(body.message).toMatch(/^source raw\.old was last loaded \d+s ago, over its error_after of 1d$/);
  });
});

function readJsonResults(dir: string): { metadata: { invocation_id: string } } {
  return JSON.parse(read(dir, 'target/run_results.json'));
}

describe('alerts raised by the budget', () => {
  it('the run whose cost crosses alert_at of the budget delivers a cost_spike event', async () => {
    const hook = await receiver([200]);
    // A second of a node costs 1; a budget of 1e-9 is crossed by the first run.
    const dir = writeProject({
      'etl.yml': etlYml('cs', `cost: { per_cpu_hour: 3600, currency: EUR }\nbudget: { monthly: 0.000000001, alert_at: 1 }\nalerts:\n  - { on: [cost_spike], webhook: { url: "${hook.url}" } }\n`),
      'models/a.sql': 'select 1 as id\n',
    });
    const r = await runCli(['build'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    await hook.closed;
    const body = JSON.parse(hook.received[0]!.body);
    expect(body).toMatchObject({ version: 1, event: 'cost_spike', project: 'cs', node: null, run_id: readJsonResults(dir).metadata.invocation_id, details: { budget: 0.000000001, alert_at: 1, currency: 'EUR', period: expect.stringMatching(/^\d{4}-\d{2}$/) } });
    expect(body.details.cost).toBeGreaterThan(0);
    expect(body.message).toMatch(/^budget: .* spent in \d{4}-\d{2}/);
  });
});
