// Concurrent writers and crashes, with real processes on a real table:
// two processes appending 100 times each lose nothing and take contiguous
// versions; two processes merging into the same files (read-modify-write)
// never lose an update: a commit that read or removed what another writer
// changed conflicts and is retried from the new version; a process killed (SIGKILL) at random points while committing
// leaves a table that is readable at some version and never shows half a commit.

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeltaTable, LocalStorage } from '../../adapters/delta/index.js';
import { openDuckDb, tempDir, type TestDb } from './helpers.js';

const run = promisify(execFile);
const WORKER = path.resolve(import.meta.dirname, 'append-worker.mjs');
const MERGE_WORKER = path.resolve(import.meta.dirname, 'merge-worker.mjs');

let db: TestDb;
let tmp: ReturnType<typeof tempDir>;
beforeAll(async () => {
  db = await openDuckDb();
  tmp = tempDir('etl-delta-concurrency-');
});
afterAll(() => {
  db?.close();
  tmp?.remove();
});

async function createEmpty(root: string): Promise<DeltaTable> {
  const table = new DeltaTable(new LocalStorage(root), db.session);
  await table.write({ selectSql: `select 'w' as writer, 0 as seq, 0::bigint as n where false`, mode: 'append' });
  return table;
}

/** Every commit file parses whole: a commitInfo first, then complete JSON actions. */
function commitsOf(root: string): Array<{ version: number; adds: number }> {
  const dir = path.join(root, '_delta_log');
  const files = readdirSync(dir).filter((f) => /^\d{20}\.json$/.test(f)).sort();
  return files.map((f) => {
    const lines = readFileSync(path.join(dir, f), 'utf8').split('\n');
    expect(lines.at(-1), `${f} ends with a newline`).toBe('');
    const actions = lines.slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Object.keys(actions[0]!)).toEqual(['commitInfo']);
    return { version: Number(f.slice(0, 20)), adds: actions.filter((a) => 'add' in a).length };
  });
}

describe('concurrent writers', () => {
  it('two processes appending 100 times each: 200 adds, contiguous versions, no lost rows', async () => {
    const root = path.join(tmp.dir, 'two-writers');
    const table = await createEmpty(root);
    const [a, b] = await Promise.all([run(process.execPath, [WORKER, root, 'a', '100']), run(process.execPath, [WORKER, root, 'b', '100'])]);
    expect(a.stdout).toContain('a done');
    expect(b.stdout).toContain('b done');
    const commits = commitsOf(root);
    expect(commits.map((c) => c.version)).toEqual(Array.from({ length: 201 }, (_, i) => i));
    expect(commits.reduce((s, c) => s + c.adds, 0)).toBe(200);
    const snapshot = await table.snapshot();
    expect(snapshot.version).toBe(200);
    expect(snapshot.files.size).toBe(200);
    const r = await db.session.query(`select writer, count(distinct seq), count(*) from (${(await table.scan()).sql}) x group by writer order by writer`);
    expect(r.rows).toEqual([
      ['a', 100n, 1000n],
      ['b', 100n, 1000n],
    ]);
  }, 120_000);
});

describe('concurrent merges', () => {
  /** A table of 1000 counters (k, n = 0) in 4 files of 250 keys each. */
  async function counters(root: string): Promise<DeltaTable> {
    const table = new DeltaTable(new LocalStorage(root), db.session);
    for (let f = 0; f < 4; f++) await table.write({ selectSql: `select range as k, 0 as n from range(${f * 250}, ${(f + 1) * 250})`, mode: 'append' });
    return table;
  }
  async function values(table: DeltaTable): Promise<Map<number, number>> {
    const r = await db.session.query(`select k, n from (${(await table.scan()).sql}) x order by k`);
    expect(r.rows).toHaveLength(1000);
    return new Map(r.rows.map((row) => [Number(row[0]), Number(row[1])]));
  }
  const merge = (root: string, writer: string, times: number, keys: number[]) => run(process.execPath, [MERGE_WORKER, root, writer, String(times), keys.join(',')]);

  it('two processes incrementing the same keys 25 times each: every increment is kept (the serial result)', async () => {
    const root = path.join(tmp.dir, 'hot-keys');
    const table = await counters(root);
    const [a, b] = await Promise.all([merge(root, 'a', 25, [1, 2, 600]), merge(root, 'b', 25, [2, 3, 600])]);
    expect(a.stdout).toMatch(/a merged 25 times/);
    expect(b.stdout).toMatch(/b merged 25 times/);
    const n = await values(table);
    expect([n.get(1), n.get(2), n.get(3), n.get(600)]).toEqual([25, 50, 25, 50]);
    expect([...n.values()].reduce((s, v) => s + v, 0)).toBe(25 * 3 * 2);
    // 4 appends, then 50 merges, one version each.
    const commits = commitsOf(root);
    expect(commits.map((c) => c.version)).toEqual(Array.from({ length: 54 }, (_, i) => i));
  }, 240_000);

  it('two processes merging keys of different files never conflict', async () => {
    const root = path.join(tmp.dir, 'cold-keys');
    const table = await counters(root);
    const [a, b] = await Promise.all([merge(root, 'a', 15, [1, 2]), merge(root, 'b', 15, [998, 999])]);
    expect(a.stdout).toContain('a merged 15 times with 0 conflicts');
    expect(b.stdout).toContain('b merged 15 times with 0 conflicts');
    const n = await values(table);
    expect([n.get(1), n.get(2), n.get(998), n.get(999), n.get(500)]).toEqual([15, 15, 15, 15, 0]);
  }, 240_000);
});

describe('crashes', () => {
  it('a writer killed at 20 random points while committing never leaves a partial commit', async () => {
    const root = path.join(tmp.dir, 'killed');
    const table = await createEmpty(root);
    // How many storage calls a run of 8 appends makes (runs cross checkpoints as the table grows).
    const full = await run(process.execPath, [WORKER, root, 'probe', '8']);
    const calls = Number(/after (\d+) storage calls/.exec(full.stdout)![1]);
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20; i++) {
      const killAt = 1 + Math.floor(random() * calls * 0.9);
      const outcome = await run(process.execPath, [WORKER, root, `k${i}`, '8', String(killAt)]).then(
        () => 'finished',
        (err: { signal?: string }) => err.signal,
      );
      expect(outcome, `run ${i} killed at storage call ${killAt}`).toBe('SIGKILL');
      const commits = commitsOf(root);
      expect(commits.map((c) => c.version)).toEqual(commits.map((_, v) => v));
      const snapshot = await table.snapshot();
      expect(snapshot.version).toBe(commits.length - 1);
      const adds = commits.reduce((s, c) => s + c.adds, 0);
      const rows = await db.session.query(`select count(*), count(distinct writer || '/' || seq) from (${(await table.scan()).sql}) x`);
      // Each committed append is whole: 10 rows of one (writer, seq), never fewer.
      expect(rows.rows[0]).toEqual([BigInt(adds * 10), BigInt(adds)]);
    }
  }, 120_000);
});
