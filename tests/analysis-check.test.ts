// Static analysis (core/analysis/check.ts) on DuckDB: the corpus of broken
// projects each fails `etl build` before anything is written, with the
// expected file:line and message; project-template's bound types equal the
// types of the relations a build makes.

import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { build, compile } from '../core/api.js';
import { ProjectError } from '../core/errors.js';
import { BROKEN_PROJECTS, brokenProject, expectDiagnostics, removeBrokenProjects } from './analysis/broken-projects.js';

afterAll(removeBrokenProjects);

describe('etl build stops at static analysis errors, writing nothing', () => {
  const cases = BROKEN_PROJECTS.filter((c) => c.only !== 'postgres');
  it('has a corpus of at least 25 broken projects', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });
  for (const c of cases) {
    it(c.name, async () => {
      const dir = brokenProject(c);
      const err = await build({ projectDir: dir }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, 'build should fail with a project error').toBeInstanceOf(ProjectError);
      expectDiagnostics(c, (err as ProjectError).diagnostics);
      // Nothing written: no database, no artifacts.
      expect(existsSync(path.join(dir, 'target/dev.duckdb'))).toBe(false);
      expect(existsSync(path.join(dir, 'target/manifest.json'))).toBe(false);
      expect(existsSync(path.join(dir, 'target/run_results.json'))).toBe(false);
    });
  }
});

describe('Delta target: the check binds as on DuckDB', () => {
  const delta = (text: string) => text.replace(/dev: \{[^}]*\}/, 'dev: { type: delta, path: lake, schema: main, threads: 2 }');
  for (const name of ['misspelled column', 'column removed upstream', 'contract type mismatch', 'error two hops downstream of a changed seed']) {
    it(`${name}: etl build fails before the lake is made`, async () => {
      const c = BROKEN_PROJECTS.find((x) => x.name === name)!;
      const dir = brokenProject(c, delta);
      const err = await build({ projectDir: dir }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, 'build should fail with a project error').toBeInstanceOf(ProjectError);
      expectDiagnostics(c, (err as ProjectError).diagnostics);
      expect(existsSync(path.join(dir, 'lake'))).toBe(false);
      expect(existsSync(path.join(dir, 'target/manifest.json'))).toBe(false);
    });
  }
});

describe('bound schemas', () => {
  it("equal the types of project-template's built relations, and fill the manifest's columns", async () => {
    const dir = brokenProject({ name: 'template', edits: {}, errors: [] });
    const summary = await build({ projectDir: dir });
    expect(summary.exitCode).toBe(0);
    const { check, manifest } = await compile({ projectDir: dir, check: true, noCache: true });
    const instance = await DuckDBInstance.create(path.join(dir, 'target/dev.duckdb'), { access_mode: 'READ_ONLY' });
    const conn = await instance.connect();
    try {
      const models = Object.values(manifest.nodes).filter((n) => n.resource_type === 'model' || n.resource_type === 'seed');
      expect(models.length).toBe(8);
      for (const n of models) {
        const r = await conn.runAndReadAll(`select column_name, data_type from duckdb_columns() where schema_name = $1 and table_name = $2 order by column_index`, [n.schema, n.alias]);
        const built = r.getRowsJS().map((row) => `${row[0]} ${row[1]}`);
        expect(check!.columns.get(n.unique_id)!.map((c) => `${c.name} ${c.type}`), n.name).toEqual(built);
        expect(Object.values(n.columns).map((c) => `${c.name} ${c.data_type}`), n.name).toEqual(built);
      }
      // Nothing needed binding the second time: the bound schemas came from target/.etl.
      const again = await compile({ projectDir: dir, check: true, noCache: true });
      expect(again.check!.stats).toMatchObject({ models: 5, bound: 0, cached: 5 });
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  });

  it('accept a union that widens within a type family (INTEGER and BIGINT, DATE and TIMESTAMP, an untyped NULL), with the widened types', async () => {
    const dir = brokenProject({ name: 'template', edits: {}, errors: [] });
    writeFileSync(
      path.join(dir, 'models/staging/stg_orders.sql'),
      readFileSync(path.join(dir, 'models/staging/stg_orders.sql'), 'utf8').trimEnd() +
        "\nunion all\nselect cast(order_id as bigint), null, cast(order_date as timestamp), 'x' from {{ref \"raw_orders\"}}\n",
    );
    const { check } = await compile({ projectDir: dir, check: true });
    expect(check!.errors).toEqual([]);
    expect(check!.columns.get('model.shop.stg_orders')!.map((c) => `${c.name} ${c.type}`)).toEqual(['order_id BIGINT', 'customer_id BIGINT', 'order_date TIMESTAMP', 'status VARCHAR']);
  });

  it('re-binds a changed model and its descendants only', async () => {
    const dir = brokenProject({ name: 'template', edits: {}, errors: [] });
    await compile({ projectDir: dir, check: true });
    writeFileSync(path.join(dir, 'models/staging/stg_orders.sql'), readFileSync(path.join(dir, 'models/staging/stg_orders.sql'), 'utf8').replace('    status\n', '    status,\n    1 as one\n'));
    const { check } = await compile({ projectDir: dir, check: true });
    expect(check!.stats).toMatchObject({ models: 5, bound: 3, cached: 2 });
    expect(check!.columns.get('model.shop.stg_orders')!.at(-1)).toEqual({ name: 'one', type: 'INTEGER' });
  });

  it('keep each distinct column list once in target/.etl/bound-schemas.json, and ignore a file of the earlier layout', async () => {
    const dir = brokenProject({ name: 'template', edits: {}, errors: [] });
    await compile({ projectDir: dir, check: true });
    const file = path.join(dir, 'target/.etl/bound-schemas.json');
    const written = JSON.parse(readFileSync(file, 'utf8')) as { etl_version: string; target: string; schemas: Array<Array<{ name: string; type: string }>>; entries: Record<string, { key: string; schema: number }>; catalog: object };
    // stg_orders reads raw_orders and returns the same columns: one list for both.
    expect(written.entries['model.shop.stg_orders']!.schema).toBe(written.entries['seed.shop.raw_orders']!.schema);
    expect(written.schemas.length).toBe(new Set(written.schemas.map((c) => JSON.stringify(c))).size);
    // The layout before (columns in each entry): read as no cache at all, then rewritten.
    const entries = Object.fromEntries(Object.entries(written.entries).map(([id, e]) => [id, { key: e.key, columns: written.schemas[e.schema] }]));
    writeFileSync(file, JSON.stringify({ etl_version: written.etl_version, target: written.target, entries, catalog: written.catalog }));
    const { check } = await compile({ projectDir: dir, check: true });
    expect(check!.stats).toMatchObject({ models: 5, bound: 5, cached: 0 });
    expect(check!.columns.get('model.shop.stg_orders')).toHaveLength(4);
    expect((await compile({ projectDir: dir, check: true })).check!.stats).toMatchObject({ bound: 0, cached: 5 });
  });
});

describe('etl compile --check (the command)', () => {
  it('prints every error as file:line:col with a hint, exits 2, and writes nothing', async () => {
    const { runCli } = await import('./e2e/helpers.js');
    const c = BROKEN_PROJECTS.find((x) => x.name === 'two broken models in one run')!;
    const dir = brokenProject(c);
    const r = await runCli(['compile', '--check'], { cwd: dir });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toContain('2 errors in the project:');
    expect(r.stderr).toContain('models/staging/stg_customers.sql:8:5: column "contry" not found in raw_customers (did you mean "country"?)');
    expect(r.stderr).toMatch(/left unchecked downstream: (orders, customers|customers, orders)/);
    expect(existsSync(path.join(dir, 'target/manifest.json'))).toBe(false);
    const ok = await runCli(['compile', '--check'], { cwd: brokenProject({ name: 'ok', edits: {}, errors: [] }) });
    expect(ok.code, ok.output).toBe(0);
    expect(ok.stdout).toMatch(/Checked 5 models in [\d.]+s: 5 bound, 0 unchanged \(cached\), 0 unchecked/);
  });
});

describe('what the bound schemas tell about the next run', () => {
  it('etl ls --output json shows every model\'s bound columns and types before the first build', async () => {
    const { runCli } = await import('./e2e/helpers.js');
    const dir = brokenProject({ name: 'ls', edits: {}, errors: [] });
    const ls = await runCli(['ls', '-s', 'stg_orders', 'raw_orders', '--output', 'json'], { cwd: dir });
    expect(ls.code, ls.output).toBe(0);
    const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; columns: Array<{ name: string; data_type: string | null }> });
    const listed = rows.filter((r) => r.name === 'raw_orders' || r.name === 'stg_orders');
    expect(Object.fromEntries(listed.map((r) => [r.name, r.columns.map((c) => `${c.name} ${c.data_type}`)]))).toEqual({
      raw_orders: ['order_id BIGINT', 'customer_id BIGINT', 'order_date DATE', 'status VARCHAR'],
      stg_orders: ['order_id BIGINT', 'customer_id BIGINT', 'order_date DATE', 'status VARCHAR'],
    });
    expect(existsSync(path.join(dir, 'target/dev.duckdb'))).toBe(false);
  });

  it('etl ls -s state:modified --state prod --output json says which changes break their children', async () => {
    const { runCli } = await import('./e2e/helpers.js');
    const dir = brokenProject({ name: 'state', edits: {}, errors: [] });
    const built = await runCli(['build'], { cwd: dir });
    expect(built.code, built.output).toBe(0);
    const prod = path.join(dir, 'prod');
    mkdirSync(prod);
    copyFileSync(path.join(dir, 'target/manifest.json'), path.join(prod, 'manifest.json'));
    // stg_orders: another filter, the same columns. stg_payments: a new column.
    const edit = (file: string, from: string, to: string) => writeFileSync(path.join(dir, file), readFileSync(path.join(dir, file), 'utf8').replace(from, to));
    edit('models/staging/stg_orders.sql', ">= cast('{{var \"start_date\"}}' as date)", ">= cast('{{var \"start_date\"}}' as date) and status <> 'deleted'");
    edit('models/staging/stg_payments.sql', '    payment_method,', '    payment_method,\n    upper(payment_method) as method_code,');
    const ls = await runCli(['ls', '-s', 'state:modified', '--state', 'prod', '--output', 'json', '--resource-type', 'model'], { cwd: dir });
    expect(ls.code, ls.output).toBe(0);
    const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; breaking?: boolean });
    expect(rows.map((r) => [r.name, r.breaking]).sort()).toEqual([
      ['stg_orders', false],
      ['stg_payments', true],
    ]);
  });

  it('etl compile --check lists the incremental models whose columns change on their next run', async () => {
    const { runCli } = await import('./e2e/helpers.js');
    const dir = brokenProject({ name: 'incremental', edits: { 'models/marts/orders.sql': (t) => t.replace('{{config materialized="table"}}', '{{config materialized="incremental" unique_key="order_id" on_schema_change="append_new_columns"}}') }, errors: [] });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    const file = path.join(dir, 'models/marts/orders.sql');
    writeFileSync(file, readFileSync(file, 'utf8').replace('    o.status,', '    o.status,\n    upper(o.status) as status_code,'));
    const r = await runCli(['compile', '--check'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).toContain('orders (incremental) will change columns on its next run: +status_code (on_schema_change: append_new_columns)');
  });
});

describe('inputs the check cannot take from the project', () => {
  it('a source missing from the target is an error at its yml line, a warning with --no-check-sources; one in the catalog is bound', async () => {
    const { runCli } = await import('./e2e/helpers.js');
    const dir = brokenProject({ name: 'sources', edits: {}, errors: [] });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    writeFileSync(path.join(dir, 'models/sources.yml'), 'sources:\n  - name: raw\n    schema: main\n    tables:\n      - name: raw_orders\n      - name: events\n');
    writeFileSync(path.join(dir, 'models/from_source.sql'), 'select order_id, status from {{source "raw" "raw_orders"}}\n');
    writeFileSync(path.join(dir, 'models/from_events.sql'), 'select * from {{source "raw" "events"}}\n');
    const r = await runCli(['compile', '--check'], { cwd: dir });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toContain('models/sources.yml:6:9: source raw.events ("main"."events") is not in the target\'s catalog');
    const lenient = await runCli(['compile', '--check', '--no-check-sources'], { cwd: dir });
    expect(lenient.code, lenient.output).toBe(0);
    expect(lenient.stderr).toMatch(/warning: models\/sources\.yml:6: source raw\.events .* models reading it are unchecked/);
    expect(lenient.stdout).toMatch(/unchecked from_events: upstream raw\.events cannot be checked/);
    const { check } = await compile({ projectDir: dir, check: true, noCheckSources: true });
    expect(check!.columns.get('model.shop.from_source')).toEqual([
      { name: 'order_id', type: 'BIGINT' },
      { name: 'status', type: 'VARCHAR' },
    ]);
  });

  it('a model reading a table made outside the project is listed as unchecked, with the reason, not failed', async () => {
    const dir = brokenProject({ name: 'outside', edits: { 'models/outside.sql': 'select id, note from main.loaded_by_another_tool\n', 'models/after_outside.sql': 'select note from {{ref "outside"}}\n' }, errors: [] });
    const { check } = await compile({ projectDir: dir, check: true });
    expect(check!.unchecked).toEqual([
      { unique_id: 'model.shop.outside', reason: 'reads loaded_by_another_tool, which is not a ref or source of the project' },
      { unique_id: 'model.shop.after_outside', reason: 'upstream outside cannot be checked' },
    ]);
    expect(check!.columns.get('model.shop.stg_orders')).toHaveLength(4);
  });
});
