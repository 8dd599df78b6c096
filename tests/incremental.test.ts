// Unit tests for incremental building blocks: microbatch bounds (parseBound,
// truncate, nextBound, batchesBetween) and batch selection with a pinned
// clock, on_schema_change planning, the SQL engine's incremental DML and its
// transaction, and the etl_meta state (migrations, watermarks, batches).
// Engines are in-memory DuckDB; nothing here spawns the CLI.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DuckDbAdapter } from '../adapters/duckdb/adapter.js';
import type { AdapterSession, ColumnChange } from '../adapters/adapter.js';
import type { Manifest, ManifestNode, NodeConfig } from '../core/compiler/manifest.js';
import { batchesBetween, formatBound, nextBound, parseBound, runMicrobatch, truncate, BATCH_START, BATCH_END } from '../core/materializations/microbatch.js';
import { incremental } from '../core/materializations/incremental.js';
import { snapshot } from '../core/materializations/snapshot.js';
import { explainSchemaChangeFailure, planSchemaChange, SchemaChangeError } from '../core/materializations/schema-change.js';
import { CURRENT_STATE_VERSION, MIGRATIONS } from '../adapters/sql-state.js';
import { pinnedClock } from '../core/clock.js';
import { finishedBatches, migrateState, storedCdcPosition, readState, recordRunEnd, recordRunStart, recordState, type StateRecord } from '../core/state/state.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-incremental-'));
  dirs.push(d);
  return d;
}

const utc = (s: string) => new Date(`${s}Z`);
// The run clock of the tests: each call a minute after the last, from 2024-01-01 (runs apart, whatever the wall clock does).
let minutes = 0;
const nextClock = () => pinnedClock(new Date(Date.UTC(2024, 0, 1) + ++minutes * 60_000));
const at = () => nextClock().now().toISOString();
const iso = (d: Date) => d.toISOString();

// ---------------------------------------------------------------------------

describe('microbatch bounds', () => {
  it('parseBound reads dates as UTC midnight, timestamps without a zone as UTC, and honours an offset', () => {
    expect(iso(parseBound('2024-01-01'))).toBe('2024-01-01T00:00:00.000Z');
    expect(iso(parseBound('2024-01-01 06:30:00'))).toBe('2024-01-01T06:30:00.000Z');
    expect(iso(parseBound('2024-01-01T06:30:00'))).toBe('2024-01-01T06:30:00.000Z');
    expect(iso(parseBound(' 2024-01-01T06:30:00Z '))).toBe('2024-01-01T06:30:00.000Z');
    expect(iso(parseBound('2024-01-01T06:30:00+02:00'))).toBe('2024-01-01T04:30:00.000Z');
    expect(iso(parseBound('2024-01-01 06:30:00-0130'))).toBe('2024-01-01T08:00:00.000Z');
    expect(iso(parseBound('2024-02-29'))).toBe('2024-02-29T00:00:00.000Z');
  });

  it('parseBound rejects what is not a date', () => {
    expect(() => parseBound('yesterday')).toThrow('"yesterday" is not a date or timestamp');
    expect(() => parseBound('2024-13-01')).toThrow(/is not a date or timestamp/);
    expect(() => parseBound('')).toThrow(/is not a date or timestamp/);
  });

  it('formatBound writes UTC seconds, the form used in SQL and in etl_meta.batches', () => {
    expect(formatBound(utc('2024-03-05T07:08:09.999'))).toBe('2024-03-05 07:08:09');
    expect(formatBound(parseBound('2024-01-01T00:00:00+05:00'))).toBe('2023-12-31 19:00:00');
  });

  it('truncate aligns to the start of the hour, day or month (UTC)', () => {
    const t = utc('2024-03-15T13:45:30.250');
    expect(iso(truncate(t, 'hour'))).toBe('2024-03-15T13:00:00.000Z');
    expect(iso(truncate(t, 'day'))).toBe('2024-03-15T00:00:00.000Z');
    expect(iso(truncate(t, 'month'))).toBe('2024-03-01T00:00:00.000Z');
    // Already aligned: unchanged.
    expect(iso(truncate(utc('2024-03-01T00:00:00'), 'month'))).toBe('2024-03-01T00:00:00.000Z');
    expect(iso(truncate(utc('2024-12-31T23:59:59.999'), 'day'))).toBe('2024-12-31T00:00:00.000Z');
  });

  it('nextBound steps an hour, a day, or to the first of the next month (leap years, year ends)', () => {
    expect(iso(nextBound(utc('2024-03-15T23:00:00'), 'hour'))).toBe('2024-03-16T00:00:00.000Z');
    expect(iso(nextBound(utc('2024-02-28T00:00:00'), 'day'))).toBe('2024-02-29T00:00:00.000Z');
    expect(iso(nextBound(utc('2023-02-28T00:00:00'), 'day'))).toBe('2023-03-01T00:00:00.000Z');
    expect(iso(nextBound(utc('2024-01-01T00:00:00'), 'month'))).toBe('2024-02-01T00:00:00.000Z');
    expect(iso(nextBound(utc('2024-12-01T00:00:00'), 'month'))).toBe('2025-01-01T00:00:00.000Z');
  });

  it('batchesBetween covers [from, to) with aligned batches', () => {
    expect(batchesBetween(parseBound('2024-01-01'), parseBound('2024-01-04'), 'day')).toEqual([
      ['2024-01-01 00:00:00', '2024-01-02 00:00:00'],
      ['2024-01-02 00:00:00', '2024-01-03 00:00:00'],
      ['2024-01-03 00:00:00', '2024-01-04 00:00:00'],
    ]);
    // An unaligned start is truncated; an unaligned end still gets the batch it falls in.
    expect(batchesBetween(parseBound('2024-01-01 18:00:00'), parseBound('2024-01-02 00:00:01'), 'day')).toEqual([
      ['2024-01-01 00:00:00', '2024-01-02 00:00:00'],
      ['2024-01-02 00:00:00', '2024-01-03 00:00:00'],
    ]);
    expect(batchesBetween(parseBound('2024-01-01 22:30:00'), parseBound('2024-01-02 01:00:00'), 'hour')).toEqual([
      ['2024-01-01 22:00:00', '2024-01-01 23:00:00'],
      ['2024-01-01 23:00:00', '2024-01-02 00:00:00'],
      ['2024-01-02 00:00:00', '2024-01-02 01:00:00'],
    ]);
    expect(batchesBetween(parseBound('2023-11-15'), parseBound('2024-02-01'), 'month')).toEqual([
      ['2023-11-01 00:00:00', '2023-12-01 00:00:00'],
      ['2023-12-01 00:00:00', '2024-01-01 00:00:00'],
      ['2024-01-01 00:00:00', '2024-02-01 00:00:00'],
    ]);
    // January 2024 by day: 31 batches, end exclusive.
    const jan = batchesBetween(parseBound('2024-01-01'), parseBound('2024-02-01'), 'day');
    expect(jan).toHaveLength(31);
    expect(jan[30]).toEqual(['2024-01-31 00:00:00', '2024-02-01 00:00:00']);
    // Empty and reversed ranges have no batches.
    expect(batchesBetween(parseBound('2024-01-01'), parseBound('2024-01-01'), 'day')).toEqual([]);
    expect(batchesBetween(parseBound('2024-02-01'), parseBound('2024-01-01'), 'day')).toEqual([]);
  });

  it('consecutive batches share their bounds: no gap, no overlap', () => {
    for (const size of ['hour', 'day', 'month'] as const) {
      const batches = batchesBetween(parseBound('2023-12-30 20:00:00'), parseBound('2024-03-02'), size);
      for (let i = 1; i < batches.length; i++) expect(batches[i]![0]).toBe(batches[i - 1]![1]);
    }
  });
});

// ---------------------------------------------------------------------------

/** A minimal manifest node for driving a materialization directly. */
function node(name: string, config: Partial<NodeConfig>, compiled: string, compiledIncremental?: string): ManifestNode {
  return {
    unique_id: `model.unit.${name}`,
    resource_type: 'model',
    package_name: 'unit',
    name,
    path: `${name}.sql`,
    original_file_path: `models/${name}.sql`,
    fqn: ['unit', name],
    database: null,
    schema: 'main',
    alias: name,
    relation_name: `"main"."${name}"`,
    raw_code: compiled,
    compiled_code: compiled,
    compiled_incremental_code: compiledIncremental,
    compiled_path: null,
    language: 'sql',
    depends_on: { nodes: [], macros: [] },
    refs: [],
    sources: [],
    config: { materialized: 'incremental', enabled: true, tags: [], pre_hook: [], post_hook: [], retries: 0, meta: {}, ...config },
    tags: [],
    description: '',
    columns: {},
    meta: {},
    checksum: { name: 'sha256', checksum: '' },
    patch_path: null,
  };
}

const EMPTY_MANIFEST = { nodes: {}, sources: {} } as unknown as Manifest;

describe('with an in-memory DuckDB', () => {
  let adapter: DuckDbAdapter;
  const session = <T>(fn: (s: AdapterSession) => Promise<T>) => adapter.withSession(fn);
  const rows = (sql: string) => session(async (s) => (await s.query(sql)).rows.map((r) => r.map((v) => (typeof v === 'bigint' ? Number(v) : v))));

  beforeEach(async () => {
    adapter = new DuckDbAdapter({ name: 'dev', path: ':memory:', threads: 1 }, tempDir());
    await adapter.open();
  });
  afterEach(async () => {
    await adapter.close();
  });

  // -------------------------------------------------------------------------

  describe('etl_meta migrations', () => {
    it('are numbered 1, 2, ... without gaps, each with a description and statements', () => {
      expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
      expect(CURRENT_STATE_VERSION).toBe(MIGRATIONS.length);
      for (const m of MIGRATIONS) {
        expect(m.description.length).toBeGreaterThan(0);
        expect(m.statements.length).toBeGreaterThan(0);
      }
    });

    it('create etl_meta with every table, record each version once, and are idempotent', async () => {
      expect(await session((s) => migrateState(adapter, s))).toBe(CURRENT_STATE_VERSION);
      expect(await session((s) => migrateState(adapter, s))).toBe(CURRENT_STATE_VERSION);
      const tables = (await rows(`select table_name from information_schema.tables where table_schema = 'etl_meta' order by 1`)).map((r) => r[0]);
      expect(tables).toEqual(['batches', 'cdc_positions', 'node_runs', 'run_starts', 'runs', 'schema_version', 'snapshot_runs', 'watermarks']);
      expect(await rows('select version, description from etl_meta.schema_version order by version')).toEqual(MIGRATIONS.map((m) => [m.version, m.description]));
    });

    it('apply only the versions a target has not seen', async () => {
      // A target at version 1 that already has data keeps it.
      await session((s) => migrateState(adapter, s));
      await session((s) => s.execute(`insert into etl_meta.watermarks values ('main.m', 'model.p.m', 'ts', '2024-01-01 00:00:00', 'r1', current_timestamp)`));
      await session((s) => migrateState(adapter, s));
      expect(await rows('select relation, watermark from etl_meta.watermarks')).toEqual([['main.m', '2024-01-01 00:00:00']]);
    });

    it('refuse a target written by a newer etl', async () => {
      await session((s) => migrateState(adapter, s));
      await session((s) => s.execute(`insert into etl_meta.schema_version values (${CURRENT_STATE_VERSION + 1}, 'from the future', current_timestamp)`));
      await expect(session((s) => migrateState(adapter, s))).rejects.toThrow(
        `the target's etl_meta is at version ${CURRENT_STATE_VERSION + 1}, newer than this etl understands (${CURRENT_STATE_VERSION}); upgrade etl`,
      );
    });

    it('roll a failing migration back whole', async () => {
      MIGRATIONS.push({ version: CURRENT_STATE_VERSION + 1, description: 'broken', statements: ['create table "etl_meta"."half_done" (x integer)', 'this is not sql'] });
      try {
        await expect(session((s) => migrateState(adapter, s))).rejects.toThrow();
        // The released versions went in; the broken one left nothing behind.
        expect(await rows('select version from etl_meta.schema_version order by version')).toEqual(MIGRATIONS.slice(0, -1).map((m) => [m.version]));
        expect(await rows(`select count(*) from information_schema.tables where table_schema = 'etl_meta' and table_name = 'half_done'`)).toEqual([[0]]);
      } finally {
        MIGRATIONS.pop();
      }
    });
  });

  describe('state records', () => {
    beforeEach(async () => {
      await session((s) => migrateState(adapter, s));
    });

    const m = { schema: 'main', name: 'm' };
    const watermark = (runId: string): StateRecord => ({ kind: 'watermark', relation: m, uniqueId: 'model.p.m', eventTimeColumn: 'ts', runId, at: at() });
    const batch = (start: string, status: 'success' | 'error', runId: string, message = ''): StateRecord => ({ kind: 'batch', relation: m, uniqueId: 'model.p.m', start, end: `${start}+1`, status, runId, at: at(), message, rows: null });

    it('a watermark record upserts max(event_time) of the table, read when it is written', async () => {
      await session((s) => s.execute(`create table main.m as select * from (values (1, timestamp '2024-01-01 10:00:00'), (2, timestamp '2024-01-03 00:00:00')) t(id, ts)`));
      await session((s) => recordState(adapter, s, [watermark('run-1')]));
      expect(await rows('select relation, unique_id, event_time_column, watermark, run_id from etl_meta.watermarks')).toEqual([['main.m', 'model.p.m', 'ts', '2024-01-03 00:00:00', 'run-1']]);
      await session((s) => s.execute(`insert into main.m values (3, timestamp '2024-02-01 12:30:00')`));
      await session((s) => recordState(adapter, s, [watermark('run-2')]));
      expect(await rows('select watermark, run_id from etl_meta.watermarks')).toEqual([['2024-02-01 12:30:00', 'run-2']]);
    });

    it('batch records upsert one row per (relation, batch_start); finishedBatches lists the successful ones', async () => {
      const put = (start: string, status: 'success' | 'error', run: string, message = '') => session((s) => recordState(adapter, s, [batch(start, status, run, message)]));
      await put('2024-01-01 00:00:00', 'success', 'r1');
      await put('2024-01-02 00:00:00', 'error', 'r1', 'boom');
      await put('2024-01-03 00:00:00', 'success', 'r1');
      expect([...(await session((s) => finishedBatches(adapter, s, m)))].sort()).toEqual(['2024-01-01 00:00:00', '2024-01-03 00:00:00']);
      await put('2024-01-02 00:00:00', 'success', 'r2');
      expect(await rows(`select batch_start, status, run_id, message from etl_meta.batches order by batch_start`)).toEqual([
        ['2024-01-01 00:00:00', 'success', 'r1', ''],
        ['2024-01-02 00:00:00', 'success', 'r2', ''],
        ['2024-01-03 00:00:00', 'success', 'r1', ''],
      ]);
      expect((await session((s) => finishedBatches(adapter, s, { schema: 'main', name: 'other' }))).size).toBe(0);
      await session((s) => recordState(adapter, s, [{ kind: 'batches_cleared', relation: m }]));
      expect((await session((s) => finishedBatches(adapter, s, m))).size).toBe(0);
    });

    it('a cdc_position record upserts the slot and position of a relation; cdcPosition reads it back', async () => {
      const position = (p: string, runId: string): StateRecord => ({ kind: 'cdc_position', relation: m, uniqueId: 'loader.p.crm.m', slot: 'etl_slot', position: p, runId, at: at() });
      expect(await session((s) => storedCdcPosition(adapter, s, m))).toBeUndefined();
      await session((s) => recordState(adapter, s, [position('0/16B3748', 'r1')]));
      await session((s) => recordState(adapter, s, [position('0/16B3A10', 'r2')]));
      expect(await session((s) => storedCdcPosition(adapter, s, m))).toEqual({ slot: 'etl_slot', position: '0/16B3A10' });
      expect(await rows('select relation, slot, position, run_id from etl_meta.cdc_positions')).toEqual([['main.m', 'etl_slot', '0/16B3A10', 'r2']]);
    });

    it('readState summarises runs, watermarks, batches and snapshots', async () => {
      await session((s) => recordRunStart(adapter, s, { runId: 'r1', command: 'build', target: 'dev', version: '0.0.0', startedAt: '2024-01-01T00:00:00.000Z' }));
      await session((s) => recordState(adapter, s, [{ ...batch('2024-01-01 00:00:00', 'error', 'r1', 'boom'), end: '2024-01-02 00:00:00' } as StateRecord]));
      await session((s) => recordRunEnd(adapter, s, { runId: 'r1', status: 'error', finishedAt: '2024-01-01T00:00:02.000Z' }, [{ unique_id: 'model.p.m', relation: '"main"."m"', status: 'error', started_at: '2024-01-01T00:00:00.000Z', finished_at: '2024-01-01T00:00:01.000Z', rows_affected: null, message: 'boom' }]));
      const state = await session((s) => readState(adapter, s));
      expect(Object.keys(state)).toEqual(['schema_version', 'watermarks', 'batches', 'snapshots', 'cdc_positions', 'runs']);
      expect(state.batches!.rows.map((r) => r.map((v) => (typeof v === 'bigint' ? Number(v) : v)))).toEqual([['main.m', 0, 1, '2024-01-01 00:00:00', '2024-01-01 00:00:00']]);
      expect(state.runs!.rows.map((r) => [r[0], r[1], r[3]])).toEqual([['r1', 'build', 'error']]);
      // The run's times are the ones its clock gave, not the engine's current_timestamp.
      expect(state.runs!.rows.map((r) => [r[4], r[5]])).toEqual([['2024-01-01 00:00:00', '2024-01-01 00:00:02']]);
      expect(await rows('select unique_id, status, message from etl_meta.node_runs')).toEqual([['model.p.m', 'error', 'boom']]);
    });
  });

  // -------------------------------------------------------------------------

  describe('planSchemaChange', () => {
    const plan = async (mode: NodeConfig['on_schema_change'] | undefined, existing: string, incoming: string) => {
      await session(async (s) => {
        await s.execute('drop table if exists main.t');
        await s.execute('drop table if exists main.t__new');
        await s.execute(`create table main.t (${existing})`);
        await s.execute(`create table main.t__new (${incoming})`);
      });
      const n = node('t', mode ? { on_schema_change: mode } : {}, 'select 1');
      return session((s) => planSchemaChange(adapter, s, n, { schema: 'main', name: 't' }, { schema: 'main', name: 't__new' }));
    };

    it('same columns (names compared without case, types canonically): nothing to do, in every mode', async () => {
      for (const mode of ['ignore', 'fail', 'append_new_columns', 'sync_all_columns'] as const) {
        expect(await plan(mode, 'id integer, "Name" varchar', 'id int4, name text')).toEqual({ columns: ['id', 'Name'], changes: [] });
      }
    });

    it('ignore (the default): only the common columns, no changes', async () => {
      expect(await plan(undefined, 'id integer, a varchar', 'id bigint, b varchar')).toEqual({ columns: ['id'], changes: [] });
      expect(await plan('ignore', 'id integer, a varchar', 'id bigint, b varchar')).toEqual({ columns: ['id'], changes: [] });
    });

    it('fail: a SchemaChangeError with a table of every difference', async () => {
      const err = await plan('fail', 'id integer, a varchar, n integer', 'id integer, n bigint, b varchar').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SchemaChangeError);
      const message = (err as Error).message;
      expect(message).toMatch(/^the columns of t changed and on_schema_change is fail; the table is unchanged/);
      expect(message).toMatch(/\| b\s+\| \(absent\)\s+\| VARCHAR\s+\|/);
      expect(message).toMatch(/\| a\s+\| VARCHAR\s+\| \(absent\)\s+\|/);
      expect(message).toMatch(/\| n\s+\| INTEGER\s+\| BIGINT\s+\|/);
      expect(message).toMatch(/--full-refresh/);
    });

    it('append_new_columns: adds the new columns, keeps removed and retyped ones as they are', async () => {
      expect(await plan('append_new_columns', 'id integer, a varchar, n integer', 'id integer, n bigint, b varchar, c date')).toEqual({
        columns: ['id', 'n', 'b', 'c'],
        changes: [
          { kind: 'add', column: 'b', type: 'VARCHAR' },
          { kind: 'add', column: 'c', type: 'DATE' },
        ],
      });
    });

    it('sync_all_columns: adds, drops and retypes', async () => {
      expect(await plan('sync_all_columns', 'id integer, a varchar, n integer', 'id integer, n bigint, b varchar')).toEqual({
        columns: ['id', 'n', 'b'],
        changes: [
          { kind: 'add', column: 'b', type: 'VARCHAR' },
          { kind: 'drop', column: 'a' },
          { kind: 'alter_type', column: 'n', from: 'INTEGER', type: 'BIGINT' },
        ],
      });
    });

    it('explainSchemaChangeFailure names the column and types when the engine refuses a retype', () => {
      const n = node('t', { on_schema_change: 'sync_all_columns' }, 'select 1');
      const p = { columns: ['id', 'b'], changes: [{ kind: 'alter_type', column: 'b', from: 'VARCHAR', type: 'INTEGER' }] as ColumnChange[] };
      const e = explainSchemaChangeFailure(n, p, new Error("Conversion Error: Could not convert string 'b4' to INT32"));
      expect(e).toBeInstanceOf(SchemaChangeError);
      expect(e.message).toBe("cannot change the type of b: VARCHAR -> INTEGER in t: Conversion Error: Could not convert string 'b4' to INT32\n  the table is unchanged; run with --full-refresh to rebuild it");
      // Other errors pass through unchanged.
      const other = new Error('Binder Error: no such column');
      expect(explainSchemaChangeFailure(n, p, other)).toBe(other);
      expect(explainSchemaChangeFailure(n, { columns: [], changes: [] }, new Error('Conversion Error: x'))).toBeInstanceOf(Error);
    });
  });

  // -------------------------------------------------------------------------

  describe('applyIncremental', () => {
    const setup = () =>
      session(async (s) => {
        await migrateState(adapter, s);
        await s.execute(`create table main.t as select * from (values (1, 1, 'a'), (1, 2, 'b'), (2, 1, 'c')) v(k1, k2, val)`);
        await s.execute(`create table main.t__new as select * from (values (1, 2, 'B'), (3, 1, 'd')) v(k1, k2, val)`);
      });
    const apply = (strategy: 'append' | 'merge' | 'delete+insert', extra: Partial<Parameters<DuckDbAdapter['applyIncremental']>[1]> = {}) =>
      session((s) =>
        adapter.applyIncremental(s, {
          strategy,
          target: { schema: 'main', name: 't' },
          staged: { schema: 'main', name: 't__new' },
          columns: ['k1', 'k2', 'val'],
          uniqueKey: strategy === 'append' ? [] : ['k1', 'k2'],
          columnChanges: [],
          state: [],
          ...extra,
        }),
      );
    const table = () => rows('select k1, k2, val from main.t order by all');

    it('append, merge and delete+insert on a composite key', async () => {
      await setup();
      expect(await apply('merge')).toEqual({ rowsAffected: 2 });
      expect(await table()).toEqual([
        [1, 1, 'a'],
        [1, 2, 'B'],
        [2, 1, 'c'],
        [3, 1, 'd'],
      ]);
      await session((s) => s.execute(`update main.t__new set val = val || '2'`));
      await apply('delete+insert');
      expect(await table()).toEqual([
        [1, 1, 'a'],
        [1, 2, 'B2'],
        [2, 1, 'c'],
        [3, 1, 'd2'],
      ]);
      await apply('append');
      expect(await table()).toHaveLength(6);
    });

    it('a failure after the first statement rolls everything back: rows, column changes and state', async () => {
      await setup();
      const before = await table();
      // The delete of delete+insert succeeds, then the insert fails on a value that is not an integer.
      await session((s) => s.execute(`create or replace table main.t__new as select * from (values ('1', 2, 'x'), ('oops', 1, 'y')) v(k1, k2, val)`));
      const wm: StateRecord = { kind: 'watermark', relation: { schema: 'main', name: 't' }, uniqueId: 'model.p.t', eventTimeColumn: 'k1', runId: 'r1', at: at() };
      await expect(
        apply('delete+insert', { columnChanges: [{ kind: 'add', column: 'extra', type: 'integer' }], state: [wm], uniqueKey: ['k2'] }),
      ).rejects.toThrow(/Could not convert string 'oops'/);
      expect(await table()).toEqual(before);
      expect(await rows(`select column_name from information_schema.columns where table_name = 't' order by ordinal_position`)).toEqual([['k1'], ['k2'], ['val']]);
      expect(await rows('select count(*) from etl_meta.watermarks')).toEqual([[0]]);
    });

    it('replace_where (microbatch) swaps exactly the rows of the predicate', async () => {
      await setup();
      await session((s) =>
        adapter.applyIncremental(s, {
          strategy: 'replace_where',
          target: { schema: 'main', name: 't' },
          staged: { sql: `select 1 as k1, 9 as k2, 'z' as val` },
          columns: ['k1', 'k2', 'val'],
          uniqueKey: [],
          where: 'k1 = 1',
          columnChanges: [],
          state: [],
        }),
      );
      expect(await table()).toEqual([
        [1, 9, 'z'],
        [2, 1, 'c'],
      ]);
    });
  });

  // -------------------------------------------------------------------------

  describe('incremental materialization', () => {
    const ctx = (n: ManifestNode, extra: Record<string, unknown> = {}) =>
      session((s) => incremental.run({ node: n, manifest: EMPTY_MANIFEST, adapter, session: s, fullRefresh: false, runId: 'run', clock: nextClock(), ...extra }));

    it('an empty unique_key list appends instead of writing a merge without a key', async () => {
      await session((s) => migrateState(adapter, s));
      await session((s) => s.execute(`create table main.src as select * from (values (1, 'a'), (2, 'b')) v(id, val)`));
      const n = node('m', { incremental_strategy: 'merge', unique_key: [] }, 'select * from main.src', 'select * from main.src where id > (select max(id) from "main"."m")');
      expect((await ctx(n)).message).toMatch(/^CREATE TABLE/);
      await session((s) => s.execute(`insert into main.src values (3, 'c')`));
      const r = await ctx(n);
      expect(r.message).toBe('APPEND (1 rows)');
      expect(await rows('select id, val from main.m order by id')).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ]);
    });
    // #11 item 12: the rows quarantine moves commit with the rows applied, or not at all.
    it('quarantined rows commit with the change: a failed apply moves none, and a rerun quarantines them once', async () => {
      await session((s) => migrateState(adapter, s));
      await session((s) => s.execute(`create table main.src as select * from (values (1, '10'), (2, '20')) v(id, code)`));
      // The incremental SQL leaves code as text: the insert casts it to the table's integer, and 'x' fails there.
      const n = node('q', { incremental_strategy: 'append', quarantine: true }, 'select id, cast(code as integer) as code from main.src', 'select id, code from main.src where id is null or id > (select max(id) from "main"."q")');
      const notNull = { unique_id: 'test.unit.not_null_q_id', resource_type: 'test', name: 'not_null_q_id', attached_node: n.unique_id, row_condition: 'etl_row."id" is null', test_metadata: { name: 'not_null' }, column_name: 'id' };
      const manifest = { nodes: { [n.unique_id]: n, [notNull.unique_id]: notNull }, sources: {}, child_map: { [n.unique_id]: [notNull.unique_id] } } as unknown as Manifest;
      const build = () => session((s) => incremental.run({ node: n, manifest, adapter, session: s, fullRefresh: false, runId: 'run', clock: nextClock() }));
      const quarantine = () => rows(`select count(*) from duckdb_tables() where table_name = 'q__quarantine'`).then(async (r) => (r[0]![0] ? (await rows('select id, code from main.q__quarantine'))  : []));
      expect((await build()).message).toMatch(/^CREATE TABLE/);
      await session((s) => s.execute(`insert into main.src values (null, '30'), (3, 'x')`));
      for (let attempt = 0; attempt < 2; attempt++) {
        await expect(build()).rejects.toThrow(/Could not convert string 'x'/);
        expect(await rows('select id, code from main.q order by id')).toEqual([[1, 10], [2, 20]]);
        expect(await quarantine()).toEqual([]);
      }
      await session((s) => s.execute(`update main.src set code = '3' where id = 3`));
      const r = await build();
      expect(r).toMatchObject({ rowsAffected: 1, quarantined: 1 });
      expect(await rows('select id, code from main.q order by id')).toEqual([[1, 10], [2, 20], [3, 3]]);
      expect(await quarantine()).toEqual([[null, '30']]);
    });
  });

  // -------------------------------------------------------------------------

  // #11 item 13: a snapshot run's record commits with its versions, and its failure is the run's.
  describe('snapshot run records', () => {
    const snap = node('snap', { materialized: 'snapshot', unique_key: 'id', strategy: 'check', check_cols: 'all' }, 'select id, v from main.src');
    const run = () => session((s) => snapshot.run({ node: snap, manifest: EMPTY_MANIFEST, adapter, session: s, fullRefresh: false, runId: 'run-1', clock: nextClock() }));
    const history = () => rows('select id, v, etl_valid_to is null from main.snap order by id, etl_valid_from');
    const records = () => rows('select relation, unique_id, run_id, inserted, invalidated from etl_meta.snapshot_runs order by updated_at');

    beforeEach(async () => {
      await session(async (s) => {
        await migrateState(adapter, s);
        await s.execute(`create table main.src as select * from (values (1, 'a'), (2, 'b')) v(id, v)`);
      });
    });

    it('records each run with the versions it inserted and closed', async () => {
      expect((await run()).message).toBe('SNAPSHOT (2 rows, first run)');
      await session((s) => s.execute(`update main.src set v = 'B' where id = 2`));
      expect((await run()).message).toBe('SNAPSHOT (1 new versions)');
      expect(await records()).toEqual([
        ['main.snap', 'model.unit.snap', 'run-1', 2, 0],
        ['main.snap', 'model.unit.snap', 'run-1', 1, 1],
      ]);
    });

    it('a record that cannot be written fails the run and leaves the history as it was', async () => {
      await run();
      await session((s) => s.execute(`update main.src set v = 'B' where id = 2`));
      await session((s) => s.execute('alter table etl_meta.snapshot_runs rename to snapshot_runs_moved'));
      await expect(run()).rejects.toThrow(/snapshot_runs/);
      expect(await history()).toEqual([
        [1, 'a', true],
        [2, 'b', true],
      ]);
      await session((s) => s.execute('alter table etl_meta.snapshot_runs_moved rename to snapshot_runs'));
      await run();
      expect(await history()).toEqual([
        [1, 'a', true],
        [2, 'b', false],
        [2, 'B', true],
      ]);
      expect((await records()).map((r) => [r[3], r[4]])).toEqual([
        [2, 0],
        [1, 1],
      ]);
    });
  });

  // -------------------------------------------------------------------------

  describe('microbatch batch selection (clock pinned)', () => {
    const NOW = utc('2024-01-05T12:00:00');
    const mb = (lookback?: number) =>
      node(
        'mb',
        { incremental_strategy: 'microbatch', event_time: 'ts', batch_size: 'day', begin: '2024-01-01', ...(lookback === undefined ? {} : { lookback }) },
        `select * from main.events where ts >= '${BATCH_START}' and ts < '${BATCH_END}'`,
      );
    const run = (n: ManifestNode, extra: Record<string, unknown> = {}) =>
      session((s) => runMicrobatch({ node: n, manifest: EMPTY_MANIFEST, adapter, session: s, fullRefresh: false, runId: 'run', clock: pinnedClock(NOW), ...extra }));
    const starts = (batches?: Array<[string, string]>) => (batches ?? []).map((b) => b[0].slice(0, 10));

    beforeEach(async () => {
      await session(async (s) => {
        await migrateState(adapter, s);
        await s.execute(`create table main.events as select i as id, timestamp '2023-12-31 12:00:00' + to_days(cast(i as integer)) as ts from range(0, 6) t(i)`);
      });
    });

    it('a model ending in a semicolon (and a comment) runs batch by batch like any other', async () => {
      const semi = node('mb', { incremental_strategy: 'microbatch', event_time: 'ts', batch_size: 'day', begin: '2024-01-01' }, `select * from main.events where ts >= '${BATCH_START}' and ts < '${BATCH_END}';\n-- done\n`);
      expect(starts((await run(semi)).batches?.successful)).toHaveLength(5);
      expect(await rows('select count(*) from main.mb')).toEqual([[5]]);
    });

    it('the first run does every batch from begin to the batch holding now; the template bounds are filled in', async () => {
      const r = await run(mb());
      expect(starts(r.batches?.successful)).toEqual(['2024-01-01', '2024-01-02', '2024-01-03', '2024-01-04', '2024-01-05']);
      // 2023-12-31 is before begin, 2024-01-06 after now's batch.
      expect(await rows('select id from main.mb order by id')).toEqual([[1], [2], [3], [4], [5]]);
    });

    it('the next run redoes the last done batch and `lookback` before it (dbt), and whatever is not done', async () => {
      await run(mb());
      expect(starts((await run(mb())).batches?.successful)).toEqual(['2024-01-04', '2024-01-05']);
      expect(starts((await run(mb(0))).batches?.successful)).toEqual(['2024-01-05']);
      expect(starts((await run(mb(3))).batches?.successful)).toEqual(['2024-01-02', '2024-01-03', '2024-01-04', '2024-01-05']);
      // A day later: the new day, the last done one and one before it.
      expect(starts((await run(mb(), { clock: pinnedClock(utc('2024-01-06T01:00:00')) })).batches?.successful)).toEqual(['2024-01-04', '2024-01-05', '2024-01-06']);
      expect(await rows('select count(*), count(distinct id) from main.mb')).toEqual([[5, 5]]);
    });

    it('an explicit range does exactly its batches; retry does exactly the given ones', async () => {
      expect(starts((await run(mb(), { batchRange: { start: '2024-01-02', end: '2024-01-04' } })).batches?.successful)).toEqual(['2024-01-02', '2024-01-03']);
      expect(await rows('select id from main.mb order by id')).toEqual([[2], [3]]);
      expect(starts((await run(mb(), { retryBatches: [['2024-01-05 00:00:00', '2024-01-06 00:00:00']] })).batches?.successful)).toEqual(['2024-01-05']);
      expect(await rows('select id from main.mb order by id')).toEqual([[2], [3], [5]]);
      // Batches not done yet are picked up by the next normal run.
      expect(starts((await run(mb())).batches?.successful)).toEqual(['2024-01-01', '2024-01-04', '2024-01-05']);
    });
  });
});
