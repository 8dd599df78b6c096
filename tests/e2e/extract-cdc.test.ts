// CDC loaders end to end (`incremental: { mode: cdc }`): a real Postgres
// source (a database of its own per test, wal_level = logical, its replication
// slots dropped with it) loaded into DuckDB, Postgres and Delta targets.
// Inserts, updates (a changed key, NULLs, quotes, newlines, a large value an
// update leaves alone) and deletes between runs are reflected exactly: the
// target is compared with the source, column by column. A process killed with
// SIGKILL after it has read the changes and before it commits them, and one
// killed after the target commit and before the slot is advanced, lose and
// duplicate nothing (DuckDB and Delta). A dropped slot, a slot consumed by
// another reader and a truncated source table give a full reload that says
// why; so does a slot the server invalidated (wal_status = lost), on a
// private cluster started with a tiny max_slot_wal_keep_size. A million rows
// are loaded once, then only a 1% change.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgDatabase, dbPathOf, dropPgDatabase, etlYml, pgConnect, pgTestSchemas, readJson, runCli, startCli, withDb, writeProject, type CliResult } from './helpers.js';
import { startPrivatePostgres } from './private-postgres.js';
import { extractTargetYml, storeOf, withStore } from './targets.js';

const pg = pgTestSchemas();

/** The source databases of this file's tests: dropped (with their slots) after each test. */
const databases: string[] = [];
afterEach(async () => {
  for (const url of databases.splice(0)) await dropPgDatabase(pg.admin, url);
});

async function database(prefix: string): Promise<string> {
  const url = await createPgDatabase(pg.admin, prefix);
  databases.push(url);
  return url;
}

/** Runs SQL on the source (its own connection, closed after). */
async function onSource(url: string, ...statements: string[]): Promise<void> {
  const c = await pgConnect(url);
  try {
    for (const s of statements) await c.query(s);
  } finally {
    await c.end();
  }
}

async function sourceRows(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = await pgConnect(url);
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

const BIG = (tag: string) => `repeat('${tag} ', 3000)`;

/** customers: every kind of value test_decoding prints differently, and a note large enough to be TOASTed. */
async function sourceTable(url: string, rows: number): Promise<void> {
  await onSource(
    url,
    'create table public.customers (id bigint primary key, name text, email varchar(80), amount numeric(12,2), active boolean, born date, updated_at timestamptz not null, score double precision, note text)',
    // Stored out of line uncompressed: a large note is TOASTed even though it repeats itself.
    'alter table public.customers alter column note set storage external',
    `insert into public.customers select g, 'name ' || g, case when g % 10 = 0 then null else 'c' || g || '@x.org' end, g * 1.25, g % 3 = 0, date '1990-01-01' + (g % 9000), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', g / 7.0, case when g % 100 = 1 then ${BIG('big')} || g else 'note ' || g end from generate_series(1, ${rows}) g`,
    // Another table of the same database: its changes are in the slot's stream too, and must be ignored.
    'create table public.other (id int primary key, v text)',
  );
}

/** Every column as text the same way on both engines (epoch seconds for the timestamp, md5 of the note). */
const PG_CANONICAL = `select id::text as id, name, email, amount::text as amount, active::text as active, born::text as born, extract(epoch from updated_at)::bigint::text as updated_at, round(score::numeric, 6)::text as score, md5(note) as note from customers order by id`;
const DUCK_CANONICAL = (table: string) =>
  `select id::varchar as id, name, email, amount::varchar as amount, active::varchar as active, born::varchar as born, epoch(updated_at)::bigint::varchar as updated_at, round(score, 6)::decimal(30, 6)::varchar as score, md5(note) as note from ${table} order by id`;

type Target = 'duckdb' | 'postgres' | 'delta';

interface Setup {
  dir: string;
  source: string;
  target: Target;
  /** The target's rows, canonical. */
  loaded(): Promise<Record<string, unknown>[]>;
  /** The source's rows, canonical. */
  expected(): Promise<Record<string, unknown>[]>;
  etl(...args: string[]): Promise<CliResult>;
  /** A query on the target. */
  onTarget(sql: string): Promise<Record<string, unknown>[]>;
}

async function setup(target: Target, rows: number, loader = ''): Promise<Setup> {
  const source = await database('etl_cdc_src');
  await sourceTable(source, rows);
  const targetUrl = target === 'postgres' ? await database('etl_cdc_tgt') : undefined;
  const dir = writeProject({
    'etl.yml': extractTargetYml(target, 'shop', targetUrl),
    'models/crm.yml': `sources:
  - name: crm
    tables:
      - name: customers
        loader:
          type: postgres
          url: "{{env_var 'CRM_URL'}}"
          table: public.customers
          incremental: { mode: cdc${loader} }
`,
  });
  const env = { CRM_URL: source, TZ: 'UTC' };
  const onTarget = (sql: string) => (target === 'postgres' ? sourceRows(targetUrl!, sql) : withStore(target, storeOf(target, dir), (db) => db.rows(sql)));
  return {
    dir,
    source,
    target,
    onTarget,
    loaded: () => onTarget(target === 'postgres' ? PG_CANONICAL.replace('from customers', 'from crm.customers') : DUCK_CANONICAL('crm.customers')),
    expected: () => sourceRows(source, PG_CANONICAL),
    etl: (...args: string[]) => runCli([...args, '--project-dir', dir], { cwd: dir, env, timeoutMs: 300_000 }),
  };
}

function loaderResult(dir: string): Record<string, any> {
  return readJson(dir, 'target/run_results.json').results.find((r: { unique_id: string }) => r.unique_id === 'loader.shop.crm.customers');
}

async function slotOf(source: string): Promise<{ slot_name: string; confirmed: string } | undefined> {
  const dbName = new URL(source).pathname.slice(1);
  const r = await pg.admin.query(`select slot_name, confirmed_flush_lsn::text as confirmed from pg_replication_slots where database = $1`, [dbName]);
  expect(r.rows.length).toBeLessThanOrEqual(1);
  return r.rows[0];
}

async function storedPosition(s: Setup): Promise<string> {
  if (s.target === 'delta') {
    // The table's etl.state domain, as its latest commit that carries one has it.
    const log = path.join(s.dir, 'lake/crm/customers/_delta_log');
    const commits = readdirSync(log).filter((f) => f.endsWith('.json')).sort();
    const states = commits.flatMap((f) => readFileSync(path.join(log, f), 'utf8').split('\n').filter((l) => l.includes('"etl.state"')).map((l) => JSON.parse(JSON.parse(l).domainMetadata.configuration)));
    return String(states.at(-1).cdc.position);
  }
  const rows = await s.onTarget(`select position from etl_meta.cdc_positions where relation = 'crm.customers'`);
  expect(rows).toHaveLength(1);
  return String(rows[0]!.position);
}

/** Changes of every kind, in several transactions, and one of another table. */
async function changeEverything(source: string): Promise<void> {
  await onSource(
    source,
    `insert into customers values (100001, 'O''Brien, "the" new one', null, 1.5, true, '2000-02-29', '2024-06-01 12:00:00+00', 1e-7, e'two\\nlines\\tand a tab \\\\ backslash'), (100002, 'Zoë ✓', 'z@x.org', -3.25, null, null, '2024-06-01 12:00:01+00', -2.5, ${BIG('new')})`,
    `update customers set name = 'renamed ' || id, amount = amount * 2, email = null where id between 2 and 40`,
    // A large note left alone by an update: test_decoding says "unchanged-toast-datum".
    `update customers set amount = 9999.99 where id in (1, 101, 201)`,
    `delete from customers where id between 50 and 59`,
    `update customers set id = 200000 + id where id = 60`,
    'insert into other values (1, $$x$$)',
    `begin; insert into customers values (100003, 'short-lived', null, 0, false, null, now(), 0, 'x'); update customers set note = note || ' (again)' where id = 100003; delete from customers where id = 100003; commit`,
    `begin; update customers set note = 'replaced ' || id where id = 301; update customers set amount = 1 where id = 301; commit`,
    `update customers set amount = 2 where id = 401; update customers set note = ${BIG('late')} where id = 401; update customers set amount = 3 where id = 401`,
  );
}

describe.each<Target>(['duckdb', 'postgres', 'delta'])('CDC into %s', (target) => {
  it('inserts, updates (a changed key, NULLs, quotes, a TOASTed value left alone) and deletes between runs are reflected exactly; the slot moves on', async () => {
    const s = await setup(target, 1000);
    const first = await s.etl('extract');
    expect(first.code, first.output).toBe(0);
    expect(first.stdout).toMatch(/\[CREATE TABLE from slot etl_crm_customers_[0-9a-f]{8} at [0-9A-F]+\/[0-9A-F]+: 1000 read, 1000 loaded/);
    expect(await s.loaded()).toEqual(await s.expected());

    await changeEverything(s.source);
    // The stream really has large values an update left out (what the target must keep).
    const peeked = await sourceRows(s.source, `select count(*)::int as n from pg_logical_slot_peek_changes('${(await slotOf(s.source))!.slot_name}', null, null) where data like '%unchanged-toast-datum%'`);
    expect(peeked[0]!.n).toBe('5');
    const second = await s.etl('extract');
    expect(second.code, second.output).toBe(0);
    expect(second.stdout).toMatch(/\[CDC [0-9A-F]+\/[0-9A-F]+ -> [0-9A-F]+\/[0-9A-F]+: 63 read, \d+ loaded/);
    const result = loaderResult(s.dir);
    expect(result.status).toBe('success');
    // 2 + 39 + 3 inserts and updates, 10 deletes, the key change (a delete and an insert), 3 + 2 + 3 of rows changed twice or more.
    expect(result.adapter_response.rows_read).toBe(2 + 39 + 3 + 10 + 1 + 3 + 2 + 3);
    const loaded = await s.loaded();
    expect(loaded).toEqual(await s.expected());
    expect(loaded.find((r) => r.id === '100001')).toMatchObject({ name: 'O\'Brien, "the" new one', email: null });
    expect(loaded.find((r) => r.id === '60')).toBeUndefined();

    // Nothing new for the table (only the other one changed): nothing loaded, but the slot moves past it.
    await onSource(s.source, 'insert into other values (2, $$y$$)');
    const third = await s.etl('extract');
    expect(third.code, third.output).toBe(0);
    expect(third.stdout).toMatch(/\[CDC no changes since [0-9A-F]+\/[0-9A-F]+: 0 read, 0 loaded/);
    const slot = await slotOf(s.source);
    expect(slot).toBeDefined();
    expect(slot!.confirmed).toBe(await storedPosition(s));
    expect(await s.loaded()).toEqual(await s.expected());
    if (target === 'duckdb') {
      // etl state show lists the slot and the position.
      const state = await s.etl('state', 'show');
      expect(state.code, state.output).toBe(0);
      expect(state.stdout).toContain('cdc_positions');
      expect(state.stdout).toContain(slot!.slot_name);
      expect(state.stdout).toContain(slot!.confirmed);
    }
  }, 180_000);
});

describe.each<Target>(['duckdb', 'delta'])('CDC crash safety (SIGKILL) into %s', (target) => {
  it.each([
    ['after the changes are read, before they are committed', 'cdc changes staged', 'before'],
    ['after the target commit, before the slot is advanced', 'cdc committed', 'after'],
  ])('killed %s: nothing lost, nothing applied twice', async (_when, point, expected) => {
    const s = await setup(target, 500);
    expect((await s.etl('extract')).code).toBe(0);
    const before = await s.loaded();
    const positionBefore = await storedPosition(s);
    await changeEverything(s.source);
    const after = await s.expected();

    const child = startCli(['extract', '--project-dir', s.dir], { cwd: s.dir, env: { CRM_URL: s.source, TZ: 'UTC', ETL_PAUSE_AFTER_SQL: point } });
    await child.waitForOutput(/\[paused after sql\] cdc/, 60_000);
    child.kill('SIGKILL');
    await child.done;

    // Right after the crash: the old table with the old position, or the new one with the new position.
    expect(await s.loaded()).toEqual(expected === 'before' ? before : after);
    const positionAfterCrash = await storedPosition(s);
    if (expected === 'before') expect(positionAfterCrash).toBe(positionBefore);
    else expect(positionAfterCrash).not.toBe(positionBefore);
    // The slot was not advanced either way.
    expect((await slotOf(s.source))!.confirmed).toBe(positionBefore);

    // More changes while it was down, then a normal run.
    await onSource(s.source, `update customers set name = 'after the crash' where id = 7`, 'delete from customers where id = 8');
    const rerun = await s.etl('extract');
    expect(rerun.code, rerun.output).toBe(0);
    // Killed before the commit: every change is read again. After it: the ones the target has are skipped.
    expect(loaderResult(s.dir).adapter_response.rows_read).toBe(expected === 'before' ? 63 + 2 : 2);
    const loaded = await s.loaded();
    expect(loaded).toEqual(await s.expected());
    expect(new Set(loaded.map((r) => r.id)).size).toBe(loaded.length);
    expect((await slotOf(s.source))!.confirmed).toBe(await storedPosition(s));
  }, 180_000);
});

describe('CDC full reloads', () => {
  it('a dropped slot, a truncated source table and --full-refresh reload the table in full and say why', async () => {
    const s = await setup('duckdb', 200);
    expect((await s.etl('extract')).code).toBe(0);
    const slot = (await slotOf(s.source))!.slot_name;

    await onSource(s.source, `update customers set name = 'lost change' where id = 5`);
    await pg.admin.query('select pg_drop_replication_slot($1)', [slot]);
    const dropped = await s.etl('extract');
    expect(dropped.code, dropped.output).toBe(0);
    expect(dropped.stdout).toContain(`FULL RELOAD: replication slot ${slot} no longer exists at the source (dropped?); the changes since`);
    expect(loaderResult(s.dir).status).toBe('warn');
    expect(await s.loaded()).toEqual(await s.expected());
    expect((await slotOf(s.source))!.slot_name).toBe(slot);

    await onSource(s.source, 'truncate customers', `insert into customers select g, 'again ' || g, null, 1, true, null, now(), 0, 'n' from generate_series(1, 30) g`);
    const truncated = await s.etl('extract');
    expect(truncated.code, truncated.output).toBe(0);
    expect(truncated.stdout).toContain('FULL RELOAD: the table was truncated at the source');
    expect(await s.loaded()).toEqual(await s.expected());

    // Another reader consumed the slot past the stored position: the changes it took are lost to this table.
    await onSource(s.source, `update customers set name = 'consumed elsewhere' where id = 3`);
    await onSource(s.source, `select pg_replication_slot_advance('${slot}', pg_current_wal_lsn())`);
    const consumed = await s.etl('extract');
    expect(consumed.code, consumed.output).toBe(0);
    expect(consumed.stdout).toMatch(new RegExp(`FULL RELOAD: replication slot ${slot} is at [0-9A-F]+/[0-9A-F]+, past this table's position [0-9A-F]+/[0-9A-F]+: another reader consumed changes`));
    expect(loaderResult(s.dir).adapter_response.cdc.reason).toMatch(/another reader consumed changes/);
    expect(await s.loaded()).toEqual(await s.expected());

    await onSource(s.source, `delete from customers where id = 1`);
    const refresh = await s.etl('extract', '--full-refresh');
    expect(refresh.code, refresh.output).toBe(0);
    expect(refresh.stdout).toContain(`[FULL REFRESH from slot ${slot} at`);
    expect(loaderResult(s.dir).status).toBe('success');
    expect(await s.loaded()).toEqual(await s.expected());
    // After all that, still one slot, and the next change is read from it.
    await onSource(s.source, `update customers set name = 'next' where id = 2`);
    const next = await s.etl('extract');
    expect(next.stdout).toMatch(/\[CDC .*: 1 read, 1 loaded/);
    expect(await s.loaded()).toEqual(await s.expected());
  }, 180_000);

  it('bad input: cdc with query: is a project error (exit 2, the yml line); a table without a primary key fails the run (exit 1) and creates no slot', async () => {
    const s = await setup('duckdb', 10);
    const yml = `sources:\n  - name: crm\n    tables:\n      - name: customers\n        loader: { type: postgres, url: x, query: select 1, incremental: { mode: cdc } }\n`;
    const bad = writeProject({ 'etl.yml': etlYml('shop'), 'models/crm.yml': yml });
    const r = await runCli(['extract', '--project-dir', bad], { cwd: bad });
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/models\/crm\.yml:5.*incremental mode cdc reads the changes of a table, not of a query/s);

    await onSource(s.source, 'create table public.nokey (a int, b text)');
    const nokey = writeProject({
      'etl.yml': etlYml('shop'),
      'models/crm.yml': `sources:\n  - name: crm\n    tables:\n      - name: nokey\n        loader: { type: postgres, url: "{{env_var 'CRM_URL'}}", table: public.nokey, incremental: { mode: cdc } }\n`,
    });
    const failed = await runCli(['extract', '--project-dir', nokey], { cwd: nokey, env: { CRM_URL: s.source } });
    expect(failed.code, failed.output).toBe(1);
    expect(failed.output).toContain('table public.nokey has no primary key, and incremental.primary_key names none');
    expect(await slotOf(s.source)).toBeUndefined();
  }, 60_000);
});

describe('CDC from a slot the server invalidated', () => {
  // max_slot_wal_keep_size needs ALTER SYSTEM on the shared server: this test starts a cluster of its own.
  it('wal_status = lost (max_slot_wal_keep_size exceeded): a full reload that says why, equal to the source; then CDC again from a new slot', async () => {
    const server = await startPrivatePostgres({ wal_level: 'logical', max_slot_wal_keep_size: '1MB', max_wal_size: '32MB', min_wal_size: '32MB' });
    try {
      const source = server.url;
      await sourceTable(source, 300);
      const dir = writeProject({
        'etl.yml': etlYml('shop'),
        'models/crm.yml': `sources:\n  - name: crm\n    tables:\n      - name: customers\n        loader: { type: postgres, url: "{{env_var 'CRM_URL'}}", table: public.customers, incremental: { mode: cdc } }\n`,
      });
      const etl = (...args: string[]) => runCli([...args, '--project-dir', dir], { cwd: dir, env: { CRM_URL: source, TZ: 'UTC' }, timeoutMs: 120_000 });
      const loaded = () => withDb(dbPathOf(dir), (db) => db.rows(DUCK_CANONICAL('crm.customers')));
      const expected = () => sourceRows(source, PG_CANONICAL);
      const slotStatus = async () => (await sourceRows(source, `select slot_name, wal_status from pg_replication_slots`)) as Array<{ slot_name: string; wal_status: string }>;

      const first = await etl('extract');
      expect(first.code, first.output).toBe(0);
      expect(await loaded()).toEqual(await expected());
      const [slot] = await slotStatus();
      expect(slot).toBeDefined();

      // Changes the slot holds, then WAL written past max_slot_wal_keep_size and checkpoints until the server invalidates the slot.
      await onSource(source, `update customers set name = 'changed before the loss' where id between 1 and 20`, 'delete from customers where id between 21 and 30', `insert into customers values (5000, 'inserted before the loss', null, 1, true, null, now(), 0, 'n')`);
      await onSource(source, 'create table filler (id int, pad text)');
      let status = slot!.wal_status;
      for (let round = 0; round < 20 && status !== 'lost'; round++) {
        await onSource(source, `insert into filler select g, repeat('x', 200) from generate_series(1, 20000) g`, 'select pg_switch_wal()', 'checkpoint');
        status = (await slotStatus()).find((s) => s.slot_name === slot!.slot_name)!.wal_status;
      }
      expect(status).toBe('lost');
      await onSource(source, `update customers set name = 'changed after the loss' where id = 40`);

      const reload = await etl('extract');
      expect(reload.code, reload.output).toBe(0);
      const why = `replication slot ${slot!.slot_name} was invalidated at the source (the WAL it needed was removed: max_slot_wal_keep_size); the changes since`;
      expect(reload.stdout).toContain(`FULL RELOAD: ${why}`);
      // Said again at the end of the run, as a warning.
      expect(reload.stdout).toMatch(/Warning in loader crm\.customers/);
      const result = loaderResult(dir);
      expect(result.status).toBe('warn');
      expect(result.adapter_response.cdc.reason).toContain(why);
      expect(result.adapter_response.rows_loaded).toBe(300 - 10 + 1);
      const after = await loaded();
      expect(after).toEqual(await expected());
      expect(after.filter((r) => r.name === 'changed before the loss')).toHaveLength(20);
      expect(after.find((r) => r.id === '40')!.name).toBe('changed after the loss');
      expect(after.find((r) => r.id === '25')).toBeUndefined();
      // A new slot of the same name, not lost; the next change comes from it.
      expect(await slotStatus()).toEqual([{ slot_name: slot!.slot_name, wal_status: expect.not.stringMatching(/lost/) }]);
      await onSource(source, `delete from customers where id = 41`);
      const next = await etl('extract');
      expect(next.code, next.output).toBe(0);
      expect(next.stdout).toMatch(/\[CDC .*: 1 read, 1 loaded/);
      expect(loaderResult(dir).status).toBe('success');
      expect(await loaded()).toEqual(await expected());
    } finally {
      await server.stop();
    }
  }, 180_000);
});

describe('CDC over a million rows', () => {
  it('loads 1M rows once, then applies only a 1% change (10,000 changes), equal to the source', async () => {
    const s = await setup('duckdb', 1_000_000);
    const first = await s.etl('extract');
    expect(first.code, first.output).toBe(0);
    expect(loaderResult(s.dir).adapter_response.rows_loaded).toBe(1_000_000);
    // 5,000 updates, 2,500 deletes, 2,500 inserts.
    await onSource(
      s.source,
      `update customers set amount = amount + 1, name = name || ' (changed)' where id % 200 = 0`,
      `delete from customers where id % 400 = 100`,
      `insert into customers select g, 'new ' || g, null, 1, true, null, now(), 0, 'n' from generate_series(1000001, 1002500) g`,
    );
    const second = await s.etl('extract');
    expect(second.code, second.output).toBe(0);
    const r = loaderResult(s.dir).adapter_response;
    expect(r.rows_read).toBe(10_000);
    expect(r.rows_loaded).toBe(10_000);
    // Compared by a fingerprint of every row (the md5 of its canonical text) on both sides.
    const rowHashes = (canonical: string) => `select md5(concat_ws('|', ${['id', 'name', 'email', 'amount', 'active', 'born', 'updated_at', 'score', 'note'].map((c) => `coalesce(${c}, '~')`).join(', ')})) as h from (${canonical.replace(/ order by id$/, '')}) as t`;
    const fingerprint = (rows: Record<string, unknown>[]) => `${rows.length}:${rows.reduce((sum, r) => sum + BigInt(`0x${String(r.h).slice(0, 12)}`), 0n)}`;
    const loaded = fingerprint(await s.onTarget(rowHashes(DUCK_CANONICAL('crm.customers'))));
    expect(loaded).toBe(fingerprint(await sourceRows(s.source, rowHashes(PG_CANONICAL))));
    expect(loaded.startsWith('1000000:')).toBe(true);
  }, 600_000);
});

