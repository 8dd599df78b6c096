// The Postgres adapter against a real server (ETL_PG_URL, default the local
// test database). Every test works in its own schema, dropped afterwards.

import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PostgresAdapter, type PostgresTarget } from '../adapters/postgres/adapter.js';
import { workerAnswer } from '../adapters/postgres/csv-types.js';
import { RunError } from '../core/errors.js';
import { PG_URL, connectTestPostgres, pollUntil } from './e2e/helpers.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');

let admin: pg.Client;
let schema: string;
let adapter: PostgresAdapter;
let tmpDir: string;
const extraSchemas: string[] = [];

const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
const newSchema = () => `etl_t_${randomBytes(5).toString('hex')}`;

function targetFor(schemaName: string, extra: Partial<PostgresTarget> = {}): PostgresTarget {
  return { name: 'pg', url: PG_URL, schema: schemaName, threads: 2, ...extra };
}

async function rows(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await admin.query(sql, params)).rows;
}

function rel(name: string) {
  return { schema, name };
}

function csv(name: string, text: string): string {
  const file = path.join(tmpDir, name);
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  admin = await connectTestPostgres(new pg.Client({ connectionString: PG_URL }));
});

afterAll(async () => {
  await admin?.end();
});

beforeEach(async () => {
  schema = newSchema();
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'etl-pg-'));
  adapter = new PostgresAdapter(targetFor(schema), ROOT);
  await adapter.open();
  await adapter.withSession((s) => adapter.ensureSchema(s, schema));
});

afterEach(async () => {
  await adapter.close();
  for (const s of [schema, ...extraSchemas.splice(0)]) await admin.query(`drop schema if exists ${q(s)} cascade`);
  rmSync(tmpDir, { recursive: true, force: true });
});

describe('views and tables', () => {
  it('creates and replaces a view, also when its columns change', async () => {
    const r = await adapter.withSession((s) => adapter.replaceView(s, rel('v'), 'select 1 as a, 2 as b'));
    expect(r.message).toBe('CREATE VIEW');
    expect(await adapter.withSession((s) => adapter.relationKind(s, rel('v')))).toBe('view');
    expect(await rows(`select * from ${q(schema)}.v`)).toEqual([{ a: 1, b: 2 }]);
    // dropping column b: CREATE OR REPLACE refuses, so it is dropped and recreated
    await adapter.withSession((s) => adapter.replaceView(s, rel('v'), "select 'x' as c"));
    expect(await rows(`select * from ${q(schema)}.v`)).toEqual([{ c: 'x' }]);
    expect(await adapter.withSession((s) => adapter.listColumns(s, rel('v')))).toEqual([{ name: 'c', type: 'text' }]);
  });

  it('replaces a table by a view and a view by a table', async () => {
    await adapter.withSession((s) => adapter.replaceTable(s, rel('m'), 'select 1 as a'));
    await adapter.withSession((s) => adapter.replaceView(s, rel('m'), 'select 2 as a'));
    expect(await adapter.withSession((s) => adapter.relationKind(s, rel('m')))).toBe('view');
    await adapter.withSession((s) => adapter.replaceTable(s, rel('m'), 'select 3 as a'));
    expect(await adapter.withSession((s) => adapter.relationKind(s, rel('m')))).toBe('table');
    expect(await rows(`select a from ${q(schema)}.m`)).toEqual([{ a: 3 }]);
  });

  it('builds a table, counts its rows and rebuilds it', async () => {
    const r = await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select g as id, g * 1.5 as x from generate_series(1, 42) g'));
    expect(r.rowsAffected).toBe(42);
    expect(r.message).toBe('CREATE TABLE (42 rows)');
    expect(await adapter.withSession((s) => adapter.relationKind(s, rel('t')))).toBe('table');
    expect(await adapter.withSession((s) => adapter.listColumns(s, rel('t')))).toEqual([
      { name: 'id', type: 'integer' },
      { name: 'x', type: 'numeric' },
    ]);
    const again = await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select 7 as id'));
    expect(again.rowsAffected).toBe(1);
    expect(await rows(`select * from ${q(schema)}.t`)).toEqual([{ id: 7 }]);
    expect(await adapter.withSession((s) => adapter.relationKind(s, rel('missing')))).toBeUndefined();
  });

  it('keeps dependent views (with comments and grants) working across a rebuild', async () => {
    await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select 1 as id, 10 as amount'));
    await admin.query(`create view ${q(schema)}.user_view as select id, amount * 2 as doubled from ${q(schema)}.t`);
    await admin.query(`create view ${q(schema)}."Nested View" as select doubled from ${q(schema)}.user_view`);
    await admin.query(`create materialized view ${q(schema)}.mv as select sum(amount) as total from ${q(schema)}.t`);
    await admin.query(`create index mv_total on ${q(schema)}.mv (total)`);
    await admin.query(`comment on view ${q(schema)}.user_view is 'kept by the user'`);
    await admin.query(`grant select on ${q(schema)}.user_view to public`);

    await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select 2 as id, 21 as amount, 0 as extra'));
    expect(await rows(`select * from ${q(schema)}.user_view`)).toEqual([{ id: 2, doubled: 42 }]);
    expect(await rows(`select * from ${q(schema)}."Nested View"`)).toEqual([{ doubled: 42 }]);
    expect(await rows(`select total::int from ${q(schema)}.mv`)).toEqual([{ total: 21 }]);
    expect(await rows(`select indexname from pg_indexes where schemaname = $1 and tablename = 'mv'`, [schema])).toEqual([{ indexname: 'mv_total' }]);
    expect(await rows(`select obj_description($1::regclass, 'pg_class') as c`, [`${q(schema)}.user_view`])).toEqual([{ c: 'kept by the user' }]);
    expect(
      await rows(`select exists (select 1 from aclexplode((select relacl from pg_class where oid = $1::regclass)) a where a.grantee = 0 and a.privilege_type = 'SELECT') as ok`, [
        `${q(schema)}.user_view`,
      ]),
    ).toEqual([{ ok: true }]);

    // A rebuild that removes a column a user view needs fails clearly and changes nothing.
    const err = await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select 3 as id')).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/materialized view "[^"]+"\."mv" depends on it and does not work with the new version: column t\.amount does not exist/);
    expect(await rows(`select * from ${q(schema)}.t`)).toEqual([{ id: 2, amount: 21, extra: 0 }]);
    expect(await rows(`select * from ${q(schema)}.user_view`)).toEqual([{ id: 2, doubled: 42 }]);
  });

  it('replaces a view whose columns changed while other views depend on it', async () => {
    await adapter.withSession((s) => adapter.replaceView(s, rel('base'), 'select 1 as a, 2 as b'));
    await admin.query(`create view ${q(schema)}.dep as select a from ${q(schema)}.base`);
    await adapter.withSession((s) => adapter.replaceView(s, rel('base'), 'select 5 as a, 6 as c'));
    expect(await rows(`select * from ${q(schema)}.dep`)).toEqual([{ a: 5 }]);
    const err = await adapter.withSession((s) => adapter.replaceView(s, rel('base'), 'select 7 as z')).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/"dep" depends on it and does not work with the new version: column base\.a does not exist/);
    expect(await rows(`select * from ${q(schema)}.base`)).toEqual([{ a: 5, c: 6 }]);
  });

  it('leaves the old table readable and no temporary table when a rebuild fails', async () => {
    await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select 1 as id'));
    const err = await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select id from nowhere_at_all')).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/relation "nowhere_at_all" does not exist/);
    const err2 = await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select 1/0 as id')).catch((e: Error) => e);
    expect((err2 as Error).message).toMatch(/division by zero/);
    expect(await rows(`select * from ${q(schema)}.t`)).toEqual([{ id: 1 }]);
    expect(await rows(`select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 order by relname`, [schema])).toEqual([{ relname: 't' }]);
    // the session is usable afterwards (no transaction left open)
    expect((await adapter.withSession((s) => s.query('select 1 as ok'))).rows).toEqual([[1]]);
  });

  it('stages, publishes and discards a table (the path contracts and quarantine take)', async () => {
    await adapter.withSession((s) => adapter.replaceTable(s, rel('t'), 'select 1 as id'));
    await admin.query(`create view ${q(schema)}.tv as select id from ${q(schema)}.t`);
    const staged = await adapter.withSession((s) => adapter.stageTable(s, rel('t'), 'select g as id from generate_series(1, 5) g'));
    expect(staged.rows).toBe(5);
    expect(await rows(`select count(*)::int as n from ${q(schema)}.tv`)).toEqual([{ n: 1 }]);
    await adapter.withSession((s) => adapter.publishTable(s, staged, rel('t')));
    expect(await rows(`select count(*)::int as n from ${q(schema)}.tv`)).toEqual([{ n: 5 }]);
    const again = await adapter.withSession((s) => adapter.stageTable(s, rel('t'), 'select 9 as id'));
    await adapter.withSession((s) => adapter.discardStaged(s, again));
    await expect(adapter.withSession((s) => adapter.stageTable(s, rel('t'), 'select nope'))).rejects.toThrow(/column "nope" does not exist/);
    expect(await rows(`select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 order by relname`, [schema])).toEqual([
      { relname: 't' },
      { relname: 'tv' },
    ]);
  });

  it('gives long names a temporary name that does not collide', async () => {
    const name = 'n'.repeat(60);
    expect(Buffer.byteLength(adapter.tempRelation(rel(name)).name)).toBeLessThanOrEqual(63);
    await adapter.withSession((s) => adapter.replaceTable(s, rel(name), 'select 1 as a'));
    await adapter.withSession((s) => adapter.replaceTable(s, rel(name), 'select 2 as a'));
    expect(await rows(`select a from ${q(schema)}.${name}`)).toEqual([{ a: 2 }]);
    await expect(adapter.withSession((s) => adapter.replaceTable(s, rel('x'.repeat(64)), 'select 1'))).rejects.toThrow(/longer than 63 bytes/);
  });

  it('previews a query', async () => {
    const r = await adapter.withSession((s) =>
      adapter.preview(s, "select g as id, date '2024-01-02' + g as d, 1.50::numeric(6,2) as amount from generate_series(1, 100) g;", 3),
    );
    expect(r.columns).toEqual(['id', 'd', 'amount']);
    expect(r.types).toEqual(['integer', 'date', 'numeric']);
    expect(r.rows).toEqual([
      [1, '2024-01-03', '1.50'],
      [2, '2024-01-04', '1.50'],
      [3, '2024-01-05', '1.50'],
    ]);
  });
});

describe('seeds', () => {
  it('a type-inference worker that exits without answering rejects instead of leaving the seed waiting', async () => {
    const worker = csv('exits.mjs', 'process.exit(3);\n');
    await expect(workerAnswer(worker, {})).rejects.toThrow(/exit code 3/);
  });

  it('infers column types and loads values with commas, quotes and newlines', async () => {
    const file = csv(
      'people.csv',
      [
        'id,big,price,born,seen_at,active,note,zip,empty',
        '1,3000000000,1.50,2024-01-31,2024-01-31 10:00:00,true,"Hello, world",01234,',
        '2,-5,20,2023-12-01,2024-02-01T08:30:00,FALSE,"She said ""hi""",99999,',
        '3,7,-0.125,2000-02-29,2024-03-01 00:00,false,"two',
        'lines",12345,',
        '',
      ].join('\n'),
    );
    const r = await adapter.withSession((s) => adapter.loadSeed(s, rel('people'), file, { columnTypes: {} }));
    expect(r.rowsAffected).toBe(3);
    expect(r.message).toBe('INSERT 3');
    expect(await adapter.withSession((s) => adapter.listColumns(s, rel('people')))).toEqual([
      { name: 'id', type: 'integer' },
      { name: 'big', type: 'bigint' },
      { name: 'price', type: 'numeric' },
      { name: 'born', type: 'date' },
      { name: 'seen_at', type: 'timestamp without time zone' },
      { name: 'active', type: 'boolean' },
      { name: 'note', type: 'text' },
      { name: 'zip', type: 'text' },
      { name: 'empty', type: 'text' },
    ]);
    expect(
      await rows(`select id, big::text, price::text, born::text, seen_at::text, active, note, zip, empty from ${q(schema)}.people order by id`),
    ).toEqual([
      { id: 1, big: '3000000000', price: '1.50', born: '2024-01-31', seen_at: '2024-01-31 10:00:00', active: true, note: 'Hello, world', zip: '01234', empty: null },
      { id: 2, big: '-5', price: '20', born: '2023-12-01', seen_at: '2024-02-01 08:30:00', active: false, note: 'She said "hi"', zip: '99999', empty: null },
      { id: 3, big: '7', price: '-0.125', born: '2000-02-29', seen_at: '2024-03-01 00:00:00', active: false, note: 'two\nlines', zip: '12345', empty: null },
    ]);
  });

  it('types guessed from the first rows are checked against the whole file while it loads', async () => {
    // 25,000 rows of integers, then values that only text, bigint or a timestamp can hold,
    // past the first 20,000 rows the loader samples, and a blank line COPY would reject.
    const lines = ['id,amount,code,day'];
    for (let i = 1; i <= 25_000; i++) lines.push(`${i},${i},${i},2024-01-0${(i % 9) + 1}`);
    lines.push('25001,3000000000,A-7,2024-01-01 10:30:00', '', '25002,1,2,2024-01-02');
    const file = csv('late.csv', `${lines.join('\n')}\n`);
    const r = await adapter.withSession((s) => adapter.loadSeed(s, rel('late'), file, { columnTypes: {} }));
    expect(r.rowsAffected).toBe(25_002);
    expect(await adapter.withSession((s) => adapter.listColumns(s, rel('late')))).toEqual([
      { name: 'id', type: 'integer' },
      { name: 'amount', type: 'bigint' },
      { name: 'code', type: 'text' },
      { name: 'day', type: 'timestamp without time zone' },
    ]);
    expect(await rows(`select amount::text, code, day::text from ${q(schema)}.late where id = 25001`)).toEqual([
      { amount: '3000000000', code: 'A-7', day: '2024-01-01 10:30:00' },
    ]);
    // A large file whose sample holds: loaded once, with the sampled types.
    const ok = ['id,n'];
    for (let i = 1; i <= 30_000; i++) ok.push(`${i},${i % 7}`);
    const r2 = await adapter.withSession((s) => adapter.loadSeed(s, rel('ok'), csv('ok.csv', `${ok.join('\n')}\n`), { columnTypes: {} }));
    expect(r2.rowsAffected).toBe(30_000);
    expect((await rows(`select sum(n)::int as s from ${q(schema)}.ok`))[0]!.s).toBe(ok.slice(1).reduce((a, l) => a + Number(l.split(',')[1]), 0));
  });

  it('applies column_types and rejects unknown columns', async () => {
    const file = csv('orders.csv', 'order_id,order_date,amount\n1,2024-01-01,10\n2,2024-01-02,20.5\n');
    await adapter.withSession((s) =>
      adapter.loadSeed(s, rel('orders'), file, { columnTypes: { order_id: 'bigint', order_date: 'text', amount: 'numeric(10, 2)' } }),
    );
    expect(await adapter.withSession((s) => adapter.listColumns(s, rel('orders')))).toEqual([
      { name: 'order_id', type: 'bigint' },
      { name: 'order_date', type: 'text' },
      { name: 'amount', type: 'numeric(10,2)' },
    ]);
    expect(await rows(`select amount::text from ${q(schema)}.orders order by order_id`)).toEqual([{ amount: '10.00' }, { amount: '20.50' }]);
    await expect(adapter.withSession((s) => adapter.loadSeed(s, rel('orders'), file, { columnTypes: { nope: 'int' } }))).rejects.toThrow(
      /column_types names "nope", which is not a column of the CSV \(its columns: order_id, order_date, amount\)/,
    );
    await expect(adapter.withSession((s) => adapter.loadSeed(s, rel('orders'), file, { columnTypes: { amount: 'int; drop table x' } }))).rejects.toThrow(
      /is not a type name/,
    );
    // the failed loads left the previous table in place
    expect(await rows(`select count(*)::int as n from ${q(schema)}.orders`)).toEqual([{ n: 2 }]);
  });

  it('quotes odd identifiers and loads an injection-looking value as data', async () => {
    await admin.query(`create table ${q(schema)}.x (id int)`);
    const file = csv('odd.csv', `"Full Name","say ""hi""",UPPER,";"\n"'); drop table x; --",1,A,\n"Robert'); DROP TABLE ${schema}.x;--",2,B,z\n`);
    const table = 'My "Odd" Seed';
    const r = await adapter.withSession((s) => adapter.loadSeed(s, rel(table), file, { columnTypes: { UPPER: 'varchar(5)' } }));
    expect(r.rowsAffected).toBe(2);
    expect(await adapter.withSession((s) => adapter.listColumns(s, rel(table)))).toEqual([
      { name: 'Full Name', type: 'text' },
      { name: 'say "hi"', type: 'integer' },
      { name: 'UPPER', type: 'character varying(5)' },
      { name: ';', type: 'text' },
    ]);
    expect(await rows(`select * from ${q(schema)}.${q(table)} order by 2`)).toEqual([
      { 'Full Name': "'); drop table x; --", 'say "hi"': 1, UPPER: 'A', ';': null },
      { 'Full Name': `Robert'); DROP TABLE ${schema}.x;--`, 'say "hi"': 2, UPPER: 'B', ';': 'z' },
    ]);
    expect(await rows(`select count(*)::int as n from ${q(schema)}.x`)).toEqual([{ n: 0 }]);
  });

  it('rebuilds a seed under a dependent view, with CRLF, blank lines and a delimiter', async () => {
    const first = csv('s1.csv', 'a;b\r\n1;x\r\n\r\n2;y\r\n\r\n');
    expect((await adapter.withSession((s) => adapter.loadSeed(s, rel('s'), first, { columnTypes: {}, delimiter: ';' }))).rowsAffected).toBe(2);
    await admin.query(`create view ${q(schema)}.sv as select a from ${q(schema)}.s`);
    const second = csv('s2.csv', 'a;b\n5;"p\n\nq"\n\n6;r\n');
    await adapter.withSession((s) => adapter.loadSeed(s, rel('s'), second, { columnTypes: {}, delimiter: ';' }));
    expect(await rows(`select a from ${q(schema)}.sv order by a`)).toEqual([{ a: 5 }, { a: 6 }]);
    expect(await rows(`select b from ${q(schema)}.s order by a`)).toEqual([{ b: 'p\n\nq' }, { b: 'r' }]);
  });

  it('reports a malformed CSV with its line', async () => {
    const file = csv('bad.csv', 'a,b\n1,2\n3\n');
    await expect(adapter.withSession((s) => adapter.loadSeed(s, rel('bad'), file, { columnTypes: {} }))).rejects.toThrow(/bad\.csv:3: the record has 1 values, the header has 2/);
  });

  it('scans a large CSV in bounded memory', async () => {
    const file = path.join(tmpDir, 'big.csv');
    const lines = ['id,amount,day,label'];
    for (let i = 1; i <= 200_000; i++) lines.push(`${i},${i % 100}.25,2024-01-${String((i % 28) + 1).padStart(2, '0')},"row ${i}, ok"`);
    writeFileSync(file, lines.join('\n') + '\n');
    const r = await adapter.withSession((s) => adapter.loadSeed(s, rel('big'), file, { columnTypes: {} }));
    expect(r.rowsAffected).toBe(200_000);
    expect(await rows(`select sum(amount)::text as s from ${q(schema)}.big`)).toEqual([{ s: '9950000.00' }]);
  });
});

describe('connections', () => {
  it('fails to open an unreachable target with exit code 2, naming the host but never the password', async () => {
    const bad = new PostgresAdapter(targetFor(schema, { url: 'postgres://postgres:s3cr3tpw@127.0.0.1:1/test' }), ROOT);
    const err = await bad.open().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).exitCode).toBe(2);
    expect((err as RunError).message).toMatch(/postgres target pg at 127\.0\.0\.1:1 .*ECONNREFUSED/);
    expect((err as RunError).message).toMatch(/hint: is the server running/);
    expect((err as RunError).message).not.toContain('s3cr3tpw');
    expect((err as Error).stack ?? '').not.toContain('s3cr3tpw');
  });

  it('scrubs the password from the server error text', async () => {
    // the password reaches the server's message as the database name
    const bad = new PostgresAdapter(targetFor(schema, { url: 'postgres://postgres:s3cr3tpw@127.0.0.1:5432/s3cr3tpw' }), ROOT);
    const err = (await bad.open().catch((e: unknown) => e)) as RunError;
    expect(err).toBeInstanceOf(RunError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/database "\*\*\*\*" does not exist/);
    expect(err.message).not.toContain('s3cr3tpw');
    // host/port/user/password keys work too, and win over the url
    const split = new PostgresAdapter(targetFor(schema, { url: undefined, host: '127.0.0.1', port: 1, user: 'postgres', password: 'hunter22', database: 'test' }), ROOT);
    const err2 = (await split.open().catch((e: unknown) => e)) as RunError;
    expect(err2.message).toContain('127.0.0.1:1');
    expect(err2.message).not.toContain('hunter22');
    const override = new PostgresAdapter(targetFor(schema, { url: 'postgres://postgres@127.0.0.1:1/test', port: 5432 }), ROOT);
    await override.open();
    await override.close();
  });

  it('rejects a missing sslrootcert with exit code 2', async () => {
    const bad = new PostgresAdapter(targetFor(schema, { sslmode: 'verify-full', sslrootcert: 'no/such/ca.pem' }), ROOT);
    const err = (await bad.open().catch((e: unknown) => e)) as RunError;
    expect(err).toBeInstanceOf(RunError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/cannot read sslrootcert .*no\/such\/ca\.pem/);
    // this server has no TLS: require fails clearly, prefer falls back to plain
    const required = new PostgresAdapter(targetFor(schema, { sslmode: 'require' }), ROOT);
    const err2 = (await required.open().catch((e: unknown) => e)) as RunError;
    const ssl = (await rows('show ssl'))[0]!.ssl;
    if (ssl === 'off') expect(err2.message).toMatch(/does not support SSL/);
    else await required.close();
  });

  it('classifies a terminated backend as transient and goes on with a fresh connection', async () => {
    const single = new PostgresAdapter(targetFor(schema, { threads: 1 }), ROOT);
    await single.open();
    try {
      await single.withSession((s) => single.replaceTable(s, rel('t'), 'select 1 as id'));
      const before = (await single.withSession((s) => s.query('select pg_backend_pid()'))).rows[0]![0] as number;
      const building = single.withSession((s) => single.replaceTable(s, rel('t'), 'select pg_sleep(30)::text as id')).catch((e: unknown) => e);
      await waitFor(async () => (await rows(`select 1 from pg_stat_activity where pid = $1 and query like '%pg_sleep(30)%' and state = 'active'`, [before])).length === 1);
      await admin.query('select pg_terminate_backend($1)', [before]);
      const err = await building;
      expect(err).toBeInstanceOf(Error);
      expect((err as { code?: string }).code).toBe('57P01');
      expect(single.isTransient(err)).toBe(true);
      // the broken client was discarded: the next session is a new backend and works
      const after = (await single.withSession((s) => s.query('select pg_backend_pid()'))).rows[0]![0] as number;
      expect(after).not.toBe(before);
      const again = await single.withSession((s) => single.replaceTable(s, rel('t'), 'select 2 as id'));
      expect(again.rowsAffected).toBe(1);
      expect(await rows(`select id from ${q(schema)}.t`)).toEqual([{ id: 2 }]);
    } finally {
      await single.close();
    }
  });

  it('interrupts running statements', async () => {
    const running = adapter.withSession((s) => s.query('select pg_sleep(30)')).catch((e: unknown) => e);
    await waitFor(async () => (await rows(`select 1 from pg_stat_activity where application_name = 'etl' and query = 'select pg_sleep(30)' and state = 'active'`)).length > 0);
    await adapter.cancelRunning();
    // (A pg_sleep that ran out would return, not throw: the error says it was canceled.)
    const err = (await running) as Error;
    expect(err.message).toMatch(/^interrupted: canceling statement due to user request/);
    expect(adapter.isTransient(err)).toBe(false);
    expect((await adapter.withSession((s) => s.query('select 1'))).rows).toEqual([[1]]);
  });

  it('sets statement_timeout on every connection', async () => {
    const limited = new PostgresAdapter(targetFor(schema, { statement_timeout: 200, connect_timeout: 5 }), ROOT);
    await limited.open();
    try {
      await expect(limited.withSession((s) => s.query('select pg_sleep(2)'))).rejects.toThrow(/statement timeout/);
      expect((await limited.withSession((s) => s.query('show statement_timeout'))).rows).toEqual([['200ms']]);
    } finally {
      await limited.close();
    }
  });

  it('holds one advisory lock per schema for the run', async () => {
    const other = new PostgresAdapter(targetFor(schema), ROOT);
    await other.open();
    try {
      const err = (await other.withSession((s) => other.ensureSchema(s, schema)).catch((e: unknown) => e)) as RunError;
      expect(err).toBeInstanceOf(RunError);
      expect(err.exitCode).toBe(1);
      expect(err.message).toMatch(new RegExp(`another etl run is building schema "${schema}" \\(server pid \\d+, etl \\(lock\\)`));
      // another schema is free; and once the first run ends, so is this one
      const second = newSchema();
      extraSchemas.push(second);
      await other.withSession((s) => other.ensureSchema(s, second));
      await adapter.close();
      await other.withSession((s) => other.ensureSchema(s, schema));
    } finally {
      await other.close();
    }
  });
});

describe('etl build --target pg', () => {
  beforeAll(async () => {
    // The CLI runs from dist/; build it when the adapter's sources are newer.
    const built = path.join(ROOT, 'dist/adapters/postgres/adapter.js');
    const source = path.join(ROOT, 'adapters/postgres/adapter.ts');
    if (!existsSync(built) || statSync(built).mtimeMs < statSync(source).mtimeMs) {
      await run('npx', ['tsc', '-p', '.'], { cwd: ROOT });
    }
  }, 120_000);

  it('builds the template project into Postgres with the numbers DuckDB gives', async () => {
    // This adapter holds the schema's run lock since beforeEach; the CLI is the run now.
    await adapter.close();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'etl-pg-project-'));
    try {
      cpSync(path.join(ROOT, 'project-template'), dir, { recursive: true });
      rmSync(path.join(dir, 'target'), { recursive: true, force: true });
      const config = readFileSync(path.join(dir, 'etl.yml'), 'utf8').replace(
        /^targets:\n/m,
        `targets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 4 }\n`,
      );
      writeFileSync(path.join(dir, 'etl.yml'), config);
      const cli = path.join(ROOT, 'dist/bin/etl.js');
      const result = await run('node', [cli, 'build', '--project-dir', dir, '--target', 'pg'], { cwd: dir }).catch(
        (e: { stdout: string; stderr: string; code: number }) => e,
      );
      expect(result.stderr, result.stdout).toBe('');

      expect(await rows(`select count(*)::int as n from ${q(schema)}.customers`)).toEqual([{ n: 200 }]);
      expect(await rows(`select count(*)::int as n from ${q(schema)}.orders`)).toEqual([{ n: 500 }]);
      const expected = expectedTotals(dir, '2024-01-01');
      expect(await rows(`select sum(amount)::text as s from ${q(schema)}.orders`)).toEqual([{ s: expected.orders }]);
      expect(await rows(`select sum(lifetime_value)::text as s from ${q(schema)}.customers`)).toEqual([{ s: expected.customers }]);
      expect(await rows(`select table_name::text, table_type::text from information_schema.tables where table_schema = $1 order by 1`, [schema])).toEqual([
        { table_name: 'customers', table_type: 'BASE TABLE' },
        { table_name: 'orders', table_type: 'BASE TABLE' },
        { table_name: 'raw_customers', table_type: 'BASE TABLE' },
        { table_name: 'raw_orders', table_type: 'BASE TABLE' },
        { table_name: 'raw_payments', table_type: 'BASE TABLE' },
        { table_name: 'stg_customers', table_type: 'VIEW' },
        { table_name: 'stg_orders', table_type: 'VIEW' },
        { table_name: 'stg_payments', table_type: 'VIEW' },
      ]);

      // A second build while another run holds the schema fails at once.
      const holder = new PostgresAdapter(targetFor(schema), ROOT);
      await holder.open();
      try {
        await holder.withSession((s) => holder.ensureSchema(s, schema));
        // Not waited: the holder keeps the lock until this block ends, so waiting would never end.
        const blocked = await run('node', [cli, 'build', '--project-dir', dir, '--target', 'pg'], { cwd: dir }).catch((e: { stderr: string; code: number }) => e);
        expect((blocked as { code: number }).code).toBe(1);
        expect(blocked.stderr).toMatch(/another etl run is building schema/);
      } finally {
        await holder.close();
      }
      // Rebuilding over the existing relations works (views on tables are recreated).
      const rebuilt = await run('node', [cli, 'build', '--project-dir', dir, '--target', 'pg'], { cwd: dir }).catch((e: { stderr: string }) => e);
      expect(rebuilt.stderr).toBe('');
      expect(await rows(`select sum(amount)::text as s from ${q(schema)}.orders`)).toEqual([{ s: expected.orders }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

/** The marts' totals computed straight from the seed CSVs, as the models define them. */
function expectedTotals(dir: string, startDate: string): { orders: string; customers: string } {
  const read = (name: string) =>
    readFileSync(path.join(dir, 'seeds', name), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
  const kept = new Set(read('raw_orders.csv').filter((o) => o[2]! >= startDate).map((o) => o[0]!));
  const customers = new Set(read('raw_customers.csv').map((c) => c[0]!));
  let orders = 0n;
  for (const p of read('raw_payments.csv')) if (kept.has(p[1]!)) orders += BigInt(p[3]!);
  const ordersOf = new Map(read('raw_orders.csv').map((o) => [o[0]!, o[1]!]));
  let customerTotal = 0n;
  for (const p of read('raw_payments.csv')) if (kept.has(p[1]!) && customers.has(ordersOf.get(p[1]!)!)) customerTotal += BigInt(p[3]!);
  const money = (cents: bigint) => `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;
  return { orders: money(orders), customers: money(customerTotal) };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  if (!(await pollUntil(check, timeoutMs))) throw new Error('timed out waiting');
}
