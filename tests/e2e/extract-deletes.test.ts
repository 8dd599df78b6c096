// Hard deletes without CDC: `incremental: { cursor, primary_key, deletes: detect }`
// on a real Postgres source (a schema of its own per test), loaded into
// DuckDB, Postgres and Delta targets. Between runs rows are deleted, updated
// and inserted at the source (one row updated then deleted, one inserted then
// deleted); each incremental run reads the changed rows and every key, and
// the raw table ends equal to the source, compared row by row, with the
// counts (read, loaded, deleted) in the run output and run_results. A run with
// nothing deleted deletes nothing; a source emptied empties the table. The
// bad inputs are project errors at the yml line (exit 2): deletes: detect on
// an HTTP loader, and a value that is not ignore or detect.

import { describe, expect, it } from 'vitest';
import { createPgDatabase, dropPgDatabase, etlYml, PG_URL, pgConnect, pgQuoteIdent, pgTestSchemas, readJson, runCli, writeProject } from './helpers.js';
import { extractTargetYml, storeOf, withStore } from './targets.js';

const pg = pgTestSchemas();
const env = { CRM_URL: PG_URL, TZ: 'UTC' };

type Target = 'duckdb' | 'postgres' | 'delta';

/** A source table of `rows` rows: updated_at one second apart from 2024-01-01; a composite key (region, id). */
async function sourceTable(rows: number): Promise<string> {
  const schema = pg.schema();
  await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
  await pg.admin.query(`create table ${pgQuoteIdent(schema)}.accounts (region text not null, id bigint not null, name text, amount numeric(12,2), updated_at timestamptz not null, primary key (region, id))`);
  await pg.admin.query(
    `insert into ${pgQuoteIdent(schema)}.accounts select case when g % 2 = 0 then 'eu' else 'us' end, g, 'name ' || g, g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' from generate_series(1, ${rows}) g`,
  );
  return schema;
}

/** Every row as text the same way on every engine. */
const CANONICAL = (table: string, cast: string) =>
  `select region, ${cast.replace('X', 'id')} as id, name, ${cast.replace('X', 'amount')} as amount from ${table} order by region, id`;
const PG_ROWS = (table: string) => CANONICAL(table, 'X::text');
const DUCK_ROWS = (table: string) => CANONICAL(table, 'X::varchar');

function loaderResult(dir: string): Record<string, any> {
  return readJson(dir, 'target/run_results.json').results.find((r: { unique_id: string }) => r.unique_id === 'loader.shop.crm.accounts');
}

async function setup(target: Target): Promise<{ src: string; dir: string; loaded(): Promise<unknown[]>; expected(): Promise<unknown[]>; etl(...args: string[]): ReturnType<typeof runCli>; done(): Promise<void> }> {
  const src = await sourceTable(2000);
  const targetUrl = target === 'postgres' ? await createPgDatabase(pg.admin, 'etl_del') : undefined;
  const dir = writeProject({
    'etl.yml': extractTargetYml(target, 'shop', targetUrl, 'analytics'),
    'models/crm.yml': `sources:
  - name: crm
    tables:
      - name: accounts
        loader:
          type: postgres
          url: "{{env_var 'CRM_URL'}}"
          table: ${src}.accounts
          incremental: { cursor: updated_at, primary_key: [region, id], deletes: detect }
`,
    'models/totals.sql': "select region, count(*) as n from {{source 'crm' 'accounts'}} group by region",
  });
  const loaded = async () => {
    if (target !== 'postgres') return withStore(target, storeOf(target, dir), (db) => db.rows(DUCK_ROWS('crm.accounts')));
    const c = await pgConnect(targetUrl);
    try {
      return (await c.query(PG_ROWS('crm.accounts'))).rows;
    } finally {
      await c.end();
    }
  };
  return {
    src,
    dir,
    loaded,
    expected: async () => (await pg.admin.query(PG_ROWS(`${pgQuoteIdent(src)}.accounts`))).rows,
    etl: (...args: string[]) => runCli([...args, '--project-dir', dir], { cwd: dir, env, timeoutMs: 120_000 }),
    done: async () => {
      if (targetUrl) await dropPgDatabase(pg.admin, targetUrl);
    },
  };
}

describe.each<Target>(['duckdb', 'postgres', 'delta'])('deletes: detect into %s', (target) => {
  it('rows deleted at the source between runs are deleted from the raw table, with the changed rows, in one step; counts in the output and run_results', async () => {
    const s = await setup(target);
    try {
      const first = await s.etl('build');
      expect(first.code, first.output).toBe(0);
      expect(first.stdout).toMatch(/loader crm\.accounts \.+ \[2000 read, 2000 loaded, 0 rejected, /);
      expect(await s.loaded()).toEqual(await s.expected());

      const t = `${pgQuoteIdent(s.src)}.accounts`;
      // 100 deleted (both regions), 30 updated, 20 inserted; one row updated then deleted, one inserted then deleted.
      await pg.admin.query(`delete from ${t} where id between 1 and 50 or id between 1001 and 1050`);
      await pg.admin.query(`update ${t} set name = 'renamed ' || id, amount = 0, updated_at = timestamptz '2025-01-01 00:00:00+00' + id * interval '1 second' where id between 101 and 130`);
      await pg.admin.query(`insert into ${t} select 'ap', g, 'new ' || g, 1, timestamptz '2025-06-01 00:00:00+00' + g * interval '1 second' from generate_series(3001, 3020) g`);
      await pg.admin.query(`update ${t} set name = 'doomed', updated_at = timestamptz '2025-02-01 00:00:00+00' where id = 500`);
      await pg.admin.query(`delete from ${t} where id = 500`);
      await pg.admin.query(`insert into ${t} values ('ap', 9999, 'short-lived', 1, now())`);
      await pg.admin.query(`delete from ${t} where id = 9999`);

      const second = await s.etl('build');
      expect(second.code, second.output).toBe(0);
      // The changed rows and the row at the watermark; 101 keys gone.
      expect(second.stdout).toMatch(/loader crm\.accounts \.+ \[51 read, 51 loaded, 101 deleted, 0 rejected, /);
      expect(loaderResult(s.dir).message).toMatch(/^MERGE since 2024-01-01 00:33:20\+00 \(51 rows read, 51 loaded, 101 deleted, /);
      const result = loaderResult(s.dir);
      expect(result.status).toBe('success');
      expect(result.adapter_response).toMatchObject({ rows_read: 51, rows_loaded: 51, rows_deleted: 101, rows_rejected: 0 });
      const after = await s.loaded();
      expect(after).toEqual(await s.expected());
      expect(after).toHaveLength(2000 - 101 + 20);
      expect(after.filter((r) => String((r as { name: string }).name).startsWith('renamed '))).toHaveLength(30);

      // Nothing deleted since: nothing deleted now; only the row at the watermark is read.
      const third = await s.etl('extract');
      expect(third.code, third.output).toBe(0);
      expect(loaderResult(s.dir).adapter_response).toMatchObject({ rows_read: 1, rows_loaded: 1, rows_deleted: 0 });
      expect(await s.loaded()).toEqual(await s.expected());

      // Every row gone at the source: the raw table is emptied; then new rows come in again.
      await pg.admin.query(`delete from ${t}`);
      const emptied = await s.etl('extract');
      expect(emptied.code, emptied.output).toBe(0);
      expect(loaderResult(s.dir).adapter_response).toMatchObject({ rows_read: 0, rows_loaded: 0, rows_deleted: 2000 - 101 + 20 });
      expect(await s.loaded()).toEqual([]);
      await pg.admin.query(`insert into ${t} values ('eu', 1, 'back', 2, timestamptz '2026-01-01 00:00:00+00')`);
      const back = await s.etl('extract');
      expect(back.code, back.output).toBe(0);
      expect(loaderResult(s.dir).adapter_response).toMatchObject({ rows_read: 1, rows_loaded: 1, rows_deleted: 0 });
      expect(await s.loaded()).toEqual(await s.expected());
      expect(await s.loaded()).toHaveLength(1);
    } finally {
      await s.done();
    }
  }, 180_000);
});

describe('deletes: detect, bad input', () => {
  it('on an HTTP loader, or a value other than ignore or detect: a project error at the yml line (exit 2)', async () => {
    const dir = writeProject({
      'etl.yml': etlYml('shop'),
      'models/api.yml': `sources:
  - name: api
    tables:
      - name: items
        loader: { type: http, url: "http://127.0.0.1:9/items", incremental: { cursor: updated_at, primary_key: id, deletes: detect } }
      - name: orders
        loader: { type: postgres, url: x, table: orders, incremental: { cursor: updated_at, primary_key: id, deletes: hard } }
`,
    });
    const r = await runCli(['extract'], { cwd: dir });
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/models\/api\.yml:5:\d+.*incremental\.deletes: detect needs every key at the source on each run, which an HTTP API does not list/);
    expect(r.output).toMatch(/models\/api\.yml:7:\d+.*hard/);
    expect(r.output).toMatch(/ignore.*detect/);
  });
});
