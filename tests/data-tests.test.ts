// Data tests at unit level: thresholds, test names, CSV fixtures, fixture
// literals, canonical types, the plan's test edges and source freshness,
// calling core functions directly (against a real DuckDB where SQL runs).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { holds, parseThreshold, testStatus } from '../core/data-tests/threshold.js';
import { parseCsv, rowsToSelect, scratchSchema } from '../core/data-tests/unit-tests.js';
import { checkFreshness, parseDuration, parseLoadedAt } from '../core/data-tests/engine/freshness.js';
import { canonicalTypeAnsi, dialectFor } from '../adapters/dialect.js';
import { DuckDbAdapter } from '../adapters/duckdb/adapter.js';
import { build, compile } from '../core/api.js';
import { planRun } from '../core/plan/plan.js';
import { junitXml } from '../core/reporting/junit.js';
import type { NodeResult } from '../core/runner/events.js';
import type { Manifest, ManifestSource } from '../core/compiler/manifest.js';

const duck = dialectFor('duckdb');

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-data-tests-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function writeProject(files: Record<string, string>): string {
  const root = tempDir();
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  return root;
}

const ETL_YML = (name: string) => `name: ${name}
version: 1
target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, schema: main, threads: 4 }
`;

// ---------------------------------------------------------------------------

describe('thresholds: parseThreshold and testStatus', () => {
  it.each([
    ['>10', '>', 10],
    ['>=5', '>=', 5],
    ['!=0', '!=', 0],
    ['<>0', '<>', 0],
    ['= 3', '=', 3],
    ['==3', '==', 3],
    ['  <  2.5 ', '<', 2.5],
    ['<=100', '<=', 100],
  ])('parses %j', (text, op, value) => {
    expect(parseThreshold(text)).toEqual({ op, value, text: text.trim() });
  });

  it.each(['lots', '', '>', '10', '>ten', '=>5', '> -1', '>1 and <5', '%5'])('rejects %j', (text) => {
    expect(parseThreshold(text)).toBeUndefined();
  });

  it.each([
    ['>', 10, 11, true],
    ['>', 10, 10, false],
    ['>=', 5, 5, true],
    ['>=', 5, 4, false],
    ['<', 3, 2, true],
    ['<=', 3, 3, true],
    ['<=', 3, 4, false],
    ['=', 0, 0, true],
    ['==', 2, 3, false],
    ['!=', 0, 0, false],
    ['!=', 0, 1, true],
    ['<>', 0, 7, true],
  ] as const)('holds(%s %d) for %d failures is %s', (op, value, failures, expected) => {
    expect(holds({ op, value, text: `${op}${value}` }, failures)).toBe(expected);
  });

  type Config = Parameters<typeof testStatus>[1];
  it.each<[string, number, Config, ReturnType<typeof testStatus>]>([
    ['defaults, no failures', 0, {}, 'pass'],
    ['defaults, one failure', 1, {}, 'fail'],
    ['severity warn, failures', 5, { severity: 'warn' }, 'warn'],
    ['severity warn, no failures', 0, { severity: 'warn' }, 'pass'],
    ['thresholds, 5 failures', 5, { warn_if: '>10', error_if: '>100' }, 'pass'],
    ['thresholds, 10 failures (boundary)', 10, { warn_if: '>10', error_if: '>100' }, 'pass'],
    ['thresholds, 20 failures', 20, { warn_if: '>10', error_if: '>100' }, 'warn'],
    ['thresholds, 100 failures (boundary)', 100, { warn_if: '>10', error_if: '>100' }, 'warn'],
    ['thresholds, 200 failures', 200, { warn_if: '>10', error_if: '>100' }, 'fail'],
    ['thresholds with severity warn, 200 failures', 200, { severity: 'warn', warn_if: '>10', error_if: '>100' }, 'warn'],
    ['error_if only, below it: warns on the default warn_if', 3, { error_if: '>=5' }, 'warn'],
    ['error_if only, at it', 5, { error_if: '>=5' }, 'fail'],
    ['warn_if that never holds', 3, { warn_if: '>1000', error_if: '>1000' }, 'pass'],
  ])('%s', (_label, failures, config, expected) => {
    expect(testStatus(failures, config)).toBe(expected);
  });

  it('a malformed threshold (a singular test config is not checked at compile time) is a clear error, not ignored', () => {
    expect(() => testStatus(3, { warn_if: 'lots' })).toThrow(/malformed threshold warn_if: "lots"/);
    expect(() => testStatus(3, { error_if: 'many' })).toThrow(/malformed threshold error_if: "many"/);
  });
});

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------

describe('parseCsv (unit test fixtures)', () => {
  it('reads a header and typed values: integers, decimals, booleans, empty as null', () => {
    const r = parseCsv('payment_id,order_id,method,amount,ok,note\n1,1,credit_card,10.50,true,\n2,-3,gift_card,5,false,x\n');
    expect(r).toEqual({
      columns: ['payment_id', 'order_id', 'method', 'amount', 'ok', 'note'],
      rows: [
        { payment_id: 1, order_id: 1, method: 'credit_card', amount: 10.5, ok: true, note: null },
        { payment_id: 2, order_id: -3, method: 'gift_card', amount: 5, ok: false, note: 'x' },
      ],
    });
  });

  it('handles quoted fields with commas, newlines and escaped quotes', () => {
    const r = parseCsv('id,text\n1,"a, b"\n2,"she said ""hi"""\n3,"two\nlines"\n4,""""\n');
    expect(r).toEqual({
      columns: ['id', 'text'],
      rows: [
        { id: 1, text: 'a, b' },
        { id: 2, text: 'she said "hi"' },
        { id: 3, text: 'two\nlines' },
        { id: 4, text: '"' },
      ],
    });
  });

  it('handles CRLF line ends, blank lines and a missing final newline', () => {
    const r = parseCsv('id,name\r\n1,a\r\n\r\n2,"b\r\nc"\r\n3,d');
    expect(r).toEqual({ columns: ['id', 'name'], rows: [{ id: 1, name: 'a' }, { id: 2, name: 'b\r\nc' }, { id: 3, name: 'd' }] });
  });

  it('trims header names and leaves dates as text (typed later by rowsToSelect)', () => {
    const r = parseCsv(' id , day \n1,2024-03-01\n');
    expect(r).toEqual({ columns: ['id', 'day'], rows: [{ id: 1, day: '2024-03-01' }] });
  });

  it('needs a header and at least one data row', () => {
    expect(parseCsv('id,name\n')).toEqual({ error: expect.stringMatching(/header row and at least one data row/) });
    expect(parseCsv('')).toHaveProperty('error');
  });
});

// ---------------------------------------------------------------------------

describe('rowsToSelect against DuckDB', () => {
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    conn = await instance.connect();
  });
  afterAll(() => {
    conn?.closeSync();
    instance?.closeSync();
  });

  async function rows(sql: string): Promise<Array<Record<string, unknown>>> {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Array<Record<string, unknown>>;
  }

  it('types fixture values: dates and timestamps become date/timestamp literals, numbers stay numbers', async () => {
    const fixture = [
      { id: 1, day: '2024-03-01', at: '2024-03-01 10:30:00', at_t: '2024-03-01T10:30:00', amount: 10.5, name: "O'Brien", flag: true, none: null },
      { id: 2, day: '2024-02-29', at: '2024-02-29 23:59:59.5', at_t: '2024-02-29T00:00', amount: 0, name: '2024-13', flag: false, none: null },
    ];
    const columns = Object.keys(fixture[0]!);
    const sql = rowsToSelect(fixture, columns, duck);
    expect(sql).toContain("date '2024-03-01'");
    expect(sql).toContain("timestamp '2024-03-01 10:30:00'");
    const types = (await rows(`select typeof(day) as day, typeof("at") as at, typeof(at_t) as at_t, typeof(amount) as amount, typeof(name) as name, typeof(flag) as flag from (${sql}) limit 1`))[0];
    expect(types).toEqual({ day: 'DATE', at: 'TIMESTAMP', at_t: 'TIMESTAMP', amount: expect.stringMatching(/^DECIMAL\(\d+,1\)$/), name: 'VARCHAR', flag: 'BOOLEAN' });

    const out = await rows(`select id, cast(day + 1 as varchar) as next_day, cast("at" as varchar) as at, name, none from (${sql}) order by id`);
    // Date arithmetic works on the literals (2024 is a leap year).
    expect(out.map((r) => String(r.next_day))).toEqual(['2024-03-02', '2024-03-01']);
    expect(out.map((r) => r.at)).toEqual(['2024-03-01 10:30:00', '2024-02-29 23:59:59.5']);
    // Quotes in strings are escaped; a string that only looks date-like stays a string.
    expect(out.map((r) => r.name)).toEqual(["O'Brien", '2024-13']);
    expect(out.map((r) => r.none)).toEqual([null, null]);
  });

  it('round-trips a CSV fixture, including quoted column names', async () => {
    const csv = parseCsv('order id,day,amount\n1,2024-03-01,10.50\n2,2024-03-02,5.00\n');
    if ('error' in csv) throw new Error(csv.error);
    const out = await rows(`select "order id" as id, typeof(day) as t, cast(day as varchar) as day, amount from (${rowsToSelect(csv.rows, csv.columns, duck)}) order by 1`);
    expect(out.map((r) => [r.id, r.t, String(r.day), Number(r.amount)])).toEqual([
      [1, 'DATE', '2024-03-01', 10.5],
      [2, 'DATE', '2024-03-02', 5],
    ]);
  });
});

// ---------------------------------------------------------------------------

describe('canonicalType (contracts compare types in one spelling)', () => {
  const same = (a: string, b: string) => expect(canonicalTypeAnsi(a), `${a} vs ${b}`).toBe(canonicalTypeAnsi(b));
  const differ = (a: string, b: string) => expect(canonicalTypeAnsi(a), `${a} vs ${b}`).not.toBe(canonicalTypeAnsi(b));

  it('folds case, spacing and aliases', () => {
    same('int', 'INTEGER');
    same('integer', 'Integer');
    same('text', 'VARCHAR');
    same('varchar(20)', 'varchar');
    same('character varying', 'varchar');
    same('decimal(16,2)', 'numeric(16, 2)');
    same('DECIMAL(16,2)', 'numeric( 16 , 2 )');
    same('timestamp without time zone', 'TIMESTAMP');
    same('timestamp with time zone', 'timestamptz');
    same('double precision', 'DOUBLE');
    same('bool', 'BOOLEAN');
    expect(duck.canonicalType('INTEGER')).toBe(canonicalTypeAnsi('int'));
  });

  it('keeps different types apart', () => {
    differ('integer', 'bigint');
    differ('decimal(16,2)', 'decimal(18,2)');
    differ('timestamp', 'timestamptz');
    differ('date', 'timestamp');
    differ('varchar', 'integer');
  });

  // Regression: aliases spelled with digits were never folded.
  it('folds aliases spelled with digits: int4, int8, float8', () => {
    same('int4', 'integer');
    same('int8', 'bigint');
    same('float8', 'double');
  });
});

// ---------------------------------------------------------------------------

describe('a failing test blocks only its model\'s children', () => {
  // s (seed) -> a -> b -> c, and a -> d. A passing test on a, a failing one on b.
  const files = {
    'etl.yml': ETL_YML('chain'),
    'seeds/s.csv': 'id\n1\n2\n3\n',
    'models/a.sql': 'select * from {{ref "s"}}',
    'models/b.sql': 'select * from {{ref "a"}}',
    'models/c.sql': '{{config materialized="table"}}\nselect * from {{ref "b"}}',
    'models/d.sql': '{{config materialized="table"}}\nselect * from {{ref "a"}}',
    'models/schema.yml': `models:
  - name: a
    columns:
      - name: id
        tests: [not_null, unique]
  - name: b
    tests:
      - expression_is_true: { expression: "id > 1", name: b_ids_above_one }
`,
  };

  it('plans c after b and b\'s tests only, not after the tests of a', async () => {
    const root = writeProject(files);
    const { manifest } = await compile({ projectDir: root });
    const plan = planRun(manifest, new Set(Object.keys(manifest.nodes)), new Set(['seed', 'model', 'test']));
    const testsOf = (model: string) =>
      Object.values(manifest.nodes)
        .filter((n) => n.resource_type === 'test' && n.attached_node === `model.chain.${model}`)
        .map((n) => n.unique_id)
        .sort();
    // dbt's ids: test.<project>.<name>.<10 hex digits>
    expect(testsOf('a')).toEqual([expect.stringMatching(/^test\.chain\.not_null_a_id\.[0-9a-f]{10}$/), expect.stringMatching(/^test\.chain\.unique_a_id\.[0-9a-f]{10}$/)]);
    expect(testsOf('b')).toEqual([expect.stringMatching(/^test\.chain\.b_ids_above_one\.[0-9a-f]{10}$/)]);

    expect([...plan.parents.get('model.chain.c')!].sort()).toEqual(['model.chain.b', ...testsOf('b')].sort());
    // b and d (the children of a) wait for a's tests; c does not, directly.
    expect([...plan.parents.get('model.chain.b')!].sort()).toEqual(['model.chain.a', ...testsOf('a')].sort());
    expect([...plan.parents.get('model.chain.d')!].sort()).toEqual(['model.chain.a', ...testsOf('a')].sort());
    for (const t of testsOf('a')) expect(plan.parents.get('model.chain.c')).not.toContain(t);
    // Every node is in the plan, in an order that respects every edge.
    expect(plan.ids).toHaveLength(Object.keys(manifest.nodes).length);
    const at = new Map(plan.ids.map((id, i) => [id, i]));
    for (const [id, parents] of plan.parents) for (const p of parents) expect(at.get(p)!, `${p} before ${id}`).toBeLessThan(at.get(id)!);
  });

  it('builds: the failing test on b skips c, while d (a sibling of b) is built', async () => {
    const root = writeProject(files);
    const summary = await build({ projectDir: root, threads: 4 });
    const status = Object.fromEntries(summary.results.map((r) => [r.unique_id.replace(/\.[0-9a-f]{10}$/, ''), r.status]));
    expect(summary.exitCode).toBe(1);
    expect(status).toEqual({
      'seed.chain.s': 'success',
      'model.chain.a': 'success',
      'model.chain.b': 'success',
      'model.chain.c': 'skipped',
      'model.chain.d': 'success',
      'test.chain.not_null_a_id': 'pass',
      'test.chain.unique_a_id': 'pass',
      'test.chain.b_ids_above_one': 'fail',
    });
    const failing = summary.results.find((r) => r.unique_id.startsWith('test.chain.b_ids_above_one.'))!;
    expect(failing.failures).toBe(1);
    expect(failing.failing_rows_sample).toEqual({ columns: ['id'], rows: [[1]] });
    expect(summary.results.find((r) => r.unique_id === 'model.chain.c')!.message).toMatch(/upstream b_ids_above_one failed/);

    // d holds its rows; c was never created.
    const instance = await DuckDBInstance.create(path.join(root, 'target/dev.duckdb'), { access_mode: 'READ_ONLY' });
    const conn = await instance.connect();
    try {
      const tables = (await conn.runAndReadAll("select table_name from information_schema.tables where table_schema = 'main' order by 1")).getRowObjectsJS().map((r) => r.table_name);
      expect(tables).toEqual(['a', 'b', 'd', 's']);
      expect(Number((await conn.runAndReadAll('select count(*) from d')).getRows()[0]![0])).toBe(3);
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  });
});

// ---------------------------------------------------------------------------

describe('source freshness', () => {
  it.each([
    ['30s', 30],
    ['30m', 1800],
    ['12h', 43200],
    ['2d', 172800],
    [' 1.5h ', 5400],
  ])('parseDuration(%j) = %d s', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });
  it.each(['12', 'h', '12w', '-1h', 'soon'])('parseDuration(%j) is malformed', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it.each([
    ['2024-01-01 10:00:00', '2024-01-01T10:00:00.000Z'],
    ['2024-01-01 10:00:00.123456', '2024-01-01T10:00:00.123Z'],
    ['2024-01-01 10:00:00+00', '2024-01-01T10:00:00.000Z'],
    ['2024-01-01 10:00:00.5+00', '2024-01-01T10:00:00.500Z'],
    ['2024-01-01 10:00:00-05', '2024-01-01T15:00:00.000Z'],
    ['2024-01-01 10:00:00+05:30', '2024-01-01T04:30:00.000Z'],
    ['2024-01-01 10:00:00+0530', '2024-01-01T04:30:00.000Z'],
    ['2024-01-01T10:00:00Z', '2024-01-01T10:00:00.000Z'],
    ['2024-01-01', '2024-01-01T00:00:00.000Z'],
  ])('parseLoadedAt(%j) = %s (no zone means UTC)', (text, iso) => {
    expect(parseLoadedAt(text).toISOString()).toBe(iso);
  });

  it('rejects a value that is not a timestamp', () => {
    expect(() => parseLoadedAt('yesterday')).toThrow(/cannot read the loaded_at value "yesterday"/);
  });

  describe('checkFreshness on a DuckDB database', () => {
    let adapter: DuckDbAdapter;
    const now = new Date('2024-06-01T12:00:00Z');
    beforeAll(async () => {
      adapter = new DuckDbAdapter({ name: 'dev', path: ':memory:', threads: 1 }, tempDir());
      await adapter.open();
      await adapter.withSession(async (s) => {
        await s.execute('create schema raw');
        // timestamp (no zone) and timestamptz columns, loaded 10 min, 3 h and 3 days before `now`.
        await s.execute("create table raw.fresh as select timestamp '2024-06-01 11:50:00' as loaded_at");
        await s.execute("create table raw.stale as select timestamptz '2024-06-01 09:00:00+00' as loaded_at");
        await s.execute("create table raw.old as select * from (values (timestamp '2024-05-29 12:00:00'), (timestamp '2024-05-01 00:00:00'), (null)) as t(loaded_at)");
        await s.execute('create table raw.empty (loaded_at timestamp)');
      });
    });
    afterAll(async () => {
      await adapter?.close();
    });

    const source = (name: string, freshness: ManifestSource['freshness'] = { warn_after: '1h', error_after: '1d' }): ManifestSource =>
      ({
        unique_id: `source.p.raw.${name}`,
        resource_type: 'source',
        name,
        source_name: 'raw',
        relation_name: `"raw"."${name}"`,
        loaded_at_field: 'loaded_at',
        freshness,
      }) as ManifestSource;

    it('judges pass / warn / error from max(loaded_at), reading timestamptz values too', async () => {
      const results = await checkFreshness(adapter, [source('fresh'), source('stale'), source('old'), source('missing')], () => now);
      const by = Object.fromEntries(results.map((r) => [r.unique_id.split('.').pop(), r]));
      expect(by.fresh).toMatchObject({ status: 'pass', max_loaded_at: '2024-06-01T11:50:00.000Z', max_loaded_at_time_ago_in_s: 600 });
      expect(by.stale).toMatchObject({ status: 'warn', max_loaded_at: '2024-06-01T09:00:00.000Z', max_loaded_at_time_ago_in_s: 3 * 3600 });
      expect(by.old).toMatchObject({ status: 'error', max_loaded_at: '2024-05-29T12:00:00.000Z', max_loaded_at_time_ago_in_s: 3 * 86400 });
      expect(by.missing!.status).toBe('runtime error');
      expect(by.missing!.error).toMatch(/missing/);
      for (const r of results) {
        expect(r.criteria).toEqual({ warn_after: '1h', error_after: '1d', filter: null });
        expect(r.snapshotted_at).toBe(now.toISOString());
      }
    });

    it('uses only the thresholds given, and a filter', async () => {
      const [warnOnly, filtered, empty] = await checkFreshness(
        adapter,
        [source('old', { warn_after: '1h' }), source('old', { warn_after: '2d', error_after: '40d', filter: "loaded_at < timestamp '2024-05-15'" }), source('empty')],
        () => now,
      );
      expect(warnOnly!.status).toBe('warn');
      // Filtered down to 2024-05-01: 31.5 days old, past warn_after but not error_after.
      expect(filtered).toMatchObject({ status: 'warn', max_loaded_at: '2024-05-01T00:00:00.000Z', max_loaded_at_time_ago_in_s: 31 * 86400 + 12 * 3600 });
      expect(empty).toMatchObject({ status: 'error', max_loaded_at: null, max_loaded_at_time_ago_in_s: null });
    });
  });
});

// ---------------------------------------------------------------------------

describe('junitXml', () => {
  const manifest = {
    metadata: { project_name: 'shop' },
    nodes: {
      'model.shop.m': { unique_id: 'model.shop.m', resource_type: 'model', name: 'm' },
      'test.shop.t': { unique_id: 'test.shop.t', resource_type: 'test', name: 't', attached_node: 'model.shop.m' },
      'test.shop.w': { unique_id: 'test.shop.w', resource_type: 'test', name: 'w', attached_node: 'model.shop.m' },
      'model.shop.c': { unique_id: 'model.shop.c', resource_type: 'model', name: 'c' },
    },
  } as unknown as Manifest;
  const result = (unique_id: string, status: NodeResult['status'], message: string, extra: Partial<NodeResult> = {}): NodeResult =>
    ({ unique_id, status, message, execution_time: 0.25, failures: null, timing: [], thread_id: 'main', adapter_response: {}, rows_affected: null, compiled_path: null, relation_name: null, ...extra }) as NodeResult;

  it('escapes markup and drops characters XML cannot hold; counts failures, errors and skips', () => {
    const xml = junitXml(
      manifest,
      [
        result('model.shop.m', 'success', 'CREATE VIEW'),
        result('test.shop.t', 'fail', '2 failing rows', {
          failures: 2,
          compiled_path: 'target/compiled/shop/models/schema.yml/t.sql',
          failing_rows_sample: { columns: ['v'], rows: [['<a & "b">'], ['bell\u0007 nul\u0000 tab\t']] },
        }),
        result('test.shop.w', 'warn', '1 failing row', { failures: 1 }),
        result('model.shop.c', 'skipped', 'skipped: upstream t failed'),
      ],
      1.5,
    );
    expect(xml).not.toMatch(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/);
    expect(xml).toContain('&lt;a &amp; &quot;b&quot;&gt;');
    expect(xml).toMatch(/<testsuites tests="4" failures="1" errors="0" skipped="1" time="1.500">/);
    expect(xml).toMatch(/<testcase name="t" classname="test.m" time="0.250">\n\s*<failure message="2 failing rows" type="fail">2 failing rows\nfailing rows: 2\n/);
    expect(xml).toContain('compiled SQL: target/compiled/shop/models/schema.yml/t.sql</failure>');
    expect(xml).toMatch(/<testcase name="c" classname="model.c" time="0.250">\n\s*<skipped message="skipped: upstream t failed"\/>/);
    expect(xml).toMatch(/<testcase name="w"[^>]*>\n\s*<system-out>warning: 1 failing row<\/system-out>/);
    expect(xml).toMatch(/<testcase name="m" classname="model.m" time="0.250"\/>/);
  });
});

describe('unit-test scratch schemas', () => {
  it('names that differ only in characters a schema name cannot hold get schemas of their own', () => {
    expect(scratchSchema('main__a-b')).not.toBe(scratchSchema('main__a_b'));
    expect(scratchSchema('main__a_b')).toBe('etl_unit__main__a_b');
    expect(scratchSchema('main__a-b')).toMatch(/^etl_unit__main__a_b_[0-9a-f]{10}$/);
    expect(scratchSchema(`main__${'x'.repeat(60)}`).length).toBeLessThanOrEqual(50);
  });
});
