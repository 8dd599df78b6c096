// Two etl processes changing one Delta table at the same time, through the
// built CLI. Process A is held after a statement of its run
// (ETL_PAUSE_AFTER_SQL, released by ETL_RESUME_FILE): after its model's SQL
// read version N, or in the middle of planning its merge on version N.
// Process B runs the same model to completion (version N+1); then A goes on.
// A's merge read and rewrote the file B rewrote: it must not commit at N+2
// as if nothing happened (B's increment would be lost).
// With `retries:` the conflict is transient and A's node runs again from B's
// version; without, A fails naming both writers. Either way no update is lost.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeltaTable, LocalStorage } from '../../adapters/delta/index.js';
import { etlYml, killAll, readJson, removeTempDirs, runCli, startCli, writeProject, type CliResult } from './helpers.js';
import { openDuckDb, type TestDb } from '../delta/helpers.js';

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

/** Runs the model in A (held after the statement `pauseAfter` matches), then in B to completion, then lets A go on. */
async function race(dir: string, model: string, pauseAfter: string): Promise<{ a: CliResult; b: CliResult }> {
  const resume = path.join(dir, `resume-${model}`);
  const a = startCli(['run', '-s', model, '--project-dir', dir], { cwd: dir, env: { ETL_PAUSE_AFTER_SQL: pauseAfter, ETL_RESUME_FILE: resume } });
  await a.waitForOutput(/\[paused after sql\]/);
  const b = await etl(dir, 'run', '-s', model);
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
    const { a, b } = await race(dir, 'counters', '^create temp table "temp"\\."counters__etl_tmp"');
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
