// Crash safety of incremental builds, end to end: an incremental merge over a
// source of a million rows is killed with SIGKILL at five points of its run,
// then built again normally. Each point is a statement boundary: the build is
// started with ETL_PAUSE_AFTER_SQL (adapters/trace.ts), stops right after that
// statement and is killed there, so every case knows which table it must find
// (the old one until the commit, the new one after it). Whatever the point, the
// table must end up exactly equal to a from-scratch build, without duplicate
// keys or leftover temporary tables, and the watermark in etl_meta must never
// be ahead of the data. Also: a second build on the same DuckDB file is
// refused at once and changes nothing; a failing incremental run leaves the
// table as it was.

import { copyFileSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, killAll, readJson, removeTempDirs, runCli, snapshotDir, startCli, withDb, writeFiles, writeProject, type CliResult, type Db, readRunResults } from './helpers.js';

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

function etl(dir: string, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir, timeoutMs: 60_000 });
}

function expectOk(r: CliResult): void {
  expect(r.code, r.output).toBe(0);
}

const COLUMNS = 'id, grp, amount, note, updated_at';
const MODEL = (incrementalFilter = 'where updated_at > (select max(updated_at) from {{this}})') =>
  `{{config materialized="incremental" unique_key="id" event_time="updated_at"}}\nselect ${COLUMNS} from {{source "raw" "src"}}\n{{#if is_incremental}}${incrementalFilter}{{/if}}\n`;
/** What a from-scratch build of the model holds: the same SQL without the incremental filter. */
const FROM_SCRATCH = `select ${COLUMNS} from main.src`;

/** Rows in one query and not the other, both ways (multiset difference), and the duplicate keys. */
async function differences(db: Db, table: string, reference: string): Promise<{ missing: number; extra: number; duplicateKeys: number }> {
  return {
    missing: Number(await db.value(`select count(*) from (${reference} except all select ${COLUMNS} from ${table})`)),
    extra: Number(await db.value(`select count(*) from (select ${COLUMNS} from ${table} except all ${reference})`)),
    duplicateKeys: Number(await db.value(`select count(*) - count(distinct id) from ${table}`)),
  };
}

/** An order-independent fingerprint of the table's rows. */
async function fingerprint(db: Db, table: string): Promise<string> {
  return String(await db.value(`select count(*) || ':' || coalesce(sum(hash(${COLUMNS})), 0) from ${table}`));
}

async function watermarkNotAhead(db: Db): Promise<{ watermark: string; maxEventTime: string; ok: boolean }> {
  const rows = await db.rows(
    `select w.watermark, cast(m.mx as varchar) as max_event_time, cast(w.watermark as timestamp) <= m.mx as ok from etl_meta.watermarks w, (select max(updated_at) as mx from main.big) m where w.relation = 'main.big'`,
  );
  expect(rows).toHaveLength(1);
  return { watermark: rows[0]!.watermark as string, maxEventTime: rows[0]!.max_event_time as string, ok: rows[0]!.ok as boolean };
}

describe('crash safety of an incremental merge over 1M rows', () => {
  let dir: string;
  let db: string;
  let baseline: string;
  /** Fingerprints of the table before the incremental run and after it. */
  let before: string;
  let after: string;

  /** Puts the database back as it was before the incremental run: built once, then the source changed. */
  function restoreBaseline(): void {
    rmSync(`${db}.wal`, { force: true });
    copyFileSync(baseline, db);
    if (existsSync(`${baseline}.wal`)) copyFileSync(`${baseline}.wal`, `${db}.wal`);
  }

  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': etlYml('crash'),
      'models/sources.yml': 'sources:\n  - name: raw\n    schema: main\n    tables: [{ name: src }]\n',
      'models/big.sql': MODEL(),
    });
    db = dbPathOf(dir);
    await withDb(
      db,
      (conn) =>
        conn.connection
          .run(
            `create table main.src as select i as id, i % 97 as grp, ((i * 7919) % 10007) / 100.0 as amount, 'note ' || i as note, timestamp '2024-01-01' + to_seconds(i) as updated_at from range(1000000) t(i)`,
          )
          .then(() => undefined),
      { readOnly: false },
    );
    expectOk(await etl(dir, 'build'));
    // ~1% of the rows change (with a later updated_at), 10,000 are new.
    await withDb(
      db,
      async (conn) => {
        await conn.connection.run(`update main.src set amount = amount + 1, note = note || ' (changed)', updated_at = timestamp '2024-02-01' + to_seconds(id) where id % 100 = 0`);
        await conn.connection.run(`insert into main.src select i, i % 97, 1.5, 'new ' || i, timestamp '2024-03-01' + to_seconds(i) from range(1000000, 1010000) t(i)`);
      },
      { readOnly: false },
    );
    baseline = path.join(dir, 'baseline.duckdb');
    copyFileSync(db, baseline);
    if (existsSync(`${db}.wal`)) copyFileSync(`${db}.wal`, `${baseline}.wal`);

    // One uninterrupted incremental build: what the table is after it.
    restoreBaseline();
    const r = await etl(dir, 'build', '--log-format', 'json');
    expectOk(r);
    const finished = r.stdout.split('\n').filter((l) => l.includes('"event":"node_finished"')).map((l) => JSON.parse(l) as { rows_affected: number });
    expect(finished.map((f) => f.rows_affected)).toEqual([20000]);
    await withDb(db, async (conn) => {
      expect(await differences(conn, 'main.big', FROM_SCRATCH)).toEqual({ missing: 0, extra: 0, duplicateKeys: 0 });
      after = await fingerprint(conn, 'main.big');
    });
    before = await withDb(baseline, (conn) => fingerprint(conn, 'main.big'));
    expect(before).not.toBe(after);
  }, 120_000);

  // The points: after the statement matching each pattern has completed. Until the commit of the
  // node's transaction the table must be the old one, from it on the new one.
  const POINTS: Array<[string, string, 'before' | 'after']> = [
    ['the run is recorded, the node not started', '^insert into "etl_meta"\\."run_starts"', 'before'],
    ['the new rows are staged', '^create or replace temp table', 'before'],
    ['the target is half changed inside the transaction', '^(delete from|merge into|insert into) "main"\\."big"', 'before'],
    ['the watermark is written, not committed', 'watermarks', 'before'],
    ['the node has committed, the run is not closed', '^commit', 'after'],
  ];

  it.each(POINTS)('killed with SIGKILL once %s, then rebuilt: equal to a from-scratch build', async (_point, pattern, expected) => {
    restoreBaseline();
    const child = startCli(['build', '--project-dir', dir], { cwd: dir, env: { ETL_PAUSE_AFTER_SQL: pattern } });
    await child.waitForOutput(/\[paused after sql\]/);
    expect(child.exited).toBe(false);
    child.kill('SIGKILL');
    await child.done;

    // Right after the crash: the table is exactly the old one or the new one, and the watermark is
    // not ahead of the data. (Opened for writing: DuckDB replays the WAL the killed process left,
    // as the next build would.)
    await withDb(
      db,
      async (conn) => {
        const w = await watermarkNotAhead(conn);
        expect(w.ok, `watermark ${w.watermark} vs max(updated_at) ${w.maxEventTime}`).toBe(true);
        expect(await fingerprint(conn, 'main.big')).toBe(expected === 'before' ? before : after);
      },
      { readOnly: false },
    );

    const rerun = await etl(dir, 'build');
    expectOk(rerun);
    await withDb(db, async (conn) => {
      expect(await differences(conn, 'main.big', FROM_SCRATCH)).toEqual({ missing: 0, extra: 0, duplicateKeys: 0 });
      expect(await conn.tempRelations()).toEqual([]);
      const w = await watermarkNotAhead(conn);
      expect(w.ok, `watermark ${w.watermark} vs max(updated_at) ${w.maxEventTime}`).toBe(true);
      expect(w.watermark).toBe(w.maxEventTime);
    });
  });

  it('a second build on the same DuckDB file fails at once with "locked by pid", exit 1, and changes nothing', async () => {
    restoreBaseline();
    // The first build holds the file, stopped once its run is recorded, for as long as this test needs.
    const first = startCli(['build', '--project-dir', dir], { cwd: dir, env: { ETL_PAUSE_AFTER_SQL: '^insert into "etl_meta"\\."run_starts"' } });
    await first.waitForOutput(/\[paused after sql\]/);
    const isTargetFile = (f: string) => f.startsWith('dev.duckdb');
    const filesBefore = Object.fromEntries(Object.entries(snapshotDir(path.join(dir, 'target'))).filter(([f]) => !isTargetFile(f)));
    const second = await etl(dir, 'build');
    expect(second.code, second.output).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`target dev is locked by pid ${first.child.pid}`));
    expect(Object.fromEntries(Object.entries(snapshotDir(path.join(dir, 'target'))).filter(([f]) => !isTargetFile(f)))).toEqual(filesBefore);
    expect(first.exited).toBe(false);
    first.kill('SIGKILL');
    await first.done;
    // Nothing of the second build in the file: the table is the old one.
    await withDb(db, async (conn) => expect(await fingerprint(conn, 'main.big')).toBe(before), { readOnly: false });
  });

  describe('a failing incremental run leaves the table exactly as before', () => {
    const fingerprint = (conn: Db) =>
      conn.rows(
        `select (select count(*) from main.big) as n, (select sum(hash(${COLUMNS})) from main.big) as h, (select watermark || ' ' || run_id from etl_meta.watermarks where relation = 'main.big') as w`,
      );

    beforeAll(async () => {
      // New source rows, so that the failing runs have something to apply.
      await withDb(db, (conn) => conn.connection.run(`update main.src set amount = amount + 2, updated_at = timestamp '2024-04-01' + to_seconds(id) where id % 1000 = 1`).then(() => undefined), {
        readOnly: false,
      });
    });

    it.each([
      ['bad SQL in the incremental branch', MODEL('where no_such_column > (select max(updated_at) from {{this}})'), /no_such_column/],
      [
        // delete+insert: the delete succeeds, then the insert fails on a value that is not an integer.
        'a failure inside the transaction, after the delete of delete+insert',
        MODEL().replace('unique_key="id"', 'unique_key="id" incremental_strategy="delete+insert"').replace(`select ${COLUMNS}`, "select id, {{#if is_incremental}}'g' || grp{{else}}grp{{/if}} as grp, amount, note, updated_at"),
        /Could not convert string 'g/,
      ],
    ])('%s', async (_name, model, error) => {
      const before = await withDb(db, fingerprint);
      writeFiles(dir, { 'models/big.sql': model });
      const r = await etl(dir, 'build', '--no-check');
      expect(r.code, r.output).toBe(1);
      expect(r.output).toMatch(error);
      await withDb(db, async (conn) => {
        expect(await fingerprint(conn)).toEqual(before);
        expect(await conn.tempRelations()).toEqual([]);
        expect(await conn.value('select status from etl_meta.runs order by started_at desc limit 1')).toBe('error');
      });
    });

    it('and the next good run catches up', async () => {
      writeFiles(dir, { 'models/big.sql': MODEL() });
      expectOk(await etl(dir, 'build'));
      await withDb(db, async (conn) => {
        expect(await differences(conn, 'main.big', FROM_SCRATCH)).toEqual({ missing: 0, extra: 0, duplicateKeys: 0 });
        expect((await watermarkNotAhead(conn)).ok).toBe(true);
      });
    });
  });
});
