// One table of end-to-end scenarios, run through the built CLI against DuckDB
// and against the real Postgres (127.0.0.1:5432, database test; ETL_PG_URL
// overrides), side by side: the same project files, the same commands and the
// same expected rows on both engines. Each scenario builds into its own
// schema (etl_t_<random>) in its own temporary folder, both removed after.
// At the end, what every scenario recorded on DuckDB is compared with what it
// recorded on Postgres.
//
// Then, Postgres only: a backend killed under a running model (retries), and
// a second concurrent build on the same schema (the advisory lock).

import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MIGRATIONS } from '../../adapters/sql-state.js';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PG_URL,
  assertCliBuilt,
  copyTemplate,
  dbPathOf,
  dropPgSchema,
  killAll,
  makeTempDir,
  newPgSchema,
  pgConnect,
  pgQuoteIdent,
  readJson,
  removeTempDirs,
  runCli,
  startCli,
  waitForBackend,
  withDb,
  writeFiles,
  type CliResult,
  readRunResults,
} from './helpers.js';

type EngineName = 'duckdb' | 'postgres';
type TextRow = Array<string | null>;

let admin: pg.Client;

beforeAll(async () => {
  assertCliBuilt();
  admin = await pgConnect();
});

afterAll(async () => {
  await killAll();
  removeTempDirs();
  await admin?.end();
});

// ---------------------------------------------------------------------------
// A project on one engine

const schemasToDrop: string[] = [];

afterEach(async () => {
  await killAll();
  removeTempDirs();
  for (const schema of schemasToDrop.splice(0)) await dropPgSchema(admin, schema);
});

class Project {
  readonly schema = newPgSchema();
  readonly dir: string;

  constructor(
    readonly engine: EngineName,
    readonly name: string,
    files: Record<string, string>,
    options: { dir?: string; models?: string } = {},
  ) {
    this.dir = options.dir ?? path.join(makeTempDir(`etl-parity-${engine}-`), name);
    if (engine === 'postgres') schemasToDrop.push(this.schema);
    // A project copied in (options.dir) keeps its own etl.yml.
    writeFiles(this.dir, { ...(options.dir ? {} : { 'etl.yml': this.etlYml(options.models ?? '') }), ...files });
  }

  /** The target block; both engines are target `dev`, so the commands are the same. */
  targetYml(): string {
    return this.engine === 'duckdb'
      ? `dev: { type: duckdb, path: target/dev.duckdb, schema: ${this.schema}, threads: 4 }`
      : `dev: { type: postgres, url: "${PG_URL}", schema: ${this.schema}, threads: 4 }`;
  }

  etlYml(extra: string): string {
    return `name: ${this.name}\nversion: 1\ntarget: dev\ntargets:\n  ${this.targetYml()}\n${extra}`;
  }

  etl(...args: string[]): Promise<CliResult> {
    return runCli([...args, '--project-dir', this.dir], { cwd: this.dir });
  }

  write(files: Record<string, string>): void {
    writeFiles(this.dir, files);
  }

  rel(name: string): string {
    return `${pgQuoteIdent(this.schema)}.${pgQuoteIdent(name)}`;
  }

  /** Rows of `sql`, every value as the engine prints it as text (null stays null), sorted. */
  async rows(sql: string): Promise<TextRow[]> {
    let rows: TextRow[];
    if (this.engine === 'duckdb') {
      rows = await withDb(dbPathOf(this.dir), async (db) => {
        const reader = await db.connection.runAndReadAll(`select cast(columns(*) as varchar) from (\n${sql}\n) as etl_cmp`);
        return reader.getRowsJS() as TextRow[];
      });
    } else {
      rows = (await admin.query<TextRow>({ text: sql, rowMode: 'array' })).rows;
    }
    return sortRows(rows);
  }

  async value(sql: string): Promise<string | null> {
    const rows = await this.rows(sql);
    if (rows.length !== 1 || rows[0]!.length !== 1) throw new Error(`expected one value from ${sql}, got ${JSON.stringify(rows)}`);
    return rows[0]![0]!;
  }

  /** name -> 'BASE TABLE' | 'VIEW' of every relation in the project's schema. */
  async relations(): Promise<Record<string, string>> {
    const rows = await this.rows(`select table_name, table_type from information_schema.tables where table_schema = '${this.schema}'`);
    return Object.fromEntries(rows.map((r) => [r[0]!, r[1]!]));
  }

  async tempRelations(): Promise<string[]> {
    const rows = await this.rows(`select table_name from information_schema.tables where table_schema = '${this.schema}' and table_name like '%\\_\\_etl%' escape '\\'`);
    return rows.map((r) => r[0]!);
  }

  results(): Map<string, RunResult> {
    const rr = readRunResults<{ results: RunResult[] }>(this.dir);
    return new Map(rr.results.map((r) => [r.unique_id, r]));
  }

  result(id: string): RunResult {
    const r = this.results().get(id);
    if (!r) throw new Error(`${id} is not in run_results.json`);
    return r;
  }
}

interface RunResult {
  unique_id: string;
  status: string;
  message: string;
  rows_affected: number | null;
  failures: number | null;
  compiled_path: string | null;
  quarantined?: number;
  batch_results?: { successful: Array<[string, string]>; failed: Array<[string, string]> };
}

function sortRows(rows: TextRow[]): TextRow[] {
  return [...rows].sort((a, b) => {
    const x = JSON.stringify(a);
    const y = JSON.stringify(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

function ok(r: CliResult): CliResult {
  expect(r.code, r.output).toBe(0);
  return r;
}

/** What each scenario saw, per engine, for the side-by-side comparison at the end. */
const recorded: Record<EngineName, Map<string, unknown>> = { duckdb: new Map(), postgres: new Map() };

function record(engine: EngineName, key: string, value: unknown): void {
  recorded[engine].set(key, value);
}

// ---------------------------------------------------------------------------
// The template's expected numbers, computed from its seed CSVs

function templateTotals(dir: string, startDate = '2024-01-01') {
  const csv = (name: string) =>
    readFileSync(path.join(dir, 'seeds', name), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
  const customers = csv('raw_customers.csv');
  const orders = csv('raw_orders.csv');
  const payments = csv('raw_payments.csv');
  const kept = new Set(orders.filter((o) => o[2]! >= startDate).map((o) => o[0]!));
  let cents = 0n;
  let keptCents = 0n;
  for (const p of payments) {
    cents += BigInt(p[3]!);
    if (kept.has(p[1]!)) keptCents += BigInt(p[3]!);
  }
  const money = (c: bigint) => `${c / 100n}.${String(c % 100n).padStart(2, '0')}`;
  return { customers: customers.length, orders: orders.length, keptOrders: kept.size, payments: payments.length, cents: String(cents), amount: money(keptCents) };
}

// ---------------------------------------------------------------------------

describe.each([['duckdb'], ['postgres']] as Array<[EngineName]>)('%s', (engine) => {
  it('project-template: seeds, views, tables and data tests of every kind, with the same counts and sums', async () => {
    const dir = copyTemplate();
    const p = new Project(engine, 'shop', {}, { dir });
    const yml = readFileSync(path.join(dir, 'etl.yml'), 'utf8').replace(/^ {2}dev: .*$/m, `  ${p.targetYml()}`);
    writeFileSync(path.join(dir, 'etl.yml'), yml);
    const r = ok(await p.etl('build'));
    expect(r.stderr.trim()).toBe('');

    const results = p.results();
    type Node = { resource_type: string; name: string; test_metadata?: { name: string } };
    const manifest = readJson<{ nodes: Record<string, Node>; unit_tests: Record<string, Node> }>(dir, 'target/manifest.json');
    const tests = Object.entries({ ...manifest.nodes, ...manifest.unit_tests }).filter(([, n]) => n.resource_type === 'test' || n.resource_type === 'unit_test');
    const kinds = new Set(tests.map(([, n]) => (n.resource_type === 'unit_test' ? 'unit' : n.test_metadata ? n.test_metadata.name : 'singular')));
    // generic (built in and the project's own is_positive), singular and unit tests
    expect([...kinds].sort()).toEqual(['accepted_values', 'expression_is_true', 'is_positive', 'not_null', 'relationships', 'row_count', 'singular', 'unique', 'unit'].sort());
    for (const [id] of tests) expect(results.get(id)?.status, id).toBe('pass');
    for (const [id, res] of results) if (!/^(unit_)?test\./.test(id)) expect(res.status, `${id}: ${res.message}`).toBe('success');

    const relations = await p.relations();
    expect(relations).toEqual({
      customers: 'BASE TABLE',
      orders: 'BASE TABLE',
      raw_customers: 'BASE TABLE',
      raw_orders: 'BASE TABLE',
      raw_payments: 'BASE TABLE',
      stg_customers: 'VIEW',
      stg_orders: 'VIEW',
      stg_payments: 'VIEW',
    });
    const want = templateTotals(dir);
    const counts = await p.rows(
      `select ${['raw_customers', 'raw_orders', 'raw_payments', 'stg_customers', 'stg_orders', 'stg_payments', 'customers', 'orders'].map((t) => `(select count(*) from ${p.rel(t)})`).join(', ')}`,
    );
    expect(counts).toEqual([[want.customers, want.orders, want.payments, want.customers, want.keptOrders, want.payments, want.customers, want.keptOrders].map(String)]);
    const sums = await p.rows(
      `select (select sum(amount_cents) from ${p.rel('raw_payments')}), (select sum(amount) from ${p.rel('orders')}), (select sum(lifetime_value) from ${p.rel('customers')}), ` +
        `(select sum(number_of_orders) from ${p.rel('customers')}), (select count(*) from ${p.rel('orders')} where credit_card_amount + bank_transfer_amount + gift_card_amount + paypal_amount <> amount)`,
    );
    expect(sums).toEqual([[want.cents, want.amount, want.amount, String(want.keptOrders), '0']]);
    record(engine, 'template', { relations, counts, sums, tests: tests.length, kinds: [...kinds].sort() });
  });

  // #9 item 5: the SQL of a model or a test is wrapped as a subquery in many places (show, a
  // test's count, a unit test, a batch, an inlined ephemeral); a trailing `;` must not break any.
  it('a trailing semicolon in models, singular tests and unit-tested models works: build, test, show', async () => {
    const p = new Project(engine, 'semi', {
      'seeds/nums.csv': 'id,v\n1,1\n2,2\n3,3\n',
      'models/semi_view.sql': 'select id, v from {{ref "nums"}};\n',
      'models/semi_eph.sql': '{{config materialized="ephemeral"}}\nselect id, v * 10 as v10 from {{ref "nums"}}; -- done\n',
      'models/semi_table.sql': '{{config materialized="table"}}\nselect s.id, e.v10 from {{ref "semi_view"}} as s join {{ref "semi_eph"}} as e on e.id = s.id;\n-- the end\n',
      'models/schema.yml': `unit_tests:
  - name: semi_table_doubles
    model: semi_table
    given:
      - { input: ref('semi_view'), rows: [{ id: 1, v: 1 }] }
      - { input: ref('semi_eph'), rows: [{ id: 1, v10: 5 }] }
    expect: { rows: [{ id: 1, v10: 5 }] }
`,
      'tests/semi_no_negative.sql': 'select * from {{ref "semi_table"}} where v10 < 0;\n',
      'tests/semi_one_row.sql': 'select * from {{ref "semi_table"}} where id = 1;  \n\n',
    });
    const r = await p.etl('build');
    expect(r.code, r.output).toBe(1);
    const results = p.results();
    for (const [id, res] of results) {
      if (id.endsWith('semi_one_row')) expect(res).toMatchObject({ status: 'fail', failures: 1 });
      else expect(res.status, `${id}: ${res.message}`).toMatch(/^(success|pass)$/);
    }
    expect(results.size).toBe(6);
    expect(await p.rows(`select id, v10 from ${p.rel('semi_table')}`)).toEqual([['1', '10'], ['2', '20'], ['3', '30']]);
    const shown = ok(await p.etl('show', '-s', 'semi_table', '--limit', '2', '--log-format', 'json'));
    expect(shown.stdout).toMatch(/"v10"/);
    const inline = ok(await p.etl('show', '--inline', 'select 42 as answer;', '--log-format', 'json'));
    expect(inline.stdout).toMatch(/42/);
  });

  it('ephemeral models are inlined as CTEs (chained, and merged into a WITH) and never built', async () => {
    const p = new Project(engine, 'eph', {
      'seeds/nums.csv': 'id,v\n1,1\n2,2\n3,3\n',
      'models/eph.sql': '{{config materialized="ephemeral"}}\nselect id, v * 2 as v2 from {{ref "nums"}}\n',
      'models/eph2.sql': '{{config materialized="ephemeral"}}\nselect id, v2 + 1 as v3 from {{ref "eph"}}\n',
      'models/uses_eph.sql': '{{config materialized="table"}}\nwith big as (select * from {{ref "eph2"}} where v3 > 3)\nselect big.id, big.v3, e.v2 from big join {{ref "eph"}} as e on e.id = big.id\n',
    });
    ok(await p.etl('build'));
    expect(await p.relations()).toEqual({ nums: 'BASE TABLE', uses_eph: 'BASE TABLE' });
    const rows = await p.rows(`select * from ${p.rel('uses_eph')}`);
    expect(rows).toEqual([
      ['2', '5', '4'],
      ['3', '7', '6'],
    ]);
    record(engine, 'ephemeral', rows);
  });

  it('incremental append, merge and delete+insert over two builds, row by row; on_schema_change sync_all_columns retypes a column, ignore casts new values', async () => {
    const body = 'select * from {{ref "events"}}\n{{#if is_incremental}}where updated_at > (select max(updated_at) from {{this}}){{/if}}\n';
    const sync = (code: string) =>
      `{{config materialized="incremental" unique_key="id" on_schema_change="sync_all_columns"}}\nselect id, ${code} as code, updated_at from {{ref "events"}}\n{{#if is_incremental}}where updated_at > (select max(updated_at) from {{this}}){{/if}}\n`;
    // on_schema_change ignore: the column keeps its type and the new values are cast into it.
    const ignore = (type: string) =>
      `{{config materialized="incremental" incremental_strategy="merge" unique_key="id"}}\nselect id, cast(amount as ${type}) as amount, updated_at from {{ref "events"}}\n{{#if is_incremental}}where updated_at > (select max(updated_at) from {{this}}){{/if}}\n`;
    const p = new Project(engine, 'inc', {
      'seeds/events.csv': 'id,grp,amount,updated_at,active\n1,a,10,2024-01-01 00:00:00,true\n2,a,20,2024-01-02 00:00:00,false\n3,b,30,2024-01-03 00:00:00,true\n',
      'models/inc_append.sql': `{{config materialized="incremental"}}\n${body}`,
      'models/inc_merge.sql': `{{config materialized="incremental" incremental_strategy="merge" unique_key="id"}}\n${body}`,
      'models/inc_di.sql': `{{config materialized="incremental" incremental_strategy="delete+insert" unique_key=(list "grp" "id")}}\n${body}`,
      'models/inc_sync.sql': sync('cast(id * 10 as varchar)'),
      'models/inc_ignore.sql': ignore('integer'),
    });
    ok(await p.etl('build'));
    const v1 = [
      ['1', 'a', '10', '2024-01-01 00:00:00', 'true'],
      ['2', 'a', '20', '2024-01-02 00:00:00', 'false'],
      ['3', 'b', '30', '2024-01-03 00:00:00', 'true'],
    ];
    for (const m of ['inc_append', 'inc_merge', 'inc_di']) expect(await p.rows(`select * from ${p.rel(m)}`), m).toEqual(v1);

    // id 2 changes (a later updated_at), id 4 is new.
    p.write({
      'seeds/events.csv': 'id,grp,amount,updated_at,active\n1,a,10,2024-01-01 00:00:00,true\n2,a,25,2024-02-01 00:00:00,true\n3,b,30,2024-01-03 00:00:00,true\n4,b,40,2024-02-02 00:00:00,false\n',
      'models/inc_sync.sql': sync('cast(id * 10 as integer)'),
      'models/inc_ignore.sql': ignore('varchar'),
    });
    ok(await p.etl('build'));
    const changed = [
      ['2', 'a', '25', '2024-02-01 00:00:00', 'true'],
      ['4', 'b', '40', '2024-02-02 00:00:00', 'false'],
    ];
    const seen: Record<string, unknown> = {};
    expect(await p.rows(`select * from ${p.rel('inc_append')}`)).toEqual(sortRows([...v1, ...changed]));
    for (const m of ['inc_merge', 'inc_di']) expect(await p.rows(`select * from ${p.rel(m)}`), m).toEqual(sortRows([v1[0]!, v1[2]!, ...changed]));
    for (const [m, verb] of [
      ['inc_append', 'APPEND'],
      ['inc_merge', 'MERGE'],
      ['inc_di', 'DELETE+INSERT'],
    ] as const) {
      const r = p.result(`model.inc.${m}`);
      expect(r.status, r.message).toBe('success');
      expect(r.rows_affected, m).toBe(2);
      expect(r.message).toMatch(new RegExp(`^${verb.replace('+', '\\+')} \\(2 rows`));
      seen[m] = await p.rows(`select * from ${p.rel(m)}`);
    }
    // text -> integer: DuckDB casts implicitly, Postgres needs `using`.
    const sr = p.result('model.inc.inc_sync');
    expect(sr.status, sr.message).toBe('success');
    expect(sr.message).toMatch(/1 column change/);
    expect(await p.rows(`select id, code, code + 1 from ${p.rel('inc_sync')}`)).toEqual(sortRows([['1', '10', '11'], ['2', '20', '21'], ['3', '30', '31'], ['4', '40', '41']]));
    const codeType = await p.value(`select data_type from information_schema.columns where table_schema = '${p.schema}' and table_name = 'inc_sync' and column_name = 'code'`);
    expect(codeType!.toLowerCase()).toBe('integer');
    expect(p.result('model.inc.inc_ignore').status).toBe('success');
    expect(await p.rows(`select id, amount, amount + 1 from ${p.rel('inc_ignore')}`), 'inc_ignore').toEqual(sortRows([['1', '10', '11'], ['2', '25', '26'], ['3', '30', '31'], ['4', '40', '41']]));
    expect((await p.value(`select data_type from information_schema.columns where table_schema = '${p.schema}' and table_name = 'inc_ignore' and column_name = 'amount'`))!.toLowerCase()).toBe('integer');
    expect(await p.tempRelations()).toEqual([]);
    record(engine, 'incremental', seen);
  });

  // The incremental run's watermark statement reads only rows at or above the
  // staged maximum (adapters/sql-state.ts, the watermark record): it must still be the table's exact maximum.
  it('the watermark after incremental runs is the table max: also when a late correction replaces the max row with an older one; no new rows leave it as it was', async () => {
    const csv = (rows: Array<[number, string, boolean]>) => `id,updated_at,changed\n${rows.map(([id, ts, c]) => `${id},${ts},${c}`).join('\n')}\n`;
    const p = new Project(engine, 'wm', {
      'models/inc.sql': '{{config materialized="incremental" unique_key="id" event_time="updated_at"}}\nselect id, updated_at from {{ref "src"}}\n{{#if is_incremental}}where changed{{/if}}\n',
      'seeds/src.csv': csv([[1, '2024-01-01 00:00:00', false], [2, '2024-01-05 00:00:00', false], [3, '2024-01-03 00:00:00', false]]),
    });
    const watermark = () => p.value(`select watermark from etl_meta.watermarks where relation = '${p.schema}.inc'`);
    ok(await p.etl('build'));
    expect(await watermark()).toBe('2024-01-05 00:00:00');

    // Row 2 (the max) corrected to an older time: the new max is row 3's.
    p.write({ 'seeds/src.csv': csv([[1, '2024-01-01 00:00:00', false], [2, '2024-01-02 00:00:00', true], [3, '2024-01-03 00:00:00', false]]) });
    ok(await p.etl('build'));
    expect(p.result('model.wm.inc').message).toMatch(/^MERGE \(1 rows/);
    expect(await p.value(`select cast(max(updated_at) as varchar) from ${p.rel('inc')}`)).toBe('2024-01-03 00:00:00');
    expect(await watermark()).toBe('2024-01-03 00:00:00');

    // Nothing new: the watermark stays (not NULL).
    p.write({ 'seeds/src.csv': csv([[1, '2024-01-01 00:00:00', false], [2, '2024-01-02 00:00:00', false], [3, '2024-01-03 00:00:00', false]]) });
    ok(await p.etl('build'));
    expect(p.result('model.wm.inc').message).toMatch(/^MERGE \(0 rows/);
    expect(await watermark()).toBe('2024-01-03 00:00:00');

    // A new latest row moves it.
    p.write({ 'seeds/src.csv': csv([[1, '2024-01-01 00:00:00', false], [4, '2024-02-01 00:00:00', true]]) });
    ok(await p.etl('build'));
    expect(await watermark()).toBe('2024-02-01 00:00:00');
  });

  it('incremental insert_overwrite replaces exactly the partitions the new rows touch, a NULL partition included', async () => {
    const sales = (rows: string[]) => `id,day,amount\n${rows.join('\n')}\n`;
    const p = new Project(engine, 'io', {
      'seeds/sales.csv': sales(['1,2024-01-01,10', '2,2024-01-02,20', '3,2024-01-03,30', '4,,7']),
      // Each run reads the latest day and the undated rows again: their partitions are replaced, the others kept.
      'models/daily.sql':
        '{{config materialized="incremental" incremental_strategy="insert_overwrite" partition_by="day"}}\nselect day, sum(amount) as total, count(*) as n from {{ref "sales"}}\n{{#if is_incremental}}where day is null or day >= (select max(day) from {{this}}){{/if}}\ngroup by day\n',
    });
    ok(await p.etl('build'));
    // Day 1 is changed in the seed but not re-read (its partition is not touched); day 3 and the NULL day are replaced; day 4 is new.
    p.write({ 'seeds/sales.csv': sales(['1,2024-01-01,99', '2,2024-01-02,20', '3,2024-01-03,30', '5,2024-01-03,5', '6,2024-01-04,40', '4,,7', '7,,1']) });
    ok(await p.etl('build'));
    expect(p.result('model.io.daily').message).toMatch(/^INSERT_OVERWRITE \(3 rows/);
    const rows = await p.rows(`select cast(day as varchar), total, n from ${p.rel('daily')}`);
    expect(rows).toEqual([
      ['2024-01-01', '10', '1'],
      ['2024-01-02', '20', '1'],
      ['2024-01-03', '35', '2'],
      ['2024-01-04', '40', '1'],
      [null, '8', '2'],
    ]);
    record(engine, 'insert_overwrite', rows);
  });

  it('microbatch backfills exactly --event-time-start..--event-time-end, batch by batch', async () => {
    const p = new Project(engine, 'mb', {
      'seeds/events.csv': 'id,ts,v\n1,2024-01-01 06:00:00,10\n2,2024-01-02 06:00:00,20\n3,2024-01-02 18:00:00,30\n4,2024-01-03 06:00:00,40\n5,2024-01-04 06:00:00,50\n',
      'models/mb.sql': '{{config materialized="incremental" incremental_strategy="microbatch" event_time="ts" batch_size="day" begin="2024-01-01"}}\nselect id, ts, v from {{ref "events"}}\n',
    });
    ok(await p.etl('build', '--event-time-start', '2024-01-02', '--event-time-end', '2024-01-04'));
    const r1 = p.result('model.mb.mb');
    expect(r1.batch_results).toEqual({
      successful: [
        ['2024-01-02 00:00:00', '2024-01-03 00:00:00'],
        ['2024-01-03 00:00:00', '2024-01-04 00:00:00'],
      ],
      failed: [],
    });
    expect(r1.message).toMatch(/^MICROBATCH \(2 batches, 3 rows\)/);
    expect(await p.rows(`select id, ts, v from ${p.rel('mb')}`)).toEqual([
      ['2', '2024-01-02 06:00:00', '20'],
      ['3', '2024-01-02 18:00:00', '30'],
      ['4', '2024-01-03 06:00:00', '40'],
    ]);

    // Day 2 changes (an update and a late row), and so does day 1; only day 2 is backfilled.
    p.write({ 'seeds/events.csv': 'id,ts,v\n1,2024-01-01 06:00:00,11\n2,2024-01-02 06:00:00,20\n3,2024-01-02 18:00:00,33\n6,2024-01-02 12:00:00,60\n4,2024-01-03 06:00:00,40\n5,2024-01-04 06:00:00,50\n' });
    ok(await p.etl('build', '--event-time-start', '2024-01-02', '--event-time-end', '2024-01-03'));
    expect(p.result('model.mb.mb').message).toMatch(/^MICROBATCH \(1 batch, 3 rows\)/);
    const rows = await p.rows(`select id, ts, v from ${p.rel('mb')}`);
    expect(rows).toEqual([
      ['2', '2024-01-02 06:00:00', '20'],
      ['3', '2024-01-02 18:00:00', '33'],
      ['4', '2024-01-03 06:00:00', '40'],
      ['6', '2024-01-02 12:00:00', '60'],
    ]);
    const batches = await p.rows(`select batch_start, batch_end, status from etl_meta.batches where relation = '${p.schema}.mb'`);
    expect(batches).toEqual([
      ['2024-01-02 00:00:00', '2024-01-03 00:00:00', 'success'],
      ['2024-01-03 00:00:00', '2024-01-04 00:00:00', 'success'],
    ]);
    record(engine, 'microbatch', { rows, batches });
  });

  it('snapshots (timestamp with invalidate, check with new_record) through an update, a new row and a delete', async () => {
    const customers = (rows: string) => `id,name,tier,updated_at\n${rows}`;
    const p = new Project(engine, 'snap', {
      'seeds/customers.csv': customers('1,ann,gold,2024-01-01 00:00:00\n2,bob,silver,2024-01-01 00:00:00\n3,cy,bronze,2024-01-01 00:00:00\n'),
      'snapshots/snap_ts.sql': '{{config unique_key="id" strategy="timestamp" updated_at="updated_at" hard_deletes="invalidate"}}\nselect * from {{ref "customers"}}\n',
      'snapshots/snap_check.sql': '{{config unique_key="id" strategy="check" check_cols=(list "name" "tier") hard_deletes="new_record"}}\nselect * from {{ref "customers"}}\n',
    });
    ok(await p.etl('build'));
    expect(p.result('snapshot.snap.snap_ts').rows_affected).toBe(3);
    expect(p.result('snapshot.snap.snap_check').rows_affected).toBe(3);

    // bob is updated, cy deleted, dee new.
    p.write({ 'seeds/customers.csv': customers('1,ann,gold,2024-01-01 00:00:00\n2,bobby,gold,2024-02-01 00:00:00\n4,dee,silver,2024-02-02 00:00:00\n') });
    ok(await p.etl('build'));
    const ts = await p.rows(`select id, name, tier, cast(etl_valid_from as varchar), etl_valid_to is null, etl_updated_at = cast(updated_at as timestamp) from ${p.rel('snap_ts')}`);
    expect(ts).toEqual(
      sortRows([
        ['1', 'ann', 'gold', '2024-01-01 00:00:00', 'true', 'true'],
        ['2', 'bob', 'silver', '2024-01-01 00:00:00', 'false', 'true'],
        ['2', 'bobby', 'gold', '2024-02-01 00:00:00', 'true', 'true'],
        ['3', 'cy', 'bronze', '2024-01-01 00:00:00', 'false', 'true'],
        ['4', 'dee', 'silver', '2024-02-02 00:00:00', 'true', 'true'],
      ]),
    );
    // The closed version of bob ends where the new one starts.
    expect(await p.value(`select cast(etl_valid_to as varchar) from ${p.rel('snap_ts')} where id = 2 and name = 'bob'`)).toBe('2024-02-01 00:00:00');
    const check = await p.rows(`select id, name, etl_valid_to is null, etl_is_deleted from ${p.rel('snap_check')}`);
    expect(check).toEqual(
      sortRows([
        ['1', 'ann', 'true', 'false'],
        ['2', 'bob', 'false', 'false'],
        ['2', 'bobby', 'true', 'false'],
        ['3', 'cy', 'false', 'false'],
        ['3', 'cy', 'true', 'true'],
        ['4', 'dee', 'true', 'false'],
      ]),
    );
    for (const s of ['snap_ts', 'snap_check']) {
      expect(await p.rows(`select etl_scd_id from ${p.rel(s)} group by etl_scd_id having count(*) > 1`), `${s}: duplicate etl_scd_id`).toEqual([]);
    }
    // A third build with nothing changed adds nothing.
    ok(await p.etl('build'));
    expect(p.result('snapshot.snap.snap_ts').rows_affected).toBe(0);
    expect(p.result('snapshot.snap.snap_check').rows_affected).toBe(0);
    expect(await p.rows(`select id, name, etl_valid_to is null from ${p.rel('snap_ts')}`)).toEqual(ts.map((r) => [r[0]!, r[1]!, r[4]!]));
    expect(await p.tempRelations()).toEqual([]);
    record(engine, 'snapshots', { ts, check });
  });

  it('a contract failure fails the model and leaves the previous table as it was', async () => {
    const yml = (nameType: string) =>
      `models:\n  - name: c\n    config: { contract: { enforced: true } }\n    columns:\n      - { name: id, data_type: int }\n      - { name: name, data_type: ${nameType} }\n`;
    const p = new Project(engine, 'con', {
      'seeds/src.csv': 'id,name\n1,a\n2,b\n',
      'models/c.sql': '{{config materialized="table"}}\nselect cast(id as integer) as id, cast(name as varchar(20)) as name from {{ref "src"}}\n',
      'models/schema.yml': yml('text'),
    });
    ok(await p.etl('build'));
    const before = await p.rows(`select * from ${p.rel('c')}`);
    expect(before).toEqual([
      ['1', 'a'],
      ['2', 'b'],
    ]);
    appendFileSync(path.join(p.dir, 'seeds/src.csv'), '3,c\n');
    p.write({ 'models/schema.yml': yml('integer') });
    const r = await p.etl('build', '--no-check');
    expect(r.code, r.output).toBe(1);
    expect(p.result('seed.con.src').status).toBe('success');
    expect(p.result('model.con.c').status).toBe('error');
    expect(r.stdout).toMatch(/contract of c is not met; the previous version is kept/);
    expect(r.stdout).toMatch(/\|\s*name\s*\|\s*integer\s*\|\s*(VARCHAR|character varying\(20\))\s*\|\s*MISMATCH\s*\|/);
    expect(await p.rows(`select * from ${p.rel('c')}`)).toEqual(before);
    expect(await p.rows(`select * from ${p.rel('src')}`)).toHaveLength(3);
    expect(await p.tempRelations()).toEqual([]);
    record(engine, 'contract', before);
  });

  it('quarantine moves the rows failing row-level tests to <model>__quarantine and publishes the rest', async () => {
    const p = new Project(
      engine,
      'quar',
      {
        'seeds/raw_orders.csv': 'order_id,customer_id,status,amount\n1,1,placed,10\n2,2,shipped,20\n3,1,bogus,30\n4,,placed,40\n5,3,placed,-5\n6,2,returned,60\n',
        'seeds/customers.csv': 'id,name\n1,a\n2,b\n3,c\n',
        'seeds/raw_payments.csv': 'payment_id,customer_id\n1,1\n2,9\n3,2\n',
        'models/orders.sql': 'select * from {{ref "raw_orders"}}\n',
        'models/payments.sql': 'select * from {{ref "raw_payments"}}\n',
        'models/schema.yml': `models:
  - name: orders
    config: { quarantine: true }
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
`,
      },
      { models: 'models:\n  materialized: table\n' },
    );
    const r = ok(await p.etl('build'));
    expect(p.result('model.quar.orders')).toMatchObject({ status: 'success', quarantined: 3, rows_affected: 3 });
    expect(p.result('model.quar.payments')).toMatchObject({ status: 'success', quarantined: 1, rows_affected: 2 });
    for (const [id, res] of p.results()) if (/^(unit_)?test\./.test(id)) expect(res.status, id).toBe('pass');
    expect(r.stdout).toMatch(/3 rows, 3 quarantined/);
    const orders = await p.rows(`select order_id from ${p.rel('orders')}`);
    expect(orders).toEqual([['1'], ['2'], ['6']]);
    const quarantined = await p.rows(`select order_id, customer_id, status, amount, etl_failed_tests, etl_quarantined_at is not null from ${p.rel('orders__quarantine')}`);
    expect(quarantined).toEqual([
      ['3', '1', 'bogus', '30', 'accepted_values(status)', 'true'],
      ['4', null, 'placed', '40', 'not_null(customer_id)', 'true'],
      ['5', '3', 'placed', '-5', 'expression_is_true', 'true'],
    ]);
    expect(await p.rows(`select payment_id, customer_id, etl_failed_tests from ${p.rel('payments__quarantine')}`)).toEqual([['2', '9', 'relationships(customer_id)']]);
    const runId = readRunResults<{ metadata: { invocation_id: string } }>(p.dir).metadata.invocation_id;
    expect(await p.rows(`select distinct etl_run_id from ${p.rel('orders__quarantine')}`)).toEqual([[runId]]);
    expect(await p.tempRelations()).toEqual([]);
    record(engine, 'quarantine', { orders, quarantined });
  });

  it('a failing model fails with the engine message and the compiled SQL path, skips its descendants, and the rest is built', async () => {
    const p = new Project(
      engine,
      'fails',
      {
        'seeds/s.csv': 'id\n1\n',
        'models/bad.sql': `select cast('not a number' as integer) as id from {{ref "s"}}\n`,
        'models/child.sql': 'select * from {{ref "bad"}}\n',
        'models/grandchild.sql': 'select * from {{ref "child"}}\n',
        'models/fine.sql': 'select id from {{ref "s"}}\n',
      },
      { models: 'models:\n  materialized: table\n' },
    );
    const r = await p.etl('build');
    expect(r.code, r.output).toBe(1);
    const results = p.results();
    const statuses = Object.fromEntries([...results].map(([id, x]) => [id, x.status]));
    expect(statuses).toEqual({ 'seed.fails.s': 'success', 'model.fails.bad': 'error', 'model.fails.child': 'skipped', 'model.fails.grandchild': 'skipped', 'model.fails.fine': 'success' });
    expect(results.get('model.fails.child')!.message).toBe('skipped: upstream bad failed');
    const message = results.get('model.fails.bad')!.message;
    expect(message).toMatch(engine === 'duckdb' ? /Conversion Error/ : /invalid input syntax for type integer: "not a number"/);
    expect(r.stdout).toMatch(/Error in model bad \(models\/bad\.sql\)/);
    expect(r.stdout).toMatch(/compiled SQL: target\/compiled\/fails\/models\/bad\.sql/);
    expect(await p.relations()).toEqual({ s: 'BASE TABLE', fine: 'BASE TABLE' });
    record(engine, 'failing model', statuses);
  });

  it('identifiers with spaces, quotes and upper case; a seed value that looks like SQL is loaded as data', async () => {
    const evil = "'); drop table x; --";
    const p = new Project(engine, 'idents', {
      'seeds/Odd Seed "Q".csv': `Id,Full Name,"say ""hi""",MixedCase\n1,Ann Lee,hello,A\n2,"${evil}","it's ""quoted""",b\n`,
      'models/x.sql': '{{config materialized="table"}}\nselect 1 as id\n',
      'models/Mixed Case "Report".sql': `{{config materialized="table"}}\nselect "Id" as "ID", "Full Name", "say ""hi""" as "Say ""Hi""", "MixedCase" from {{ref 'Odd Seed "Q"'}}\n`,
      'models/lower view.sql': `{{config materialized="view"}}\nselect * from {{ref 'Mixed Case "Report"'}} where "Full Name" <> ${sqlString(evil)}\n`,
      'models/schema.yml': `seeds:
  - name: 'Odd Seed "Q"'
    columns:
      - name: Id
        tests: [unique, not_null]
      - name: Full Name
        tests:
          - accepted_values: { values: ["Ann Lee", "${evil}"] }
      - name: 'say "hi"'
        tests: [not_null]
models:
  - name: 'Mixed Case "Report"'
    columns:
      - name: 'Say "Hi"'
        tests:
          - accepted_values: { values: [hello, "it's \\"quoted\\""] }
`,
    });
    const r = ok(await p.etl('build'));
    for (const [id, res] of p.results()) expect(res.status, `${id}: ${res.message}`).toBe(/^(unit_)?test\./.test(id) ? 'pass' : 'success');
    expect(r.stdout).not.toMatch(/ERROR|FAIL/);
    expect(await p.relations()).toEqual({ 'Odd Seed "Q"': 'BASE TABLE', x: 'BASE TABLE', 'Mixed Case "Report"': 'BASE TABLE', 'lower view': 'VIEW' });
    const columns = await p.rows(`select column_name from information_schema.columns where table_schema = '${p.schema}' and table_name = 'Mixed Case "Report"'`);
    expect(columns.flat().sort()).toEqual(['Full Name', 'ID', 'MixedCase', 'Say "Hi"'].sort());
    const rows = await p.rows(`select * from ${p.rel('Mixed Case "Report"')}`);
    expect(rows).toEqual([
      ['1', 'Ann Lee', 'hello', 'A'],
      ['2', evil, `it's "quoted"`, 'b'],
    ]);
    expect(await p.rows(`select "ID" from ${p.rel('lower view')}`)).toEqual([['1']]);
    expect(await p.rows(`select id from ${p.rel('x')}`)).toEqual([['1']]);
    record(engine, 'identifiers', rows);
  });
});

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

describe('parity', () => {
  it('every scenario recorded the same results on DuckDB and on Postgres', () => {
    const keys = [...new Set([...recorded.duckdb.keys(), ...recorded.postgres.keys()])].sort();
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(recorded.postgres.get(key), `${key}: postgres against duckdb`).toEqual(recorded.duckdb.get(key));
    }
  });
});

// ---------------------------------------------------------------------------
// Postgres only: a killed backend, and two builds on one schema

/** A Postgres project with target `pg` in a schema of its own. */
function pgProject(name: string, files: Record<string, string>, schema = newPgSchema()): { dir: string; schema: string; rel: (n: string) => string } {
  if (!schemasToDrop.includes(schema)) schemasToDrop.push(schema);
  const dir = path.join(makeTempDir('etl-pg-'), name);
  writeFiles(dir, {
    'etl.yml': `name: ${name}\nversion: 1\ntarget: pg\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 4 }\n`,
    ...files,
  });
  return { dir, schema, rel: (n: string) => `${pgQuoteIdent(schema)}.${pgQuoteIdent(n)}` };
}

describe('postgres: retries after a killed backend', () => {
  const model = (retries: number, version: string, sleep: boolean) =>
    `{{config materialized="table" retries=${retries}}}\nselect '${version}' as version, 1 as x${sleep ? ' from pg_sleep(2)' : ''}\n`;

  it('a model whose backend is terminated is retried on a new connection and succeeds; the log names the retry and its reason', async () => {
    const p = pgProject('retry', { 'models/slow.sql': model(2, 'v1', false) });
    const etl = (...args: string[]) => runCli([...args, '--target', 'pg'], { cwd: p.dir });
    ok(await etl('build'));
    writeFiles(p.dir, { 'models/slow.sql': model(2, 'v2', true) });
    const run = startCli(['build', '--target', 'pg'], { cwd: p.dir });
    const pid = await waitForBackend(admin, [p.schema, 'pg_sleep(2)']);
    await admin.query('select pg_terminate_backend($1)', [pid]);
    const r = await run.exitWithin(30_000);
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`retry 1 of table ${p.schema}\\.slow in \\d+\\.\\ds: terminating connection due to administrator command`));
    expect(r.stdout).toMatch(new RegExp(`OK\\s+table ${p.schema}\\.slow \\.+ \\[1 rows`));
    expect(r.stdout).not.toMatch(/retry 2 of/);
    expect((await admin.query(`select version from ${p.rel('slow')}`)).rows).toEqual([{ version: 'v2' }]);
    // The retry ran on another backend: the killed one is gone.
    expect((await admin.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount).toBe(0);
  });

  it('with retries: 0 the run fails cleanly (exit 1, the reason named) and the previous version of the table is intact', async () => {
    const p = pgProject('noretry', { 'models/slow.sql': model(0, 'v1', false) });
    ok(await runCli(['build', '--target', 'pg'], { cwd: p.dir }));
    writeFiles(p.dir, { 'models/slow.sql': model(0, 'v2', true) });
    const run = startCli(['build', '--target', 'pg'], { cwd: p.dir });
    await admin.query('select pg_terminate_backend($1)', [await waitForBackend(admin, [p.schema, 'pg_sleep(2)'])]);
    const r = await run.exitWithin(30_000);
    expect(r.code, r.output).toBe(1);
    expect(r.stdout).not.toMatch(/retry \d of/);
    expect(r.stdout).toMatch(/ERROR\s+table .*slow/);
    expect(r.stdout).toMatch(/Error in model slow \(models\/slow\.sql\)\n\s+terminating connection due to administrator command/);
    expect(r.stdout).toMatch(/Finished 1 node in .*: 0 succeeded, 1 failed, 0 skipped\./);
    expect(readRunResults<{ results: RunResult[] }>(p.dir).results.map((x) => [x.unique_id, x.status])).toEqual([['model.noretry.slow', 'error']]);
    expect((await admin.query(`select version from ${p.rel('slow')}`)).rows).toEqual([{ version: 'v1' }]);
    expect((await admin.query(`select relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 order by 1`, [p.schema])).rows).toEqual([{ relname: 'slow' }]);
  });
});

describe('postgres: two builds at once', () => {
  it('a second build on the same schema fails at once with a clear message and changes nothing; a build into another schema goes on', async () => {
    // The slow models wait at a gate the test holds (an advisory lock), so the first build is
    // surely still running, whatever the machine's speed, until the test opens it.
    const gate = 424_000 + Math.floor(Math.random() * 1000);
    await admin.query('select pg_advisory_lock($1)', [gate]);
    const files = {
      'seeds/s.csv': 'id\n1\n2\n',
      'models/slow.sql': `{{config materialized="table"}}\nselect s.id from {{ref "s"}} as s, pg_advisory_xact_lock_shared(${gate})\n`,
    };
    const first = pgProject('first', files);
    const second = pgProject('second', files, first.schema);
    const other = pgProject('other', files);
    const run1 = startCli(['build', '--target', 'pg'], { cwd: first.dir });
    await waitForBackend(admin, [first.schema, `pg_advisory_xact_lock_shared(${gate})`]);
    // A build into another schema of the same database, meanwhile, is not held up.
    const run3 = startCli(['build', '--target', 'pg'], { cwd: other.dir });
    const relationsBefore = (await admin.query(`select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 order by 1`, [first.schema])).rows;

    // It does not wait for the lock: it fails while the first build is held at the gate.
    const r2 = await runCli(['build', '--target', 'pg'], { cwd: second.dir });
    expect(r2.code, r2.output).toBe(1);
    expect(r2.stderr).toMatch(new RegExp(`target pg: another etl run is building schema "${first.schema}" \\(server pid \\d+, etl \\(lock\\)[^\\n]*\\)\\n\\s+hint: wait for it to finish, then run again`));
    expect(r2.stdout).toBe('');
    // It stopped before writing anything: no target/ in its project, nothing printed but the error
    // (no "Running ..." line: the lock is taken when the connection opens), the schema as it was.
    expect(existsSync(path.join(second.dir, 'target'))).toBe(false);
    expect((await admin.query(`select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 order by 1`, [first.schema])).rows).toEqual(relationsBefore);
    expect(run1.exited).toBe(false);
    await waitForBackend(admin, [other.schema, `pg_advisory_xact_lock_shared(${gate})`]);
    expect(run1.exited).toBe(false);
    await admin.query('select pg_advisory_unlock($1)', [gate]);

    const r1 = await run1.exitWithin(30_000);
    expect(r1.code, r1.output).toBe(0);
    const r3 = await run3.exitWithin(30_000);
    expect(r3.code, r3.output).toBe(0);
    expect((await admin.query(`select id from ${first.rel('slow')} order by id`)).rows).toEqual([{ id: '1' }, { id: '2' }]);
    expect((await admin.query(`select count(*) as n from ${other.rel('slow')}`)).rows).toEqual([{ n: '2' }]);
  });

  // Four first runs at once on a database without etl_meta: each into its own schema, so none may
  // wait for another, and all of them create etl_meta's tables (a race: unique violations in
  // pg_type unless the setup is serialized).
  it('first runs on a fresh database, at once, set up etl_meta without tripping over each other', async () => {
    const database = `etl_t_db_${newPgSchema().slice(6)}`;
    await admin.query(`create database ${pgQuoteIdent(database)}`);
    try {
      const dbUrl = new URL(PG_URL);
      dbUrl.pathname = `/${database}`;
      const dirs = ['a', 'b', 'c', 'd'].map((n) => {
        const dir = path.join(makeTempDir('etl-pg-'), `fresh_${n}`);
        writeFiles(dir, {
          'etl.yml': `name: fresh_${n}\nversion: 1\ntarget: pg\ntargets:\n  pg: { type: postgres, url: "${dbUrl}", schema: s_${n}, threads: 2 }\n`,
          'models/m.sql': `select '${n}' as x\n`,
        });
        return dir;
      });
      const results = await Promise.all(dirs.map((dir) => runCli(['run'], { cwd: dir })));
      for (const r of results) expect(r.code, r.output).toBe(0);
      const db = await pgConnect(dbUrl.toString());
      try {
        expect((await db.query('select version from etl_meta.schema_version order by version')).rows).toEqual(MIGRATIONS.map((m) => ({ version: String(m.version) })));
        expect((await db.query(`select status, count(*) as n from etl_meta.runs group by status`)).rows).toEqual([{ status: 'success', n: '4' }]);
      } finally {
        await db.end();
      }
    } finally {
      await admin.query(`drop database if exists ${pgQuoteIdent(database)} with (force)`);
    }
  });
});
