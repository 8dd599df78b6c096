// `etl build`, `init`, `seed`, `run`, `show`, --threads and --log-format json,
// run as a user would: the built CLI spawned on copies of project-template/.

import path from 'node:path';
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyTemplate, dbPathOf, killAll, makeTempDir, read, readJson, removeTempDirs, runCli, startCli, withDb, type CliResult, readRunResults } from './helpers.js';

const SEEDS = ['raw_customers', 'raw_orders', 'raw_payments'];
const VIEWS = ['stg_customers', 'stg_orders', 'stg_payments'];
const TABLES = ['customers', 'orders'];

afterEach(killAll);

describe('etl build on project-template', () => {
  // One build that the read-only tests below share.
  let project: string;
  let result: CliResult;

  beforeAll(async () => {
    project = copyTemplate();
    // Run from elsewhere: --project-dir must be honoured.
    result = await runCli(['build', '--project-dir', project], { cwd: path.dirname(project) });
  });
  afterAll(async () => {
    await killAll();
    removeTempDirs();
  });

  it('exits 0 and prints a line per node with status, time and rows, then a summary', () => {
    expect(result.code, result.output).toBe(0);
    const out = result.stdout;
    // 3 seeds and 5 models, plus the data tests of models/**/*.yml once build runs them.
    const total = Number(/Running (\d+) nodes with 4 threads/.exec(out)?.[1]);
    expect(total).toBeGreaterThanOrEqual(8);
    expect(out).toMatch(/OK\s+seed main\.raw_customers \.+ \[200 rows, \d+\.\d\ds\]/);
    expect(out).toMatch(/OK\s+seed main\.raw_orders \.+ \[500 rows, \d+\.\d\ds\]/);
    expect(out).toMatch(/OK\s+seed main\.raw_payments \.+ \[602 rows, \d+\.\d\ds\]/);
    for (const v of VIEWS) expect(out).toMatch(new RegExp(`OK\\s+view main\\.${v} \\.+ \\[\\d+\\.\\d\\ds\\]`));
    expect(out).toMatch(/OK\s+table main\.customers \.+ \[200 rows, \d+\.\d\ds\]/);
    expect(out).toMatch(/OK\s+table main\.orders \.+ \[500 rows, \d+\.\d\ds\]/);
    const nodeLines = out.split('\n').filter((l) => new RegExp(`^\\s*\\d+ of ${total} `).test(l));
    expect(nodeLines).toHaveLength(total);
    expect(nodeLines.filter((l) => / (seed|view|table) main\./.test(l))).toHaveLength(8);
    expect(out).toMatch(new RegExp(`Finished ${total} nodes in \\d+\\.\\d\\ds: ${total} succeeded, 0 failed, 0 skipped\\.`));
    expect(result.stderr.trim()).toBe('');
  });

  it('loads the seeds, builds staging views and mart tables with the right data', async () => {
    await withDb(dbPathOf(project), async (db) => {
      const relations = await db.relations();
      for (const s of SEEDS) expect(relations[s]).toBe('BASE TABLE');
      for (const v of VIEWS) expect(relations[v]).toBe('VIEW');
      for (const t of TABLES) expect(relations[t]).toBe('BASE TABLE');
      expect(await db.tempRelations()).toEqual([]);

      expect(await db.count('raw_customers')).toBe(200);
      expect(await db.count('raw_orders')).toBe(500);
      expect(await db.count('raw_payments')).toBe(602);
      expect(await db.count('stg_customers')).toBe(200);
      expect(await db.count('stg_payments')).toBe(602);
      expect(await db.count('customers')).toBe(200);
      expect(await db.count('orders')).toBe(500);
      expect(await db.value('select count(distinct order_id) from orders')).toBe(500);

      // Money is exact: the mart's dollars are the raw cents / 100, to the cent.
      const sums = (await db.rows(`
        select (select sum(amount) from orders)::varchar as dollars,
               (select sum(amount_cents) from raw_payments) as cents,
               (select sum(amount) from orders) * 100 = (select sum(amount_cents) from raw_payments) as equal`))[0]!;
      expect(sums.equal).toBe(true);
      expect(sums.dollars).toBe((Number(sums.cents) / 100).toFixed(2));
      // The per-method columns add up to the total, and customers' lifetime value matches orders.
      expect(await db.value('select count(*) from orders where credit_card_amount + bank_transfer_amount + gift_card_amount + paypal_amount <> amount')).toBe(0);
      expect(await db.value('select (select sum(lifetime_value) from customers) = (select sum(amount) from orders)')).toBe(true);
      expect(await db.value('select sum(number_of_orders) from customers')).toBe(500);
      // stg_customers lowercases emails.
      expect(await db.value('select count(*) from stg_customers where email <> lower(email)')).toBe(0);
      expect(await db.value('select count(*) from raw_customers where email <> lower(email)')).toBeGreaterThan(0);
    });
  });

  it('writes run_results.json with dbt fields, one success per node', () => {
    const runResults = readRunResults(project);
    const all = runResults.results as Array<Record<string, any>>;
    // Data tests (test.shop.*), when build runs them, must all pass; the rest is the 8 seeds and models.
    for (const t of all.filter((r) => /^(unit_)?test\./.test(r.unique_id))) expect(t.status, t.unique_id).toBe('pass');
    const results = all.filter((r) => !/^(unit_)?test\./.test(r.unique_id));
    expect(results).toHaveLength(8);
    expect(results.map((r) => r.unique_id).sort()).toEqual(
      [...SEEDS.map((s) => `seed.shop.${s}`), ...[...VIEWS, ...TABLES].map((m) => `model.shop.${m}`)].sort(),
    );
    for (const r of results) {
      expect(r.status, r.unique_id).toBe('success');
      for (const field of ['unique_id', 'status', 'timing', 'execution_time', 'rows_affected', 'message', 'failures']) {
        expect(r, `${r.unique_id}.${field}`).toHaveProperty(field);
      }
      expect(Array.isArray(r.timing)).toBe(true);
      expect(r.timing.length).toBeGreaterThan(0);
      expect(Number.isNaN(Date.parse(r.timing[0].started_at))).toBe(false);
      expect(Number.isNaN(Date.parse(r.timing[0].completed_at))).toBe(false);
      expect(typeof r.execution_time).toBe('number');
      expect(typeof r.message).toBe('string');
      expect(r.failures).toBeNull();
    }
    const byId = Object.fromEntries(results.map((r) => [r.unique_id, r]));
    expect(byId['seed.shop.raw_payments'].rows_affected).toBe(602);
    expect(byId['model.shop.orders'].rows_affected).toBe(500);
    expect(byId['model.shop.customers'].rows_affected).toBe(200);
    expect(typeof runResults.elapsed_time).toBe('number');
  });

  it('writes manifest.json with nodes, sources, parent_map and child_map keyed by unique_id', () => {
    const manifest = readJson(project, 'target/manifest.json');
    for (const key of ['nodes', 'sources', 'parent_map', 'child_map']) expect(manifest, key).toHaveProperty(key);
    expect(Object.keys(manifest.nodes).filter((id) => !/^(unit_)?test\./.test(id)).sort()).toEqual(
      [...SEEDS.map((s) => `seed.shop.${s}`), ...[...VIEWS, ...TABLES].map((m) => `model.shop.${m}`)].sort(),
    );
    const orders = manifest.nodes['model.shop.orders'];
    expect(orders.unique_id).toBe('model.shop.orders');
    expect(orders.resource_type).toBe('model');
    expect(orders.name).toBe('orders');
    expect(orders.raw_code).toContain('{{ref "stg_payments"}}');
    expect(orders.compiled_code).not.toContain('{{');
    expect(orders.compiled_code).toMatch(/"main"\."stg_payments"/);
    expect(orders.depends_on.nodes.sort()).toEqual(['model.shop.stg_orders', 'model.shop.stg_payments']);
    expect(orders.config.materialized).toBe('table');
    expect(orders.columns).toHaveProperty('order_id');
    expect(orders.checksum).toHaveProperty('checksum');
    expect(manifest.nodes['seed.shop.raw_orders'].resource_type).toBe('seed');
    expect(manifest.parent_map['model.shop.orders'].sort()).toEqual(['model.shop.stg_orders', 'model.shop.stg_payments']);
    expect(manifest.parent_map['model.shop.stg_orders']).toEqual(['seed.shop.raw_orders']);
    const childModels = (id: string) => (manifest.child_map[id] as string[]).filter((c) => !/^(unit_)?test\./.test(c)).sort();
    expect(childModels('model.shop.stg_orders')).toEqual(['model.shop.customers', 'model.shop.orders']);
    expect(childModels('seed.shop.raw_payments')).toEqual(['model.shop.stg_payments']);
    for (const [id, children] of Object.entries(manifest.child_map as Record<string, string[]>)) {
      for (const c of children) expect(manifest.parent_map[c], `${c} in child_map[${id}] but not in parent_map`).toContain(id);
    }
    // compiled/**.sql is the rendered SQL, next to the manifest.
    expect(read(project, orders.compiled_path)).toContain('"main"."stg_orders"');
  });

  it('etl show -s orders --limit 5 prints a table of 5 rows', async () => {
    const r = await runCli(['show', '-s', 'orders', '--limit', '5'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    const tableLines = r.stdout.split('\n').filter((l) => l.startsWith('|'));
    // header, separator, 5 rows
    expect(tableLines).toHaveLength(7);
    expect(tableLines[0]).toMatch(/\|\s*order_id\s*\|\s*customer_id\s*\|.*\|\s*amount\s*\|/);
    expect(tableLines[1]).toMatch(/^\|[-|]+\|$/);
    for (const row of tableLines.slice(2)) expect(row).toMatch(/^\|\s+\d+ \|/);
    expect(r.stdout).toMatch(/\(5 rows\)/);
  });
});

describe('etl init', () => {
  afterAll(removeTempDirs);

  it('writes a project that builds as is, named after its folder', async () => {
    const cwd = makeTempDir();
    const init = await runCli(['init', 'my_shop'], { cwd });
    expect(init.code, init.output).toBe(0);
    const project = path.join(cwd, 'my_shop');
    expect(read(project, 'etl.yml')).toMatch(/^name: my_shop$/m);
    // The template's generated files (if any) are not copied.
    expect(existsSync(path.join(project, 'target'))).toBe(false);

    const build = await runCli(['build', '--project-dir', 'my_shop'], { cwd });
    expect(build.code, build.output).toBe(0);
    expect(build.stdout).toMatch(/Finished (\d+) nodes .*: \1 succeeded, 0 failed, 0 skipped/);
    expect(Object.keys(readJson(project, 'target/manifest.json').nodes)).toContain('model.my_shop.orders');
    await withDb(dbPathOf(project), async (db) => {
      expect(await db.count('customers')).toBe(200);
      expect(await db.count('orders')).toBe(500);
    });

    // A second init into the (now non-empty) folder is refused.
    const again = await runCli(['init', 'my_shop'], { cwd });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/not empty/);
  });
});

describe('etl seed, then etl run', () => {
  afterAll(removeTempDirs);

  it('seed loads only seeds; run builds only models', async () => {
    const project = copyTemplate();
    const seed = await runCli(['seed'], { cwd: project });
    expect(seed.code, seed.output).toBe(0);
    expect(seed.stdout).toMatch(/Finished 3 nodes .*: 3 succeeded, 0 failed, 0 skipped/);
    await withDb(dbPathOf(project), async (db) => {
      expect(Object.keys(await db.relations()).sort()).toEqual(SEEDS);
      expect(await db.count('raw_payments')).toBe(602);
    });
    expect((readRunResults(project).results as Array<{ unique_id: string }>).map((r) => r.unique_id).sort()).toEqual(
      SEEDS.map((s) => `seed.shop.${s}`),
    );

    const run = await runCli(['run'], { cwd: project });
    expect(run.code, run.output).toBe(0);
    expect(run.stdout).toMatch(/Finished 5 nodes .*: 5 succeeded/);
    expect(run.stdout).not.toMatch(/seed main\./);
    const results = readRunResults(project).results as Array<{ unique_id: string; status: string }>;
    expect(results.map((r) => r.unique_id).sort()).toEqual([...VIEWS, ...TABLES].map((m) => `model.shop.${m}`).sort());
    expect(results.map((r) => r.status)).toEqual(results.map(() => 'success'));
    await withDb(dbPathOf(project), async (db) => {
      const relations = await db.relations();
      expect(Object.keys(relations).sort()).toEqual([...SEEDS, ...VIEWS, ...TABLES].sort());
      expect(await db.count('orders')).toBe(500);
      expect(await db.count('customers')).toBe(200);
    });
  });
});

describe('--threads', () => {
  afterAll(removeTempDirs);

  it('--threads 1 and --threads 4 build the same data', async () => {
    const one = copyTemplate();
    const four = copyTemplate();
    const [r1, r4] = await Promise.all([runCli(['build', '--threads', '1'], { cwd: one }), runCli(['build', '--threads', '4'], { cwd: four })]);
    expect(r1.code, r1.output).toBe(0);
    expect(r4.code, r4.output).toBe(0);
    expect(r1.stdout).toMatch(/Running \d+ nodes with 1 thread\n/);
    expect(r4.stdout).toMatch(/Running \d+ nodes with 4 threads\n/);
    const contents = (dir: string) =>
      withDb(dbPathOf(dir), async (db) => ({
        customers: await db.rows('select * from customers order by customer_id'),
        orders: await db.rows('select * from orders order by order_id'),
        stg_payments: await db.rows('select * from stg_payments order by payment_id'),
      }));
    const a = await contents(one);
    const b = await contents(four);
    expect(a.customers).toHaveLength(200);
    expect(a.orders).toHaveLength(500);
    expect(a).toEqual(b);
  });

  it('rejects --threads 0 as bad usage', async () => {
    const project = copyTemplate();
    const r = await runCli(['build', '--threads', '0'], { cwd: project });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/positive integer/);
    expect(existsSync(path.join(project, 'target'))).toBe(false);
  });
});

describe('--log-format json', () => {
  afterAll(removeTempDirs);

  it('prints one JSON object per line, with node_finished events', async () => {
    const project = copyTemplate();
    const r = await runCli(['build', '--log-format', 'json'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    const events = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, any>;
      } catch {
        throw new Error(`not JSON: ${l}`);
      }
    });
    expect(events[0]!.event).toBe('run_started');
    const finished = events.filter((e) => e.event === 'node_finished');
    expect(finished).toHaveLength(events[0]!.total);
    expect(finished.filter((e) => !/^(unit_)?test\./.test(e.unique_id))).toHaveLength(8);
    for (const e of finished) {
      expect(e.status).toBe(/^(unit_)?test\./.test(e.unique_id) ? 'pass' : 'success');
      expect(typeof e.unique_id).toBe('string');
      expect(typeof e.execution_time).toBe('number');
    }
    expect(finished.find((e) => e.unique_id === 'model.shop.orders')!.rows_affected).toBe(500);
    const last = events[events.length - 1]!;
    expect(last.event).toBe('run_finished');
    expect(last.counts.success).toBe(8);
    expect(Object.keys(last.counts).filter((k) => k !== 'success' && k !== 'pass')).toEqual([]);
  });

  it('keeps building when the reader of its output goes away (etl build | head -1)', async () => {
    const project = copyTemplate();
    const p = startCli(['build', '--log-format', 'json'], { cwd: project });
    await p.waitForOutput(/"event":"run_started"/);
    // Close our end of the pipe: every later write of the CLI gets EPIPE.
    p.child.stdout!.destroy();
    const r = await p.exitWithin(45_000);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled 'error' event/);
    expect(r.code, r.stderr).toBe(0);
    // Seeds and models succeed, tests pass: every node of the template, each with its own status.
    const results = readRunResults(project).results as Array<{ unique_id: string; status: string }>;
    expect(results.length).toBeGreaterThan(8);
    expect(results.map((x) => `${x.unique_id} ${x.status}`)).toEqual(results.map((x) => `${x.unique_id} ${/^(unit_)?test\./.test(x.unique_id) ? 'pass' : 'success'}`));
    await withDb(dbPathOf(project), async (db) => {
      expect(await db.count('orders')).toBe(500);
      expect(await db.count('customers')).toBe(200);
    });
  });
});
