// The runner seen from outside: engine errors, skipped descendants,
// --fail-fast, atomic table rebuilds, Ctrl-C, and two builds on one file.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyTemplate, dbPathOf, etlYml, killAll, readJson, removeTempDirs, runCli, startCli, withDb, writeFiles, writeProject, readRunResults } from './helpers.js';

afterEach(async () => {
  await killAll();
  removeTempDirs();
});

const resultsById = (dir: string): Record<string, Record<string, any>> =>
  Object.fromEntries((readRunResults(dir).results as Array<Record<string, any>>).map((r) => [r.unique_id, r]));

/** project-template plus a child of orders and a table on the unrelated payments branch. */
function shopWithExtras(): string {
  const dir = copyTemplate();
  writeFiles(dir, {
    'models/marts/order_count.sql': 'select count(*) as n from {{ref "orders"}}\n',
    'models/marts/payment_methods.sql': 'select payment_method, count(*) as payments from {{ref "stg_payments"}} group by all\n',
  });
  return dir;
}

/** Makes orders select a column that does not exist: it fails in DuckDB's binder, not in our compiler. */
function BROKEN_ORDERS(dir: string): void {
  const sql = readFileSync(path.join(dir, 'models/marts/orders.sql'), 'utf8');
  const broken = sql.replace('    o.status,\n', '    o.no_such_column,\n');
  if (broken === sql) throw new Error('orders.sql no longer has the line this test breaks');
  writeFiles(dir, { 'models/marts/orders.sql': broken });
}

describe('a model failing in the engine', () => {
  it('exits 1 naming the model, the DuckDB error and the compiled file; skips its descendants; builds the unrelated branch', async () => {
    const dir = shopWithExtras();
    BROKEN_ORDERS(dir);
    const r = await runCli(['build', '--no-check'], { cwd: dir });
    expect(r.code, r.output).toBe(1);
    expect(r.stdout).toMatch(/ERROR table main\.orders /);
    expect(r.stdout).toMatch(/SKIP\s+table main\.order_count \.+ \[skipped: upstream orders failed\]/);
    expect(r.stdout).toMatch(/OK\s+table main\.payment_methods /);
    expect(r.stdout).toMatch(/OK\s+table main\.customers /);
    // The error block: which model, DuckDB's own message, where the compiled SQL is.
    expect(r.output).toMatch(/Error in model orders \(models\/marts\/orders\.sql\)/);
    expect(r.output).toMatch(/Binder Error: .*no_such_column/);
    expect(r.output).toMatch(/compiled SQL: target\/compiled\/shop\/models\/marts\/orders\.sql/);
    expect(r.stdout).toMatch(/\d+ failed/);

    const results = resultsById(dir);
    expect(results['model.shop.orders'].status).toBe('error');
    expect(results['model.shop.orders'].message).toMatch(/no_such_column/);
    expect(results['model.shop.order_count'].status).toBe('skipped');
    expect(results['model.shop.payment_methods'].status).toBe('success');
    expect(results['model.shop.customers'].status).toBe('success');
    // Tests on the failed model are skipped too (when build runs tests).
    const childMap = readJson(dir, 'target/manifest.json').child_map as Record<string, string[]>;
    for (const t of childMap['model.shop.orders']!.filter((c) => /^(unit_)?test\./.test(c))) expect(results[t]?.status, t).toBe('skipped');

    await withDb(dbPathOf(dir), async (db) => {
      const relations = await db.relations();
      expect(relations.orders).toBeUndefined();
      expect(relations.order_count).toBeUndefined();
      expect(relations.payment_methods).toBe('BASE TABLE');
      expect(await db.value('select sum(payments) from payment_methods')).toBe(602);
      expect(await db.count('customers')).toBe(200);
      expect(await db.tempRelations()).toEqual([]);
    });

    // The same failure with --log-format json: still only JSON on stdout, the error in a node_finished event.
    const json = await runCli(['build', '--no-check', '--log-format', 'json'], { cwd: dir });
    expect(json.code, json.output).toBe(1);
    const events = json.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, any>);
    const failed = events.find((e) => e.event === 'node_finished' && e.unique_id === 'model.shop.orders')!;
    expect(failed.status).toBe('error');
    expect(failed.message).toMatch(/no_such_column/);
    expect(failed.compiled_path).toBe('target/compiled/shop/models/marts/orders.sql');
    expect(events.find((e) => e.event === 'node_finished' && e.unique_id === 'model.shop.order_count')!.status).toBe('skipped');
    expect(events.at(-1)!.event).toBe('run_finished');
  });

  it('a table that fails on rebuild keeps its previous version, readable, and leaves no temp table', async () => {
    const dir = shopWithExtras();
    const ok = await runCli(['build'], { cwd: dir });
    expect(ok.code, ok.output).toBe(0);
    const before = await withDb(dbPathOf(dir), async (db) => ({
      orders: await db.rows('select * from orders order by order_id'),
      order_count: await db.rows('select * from order_count'),
    }));
    expect(before.orders).toHaveLength(500);

    BROKEN_ORDERS(dir);
    const r = await runCli(['build', '--no-check'], { cwd: dir });
    expect(r.code, r.output).toBe(1);
    expect(r.stdout).toMatch(/ERROR table main\.orders /);

    await withDb(dbPathOf(dir), async (db) => {
      expect(await db.rows('select * from orders order by order_id')).toEqual(before.orders);
      expect(await db.value("select count(*) from information_schema.columns where table_name = 'orders' and column_name = 'status'")).toBe(1);
      expect(await db.rows('select * from order_count')).toEqual(before.order_count);
      expect(await db.tempRelations()).toEqual([]);
    });
  });
});

// A model that runs until interrupted: ~10^12 rows of cross join.
const SLOW_SQL = 'select count(*) as v from range(1000000) a, range(1000000) b where (a.range * b.range) % 7 = 3\n';

describe('--fail-fast', () => {
  // z1..z3 wait on z_base, so with one thread at least a_fail runs before them, whatever the order.
  const project = () =>
    writeProject({
      'etl.yml': etlYml('ff', 'models:\n  materialized: table\n'),
      'models/a_fail.sql': 'select missing_col from (select 1 as x)\n',
      'models/z_base.sql': 'select 1 as x\n',
      'models/z1.sql': 'select * from {{ref "z_base"}}\n',
      'models/z2.sql': 'select * from {{ref "z_base"}}\n',
      'models/z3.sql': 'select * from {{ref "z_base"}}\n',
    });

  it('stops scheduling other nodes after the first failure', async () => {
    const dir = project();
    const r = await runCli(['build', '--no-check', '--fail-fast', '--threads', '1'], { cwd: dir });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/Error in model a_fail/);
    const results = resultsById(dir);
    expect(results['model.ff.a_fail'].status).toBe('error');
    for (const z of ['z1', 'z2', 'z3']) {
      expect(results[`model.ff.${z}`].status, z).toBe('skipped');
      expect(results[`model.ff.${z}`].message, z).toMatch(/fail-fast/);
    }
    expect(r.stdout).toMatch(/SKIP\s+table main\.z1 .*fail-fast/);
    await withDb(dbPathOf(dir), async (db) => {
      const relations = await db.relations();
      for (const z of ['z1', 'z2', 'z3']) expect(relations[z], z).toBeUndefined();
    });

    // Without --fail-fast the same project builds everything but a_fail.
    const all = await runCli(['build', '--no-check', '--threads', '1'], { cwd: dir });
    expect(all.code, all.output).toBe(1);
    await withDb(dbPathOf(dir), async (db) => {
      const relations = await db.relations();
      for (const z of ['z_base', 'z1', 'z2', 'z3']) expect(relations[z], z).toBe('BASE TABLE');
      expect(relations.a_fail).toBeUndefined();
    });
  });

  it('cancels a node running beside the failure and reports it skipped, not failed', async () => {
    const dir = writeProject({
      'etl.yml': etlYml('ff2', 'models:\n  materialized: table\n').replace('threads: 4 }', 'threads: 4, settings: { threads: 2 } }'),
      // Fails once its input exists, so the slow model has surely started by then.
      'models/a_input.sql': 'select 1 as x\n',
      'models/b_fail.sql': 'select missing_col from {{ref "a_input"}}\n',
      'models/big.sql': SLOW_SQL,
    });
    const p = startCli(['build', '--no-check', '--fail-fast'], { cwd: dir });
    const r = await p.exitWithin(30_000);
    expect(r.code, r.output).toBe(1);
    const results = resultsById(dir);
    expect(results['model.ff2.b_fail'].status).toBe('error');
    expect(results['model.ff2.big'].status).toBe('skipped');
    expect(results['model.ff2.big'].message).toMatch(/fail-fast/);
    expect(r.stdout).toMatch(/1 succeeded, 1 failed, 1 skipped/);
    expect(r.output).not.toMatch(/Error in model big/);
    await withDb(dbPathOf(dir), async (db) => {
      const relations = await db.relations();
      expect(relations.big).toBeUndefined();
      expect(await db.tempRelations()).toEqual([]);
    });
  });
});


function slowProject(): string {
  return writeProject({
    'etl.yml': etlYml('slow', 'models:\n  materialized: table\n').replace('threads: 4 }', 'threads: 4, settings: { threads: 2 } }'),
    'models/big.sql': 'select 42 as v union all select 43 as v\n',
    'models/after_big.sql': 'select sum(v) as total from {{ref "big"}}\n',
    'models/other.sql': 'select 1 as x\n',
  });
}

describe('Ctrl-C', () => {
  it('sent as soon as the run starts: exits 130 at once, keeps the previous table, leaves no temp table', async () => {
    const dir = slowProject();
    const first = await runCli(['build'], { cwd: dir });
    expect(first.code, first.output).toBe(0);
    writeFiles(dir, { 'models/big.sql': SLOW_SQL });

    // A few times: the signal lands at slightly different moments of a node's start.
    for (let attempt = 0; attempt < 3; attempt++) {
      const p = startCli(['build', '--log-format', 'json'], { cwd: dir });
      await p.waitForOutput(/"event":"run_started"/);
      p.child.kill('SIGINT');
      const r = await p.exitWithin(20_000);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(130);
      expect(r.stdout).toMatch(/"event":"run_finished"[^\n]*"interrupted":true/);
      const results = resultsById(dir);
      // Skipped when the signal came before big started, interrupted when after: the build's own events say which.
      const bigStarted = /"event":"node_started"[^\n]*"model\.slow\.big"/.test(r.stdout);
      expect(results['model.slow.big'].status).toBe(bigStarted ? 'error' : 'skipped');
      expect(results['model.slow.big'].message).toMatch(/interrupt/i);
      expect(results['model.slow.after_big'].status).toBe('skipped');
      await withDb(dbPathOf(dir), async (db) => {
        expect(await db.rows('select v from big order by v')).toEqual([{ v: 42 }, { v: 43 }]);
        expect(await db.rows('select total from after_big')).toEqual([{ total: 85 }]);
        expect(await db.tempRelations()).toEqual([]);
      });
    }
  });

  it('sent mid-statement: interrupts it, exits 130, keeps the previous table and leaves no temp table', async () => {
    const dir = slowProject();
    const first = await runCli(['build'], { cwd: dir });
    expect(first.code, first.output).toBe(0);

    writeFiles(dir, { 'models/big.sql': SLOW_SQL });
    // ETL_TRACE_SQL prints each statement once it is done: the one before big's slow
    // create-table-as is the drop of its temporary name, and the next is sent at once.
    const p = startCli(['build'], { cwd: dir, env: { ETL_TRACE_SQL: '1' } });
    await p.waitForOutput(/\] drop table if exists "main"\."big__etl_tmp"/);
    expect(p.exited).toBe(false);
    p.child.kill('SIGINT');
    const r = await p.exitWithin(20_000);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(130);
    expect(r.stdout).toMatch(/interrupt/i);
    expect(r.stdout).toMatch(/Interrupted after/);

    const results = resultsById(dir);
    expect(results['model.slow.big'].status).toBe('error');
    expect(results['model.slow.big'].message).toMatch(/interrupt/i);
    expect(results['model.slow.after_big'].status).toBe('skipped');

    await withDb(dbPathOf(dir), async (db) => {
      expect(await db.rows('select v from big order by v')).toEqual([{ v: 42 }, { v: 43 }]);
      expect(await db.rows('select total from after_big')).toEqual([{ total: 85 }]);
      expect(await db.tempRelations()).toEqual([]);
    });
  });
});

describe('two builds on one DuckDB file', () => {
  it('the second fails at once with "locked by pid" and exit 1', async () => {
    const dir = slowProject();
    writeFiles(dir, { 'models/big.sql': SLOW_SQL });
    const a = startCli(['build'], { cwd: dir });
    await a.waitForOutput(/OK\s+table main\.other/);

    const b = await runCli(['build'], { cwd: dir, timeoutMs: 30_000 });
    expect(a.exited, 'the first build should still be running').toBe(false);
    expect(b.code, b.output).toBe(1);
    expect(b.stderr).toMatch(new RegExp(`locked by pid ${a.child.pid}`));
    expect(b.stderr).toContain(dbPathOf(dir));
    expect(b.stdout).not.toMatch(/Running \d+ nodes/);

    a.child.kill('SIGINT');
    const ra = await a.exitWithin(20_000);
    expect(ra.code).toBe(130);
  });
});
