// Incremental models end to end, through the built CLI on throw-away projects:
// append / merge / delete+insert against dbt's conformance fixtures, microbatch
// (lookback, --event-time-start/--event-time-end backfills, failed batches and
// `etl retry`), is_incremental / this / --full-refresh / full_refresh: false,
// on_schema_change, `etl state show`, and state that lives in the target.
//
// The fixtures (CSV seeds and expected tables ported from dbt's adapter test
// suite) live in tests/fixtures/conformance-data (see its README). Every
// block runs on DuckDB and on Delta (tests/e2e/targets.ts), with the same
// assertions on the data and the state (etl_meta on DuckDB; on Delta the
// tables' etl.state domains and run log, shown as the same etl_meta tables).

import { copyFileSync, cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, killAll, makeTempDir, readJson, readRunResults, removeTempDirs, runCli, writeFiles, writeProject, type CliResult, type Db } from './helpers.js';
import { copyStore, storeOf, targetYml, TARGETS, withStore } from './targets.js';

const FIXTURES = path.join(REPO_ROOT, 'tests', 'fixtures', 'conformance-data');
const fixture = (...parts: string[]) => path.join(FIXTURES, ...parts);
const fixtureText = (...parts: string[]) => readFileSync(fixture(...parts), 'utf8');

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

function etl(dir: string, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir });
}

/** etl with its run clock pinned (ETL_NOW): what "now" is for microbatch bounds and the state's times. */
function etlAt(now: Date, dir: string, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir, env: { ETL_NOW: now.toISOString() } });
}

function expectOk(r: CliResult): void {
  expect(r.code, r.output).toBe(0);
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

interface RunResult {
  unique_id: string;
  status: string;
  message: string;
  rows_affected: number | null;
  batch_results?: { successful: Array<[string, string]>; failed: Array<[string, string]> };
}

function runResults(dir: string): { invocation_id: string; results: Map<string, RunResult> } {
  const rr = readRunResults<{ metadata: { invocation_id: string }; results: RunResult[] }>(dir);
  return { invocation_id: rr.metadata.invocation_id, results: new Map(rr.results.map((r) => [r.unique_id, r])) };
}

function resultOf(dir: string, uniqueId: string): RunResult {
  const r = runResults(dir).results.get(uniqueId);
  if (!r) throw new Error(`${uniqueId} is not in run_results.json`);
  return r;
}

/** A query's rows with every value cast to text, sorted: what two tables are compared by. */
async function textRows(db: Db, sql: string): Promise<{ columns: string[]; rows: Array<Array<string | null>> }> {
  const reader = await db.connection.runAndReadAll(`select cast(columns(*) as varchar) from (\n${sql}\n) as etl_cmp order by all`);
  return { columns: reader.columnNames(), rows: reader.getRowsJS() as Array<Array<string | null>> };
}

/** Asserts, row by row, that a query returns exactly the rows of an expected CSV (read with the seed's CSV reader). */
async function expectRowsMatchCsv(db: Db, sql: string, csvPath: string): Promise<void> {
  const actual = await textRows(db, sql);
  const expected = await textRows(db, `select * from read_csv(${sqlString(csvPath)}, header = true, auto_detect = true)`);
  expect(actual.columns, `columns of ${sql}`).toEqual(expected.columns);
  expect(actual.rows, `rows of ${sql} against ${path.basename(csvPath)}`).toEqual(expected.rows);
}

async function columnsOf(db: Db, table: string, schema = 'main'): Promise<Array<[string, string]>> {
  const rows = await db.rows(`select column_name, data_type from information_schema.columns where table_schema = '${schema}' and table_name = '${table}' order by ordinal_position`);
  return rows.map((r) => [r.column_name as string, r.data_type as string]);
}

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: correctness: append, merge (single and list key), empty key, delete+insert on a composite key', (target) => {
  const F = 'incremental_unique_key';
  const model = (config: string, from: string, cutoff: string) =>
    `{{config materialized="incremental" ${config}}}\nselect * from {{ref "${from}"}}\n{{#if is_incremental}}where ${cutoff} > (select max(${cutoff}) from {{this}}){{/if}}\n`;
  const LINES_BEFORE = 'order_id,line_no,sku,qty,updated_at\n1,1,A,1,2024-01-01\n1,2,B,2,2024-01-01\n2,1,A,5,2024-01-02\n3,1,C,1,2024-01-03\n3,2,D,1,2024-01-03\n';
  // (1,2) and (3,1) change, (2,2) and (4,1) are new; their neighbours on either key column stay as they were.
  const LINES_AFTER = `${LINES_BEFORE.replace('1,2,B,2,2024-01-01', '1,2,B,7,2024-02-01').replace('3,1,C,1,2024-01-03', '3,1,C,9,2024-02-01')}2,2,E,1,2024-02-01\n4,1,F,3,2024-02-01\n`;
  const LINES_EXPECTED = 'order_id,line_no,sku,qty,updated_at\n1,1,A,1,2024-01-01\n1,2,B,7,2024-02-01\n2,1,A,5,2024-01-02\n2,2,E,1,2024-02-01\n3,1,C,9,2024-02-01\n3,2,D,1,2024-01-03\n4,1,F,3,2024-02-01\n';
  let dir: string;
  let step1Db: string;
  let build1: CliResult;
  let build2: CliResult;

  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': targetYml(target, 'conformance'),
      'seeds/base.csv': fixtureText('incremental_append', 'seeds', 'base.csv'),
      'seeds/seed.csv': fixtureText(F, 'seeds', 'seed.csv'),
      'seeds/seed_add.csv': fixtureText('incremental_unique_key_empty', 'seeds', 'seed.csv'),
      'seeds/lines.csv': LINES_BEFORE,
      'models/incremental.sql': model('', 'base', 'id'),
      'models/one_str__overwrite.sql': model('unique_key="state"', 'seed', 'last_visit_date'),
      'models/unique_key_list__inplace_overwrite.sql': model('unique_key=(list "state" "county" "city")', 'seed', 'last_visit_date'),
      'models/bad_unique_key.sql': model('unique_key="thisisnotacolumn"', 'seed', 'last_visit_date'),
      'models/no_unique_key.sql': model('', 'seed_add', 'last_visit_date'),
      'models/empty_str__unique_key.sql': model('unique_key=""', 'seed_add', 'last_visit_date'),
      'models/empty_unique_key_list.sql': model('unique_key=(list)', 'seed_add', 'last_visit_date'),
      'models/lines_di.sql': model('incremental_strategy="delete+insert" unique_key=(list "order_id" "line_no")', 'lines', 'updated_at'),
      'expected/lines_before.csv': LINES_BEFORE,
      'expected/lines.csv': LINES_EXPECTED,
    });
    build1 = await etl(dir, 'build');
    step1Db = copyStore(target, dir, path.join(dir, target === 'duckdb' ? 'step1.duckdb' : 'step1-lake'));
    // The second step: dbt's "added" seed, its duplicate_insert / add_new_rows statements, new order lines.
    copyFileSync(fixture('incremental_append', 'replacements', 'base.csv'), path.join(dir, 'seeds/base.csv'));
    writeFileSync(path.join(dir, 'seeds/seed.csv'), `${fixtureText(F, 'seeds', 'seed.csv').trimEnd()}\nCT,Hartford,Hartford,2022-02-14\n`);
    writeFileSync(path.join(dir, 'seeds/seed_add.csv'), `${fixtureText('incremental_unique_key_empty', 'seeds', 'seed.csv').trimEnd()}\nWA,King,Seattle,2022-02-01\nCA,Los Angeles,Los Angeles,2022-02-01\n`);
    writeFileSync(path.join(dir, 'seeds/lines.csv'), LINES_AFTER);
    build2 = await etl(dir, 'build');
  });

  it('the first build creates every model as a table equal to its seed', async () => {
    expectOk(build1);
    await withStore(target, step1Db, async (db) => {
      await expectRowsMatchCsv(db, 'select * from main."incremental"', fixture('incremental_append', 'expected', 'base.csv'));
      for (const m of ['one_str__overwrite', 'unique_key_list__inplace_overwrite', 'bad_unique_key']) {
        await expectRowsMatchCsv(db, `select * from main.${m}`, fixture(F, 'seeds', 'seed.csv'));
      }
      for (const m of ['no_unique_key', 'empty_str__unique_key', 'empty_unique_key_list']) {
        await expectRowsMatchCsv(db, `select * from main.${m}`, fixture('incremental_unique_key_empty', 'seeds', 'seed.csv'));
      }
      await expectRowsMatchCsv(db, 'select * from main.lines_di', path.join(dir, 'expected/lines_before.csv'));
    });
  });

  it('append: the added seed rows are appended (incremental_append/expected/added.csv)', async () => {
    const r = resultOf(dir, 'model.conformance.incremental');
    expect(r.status, r.message).toBe('success');
    expect(r.rows_affected).toBe(10);
    expect(r.message).toMatch(/^APPEND/);
    await withStore(target, storeOf(target, dir), (db) => expectRowsMatchCsv(db, 'select * from main."incremental"', fixture('incremental_append', 'expected', 'added.csv')));
  });

  it('merge on one key overwrites the existing row (one_str__overwrite.csv)', async () => {
    const r = resultOf(dir, 'model.conformance.one_str__overwrite');
    expect(r.status, r.message).toBe('success');
    expect(r.rows_affected).toBe(1);
    expect(r.message).toMatch(/^MERGE/);
    await withStore(target, storeOf(target, dir), (db) => expectRowsMatchCsv(db, 'select * from main.one_str__overwrite', fixture(F, 'expected', 'one_str__overwrite.csv')));
  });

  it('merge on a list key updates in place (unique_key_list__inplace_overwrite.csv)', async () => {
    expect(resultOf(dir, 'model.conformance.unique_key_list__inplace_overwrite').status).toBe('success');
    await withStore(target, storeOf(target, dir), (db) =>
      expectRowsMatchCsv(db, 'select * from main.unique_key_list__inplace_overwrite', fixture(F, 'expected', 'unique_key_list__inplace_overwrite.csv')),
    );
  });

  it('no key, an empty string key and an empty key list all append (incremental_unique_key_empty)', async () => {
    for (const m of ['no_unique_key', 'empty_str__unique_key', 'empty_unique_key_list']) {
      const r = resultOf(dir, `model.conformance.${m}`);
      expect(r.status, `${m}: ${r.message}`).toBe('success');
      expect(r.rows_affected, m).toBe(2);
    }
    await withStore(target, storeOf(target, dir), async (db) => {
      for (const m of ['no_unique_key', 'empty_str__unique_key', 'empty_unique_key_list']) {
        await expectRowsMatchCsv(db, `select * from main.${m}`, fixture('incremental_unique_key_empty', 'expected', 'seed_after_add_new_rows.csv'));
      }
    });
  });

  it('delete+insert on a composite key replaces exactly the rows with a new (order_id, line_no)', async () => {
    const r = resultOf(dir, 'model.conformance.lines_di');
    expect(r.status, r.message).toBe('success');
    expect(r.rows_affected).toBe(4);
    expect(r.message).toMatch(/^DELETE\+INSERT/);
    await withStore(target, storeOf(target, dir), async (db) => {
      await expectRowsMatchCsv(db, 'select * from main.lines_di', path.join(dir, 'expected/lines.csv'));
      expect(await db.value('select count(*) from (select order_id, line_no from main.lines_di group by all having count(*) > 1)')).toBe(0);
    });
  });

  it('a unique_key that is not a column fails that model only, leaving its table as it was (incremental_unique_key_missing_column)', async () => {
    expect(build2.code, build2.output).toBe(1);
    const { results } = runResults(dir);
    const failed = [...results.values()].filter((r) => r.status !== 'success').map((r) => r.unique_id);
    expect(failed).toEqual(['model.conformance.bad_unique_key']);
    expect(results.get('model.conformance.bad_unique_key')!.message).toMatch(/thisisnotacolumn/);
    await withStore(target, storeOf(target, dir), async (db) => {
      await expectRowsMatchCsv(db, 'select * from main.bad_unique_key', fixture('incremental_unique_key_missing_column', 'seeds', 'seed.csv'));
      expect(await db.tempRelations()).toEqual([]);
    });
  });

  it('an unknown incremental_strategy is a project error with file:line, exit 2, nothing built (incremental_bad_strategy)', async () => {
    const bad = writeProject({
      'etl.yml': targetYml(target, 'bad_strategy'),
      'seeds/base.csv': fixtureText('incremental_bad_strategy', 'seeds', 'base.csv'),
      'models/incremental.sql': '{{config materialized="incremental" incremental_strategy="bad_strategy"}}\nselect * from {{ref "base"}}\n',
    });
    const r = await etl(bad, 'build');
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(/models\/incremental\.sql:1:\d+: invalid incremental_strategy "bad_strategy" for model "incremental"\n.*append, merge, delete\+insert, microbatch/);
    expect(existsSync(storeOf(target, bad))).toBe(false);
  });
});

// ---------------------------------------------------------------------------

const DAY = 86_400_000;
// The runs below pin their clock (ETL_NOW) to this instant: the batches are the same whatever the wall clock says.
const NOW = new Date('2024-03-10T12:00:00Z');
const day = (offset: number) => new Date(Math.floor(NOW.getTime() / DAY) * DAY + offset * DAY);
const ymd = (d: Date) => d.toISOString().slice(0, 10);
const at = (d: Date, hour: number) => `${ymd(d)} ${String(hour).padStart(2, '0')}:00:00`;

describe.each(TARGETS)('%s: microbatch', (target) => {
  it('lookback: a late row of the previous day is picked up by the next run, one older than lookback is not (until --full-refresh)', async () => {
    const seed = (rows: Array<[number, string]>) => `id,ts,v\n${rows.map(([id, ts]) => `${id},${ts},${id * 10}`).join('\n')}\n`;
    const initial: Array<[number, string]> = [-4, -3, -2, -1, 0].map((n, i) => [i + 1, at(day(n), 6)]);
    const dir = writeProject({
      'etl.yml': targetYml(target, 'mb_lookback'),
      'seeds/events.csv': seed(initial),
      'models/events_mb.sql': `{{config materialized="incremental" incremental_strategy="microbatch" event_time="ts" batch_size="day" begin="${ymd(day(-4))}" lookback=1}}\nselect id, ts, v from {{ref "events"}}\n`,
    });
    expectOk(await etlAt(NOW, dir, 'build'));
    const run1 = runResults(dir).invocation_id;
    expect(resultOf(dir, 'model.mb_lookback.events_mb').batch_results?.successful).toHaveLength(5);

    // Late rows: yesterday (within lookback), three days ago (beyond it), and today's batch.
    writeFileSync(path.join(dir, 'seeds/events.csv'), seed([...initial, [10, at(day(-1), 18)], [11, at(day(-3), 18)], [12, at(day(0), 18)]]));
    expectOk(await etlAt(NOW, dir, 'build'));
    const run2 = runResults(dir).invocation_id;
    const r2 = resultOf(dir, 'model.mb_lookback.events_mb');
    expect(r2.batch_results?.successful.map((b) => b[0])).toEqual([at(day(-1), 0), at(day(0), 0)]);
    // days -1 and 0: ids 4 and 10, 5 and 12.
    expect(r2.message).toMatch(/MICROBATCH \(2 batches, 4 rows\)/);
    await withStore(target, storeOf(target, dir), async (db) => {
      expect((await db.rows('select id from main.events_mb order by id')).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 10, 12]);
      const batches = await db.rows(`select batch_start, batch_end, status, run_id from etl_meta.batches where relation = 'main.events_mb' order by batch_start`);
      expect(batches.map((b) => [b.batch_start, b.batch_end, b.status])).toEqual([-4, -3, -2, -1, 0].map((n) => [at(day(n), 0), at(day(n + 1), 0), 'success']));
      expect(batches.map((b) => b.run_id)).toEqual([run1, run1, run1, run2, run2]);
      // The state's times are the run clock's, not the engine's.
      expect(await db.rows(`select distinct cast(updated_at as varchar) as t from etl_meta.batches`)).toEqual([{ t: '2024-03-10 12:00:00' }]);
      expect(await db.rows(`select cast(started_at as varchar) as s, cast(finished_at as varchar) as f from etl_meta.runs`)).toEqual([
        { s: '2024-03-10 12:00:00', f: '2024-03-10 12:00:00' },
        { s: '2024-03-10 12:00:00', f: '2024-03-10 12:00:00' },
      ]);
    });

    // A full refresh rebuilds every batch, so the row beyond lookback arrives too.
    expectOk(await etlAt(NOW, dir, 'build', '--full-refresh'));
    expect(resultOf(dir, 'model.mb_lookback.events_mb').message).toMatch(/^FULL REFRESH \(5 batches, 8 rows\)/);
    await withStore(target, storeOf(target, dir), async (db) => {
      expect((await db.rows('select id from main.events_mb order by id')).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 10, 11, 12]);
      expect(await db.value(`select count(*) from etl_meta.batches where relation = 'main.events_mb' and status = 'success'`)).toBe(5);
    });

    // A day later by the clock: the new day's batch, the last done one and one of lookback.
    expectOk(await etlAt(new Date(NOW.getTime() + DAY), dir, 'build'));
    expect(resultOf(dir, 'model.mb_lookback.events_mb').batch_results?.successful.map((b) => b[0])).toEqual([at(day(-1), 0), at(day(0), 0), at(day(1), 0)]);
  });

  it('ETL_NOW that is not a timestamp is a usage error (exit 2) before anything is built', async () => {
    const dir = writeProject({ 'etl.yml': targetYml(target, 'bad_now'), 'models/m.sql': 'select 1 as id\n' });
    const r = await runCli(['build', '--project-dir', dir], { cwd: dir, env: { ETL_NOW: 'yesterday' } });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(/ETL_NOW="yesterday" is not a timestamp/);
    expect(r.stderr).toMatch(/ETL_NOW=2024-01-06T01:00:00Z/);
    expect(existsSync(storeOf(target, dir))).toBe(false);
  });

  describe('--event-time-start/--event-time-end backfill, a failing batch, etl retry', () => {
    let dir: string;
    let first: CliResult;
    const BAD_DAY = '2024-01-03';

    beforeAll(async () => {
      // Every 12 hours from 2023-12-28 to 2024-02-04; raw_v is not a number on 2024-01-03.
      const rows = ['id,ts,raw_v'];
      for (let t = Date.UTC(2023, 11, 28, 6), id = 1; t < Date.UTC(2024, 1, 5); t += DAY / 2, id++) {
        const ts = new Date(t).toISOString().slice(0, 19).replace('T', ' ');
        rows.push(`${id},${ts},${ts.startsWith(BAD_DAY) ? 'x' : id}`);
      }
      dir = writeProject({
        'etl.yml': targetYml(target, 'mb'),
        'seeds/events.csv': `${rows.join('\n')}\n`,
        'models/mb.sql': '{{config materialized="incremental" incremental_strategy="microbatch" event_time="ts" batch_size="day" begin="2023-06-01"}}\nselect id, ts, cast(raw_v as integer) as v from {{ref "events"}}\n',
      });
      first = await etl(dir, 'build', '--event-time-start', '2024-01-01', '--event-time-end', '2024-02-01');
    });

    it('backfills exactly the range; the failing batch is listed in run_results, the others are loaded, exit 1', async () => {
      expect(first.code, first.output).toBe(1);
      expect(first.output).toMatch(/1 of 31 batches failed \(retry them with etl retry\)/);
      expect(first.output).toMatch(/2024-01-03 00:00:00 \.\. 2024-01-04 00:00:00: Conversion Error/);
      const r = resultOf(dir, 'model.mb.mb');
      expect(r.status).toBe('error');
      expect(r.batch_results!.failed).toEqual([['2024-01-03 00:00:00', '2024-01-04 00:00:00']]);
      expect(r.batch_results!.successful).toHaveLength(30);
      expect(r.batch_results!.successful[0]).toEqual(['2024-01-01 00:00:00', '2024-01-02 00:00:00']);
      expect(r.batch_results!.successful[29]).toEqual(['2024-01-31 00:00:00', '2024-02-01 00:00:00']);
      await withStore(target, storeOf(target, dir), async (db) => {
        // January only (the seed spans 2023-12-28 .. 2024-02-04), without the failed day.
        const expected = await textRows(db, `select id, ts, cast(raw_v as integer) as v from main.events where ts >= '2024-01-01' and ts < '2024-02-01' and cast(ts as date) <> date '${BAD_DAY}'`);
        expect(await textRows(db, 'select * from main.mb')).toEqual(expected);
        expect(expected.rows).toHaveLength(60);
        const batches = await db.rows(`select batch_start, batch_end, status, message from etl_meta.batches where relation = 'main.mb' order by batch_start`);
        expect(batches).toHaveLength(31);
        expect(batches[0]!.batch_start).toBe('2024-01-01 00:00:00');
        expect(batches[30]!.batch_end).toBe('2024-02-01 00:00:00');
        expect(batches.filter((b) => b.status === 'error').map((b) => b.batch_start)).toEqual(['2024-01-03 00:00:00']);
        expect(batches.find((b) => b.status === 'error')!.message).toMatch(/Conversion Error/);
      });
    });

    it('after the data is fixed, etl retry reruns exactly the failed batch', async () => {
      const before = await withStore(target, storeOf(target, dir), (db) => db.rows(`select batch_start, status, run_id, cast(updated_at as varchar) as updated_at from etl_meta.batches where relation = 'main.mb' order by batch_start`));
      await withStore(target, storeOf(target, dir), (db) => db.connection.run(`update main.events set raw_v = '99' where raw_v = 'x'`).then(() => undefined), { readOnly: false });
      const retry = await etl(dir, 'retry');
      expectOk(retry);
      const { invocation_id, results } = runResults(dir);
      expect([...results.keys()]).toEqual(['model.mb.mb']);
      expect(results.get('model.mb.mb')!.batch_results).toEqual({ successful: [['2024-01-03 00:00:00', '2024-01-04 00:00:00']], failed: [] });
      await withStore(target, storeOf(target, dir), async (db) => {
        const after = await db.rows(`select batch_start, status, run_id, cast(updated_at as varchar) as updated_at from etl_meta.batches where relation = 'main.mb' order by batch_start`);
        expect(after).toHaveLength(31);
        for (const [i, b] of after.entries()) {
          if (b.batch_start === '2024-01-03 00:00:00') {
            expect(b.status).toBe('success');
            expect(b.run_id).toBe(invocation_id);
            expect(b.updated_at! > before[i]!.updated_at!).toBe(true);
          } else {
            expect(b, `batch ${b.batch_start} must not change`).toEqual(before[i]);
          }
        }
        const expected = await textRows(db, `select id, ts, cast(raw_v as integer) as v from main.events where ts >= '2024-01-01' and ts < '2024-02-01'`);
        expect(await textRows(db, 'select * from main.mb')).toEqual(expected);
        expect(await db.value(`select count(*) from main.mb where cast(ts as date) = date '${BAD_DAY}' and v = 99`)).toBe(2);
        expect(await db.value(`select status from etl_meta.runs where run_id = '${invocation_id}'`)).toBe('success');
      });
    });

    it('etl state show prints the watermark, the batches and the runs', async () => {
      const r = await etl(dir, 'state', 'show');
      expectOk(r);
      const section = (name: string) => r.stdout.split(`etl_meta ${name}:`)[1]?.split('etl_meta ')[0] ?? '';
      expect(section('watermarks')).toMatch(/\| main\.mb\s+\| ts\s+\| 2024-01-31 18:00:00 \|/);
      expect(section('batches')).toMatch(/\| main\.mb\s+\|\s+31 \|\s+0 \| 2024-01-01 00:00:00 \| 2024-01-31 00:00:00 \|/);
      expect(section('runs')).toMatch(/\| retry\s+\| dev\s+\| success/);
      expect(section('runs')).toMatch(/\| build\s+\| dev\s+\| error/);
      const json = await etl(dir, 'state', 'show', '--log-format', 'json');
      expectOk(json);
      const tables = JSON.parse(json.stdout) as Record<string, { columns: string[]; rows: unknown[][] }>;
      expect(Object.keys(tables)).toEqual(expect.arrayContaining(['schema_version', 'watermarks', 'batches', 'snapshots', 'runs']));
      expect(tables.batches!.rows.map((row) => row.map(String))).toEqual([['main.mb', '31', '0', '2024-01-01 00:00:00', '2024-01-31 00:00:00']]);
      expect(tables.watermarks!.rows.map((row) => row.slice(0, 3))).toEqual([['main.mb', 'ts', '2024-01-31 18:00:00']]);
    });
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: is_incremental, this, --full-refresh and full_refresh: false', (target) => {
  const FLAGS = (fullBranch = "'full'") =>
    '{{config materialized="incremental" unique_key="id"}}\n' +
    `select id, {{#if is_incremental}}'incremental'{{else}}${fullBranch}{{/if}} as mode, '{{this}}' as this_rel from {{ref "ids"}}\n` +
    '{{#if is_incremental}}where id > (select max(id) from {{this}}){{/if}}\n';
  const PROTECTED = '{{config materialized="incremental" full_refresh=false}}\nselect id from {{ref "ids"}}\n{{#if is_incremental}}where id > (select max(id) from {{this}}){{/if}}\n';
  const ids = (from: number, to: number) => `id\n${Array.from({ length: to - from + 1 }, (_, i) => from + i).join('\n')}\n`;
  let dir: string;

  beforeAll(() => {
    dir = writeProject({ 'etl.yml': targetYml(target, 'flags'), 'seeds/ids.csv': ids(1, 3), 'models/flags.sql': FLAGS(), 'models/protected.sql': PROTECTED });
  });

  const flagRows = () => withStore(target, storeOf(target, dir), (db) => db.rows('select id, mode, this_rel from main.flags order by id'));
  const protectedIds = () => withStore(target, storeOf(target, dir), async (db) => (await db.rows('select id from main.protected order by id')).map((r) => r.id));

  it('is_incremental is false on the first run and true on the next; this is the model relation', async () => {
    expectOk(await etl(dir, 'build'));
    expect(await flagRows()).toEqual([1, 2, 3].map((id) => ({ id, mode: 'full', this_rel: '"main"."flags"' })));
    expect(resultOf(dir, 'model.flags.flags').message).toMatch(/^CREATE TABLE/);
    writeFileSync(path.join(dir, 'seeds/ids.csv'), ids(1, 5));
    expectOk(await etl(dir, 'build'));
    expect(await flagRows()).toEqual([
      ...[1, 2, 3].map((id) => ({ id, mode: 'full', this_rel: '"main"."flags"' })),
      ...[4, 5].map((id) => ({ id, mode: 'incremental', this_rel: '"main"."flags"' })),
    ]);
    expect(resultOf(dir, 'model.flags.flags').message).toMatch(/^MERGE \(2 rows/);
    expect(await protectedIds()).toEqual([1, 2, 3, 4, 5]);
  });

  it('a failing --full-refresh leaves the previous table readable and unchanged', async () => {
    const before = await flagRows();
    writeFileSync(path.join(dir, 'models/flags.sql'), FLAGS("cast('not a number' as integer)"));
    writeFileSync(path.join(dir, 'seeds/ids.csv'), ids(2, 6));
    const r = await etl(dir, 'build', '--full-refresh');
    expect(r.code, r.output).toBe(1);
    expect(resultOf(dir, 'model.flags.flags').status).toBe('error');
    expect(resultOf(dir, 'model.flags.flags').message).toMatch(/Conversion Error/);
    expect(await flagRows()).toEqual(before);
    await withStore(target, storeOf(target, dir), async (db) => expect(await db.tempRelations()).toEqual([]));
  });

  it('full_refresh: false protects a model from --full-refresh: it stays incremental', async () => {
    // The run above had --full-refresh: protected kept id 1 (gone from the seed) and appended 6.
    expect(resultOf(dir, 'model.flags.protected').status).toBe('success');
    expect(resultOf(dir, 'model.flags.protected').message).toMatch(/^APPEND \(1 rows/);
    expect(await protectedIds()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('--full-refresh rebuilds from scratch', async () => {
    writeFileSync(path.join(dir, 'models/flags.sql'), FLAGS());
    expectOk(await etl(dir, 'build', '--full-refresh'));
    expect(resultOf(dir, 'model.flags.flags').message).toMatch(/^FULL REFRESH \(5 rows\)/);
    expect(await flagRows()).toEqual([2, 3, 4, 5, 6].map((id) => ({ id, mode: 'full', this_rel: '"main"."flags"' })));
    expect(await protectedIds()).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: on_schema_change', (target) => {
  const MODES = ['ignore', 'fail', 'append_new_columns', 'sync_all_columns'] as const;
  // v1: id integer, a varchar, n integer. v2: a is gone, n is bigint (a widening), b is new.
  const V1 = 'select cast(i as integer) as id, \'a\' || i as a, cast(i as integer) as n from range(1, 4) t(i)';
  const V2 = 'select cast(i as integer) as id, cast(i * 10 as bigint) as n, \'b\' || i as b from range(1, 6) t(i)';
  // v3: b becomes an integer, but the table's b holds 'b4', 'b5'.
  const V3 = 'select cast(i as integer) as id, cast(i * 10 as bigint) as n, cast(i as integer) as b from range(1, 7) t(i)';
  const model = (mode: string, body: string) =>
    `{{config materialized="incremental" on_schema_change="${mode}"}}\nselect * from (${body}) as v\n{{#if is_incremental}}where id > (select max(id) from {{this}}){{/if}}\n`;
  let dir: string;
  let second: CliResult;
  const table = (m: string) => `osc_${m}`;

  beforeAll(async () => {
    dir = writeProject({ 'etl.yml': targetYml(target, 'osc'), ...Object.fromEntries(MODES.map((m) => [`models/${table(m)}.sql`, model(m, V1)])) });
    expectOk(await etl(dir, 'build'));
    writeFiles(dir, Object.fromEntries(MODES.map((m) => [`models/${table(m)}.sql`, model(m, V2)])));
    second = await etl(dir, 'build');
  });

  const rowsOf = (m: string) => withStore(target, storeOf(target, dir), (db) => db.rows(`select * from main.${table(m)} order by id`));
  const colsOf = (m: string) => withStore(target, storeOf(target, dir), (db) => columnsOf(db, table(m)));

  it('ignore: new rows go in with the existing columns; the table keeps its shape', async () => {
    expect(resultOf(dir, 'model.osc.osc_ignore').status).toBe('success');
    expect(await colsOf('ignore')).toEqual([['id', 'INTEGER'], ['a', 'VARCHAR'], ['n', 'INTEGER']]);
    expect(await rowsOf('ignore')).toEqual([
      { id: 1, a: 'a1', n: 1 },
      { id: 2, a: 'a2', n: 2 },
      { id: 3, a: 'a3', n: 3 },
      { id: 4, a: null, n: 40 },
      { id: 5, a: null, n: 50 },
    ]);
  });

  it('fail: exit 1, the column differences printed, the table unchanged', async () => {
    expect(second.code, second.output).toBe(1);
    const r = resultOf(dir, 'model.osc.osc_fail');
    expect(r.status).toBe('error');
    expect(second.output).toMatch(/the columns of osc_fail changed and on_schema_change is fail; the table is unchanged/);
    expect(second.output).toMatch(/\|\s*b\s*\|\s*\(absent\)\s*\|\s*VARCHAR\s*\|/);
    expect(second.output).toMatch(/\|\s*a\s*\|\s*VARCHAR\s*\|\s*\(absent\)\s*\|/);
    expect(second.output).toMatch(/\|\s*n\s*\|\s*INTEGER\s*\|\s*BIGINT\s*\|/);
    expect(await colsOf('fail')).toEqual([['id', 'INTEGER'], ['a', 'VARCHAR'], ['n', 'INTEGER']]);
    expect(await rowsOf('fail')).toEqual([1, 2, 3].map((i) => ({ id: i, a: `a${i}`, n: i })));
    // Only that model failed.
    expect([...runResults(dir).results.values()].filter((x) => x.status !== 'success').map((x) => x.unique_id)).toEqual(['model.osc.osc_fail']);
  });

  it('append_new_columns: b is added (null for old rows); a and n are left alone', async () => {
    expect(resultOf(dir, 'model.osc.osc_append_new_columns').message).toMatch(/1 column change/);
    expect(await colsOf('append_new_columns')).toEqual([['id', 'INTEGER'], ['a', 'VARCHAR'], ['n', 'INTEGER'], ['b', 'VARCHAR']]);
    expect(await rowsOf('append_new_columns')).toEqual([
      ...[1, 2, 3].map((i) => ({ id: i, a: `a${i}`, n: i, b: null })),
      ...[4, 5].map((i) => ({ id: i, a: null, n: i * 10, b: `b${i}` })),
    ]);
  });

  it('sync_all_columns: b added, a dropped, n widened from integer to bigint', async () => {
    expect(resultOf(dir, 'model.osc.osc_sync_all_columns').message).toMatch(/3 column changes/);
    expect(await colsOf('sync_all_columns')).toEqual([['id', 'INTEGER'], ['n', 'BIGINT'], ['b', 'VARCHAR']]);
    expect(await rowsOf('sync_all_columns')).toEqual([...[1, 2, 3].map((i) => ({ id: i, n: i, b: null })), ...[4, 5].map((i) => ({ id: i, n: i * 10, b: `b${i}` }))]);
  });

  it('sync_all_columns: varchar -> integer over non-numeric data fails with a clear message, the table unchanged', async () => {
    const before = await rowsOf('sync_all_columns');
    writeFiles(dir, { 'models/osc_sync_all_columns.sql': model('sync_all_columns', V3) });
    const r = await etl(dir, 'run', '-s', 'osc_sync_all_columns');
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/cannot change the type of b: VARCHAR -> INTEGER in osc_sync_all_columns: Conversion Error: Could not convert string 'b4'/);
    expect(r.output).toMatch(/the table is unchanged; run with --full-refresh to rebuild it/);
    expect(await colsOf('sync_all_columns')).toEqual([['id', 'INTEGER'], ['n', 'BIGINT'], ['b', 'VARCHAR']]);
    expect(await rowsOf('sync_all_columns')).toEqual(before);
    await withStore(target, storeOf(target, dir), async (db) => expect(await db.tempRelations()).toEqual([]));
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: state lives in the target', (target) => {
  it('a fresh clone of the project, pointed at the same database, continues incrementally', async () => {
    const orders = (extra = '') => `id,amount,updated_at\n1,10,2024-01-01 00:00:00\n2,20,2024-01-02 00:00:00\n3,30,2024-01-03 00:00:00\n${extra}`;
    const events = `id,ts\n${[-3, -2, -1, 0].map((n, i) => `${i + 1},${at(day(n), 1)}`).join('\n')}\n`;
    const files = (dbPath: string, ordersCsv: string) => ({
      'etl.yml': targetYml(target, 'cloned').replace(target === 'duckdb' ? 'path: target/dev.duckdb' : 'path: lake', `path: ${JSON.stringify(dbPath)}`),
      'seeds/orders.csv': ordersCsv,
      'seeds/events.csv': events,
      'models/orders_inc.sql':
        '{{config materialized="incremental" unique_key="id" event_time="updated_at"}}\nselect * from {{ref "orders"}}\n{{#if is_incremental}}where updated_at > (select max(updated_at) from {{this}}){{/if}}\n',
      'models/events_mb.sql': `{{config materialized="incremental" incremental_strategy="microbatch" event_time="ts" batch_size="day" begin="${ymd(day(-3))}"}}\nselect * from {{ref "events"}}\n`,
    });
    const original = path.join(makeTempDir(), 'original');
    // The target's tables sit under target/, which the clone leaves behind.
    const db = path.join(original, 'target', target === 'duckdb' ? 'dev.duckdb' : 'lake');
    writeFiles(original, files(db, orders()));
    expectOk(await etlAt(NOW, original, 'build'));
    expect(resultOf(original, 'model.cloned.events_mb').batch_results?.successful).toHaveLength(4);

    // The clone has the project files only (no target/), and a changed seed: one update, one new row.
    const clone = path.join(makeTempDir(), 'clone');
    cpSync(original, clone, { recursive: true, filter: (p) => !p.startsWith(path.join(original, 'target')) });
    expect(existsSync(path.join(clone, 'target'))).toBe(false);
    writeFiles(clone, { 'seeds/orders.csv': orders('2,25,2024-02-01 00:00:00\n4,40,2024-02-02 00:00:00\n').replace('2,20,2024-01-02 00:00:00\n', '') });
    expectOk(await etlAt(NOW, clone, 'build'));
    const inc = resultOf(clone, 'model.cloned.orders_inc');
    expect(inc.message).toMatch(/^MERGE \(2 rows/);
    const mb = resultOf(clone, 'model.cloned.events_mb');
    // Not every batch again: only the last done one and one of lookback.
    expect(mb.batch_results?.successful.map((b) => b[0])).toEqual([at(day(-1), 0), at(day(0), 0)]);
    await withStore(target, db, async (conn) => {
      expect(await conn.rows('select id, amount, cast(updated_at as varchar) as updated_at from main.orders_inc order by id')).toEqual([
        { id: 1, amount: 10, updated_at: '2024-01-01 00:00:00' },
        { id: 2, amount: 25, updated_at: '2024-02-01 00:00:00' },
        { id: 3, amount: 30, updated_at: '2024-01-03 00:00:00' },
        { id: 4, amount: 40, updated_at: '2024-02-02 00:00:00' },
      ]);
      expect(await conn.value(`select watermark from etl_meta.watermarks where relation = 'main.orders_inc'`)).toBe('2024-02-02 00:00:00');
      expect(await conn.value(`select count(*) from etl_meta.runs where command = 'build' and status = 'success'`)).toBe(2);
      expect(await conn.value(`select count(*) from main.events_mb`)).toBe(4);
    });
    const state = await etl(clone, 'state', 'show');
    expectOk(state);
    expect(state.stdout).toMatch(/\| main\.orders_inc\s+\| updated_at\s+\| 2024-02-02 00:00:00 \|/);
    expect(state.stdout).toMatch(/\| main\.events_mb\s+\|\s+4 \|\s+0 \|/);
  });
});
