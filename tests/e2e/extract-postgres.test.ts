// Extract and load from a real Postgres source (the local server, a schema of
// its own per test) into DuckDB, Postgres and Delta targets: loaders as graph
// nodes (ls, manifest, selection, build order), full and incremental loads of
// 1M rows with updates, inserts and deletes in between (only the changes
// extracted, checked by counts and contents), --full-refresh, and the bad
// inputs: an unknown type or missing url (exit 2, yml line), a cursor missing
// at the source and a primary key that is not unique (exit 1, raw table intact).

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, createPgDatabase, dropPgDatabase, PG_URL, pgConnect, pgQuoteIdent, pgTestSchemas, readJson, REPO_ROOT, runCli, withDb, writeProject } from './helpers.js';

const pg = pgTestSchemas();
// TZ pinned: the watermark of a timestamptz cursor is printed in the session's time zone.
const env = { CRM_URL: PG_URL, TZ: 'UTC' };

/**
 * A database of its own for a Postgres target (dropped after the file's tests):
 * etl_meta, the state's schema, is per database, so this test's state is its own.
 */
const databases: string[] = [];
async function ownDatabase(): Promise<string> {
  const url = await createPgDatabase(pg.admin, 'etl_x');
  databases.push(url);
  return url;
}
afterAll(async () => {
  for (const url of databases) await dropPgDatabase(pg.admin, url);
});


/** A source table of `rows` customers: updated_at one second apart from 2024-01-01, so the order is known. */
async function sourceTable(rows: number): Promise<string> {
  const schema = pg.schema();
  await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
  await pg.admin.query(
    `create table ${pgQuoteIdent(schema)}.customers (id bigint primary key, name text, email varchar(80), amount numeric(12,2), active boolean, born date, updated_at timestamptz not null)`,
  );
  await pg.admin.query(
    `insert into ${pgQuoteIdent(schema)}.customers select g, 'name ' || g, case when g % 10 = 0 then null else 'c' || g || '@x.org' end, g * 1.25, g % 3 = 0, date '1990-01-01' + (g % 9000), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' from generate_series(1, ${rows}) g`,
  );
  return schema;
}

function loaderYml(sourceSchema: string, extra = '', sourceExtra = ''): string {
  return `sources:
  - name: crm${sourceExtra}
    tables:
      - name: customers
        loader:
          type: postgres
          url: "{{env_var 'CRM_URL'}}"
          table: ${sourceSchema}.customers
${extra}`;
}

const INCREMENTAL = '          incremental: { cursor: updated_at, primary_key: id }\n';

function project(sourceSchema: string, extra = INCREMENTAL, files: Record<string, string> = {}): string {
  return writeProject({
    'etl.yml': etlYml('shop'),
    'models/crm.yml': loaderYml(sourceSchema, extra),
    'models/active_customers.sql': "select id, name from {{source 'crm' 'customers'}} where active",
    ...files,
  });
}

async function duck<T = Record<string, unknown>>(dir: string, sql: string): Promise<T[]> {
  return withDb(dbPathOf(dir), (db) => db.rows(sql)) as Promise<T[]>;
}

function loaderResult(dir: string): Record<string, any> {
  const rr = readJson(dir, 'target/run_results.json');
  return rr.results.find((r: { unique_id: string }) => r.unique_id === 'loader.shop.crm.customers');
}

describe('loaders as graph nodes', () => {
  it('a loader is a node: listed by etl ls, selectable as source:crm.customers, in a manifest valid against dbt schema, run before the models reading the source', async () => {
    const src = await sourceTable(100);
    const dir = project(src);
    const ls = await runCli(['ls', '--output', 'json'], { cwd: dir, env });
    expect(ls.code, ls.output).toBe(0);
    const listed = ls.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const loader = listed.find((n) => n.resource_type === 'loader');
    expect(loader).toMatchObject({ unique_id: 'loader.shop.crm.customers', name: 'crm.customers', original_file_path: 'models/crm.yml' });
    expect(listed.find((n) => n.name === 'active_customers').depends_on).toContain('loader.shop.crm.customers');

    const selected = await runCli(['ls', '-s', 'source:crm.customers', '--resource-type', 'loader'], { cwd: dir, env });
    expect(selected.stdout.trim()).toBe('shop.crm.customers');

    const build = await runCli(['build'], { cwd: dir, env });
    expect(build.code, build.output).toBe(0);
    expect(build.stdout.indexOf('loader crm.customers')).toBeLessThan(build.stdout.indexOf('active_customers'));
    expect(await duck(dir, 'select count(*)::int as n from main.active_customers')).toEqual([{ n: 33 }]);

    const manifest = readJson(dir, 'target/manifest.json');
    expect(manifest.nodes['loader.shop.crm.customers']).toBeUndefined();
    expect(manifest.sources['source.shop.crm.customers'].loader).toBe('postgres');
    expect(manifest.sources['source.shop.crm.customers'].config.etl.loader_node.unique_id).toBe('loader.shop.crm.customers');
    expect(manifest.child_map['loader.shop.crm.customers']).toEqual(['model.shop.active_customers']);
    // The url stays a template: the manifest never holds what the environment gave.
    expect(JSON.stringify(manifest)).toContain("{{env_var 'CRM_URL'}}");
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(JSON.parse(readFileSync(path.join(REPO_ROOT, 'tests/fixtures/dbt-schemas/manifest.json'), 'utf8')) as object);
    expect(validate(manifest), JSON.stringify(validate.errors?.slice(0, 5))).toBe(true);

    // etl extract runs the loaders only; etl run (models) does not run them.
    const run = await runCli(['run'], { cwd: dir, env });
    expect(run.stdout).not.toContain('loader crm.customers');
    const extract = await runCli(['extract'], { cwd: dir, env });
    expect(extract.code, extract.output).toBe(0);
    expect(extract.stdout).toContain('loader crm.customers');
    expect(extract.stdout).not.toContain('active_customers');

    // The run history keeps each load: rows loaded, bytes moved, the message with rows read and rows/s.
    const history = await runCli(['history', '-s', 'source:crm.customers', '--limit', '1', '-o', 'json'], { cwd: dir, env });
    expect(history.code, history.output).toBe(0);
    const [load] = JSON.parse(history.stdout).node_runs;
    // (the last load: nothing changed, so the row at the watermark only)
    expect(load).toMatchObject({ unique_id: 'loader.shop.crm.customers', status: 'success', rows_affected: 1 });
    expect(load.bytes_written).toBeGreaterThan(40);
    expect(load.message).toMatch(/^MERGE since 2024-01-01 00:01:40\+00 \(1 rows read, 1 loaded, \d+ B, \d+ rows\/s\)$/);
  });

  it('bad loader config is exit 2 at its yml line: an unknown type, a missing url, table and query together', async () => {
    const dir = writeProject({
      'etl.yml': etlYml('shop'),
      'models/crm.yml': `sources:
  - name: crm
    tables:
      - name: a
        loader: { type: mysql, url: x }
      - name: b
        loader:
          type: postgres
          table: b
      - name: c
        loader: { type: postgres, url: x, table: c, query: select 1 }
`,
    });
    const r = await runCli(['extract'], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/models\/crm\.yml:5:\d+.*mysql/);
    expect(r.output).toContain('expected one of: postgres');
    expect(r.output).toMatch(/models\/crm\.yml:\d+:\d+.*missing required key "url"/);
    expect(r.output).toMatch(/models\/crm\.yml:11:\d+.*both table: and query:/);
  });
});

describe('postgres -> duckdb', () => {
  it('loads 1M rows, then extracts only the rows changed since the watermark and merges them by key; --full-refresh reloads (deletes too)', async () => {
    const src = await sourceTable(1_000_000);
    const dir = project(src);
    const first = await runCli(['extract'], { cwd: dir, env, timeoutMs: 300_000 });
    expect(first.code, first.output).toBe(0);
    expect(loaderResult(dir).adapter_response).toMatchObject({ rows_read: 1_000_000, rows_loaded: 1_000_000, rows_rejected: 0 });
    expect(loaderResult(dir).adapter_response.bytes).toBeGreaterThan(50_000_000);
    expect(await duck(dir, `select count(*)::int as n, sum(id)::bigint::varchar as s, count(email)::int as emails, sum(amount)::varchar as amount, count(*) filter (where active)::int as active from crm.customers`)).toEqual([
      { n: 1_000_000, s: '500000500000', emails: 900_000, amount: '625000625000.00', active: 333_333 },
    ]);
    const types = await duck(dir, `select column_name as c, data_type as t from information_schema.columns where table_schema = 'crm' and table_name = 'customers' order by ordinal_position`);
    expect(types.map((r) => `${r.c} ${r.t}`)).toEqual(['id BIGINT', 'name VARCHAR', 'email VARCHAR', 'amount DECIMAL(12,2)', 'active BOOLEAN', 'born DATE', 'updated_at TIMESTAMP WITH TIME ZONE']);
    expect(await duck(dir, `select name, email, born::varchar as born from crm.customers where id in (10, 11) order by id`)).toEqual([
      { name: 'name 10', email: null, born: '1990-01-11' },
      { name: 'name 11', email: 'c11@x.org', born: '1990-01-12' },
    ]);

    // Between runs: 1000 updates, 500 inserts, 200 deletes at the source.
    const t = `${pgQuoteIdent(src)}.customers`;
    await pg.admin.query(`update ${t} set name = 'renamed ' || id, amount = 0, updated_at = timestamptz '2025-01-01 00:00:00+00' + id * interval '1 second' where id between 5001 and 6000`);
    await pg.admin.query(`insert into ${t} select g, 'new ' || g, '', 1, true, null, timestamptz '2025-06-01 00:00:00+00' + g * interval '1 second' from generate_series(1000001, 1000500) g`);
    await pg.admin.query(`delete from ${t} where id between 1 and 200`);

    const second = await runCli(['extract', '-s', 'source:crm.customers'], { cwd: dir, env, timeoutMs: 300_000 });
    expect(second.code, second.output).toBe(0);
    // The changed rows, plus the row at the watermark itself (cursor >= watermark: a late row with the same time is not lost).
    expect(loaderResult(dir).adapter_response).toMatchObject({ rows_read: 1501, rows_loaded: 1501 });
    expect(loaderResult(dir).message).toMatch(/^MERGE since 2024-01-12 13:46:40\+00/);
    expect(await duck(dir, `select count(*)::int as n, count(*) filter (where name like 'renamed %')::int as renamed, count(*) filter (where name like 'new %')::int as added, count(*) filter (where email = '')::int as empty from crm.customers`)).toEqual([
      { n: 1_000_500, renamed: 1000, added: 500, empty: 500 },
    ]);
    expect(await duck(dir, `select name, amount::varchar as amount from crm.customers where id in (5001, 6001) order by id`)).toEqual([
      { name: 'renamed 5001', amount: '0.00' },
      { name: 'name 6001', amount: '7501.25' },
    ]);
    // Deleted at the source, still in the raw table: an incremental load by cursor does not see deletes.
    expect(await duck(dir, `select count(*)::int as n from crm.customers where id <= 200`)).toEqual([{ n: 200 }]);

    // Nothing changed: only the row at the watermark is read again.
    const third = await runCli(['extract'], { cwd: dir, env });
    expect(third.code, third.output).toBe(0);
    expect(loaderResult(dir).adapter_response).toMatchObject({ rows_read: 1, rows_loaded: 1 });

    const refresh = await runCli(['extract', '--full-refresh'], { cwd: dir, env, timeoutMs: 300_000 });
    expect(refresh.code, refresh.output).toBe(0);
    expect(loaderResult(dir).adapter_response).toMatchObject({ rows_read: 1_000_300, rows_loaded: 1_000_300 });
    const [source] = (await pg.admin.query(`select count(*)::text as n, sum(id)::text as s, sum(amount)::text as amount from ${t}`)).rows;
    expect(await duck(dir, `select count(*)::varchar as n, sum(id)::bigint::varchar as s, sum(amount)::varchar as amount from crm.customers`)).toEqual([source]);
  }, 600_000);

  it('lookback re-reads rows up to that far before the watermark, and merging them again changes nothing', async () => {
    const src = await sourceTable(1000);
    const dir = project(src, '          incremental: { cursor: updated_at, primary_key: id, lookback: 10m }\n');
    expect((await runCli(['extract'], { cwd: dir, env })).code).toBe(0);
    const again = await runCli(['extract'], { cwd: dir, env });
    expect(again.code, again.output).toBe(0);
    // 10 minutes of rows one second apart, plus the one at the watermark.
    expect(loaderResult(dir).adapter_response).toMatchObject({ rows_read: 601 });
    expect(await duck(dir, 'select count(*)::int as n, sum(id)::int as s from crm.customers')).toEqual([{ n: 1000, s: 500500 }]);
  });

  it('a cursor column missing at the source fails the run naming the source and its yml line; the raw table stays as it was', async () => {
    const src = await sourceTable(50);
    const dir = project(src);
    expect((await runCli(['extract'], { cwd: dir, env })).code).toBe(0);
    writeFileSync(path.join(dir, 'models/crm.yml'), loaderYml(src, '          incremental: { cursor: modified_at, primary_key: id }\n'));
    const r = await runCli(['extract'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.output).toContain('loader of source crm.customers (models/crm.yml:5)');
    expect(r.output).toContain('incremental.cursor "modified_at" is not a column at the source');
    expect(await duck(dir, 'select count(*)::int as n from crm.customers')).toEqual([{ n: 50 }]);
  });

  it('a primary key that is not unique in the extracted rows fails naming the keys; the raw table stays as it was', async () => {
    const src = await sourceTable(50);
    const dir = project(src, '          incremental: { cursor: updated_at, primary_key: active }\n');
    const r = await runCli(['extract'], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.output).toContain('primary_key active is not unique in the extracted rows: false x34, true x16');
    expect(await duck(dir, `select count(*)::int as n from information_schema.tables where table_schema = 'crm'`)).toEqual([{ n: 0 }]);
  });

  it('a query: loader extracts what the query selects', async () => {
    const src = await sourceTable(100);
    const dir = project(src, '', {
      'models/crm.yml': `sources:
  - name: crm
    tables:
      - name: customers
        loader:
          type: postgres
          url: "{{env_var 'CRM_URL'}}"
          query: select id, upper(name) as name from ${src}.customers where id <= 10
`,
      'models/active_customers.sql': "select * from {{source 'crm' 'customers'}}",
    });
    const r = await runCli(['build'], { cwd: dir, env });
    expect(r.code, r.output).toBe(0);
    expect(await duck(dir, 'select count(*)::int as n, max(name) as m from main.active_customers')).toEqual([{ n: 10, m: 'NAME 9' }]);
  });
});

describe('other targets', () => {
  /** Source changes between the two loads: 100 updated, 50 inserted. */
  async function changeSource(src: string): Promise<void> {
    const t = `${pgQuoteIdent(src)}.customers`;
    await pg.admin.query(`update ${t} set name = 'renamed ' || id, updated_at = timestamptz '2025-01-01 00:00:00+00' + id * interval '1 second' where id between 101 and 200`);
    await pg.admin.query(`insert into ${t} select g, 'new ' || g, null, 1, true, null, timestamptz '2025-06-01 00:00:00+00' + g * interval '1 second' from generate_series(10001, 10050) g`);
  }

  it('postgres -> postgres: COPY into a staged table, merged with the watermark in one transaction', async () => {
    const src = await sourceTable(10_000);
    const raw = 'raw';
    const target = 'analytics';
    const targetUrl = await ownDatabase();
    const dir = writeProject({
      'etl.yml': etlYml('shop').replace(/dev: \{[^}]*\}/, `dev: { type: postgres, url: "${targetUrl}", schema: ${target}, threads: 2 }`),
      'models/crm.yml': loaderYml(src, INCREMENTAL).replace('  - name: crm\n', `  - name: crm\n    schema: ${raw}\n`),
      'models/active_customers.sql': "select id, name from {{source 'crm' 'customers'}} where active",
    });
    const first = await runCli(['build'], { cwd: dir, env });
    expect(first.code, first.output).toBe(0);
    const db = await pgConnect(targetUrl);
    const q = async (sql: string) => (await db.query(sql)).rows;
    expect(await q(`select count(*)::int as n, sum(id)::text as s from ${pgQuoteIdent(raw)}.customers`)).toEqual([{ n: '10000', s: '50005000' }]);
    expect(await q(`select format_type(atttypid, atttypmod) as t from pg_attribute where attrelid = '${pgQuoteIdent(raw)}.customers'::regclass and attnum > 0 order by attnum`)).toEqual(
      ['bigint', 'text', 'character varying(80)', 'numeric(12,2)', 'boolean', 'date', 'timestamp with time zone'].map((t) => ({ t })),
    );
    expect(await q(`select count(*)::int as n from ${pgQuoteIdent(target)}.active_customers`)).toEqual([{ n: '3333' }]);
    await changeSource(src);
    const second = await runCli(['extract'], { cwd: dir, env });
    expect(second.code, second.output).toBe(0);
    expect(loaderResult(dir).adapter_response).toMatchObject({ rows_read: 151, rows_loaded: 151 });
    expect(await q(`select count(*)::int as n, count(*) filter (where name like 'renamed %')::int as renamed, count(*) filter (where name like 'new %')::int as added from ${pgQuoteIdent(raw)}.customers`)).toEqual([{ n: '10050', renamed: '100', added: '50' }]);
    expect(await q(`select watermark from etl_meta.watermarks where relation = '${raw}.customers'`)).toEqual([{ watermark: '2025-06-01 02:47:30+00' }]);
    await db.end();
  });

  it('postgres -> delta: staged by DuckDB, written as Parquet files and committed with the watermark', async () => {
    const src = await sourceTable(10_000);
    const dir = writeProject({
      'etl.yml': etlYml('shop').replace(/dev: \{[^}]*\}/, 'dev: { type: delta, path: lake, schema: main, threads: 2 }'),
      'models/crm.yml': loaderYml(src, INCREMENTAL),
      'models/active_customers.sql': "select id, name from {{source 'crm' 'customers'}} where active",
    });
    const first = await runCli(['build'], { cwd: dir, env });
    expect(first.code, first.output).toBe(0);
    const count = async () => {
      const r = await runCli(['show', '--inline', "select count(*) as n, count(*) filter (where name like 'renamed %') as renamed, count(*) filter (where name like 'new %') as added from crm.customers"], { cwd: dir, env });
      expect(r.code, r.output).toBe(0);
      return r.stdout;
    };
    expect(await count()).toContain('10000');
    await changeSource(src);
    const second = await runCli(['extract'], { cwd: dir, env });
    expect(second.code, second.output).toBe(0);
    expect(loaderResult(dir).adapter_response).toMatchObject({ rows_read: 151, rows_loaded: 151 });
    const log = readFileSync(path.join(dir, 'lake/crm/customers/_delta_log/00000000000000000001.json'), 'utf8');
    expect(log).toContain('"operation":"MERGE"');
    expect(log).toContain('2025-06-01');
    expect(await count()).toMatch(/\|\s*10050\s*\|\s*100\s*\|\s*50\s*\|/);
  });
});

describe('schema drift at the source', () => {
  it('by default: a new column is added, a removed one kept (a warning), a widened type widened, reported in run_results; a narrowing change fails and leaves the table as it was', async () => {
    const schema = pg.schema();
    const t = `${pgQuoteIdent(schema)}.items`;
    await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
    await pg.admin.query(`create table ${t} (id integer primary key, qty integer, note text, price numeric(8,2), updated_at timestamptz)`);
    await pg.admin.query(`insert into ${t} select g, g, 'n' || g, g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' from generate_series(1, 10) g`);
    const dir = writeProject({
      'etl.yml': etlYml('shop'),
      'models/crm.yml': loaderYml(schema, INCREMENTAL).replace(`table: ${schema}.customers`, `table: ${schema}.items`),
    });
    expect((await runCli(['extract'], { cwd: dir, env })).code).toBe(0);

    await pg.admin.query(`alter table ${t} add column color text, drop column note, alter column qty type bigint, alter column price type numeric(12,2)`);
    await pg.admin.query(`update ${t} set color = 'red', qty = 5000000000, updated_at = timestamptz '2025-01-01 00:00:00+00' where id = 3`);
    const drift = await runCli(['extract'], { cwd: dir, env });
    expect(drift.code, drift.output).toBe(0);
    expect(drift.stdout).toContain('WARN');
    expect(drift.stdout).toContain('column note no longer at the source (kept, NULL in new rows)');
    const result = loaderResult(dir);
    expect(result.status).toBe('warn');
    expect(result.adapter_response.schema_changes).toEqual({ added: ['color'], removed: ['note'], changed: ['qty', 'price'] });
    const types = await duck(dir, `select column_name as c, data_type as t from information_schema.columns where table_schema = 'crm' and table_name = 'customers' order by ordinal_position`);
    expect(types.map((r) => `${r.c} ${r.t}`)).toEqual(['id INTEGER', 'qty BIGINT', 'note VARCHAR', 'price DECIMAL(12,2)', 'updated_at TIMESTAMP WITH TIME ZONE', 'color VARCHAR']);
    expect(await duck(dir, `select qty::varchar as qty, note, color from crm.customers where id in (2, 3) order by id`)).toEqual([
      { qty: '2', note: 'n2', color: null },
      { qty: '5000000000', note: null, color: 'red' },
    ]);

    // text -> integer cannot be taken by the raw table: the load fails, nothing changes.
    await pg.admin.query(`alter table ${t} alter column color type integer using 1`);
    await pg.admin.query(`update ${t} set qty = 7, updated_at = timestamptz '2025-02-01 00:00:00+00' where id = 4`);
    const narrowing = await runCli(['extract'], { cwd: dir, env });
    expect(narrowing.code).toBe(1);
    expect(narrowing.output).toContain('the type of color (VARCHAR -> INTEGER) changed at the source of crm.customers in a way the raw table cannot take; the table is unchanged');
    expect(await duck(dir, `select qty::int as qty from crm.customers where id = 4`)).toEqual([{ qty: 4 }]);
  });
});
