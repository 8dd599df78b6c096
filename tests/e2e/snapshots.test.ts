// Snapshots end to end, through the built CLI: both strategies (timestamp,
// check) through updates, inserts, hard deletes (invalidate, new_record),
// revivals and new columns, checked row by row against dbt's conformance
// fixtures (tests/fixtures/conformance-data/snapshot_*), plus the history
// invariants every SCD2 table must keep, and "a second run with no source
// change adds nothing".
//
// Every scenario runs on DuckDB and on Delta (tests/e2e/targets.ts): the
// same project, commands and expected rows; the Delta tables are read back
// by etl's Delta reader, the state from each table's etl.state domain.
//
// dbt's meta columns map to ours: dbt_scd_id -> etl_scd_id, dbt_updated_at ->
// etl_updated_at, dbt_valid_from -> etl_valid_from, dbt_valid_to ->
// etl_valid_to, dbt_is_deleted -> etl_is_deleted. The fixtures' is_current is
// `etl_valid_to is null`.

import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, killAll, readJson, readRunResults, removeTempDirs, runCli, writeProject, type CliResult, type Db } from './helpers.js';
import { storeOf, targetYml, TARGETS, withStore, type TargetName } from './targets.js';
import { DeltaTable, LocalStorage } from '../../adapters/delta/index.js';
import { duckDbSqlSession } from '../../adapters/delta/sql.js';

const FIXTURES = path.join(REPO_ROOT, 'tests', 'fixtures', 'conformance-data');
const fixture = (...parts: string[]) => path.join(FIXTURES, ...parts);

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

function etl(dir: string, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir });
}

function expectOk(r: CliResult): void {
  expect(r.code, r.output).toBe(0);
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

async function textRows(db: Db, sql: string): Promise<{ columns: string[]; rows: Array<Array<string | null>> }> {
  const reader = await db.connection.runAndReadAll(`select cast(columns(*) as varchar) from (\n${sql}\n) as etl_cmp order by all`);
  return { columns: reader.columnNames(), rows: reader.getRowsJS() as Array<Array<string | null>> };
}

async function expectRowsMatchCsv(db: Db, sql: string, csvPath: string): Promise<void> {
  const actual = await textRows(db, sql);
  const expected = await textRows(db, `select * from read_csv(${sqlString(csvPath)}, header = true, auto_detect = true)`);
  expect(actual.columns).toEqual(expected.columns);
  expect(actual.rows, `${sql} against ${path.relative(FIXTURES, csvPath)}`).toEqual(expected.rows);
}

/** Writes to the target's tables between CLI runs (a source the snapshots read). */
function mutate(target: TargetName, dir: string, ...statements: string[]): Promise<void> {
  return withStore(
    target,
    storeOf(target, dir),
    async (db) => {
      for (const sql of statements) await db.connection.run(sql);
    },
    { readOnly: false },
  );
}

/** Each snapshot run's record, per relation in run order: etl_meta.snapshot_runs on DuckDB, the table's etl.state domain on Delta. */
async function snapshotRuns(target: TargetName, dir: string, names: string[]): Promise<Array<{ relation: string; inserted: number; invalidated: number }>> {
  if (target === 'duckdb') {
    return withStore(target, storeOf(target, dir), (db) => db.rows(`select relation, inserted, invalidated from etl_meta.snapshot_runs order by relation, updated_at`)) as never;
  }
  return withStore(target, storeOf(target, dir), async (db) => {
    const out = [];
    for (const name of [...names].sort()) {
      const table = new DeltaTable(new LocalStorage(path.join(storeOf(target, dir), 'main', name)), duckDbSqlSession(db.connection));
      const state = JSON.parse((await table.snapshot()).domains.get('etl.state')!.configuration) as { snapshotRuns: Array<{ inserted: number; invalidated: number }> };
      for (const r of state.snapshotRuns) out.push({ relation: `main.${name}`, inserted: r.inserted, invalidated: r.invalidated });
    }
    return out;
  });
}

/** What every SCD2 history must satisfy, whatever happened to the source. */
async function expectValidHistory(db: Db, snapshot: string, key = 'id'): Promise<void> {
  const rel = `main.${snapshot}`;
  const problems = await db.rows(`
    select 'two current versions' as problem, ${key} as k from ${rel} where etl_valid_to is null group by ${key} having count(*) > 1
    union all
    select 'duplicate etl_scd_id', min(${key}) from ${rel} group by etl_scd_id having count(*) > 1
    union all
    select 'valid_to not after valid_from', ${key} from ${rel} where etl_valid_to <= etl_valid_from
    union all
    select 'overlapping or open older version', ${key} from (
      select ${key}, etl_valid_to, lead(etl_valid_from) over (partition by ${key} order by etl_valid_from, etl_valid_to nulls last) as next_from from ${rel}
    ) where next_from is not null and (etl_valid_to is null or etl_valid_to > next_from)
    order by all`);
  expect(problems, `history of ${snapshot}`).toEqual([]);
}

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: timestamp and check strategies, hard_deletes invalidate and new_record (snapshot_timestamp_scenarios)', (target) => {
  const F = 'snapshot_timestamp_scenarios';
  const SEED = fixture(F, 'seeds', 'seed.csv');
  const SNAPSHOTS = {
    ts_invalidate: 'strategy="timestamp" updated_at="updated_at" hard_deletes="invalidate"',
    ts_new_record: 'strategy="timestamp" updated_at="updated_at" hard_deletes="new_record"',
    check_invalidate: 'strategy="check" check_cols="all" hard_deletes="invalidate"',
    check_new_record: 'strategy="check" check_cols="all" hard_deletes="new_record"',
  };
  const NAMES = Object.keys(SNAPSHOTS);
  const fromSeed = (where: string) => `select * from read_csv(${sqlString(SEED)}, header = true, auto_detect = true) where ${where}`;

  /** A project whose snapshots read the table `fact` (ids 1..20 of the seed), snapshotted once. */
  async function setup(): Promise<string> {
    const dir = writeProject({
      'etl.yml': targetYml(target, 'snaps'),
      'models/sources.yml': 'sources:\n  - name: raw\n    schema: main\n    tables: [{ name: fact }]\n',
      ...Object.fromEntries(Object.entries(SNAPSHOTS).map(([name, config]) => [`snapshots/${name}.sql`, `{{config unique_key="id" ${config}}}\nselect * from {{source "raw" "fact"}}\n`])),
    });
    await mutate(target, dir, `create table main.fact as ${fromSeed('id <= 20')}`);
    const r = await etl(dir, 'snapshot');
    expectOk(r);
    const rr = readRunResults<{ results: Array<{ unique_id: string; rows_affected: number; message: string }> }>(dir);
    expect(rr.results.map((x) => [x.unique_id, x.rows_affected])).toEqual(NAMES.map((n) => [`snapshot.snaps.${n}`, 20]).sort());
    return dir;
  }

  async function snapshotAgain(dir: string): Promise<void> {
    expectOk(await etl(dir, 'snapshot'));
  }

  /** Compares each snapshot's (id, is_current) with the fixture; for new_record, deletion records are checked apart. */
  async function expectScenario(dir: string, expectedCsv: string, deletionRecords: { current: number[]; closed: number[] } = { current: [], closed: [] }): Promise<void> {
    await withStore(target, storeOf(target, dir), async (db) => {
      for (const name of NAMES) {
        const newRecord = name.endsWith('new_record');
        await expectRowsMatchCsv(db, `select id, etl_valid_to is null as is_current from main.${name}${newRecord ? ' where not etl_is_deleted' : ''}`, fixture(F, 'expected', expectedCsv));
        if (newRecord) {
          const deleted = await db.rows(`select id, etl_valid_to is null as is_current from main.${name} where etl_is_deleted order by id, is_current`);
          const expected = [...deletionRecords.closed.map((id) => ({ id, is_current: false })), ...deletionRecords.current.map((id) => ({ id, is_current: true }))].sort((a, b) => a.id - b.id);
          expect(deleted, `deletion records of ${name}`).toEqual(expected);
        }
        await expectValidHistory(db, name);
      }
    });
  }

  /** A second run with no change in the source adds nothing and changes nothing. */
  async function expectIdempotent(dir: string): Promise<void> {
    const dump = () => withStore(target, storeOf(target, dir), async (db) => Promise.all(NAMES.map((n) => textRows(db, `select * from main.${n}`))));
    const before = await dump();
    await snapshotAgain(dir);
    const rr = readRunResults<{ results: Array<{ unique_id: string; rows_affected: number }> }>(dir);
    expect(rr.results.map((x) => x.rows_affected)).toEqual(NAMES.map(() => 0));
    expect(await dump()).toEqual(before);
  }

  it('updates: the last five rows get a new version, the old one closed (updates.csv)', async () => {
    const dir = await setup();
    await mutate(target, dir, `update main.fact set updated_at = updated_at + interval 1 day, email = email || '.updated' where id between 16 and 20`);
    await snapshotAgain(dir);
    await expectScenario(dir, 'updates.csv');
    await withStore(target, storeOf(target, dir), async (db) => {
      // Timestamp: the new version starts at the row's new updated_at, where the old one ends.
      expect(
        await db.rows(`select id, cast(etl_valid_from as varchar) as vf, cast(etl_valid_to as varchar) as vt from main.ts_invalidate where id = 16 order by etl_valid_from`),
      ).toEqual([
        { id: 16, vf: '2016-10-03 00:00:00', vt: '2016-10-04 00:00:00' },
        { id: 16, vf: '2016-10-04 00:00:00', vt: null },
      ]);
      expect(await db.value(`select email from main.check_invalidate where id = 16 and etl_valid_to is null`)).toBe('rholmesf@usgs.gov.updated');
    });
    // The state counts the versions each run added and closed.
    expect(await snapshotRuns(target, dir, NAMES)).toEqual(
      NAMES.slice()
        .sort()
        .flatMap((n) => [
          { relation: `main.${n}`, inserted: 20, invalidated: 0 },
          { relation: `main.${n}`, inserted: 5, invalidated: 5 },
        ]),
    );
    await expectIdempotent(dir);
  });

  it('inserts: ten new rows, all current (inserts.csv)', async () => {
    const dir = await setup();
    await mutate(target, dir, `insert into main.fact ${fromSeed('id between 21 and 30')}`);
    await snapshotAgain(dir);
    await expectScenario(dir, 'inserts.csv');
  });

  it('deletes: invalidate closes the rows; new_record also adds a current deletion record (deletes.csv)', async () => {
    const dir = await setup();
    await mutate(target, dir, 'delete from main.fact where id between 16 and 20');
    await snapshotAgain(dir);
    await expectScenario(dir, 'deletes.csv', { current: [16, 17, 18, 19, 20], closed: [] });
    // The last run closed five versions in each snapshot; new_record also added five deletion records.
    const runs = await snapshotRuns(target, dir, NAMES);
    const last = NAMES.slice()
      .sort()
      .map((n) => runs.filter((r) => r.relation === `main.${n}`).at(-1));
    expect(last).toEqual(NAMES.slice().sort().map((n) => ({ relation: `main.${n}`, inserted: n.endsWith('new_record') ? 5 : 0, invalidated: 5 })));
    await withStore(target, storeOf(target, dir), async (db) => {
      // The deletion record carries the last known row and starts where the closed version ends.
      expect(
        await db.rows(`select a.first_name, b.etl_valid_from = a.etl_valid_to as adjoins from main.ts_new_record a join main.ts_new_record b on a.id = b.id and not a.etl_is_deleted and b.etl_is_deleted where a.id = 16`),
      ).toEqual([{ first_name: 'Raymond', adjoins: true }]);
    });
    await expectIdempotent(dir);
  });

  it('revives: three deleted rows come back; each gets a new current version after its deletion (revives.csv)', async () => {
    const dir = await setup();
    await mutate(target, dir, 'delete from main.fact where id between 16 and 20');
    await snapshotAgain(dir);
    await mutate(target, dir, `insert into main.fact ${fromSeed('id between 16 and 18')}`);
    await snapshotAgain(dir);
    await expectScenario(dir, 'revives.csv', { current: [19, 20], closed: [16, 17, 18] });
    await withStore(target, storeOf(target, dir), async (db) => {
      for (const name of NAMES) {
        // The revived version starts no earlier than the deletion was recorded.
        const gap = await db.value(
          `select count(*) from main.${name} cur join main.${name} old on cur.id = old.id and old.etl_valid_to is not null where cur.etl_valid_to is null and cur.id between 16 and 18 and cur.etl_valid_from < old.etl_valid_to`,
        );
        expect(gap, name).toBe(0);
      }
    });
    await expectIdempotent(dir);
  });

  it('new column: added to the snapshot; rows whose tracked values changed get a new version (new_column.csv)', async () => {
    const dir = await setup();
    await mutate(
      target,
      dir,
      'alter table main.fact add column full_name varchar(200) default null',
      `update main.fact set full_name = first_name || ' ' || last_name, updated_at = updated_at + interval 1 day where id between 11 and 20`,
    );
    await snapshotAgain(dir);
    await expectScenario(dir, 'new_column.csv');
    await withStore(target, storeOf(target, dir), async (db) => {
      for (const name of NAMES) {
        expect(await db.rows(`select id, full_name from main.${name} where etl_valid_to is null and id in (1, 11) order by id`), name).toEqual([
          { id: 1, full_name: null },
          { id: 11, full_name: 'Donna Welch' },
        ]);
      }
    });
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: check strategy with check_cols (snapshot_check_scenarios)', (target) => {
  it('only changes in tracked columns make new versions (column_selection.csv)', async () => {
    const seed = fixture('snapshot_check_scenarios', 'seeds', 'seed.csv');
    const dir = writeProject({
      'etl.yml': targetYml(target, 'check_cols'),
      'models/sources.yml': 'sources:\n  - name: raw\n    schema: main\n    tables: [{ name: fact }]\n',
      'snapshots/snapshot.sql': '{{config unique_key="id" strategy="check" check_cols=(list "email")}}\nselect * from {{source "raw" "fact"}}\n',
    });
    await mutate(target, dir, `create table main.fact as select * from read_csv(${sqlString(seed)}, header = true, auto_detect = true) where id <= 20`);
    expectOk(await etl(dir, 'snapshot'));
    // last_name is not tracked (rows 1-10), email is (rows 6-15).
    await mutate(target, dir, 'update main.fact set last_name = left(last_name, 3) where id between 1 and 10', 'update main.fact set email = left(email, 3) where id between 6 and 15');
    expectOk(await etl(dir, 'snapshot'));
    await withStore(target, storeOf(target, dir), async (db) => {
      await expectRowsMatchCsv(db, 'select id, etl_valid_to is null as is_current from main.snapshot', fixture('snapshot_check_scenarios', 'expected', 'column_selection.csv'));
      await expectValidHistory(db, 'snapshot');
      // Untracked changes are not recorded: the current row of id 1 still has the old last_name.
      expect(await db.value('select last_name from main.snapshot where id = 1')).toBe('Kennedy');
      expect(await db.value('select email from main.snapshot where id = 6 and etl_valid_to is null')).toBe('klo');
    });
  });
});

// ---------------------------------------------------------------------------

describe.each(TARGETS)('%s: dbt basic snapshot tests: snapshot_check_cols and snapshot_timestamp over a seed', (target) => {
  it('check_cols all / [some_date] / [name] and timestamp count the versions dbt counts', async () => {
    const dir = writeProject({
      'etl.yml': targetYml(target, 'basic'),
      'seeds/base.csv': readFileSync(fixture('snapshot_check_cols', 'seeds', 'base.csv'), 'utf8'),
      'snapshots/cc_all_snapshot.sql': '{{config unique_key="id" strategy="check" check_cols="all"}}\nselect * from {{ref "base"}}\n',
      'snapshots/cc_date_snapshot.sql': '{{config unique_key="id" strategy="check" check_cols=(list "some_date")}}\nselect * from {{ref "base"}}\n',
      'snapshots/cc_name_snapshot.sql': '{{config unique_key="id" strategy="check" check_cols=(list "name")}}\nselect * from {{ref "base"}}\n',
      'snapshots/ts_snapshot.sql': '{{config unique_key="id" strategy="timestamp" updated_at="some_date"}}\nselect * from {{ref "base"}}\n',
    });
    const SNAPS = ['cc_all_snapshot', 'cc_date_snapshot', 'cc_name_snapshot', 'ts_snapshot'];
    const counts = () =>
      withStore(target, storeOf(target, dir), async (db) => {
        const out: Record<string, number> = {};
        for (const s of SNAPS) {
          out[s] = await db.count(`main.${s}`);
          await expectValidHistory(db, s);
        }
        return out;
      });

    expectOk(await etl(dir, 'seed'));
    expectOk(await etl(dir, 'snapshot'));
    expect(await counts()).toEqual({ cc_all_snapshot: 10, cc_date_snapshot: 10, cc_name_snapshot: 10, ts_snapshot: 10 });

    // dbt points the snapshots at the "added" seed; here the seed file is replaced by it (replacements/base.csv).
    copyFileSync(fixture('snapshot_check_cols', 'replacements', 'base.csv'), path.join(dir, 'seeds/base.csv'));
    expectOk(await etl(dir, 'seed'));
    expectOk(await etl(dir, 'snapshot'));
    expect(await counts()).toEqual({ cc_all_snapshot: 20, cc_date_snapshot: 20, cc_name_snapshot: 20, ts_snapshot: 20 });

    // update_rows add_timestamp on some_date where 10 < id < 21: the name snapshot does not see it.
    await mutate(target, dir, `update main.base set some_date = some_date + interval 1 hour where id > 10 and id < 21`);
    expectOk(await etl(dir, 'snapshot'));
    expect(await counts()).toEqual({ cc_all_snapshot: 30, cc_date_snapshot: 30, cc_name_snapshot: 20, ts_snapshot: 30 });

    // update_rows add_string "_updated" on name where id < 11: neither the date nor the timestamp snapshot sees it.
    await mutate(target, dir, `update main.base set name = name || '_updated' where id < 11`);
    expectOk(await etl(dir, 'snapshot'));
    expect(await counts()).toEqual({ cc_all_snapshot: 40, cc_date_snapshot: 30, cc_name_snapshot: 30, ts_snapshot: 30 });

    // Running again with no change adds nothing.
    expectOk(await etl(dir, 'snapshot'));
    expect(await counts()).toEqual({ cc_all_snapshot: 40, cc_date_snapshot: 30, cc_name_snapshot: 30, ts_snapshot: 30 });

    // snapshot_timestamp/seeds/newcolumns.csv: ids 1-10 with their original names and a new column.
    copyFileSync(fixture('snapshot_timestamp', 'seeds', 'newcolumns.csv'), path.join(dir, 'seeds/base.csv'));
    expectOk(await etl(dir, 'seed'));
    expectOk(await etl(dir, 'snapshot'));
    // The names of 1-10 changed back (and last_initial is new): check all and check name see it; date and timestamp do not.
    expect(await counts()).toEqual({ cc_all_snapshot: 50, cc_date_snapshot: 30, cc_name_snapshot: 40, ts_snapshot: 30 });
    await withStore(target, storeOf(target, dir), async (db) => {
      for (const s of SNAPS) {
        expect((await db.rows(`select column_name from information_schema.columns where table_name = '${s}' and column_name = 'last_initial'`)).length, s).toBe(1);
      }
      expect(await db.rows(`select id, name, last_initial from main.cc_all_snapshot where etl_valid_to is null and id in (1, 11) order by id`)).toEqual([
        { id: 1, name: 'Easton', last_initial: 'A' },
        { id: 11, name: 'Mateo', last_initial: null },
      ]);
      // The meta columns, dbt's under etl_ names.
      const cols = (await db.rows(`select column_name from information_schema.columns where table_name = 'ts_snapshot' order by ordinal_position`)).map((r) => r.column_name);
      expect(cols).toEqual(['id', 'name', 'some_date', 'etl_scd_id', 'etl_updated_at', 'etl_valid_from', 'etl_valid_to', 'last_initial']);
    });
  });
});
