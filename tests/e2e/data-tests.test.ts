// Data tests end to end: the built CLI spawned on throw-away projects —
// generic, custom generic, singular and unit tests, severities and
// thresholds, store_failures, where/limit, selection, JUnit, contracts,
// quarantine, compile errors and source freshness — checked against what
// lands in run_results.json, the JUnit file, stdout and the target's tables.
// Every block runs on DuckDB and on Delta (tests/e2e/targets.ts) with the
// same assertions.

import path from 'node:path';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  copyTemplate,
  killAll,
  read,
  readJson,
  removeTempDirs,
  runCli,
  writeFiles,
  writeProject,
  type CliResult,
  readRunResults,
} from './helpers.js';
import { storeOf, targetYml, TARGETS, useTarget, withStore, type TargetName } from './targets.js';

afterEach(killAll);

type Result = {
  unique_id: string;
  status: string;
  failures: number | null;
  message: string;
  compiled_path?: string;
  rows_affected: number | null;
  quarantined?: number;
  failing_rows_sample?: { columns: string[]; rows: unknown[][] };
};
type Manifest = { nodes: Record<string, { resource_type: string; name: string; model?: string; attached_node?: string | null; test_metadata?: { name: string }; depends_on: { nodes: string[] } }> };

/** A generic test's unique_id without dbt's hash suffix (test.<project>.<name>), for readable expectations. */
const withoutHash = (id: string) => id.replace(/\.[0-9a-f]{10}$/, '');

function runResults(dir: string): { metadata: { invocation_id: string }; results: Result[] } {
  const rr = readRunResults(dir);
  for (const r of rr.results) r.unique_id = withoutHash(r.unique_id);
  return rr;
}

function byId(dir: string): Record<string, Result> {
  return Object.fromEntries(runResults(dir).results.map((r) => [r.unique_id, r]));
}

function statuses(dir: string): Record<string, string> {
  return Object.fromEntries(runResults(dir).results.map((r) => [r.unique_id, r.status]));
}

function edit(dir: string, rel: string, from: string | RegExp, to: string): void {
  const file = path.join(dir, rel);
  const text = readFileSync(file, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit of ${rel} changed nothing`);
  writeFileSync(file, next);
}

/** 1-based line of the first line of `rel` containing `needle`. */
function lineOf(dir: string, rel: string, needle: string): number {
  const i = read(dir, rel).split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${needle} not in ${rel}`);
  return i + 1;
}

function ok(r: CliResult): CliResult {
  expect(r.code, r.output).toBe(0);
  return r;
}

/** Every table name in the database file, as schema.name. */
async function allTables(target: TargetName, dir: string): Promise<string[]> {
  return withStore(target, storeOf(target, dir), async (db) =>
    (await db.rows('select table_schema, table_name from information_schema.tables order by all')).map((r) => `${r.table_schema}.${r.table_name}`),
  );
}

/**
 * A rough XML well-formedness check: tags balance, attributes are quoted,
 * text holds no raw `<` or bare `&`. Returns the elements seen, in order.
 */
function parseXmlRoughly(xml: string): Array<{ name: string; attrs: Record<string, string>; text: string }> {
  expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
  const body = xml.slice(xml.indexOf('?>') + 2);
  const stack: Array<{ name: string; attrs: Record<string, string>; text: string }> = [];
  const all: typeof stack = [];
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const text = body.slice(last, m.index);
    expect(text, `text before <${m[1]}${m[2]}>`).not.toMatch(/<|&(?!(lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);)/i);
    if (stack.length) stack[stack.length - 1]!.text += text;
    else expect(text.trim(), 'text outside the root element').toBe('');
    last = tag.lastIndex;
    const [, closing, name, attrText, selfClosing] = m;
    if (closing) {
      const open = stack.pop();
      expect(open?.name, `closing </${name}>`).toBe(name);
      continue;
    }
    const attrs = Object.fromEntries([...attrText!.matchAll(/([\w:.-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]));
    const el = { name: name!, attrs, text: '' };
    all.push(el);
    if (!selfClosing) stack.push(el);
  }
  expect(body.slice(last).trim()).toBe('');
  expect(stack).toEqual([]);
  return all;
}

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: project-template: tests of every kind', (target) => {
  let project: string;
  let first: CliResult;
  let manifest: Manifest;

  beforeAll(async () => {
    project = copyTemplate();
    useTarget(target, project);
    first = await runCli(['build'], { cwd: project });
    const json = readJson(project, 'target/manifest.json');
    // Unit tests sit under unit_tests, as in dbt's manifest.
    manifest = { nodes: Object.fromEntries(Object.entries({ ...json.nodes, ...json.unit_tests }).map(([id, n]) => [withoutHash(id), n])) } as Manifest;
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  const testIds = () => Object.keys(manifest.nodes).filter((id) => ['test', 'unit_test'].includes(manifest.nodes[id]!.resource_type));
  const genericIds = () => testIds().filter((id) => manifest.nodes[id]!.test_metadata);

  it('build passes, with a pass for every test of every kind, 0 failures and an existing compiled file', async () => {
    ok(first);
    expect(first.stderr.match(/has no views: view models are built as tables/g) ?? []).toHaveLength(target === 'delta' ? 1 : 0);
    const results = runResults(project).results;
    for (const r of results) expect(r.status, r.unique_id).toBe(/^(unit_)?test\./.test(r.unique_id) ? 'pass' : 'success');
    // Every test of the manifest ran.
    const tests = results.filter((r) => /^(unit_)?test\./.test(r.unique_id));
    expect(tests.map((r) => r.unique_id).sort()).toEqual(testIds().sort());
    for (const t of tests) {
      expect(t.failures, t.unique_id).toBe(0);
      expect(t.compiled_path, t.unique_id).toMatch(/^target\/compiled\/shop\/.+\.sql$/);
      expect(existsSync(path.join(project, t.compiled_path!)), t.compiled_path).toBe(true);
    }
    const ids = new Set(tests.map((t) => t.unique_id));
    // Built-in generic (on columns and on the model), custom generic, singular, unit.
    for (const id of [
      'test.shop.not_null_orders_order_id',
      'test.shop.unique_stg_customers_customer_id',
      'test.shop.row_count_orders_1',
      'test.shop.relationships_orders_customer_id__customer_id__ref_customers_',
      'test.shop.expression_is_true_customers_lifetime_value___2000',
      'test.shop.is_positive_orders_amount',
      'test.shop.assert_payments_match_orders',
      'unit_test.shop.orders.orders_sum_payments_per_method',
    ]) {
      expect(ids.has(id), id).toBe(true);
    }
    expect(manifest.nodes['test.shop.is_positive_orders_amount']!.test_metadata!.name).toBe('is_positive');
    expect(manifest.nodes['test.shop.assert_payments_match_orders']!.test_metadata).toBeUndefined();
    expect(manifest.nodes['unit_test.shop.orders.orders_sum_payments_per_method']).toMatchObject({ resource_type: 'unit_test', model: 'orders' });
    // The compiled files hold what ran.
    expect(read(project, byId(project)['test.shop.not_null_orders_order_id']!.compiled_path!)).toMatch(/where "order_id" is null/);
    expect(read(project, byId(project)['test.shop.is_positive_orders_amount']!.compiled_path!)).toMatch(/from "main"\."orders"\s+where amount < 0/);
    expect(read(project, byId(project)['test.shop.assert_payments_match_orders']!.compiled_path!)).toMatch(/from "main"\."orders"/);
    expect(first.stdout).toMatch(/PASS\s+test assert_payments_match_orders /);
    expect(first.stdout).toMatch(/PASS\s+test orders_sum_payments_per_method /);
    // The unit test's scratch schema is gone.
    expect((await allTables(target, project)).filter((t) => t.startsWith('etl_unit'))).toEqual([]);
    await withStore(target, storeOf(target, project), async (db) => {
      expect(await db.value("select count(*) from information_schema.schemata where schema_name like 'etl_unit%'")).toBe(0);
    });
  });

  it('etl test -s orders runs the tests on orders and nothing else', async () => {
    const r = ok(await runCli(['test', '-s', 'orders'], { cwd: project }));
    const ran = runResults(project).results;
    const ranIds = ran.map((x) => x.unique_id).sort();
    expect(ran.map((x) => `${x.unique_id} ${x.status}`).sort()).toEqual(ranIds.map((id) => `${id} pass`));
    // Exactly the tests that read orders (dbt's eager indirect selection), which include every test attached to it.
    const onOrders = testIds().filter((id) => manifest.nodes[id]!.depends_on.nodes.includes('model.shop.orders'));
    expect(ranIds).toEqual(onOrders.sort());
    for (const id of testIds().filter((id) => manifest.nodes[id]!.attached_node === 'model.shop.orders')) expect(ranIds).toContain(id);
    expect(ranIds).toContain('unit_test.shop.orders.orders_sum_payments_per_method');
    expect(ranIds.length).toBeGreaterThanOrEqual(10);
    // No model ran, and no test of another model.
    expect(ranIds.filter((id) => !/^(unit_)?test\./.test(id))).toEqual([]);
    for (const other of ['test.shop.unique_stg_orders_order_id', 'test.shop.unique_customers_customer_id', 'test.shop.not_null_stg_payments_amount']) {
      expect(ranIds).not.toContain(other);
    }
    expect(r.stdout).toMatch(new RegExp(`Running ${onOrders.length} nodes`));
  });

  it('-s test_type:generic runs the generic tests only; ls -s test_type:singular / unit list the others', async () => {
    ok(await runCli(['test', '-s', 'test_type:generic'], { cwd: project }));
    const ran = runResults(project).results.map((r) => r.unique_id).sort();
    expect(ran).toEqual(genericIds().sort());
    expect(ran).toContain('test.shop.is_positive_orders_amount');
    expect(ran).not.toContain('test.shop.assert_payments_match_orders');
    expect(ran).not.toContain('unit_test.shop.orders.orders_sum_payments_per_method');

    const singular = ok(await runCli(['ls', '-s', 'test_type:singular'], { cwd: project }));
    expect(singular.stdout.trim().split('\n')).toEqual(['shop.assert_payments_match_orders']);
    const unit = ok(await runCli(['ls', '-s', 'test_type:unit', '-o', 'name'], { cwd: project }));
    expect(unit.stdout.trim().split('\n')).toEqual(['orders_sum_payments_per_method']);
    // As dbt ls: a unit test's resource_type is unit_test, a data test's test.
    const json = ok(await runCli(['ls', '-s', 'test_type:unit', 'test_type:singular', '--output', 'json'], { cwd: project }));
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { unique_id: string; resource_type: string }).map((x) => [x.unique_id, x.resource_type]).sort()).toEqual([
      ['test.shop.assert_payments_match_orders', 'test'],
      ['unit_test.shop.orders.orders_sum_payments_per_method', 'unit_test'],
    ]);
  });

  // Runs last: it breaks the seed.
  it('a duplicate key fails the unique test, skips the marts downstream, exits 1 and reports it (stdout, JUnit)', async () => {
    const line = read(project, 'seeds/raw_customers.csv').split('\n')[1]!;
    expect(line).toMatch(/^1,/);
    appendFileSync(path.join(project, 'seeds/raw_customers.csv'), `${line}\n`);

    const r = await runCli(['build', '--junit', 'out.xml'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    const res = byId(project);
    expect(res['test.shop.unique_stg_customers_customer_id']).toMatchObject({ status: 'fail', failures: 1 });
    expect(res['test.shop.unique_stg_customers_customer_id']!.failing_rows_sample).toEqual({ columns: ['customer_id', 'n_records'], rows: [[1, 2]] });
    // The email is duplicated too.
    expect(res['test.shop.unique_stg_customers_email']).toMatchObject({ status: 'fail', failures: 1 });
    expect(res['model.shop.customers']!.status).toBe('skipped');
    expect(res['model.shop.customers']!.message).toMatch(/upstream unique_stg_customers_(customer_id|email) failed/);
    for (const id of testIds().filter((id) => manifest.nodes[id]!.depends_on.nodes.includes('model.shop.customers'))) expect(res[id]!.status, id).toBe('skipped');
    // Only the children of stg_customers are held back: orders does not read it.
    expect(res['model.shop.orders']!.status).toBe('success');
    expect(res['model.shop.stg_customers']!.status).toBe('success');

    // stdout: the test, its model, the count, a table of rows, the compiled SQL path.
    const out = r.stdout;
    const block = out.slice(out.indexOf('Failure in test unique_stg_customers_customer_id'));
    expect(block).toMatch(/^Failure in test unique_stg_customers_customer_id, on stg_customers \(models\/staging\/schema\.yml\)\n\s+1 failing row\n/);
    expect(block).toMatch(/\|\s*customer_id\s*\|\s*n_records\s*\|\n\s*\|-+\|-+\|\n\s*\|\s+1 \|\s+2 \|/);
    expect(block).toMatch(/compiled SQL: target\/compiled\/shop\/models\/staging\/schema\.yml\/unique_stg_customers_customer_id\.sql/);
    expect(out).toMatch(/SKIP\s+table main\.customers /);
    expect(out).toMatch(/Finished \d+ nodes in [\d.]+s: \d+ succeeded, 2 failed, \d+ skipped\./);

    // The customers table is the previous build's: not rebuilt from the 201 staged rows.
    await withStore(target, storeOf(target, project), async (db) => {
      expect(await db.count('main.stg_customers')).toBe(201);
      expect(await db.count('main.customers')).toBe(200);
      expect(await db.value('select count(distinct customer_id) from main.customers')).toBe(200);
    });

    // JUnit: well formed, counts right, the failing test named with its count and first rows.
    const xml = read(project, 'out.xml');
    const els = parseXmlRoughly(xml);
    const cases = els.filter((e) => e.name === 'testcase');
    const results = runResults(project).results;
    const suite = els.find((e) => e.name === 'testsuite')!;
    expect(Number(suite.attrs.tests)).toBe(results.length);
    expect(cases).toHaveLength(results.length);
    expect(Number(suite.attrs.failures)).toBe(2);
    expect(Number(suite.attrs.errors)).toBe(0);
    expect(Number(suite.attrs.skipped)).toBe(results.filter((x) => x.status === 'skipped').length);
    expect(els.filter((e) => e.name === 'failure')).toHaveLength(2);
    expect(els.filter((e) => e.name === 'skipped')).toHaveLength(Number(suite.attrs.skipped));
    const i = els.findIndex((e) => e.name === 'testcase' && e.attrs.name === 'unique_stg_customers_customer_id');
    expect(i).toBeGreaterThan(-1);
    const failure = els[i + 1]!;
    expect(failure.name).toBe('failure');
    const text = unescapeXml(failure.text);
    expect(text).toMatch(/failing rows: 1/);
    expect(text).toMatch(/\|\s*customer_id\s*\|\s*n_records\s*\|/);
    expect(text).toMatch(/\|\s+1 \|\s+2 \|/);
    expect(text).toMatch(/unique_stg_customers_customer_id\.sql/);
    const skippedCustomers = els.findIndex((e) => e.name === 'testcase' && e.attrs.name === 'customers' && e.attrs.classname === 'model.customers');
    expect(els[skippedCustomers + 1]!.name).toBe('skipped');
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: severity, thresholds, singular tests, store_failures, where and limit', (target) => {
  // items: ids 1..250, code null for ids 1..3. base/other are views over it, child/other_child tables.
  const items = ['id,code', ...Array.from({ length: 250 }, (_, i) => `${i + 1},${i < 3 ? '' : `c${i + 1}`}`)].join('\n') + '\n';
  let project: string;

  beforeAll(() => {
    project = writeProject({
      'etl.yml': targetYml(target, 'kinds', 'models:\n  materialized: view\n'),
      'seeds/items.csv': items,
      'models/base.sql': 'select * from {{ref "items"}}\n',
      'models/child.sql': '{{config materialized="table"}}\nselect * from {{ref "base"}}\n',
      'models/other.sql': 'select * from {{ref "items"}}\n',
      'models/other_child.sql': '{{config materialized="table"}}\nselect * from {{ref "other"}}\n',
      'models/schema.yml': `models:
  - name: base
    tests:
      - expression_is_true: { expression: "id > 20", severity: warn, name: warn_sev }
      - expression_is_true: { expression: "id > 20", warn_if: ">10", error_if: ">100", name: thr_20 }
      - expression_is_true: { expression: "id > 5", config: { warn_if: ">10", error_if: ">100" }, name: thr_5 }
      - expression_is_true: { expression: "id > 20", limit: 2, severity: warn, name: lim_2 }
    columns:
      - name: code
        tests:
          - not_null: { where: "id > 3" }
  - name: other
    tests:
      - expression_is_true: { expression: "id > 200", warn_if: ">10", error_if: ">100", name: thr_200 }
    columns:
      - name: code
        tests:
          - not_null: { store_failures: true }
`,
      'tests/returns_rows.sql': '-- fails: two rows\nselect * from {{ref "other"}} where id <= 2\n',
      'tests/warn_rows.sql': '{{config severity="warn"}}\nselect * from {{ref "base"}} where id <= 4\n',
      'tests/stored_rows.sql': '{{config severity="warn" store_failures=true}}\nselect id from {{ref "base"}} where id between 7 and 9\n',
    });
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  it('warn severity and thresholds: status warn, exit 0, children built', async () => {
    const r = ok(await runCli(['build', '-s', '+child'], { cwd: project }));
    const res = byId(project);
    expect(Object.keys(res).sort()).toEqual(
      ['seed.kinds.items', 'model.kinds.base', 'model.kinds.child', ...['warn_sev', 'thr_20', 'thr_5', 'lim_2', 'not_null_base_code', 'warn_rows', 'stored_rows'].map((t) => `test.kinds.${t}`)].sort(),
    );
    expect(res['test.kinds.warn_sev']).toMatchObject({ status: 'warn', failures: 20 });
    // warn_if ">10" / error_if ">100": 20 failing rows warn, 5 pass.
    expect(res['test.kinds.thr_20']).toMatchObject({ status: 'warn', failures: 20 });
    expect(res['test.kinds.thr_5']).toMatchObject({ status: 'pass', failures: 5 });
    // limit caps the failing rows counted.
    expect(res['test.kinds.lim_2']).toMatchObject({ status: 'warn', failures: 2 });
    // where: the null codes (ids 1..3) are filtered out first, so not_null passes.
    expect(res['test.kinds.not_null_base_code']).toMatchObject({ status: 'pass', failures: 0 });
    // A singular test with {{config severity="warn"}}.
    expect(res['test.kinds.warn_rows']).toMatchObject({ status: 'warn', failures: 4 });
    // Warnings block nothing.
    expect(res['model.kinds.child']).toMatchObject({ status: 'success', rows_affected: 250 });
    expect(r.stdout).toMatch(/WARN\s+test warn_sev /);
    expect(r.stdout).toMatch(/Warning in test thr_20, on base \(models\/schema\.yml\)\n\s+20 failing rows\n\s+first 5 failing rows:/);
    expect(r.stdout).toMatch(/Finished 10 nodes in [\d.]+s: 5 succeeded, 5 warned, 0 failed, 0 skipped\./);
    // A Delta target has no views: base and other are built as tables, with one warning for the run.
    expect(r.stderr.match(/has no views: view models are built as tables/g) ?? []).toHaveLength(target === 'delta' ? 1 : 0);
    await withStore(target, storeOf(target, project), async (db) => {
      expect(await db.count('main.child')).toBe(250);
    });
  });

  it('error thresholds and failing singular tests fail (exit 1) and skip only their model\'s children', async () => {
    const r = await runCli(['build'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    const res = byId(project);
    // 200 failing rows is above error_if ">100".
    expect(res['test.kinds.thr_200']).toMatchObject({ status: 'fail', failures: 200 });
    expect(res['test.kinds.returns_rows']).toMatchObject({ status: 'fail', failures: 2 });
    expect(res['test.kinds.returns_rows']!.failing_rows_sample).toEqual({ columns: ['id', 'code'], rows: [[1, null], [2, null]] });
    expect(res['test.kinds.not_null_other_code']).toMatchObject({ status: 'fail', failures: 3 });
    expect(res['model.kinds.other_child']!.status).toBe('skipped');
    expect(res['model.kinds.child']!.status).toBe('success');
    expect(res['test.kinds.warn_sev']!.status).toBe('warn');
    expect(r.stdout).toMatch(/Failure in test returns_rows, on other \(tests\/returns_rows\.sql\)\n\s+2 failing rows/);
    expect(r.stdout).toMatch(/compiled SQL: target\/compiled\/kinds\/tests\/returns_rows\.sql/);
  });

  it('store_failures keeps the failing rows in <schema>_etl_test__audit.<test name>, generic and singular', async () => {
    await withStore(target, storeOf(target, project), async (db) => {
      expect(await db.rows('select id, code from main_etl_test__audit.not_null_other_code order by id')).toEqual([
        { id: 1, code: null },
        { id: 2, code: null },
        { id: 3, code: null },
      ]);
      expect(await db.rows('select id from main_etl_test__audit.stored_rows order by id')).toEqual([{ id: 7 }, { id: 8 }, { id: 9 }]);
      // Tests without store_failures leave nothing there.
      const audit = (await db.rows("select table_name from information_schema.tables where table_schema = 'main_etl_test__audit' order by 1")).map((x) => x.table_name);
      expect(audit).toEqual(['not_null_other_code', 'stored_rows']);
    });
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: contracts', (target) => {
  let project: string;
  const goodYml = `models:
  - name: c
    config: { contract: { enforced: true } }
    columns:
      - { name: id, data_type: int, constraints: [{ type: primary_key }] }
      - { name: name, data_type: text }
      - { name: amount, data_type: "numeric(16, 2)" }
      - { name: d, data_type: date }
      - { name: loaded_at, data_type: timestamp without time zone }
      - { name: note }
`;

  beforeAll(() => {
    project = writeProject({
      'etl.yml': targetYml(target, 'con'),
      'seeds/src.csv': 'id,name,amount_cents,d\n1,a,100,2024-01-01\n2,b,250,2024-01-02\n3,c,399,2024-01-03\n',
      'models/c.sql': `{{config materialized="table"}}
select cast(id as integer) as id, cast(name as varchar) as name, cast(amount_cents / 100.0 as decimal(16, 2)) as amount,
       cast(d as date) as d, cast(d as timestamp) as loaded_at, 'x' as note
from {{ref "src"}}
`,
      'models/schema.yml': goodYml,
    });
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  const oldRows = async () =>
    withStore(target, storeOf(target, project), async (db) => ({
      rows: await db.rows('select id, name, cast(amount as varchar) as amount from main.c order by id'),
      tmp: (await db.rows("select table_name from information_schema.tables where table_name like '%etl_tmp%'")).length,
    }));
  const OLD = [
    { id: 1, name: 'a', amount: '1.00' },
    { id: 2, name: 'b', amount: '2.50' },
    { id: 3, name: 'c', amount: '3.99' },
  ];

  it('a correct contract (types in any spelling: int, text, numeric(16, 2), timestamp without time zone) passes', async () => {
    const r = ok(await runCli(['build'], { cwd: project }));
    expect(r.stdout).toMatch(/OK\s+table main\.c \.+ \[3 rows/);
    expect(await oldRows()).toEqual({ rows: OLD, tmp: 0 });
  });

  it('a wrong data_type fails the build with expected vs actual; the old table keeps its old rows', async () => {
    appendFileSync(path.join(project, 'seeds/src.csv'), '4,d,500,2024-01-04\n');
    edit(project, 'models/schema.yml', '{ name: name, data_type: text }', '{ name: name, data_type: integer }');
    const r = await runCli(['build', '--no-check'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    expect(byId(project)['model.con.c']!.status).toBe('error');
    expect(byId(project)['seed.con.src']!.status).toBe('success');
    const out = r.stdout;
    expect(out).toMatch(/contract of c is not met; the previous version is kept/);
    expect(out).toMatch(/\|\s*column\s*\|\s*expected\s*\|\s*actual\s*\|/);
    expect(out).toMatch(/\|\s*name\s*\|\s*integer\s*\|\s*VARCHAR\s*\|\s*MISMATCH\s*\|/);
    // Matching columns are listed without a mark.
    expect(out).toMatch(/\|\s*amount\s*\|\s*numeric\(16, 2\)\s*\|\s*DECIMAL\(16,2\)\s*\|\s*\|/);
    expect(out).not.toMatch(/\|\s*id\s*\|[^\n]*MISMATCH/);
    expect(await oldRows()).toEqual({ rows: OLD, tmp: 0 });
  });

  it('a column the contract does not declare, or one it declares that is missing, fails too', async () => {
    edit(project, 'models/schema.yml', '{ name: name, data_type: integer }', '{ name: name, data_type: varchar(20) }');
    edit(project, 'models/schema.yml', '      - { name: note }\n', '      - { name: comment }\n');
    const r = await runCli(['build', '--no-check'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    expect(r.stdout).toMatch(/\|\s*comment\s*\|\s*\(any\)\s*\|\s*\(missing\)\s*\|\s*MISMATCH\s*\|/);
    expect(r.stdout).toMatch(/\|\s*note\s*\|\s*\(not declared\)\s*\|\s*VARCHAR\s*\|\s*MISMATCH\s*\|/);
    expect(r.stdout).not.toMatch(/\|\s*name\s*\|[^\n]*MISMATCH/);
    expect(await oldRows()).toEqual({ rows: OLD, tmp: 0 });
  });

  it('a not_null constraint violated by the new rows fails the build; the old table stays', async () => {
    writeFileSync(path.join(project, 'models/schema.yml'), goodYml.replace('{ name: d, data_type: date }', '{ name: d, data_type: date, constraints: [{ type: not_null }] }'));
    appendFileSync(path.join(project, 'seeds/src.csv'), '5,e,600,\n');
    const r = await runCli(['build'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    expect(byId(project)['model.con.c']!.status).toBe('error');
    expect(r.stdout).toMatch(/contract constraints of c are violated; the previous version is kept\n\s+d not_null: 1 violating row/);
    expect(await oldRows()).toEqual({ rows: OLD, tmp: 0 });
  });

  it('a primary_key constraint catches duplicates; once the data is right the new version is published', async () => {
    writeFileSync(path.join(project, 'seeds/src.csv'), 'id,name,amount_cents,d\n1,a,100,2024-01-01\n1,b,250,2024-01-02\n');
    const dup = await runCli(['build'], { cwd: project });
    expect(dup.code, dup.output).toBe(1);
    expect(dup.stdout).toMatch(/id primary_key: 1 violating row/);
    expect(await oldRows()).toEqual({ rows: OLD, tmp: 0 });

    writeFileSync(path.join(project, 'seeds/src.csv'), 'id,name,amount_cents,d\n7,z,1,2024-02-01\n');
    ok(await runCli(['build'], { cwd: project }));
    expect(await oldRows()).toEqual({ rows: [{ id: 7, name: 'z', amount: '0.01' }], tmp: 0 });
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: quarantine', (target) => {
  let project: string;
  // Exactly three bad rows: 3 (status not accepted), 4 (null customer), 5 (negative amount).
  const ORDERS = `order_id,customer_id,status,amount
1,1,placed,10
2,2,shipped,20
3,1,bogus,30
4,,placed,40
5,3,placed,-5
6,2,returned,60
7,3,placed,70
8,1,shipped,80
9,2,placed,90
10,3,placed,100
`;
  const yml = (ordersConfig: string) => `models:
  - name: orders
    config: ${ordersConfig}
    tests:
      - expression_is_true: { expression: "amount >= 0" }
    columns:
      - name: order_id
        tests: [unique, not_null]
      - name: customer_id
        tests: [not_null]
      - name: status
        tests:
          - accepted_values: { values: [placed, shipped, returned] }
  - name: payments
    config: { quarantine: true }
    columns:
      - name: customer_id
        tests:
          - relationships: { to: "ref('customers')", field: id }
`;

  beforeAll(() => {
    project = writeProject({
      'etl.yml': targetYml(target, 'quar', 'models:\n  materialized: table\n'),
      'seeds/raw_orders.csv': ORDERS,
      'seeds/customers.csv': 'id,name\n1,a\n2,b\n3,c\n',
      'seeds/raw_payments.csv': 'payment_id,customer_id\n1,1\n2,9\n3,2\n4,8\n',
      'models/orders.sql': 'select * from {{ref "raw_orders"}}\n',
      'models/payments.sql': 'select * from {{ref "raw_payments"}}\n',
      'models/schema.yml': yml('{ quarantine: true }'),
    });
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  // One story in three builds (each later step reads what the first one quarantined, so they are one test).
  it('moves exactly the rows failing row-level tests to <model>__quarantine, tagged with the tests and the run id; quarantine_max: 2 then fails the build; "30%" lets the next rows move', async () => {
    const r = ok(await runCli(['build'], { cwd: project }));
    const { metadata, results } = runResults(project);
    const firstRunId = metadata.invocation_id;
    expect(firstRunId).toMatch(/^[0-9a-f-]{36}$/);
    const res = Object.fromEntries(results.map((x) => [x.unique_id, x]));
    expect(res['model.quar.orders']).toMatchObject({ status: 'success', quarantined: 3, rows_affected: 7 });
    expect(res['model.quar.payments']).toMatchObject({ status: 'success', quarantined: 2, rows_affected: 2 });
    // The tests then pass on what was published.
    for (const x of results.filter((x) => /^(unit_)?test\./.test(x.unique_id))) expect(x.status, x.unique_id).toBe('pass');
    expect(r.stdout).toMatch(/OK\s+table main\.orders \.+ \[7 rows, 3 quarantined, /);

    await withStore(target, storeOf(target, project), async (db) => {
      expect((await db.rows('select order_id from main.orders order by 1')).map((x) => x.order_id)).toEqual([1, 2, 6, 7, 8, 9, 10]);
      expect(await db.rows('select order_id, customer_id, status, amount, etl_failed_tests, etl_run_id from main.orders__quarantine order by order_id')).toEqual([
        { order_id: 3, customer_id: 1, status: 'bogus', amount: 30, etl_failed_tests: 'accepted_values(status)', etl_run_id: firstRunId },
        { order_id: 4, customer_id: null, status: 'placed', amount: 40, etl_failed_tests: 'not_null(customer_id)', etl_run_id: firstRunId },
        { order_id: 5, customer_id: 3, status: 'placed', amount: -5, etl_failed_tests: 'expression_is_true', etl_run_id: firstRunId },
      ]);
      expect(await db.value('select count(*) from main.orders__quarantine where etl_quarantined_at is null')).toBe(0);
      // relationships in quarantine mode: the payments to unknown customers are quarantined.
      expect((await db.rows('select payment_id from main.payments order by 1')).map((x) => x.payment_id)).toEqual([1, 3]);
      expect(await db.rows('select payment_id, customer_id, etl_failed_tests from main.payments__quarantine order by 1')).toEqual([
        { payment_id: 2, customer_id: 9, etl_failed_tests: 'relationships(customer_id)' },
        { payment_id: 4, customer_id: 8, etl_failed_tests: 'relationships(customer_id)' },
      ]);
    });
    // payments is built after the model its relationships test reads.
    const manifest = readJson<Manifest>(project, 'target/manifest.json');
    expect(manifest.nodes['model.quar.payments']!.depends_on.nodes).toContain('seed.quar.customers');

    // quarantine_max: 2 with 3 bad rows fails the build before anything moves; the previous table is intact.
    edit(project, 'models/schema.yml', 'config: { quarantine: true }\n    tests:', 'config: { quarantine: true, quarantine_max: 2 }\n    tests:');
    appendFileSync(path.join(project, 'seeds/raw_orders.csv'), '11,1,placed,110\n');
    const capped = await runCli(['build'], { cwd: project });
    expect(capped.code, capped.output).toBe(1);
    const cappedRes = byId(project);
    expect(cappedRes['model.quar.orders']!.status).toBe('error');
    expect(cappedRes['model.quar.orders']!.message).toMatch(/3 of 11 rows of orders fail row-level tests, above quarantine_max 2/);
    expect(cappedRes['test.quar.not_null_orders_customer_id']!.status).toBe('skipped');
    await withStore(target, storeOf(target, project), async (db) => {
      expect((await db.rows('select order_id from main.orders order by 1')).map((x) => x.order_id)).toEqual([1, 2, 6, 7, 8, 9, 10]);
      expect(await db.rows('select order_id, etl_run_id from main.orders__quarantine order by 1')).toEqual([3, 4, 5].map((order_id) => ({ order_id, etl_run_id: firstRunId })));
      expect(await db.value("select count(*) from information_schema.tables where table_name like '%etl_tmp%'")).toBe(0);
    });

    // quarantine_max as a percentage: under it the rows move, appended to the same quarantine table.
    edit(project, 'models/schema.yml', 'quarantine_max: 2 }', 'quarantine_max: "30%" }');
    ok(await runCli(['build'], { cwd: project }));
    const runId = runResults(project).metadata.invocation_id;
    expect(runId).not.toBe(firstRunId);
    expect(byId(project)['model.quar.orders']).toMatchObject({ quarantined: 3, rows_affected: 8 });
    await withStore(target, storeOf(target, project), async (db) => {
      expect(await db.count('main.orders')).toBe(8);
      expect(await db.rows('select etl_run_id, count(*) as n from main.orders__quarantine group by 1 order by 2, 1')).toEqual(
        [firstRunId, runId].sort().map((etl_run_id) => ({ etl_run_id, n: 3 })),
      );
    });
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: unit tests', (target) => {
  let project: string;
  const SCHEMA = 'models/marts/schema.yml';
  let original: string;

  beforeAll(() => {
    project = copyTemplate();
    useTarget(target, project);
    original = read(project, SCHEMA);
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  const unitSchemas = async () =>
    withStore(target, storeOf(target, project), async (db) => (await db.rows("select schema_name from information_schema.schemata where schema_name like 'etl_unit%'")).map((r) => r.schema_name));

  it('etl test -s test_type:unit passes on a fresh copy with nothing built, and leaves no scratch schema', async () => {
    expect(existsSync(storeOf(target, project))).toBe(false);
    const r = ok(await runCli(['test', '--select', 'test_type:unit'], { cwd: project }));
    expect(r.stdout).toMatch(/PASS\s+test orders_sum_payments_per_method /);
    const results = runResults(project).results;
    expect(results.map((x) => [x.unique_id, x.status, x.failures])).toEqual([['unit_test.shop.orders.orders_sum_payments_per_method', 'pass', 0]]);
    expect(await unitSchemas()).toEqual([]);
    // Nothing real was built or read.
    const tables = await allTables(target, project);
    expect(tables.filter((t) => t.startsWith('main.'))).toEqual([]);
  });

  it('a wrong expectation fails with a diff of missing and extra rows', async () => {
    edit(project, SCHEMA, '{ order_id: 1, credit_card_amount: 10.50, gift_card_amount: 5.00, amount: 15.50 }', '{ order_id: 1, credit_card_amount: 10.50, gift_card_amount: 5.00, amount: 99.00 }');
    const r = await runCli(['test', '-s', 'test_type:unit'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    const result = runResults(project).results[0]!;
    expect(result).toMatchObject({ unique_id: 'unit_test.shop.orders.orders_sum_payments_per_method', status: 'fail', failures: 2 });
    expect(result.failing_rows_sample!.columns).toEqual(['etl_diff', 'order_id', 'credit_card_amount', 'gift_card_amount', 'amount']);
    const diff = result.failing_rows_sample!.rows.map((row) => [row[0], row[1], Number(row[4])]);
    expect(diff).toEqual([
      ['extra', 1, 15.5],
      ['missing', 1, 99],
    ]);
    expect(r.stdout).toMatch(/Failure in test orders_sum_payments_per_method, on orders \(models\/marts\/schema\.yml\)/);
    expect(r.stdout).toMatch(/2 rows differ from the expected rows \(missing: expected but not returned; extra: returned but not expected\)/);
    expect(r.stdout).toMatch(/\|\s*extra\s*\|\s+1 \|[^\n]*15\.5/);
    expect(r.stdout).toMatch(/\|\s*missing\s*\|\s+1 \|[^\n]*99/);
    expect(await unitSchemas()).toEqual([]);
  });

  it('a unit test without a given for one of the model\'s refs is a compile error naming the yml file:line', async () => {
    const start = original.indexOf("      - input: ref('stg_payments')");
    const end = original.indexOf('    expect:');
    expect(start).toBeGreaterThan(0);
    writeFileSync(path.join(project, SCHEMA), original.slice(0, start) + original.slice(end));
    const r = await runCli(['test', '-s', 'test_type:unit'], { cwd: project });
    expect(r.code, r.output).toBe(2);
    const m = /models\/marts\/schema\.yml:(\d+):\d+: unit test orders_sum_payments_per_method: no given rows for ref\('stg_payments'\)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    // The line is inside the unit test's given: block.
    const line = Number(m![1]);
    expect(line).toBeGreaterThan(lineOf(project, SCHEMA, 'name: orders_sum_payments_per_method'));
    expect(line).toBeLessThan(lineOf(project, SCHEMA, '    expect:'));
  });

  it('fixture: path.csv reads the given rows from a file', async () => {
    const start = original.indexOf("      - input: ref('stg_payments')");
    const end = original.indexOf('    expect:');
    writeFileSync(
      path.join(project, SCHEMA),
      `${original.slice(0, start)}      - input: ref('stg_payments')\n        fixture: tests/fixtures/payments.csv\n${original.slice(end)}`,
    );
    writeFiles(project, { 'tests/fixtures/payments.csv': 'payment_id,order_id,payment_method,amount\r\n1,1,credit_card,10.50\r\n2,1,"gift_card",5.00\r\n' });
    ok(await runCli(['test', '-s', 'test_type:unit'], { cwd: project }));
    expect(runResults(project).results.map((x) => x.status)).toEqual(['pass']);

    // The rows really come from the file: change one and the expectation no longer holds.
    // (--no-cache: the compile cache does not see fixture files yet, see the test below.)
    writeFiles(project, { 'tests/fixtures/payments.csv': 'payment_id,order_id,payment_method,amount\n1,1,credit_card,10.50\n2,1,paypal,5.00\n' });
    ok(await runCli(['compile', '--no-cache'], { cwd: project }));
    const r = await runCli(['test', '-s', 'test_type:unit'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    expect(runResults(project).results[0]).toMatchObject({ status: 'fail', failures: 2 });

    // Back to the right rows: passes again.
    writeFiles(project, { 'tests/fixtures/payments.csv': 'payment_id,order_id,payment_method,amount\n1,1,credit_card,10.50\n2,1,gift_card,5.00\n' });
    ok(await runCli(['compile', '--no-cache'], { cwd: project }));
    ok(await runCli(['test', '-s', 'test_type:unit'], { cwd: project }));

    // A fixture file that does not exist is a compile error.
    edit(project, SCHEMA, 'tests/fixtures/payments.csv', 'tests/fixtures/nope.csv');
    const missing = await runCli(['test', '-s', 'test_type:unit'], { cwd: project });
    expect(missing.code, missing.output).toBe(2);
    expect(missing.stderr).toMatch(/models\/marts\/schema\.yml:\d+:\d+: unit test orders_sum_payments_per_method: fixture file tests\/fixtures\/nope\.csv does not exist/);
    edit(project, SCHEMA, 'tests/fixtures/nope.csv', 'tests/fixtures/payments.csv');
  });

  it('overrides.vars renders the model with other vars; --vars reaches the others', async () => {
    appendFileSync(
      path.join(project, 'models/staging/schema.yml'),
      `
unit_tests:
  - name: stg_orders_from_start_date
    model: stg_orders
    given:
      - input: ref('raw_orders')
        rows:
          - { order_id: 1, customer_id: 10, order_date: 2023-12-31, status: placed }
          - { order_id: 2, customer_id: 11, order_date: 2024-01-02, status: placed }
    expect:
      rows:
        - { order_id: 2, order_date: 2024-01-02 }
  - name: stg_orders_vars_override
    model: stg_orders
    overrides: { vars: { start_date: "2023-01-01" } }
    given:
      - input: ref('raw_orders')
        rows:
          - { order_id: 1, customer_id: 10, order_date: 2023-12-31, status: placed }
          - { order_id: 2, customer_id: 11, order_date: 2024-01-02, status: placed }
    expect:
      rows: [{ order_id: 1 }, { order_id: 2 }]
`,
    );
    ok(await runCli(['test', '-s', 'test_type:unit'], { cwd: project }));
    expect(Object.values(statuses(project))).toEqual(['pass', 'pass', 'pass']);

    const r = await runCli(['test', '-s', 'test_type:unit', '--vars', '{start_date: "2024-01-05"}'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    const res = byId(project);
    expect(res['unit_test.shop.stg_orders.stg_orders_vars_override']!.status).toBe('pass');
    expect(res['unit_test.shop.stg_orders.stg_orders_from_start_date']).toMatchObject({ status: 'fail', failures: 1, message: expect.stringMatching(/^1 row differs from the expected rows/) });
    expect(res['unit_test.shop.stg_orders.stg_orders_from_start_date']!.failing_rows_sample!.rows.map((row) => [row[0], row[1]])).toEqual([['missing', 2]]);
    expect(await unitSchemas()).toEqual([]);
  });

  // Regression: fixture files were not part of the compile cache key.
  it('editing only a fixture file is seen by the next run (compile cache)', async () => {
    ok(await runCli(['test', '-s', 'test_type:unit'], { cwd: project }));
    writeFiles(project, { 'tests/fixtures/payments.csv': 'payment_id,order_id,payment_method,amount\n1,1,credit_card,10.50\n2,1,paypal,5.00\n' });
    const r = await runCli(['test', '-s', 'test_type:unit'], { cwd: project });
    expect(r.code, r.output).toBe(1);
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: bad test declarations', (target) => {
  let project: string;
  beforeAll(() => {
    project = writeProject({
      'etl.yml': targetYml(target, 'bad'),
      'seeds/s.csv': 'id,v\n1,a\n2,b\n',
      'models/m.sql': 'select * from {{ref "s"}}\n',
    });
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  const column = (tests: string) => `models:
  - name: m
    columns:
      - name: id
      - name: v
        tests:
${tests}
`;

  it.each([
    ['an unknown test name', column('          - not_nul'), 'not_nul', /unknown test "not_nul"\n\s+hint: did you mean "not_null"\?/],
    ['an unknown test argument', column('          - accepted_values: { values: [a], vals: [b] }'), 'vals', /unknown argument "vals" for test accepted_values\n\s+hint: did you mean "values"\?/],
    ['a malformed threshold', column('          - not_null: { warn_if: "lots" }'), 'lots', /malformed threshold warn_if: "lots"/],
    ['a malformed threshold under config:', column('          - not_null: { config: { error_if: ">= many" } }'), 'many', /malformed threshold error_if: ">= many"/],
    ['an unknown model in a relationships to', column(`          - relationships: { to: "ref('nope')", field: id }`), 'nope', /test relationships: unknown ref "nope"/],
    ['row_count under a column', column('          - row_count: { min: 1 }'), 'row_count', /test "row_count" applies to the whole model, not a column/],
    ['a multi-column unique naming an undeclared column', 'models:\n  - name: m\n    columns:\n      - name: id\n    tests:\n      - unique: { columns: [id, nope] }\n', 'nope', /test unique names column "nope", which m does not declare/],
  ])('%s: exit 2 with the yml file:line, nothing built', async (_name, yml, needle, message) => {
    writeFiles(project, { 'models/schema.yml': yml });
    const r = await runCli(['build'], { cwd: project });
    expect(r.code, r.output).toBe(2);
    const line = lineOf(project, 'models/schema.yml', needle);
    expect(r.stderr).toMatch(new RegExp(`models/schema\\.yml:${line}:\\d+: `));
    expect(r.stderr).toMatch(message);
    expect(r.stdout).not.toMatch(/Running/);
    expect(existsSync(storeOf(target, project))).toBe(false);
  });

  it('a test whose SQL fails in the engine is an error naming the test; exit 1', async () => {
    writeFiles(project, { 'models/schema.yml': 'models:\n  - name: m\n    tests:\n      - expression_is_true: { expression: "no_such_col > 0" }\n' });
    const r = await runCli(['build'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    const res = byId(project);
    expect(res['test.bad.expression_is_true_m_no_such_col_0']!.status).toBe('error');
    expect(res['test.bad.expression_is_true_m_no_such_col_0']!.message).toMatch(/no_such_col/);
    expect(res['model.bad.m']!.status).toBe('success');
    expect(r.stdout).toMatch(/ERROR\s+test expression_is_true_m_no_such_col_0 /);
    expect(r.stdout).toMatch(/Error in test expression_is_true_m_no_such_col_0, on m \(models\/schema\.yml\)\n[^\n]*no_such_col/);
  });

  it('a malformed threshold in a singular test\'s config is an error of that test, not ignored', async () => {
    writeFiles(project, { 'models/schema.yml': 'models:\n  - name: m\n', 'tests/bad_threshold.sql': '{{config warn_if="lots"}}\nselect * from {{ref "m"}}\n' });
    const r = await runCli(['test'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    expect(byId(project)['test.bad.bad_threshold']).toMatchObject({ status: 'error', message: expect.stringMatching(/malformed threshold warn_if: "lots"/) });
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: source freshness', (target) => {
  let project: string;
  /** The instant the source tables' load times are counted back from (ms since the epoch). */
  let base: number;
  beforeAll(async () => {
    project = writeProject({
      'etl.yml': targetYml(target, 'fr'),
      'models/sources.yml': `sources:
  - name: raw
    schema: raw
    freshness: { warn_after: 1h, error_after: 1d }
    loaded_at_field: loaded_at
    tables:
      - name: fresh
      - name: stale
      - name: old
      - name: untracked
        freshness: null
      - name: custom
        freshness: { warn_after: 10d, error_after: 20d, loaded_at_field: synced_at }
`,
      'models/m.sql': 'select * from {{source "raw" "fresh"}}\n',
    });
    // The source tables, loaded relative to a fixed instant: a timestamp column (UTC), a timestamptz
    // one, an old one. The check runs with its clock pinned to that instant (ETL_NOW), so each age is exact.
    base = Date.parse('2024-06-01T12:00:00.000Z');
    const utc = `timestamp '${new Date(base).toISOString().slice(0, 23).replace('T', ' ')}'`;
    const tz = `timestamptz '${new Date(base).toISOString()}'`;
    mkdirSync(path.join(project, 'target'), { recursive: true });
    await withStore(
      target,
      storeOf(target, project),
      async (db) => {
        for (const sql of [
          'create schema raw',
          `create table raw.fresh as select 1 as id, ${utc} - interval 5 minute as loaded_at`,
          `create table raw.stale as select 1 as id, ${tz} - interval 3 hour as loaded_at`,
          `create table raw.old as select * from (values (${utc} - interval 3 day), (${utc} - interval 30 day)) as t(loaded_at)`,
          `create table raw.untracked as select ${tz} - interval 300 day as loaded_at`,
          `create table raw.custom as select ${utc} - interval 2 day as loaded_at, ${utc} - interval 12 day as synced_at`,
        ]) {
          await db.connection.run(sql);
        }
      },
      { readOnly: false },
    );
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  type Sources = { metadata: { invocation_id: string }; results: Array<{ unique_id: string; status: string; max_loaded_at: string | null; max_loaded_at_time_ago_in_s: number | null; snapshotted_at: string; criteria: Record<string, unknown> }> };

  it('pass / warn / error per table, target/sources.json in dbt\'s shape, exit 1 on an error', async () => {
    const r = await runCli(['source', 'freshness'], { cwd: project, env: { ETL_NOW: new Date(base).toISOString() } });
    expect(r.code, r.output).toBe(1);
    const sources = readJson<Sources>(project, 'target/sources.json');
    const by = Object.fromEntries(sources.results.map((x) => [x.unique_id, x]));
    // freshness: null opts a table out.
    expect(Object.keys(by).sort()).toEqual(['source.fr.raw.custom', 'source.fr.raw.fresh', 'source.fr.raw.old', 'source.fr.raw.stale']);
    expect(by['source.fr.raw.fresh']!.status).toBe('pass');
    expect(by['source.fr.raw.stale']!.status).toBe('warn');
    expect(by['source.fr.raw.old']!.status).toBe('error');
    // A table's own freshness (and loaded_at_field) wins: synced_at 12 days ago is past warn_after 10d.
    expect(by['source.fr.raw.custom']).toMatchObject({ status: 'warn', criteria: { warn_after: { count: 10, period: 'day' }, error_after: { count: 20, period: 'day' } } });
    const near = (id: string, seconds: number) => {
      const x = by[id]!;
      // max_loaded_at is the instant written (to the millisecond), the age is counted from snapshotted_at: the run clock's now.
      expect(Date.parse(x.max_loaded_at!), id).toBe(base - seconds * 1000);
      expect(x.snapshotted_at, id).toBe(new Date(base).toISOString());
      expect(x.max_loaded_at_time_ago_in_s, id).toBe(seconds);
    };
    near('source.fr.raw.fresh', 300);
    near('source.fr.raw.stale', 3 * 3600);
    near('source.fr.raw.old', 3 * 86400); // the max of the two rows
    near('source.fr.raw.custom', 12 * 86400);
    expect(by['source.fr.raw.fresh']!.criteria).toEqual({ warn_after: { count: 1, period: 'hour' }, error_after: { count: 1, period: 'day' }, filter: null });
    expect(sources.metadata.invocation_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.stdout).toMatch(/PASS\s+raw\.fresh: loaded 5m ago/);
    expect(r.stdout).toMatch(/WARN\s+raw\.stale: loaded 3\.0h ago/);
    expect(r.stdout).toMatch(/ERROR\s+raw\.old: loaded 3\.0d ago/);
  });

  it('exit 0 when the worst is a warning (selected sources only)', async () => {
    const r = await runCli(['source', 'freshness', '-s', 'source:raw.fresh', '-s', 'raw.stale'], { cwd: project, env: { ETL_NOW: new Date(base).toISOString() } });
    expect(r.code, r.output).toBe(0);
    const sources = readJson<Sources>(project, 'target/sources.json');
    expect(sources.results.map((x) => [x.unique_id, x.status]).sort()).toEqual([
      ['source.fr.raw.fresh', 'pass'],
      ['source.fr.raw.stale', 'warn'],
    ]);
  });
});

// On DuckDB an incremental run stages its new rows in a temporary table
// (adapters/duckdb/adapter.ts, stageTable with transient): quarantine moves
// rows out of it and a contract reads its columns there.
describe.each(TARGETS)('%s: quarantine and contracts on an incremental model', (target) => {
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  const model = (amount: string) =>
    `{{config materialized="incremental" unique_key="id"}}\nselect cast(id as integer) as id, ${amount} as amount, cast(updated_at as timestamp) as updated_at from {{ref "events"}}\n{{#if is_incremental}}where updated_at > (select max(updated_at) from {{this}}){{/if}}\n`;
  const yml = (config: string) => `models:
  - name: inc
    config: ${config}
    columns:
      - { name: id, data_type: integer, tests: [not_null] }
      - { name: amount, data_type: integer }
      - { name: updated_at, data_type: timestamp }
    tests:
      - expression_is_true: { expression: "amount >= 0" }
`;
  const first = 'id,amount,updated_at\n1,10,2024-01-01 00:00:00\n2,20,2024-01-02 00:00:00\n';
  // Row 2 updated, row 3 new, row 4 new with a negative amount.
  const second = 'id,amount,updated_at\n1,10,2024-01-01 00:00:00\n2,25,2024-02-01 00:00:00\n3,30,2024-02-02 00:00:00\n4,-1,2024-02-03 00:00:00\n';

  it('quarantine: the failing new row goes to inc__quarantine, the others are merged', async () => {
    const project = writeProject({ 'etl.yml': targetYml(target, 'incq'), 'seeds/events.csv': first, 'models/inc.sql': model('cast(amount as integer)'), 'models/schema.yml': yml('{ quarantine: true }') });
    ok(await runCli(['build'], { cwd: project }));
    writeFiles(project, { 'seeds/events.csv': second });
    ok(await runCli(['build'], { cwd: project }));
    const res = Object.fromEntries(runResults(project).results.map((x) => [x.unique_id, x]));
    expect(res['model.incq.inc']).toMatchObject({ status: 'success', quarantined: 1 });
    await withStore(target, storeOf(target, project), async (db) => {
      expect(await db.rows('select id, amount from main.inc order by id')).toEqual([
        { id: 1, amount: 10 },
        { id: 2, amount: 25 },
        { id: 3, amount: 30 },
      ]);
      expect(await db.rows('select id, amount, etl_failed_tests from main.inc__quarantine')).toEqual([{ id: 4, amount: -1, etl_failed_tests: 'expression_is_true' }]);
      expect((await db.rows("select table_name from information_schema.tables where table_name like '%etl_tmp%'")).length).toBe(0);
    });
  });

  it('contract: new rows of the wrong type fail the model and leave the table as it was', async () => {
    const project = writeProject({ 'etl.yml': targetYml(target, 'incc'), 'seeds/events.csv': first, 'models/inc.sql': model('cast(amount as integer)'), 'models/schema.yml': yml('{ contract: { enforced: true } }') });
    ok(await runCli(['build', '-s', 'events', 'inc'], { cwd: project }));
    writeFiles(project, { 'seeds/events.csv': second, 'models/inc.sql': model('cast(amount as varchar)') });
    const r = await runCli(['build', '--no-check', '-s', 'events', 'inc', '--exclude', 'test_type:data'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/contract of inc is not met/);
    expect(r.output).toMatch(/amount/);
    await withStore(target, storeOf(target, project), async (db) => {
      expect(await db.rows('select id, amount from main.inc order by id')).toEqual([
        { id: 1, amount: 10 },
        { id: 2, amount: 20 },
      ]);
    });
  });
});
