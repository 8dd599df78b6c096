// Two etl processes changing one Delta table at the same time, through the
// built CLI. Process A is held after a statement of its run
// (ETL_PAUSE_AFTER_SQL, released by ETL_RESUME_FILE): after its model's SQL
// read version N, or in the middle of planning its merge on version N.
// Process B runs the same model to completion (version N+1); then A goes on.
// A's merge read and rewrote the file B rewrote: it must not commit at N+2
// as if nothing happened (B's increment would be lost).
// With `retries:` the conflict is transient and A's node runs again from B's
// version; without, A fails naming both writers. Either way no update is lost.
// The same for an incremental append whose SQL reads the whole of its own
// table (`max(id)` of `{{this}}`): another writer's new file anywhere in the
// table conflicts (else both append the same rows), and a blind append by
// another process conflicts under Serializable (etl's default) but not under
// the table's delta.isolationLevel = WriteSerializable.

import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commit, DeltaTable, LocalStorage } from '../../adapters/delta/index.js';
import { etlYml, killAll, readJson, removeTempDirs, runCli, startCli, writeProject, type CliResult } from './helpers.js';
import { activeFilesByJsonReplay, openDuckDb, type TestDb } from '../delta/helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await openDuckDb();
});
afterAll(async () => {
  db?.close();
  await killAll();
  removeTempDirs();
});

const yml = etlYml('conflicts').replace('target: dev\n', 'target: lake\n').replace('targets:\n', 'targets:\n  lake: { type: delta, path: lake, schema: main, threads: 1 }\n');

/** A counter table: each incremental run adds 1 to the counters of keys 1 and 2, reading them from the table itself. */
const counters = (retries: number) =>
  `{{config materialized="incremental" unique_key="k" incremental_strategy="merge" retries=${retries} retry_backoff="none"}}\n` +
  '{{#if is_incremental}}select k, n + 1 as n from {{this}} where k in (1, 2)\n{{else}}select range as k, 0 as n from range(10){{/if}}\n';

function etl(dir: string, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir });
}

async function values(dir: string, model: string): Promise<Array<[number, number]>> {
  const scan = await new DeltaTable(new LocalStorage(path.join(dir, 'lake', 'main', model)), db.session).scan();
  const r = await db.session.query(`select k, n from (${scan.sql}) as t order by k`);
  return r.rows.map((row) => [Number(row[0]), Number(row[1])]);
}

async function commitInfos(dir: string, model: string): Promise<Array<Record<string, unknown>>> {
  const history = await new DeltaTable(new LocalStorage(path.join(dir, 'lake', 'main', model)), db.session).history();
  return history.reverse().map((h) => h.commitInfo ?? {});
}

/** Runs the model in A (held after the statement `pauseAfter` matches), then B (by default the same model in another etl) to completion, then lets A go on. */
async function race<B = CliResult>(dir: string, model: string, pauseAfter: string, other?: () => Promise<B>): Promise<{ a: CliResult; b: B }> {
  const resume = path.join(dir, `resume-${model}`);
  const a = startCli(['run', '-s', model, '--project-dir', dir], { cwd: dir, env: { ETL_PAUSE_AFTER_SQL: pauseAfter, ETL_RESUME_FILE: resume } });
  await a.waitForOutput(/\[paused after sql\]/);
  const b = other ? await other() : ((await etl(dir, 'run', '-s', model)) as B);
  writeFileSync(resume, '');
  return { a: await a.exitWithin(60_000), b };
}

const expected = (increments: number): Array<[number, number]> => Array.from({ length: 10 }, (_, k) => [k, k === 1 || k === 2 ? increments : 0]);

describe('concurrent merges on one Delta table', () => {
  let dir: string;
  beforeAll(async () => {
    dir = writeProject({ 'etl.yml': yml, 'models/counters.sql': counters(2), 'models/counters_once.sql': counters(0) });
    const build = await etl(dir, 'run');
    expect(build.code, build.output).toBe(0);
  });

  it('with retries: the conflict is transient, the node runs again from the winner\'s version, and both increments are kept', async () => {
    // A's model SQL has read the counters at version 0.
    const { a, b } = await race(dir, 'counters', '^create or replace temp table "temp"\\."counters__etl_tmp"');
    expect(b.code, b.output).toBe(0);
    expect(a.code, a.output).toBe(0);
    // The serial result: two runs, two increments.
    expect(await values(dir, 'counters')).toEqual(expected(2));
    const infos = await commitInfos(dir, 'counters');
    expect(infos.map((i) => i.operation)).toEqual(['CREATE TABLE AS SELECT', 'MERGE', 'MERGE']);
    // B committed version 1, A (after its retry) version 2.
    const aResults = readJson(dir, 'target/run_results.json');
    expect(infos[2]!.etlInvocationId).toBe(aResults.metadata.invocation_id);
    expect(infos[1]!.etlInvocationId).not.toBe(aResults.metadata.invocation_id);
    const attempts = aResults.results[0].adapter_response.attempts as Array<{ attempt: number; status: string; transient?: boolean; message?: string }>;
    expect(attempts.map((x) => [x.attempt, x.status, x.transient ?? null])).toEqual([
      [1, 'error', true],
      [2, 'success', null],
    ]);
    expect(attempts[0]!.message).toMatch(/conflicting commit on Delta table .*counters at version 1: MERGE by \S+ \(model\.conflicts\.counters\) conflicts with MERGE by \S+ \(model\.conflicts\.counters\) \(version 1\) \(both removed the file part-/);
  });

  it('without retries: the run fails with a conflict naming both writers and the file, and the winner\'s update stays', async () => {
    // A is planning its merge on version 0 (the key range of its new rows is known).
    const { a, b } = await race(dir, 'counters_once', '^select cast\\(min\\("k"\\) as varchar\\)');
    expect(b.code, b.output).toBe(0);
    expect(a.code, a.output).toBe(1);
    const winner = (await commitInfos(dir, 'counters_once'))[1]!;
    const loser = readJson(dir, 'target/run_results.json').metadata.invocation_id as string;
    expect(a.output).toContain(
      `MERGE by ${loser} (model.conflicts.counters_once) conflicts with MERGE by ${String(winner.etlInvocationId)} (model.conflicts.counters_once) (version 1) (both removed the file part-`,
    );
    expect(a.output).toMatch(/hint: run it again \(a model with retries: is re-run by itself\)/);
    expect(await values(dir, 'counters_once')).toEqual(expected(1));
    expect((await commitInfos(dir, 'counters_once')).map((i) => i.operation)).toEqual(['CREATE TABLE AS SELECT', 'MERGE']);
    // Run again, it starts from the new version.
    expect((await etl(dir, 'run', '-s', 'counters_once')).code).toBe(0);
    expect(await values(dir, 'counters_once')).toEqual(expected(2));
  });
});

/** An append model copying the ids of src it has not got yet: its SQL reads the whole of its own table. */
const selfCopy = (retries: number) =>
  `{{config materialized="incremental" retries=${retries} retry_backoff="none"}}\n` +
  'select id from {{ref "src"}}{{#if is_incremental}} where id > (select coalesce(max(id), -1) from {{this}}){{/if}}\n';

async function ids(dir: string, model: string): Promise<number[]> {
  const scan = await new DeltaTable(new LocalStorage(path.join(dir, 'lake', 'main', model)), db.session).scan();
  return (await db.session.query(`select id from (${scan.sql}) as t order by id`)).rows.map((r) => Number(r[0]));
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const APPEND_ROWS = path.resolve(import.meta.dirname, '../delta/append-rows.mjs');
/** Another process's blind append of one id to the model's table. */
const blindAppend = (dir: string, model: string, id: number) => promisify(execFile)(process.execPath, [APPEND_ROWS, path.join(dir, 'lake', 'main', model), `select ${id}::bigint as id`, 'loader-x']);

describe('an append whose SQL reads its own table', () => {
  let dir: string;
  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': yml,
      'models/src.sql': 'select range as id from range({{var "n" "10"}})\n',
      'models/self_copy.sql': selfCopy(2),
      'models/self_copy_once.sql': selfCopy(0),
      'models/serializable_copy.sql': selfCopy(0),
      'models/write_serializable_copy.sql': selfCopy(0),
    });
    const build = await etl(dir, 'run');
    expect(build.code, build.output).toBe(0);
    // src gains ids 10..19: every copy has 10 new rows to append.
    const more = await etl(dir, 'run', '-s', 'src', '--vars', '{"n": 20}');
    expect(more.code, more.output).toBe(0);
  });
  const staged = (model: string) => `^create or replace temp table "temp"\\."${model}__etl_tmp"`;

  it('with retries: the winner\'s append conflicts (the loser read max(id) of the whole table), the node runs again and appends nothing twice', async () => {
    const { a, b } = await race(dir, 'self_copy', staged('self_copy'));
    expect(b.code, b.output).toBe(0);
    expect(a.code, a.output).toBe(0);
    // Serial result: ids 0..19 once each (without the conflict A appended 10..19 again).
    expect(await ids(dir, 'self_copy')).toEqual(range(0, 20));
    const infos = await commitInfos(dir, 'self_copy');
    // Only B's append committed (A's retry found nothing new); it read the table, so it is no blind append.
    expect(infos.map((i) => [i.operation, i.isBlindAppend])).toEqual([
      ['CREATE TABLE AS SELECT', true],
      ['WRITE', false],
    ]);
    const attempts = readJson(dir, 'target/run_results.json').results[0].adapter_response.attempts as Array<{ status: string; transient?: boolean; message?: string }>;
    expect(attempts.map((x) => [x.status, x.transient ?? null])).toEqual([
      ['error', true],
      ['success', null],
    ]);
    expect(attempts[0]!.message).toMatch(/WRITE by \S+ \(model\.conflicts\.self_copy\) conflicts with WRITE by \S+ \(model\.conflicts\.self_copy\) \(version 1\) \(it added the file part-\S+ to data this change read\)/);
  });

  it('without retries: the run fails naming both writers, and the table holds the winner\'s rows once', async () => {
    const { a, b } = await race(dir, 'self_copy_once', staged('self_copy_once'));
    expect(b.code, b.output).toBe(0);
    expect(a.code, a.output).toBe(1);
    const loser = readJson(dir, 'target/run_results.json').metadata.invocation_id as string;
    const winner = (await commitInfos(dir, 'self_copy_once'))[1]!;
    expect(a.output).toContain(`WRITE by ${loser} (model.conflicts.self_copy_once) conflicts with WRITE by ${String(winner.etlInvocationId)} (model.conflicts.self_copy_once) (version 1) (it added the file part-`);
    expect(await ids(dir, 'self_copy_once')).toEqual(range(0, 20));
  });

  it('Serializable (the default): another process\'s blind append into the table the SQL read conflicts', async () => {
    const { a, b } = await race(dir, 'serializable_copy', staged('serializable_copy'), () => blindAppend(dir, 'serializable_copy', 100));
    expect(b.stdout).toContain('loader-x appended at version 1');
    expect(a.code, a.output).toBe(1);
    expect(a.output).toMatch(/WRITE by \S+ \(model\.conflicts\.serializable_copy\) conflicts with WRITE by loader-x \(version 1\) \(it added the file part-/);
    expect(await ids(dir, 'serializable_copy')).toEqual([...range(0, 10), 100]);
    expect((await commitInfos(dir, 'serializable_copy'))[1]!.isBlindAppend).toBe(true);
  });

  it('WriteSerializable (delta.isolationLevel, as Spark): a blind append is ordered after the change, which commits at the next version without a conflict', async () => {
    // What Spark's ALTER TABLE ... SET TBLPROPERTIES ('delta.isolationLevel' = 'WriteSerializable') commits.
    const storage = new LocalStorage(path.join(dir, 'lake', 'main', 'write_serializable_copy'));
    const before = await new DeltaTable(storage, db.session).snapshot();
    await commit(storage, db.session, {
      operation: 'SET TBLPROPERTIES',
      readVersion: before.version,
      actions: [{ metaData: { ...before.metadata, configuration: { ...before.metadata.configuration, 'delta.isolationLevel': 'WriteSerializable' } } }],
      readPredicate: 'all',
      readFiles: 'all',
    });
    const { a, b } = await race(dir, 'write_serializable_copy', staged('write_serializable_copy'), () => blindAppend(dir, 'write_serializable_copy', 100));
    expect(b.stdout).toContain('loader-x appended at version 2');
    expect(a.code, a.output).toBe(0);
    expect(await ids(dir, 'write_serializable_copy')).toEqual([...range(0, 20), 100]);
    const mine = (await commitInfos(dir, 'write_serializable_copy'))[3]!;
    expect([mine.operation, mine.readVersion, mine.isolationLevel, mine.isBlindAppend]).toEqual(['WRITE', 1, 'WriteSerializable', false]);
  });
});

describe('a quarantining model whose commit conflicts', () => {
  it('leaves the quarantine table as the winner left it: its own staged rows are in no commit', async () => {
    const dir = writeProject({
      'etl.yml': yml,
      'models/src.sql': 'select range as id from range({{var "n" "10"}})\n',
      'models/quarantined_copy.sql': '{{config materialized="incremental" quarantine=true}}\nselect id, case when id % 5 = 0 then -1 else id end as amount from {{ref "src"}}{{#if is_incremental}} where id > (select coalesce(max(id), -1) from {{this}}){{/if}}\n',
      'models/schema.yml': 'models:\n  - name: quarantined_copy\n    tests: [{ expression_is_true: { expression: "amount >= 0" } }]\n',
    });
    expect((await etl(dir, 'run')).code).toBe(0);
    expect((await etl(dir, 'run', '-s', 'src', '--vars', '{"n": 20}')).code).toBe(0);
    const { a, b } = await race(dir, 'quarantined_copy', '^create or replace temp table "temp"\\."quarantined_copy__etl_tmp"');
    expect(b.code, b.output).toBe(0);
    expect(a.code, a.output).toBe(1);
    expect(a.output).toMatch(/conflicting commit on Delta table .*quarantined_copy at version 1/);
    const folder = path.join(dir, 'lake', 'main', 'quarantined_copy__quarantine');
    const files = activeFilesByJsonReplay(folder);
    const r = await db.session.query(`select id from read_parquet([${files.map((f) => `'${f}'`).join(', ')}]) order by id`);
    // The first run's (0, 5) and the winner's (10, 15), once each; the loser staged 10 and 15 too, in files no commit names.
    expect(r.rows.map((row) => Number(row[0]))).toEqual([0, 5, 10, 15]);
    const onDisk = readdirSync(folder).filter((f) => f.endsWith('.parquet'));
    expect(onDisk.length).toBe(files.length + 1);
    expect(await ids(dir, 'quarantined_copy')).toEqual(range(0, 20).filter((id) => id % 5 !== 0));
  });
});
