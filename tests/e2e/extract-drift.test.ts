// Schema drift at a loader's Postgres source (a schema of its own), on every
// target: by default a column added at the source is added, a removed one
// kept (a warning) and a widened type widened, reported in run_results
// (DuckDB, Postgres, Delta; extract-postgres.test.ts has the narrowing
// failure on DuckDB). And the loader's own on_schema_change, dbt's modes:
// fail (the load fails, the table unchanged), sync_all_columns (the removed
// column dropped), append_new_columns (added, none dropped, no warning),
// ignore (the table's columns kept).

import { describe, expect, it } from 'vitest';
import { createPgDatabase, dropPgDatabase, etlYml, PG_URL, pgConnect, pgQuoteIdent, pgTestSchemas, readJson, runCli, writeProject } from './helpers.js';
import { extractTargetYml, storeOf, withStore } from './targets.js';

const pg = pgTestSchemas();
const env = { CRM_URL: PG_URL, TZ: 'UTC' };

/** A source table items (id, qty integer, note, updated_at) of 10 rows; its schema. */
async function source(): Promise<{ schema: string; t: string }> {
  const schema = pg.schema();
  const t = `${pgQuoteIdent(schema)}.items`;
  await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
  await pg.admin.query(`create table ${t} (id integer primary key, qty integer, note text, updated_at timestamptz not null)`);
  await pg.admin.query(`insert into ${t} select g, g, 'n' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' from generate_series(1, 10) g`);
  return { schema, t };
}

function loaderYml(schema: string, extra = ''): string {
  return `sources:\n  - name: crm\n    tables:\n      - name: items\n        loader:\n          type: postgres\n          url: "{{env_var 'CRM_URL'}}"\n          table: ${schema}.items\n          incremental: { cursor: updated_at, primary_key: id }\n${extra}`;
}

function loaderResult(dir: string): Record<string, any> {
  return readJson(dir, 'target/run_results.json').results.find((r: { unique_id: string }) => r.unique_id === 'loader.shop.crm.items');
}

/** Adds color, drops note, widens qty to bigint, and changes row 3 after the watermark (qty set to `qty`). */
async function drift(t: string, qty = '5000000000'): Promise<void> {
  await pg.admin.query(`alter table ${t} add column color text, drop column note, alter column qty type bigint`);
  await pg.admin.query(`update ${t} set color = 'red', qty = ${qty}, updated_at = timestamptz '2025-01-01 00:00:00+00' where id = 3`);
}

describe.each(['duckdb', 'postgres', 'delta'] as const)('schema drift into %s (default handling)', (target) => {
  it('a new column added, a removed one kept with a warning, a widened type widened; the rows as the source has them', async () => {
    const { schema, t } = await source();
    const targetUrl = target === 'postgres' ? await createPgDatabase(pg.admin, 'etl_drift') : undefined;
    try {
      const dir = writeProject({ 'etl.yml': extractTargetYml(target, 'shop', targetUrl), 'models/crm.yml': loaderYml(schema) });
      const first = await runCli(['extract'], { cwd: dir, env });
      expect(first.code, first.output).toBe(0);
      await drift(t);
      const r = await runCli(['extract'], { cwd: dir, env });
      expect(r.code, r.output).toBe(0);
      expect(r.stdout).toContain('column note no longer at the source (kept, NULL in new rows)');
      const result = loaderResult(dir);
      expect(result.status).toBe('warn');
      expect(result.adapter_response.schema_changes).toEqual({ added: ['color'], removed: ['note'], changed: ['qty'] });
      const sql = 'select id, cast(qty as varchar(20)) as qty, note, color from crm.items where id in (2, 3) order by id';
      const rows =
        target === 'postgres'
          ? await (async () => {
              const c = await pgConnect(targetUrl);
              try {
                return (await c.query(sql.replace('varchar(20)', 'text').replace('select id,', 'select id::int as id,'))).rows;
              } finally {
                await c.end();
              }
            })()
          : await withStore(target, storeOf(target, dir), (db) => db.rows(sql.replace('select id,', 'select id::int as id,')));
      expect(rows.map((x) => ({ ...x, id: Number(x.id) }))).toEqual([
        { id: 2, qty: '2', note: 'n2', color: null },
        { id: 3, qty: '5000000000', note: null, color: 'red' },
      ]);
    } finally {
      if (targetUrl) await dropPgDatabase(pg.admin, targetUrl);
    }
  }, 120_000);
});

describe("a loader's own on_schema_change", () => {
  async function run(mode: string): Promise<{ dir: string; r: Awaited<ReturnType<typeof runCli>>; columns: () => Promise<string[]> }> {
    const { schema, t } = await source();
    const dir = writeProject({ 'etl.yml': etlYml('shop'), 'models/crm.yml': loaderYml(schema, `          on_schema_change: ${mode}\n`) });
    expect((await runCli(['extract'], { cwd: dir, env })).code).toBe(0);
    // A value the old type holds too: only sync_all_columns changes the table's types.
    await drift(t, '33');
    const r = await runCli(['extract'], { cwd: dir, env });
    const columns = async () =>
      (await withStore('duckdb', storeOf('duckdb', dir), (db) => db.rows(`select column_name as c, data_type as t from information_schema.columns where table_schema = 'crm' and table_name = 'items' order by ordinal_position`))).map((x) => `${x.c} ${x.t}`);
    return { dir, r, columns };
  }

  it('fail: the load fails naming the columns, the table unchanged', async () => {
    const { dir, r, columns } = await run('fail');
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/on_schema_change/);
    expect(r.output).toMatch(/color/);
    expect(await columns()).toEqual(['id INTEGER', 'qty INTEGER', 'note VARCHAR', 'updated_at TIMESTAMP WITH TIME ZONE']);
    expect(await withStore('duckdb', storeOf('duckdb', dir), (db) => db.rows('select qty::varchar as qty from crm.items where id = 3'))).toEqual([{ qty: '3' }]);
  });

  it('sync_all_columns: the removed column dropped, the new one added, the type changed; no warning', async () => {
    const { dir, r, columns } = await run('sync_all_columns');
    expect(r.code, r.output).toBe(0);
    expect(loaderResult(dir).status).toBe('success');
    expect(await columns()).toEqual(['id INTEGER', 'qty BIGINT', 'updated_at TIMESTAMP WITH TIME ZONE', 'color VARCHAR']);
    expect(await withStore('duckdb', storeOf('duckdb', dir), (db) => db.rows('select qty::varchar as qty, color from crm.items where id = 3'))).toEqual([{ qty: '33', color: 'red' }]);
  });

  it('append_new_columns: the new one added, the removed one kept, without a warning', async () => {
    const { dir, r, columns } = await run('append_new_columns');
    expect(r.code, r.output).toBe(0);
    expect(loaderResult(dir).status).toBe('success');
    expect(await columns()).toEqual(['id INTEGER', 'qty INTEGER', 'note VARCHAR', 'updated_at TIMESTAMP WITH TIME ZONE', 'color VARCHAR']);
  });

  it("ignore: the table's columns kept, the new one not added", async () => {
    const { dir, r, columns } = await run('ignore');
    expect(r.code, r.output).toBe(0);
    expect(await columns()).toEqual(['id INTEGER', 'qty INTEGER', 'note VARCHAR', 'updated_at TIMESTAMP WITH TIME ZONE']);
    expect(await withStore('duckdb', storeOf('duckdb', dir), (db) => db.rows('select note from crm.items where id = 3'))).toEqual([{ note: null }]);
  });
});
