// Slim CI with --defer --state (core/artifacts/defer.ts), on DuckDB and on
// the real Postgres: production is built in one target, a change is built in
// a CI target with `-s state:modified+ --defer --state prod-target/`, and the
// CI relation reads production's upstream. Bad --state input is exit 2.

import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dbPathOf, dropPgSchema, killAll, newPgSchema, PG_URL, pgConnect, readJson, removeTempDirs, runCli, withDb, writeProject, type CliResult } from './helpers.js';

afterEach(killAll);
afterAll(removeTempDirs);

type Engine = 'duckdb' | 'postgres';

function projectFiles(engine: Engine, prod: string, ci: string): Record<string, string> {
  const target = (schema: string) => (engine === 'duckdb' ? `{ type: duckdb, path: target/dev.duckdb, schema: ${schema}, threads: 2 }` : `{ type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 2 }`);
  return {
    'etl.yml': `name: slim\nversion: 1\ntarget: prod\ntargets:\n  prod: ${target(prod)}\n  ci: ${target(ci)}\n`,
    'seeds/raw_orders.csv': 'order_id,amount\n1,10\n2,20\n3,30\n',
    'models/orders.sql': '{{config materialized="table"}}\nselect order_id, amount from {{ref "raw_orders"}}\n',
    'models/order_amounts.sql': '{{config materialized="ephemeral"}}\nselect order_id, amount from {{ref "orders"}}\n',
    'models/revenue.sql': '{{config materialized="table"}}\nselect sum(amount) as total from {{ref "order_amounts"}}\n',
    'models/schema.yml': 'models:\n  - name: revenue\n    columns:\n      - name: total\n        tests: [not_null]\n',
  };
}

const ok = (r: CliResult) => {
  expect(r.code, r.output).toBe(0);
  return r;
};

interface EngineContext {
  prod: string;
  ci: string;
  rows(sql: string): Promise<Array<Record<string, unknown>>>;
  relations(schema: string): Promise<string[]>;
}

/** Runs the scenario on one engine; `context` reads the project's target (its folder given). */
function scenario(engine: Engine, schemas: { prod: string; ci: string }, context: (dir: string) => EngineContext) {
  let dir: string;
  let ctx: EngineContext = { ...schemas, rows: async () => [], relations: async () => [] };

  beforeAll(async () => {
    dir = writeProject(projectFiles(engine, schemas.prod, schemas.ci));
    ctx = context(dir);
    ok(await runCli(['build'], { cwd: dir }));
    cpSync(path.join(dir, 'target'), path.join(dir, 'prod-target'), { recursive: true });
    // Production has data the CI target never loads: a deferred read shows it.
    if (engine === 'duckdb') {
      await withDb(dbPathOf(dir), (db) => db.rows(`insert into "${ctx.prod}".orders values (4, 1000)`), { readOnly: false });
    } else {
      await ctx.rows(`insert into "${ctx.prod}".orders values (4, 1000)`);
    }
    // The change under review: revenue counts orders too.
    writeFileSync(path.join(dir, 'models/revenue.sql'), '{{config materialized="table"}}\nselect sum(amount) as total, count(*) as n from {{ref "order_amounts"}}\n');
  });

  it('builds only what changed, reading production\'s upstream through the ephemeral model', async () => {
    const r = ok(await runCli(['build', '--target', 'ci', '-s', 'state:modified+', '--defer', '--state', 'prod-target'], { cwd: dir }));
    expect(r.output).toMatch(/deferred to --state prod-target: orders -> "[^"]+"\."orders"/);
    // revenue and its test ran; nothing upstream was built in the CI schema.
    const results = readJson(dir, 'target/run_results.json').results as Array<{ unique_id: string; status: string; compiled_code: string }>;
    expect(results.map((x) => [x.unique_id.replace(/\.[0-9a-f]{10}$/, ''), x.status]).sort()).toEqual([['model.slim.revenue', 'success'], ['test.slim.not_null_revenue_total', 'pass']]);
    expect(results.find((x) => x.unique_id === 'model.slim.revenue')!.compiled_code).toContain(`"${ctx.prod}"."orders"`);
    expect(await ctx.relations(ctx.ci)).toEqual(['revenue']);
    expect(await ctx.rows(`select total, n from "${ctx.ci}".revenue`)).toEqual([{ total: 1060, n: 4 }]);
    // manifest.json keeps the project's own relations (the compile cache serves later runs).
    const manifest = readJson(dir, 'target/manifest.json');
    expect(manifest.nodes['model.slim.revenue'].compiled_code).toContain(`"${ctx.ci}"."orders"`);
  });

  it('without --defer the same selection fails: the CI target has no upstream', async () => {
    const r = await runCli(['build', '--target', 'ci', '-s', 'state:modified+', '--state', 'prod-target', '--no-check'], { cwd: dir });
    expect(r.code, r.output).toBe(1);
  });

  it('--defer reads the CI target\'s own upstream when it has one; --favor-state reads production\'s anyway', async () => {
    ok(await runCli(['build', '--target', 'ci', '-s', 'raw_orders', 'orders'], { cwd: dir }));
    ok(await runCli(['build', '--target', 'ci', '-s', 'revenue', '--defer', '--state', 'prod-target'], { cwd: dir }));
    expect(await ctx.rows(`select total, n from "${ctx.ci}".revenue`)).toEqual([{ total: 60, n: 3 }]);
    ok(await runCli(['build', '--target', 'ci', '-s', 'revenue', '--defer', '--favor-state', '--state', 'prod-target'], { cwd: dir }));
    expect(await ctx.rows(`select total, n from "${ctx.ci}".revenue`)).toEqual([{ total: 1060, n: 4 }]);
  });

  it('etl docs generate writes catalog.json of the target: relations, engine types, positions, the database', async () => {
    ok(await runCli(['docs', 'generate', '--target', 'ci'], { cwd: dir }));
    const catalog = readJson(dir, 'target/catalog.json');
    const database = engine === 'duckdb' ? 'dev' : new URL(PG_URL).pathname.slice(1);
    expect(Object.keys(catalog.nodes).sort()).toEqual(['model.slim.orders', 'model.slim.revenue', 'seed.slim.raw_orders']);
    expect(catalog.nodes['model.slim.orders'].metadata).toMatchObject({ type: 'BASE TABLE', schema: ctx.ci, name: 'orders', database });
    expect(Object.values(catalog.nodes['model.slim.revenue'].columns).map((c: any) => [c.name, c.index])).toEqual([['total', 1], ['n', 2]]);
    expect(catalog.nodes['model.slim.revenue'].columns.n.type).toMatch(engine === 'duckdb' ? /^BIGINT$/ : /^bigint$/);
    const manifest = readJson(dir, 'target/manifest.json');
    expect(manifest.nodes['model.slim.orders']).toMatchObject({ database, relation_name: `"${database}"."${ctx.ci}"."orders"` });
  });

  it('bad --state input is a clear error, exit 2, nothing run', async () => {
    const noState = await runCli(['build', '--target', 'ci', '--defer'], { cwd: dir });
    expect(noState.code).toBe(2);
    expect(noState.output).toMatch(/--defer needs --state DIR/);
    mkdirSync(path.join(dir, 'empty'), { recursive: true });
    const empty = await runCli(['build', '--target', 'ci', '--defer', '--state', 'empty'], { cwd: dir });
    expect(empty.code).toBe(2);
    expect(empty.output).toMatch(/--state empty: no manifest\.json there/);
    const other = writeProject({ ...projectFiles(engine, ctx.prod, ctx.ci), 'etl.yml': projectFiles(engine, ctx.prod, ctx.ci)['etl.yml']!.replace('name: slim', 'name: other') });
    ok(await runCli(['compile'], { cwd: other }));
    const foreign = await runCli(['build', '--target', 'ci', '--defer', '--state', path.join(other, 'target')], { cwd: dir });
    expect(foreign.code).toBe(2);
    expect(foreign.output).toMatch(/is of project "other", not "slim"/);
    const old = path.join(dir, 'old-state');
    mkdirSync(old, { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(dir, 'prod-target/manifest.json'), 'utf8'));
    writeFileSync(path.join(old, 'manifest.json'), JSON.stringify({ ...manifest, metadata: { dbt_schema_version: manifest.metadata.dbt_schema_version, etl_version: '0.1.0', project_name: 'slim' } }));
    const older = await runCli(['build', '--target', 'ci', '--defer', '--state', 'old-state'], { cwd: dir });
    expect(older.code).toBe(2);
    expect(older.output).toMatch(/written by etl 0\.1\.0 in manifest layout 1; this etl reads layout 2 \(etl 0\.2 or later\)/);
  });
}

describe('duckdb: one database file, schemas prod and ci', () => {
  scenario('duckdb', { prod: 'prod', ci: 'ci' }, (dir) => ({
    prod: 'prod',
    ci: 'ci',
    rows: (sql) => withDb(dbPathOf(dir), (db) => db.rows(sql)),
    relations: async (schema) => (await withDb(dbPathOf(dir), (db) => db.rows(`select table_name from information_schema.tables where table_schema = '${schema}' order by 1`))).map((r) => String(r.table_name)),
  }));
});

describe('postgres: one database, a schema per target', () => {
  const schemas = { prod: newPgSchema(), ci: newPgSchema() };
  let admin: pg.Client;
  beforeAll(async () => {
    admin = await pgConnect();
  });
  afterAll(async () => {
    if (!admin) return; // Postgres was not reachable: beforeAll said so
    for (const s of Object.values(schemas)) await dropPgSchema(admin, s);
    await admin.end();
  });
  scenario('postgres', schemas, () => ({
    ...schemas,
    // Numbers come back as text from pgConnect's client; cast for comparison.
    rows: async (sql) => (await admin.query(sql)).rows.map((r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : Number(v)]))),
    relations: async (schema) => (await admin.query(`select table_name::text from information_schema.tables where table_schema = $1 order by 1`, [schema])).rows.map((r: { table_name: string }) => r.table_name),
  }));
});
