// A Postgres source that fails transiently: the whole load is tried again
// (`retries`, default 3, with `retry_backoff`), as nothing of a failed load
// was published. A refused connection gives up after 1 + retries attempts
// and says so; a backend terminated while its COPY streams (the real server,
// pg_terminate_backend) is retried and the table loads whole; an error that
// is not transient (a missing table) is not retried.

import { describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, PG_URL, pgQuoteIdent, pgTestSchemas, readJson, runCli, startCli, waitForBackend, withDb, writeProject } from './helpers.js';

const pg = pgTestSchemas();

function project(loader: string): string {
  return writeProject({
    'etl.yml': etlYml('shop'),
    'models/crm.yml': `sources:\n  - name: crm\n    tables:\n      - name: customers\n        loader:\n${loader}`,
  });
}

function loaderResult(dir: string): Record<string, any> {
  return readJson(dir, 'target/run_results.json').results.find((r: { unique_id: string }) => r.unique_id === 'loader.shop.crm.customers');
}

describe('retries of a Postgres source', () => {
  it('a refused connection is tried 1 + retries times, then fails saying so; a missing table is not retried', async () => {
    const refused = project(`          type: postgres\n          url: "postgres://postgres@127.0.0.1:1/nowhere"\n          table: customers\n          retries: 2\n          retry_backoff: { strategy: constant, base: 10ms }\n          circuit_breaker: 10\n`);
    const r = await runCli(['extract'], { cwd: refused });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain('loader of source crm.customers: cannot connect to 127.0.0.1:1/nowhere');
    expect(r.output).toContain('gave up after 3 attempts; retries: 2');

    const schema = pg.schema();
    await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
    const missing = project(`          type: postgres\n          url: "${PG_URL}"\n          table: ${schema}.nothing_here\n          retry_backoff: { strategy: constant, base: 10ms }\n`);
    const m = await runCli(['extract'], { cwd: missing });
    expect(m.code, m.output).toBe(1);
    expect(m.output).toContain(`cannot read table ${schema}.nothing_here at the source`);
    expect(m.output).not.toContain('gave up after');
  });

  it('a backend terminated while its COPY streams: the load is tried again and loads every row', async () => {
    const schema = pg.schema();
    await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
    await pg.admin.query(`create table ${pgQuoteIdent(schema)}.customers as select g as id, 'name ' || g as name from generate_series(1, 5000) g`);
    // The query sleeps before its first row: the COPY is seen running, and terminated, before it has sent anything.
    const dir = project(`          type: postgres\n          url: "${PG_URL}"\n          query: select c.* from ${schema}.customers c, pg_sleep(2)\n          retry_backoff: { strategy: constant, base: 10ms }\n`);
    const child = startCli(['extract', '--project-dir', dir], { cwd: dir });
    const pid = await waitForBackend(pg.admin, ['copy (select', 'pg_sleep(2)'], 60_000);
    await pg.admin.query('select pg_terminate_backend($1)', [pid]);
    const r = await child.done;
    expect(r.code, r.output).toBe(0);
    const result = loaderResult(dir);
    expect(result.status).toBe('success');
    expect(result.adapter_response).toMatchObject({ rows_read: 5000, rows_loaded: 5000 });
    expect(result.message).toMatch(/; after 1 retry \(.*terminating connection due to administrator command/);
    expect(await withDb(dbPathOf(dir), (db) => db.rows('select count(*)::int as n, sum(id)::int as s from crm.customers'))).toEqual([{ n: 5000, s: 12502500 }]);
  }, 120_000);
});
