// Crash safety of incremental builds, end to end: an incremental merge over a
// source of a million rows is killed with SIGKILL at five moments spread over
// its run, then built again normally. Whatever the moment, the table must end
// up exactly equal to a from-scratch build, without duplicate keys or leftover
// temporary tables, and the watermark in etl_meta must never be ahead of the
// data. Also: a second build on the same DuckDB file is refused at once and
// changes nothing; a failing incremental run leaves the table as it was.

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  /** How long the model's node takes in an uninterrupted incremental build (ms). */
  let nodeMs: number;
  /** Fingerprints of the table before the incremental run and after it. */
  let before: string;
  let after: string;
  const outcomes: Array<{ moment: string; killedWhileRunning: boolean; tableAfterKill: 'before' | 'after' | 'torn' }> = [];

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

    // Uninterrupted incremental builds, run as the killed ones will be, time the node: the kills are
    // spread over it (the faster of two runs, so that they land inside it).
    const times: number[] = [];
    for (let i = 0; i < 2; i++) {
      restoreBaseline();
      const r = await etl(dir, 'build', '--log-format', 'json');
      expectOk(r);
      const finished = r.stdout.split('\n').filter((l) => l.includes('"event":"node_finished"')).map((l) => JSON.parse(l) as { rows_affected: number; execution_time: number });
      expect(finished.map((f) => f.rows_affected)).toEqual([20000]);
      times.push(finished[0]!.execution_time * 1000);
    }
    nodeMs = Math.min(...times);
    await withDb(db, async (conn) => {
      expect(await differences(conn, 'main.big', FROM_SCRATCH)).toEqual({ missing: 0, extra: 0, duplicateKeys: 0 });
      after = await fingerprint(conn, 'main.big');
    });
    before = await withDb(baseline, (conn) => fingerprint(conn, 'main.big'));
    expect(before).not.toBe(after);
  }, 120_000);

  // The moments, from the build's own events (--log-format json): before the node starts, three
  // points through the node (staging the new rows, then the merge and the watermark in one
  // transaction), and once the node has finished (run history, closing and checkpointing the file).
  const MOMENTS: Array<[string, RegExp, number]> = [
    ['run started, node not yet', /"event":"run_started"/, 0],
    ['20% into the node', /"event":"node_started"/, 0.2],
    ['50% into the node', /"event":"node_started"/, 0.5],
    ['85% into the node', /"event":"node_started"/, 0.85],
    ['node finished, run not closed', /"event":"node_finished"/, 0],
  ];

  it.each(MOMENTS)('killed with SIGKILL when %s, then rebuilt: equal to a from-scratch build', async (moment, event, fraction) => {
    restoreBaseline();
    const child = startCli(['build', '--project-dir', dir, '--log-format', 'json'], { cwd: dir });
    await child.waitForOutput(event);
    if (fraction > 0) await sleep(Math.round(nodeMs * fraction));
    const killedWhileRunning = !child.exited;
    child.kill('SIGKILL');
    await child.done;

    // Right after the crash: the table is the old one or the new one, never something in between,
    // and the watermark is not ahead of the data.
    // (Opened for writing: DuckDB replays the WAL the killed process left, as the next build would.)
    const tableAfterKill = await withDb(
      db,
      async (conn) => {
        const w = await watermarkNotAhead(conn);
        expect(w.ok, `watermark ${w.watermark} vs max(updated_at) ${w.maxEventTime}`).toBe(true);
        const fp = await fingerprint(conn, 'main.big');
        return fp === after ? 'after' : fp === before ? 'before' : 'torn';
      },
      { readOnly: false },
    );
    outcomes.push({ moment, killedWhileRunning, tableAfterKill });
    expect(tableAfterKill, moment).not.toBe('torn');
    if (moment.startsWith('run started')) expect(tableAfterKill).toBe('before');
    if (moment.startsWith('node finished')) expect(tableAfterKill).toBe('after');

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

  it('the kills landed while the build was running', () => {
    expect(outcomes).toHaveLength(5);
    // Timing varies with the machine; the kills must at least have hit a live process.
    expect(outcomes.filter((o) => o.killedWhileRunning).length, JSON.stringify(outcomes)).toBeGreaterThanOrEqual(3);
  });

  it('a second build on the same DuckDB file fails at once with "locked by pid", exit 1, and changes nothing', async () => {
    // A model slow enough to hold the file while the second process starts.
    writeFiles(dir, { 'models/slow.sql': '{{config materialized="table"}}\nselect sum(hash(i)) as h from range(100000000) t(i)\n' });
    const first = startCli(['build', '--project-dir', dir, '-s', 'slow'], { cwd: dir });
    await first.waitForOutput(/Running 1 node/);
    const isTargetFile = (f: string) => f.startsWith('dev.duckdb');
    const filesBefore = Object.fromEntries(Object.entries(snapshotDir(path.join(dir, 'target'))).filter(([f]) => !isTargetFile(f)));
    const t0 = performance.now();
    const second = await etl(dir, 'build');
    const secondMs = performance.now() - t0;
    expect(first.exited, 'the first build must still be running').toBe(false);
    expect(second.code, second.output).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`target dev is locked by pid ${first.child.pid}`));
    expect(secondMs).toBeLessThan(10_000);
    expect(Object.fromEntries(Object.entries(snapshotDir(path.join(dir, 'target'))).filter(([f]) => !isTargetFile(f)))).toEqual(filesBefore);

    const firstResult = await first.exitWithin(60_000);
    expect(firstResult.code, firstResult.output).toBe(0);
    const runId = readRunResults<{ metadata: { invocation_id: string } }>(dir).metadata.invocation_id;
    await withDb(db, async (conn) => {
      // Only the first build is in the run history; the table is untouched.
      expect(await conn.rows(`select run_id, status from etl_meta.runs order by started_at desc limit 1`)).toEqual([{ run_id: runId, status: 'success' }]);
      expect(await differences(conn, 'main.big', FROM_SCRATCH)).toEqual({ missing: 0, extra: 0, duplicateKeys: 0 });
    });
    rmSync(path.join(dir, 'models/slow.sql'));
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
