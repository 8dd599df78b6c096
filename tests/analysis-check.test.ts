// Static analysis (core/analysis/check.ts) on a DuckDB target: the shared
// suite of issue #16 (tests/analysis/check-suite.ts: the corpus of broken
// projects, bound types equal to the built ones, ls/state/incremental
// predictions, sources, --no-check, unchecked models), and what is DuckDB's
// own: set operations DuckDB would cast silently, the bound-schema cache, the
// command's output.

import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { compile } from '../core/api.js';
import { BROKEN_PROJECTS, brokenProject, removeBrokenProjects } from './analysis/broken-projects.js';
import { describeCheckOn } from './analysis/check-suite.js';
import { duckdbTarget } from './analysis/check-targets.js';

afterAll(removeBrokenProjects);

describeCheckOn('duckdb', duckdbTarget);

describe('bound schemas', () => {
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

