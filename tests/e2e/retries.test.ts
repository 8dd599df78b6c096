// Retries with backoff and the circuit breaker (core/runner/retry.ts) on the
// real Postgres: a backend terminated under a running model, errors with the
// SQLSTATEs the adapter classifies, and run_results.json recording each
// attempt. Each scenario builds into its own schema, dropped after.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { PG_URL, pgTestSchemas, readJson, REPO_ROOT, runCli, startCli, waitForBackend, writeFiles, writeProject } from './helpers.js';

const pgTest = pgTestSchemas();

function pgProject(files: Record<string, string>, target = ''): { dir: string; schema: string } {
  const schema = pgTest.schema();
  const dir = writeProject({ 'etl.yml': `name: retries\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 1${target} }\n`, ...files });
  return { dir, schema };
}

interface Attempt {
  attempt: number;
  status: string;
  message?: string;
  transient?: boolean;
  delay_ms?: number;
}

function results(dir: string): Array<{ unique_id: string; status: string; message: string; adapter_response: { attempts?: Attempt[] } }> {
  return readJson(dir, 'target/run_results.json').results;
}

describe('retries on Postgres', () => {
  it('a terminated backend is transient: the model succeeds on attempt 2, both attempts in run_results', async () => {
    const model = (v: string, sleep: boolean) => `{{config materialized="table" retries=3}}\nselect '${v}' as v${sleep ? ' from pg_sleep(2)' : ''}\n`;
    const { dir, schema } = pgProject({ 'models/slow.sql': model('v1', false), 'models/m.yml': 'models:\n  - name: slow\n    config: { retry_backoff: { strategy: exponential, base: 20ms, max: 1s, jitter: 0.5 } }\n' });
    expect((await runCli(['build', '--no-check'], { cwd: dir })).code).toBe(0);
    writeFiles(dir, { 'models/slow.sql': model('v2', true) });
    const run = startCli(['build', '--no-check'], { cwd: dir });
    await pgTest.admin.query('select pg_terminate_backend($1)', [await waitForBackend(pgTest.admin, [schema, 'pg_sleep(2)'])]);
    const r = await run.exitWithin(30_000);
    expect(r.code, r.output).toBe(0);
    expect((await pgTest.admin.query(`select v from "${schema}".slow`)).rows).toEqual([{ v: 'v2' }]);
    const [slow] = results(dir);
    expect(slow!.status).toBe('success');
    const attempts = slow!.adapter_response.attempts!;
    expect(attempts.map((a) => [a.attempt, a.status, a.transient ?? null])).toEqual([
      [1, 'error', true],
      [2, 'success', null],
    ]);
    expect(attempts[0]!.message).toMatch(/terminating connection due to administrator command/);
    // The yml's backoff (base 20ms, half of it jitter) set the wait.
    expect(attempts[0]!.delay_ms).toBeGreaterThanOrEqual(10);
    expect(attempts[0]!.delay_ms).toBeLessThanOrEqual(20);
    // The history keeps a row per attempt.
    const h = await runCli(['history', '-s', 'slow', '--output', 'json', '--limit', '1'], { cwd: dir });
    expect(h.code, h.output).toBe(0);
    const rows = (JSON.parse(h.stdout) as { node_runs: Array<{ attempt: number; status: string; message: string }> }).node_runs;
    expect(rows.map((n) => [n.attempt, n.status])).toEqual([
      [2, 'success'],
      [1, 'error'],
    ]);
    expect(rows[1]!.message).toMatch(/terminating connection/);
    // The attempts live in adapter_response, where dbt's schema allows them.
    const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(JSON.parse(readFileSync(path.join(REPO_ROOT, 'tests/fixtures/dbt-schemas/run-results.json'), 'utf8')) as object);
    expect(validate(readJson(dir, 'target/run_results.json')), JSON.stringify(validate.errors)).toBe(true);
  });

  it('a permanent error (division by zero) is not retried', async () => {
    const { dir } = pgProject({ 'models/bad.sql': '{{config materialized="table" retries=3 retry_backoff="constant"}}\nselect 1 / (select 0) as x\n' });
    const r = await runCli(['build', '--no-check'], { cwd: dir });
    expect(r.code, r.output).toBe(1);
    expect(r.stdout).not.toMatch(/retry \d of/);
    const [bad] = results(dir);
    expect(bad!.status).toBe('error');
    expect(bad!.message).toMatch(/division by zero/);
    expect(bad!.adapter_response.attempts).toBeUndefined();
  });

  it('serialization failures (40001) are retried until the breaker opens; it then skips the rest with its reason', async () => {
    const { dir, schema } = pgProject({}, ', circuit_breaker: 2');
    // A function raising a real serialization_failure: what a SERIALIZABLE transaction gets under contention.
    await pgTest.admin.query(`create schema "${schema}"; create function "${schema}".conflict() returns int language plpgsql as $$ begin raise exception 'could not serialize access' using errcode = '40001'; end $$`);
    // Three independent models, each allowed 3 attempts: whichever runs first fails twice, and the breaker (2) opens.
    const model = `{{config materialized="table" retries=2 retry_backoff="none"}}\nselect "${schema}".conflict() as x\n`;
    writeFiles(dir, { 'models/x1.sql': model, 'models/x2.sql': model, 'models/x3.sql': model });
    const r = await runCli(['build', '--no-check'], { cwd: dir });
    expect(r.code, r.output).toBe(1);
    const all = results(dir);
    const failed = all.filter((x) => x.status === 'error');
    const skipped = all.filter((x) => x.status === 'skipped');
    expect(failed).toHaveLength(1);
    expect(skipped).toHaveLength(2);
    expect(failed[0]!.adapter_response.attempts!.map((x) => [x.attempt, x.transient])).toEqual([
      [1, true],
      [2, true],
    ]);
    for (const s of skipped) expect(s.message).toBe('skipped: circuit breaker open after 2 consecutive transient failures (last: could not serialize access)');
    expect(r.stdout).toContain('circuit breaker open after 2 consecutive transient failures');
    const tables = await pgTest.admin.query(`select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind = 'r'`, [schema]);
    expect(tables.rows).toEqual([{ n: '0' }]);
  });
});
