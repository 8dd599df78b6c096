// The reader against the Delta golden tables (tests/fixtures/delta-golden):
// every table with expected rows and no unsupported feature reads back exactly
// those rows (as a multiset); tables with a feature etl does not implement are
// refused by name; broken logs fail with an error naming the table and version.

import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage, loadSnapshot, scanSnapshot, DeltaTable } from '../../adapters/delta/index.js';
import { count, extractGolden, GOLDEN_DIR, openDuckDb, tempDir, type TestDb } from './helpers.js';

const ALL = readdirSync(GOLDEN_DIR)
  .filter((f) => f.endsWith('.tar.zst'))
  .map((f) => f.slice(0, -'.tar.zst'.length))
  .sort();

/** Tables refused with "unsupported Delta feature: <name>". */
const REFUSED: Record<string, string> = {
  'data-reader-timestamp_ntz-id-mode': 'columnMapping',
  'data-reader-timestamp_ntz-name-mode': 'columnMapping',
  'data-skipping-basic-stats-all-types-columnmapping-id': 'columnMapping',
  'data-skipping-basic-stats-all-types-columnmapping-name': 'columnMapping',
  'table-with-columnmapping-mode-id': 'columnMapping',
  'table-with-columnmapping-mode-name': 'columnMapping',
  'dv-with-columnmapping': 'columnMapping',
  'v2-checkpoint-json': 'v2Checkpoint',
  'v2-checkpoint-parquet': 'v2Checkpoint',
};

/** Tables whose logs are broken on purpose: the error each must give. */
const MUST_FAIL: Record<string, RegExp> = {
  'deltalog-invalid-protocol-version': /needs reader version 99/,
  'deltalog-state-reconstruction-from-checkpoint-missing-metadata': /no metaData action at version 10/,
  'deltalog-state-reconstruction-from-checkpoint-missing-protocol': /no protocol action at version 10/,
  'deltalog-state-reconstruction-without-metadata': /no metaData action at version 0/,
  'deltalog-state-reconstruction-without-protocol': /no protocol action at version 0/,
  'versions-not-contiguous': /gap in its log: version 1 is missing/,
  'no-delta-log-folder': /not a Delta table: .*no-delta-log-folder\/delta has no _delta_log/,
  // hive/ holds Hive tables, not Delta ones.
  hive: /not a Delta table/,
  // Written by old connector tests with a metaData action lacking its required schemaString.
  'deltalog-commit-info': /at version 0: metaData has no schemaString/,
  'update-deleted-directory': /at version 0: metaData has no schemaString/,
  'data-reader-absolute-paths-escaped-chars': /no metaData action at version 1/,
};

/** Log-replay tables whose data files were never written: checked on their snapshot, not their rows. */
const LOG_ONLY = new Set(['checkpoint', 'canonicalized-paths-normal-a', 'canonicalized-paths-normal-b', 'canonicalized-paths-special-a', 'canonicalized-paths-special-b', 'delete-re-add-same-file-different-transactions', 'log-replay-special-characters-b']);

let db: TestDb;
let tmp: ReturnType<typeof tempDir>;
const folders = new Map<string, string>();

beforeAll(async () => {
  db = await openDuckDb();
  tmp = tempDir('etl-delta-golden-');
  for (const name of ALL) folders.set(name, extractGolden(name, tmp.dir));
});

afterAll(() => {
  db?.close();
  tmp?.remove();
});

/** Rows of the table minus expected rows and the reverse, as multisets (EXCEPT ALL), over the expected columns. */
async function multisetDiff(tableDir: string, exclude: string[] = []): Promise<{ rows: number; extra: number; missing: number }> {
  const storage = new LocalStorage(path.join(tableDir, 'delta'));
  const snapshot = await loadSnapshot(storage, db.session);
  const scan = await scanSnapshot(storage, db.session, snapshot);
  const expectedFiles = `read_parquet('${path.join(tableDir, 'expected')}/*.parquet')`;
  const expectedCols = (await db.session.query(`describe select * from ${expectedFiles}`)).rows.map((r) => String(r[0])).filter((c) => !exclude.includes(c));
  const actualTypes = new Map((await db.session.query(`describe ${scan.sql}`)).rows.map((r) => [String(r[0]), String(r[1])]));
  for (const c of expectedCols) expect(actualTypes.has(c), `column ${c}`).toBe(true);
  const q = (c: string) => `"${c.replace(/"/g, '""')}"`;
  // Expected files hold int96 or other physical types: compared after a cast to the type the reader returns.
  const expected = `select ${expectedCols.map((c) => `cast(${q(c)} as ${actualTypes.get(c)}) as ${q(c)}`).join(', ')} from ${expectedFiles}`;
  const actual = `select ${expectedCols.map(q).join(', ')} from (${scan.sql}) as a`;
  return {
    rows: await count(db.session, actual),
    extra: await count(db.session, `(${actual}) except all (${expected})`),
    missing: await count(db.session, `(${expected}) except all (${actual})`),
  };
}

const readable = ALL.filter((n) => !(n in REFUSED) && !(n in MUST_FAIL) && !LOG_ONLY.has(n));

it('all 89 golden tables are covered, each in one group: read against expected rows, refused by feature, meant to fail, or checked on their log', () => {
  expect(ALL).toHaveLength(89);
  expect([...readable, ...Object.keys(REFUSED), ...Object.keys(MUST_FAIL), ...LOG_ONLY].sort()).toEqual(ALL);
});

describe('golden tables with expected rows', () => {
  it('cover every golden table with expected rows that etl can read', () => {
    for (const name of readable) expect(existsSync(path.join(folders.get(name)!, 'expected')), name).toBe(true);
    expect(readable.length).toBeGreaterThanOrEqual(55);
  });
  for (const name of readable) {
    it(`${name} reads back exactly its expected rows`, async () => {
      // The partition value "2021-09-08 11:11:11" has no zone; the protocol says it is in the
      // writer's zone, which the log does not record (the expected rows assume US Pacific). etl
      // reads it as UTC, so that column is compared on its own below.
      const exclude = name === 'data-reader-partition-values' ? ['as_timestamp'] : [];
      const d = await multisetDiff(folders.get(name)!, exclude);
      expect(d).toEqual({ rows: d.rows, extra: 0, missing: 0 });
    });
  }
  it('data-reader-partition-values reads a zone-less timestamp partition value as UTC', async () => {
    const storage = new LocalStorage(path.join(folders.get('data-reader-partition-values')!, 'delta'));
    const scan = await scanSnapshot(storage, db.session, await loadSnapshot(storage, db.session));
    const r = await db.session.query(`select distinct cast(as_timestamp as varchar) from (${scan.sql}) order by 1 nulls last`);
    expect(r.rows.map((x) => x[0])).toEqual(['2021-09-08 11:11:11+00', null]);
  });
});

describe('golden tables etl refuses', () => {
  for (const [name, feature] of Object.entries(REFUSED)) {
    it(`${name} is refused: unsupported Delta feature: ${feature}`, async () => {
      const storage = new LocalStorage(path.join(folders.get(name)!, 'delta'));
      await expect(loadSnapshot(storage, db.session)).rejects.toThrow(`unsupported Delta feature: ${feature}`);
    });
  }
  for (const [name, message] of Object.entries(MUST_FAIL)) {
    it(`${name} fails cleanly, naming the table`, async () => {
      const root = path.join(folders.get(name)!, 'delta');
      const err = await loadSnapshot(new LocalStorage(root), db.session).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(message);
      expect(err?.message).toContain(root);
    });
  }
});

describe('log replay', () => {
  const snapshotOf = (name: string, version?: number) => loadSnapshot(new LocalStorage(path.join(folders.get(name)!, 'delta')), db.session, { version });

  it('starts from the checkpoint _last_checkpoint names and replays the commits after it', async () => {
    const s = await snapshotOf('checkpoint');
    expect(s.version).toBe(14);
    expect(s.files.size).toBe(1);
  });

  it('reads past a corrupt _last_checkpoint by listing the log', async () => {
    expect((await snapshotOf('corrupted-last-checkpoint-kernel')).version).toBe(11);
  });

  it('matches file:/x, file:///x and /x (and their encodings) as one file', async () => {
    for (const name of ['canonicalized-paths-normal-a', 'canonicalized-paths-normal-b', 'canonicalized-paths-special-a', 'canonicalized-paths-special-b']) {
      const s = await snapshotOf(name);
      expect([s.version, s.files.size], name).toEqual([1, 0]);
    }
  });

  it('keeps the newest add of a path that was removed and added again', async () => {
    const s = await snapshotOf('delete-re-add-same-file-different-transactions');
    const files = [...s.files.values()];
    expect(files.map((f) => f.path).sort()).toEqual(['bar', 'foo']);
    expect(files.find((f) => f.path === 'foo')!.modificationTime).toBe(1700000000000);
  });

  it('decodes URI-encoded paths', async () => {
    const s = await snapshotOf('log-replay-special-characters-b');
    expect([...s.files.values()].map((f) => decodeURIComponent(f.path))).toEqual(['special p@#h']);
  });

  it('reads multi-part checkpoints and a log whose old commits were cleaned up', async () => {
    expect((await snapshotOf('multi-part-checkpoint')).version).toBe(1);
    expect((await snapshotOf('only-checkpoint-files')).files.size).toBeGreaterThan(0);
  });

  it('records transaction versions (txn) by application id', async () => {
    const s = await snapshotOf('deltalog-getChanges');
    expect(s.txns.get('fakeAppId')?.version).toBe(3);
    expect(s.txns.has('nonExistentAppId')).toBe(false);
  });

  it('travels to older versions by number and by commit timestamp', async () => {
    const storage = new LocalStorage(path.join(folders.get('time-travel-start-start20-start40')!, 'delta'));
    const table = new DeltaTable(storage, db.session);
    const rows: number[] = [];
    for (const version of [0, 1, 2]) rows.push(await count(db.session, (await table.scan({ version })).sql));
    expect(rows).toEqual([10, 20, 30]);
    const history = await table.history();
    expect(history.map((h) => h.version)).toEqual([2, 1, 0]);
    const v1 = history.find((h) => h.version === 1)!;
    expect((await table.snapshot({ timestamp: new Date(v1.timestamp) })).version).toBe(1);
    await expect(table.snapshot({ version: 3 })).rejects.toThrow(/has no version 3: its latest version is 2/);
    await expect(table.snapshot({ timestamp: '2000-01-01T00:00:00Z' })).rejects.toThrow(/has no version at 2000-01-01T00:00:00.000Z/);
  });
});
