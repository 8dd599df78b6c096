// Secrets from ETL_ENV_SECRET_* variables never reach an artifact or a log, on
// either engine: the run's whole output and every file under target/ (the
// DuckDB file and etl_meta's records included) are searched for them. On
// DuckDB the secret is read by a nested target setting (settings:), which is
// interpolated, and echoed back by the engine in an error message.

import path from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PG_URL, listFiles, pgTestSchemas, runCli, writeProject, type CliResult } from './helpers.js';

const pgTest = pgTestSchemas();

function expectNowhere(secret: string, dir: string, runs: CliResult[]): void {
  for (const r of runs) expect(r.output).not.toContain(secret);
  const files = listFiles(path.join(dir, 'target'));
  expect(files.length).toBeGreaterThan(3);
  for (const f of files) expect(readFileSync(path.join(dir, 'target', f)).includes(secret), `target/${f} holds the secret`).toBe(false);
}

async function runAll(dir: string, env: NodeJS.ProcessEnv): Promise<CliResult[]> {
  const runs: CliResult[] = [];
  for (const args of [['build', '--no-check'], ['debug'], ['state', 'show'], ['docs', 'generate'], ['build', '--no-check', '--log-format', 'json']]) {
    runs.push(await runCli(args, { cwd: dir, env }));
  }
  return runs;
}

describe('ETL_ENV_SECRET_* values are masked everywhere', () => {
  it('DuckDB: a secret in a nested setting is interpolated, and masked when the engine echoes it', async () => {
    const secret = 'hunter2-ua-5c1f9e';
    const dir = writeProject({
      'etl.yml': `name: sec\nversion: 1\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb, settings: { custom_user_agent: "{{env_var 'ETL_ENV_SECRET_UA'}}" } }\n`,
      'models/ok.sql': 'select 1 as id\n',
      'models/leaks.sql': "{{config materialized=\"table\"}}\nselect error(current_setting('custom_user_agent')) as x\n",
    });
    const runs = await runAll(dir, { ETL_ENV_SECRET_UA: secret });
    expect(runs[0]!.code, runs[0]!.output).toBe(1);
    // The setting was the secret (interpolated), and its echo is masked.
    const results = JSON.parse(readFileSync(path.join(dir, 'target/run_results.json'), 'utf8')) as { results: Array<{ unique_id: string; message: string }> };
    expect(results.results.find((r) => r.unique_id.endsWith('.leaks'))!.message).toContain('****');
    expectNowhere(secret, dir, runs);
  });

  it('Postgres: the password of the target URL, from a secret variable, is nowhere', async () => {
    const secret = 'pg-pass-8d2e71';
    const schema = pgTest.schema();
    const url = new URL(PG_URL);
    url.password = '__SECRET__';
    const dir = writeProject({
      'etl.yml': `name: sec\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${url.href.replace('__SECRET__', "{{env_var 'ETL_ENV_SECRET_PGPASS'}}")}", schema: ${schema} }\n`,
      'models/ok.sql': 'select 1 as id\n',
      'models/fails.sql': '{{config materialized="table"}}\nselect 1 / 0 as x\n',
    });
    const runs = await runAll(dir, { ETL_ENV_SECRET_PGPASS: secret });
    expect(runs[0]!.code, runs[0]!.output).toBe(1);
    expectNowhere(secret, dir, runs);
  });
});
