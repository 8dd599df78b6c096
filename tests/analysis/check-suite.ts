// What issue #16 says a user must be able to do, as one suite run on each
// target (tests/analysis-check*.test.ts call it): the corpus of broken
// projects stops `etl build` before anything is written; bound types equal the
// types of every relation project-template builds; `etl ls --output json`
// shows bound columns before the first build; `state:modified` says which
// changes break their children; `etl compile --check` names the incremental
// models whose columns change next run; a source missing from the target is
// an error at its yml line (a warning with --no-check-sources); `--no-check`
// skips the check; a model that cannot be analysed is listed with the reason.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build, compile } from '../../core/api.js';
import { ProjectError } from '../../core/errors.js';
import { dialectFor } from '../../adapters/dialect.js';
import { pathToFileURL } from 'node:url';
import { killAll, runCli } from '../e2e/helpers.js';
import { launchChromium } from '../e2e/browser.js';
import { BROKEN_PROJECTS, expectDiagnostics, removeBrokenProjects } from './broken-projects.js';
import type { CheckTarget } from './check-targets.js';

const edit = (dir: string, file: string, from: string, to: string) => {
  const text = readFileSync(path.join(dir, file), 'utf8');
  if (!text.includes(from)) throw new Error(`${file} has no ${from}`);
  writeFileSync(path.join(dir, file), text.replace(from, to));
};

export function describeCheckOn(name: CheckTarget['name'], open: () => CheckTarget | Promise<CheckTarget>): void {
  let target: CheckTarget;
  beforeAll(async () => {
    target = await open();
  });
  afterAll(async () => {
    await killAll();
    removeBrokenProjects();
    await target?.close();
  });

  describe(`${name} target: etl build stops at static analysis errors, writing nothing`, () => {
    const cases = BROKEN_PROJECTS.filter((c) => !c.only || c.only === (name === 'postgres' ? 'postgres' : 'duckdb'));
    it('has a corpus of at least 25 broken projects', () => {
      expect(cases.length).toBeGreaterThanOrEqual(25);
    });
    for (const c of cases) {
      it(c.name, async () => {
        const p = target.project(c);
        const err = await build({ projectDir: p.dir }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, 'build should fail with a project error').toBeInstanceOf(ProjectError);
        expectDiagnostics(c, (err as ProjectError).diagnostics);
        expect(await p.untouched(), 'the target was written').toBe(true);
        for (const artifact of ['manifest.json', 'run_results.json']) expect(existsSync(path.join(p.dir, 'target', artifact)), artifact).toBe(false);
      });
    }
  });

  describe(`${name} target: bound schemas`, () => {
    it("equal the types of every relation project-template builds, and fill the manifest's columns", async () => {
      const p = target.project({ edits: {} });
      expect((await build({ projectDir: p.dir })).exitCode).toBe(0);
      const before = await p.fingerprint();
      expect(before).not.toBe('');
      const { check, manifest } = await compile({ projectDir: p.dir, check: true, noCache: true });
      // The check read the target's catalog and wrote nothing to it.
      expect(await p.fingerprint()).toBe(before);
      const built = Object.values(manifest.nodes).filter((n) => n.resource_type === 'model' || n.resource_type === 'seed');
      expect(built.map((n) => n.name).sort()).toEqual(['customers', 'orders', 'raw_customers', 'raw_orders', 'raw_payments', 'stg_customers', 'stg_orders', 'stg_payments']);
      for (const n of built) {
        const columns = await p.builtColumns(n.schema, n.alias);
        expect(columns.length, n.name).toBeGreaterThan(0);
        expect(check!.columns.get(n.unique_id)!.map((c) => `${c.name} ${c.type}`), n.name).toEqual(columns);
        expect(Object.values(n.columns).map((c) => `${c.name} ${c.data_type}`), n.name).toEqual(columns);
      }
      // Nothing needs binding the second time: the bound schemas come from target/.etl.
      const again = await compile({ projectDir: p.dir, check: true, noCache: true });
      expect(again.check!.stats).toMatchObject({ models: 5, bound: 0, cached: 5 });
    });
    it("a snapshot's bound columns (its query's and etl's own) equal the built snapshot's, and a model reading them binds", async () => {
      const p = target.project({
        edits: {
          'snapshots/orders_snapshot.sql': '{{config unique_key="order_id" strategy="check" check_cols=(list "status") hard_deletes="new_record"}}\nselect * from {{ref "stg_orders"}}\n',
          'models/marts/current_orders.sql': 'select order_id, status, etl_valid_from, etl_is_deleted\nfrom {{ref "orders_snapshot"}}\nwhere etl_valid_to is null\n',
        },
      });
      const first = await compile({ projectDir: p.dir, check: true });
      expect(first.check!.errors).toEqual([]);
      expect(first.check!.columns.get('snapshot.shop.orders_snapshot')!.map((c) => c.name)).toEqual(['order_id', 'customer_id', 'order_date', 'status', 'etl_scd_id', 'etl_updated_at', 'etl_valid_from', 'etl_valid_to', 'etl_is_deleted']);
      const built = await runCli(['build', '-s', '+current_orders', '--exclude', 'resource_type:test'], { cwd: p.dir });
      expect(built.code, built.output).toBe(0);
      const { check } = await compile({ projectDir: p.dir, check: true, noCache: true });
      for (const [id, relation] of [['snapshot.shop.orders_snapshot', 'orders_snapshot'], ['model.shop.current_orders', 'current_orders']] as const) {
        expect(check!.columns.get(id)!.map((c) => `${c.name} ${c.type}`), id).toEqual(await p.builtColumns(p.schema, relation));
      }
    });
  });

  describe(`${name} target: what the bound schemas tell before anything is built`, () => {
    it("etl compile --check writes the bound columns and types into the manifest's columns, and etl ls --output json lists them", async () => {
      const p = target.project({ edits: {} });
      const t = target.type;
      const expected = [`order_id ${t('bigint')}`, `customer_id ${t('bigint')}`, `order_date ${t('date')}`, `status ${t('varchar')}`];
      const checked = await runCli(['compile', '--check'], { cwd: p.dir });
      expect(checked.code, checked.output).toBe(0);
      const manifest = JSON.parse(readFileSync(path.join(p.dir, 'target/manifest.json'), 'utf8')) as { nodes: Record<string, { resource_type: string; columns: Record<string, { name: string; data_type: string | null }> }> };
      const columnsOf = (id: string) => Object.values(manifest.nodes[id]!.columns).map((c) => `${c.name} ${c.data_type}`);
      expect(columnsOf('seed.shop.raw_orders')).toEqual(expected);
      expect(columnsOf('model.shop.stg_orders')).toEqual(expected);
      // Every column of every model, typed.
      for (const [id, n] of Object.entries(manifest.nodes).filter(([, n]) => n.resource_type === 'model')) {
        expect(Object.keys(n.columns).length, id).toBeGreaterThan(0);
        expect(Object.values(n.columns).filter((c) => !c.data_type), id).toEqual([]);
      }
      expect(Object.keys(manifest.nodes['model.shop.orders']!.columns)).toEqual(['order_id', 'customer_id', 'order_date', 'status', 'credit_card_amount', 'bank_transfer_amount', 'gift_card_amount', 'paypal_amount', 'amount']);
      // etl ls binds too (from the cache in target/.etl here), with or without a compile --check before it.
      for (const dir of [p.dir, target.project({ name: 'ls-first', edits: {} }).dir]) {
        const ls = await runCli(['ls', '-s', 'stg_orders', 'raw_orders', '--output', 'json'], { cwd: dir });
        expect(ls.code, ls.output).toBe(0);
        const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; columns: Array<{ name: string; data_type: string | null }> });
        const listed = rows.filter((r) => r.name === 'raw_orders' || r.name === 'stg_orders');
        expect(Object.fromEntries(listed.map((r) => [r.name, r.columns.map((c) => `${c.name} ${c.data_type}`)]))).toEqual({ raw_orders: expected, stg_orders: expected });
      }
      expect(await p.untouched(), 'the target was written').toBe(true);
    });

    it('etl docs generate after etl compile --check shows every column of a model with its bound type, in a real browser', async () => {
      const p = target.project({ edits: {} });
      const checked = await runCli(['compile', '--check'], { cwd: p.dir });
      expect(checked.code, checked.output).toBe(0);
      const docs = await runCli(['docs', 'generate'], { cwd: p.dir });
      expect(docs.code, docs.output).toBe(0);
      expect(await p.untouched(), 'the target was written').toBe(true);
      const manifest = JSON.parse(readFileSync(path.join(p.dir, 'target/manifest.json'), 'utf8')) as { nodes: Record<string, { columns: Record<string, { name: string; data_type: string }> }> };
      const bound = Object.values(manifest.nodes['model.shop.orders']!.columns).map((c) => `${c.name} ${c.data_type}`);
      expect(bound).toContain(`order_id ${target.type('bigint')}`);
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        await page.goto(`${pathToFileURL(path.join(p.dir, 'target/docs/index.html')).href}#/n/model.shop.orders`);
        await page.locator('main h1', { hasText: /^\s*orders\s*$/ }).first().waitFor();
        const rows = page.locator('table.columns tbody tr');
        expect(await rows.count()).toBe(9);
        const shown: string[] = [];
        for (const row of await rows.all()) shown.push(`${await row.getAttribute('data-column')} ${(await row.locator('td.type').textContent())?.trim()}`);
        expect(shown).toEqual(bound);
      } finally {
        await browser.close();
      }
    });

    it('etl ls -s state:modified --state prod --output json says which changes break their children', async () => {
      const p = target.project({ edits: {} });
      const built = await runCli(['build'], { cwd: p.dir });
      expect(built.code, built.output).toBe(0);
      const prod = path.join(p.dir, 'prod');
      mkdirSync(prod);
      copyFileSync(path.join(p.dir, 'target/manifest.json'), path.join(prod, 'manifest.json'));
      // stg_orders: another filter, the same columns. stg_payments: a new column.
      edit(p.dir, 'models/staging/stg_orders.sql', ">= cast('{{var \"start_date\"}}' as date)", ">= cast('{{var \"start_date\"}}' as date) and status <> 'deleted'");
      edit(p.dir, 'models/staging/stg_payments.sql', '    payment_method,', '    payment_method,\n    upper(payment_method) as method_code,');
      const ls = await runCli(['ls', '-s', 'state:modified', '--state', 'prod', '--output', 'json', '--resource-type', 'model'], { cwd: p.dir });
      expect(ls.code, ls.output).toBe(0);
      const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; breaking?: boolean });
      expect(rows.map((r) => [r.name, r.breaking]).sort()).toEqual([
        ['stg_orders', false],
        ['stg_payments', true],
      ]);
    });

    it('etl compile --check lists the incremental models whose columns change on their next run', async () => {
      const p = target.project({ edits: { 'models/marts/orders.sql': (t) => t.replace('{{config materialized="table"}}', '{{config materialized="incremental" unique_key="order_id" on_schema_change="append_new_columns"}}') } });
      const first = await runCli(['build'], { cwd: p.dir });
      expect(first.code, first.output).toBe(0);
      const unchanged = await runCli(['compile', '--check'], { cwd: p.dir });
      expect(unchanged.code, unchanged.output).toBe(0);
      expect(unchanged.stdout).not.toContain('will change columns');
      edit(p.dir, 'models/marts/orders.sql', '    o.status,', '    o.status,\n    upper(o.status) as status_code,');
      const r = await runCli(['compile', '--check'], { cwd: p.dir });
      expect(r.code, r.output).toBe(0);
      expect(r.stdout).toContain('orders (incremental) will change columns on its next run: +status_code (on_schema_change: append_new_columns)');
      // And it does: the next build adds the column.
      expect((await runCli(['build', '-s', 'orders'], { cwd: p.dir })).code).toBe(0);
      expect((await p.builtColumns(p.schema, 'orders')).map((c) => c.split(' ')[0]).at(-1)).toBe('status_code');
    });
  });

  describe(`${name} target: inputs the check cannot take from the project`, () => {
    it('a source missing from the target is an error at its yml line, a warning with --no-check-sources; one in the catalog is bound', async () => {
      const p = target.project({ edits: {} });
      expect((await runCli(['build'], { cwd: p.dir })).code).toBe(0);
      // raw_orders is in the catalog; events is not; clicks is not either, but declares its columns' types.
      writeFileSync(
        path.join(p.dir, 'models/sources.yml'),
        `sources:\n  - name: raw\n    schema: ${p.schema}\n    tables:\n      - name: raw_orders\n      - name: events\n      - name: clicks\n        columns:\n          - { name: click_id, data_type: bigint }\n          - { name: url, data_type: varchar }\n`,
      );
      writeFileSync(path.join(p.dir, 'models/from_clicks.sql'), 'select click_id, url from {{source "raw" "clicks"}}\n');
      writeFileSync(path.join(p.dir, 'models/from_source.sql'), 'select order_id, status from {{source "raw" "raw_orders"}}\n');
      writeFileSync(path.join(p.dir, 'models/from_events.sql'), 'select * from {{source "raw" "events"}}\n');
      const r = await runCli(['compile', '--check'], { cwd: p.dir });
      expect(r.code, r.output).toBe(2);
      expect(r.stderr).toContain(`models/sources.yml:6:9: source raw.events ("${p.schema}"."events") is not in the target's catalog`);
      const lenient = await runCli(['compile', '--check', '--no-check-sources'], { cwd: p.dir });
      expect(lenient.code, lenient.output).toBe(0);
      expect(lenient.stderr).toMatch(/warning: models\/sources\.yml:6: source raw\.events .* models reading it are unchecked/);
      expect(lenient.stdout).toMatch(/unchecked from_events: upstream raw\.events cannot be checked/);
      const { check } = await compile({ projectDir: p.dir, check: true, noCheckSources: true });
      expect(check!.columns.get('model.shop.from_source')).toEqual([
        { name: 'order_id', type: target.type('bigint') },
        { name: 'status', type: target.type('varchar') },
      ]);
      const canonical = dialectFor(name).canonicalType;
      expect(check!.columns.get('model.shop.from_clicks')!.map((c) => `${c.name} ${canonical(c.type)}`)).toEqual(['click_id bigint', 'url varchar']);
    });

    it('etl build --no-check skips the check: the run reaches the engine, which fails the model (exit 1)', async () => {
      const c = BROKEN_PROJECTS.find((x) => x.name === 'misspelled column')!;
      const p = target.project(c);
      const checked = await runCli(['build'], { cwd: p.dir });
      expect(checked.code, checked.output).toBe(2);
      expect(checked.stderr).toContain('models/staging/stg_orders.sql:4:5: column "customr_id" not found in raw_orders');
      // etl run checks first too.
      const run = await runCli(['run'], { cwd: p.dir });
      expect(run.code, run.output).toBe(2);
      expect(run.stderr).toContain('models/staging/stg_orders.sql:4:5: column "customr_id" not found in raw_orders');
      expect(await p.untouched()).toBe(true);
      const r = await runCli(['build', '--no-check'], { cwd: p.dir });
      expect(r.code, r.output).toBe(1);
      expect(r.stdout).toMatch(/Running \d+ nodes/);
      expect(r.output).toMatch(/customr_id/);
      const results = JSON.parse(readFileSync(path.join(p.dir, 'target/run_results.json'), 'utf8')) as { results: Array<{ unique_id: string; status: string }> };
      const status = Object.fromEntries(results.results.map((x) => [x.unique_id, x.status]));
      expect(status).toMatchObject({ 'seed.shop.raw_orders': 'success', 'model.shop.stg_orders': 'error', 'model.shop.orders': 'skipped' });
    });

    if (name !== 'postgres') {
      // (On Postgres the server binds such a model against its own catalog.)
      it('a model reading a table made outside the project is listed as unchecked, with the reason, not failed', async () => {
        const p = target.project({ edits: { 'models/outside.sql': 'select id, note from main.loaded_by_another_tool\n', 'models/after_outside.sql': 'select note from {{ref "outside"}}\n' } });
        const { check } = await compile({ projectDir: p.dir, check: true });
        expect(check!.errors).toEqual([]);
        expect(check!.unchecked).toEqual([
          { unique_id: 'model.shop.outside', reason: 'reads loaded_by_another_tool, which is not a ref or source of the project' },
          { unique_id: 'model.shop.after_outside', reason: 'upstream outside cannot be checked' },
        ]);
        expect(check!.columns.get('model.shop.stg_orders')).toHaveLength(4);
        const r = await runCli(['compile', '--check'], { cwd: p.dir });
        expect(r.code, r.output).toBe(0);
        expect(r.stdout).toContain('unchecked outside: reads loaded_by_another_tool, which is not a ref or source of the project');
      });
    }
  });
}
