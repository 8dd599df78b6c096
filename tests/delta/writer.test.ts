// The writer, checked against the protocol: every table etl writes is read
// back by etl's reader, and its log is checked field by field (required
// fields, schemaString a Spark StructType, add.size = file size,
// stats.numRecords = the file's rows, partitionValues = the folders, removes
// = earlier adds, checkpoint state = a full JSON replay).

import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { commit, ConcurrentModificationError, DeltaTable, fileKey, LocalStorage, loadSnapshot, optimize, parseSchema, vacuum, type Action, type AddFile, type RemoveFile } from '../../adapters/delta/index.js';
import { planRewrite } from '../../adapters/delta/changes.js';
import { readDeletionVector } from '../../adapters/delta/deletion-vectors.js';
import { fileLocation } from '../../adapters/delta/scan.js';
import { count, openDuckDb, tempDir, type TestDb } from './helpers.js';
import { checkProtocol as checkLog, commits } from './protocol-check.js';
import { REPO_ROOT } from '../e2e/helpers.js';

let db: TestDb;
let tmp: ReturnType<typeof tempDir>;
let n = 0;
const checkProtocol = (root: string) => checkLog(db.session, root);

beforeAll(async () => {
  db = await openDuckDb();
});
afterAll(() => db?.close());
beforeEach(() => {
  tmp = tempDir('etl-delta-writer-');
});
afterEach(() => tmp.remove());

function newTable(): { table: DeltaTable; root: string } {
  const root = path.join(tmp.dir, `t${n++}`);
  return { table: new DeltaTable(new LocalStorage(root), db.session), root };
}

const ALL_TYPES = `select i::integer as i, i::bigint as big, i::smallint as small, i::tinyint as tiny, 'name ' || i as s,
  date '2024-01-01' + i::integer as d, timestamptz '2024-01-01 00:00:00+00' + to_minutes(i) as ts,
  (i / 4)::decimal(12, 2) as amount, i / 3 as ratio, i % 2 = 0 as even,
  {'a': i, 'b': 'x' || i} as st, [i, i + 1] as l, map {'k': i} as m, case when i % 5 = 0 then null else i end as maybe,
  (i * 1000)::hugeint as huge
  from range(100) r(i)`;

describe('writing a table', () => {
  it('creates a table that reads back row for row, with a log that follows the protocol', async () => {
    const { table, root } = newTable();
    const result = await table.write({ selectSql: ALL_TYPES, mode: 'append' });
    expect(result.commit?.version).toBe(0);
    expect(result.rows).toBe(100);
    const scan = await table.scan();
    const rows = (sql: string) => `select i, big, small, tiny, s, d, ts, amount, ratio, even, st, l, m, maybe, huge::decimal(38,0) as huge from (${sql}) x`;
    expect(await count(db.session, `(${rows(scan.sql)}) except all (${rows(ALL_TYPES)})`)).toBe(0);
    expect(await count(db.session, `(${rows(ALL_TYPES)}) except all (${rows(scan.sql)})`)).toBe(0);
    await checkProtocol(root);
    const s = await table.snapshot();
    expect(s.protocol).toEqual({ minReaderVersion: 1, minWriterVersion: 2 });
    const types = Object.fromEntries(s.schema.fields.map((f) => [f.name, f.type]));
    expect(types).toMatchObject({ i: 'integer', big: 'long', small: 'short', tiny: 'byte', s: 'string', d: 'date', ts: 'timestamp', amount: 'decimal(12,2)', ratio: 'double', even: 'boolean', huge: 'decimal(38,0)' });
    expect(types.l).toEqual({ type: 'array', elementType: 'long', containsNull: true });
    expect(types.m).toEqual({ type: 'map', keyType: 'string', valueType: 'long', valueContainsNull: true });
  });

  it('records min, max and null counts that bound the data', async () => {
    const { table } = newTable();
    await table.write({ selectSql: ALL_TYPES, mode: 'append' });
    const [add] = [...(await table.snapshot()).files.values()];
    const stats = JSON.parse(add!.stats!);
    expect(stats.numRecords).toBe(100);
    expect(stats.minValues).toMatchObject({ i: 0, big: 0, s: 'name 0', d: '2024-01-01', ts: '2024-01-01T00:00:00.000Z', amount: 0, st: { a: 0, b: 'x0' }, maybe: 1 });
    expect(stats.maxValues).toMatchObject({ i: 99, s: 'name 99', d: '2024-04-09', ts: '2024-01-01T01:39:00.000Z', amount: 24.75, st: { a: 99 } });
    expect(stats.nullCount).toMatchObject({ i: 0, maybe: 20, st: { a: 0, b: 0 } });
    expect(stats.minValues.l).toBeUndefined(); // no bounds for lists
  });

  it('bounds strings longer than 32 characters by a prefix (min) and a bumped prefix (max), and booleans by false/true; pruning by them stays correct', async () => {
    const { table, root } = newTable();
    const long = (c: string) => `${c.repeat(31)}é${c}-tail-${'x'.repeat(20)}`;
    // Three files: long strings starting with a, b and c (b's 32nd character is U+10FFFF, which cannot be bumped), flags all true, all false, mixed.
    await table.write({ selectSql: `select i as id, '${long('a')}' || i as s, true as flag from range(5) t(i)`, mode: 'append' });
    await table.write({ selectSql: `select i as id, '${'b'.repeat(31)}\u{10FFFF}' || 'zz' || i as s, false as flag from range(5) t(i)`.replace('\\u{10FFFF}', String.fromCodePoint(0x10ffff)), mode: 'append' });
    await table.write({ selectSql: `select i as id, '${long('c')}' || i as s, i % 2 = 0 as flag from range(5) t(i)`, mode: 'append' });
    await checkProtocol(root);
    const files = [...(await table.snapshot()).files.values()].map((f) => JSON.parse(f.stats!));
    const [a, b, c] = files.sort((x, y) => (x.minValues.s < y.minValues.s ? -1 : 1));
    expect(a.minValues.s).toBe(`${'a'.repeat(31)}é`);
    expect(a.maxValues.s).toBe(`${'a'.repeat(31)}ê`);
    expect(b.minValues.s).toBe(`${'b'.repeat(31)}${String.fromCodePoint(0x10ffff)}`);
    expect(b.maxValues.s).toBe(`${'b'.repeat(30)}c`);
    expect([a.minValues.flag, a.maxValues.flag, b.minValues.flag, b.maxValues.flag, c.minValues.flag, c.maxValues.flag]).toEqual([true, true, false, false, false, true]);
    // Every value lies within its file's bounds (DuckDB compares strings byte-wise, as Delta does).
    for (const f of [a, b, c]) {
      const scan = await table.scan();
      const outside = await count(db.session, `select * from (${scan.sql}) x where s like ${JSON.stringify(f.minValues.s.slice(0, 3)).replace(/"/g, "'")} || '%' and (s < ${`'${f.minValues.s}'`} or s >= ${`'${f.maxValues.s}'`})`);
      expect(outside).toBe(0);
    }
    const all = (await table.scan()).sql;
    const cases: Array<[{ column: string; op: '=' | '<' | '>' | '>='; value: string | boolean }, number]> = [
      [{ column: 's', op: '=', value: `${long('a')}3` }, 1],
      [{ column: 's', op: '=', value: `${'a'.repeat(31)}é` }, 1], // the bare prefix is within a's bounds, though no row holds it
      [{ column: 's', op: '>', value: `${'a'.repeat(31)}ê` }, 2],
      [{ column: 's', op: '<', value: `${'b'.repeat(31)}` }, 1],
      [{ column: 's', op: '>=', value: `${'b'.repeat(30)}c` }, 2], // b's max is that bound itself: kept (a bound, not a value)
      [{ column: 'flag', op: '=', value: true }, 2],
      [{ column: 'flag', op: '=', value: false }, 2],
    ];
    for (const [filter, files] of cases) {
      const scan = await table.scan({ filters: [filter] });
      expect(scan.files, JSON.stringify(filter)).toHaveLength(files);
      const where = typeof filter.value === 'boolean' ? String(filter.value) : `'${filter.value}'`;
      expect(await count(db.session, scan.sql), JSON.stringify(filter)).toBe(await count(db.session, `select * from (${all}) x where ${filter.column} ${filter.op} ${where}`));
    }
  });

  it('gives a table with naive timestamps the timestampNtz feature (reader 3, writer 7), and only then', async () => {
    const { table, root } = newTable();
    await table.write({ selectSql: `select 1 as id, timestamp '2024-05-01 10:00:00' as at`, mode: 'append' });
    expect((await table.snapshot()).protocol).toEqual({ minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['timestampNtz'], writerFeatures: ['timestampNtz'] });
    const stats = JSON.parse([...(await table.snapshot()).files.values()][0]!.stats!);
    expect(stats.minValues.at).toBe('2024-05-01T10:00:00.000');
    await checkProtocol(root);
  });

  it('refuses a type Delta cannot hold, naming the column, and writes nothing', async () => {
    const { table, root } = newTable();
    await expect(table.write({ selectSql: `select 1 as id, time '10:00' as opens_at`, mode: 'append' })).rejects.toThrow(/column opens_at has type TIME, which a Delta table cannot hold/);
    await expect(table.write({ selectSql: `select 1 as "order id"`, mode: 'append' })).rejects.toThrow(/column "order id" has a character/);
    expect(await table.exists()).toBe(false);
    expect(() => readdirSync(root)).toThrow();
  });

  it('writes partitions as Hive folders with partitionValues, and prunes them on read', async () => {
    const { table, root } = newTable();
    await table.write({
      selectSql: `select i as id, 'r' || (i % 4) as region, date '2024-01-01' + (i % 3)::integer as day, case when i % 10 = 0 then null else i end as v from range(40) t(i)`,
      mode: 'append',
      partitionBy: ['region', 'day'],
    });
    const active = await checkProtocol(root);
    expect(active.size).toBe(12);
    const s = await table.snapshot();
    expect(s.metadata.partitionColumns).toEqual(['region', 'day']);
    const scan = await table.scan({ filters: [{ column: 'region', op: '=', value: 'r1' }] });
    expect(scan.files).toHaveLength(3);
    expect(scan.files.every((f) => f.partitionValues.region === 'r1')).toBe(true);
    expect(await count(db.session, scan.sql)).toBe(10);
    const byDay = await table.scan({ filters: [{ column: 'day', op: '>=', value: '2024-01-02' }, { column: 'region', op: 'in', value: ['r0', 'r3'] }] });
    expect(byDay.files).toHaveLength(4);
    expect(await count(db.session, byDay.sql)).toBe(await count(db.session, `select * from (${(await table.scan()).sql}) x where day >= date '2024-01-02' and region in ('r0', 'r3')`));
    // Statistics prune data columns too.
    const high = await table.scan({ filters: [{ column: 'id', op: '>', value: 1000 }] });
    expect(high.files).toHaveLength(0);
    expect(await count(db.session, high.sql)).toBe(0);
  });

  it('keeps NULL and special characters in partition values', async () => {
    const { table, root } = newTable();
    await table.write({ selectSql: `select * from (values (1, 'a/b'), (2, 'x y=%z'), (3, null), (4, '')) t(id, p)`, mode: 'append', partitionBy: ['p'] });
    await checkProtocol(root);
    const values = [...(await table.snapshot()).files.values()].map((f) => f.partitionValues.p).sort();
    // NULL and '' are one partition: the protocol reads an empty partition value as NULL.
    expect(values).toEqual(['a/b', null, 'x y=%z']);
    const r = await db.session.query(`select id, p from (${(await table.scan()).sql}) x order by id`);
    expect(r.rows).toEqual([
      [1, 'a/b'],
      [2, 'x y=%z'],
      [3, null],
      [4, null],
    ]);
  });

  it('overwrites in one commit that removes every earlier file, and keeps the old version readable', async () => {
    const { table, root } = newTable();
    await table.write({ selectSql: 'select range as id from range(10)', mode: 'append' });
    await table.write({ selectSql: 'select range as id from range(10, 15)', mode: 'append' });
    await table.write({ selectSql: `select range as id, 'new' as tag from range(3)`, mode: 'overwrite' });
    await checkProtocol(root);
    const [, last] = commits(root).at(-1)!;
    expect(last.filter((a) => 'remove' in a)).toHaveLength(2);
    expect(last.filter((a) => 'add' in a)).toHaveLength(1);
    expect(last.filter((a) => 'metaData' in a)).toHaveLength(1); // the schema changed
    expect(await count(db.session, (await table.scan()).sql)).toBe(3);
    expect(await count(db.session, (await table.scan({ version: 1 })).sql)).toBe(15);
  });

  it('replaces only the partitions the new rows touch', async () => {
    const { table, root } = newTable();
    await table.write({ selectSql: `select i as id, i % 3 as p from range(30) t(i)`, mode: 'append', partitionBy: ['p'] });
    await table.write({ selectSql: `select 100 + i as id, 1 as p from range(2) t(i)`, mode: 'overwrite-partitions' });
    await checkProtocol(root);
    const r = await db.session.query(`select p, count(*), min(id) from (${(await table.scan()).sql}) x group by p order by p`);
    expect(r.rows).toEqual([
      [0n, 10n, 0n],
      [1n, 2n, 100n],
      [2n, 10n, 2n],
    ]);
  });

  it('appends with new columns only when asked to merge the schema', async () => {
    const { table } = newTable();
    await table.write({ selectSql: 'select 1 as id', mode: 'append' });
    await expect(table.write({ selectSql: `select 2 as id, 'x' as extra`, mode: 'append' })).rejects.toThrow(/columns extra that .* does not/);
    await table.write({ selectSql: `select 2 as id, 'x' as extra`, mode: 'append', mergeSchema: true });
    const r = await db.session.query(`select id, extra from (${(await table.scan()).sql}) x order by id`);
    expect(r.rows).toEqual([
      [1, null],
      [2, 'x'],
    ]);
  });

  it('skips a write whose txn (application id, version) is already committed', async () => {
    const { table } = newTable();
    const first = await table.write({ selectSql: 'select 1 as id', mode: 'append', txn: { appId: 'run-1', version: 1 } });
    const again = await table.write({ selectSql: 'select 1 as id', mode: 'append', txn: { appId: 'run-1', version: 1 } });
    expect(first.commit?.version).toBe(0);
    expect(again.commit).toBeUndefined();
    expect(await count(db.session, (await table.scan()).sql)).toBe(1);
    expect((await table.snapshot()).txns.get('run-1')?.version).toBe(1);
  });

  it('commits metadata domains with the data, and reads them back', async () => {
    const { table } = newTable();
    await table.write({ selectSql: 'select 1 as id', mode: 'append', domains: [{ domain: 'etl.state', configuration: '{"watermark":1}' }] });
    const s = await table.snapshot();
    expect(s.domains.get('etl.state')?.configuration).toBe('{"watermark":1}');
  });

  it('writes a checkpoint every 10 commits whose state equals a full replay of the JSON commits', async () => {
    const { table, root } = newTable();
    await table.write({ selectSql: 'select 0 as id, 0 as p', mode: 'append', partitionBy: ['p'] });
    for (let i = 1; i <= 11; i++) {
      const mode = i === 5 ? 'overwrite-partitions' : 'append';
      await table.write({ selectSql: `select ${i} as id, ${i % 3} as p`, mode, txn: { appId: `app-${i % 2}`, version: i }, domains: i === 7 ? [{ domain: 'etl.x', configuration: 'c' }] : [] });
    }
    const log = path.join(root, '_delta_log');
    expect(readdirSync(log)).toContain('00000000000000000010.checkpoint.parquet');
    expect(JSON.parse(readFileSync(path.join(log, '_last_checkpoint'), 'utf8'))).toMatchObject({ version: 10, numOfAddFiles: (await table.snapshot({ version: 10 })).files.size });
    const fromCheckpoint = await table.snapshot();
    // The same table without its checkpoint: replayed from the JSON commits alone.
    const copy = path.join(tmp.dir, 'json-only');
    cpSync(root, copy, { recursive: true });
    rmSync(path.join(copy, '_delta_log', '00000000000000000010.checkpoint.parquet'));
    rmSync(path.join(copy, '_delta_log', '_last_checkpoint'));
    const fromJson = await loadSnapshot(new LocalStorage(copy), db.session);
    const state = (s: typeof fromJson) => ({
      version: s.version,
      protocol: s.protocol,
      metadata: s.metadata,
      files: [...s.files.values()].map((f) => ({ ...f, dataChange: undefined })).sort((a, b) => a.path.localeCompare(b.path)),
      txns: [...s.txns.entries()].sort(),
      domains: [...s.domains.entries()].sort(),
      tombstones: [...s.tombstones.keys()].sort(),
    });
    expect(state(fromCheckpoint)).toEqual(state(fromJson));
    // The checkpoint has Spark's schema: one struct column per action.
    const cols = await db.session.query(`describe select * from read_parquet('${path.join(log, '00000000000000000010.checkpoint.parquet')}')`);
    expect(cols.rows.map((r) => r[0])).toEqual(['txn', 'add', 'remove', 'metaData', 'protocol', 'domainMetadata']);
  });

  /** A table's state as a checkpoint keeps it: every field of every action (dataChange aside: a checkpoint's are false; a tombstone's stats and tags are dropped). */
  const checkpointState = (s: Awaited<ReturnType<typeof loadSnapshot>>) => ({
    version: s.version,
    protocol: s.protocol,
    metadata: s.metadata,
    files: [...s.files.entries()].map(([k, f]) => [k, { ...f, dataChange: undefined }]).sort(),
    tombstones: [...s.tombstones.entries()].map(([k, r]) => [k, { ...r, dataChange: undefined, stats: undefined, tags: undefined }]).sort(),
    txns: [...s.txns.entries()].sort(),
    domains: [...s.domains.entries()].sort(),
  });
  /** The snapshot at `version` replayed from the JSON commits alone (a copy of the table without its checkpoints). */
  async function jsonReplay(root: string, version: number) {
    const copy = path.join(tmp.dir, `json-only-${n++}`);
    cpSync(root, copy, { recursive: true });
    for (const f of readdirSync(path.join(copy, '_delta_log'))) if (f.includes('checkpoint')) rmSync(path.join(copy, '_delta_log', f));
    return loadSnapshot(new LocalStorage(copy), db.session, { version });
  }

  it('builds the checkpoint from the committed state in memory (no replay of the log), equal to a full JSON replay: deletion vectors, removes, txns, domains (one removed), past a concurrent winner', async () => {
    const { root } = newTable();
    /** The storage the writers use, recording the log reads (a real LocalStorage). */
    class Recording extends LocalStorage {
      calls: string[] = [];
      override list(dir: string, options?: Parameters<LocalStorage['list']>[1]) {
        this.calls.push(`list ${dir}`);
        return super.list(dir, options);
      }
      override read(file: string) {
        this.calls.push(`read ${file}`);
        return super.read(file);
      }
    }
    const storage = new Recording(root);
    const table = new DeltaTable(storage, db.session);
    await table.write({ selectSql: `select range::bigint as k, 'v1' as v from range(0, 100)`, mode: 'append', deletionVectors: true, domains: [{ domain: 'etl.a', configuration: '{"a":1}' }, { domain: 'etl.b', configuration: '{"b":1}' }] });
    await table.write({ selectSql: `select range::bigint as k, 'v1' as v from range(100, 200)`, mode: 'append', txn: { appId: 'app-0', version: 1 } });
    const merge = async (keys: number[]) => {
      const snapshot = await table.snapshot();
      await db.session.execute(`create or replace temp table etl_new as select k::bigint as k, 'v2' as v from unnest([${keys.join(', ')}]) as t(k)`);
      const change = { strategy: 'merge' as const, target: { schema: 'main', name: 't' }, staged: { schema: 'temp', name: 'etl_new' }, columns: ['k', 'v'], uniqueKey: ['k'], columnChanges: [], state: [] };
      const plan = await planRewrite(table.storage, db.session, snapshot, change, 'temp.etl_new', { deletionVectors: true });
      return table.write({ readSnapshot: snapshot, selectSql: plan.selectSql, mode: 'rewrite', removeFiles: plan.removeFiles, markDeleted: plan.markDeleted, readFiles: plan.readFiles, readPredicate: plan.readPredicate, operation: 'MERGE' });
    };
    // v2: vectors on both files; v3: most of the first file, rewritten (a remove without a vector add).
    expect((await merge([5, 150])).deletionVectors).toHaveLength(2);
    expect((await merge(Array.from({ length: 60 }, (_, i) => i))).removes.length).toBeGreaterThan(0);
    // v4: a domain removed, a txn of another application.
    const v3 = await table.snapshot();
    await commit(storage, db.session, { operation: 'SET ETL STATE', readVersion: 3, snapshot: v3, actions: [{ domainMetadata: { domain: 'etl.b', configuration: '', removed: true } }, { txn: { appId: 'app-1', version: 1, lastUpdated: 1 } }], readPredicate: 'none' });
    for (let v = 5; v <= 8; v++) await table.write({ selectSql: `select ${1000 + v}::bigint as k, 'v1' as v`, mode: 'append', txn: { appId: 'app-0', version: v } });
    // Writer B appends from version 8; writer A's merge lands first (version 9), so B's append is retried and commits version 10, which owes a checkpoint.
    const b = await table.snapshot();
    expect(b.version).toBe(8);
    expect((await merge([6, 151])).commit?.version).toBe(9);
    storage.calls = [];
    const appended = await table.write({ readSnapshot: b, selectSql: `select 2000::bigint as k, 'v1' as v`, mode: 'append', txn: { appId: 'app-1', version: 2 }, domains: [{ domain: 'etl.a', configuration: '{"a":2}' }] });
    expect(appended.commit).toMatchObject({ version: 10, attempts: 2 });
    expect(appended.commit?.checkpointError).toBeUndefined();
    // The checkpoint came from memory: the only log file read is the winner's commit, and the log was not listed.
    expect(storage.calls).toEqual(['read _delta_log/00000000000000000009.json']);
    const log = path.join(root, '_delta_log');
    expect(readdirSync(log)).toContain('00000000000000000010.checkpoint.parquet');
    const fromCheckpoint = await loadSnapshot(new LocalStorage(root), db.session, { version: 10 });
    const fromJson = await jsonReplay(root, 10);
    expect(fromCheckpoint.tombstones.size).toBeGreaterThan(0);
    expect([...fromCheckpoint.files.values()].filter((f) => f.deletionVector).length).toBeGreaterThan(0);
    expect([...fromCheckpoint.domains.keys()]).toEqual(['etl.a']);
    expect(fromCheckpoint.txns.get('app-1')?.version).toBe(2);
    expect(checkpointState(fromCheckpoint)).toEqual(checkpointState(fromJson));
    expect(JSON.parse(readFileSync(path.join(log, '_last_checkpoint'), 'utf8'))).toMatchObject({ version: 10, numOfAddFiles: fromJson.files.size });
    await checkProtocol(root);
  });

  it('replays the log for the checkpoint when the snapshot given is not one read whole from it', async () => {
    const { table, root } = newTable();
    for (let i = 0; i < 9; i++) await table.write({ selectSql: `select ${i} as id`, mode: 'append' });
    const s = await table.snapshot();
    // A copy of the snapshot with none of its files (as a scan of some files makes): a checkpoint from it would lose the table's files.
    const result = await commit(table.storage, db.session, { operation: 'WRITE', readVersion: 9 - 1, snapshot: { ...s, files: new Map() }, actions: [], readPredicate: 'none' });
    expect(result).toMatchObject({ version: 9, attempts: 1 });
    const tenth = await commit(table.storage, db.session, { operation: 'WRITE', readVersion: 9, snapshot: { ...(await table.snapshot()), files: new Map() }, actions: [], readPredicate: 'none' });
    expect(tenth.version).toBe(10);
    expect(readdirSync(path.join(root, '_delta_log'))).toContain('00000000000000000010.checkpoint.parquet');
    const fromCheckpoint = await loadSnapshot(new LocalStorage(root), db.session);
    expect(fromCheckpoint.files.size).toBe(9);
    expect(checkpointState(fromCheckpoint)).toEqual(checkpointState(await jsonReplay(root, 10)));
  });

  it('names the file, line and version of a corrupt commit', async () => {
    const { table, root } = newTable();
    await table.write({ selectSql: 'select 1 as id', mode: 'append' });
    writeFileSync(path.join(root, '_delta_log', '00000000000000000001.json'), '{"commitInfo":{}}\n{"add": {"path": "x"\n');
    await expect(table.snapshot()).rejects.toThrow(/corrupt Delta commit .*00000000000000000001\.json:2 \(version 1\)/);
  });
});

describe('deletion vectors', () => {
  /** Merges rows (k, 'v2') for `keys` into a table of (k, v) as the adapter does, deletion vectors on. */
  async function merge(table: DeltaTable, keys: number[]) {
    const snapshot = await table.snapshot();
    await db.session.execute(`create or replace temp table etl_new as select k::bigint as k, 'v2' as v from unnest([${keys.join(', ')}]) as t(k)`);
    const change = { strategy: 'merge' as const, target: { schema: 'main', name: 't' }, staged: { schema: 'temp', name: 'etl_new' }, columns: ['k', 'v'], uniqueKey: ['k'], columnChanges: [], state: [] };
    const plan = await planRewrite(table.storage, db.session, snapshot, change, 'temp.etl_new', { deletionVectors: true });
    await table.write({ readSnapshot: snapshot, selectSql: plan.selectSql, mode: 'rewrite', removeFiles: plan.removeFiles, markDeleted: plan.markDeleted, readFiles: plan.readFiles, readPredicate: plan.readPredicate, operation: 'MERGE' });
    return plan;
  }
  /** The table's rows, and what they must be: keys 0..399 'v1', merged keys 'v2'. */
  async function rowsOf(table: DeltaTable, where = '') {
    const r = await db.session.query(`select k, v from (${(await table.scan()).sql}) as t ${where} order by k`);
    return r.rows.map(([k, v]) => `${Number(k)}:${String(v)}`);
  }
  const expected = (merged: number[], where: (k: number) => boolean = () => true) =>
    [...new Set([...Array.from({ length: 400 }, (_, k) => k), ...merged])]
      .sort((a, b) => a - b)
      .filter(where)
      .map((k) => `${k}:${merged.includes(k) ? 'v2' : 'v1'}`);

  it('a merge marks the replaced rows of each file in a vector instead of rewriting it, in one commit with the new rows; readers, stats pruning, checkpoints, optimize and vacuum follow', async () => {
    const { table, root } = newTable();
    for (let f = 0; f < 4; f++) await table.write({ selectSql: `select range::bigint as k, 'v1' as v from range(${f * 100}, ${(f + 1) * 100})`, mode: 'append', deletionVectors: f === 0 });
    const created = await table.snapshot();
    expect(created.protocol).toEqual({ minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['deletionVectors'], writerFeatures: ['deletionVectors'] });
    expect(created.metadata.configuration['delta.enableDeletionVectors']).toBe('true');
    const merged = [5, 150, 151, 399, 1000];
    const plan = await merge(table, merged);
    expect(plan.removeFiles).toEqual([]);
    expect(plan.markDeleted.map((m) => m.positions)).toEqual(expect.arrayContaining([[5], [50, 51], [99]]));
    const [, actions] = commits(root).at(-1)!;
    const removed = actions.filter((a) => 'remove' in a).map((a) => (a as { remove: RemoveFile }).remove);
    const added = actions.filter((a) => 'add' in a).map((a) => (a as { add: AddFile }).add);
    // Each touched file: removed, and added again at the same path with its vector; plus the new rows' file.
    expect(removed.map((r) => r.path).sort()).toEqual(added.filter((a) => a.deletionVector).map((a) => a.path).sort());
    expect(added.filter((a) => !a.deletionVector)).toHaveLength(1);
    expect(await rowsOf(table)).toEqual(expected(merged));
    await checkProtocol(root);

    // Again on the same file: its vector grows (the earlier one's rows stay deleted); the remove names the earlier vector.
    merged.push(6, 7);
    await merge(table, [6, 7]);
    const [, second] = commits(root).at(-1)!;
    const dvs = second.flatMap((a) => ('add' in a && a.add.deletionVector ? [a.add.deletionVector.cardinality] : []));
    expect(dvs).toEqual([3]);
    expect(second.some((a) => 'remove' in a && a.remove.deletionVector?.cardinality === 1)).toBe(true);
    expect(await rowsOf(table)).toEqual(expected(merged));
    // Stats still bound the live rows (numRecords stays the physical count): pruned reads are right.
    for (const k of [5, 8, 150, 399, 1000]) expect(await rowsOf(table, `where k = ${k}`)).toEqual(expected(merged, (x) => x === k));
    const pruned = await table.scan({ filters: [{ column: 'k', op: '=', value: 8 }] });
    // The first file (0..99, with a vector) and the first merge's new rows (5..1000); not the other three.
    expect(pruned.files.map((f) => Boolean(f.deletionVector)).sort()).toEqual([false, true]);
    expect(pruned.snapshot.files.size).toBe(6);
    expect(await count(db.session, pruned.sql)).toBe(1);

    // Most of a file's rows: the file is rewritten (copy-on-write), not marked.
    const most = Array.from({ length: 60 }, (_, i) => 200 + i);
    merged.push(...most);
    const rewrite = await merge(table, most);
    expect(rewrite.removeFiles).toHaveLength(1);
    expect(rewrite.markDeleted).toEqual([]);
    expect(await rowsOf(table)).toEqual(expected(merged));

    // Up to a checkpoint (version 10): it carries the vectors, and equals a JSON replay.
    for (let i = 0; i < 4; i++) {
      merged.push(10 + i);
      await merge(table, [10 + i]);
    }
    const log = path.join(root, '_delta_log');
    expect(readdirSync(log)).toContain('00000000000000000010.checkpoint.parquet');
    const inCheckpoint = await db.session.query(`select add.path, add.deletionVector.cardinality from read_parquet('${path.join(log, '00000000000000000010.checkpoint.parquet')}') where add.deletionVector is not null`);
    expect(inCheckpoint.rows.length).toBeGreaterThan(0);
    const active = await checkProtocol(root);
    expect(new Set((await table.snapshot()).files.keys())).toEqual(new Set(active.keys()));
    expect(await rowsOf(table)).toEqual(expected(merged));

    // Vacuum keeps every vector a file refers to, and deletes the ones only expired tombstones name.
    const storage = new LocalStorage(root);
    const dvFiles = () => readdirSync(root).filter((f) => f.startsWith('deletion_vector_')).sort();
    const before = dvFiles();
    const vacuumed = await vacuum(storage, db.session, { retentionHours: 0, force: true, now: Date.now() + 1000 });
    expect(vacuumed.deleted.filter((f) => f.startsWith('deletion_vector_')).length).toBeGreaterThan(0);
    expect(dvFiles().length).toBeLessThan(before.length);
    expect(await rowsOf(table)).toEqual(expected(merged));

    // Optimize purges the vectors: the files are rewritten with their live rows only.
    await optimize(storage, db.session);
    expect([...(await table.snapshot()).files.values()].filter((f) => f.deletionVector)).toEqual([]);
    expect(await rowsOf(table)).toEqual(expected(merged));
    await vacuum(storage, db.session, { retentionHours: 0, force: true, now: Date.now() + 1000 });
    expect(dvFiles()).toEqual([]);
    expect(await rowsOf(table)).toEqual(expected(merged));
  });

  it('a key merged again is marked only where it is live: a file whose vector deletes it already is left out of the commit; reads leave nothing in the database', async () => {
    const { table, root } = newTable();
    for (let f = 0; f < 4; f++) await table.write({ selectSql: `select range::bigint as k, 'v1' as v from range(${f * 100}, ${(f + 1) * 100})`, mode: 'append', deletionVectors: f === 0 });
    const tables = async () => (await db.session.query(`select database_name, schema_name, table_name from duckdb_tables() order by all`)).rows.map((r) => r.join('.'));
    await merge(table, [5, 150]);
    const before = await tables();
    const first = await table.snapshot();
    const marked = [...first.files.values()].filter((f) => f.deletionVector);
    expect(marked.map((f) => f.deletionVector!.cardinality)).toEqual([1, 1]);
    // Key 5 is now live only in the first merge's new file; its old row in the first file is deleted already.
    const plan = await merge(table, [5]);
    expect(plan.removeFiles).toEqual([]);
    expect(plan.markDeleted.map((m) => [Boolean(m.file.deletionVector), m.positions])).toEqual([[false, [0]]]);
    const [, actions] = commits(root).at(-1)!;
    const touched = actions.flatMap((a) => ('remove' in a ? [a.remove.path] : []));
    expect(touched).toEqual([plan.markDeleted[0]!.file.path]);
    const after = await table.snapshot();
    for (const f of marked) expect(after.files.get(fileKey(f))?.deletionVector).toEqual(f.deletionVector);
    expect(await rowsOf(table)).toEqual(expected([5, 150]));
    await checkProtocol(root);
    // The vectors are read into the scan's SQL, not into tables of the session's database.
    expect(await tables()).toEqual(before);
  });

  it('finds the replaced rows of a file whose stats count fewer rows than it holds (the bitmap of its stated rows cannot hold them; the rows come as lists)', async () => {
    const { table, root } = newTable();
    for (let f = 0; f < 2; f++) await table.write({ selectSql: `select range::bigint as k, 'v1' as v from range(${f * 100}, ${(f + 1) * 100})`, mode: 'append', deletionVectors: f === 0 });
    // Both files' stats say 10 rows (a writer's mistake): row 50 of the second is beyond them.
    for (const v of [0, 1]) {
      const file = path.join(root, '_delta_log', `0000000000000000000${v}.json`);
      writeFileSync(file, readFileSync(file, 'utf8').replace(String.raw`\"numRecords\":100,`, String.raw`\"numRecords\":10,`));
    }
    const merged = [5, 150];
    const plan = await merge(table, merged);
    expect(plan.markDeleted.map((m) => m.positions).sort()).toEqual([[5], [50]]);
    expect(plan.removeFiles).toEqual([]);
    expect(await rowsOf(table, 'where k < 200')).toEqual(expected(merged, (k) => k < 200));
  });

  it('a table without the property copies on write as before', async () => {
    const { table } = newTable();
    await table.write({ selectSql: `select range::bigint as k, 'v1' as v from range(400)`, mode: 'append' });
    const snapshot = await table.snapshot();
    await db.session.execute(`create or replace temp table etl_new as select 5::bigint as k, 'v2' as v`);
    const change = { strategy: 'merge' as const, target: { schema: 'main', name: 't' }, staged: { schema: 'temp', name: 'etl_new' }, columns: ['k', 'v'], uniqueKey: ['k'], columnChanges: [], state: [] };
    const plan = await planRewrite(table.storage, db.session, snapshot, change, 'temp.etl_new');
    expect([plan.removeFiles.length, plan.markDeleted.length]).toEqual([1, 0]);
    await expect(table.write({ readSnapshot: snapshot, selectSql: plan.selectSql, mode: 'rewrite', markDeleted: [{ file: [...snapshot.files.values()][0]!, positions: [5] }] })).rejects.toThrow(/cannot write deletion vectors to .*: its protocol has no deletionVectors feature/);
  });
});

describe('the storage interface', () => {
  it('is the only file access of the Delta library (object storage goes behind it): no node:fs outside storage.ts, but checkpoint.ts\'s local scratch folder', () => {
    const dir = path.join(REPO_ROOT, 'adapters', 'delta');
    const users = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => /from 'node:fs(\/promises)?'/.test(readFileSync(path.join(dir, f), 'utf8')));
    expect(users.sort()).toEqual(['checkpoint.ts', 'storage.ts']);
    // The checkpoint's scratch folder is local temp space; the checkpoint itself is written through the storage.
    expect(readFileSync(path.join(dir, 'checkpoint.ts'), 'utf8')).toMatch(/await storage\.write\(/);
  });
});

describe('maintenance', () => {
  it('optimize compacts small files into one commit with dataChange false, rows unchanged', async () => {
    const { table, root } = newTable();
    for (let i = 0; i < 5; i++) await table.write({ selectSql: `select ${i} * 10 + range as id from range(10)`, mode: 'append' });
    const before = await count(db.session, (await table.scan()).sql);
    const result = await optimize(new LocalStorage(root), db.session);
    expect(result).toMatchObject({ filesRemoved: 5, filesAdded: 1 });
    await checkProtocol(root);
    const [, last] = commits(root).at(-1)!;
    for (const a of last) if ('add' in a || 'remove' in a) expect(Object.values(a)[0].dataChange).toBe(false);
    expect((last[0] as { commitInfo: { operation: string } }).commitInfo.operation).toBe('OPTIMIZE');
    expect((await table.snapshot()).files.size).toBe(1);
    expect(await count(db.session, (await table.scan()).sql)).toBe(before);
  });

  it('vacuum refuses a retention below the table\'s unless forced, then deletes only unreferenced files', async () => {
    const { table, root } = newTable();
    await table.write({ selectSql: 'select 1 as id', mode: 'append' });
    await table.write({ selectSql: 'select 2 as id', mode: 'overwrite' });
    writeFileSync(path.join(root, 'part-orphan.parquet'), 'left by a crashed writer');
    const storage = new LocalStorage(root);
    await expect(vacuum(storage, db.session, { retentionHours: 1 })).rejects.toThrow(/refusing to vacuum .* retention of 1h: the table keeps removed files for 168h/);
    // Nothing is old enough at the default retention.
    expect((await vacuum(storage, db.session)).deleted).toEqual([]);
    const dry = await vacuum(storage, db.session, { retentionHours: 0, force: true, dryRun: true, now: Date.now() + 1000 });
    expect(dry.deleted).toHaveLength(2);
    const done = await vacuum(storage, db.session, { retentionHours: 0, force: true, now: Date.now() + 1000 });
    expect(done.deleted.sort()).toEqual(dry.deleted.sort());
    expect(done.deleted).toContain('part-orphan.parquet');
    expect(await count(db.session, (await table.scan()).sql)).toBe(1);
    expect(readdirSync(path.join(root, '_delta_log')).filter((f) => f.endsWith('.json'))).toHaveLength(2);
  });
});

describe('concurrent commits', () => {
  it('retries a blind append past another commit, and refuses an overwrite whose files another writer removed, naming both writers', async () => {
    const { table, root } = newTable();
    await table.write({ selectSql: 'select 1 as id', mode: 'append' });
    const storage = new LocalStorage(root);
    const base = await table.snapshot();
    // Writer B computed an overwrite from version 0; writer A's overwrite lands first.
    await table.write({ selectSql: 'select 2 as id', mode: 'overwrite', writer: 'run-a' });
    const removes = [...base.files.values()].map((f) => ({ remove: { path: f.path, deletionTimestamp: Date.now(), dataChange: true } }));
    const err = await commit(storage, db.session, { operation: 'WRITE', readVersion: 0, actions: removes, readPredicate: 'all', readFiles: 'all', writer: 'run-b' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ConcurrentModificationError);
    expect((err as Error).message).toMatch(/conflicting commit on Delta table .* at version 1: WRITE by run-b conflicts with WRITE by run-a \(version 1\) \(both removed the file/);
    // A blind append computed from version 0 commits at version 2.
    const appended = await commit(storage, db.session, { operation: 'WRITE', readVersion: 0, actions: [], readPredicate: 'none', writer: 'run-c' });
    expect(appended).toMatchObject({ version: 2, attempts: 2 });
  });

  /** Plans a change on the table's current version (as a model's run does), to be committed after another writer's commit. */
  async function planned(table: DeltaTable, change: { strategy: 'merge' | 'insert_overwrite'; rows: string; partitionBy?: string[] }) {
    const snapshot = await table.snapshot();
    await db.session.execute(`create or replace temp table etl_new as ${change.rows}`);
    const plan = await planRewrite(table.storage, db.session, snapshot, { strategy: change.strategy, target: { schema: 'main', name: 't' }, staged: { schema: 'temp', name: 'etl_new' }, columns: ['k', 'p', 'v'], uniqueKey: change.strategy === 'merge' ? ['k'] : [], partitionBy: change.partitionBy, columnChanges: [], state: [] }, 'temp.etl_new');
    // The rows are written now (from the staged rows), the commit comes later.
    await db.session.execute(`create or replace temp table etl_planned as ${plan.selectSql}`);
    return () => table.write({ readSnapshot: snapshot, selectSql: 'select * from temp.etl_planned', mode: 'rewrite', removeFiles: plan.removeFiles, readFiles: plan.readFiles, readPredicate: plan.readPredicate, operation: change.strategy.toUpperCase(), writer: 'run-b' });
  }

  it('a merge is retried past an append outside its key range, and conflicts with one inside it (the appended key would have been replaced)', async () => {
    const { table } = newTable();
    await table.write({ selectSql: `select range as k, 0 as p, 'v1' as v from range(100)`, mode: 'append' });
    // Keys 10..20 merged; another writer appends keys 500..509 first: no row of those could match.
    const outside = await planned(table, { strategy: 'merge', rows: `select range as k, 0 as p, 'v2' as v from range(10, 21)` });
    await table.write({ selectSql: `select range as k, 0 as p, 'other' as v from range(500, 510)`, mode: 'append', writer: 'run-a' });
    const retried = await outside();
    expect(retried.commit).toMatchObject({ version: 2, attempts: 2 });
    expect(await count(db.session, `select * from (${(await table.scan()).sql}) t where v = 'v2'`)).toBe(11);
    expect(await count(db.session, (await table.scan()).sql)).toBe(110);
    // Keys 30..40 merged; another writer appends key 35 first: the merge would have replaced it.
    const inside = await planned(table, { strategy: 'merge', rows: `select range as k, 0 as p, 'v3' as v from range(30, 41)` });
    await table.write({ selectSql: `select 35 as k, 0 as p, 'other' as v`, mode: 'append', writer: 'run-a' });
    await expect(inside()).rejects.toThrow(/conflicting commit on Delta table .* at version 3: MERGE by run-b conflicts with WRITE by run-a \(version 3\) \(it added the file part-.* to data this change read\)/);
    expect(await count(db.session, `select * from (${(await table.scan()).sql}) t where k = 35`)).toBe(2);
  });

  it('insert_overwrite is retried past a write to another partition, and conflicts with one to a partition it replaces, naming it', async () => {
    const { table } = newTable();
    await table.write({ selectSql: `select range as k, range % 3 as p, 'v1' as v from range(30)`, mode: 'append', partitionBy: ['p'] });
    const other = await planned(table, { strategy: 'insert_overwrite', rows: `select 100 as k, 1 as p, 'new' as v`, partitionBy: ['p'] });
    await table.write({ selectSql: `select 200 as k, 2 as p, 'other' as v`, mode: 'append', writer: 'run-a' });
    expect((await other()).commit).toMatchObject({ version: 2, attempts: 2 });
    const rows = await db.session.query(`select p, count(*) from (${(await table.scan()).sql}) t group by p order by p`);
    expect(rows.rows.map((r) => r.map(Number))).toEqual([
      [0, 10],
      [1, 1],
      [2, 11],
    ]);
    const same = await planned(table, { strategy: 'insert_overwrite', rows: `select 101 as k, 0 as p, 'new' as v`, partitionBy: ['p'] });
    await table.write({ selectSql: `select 300 as k, 0 as p, 'other' as v`, mode: 'append', writer: 'run-a' });
    await expect(same()).rejects.toThrow(/INSERT_OVERWRITE by run-b conflicts with WRITE by run-a \(version 3\) \(it added the file p=0\/part-.* in partition p=0 to data this change read\)/);
  });
});
