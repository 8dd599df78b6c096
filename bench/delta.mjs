// Delta target benchmark (issue #12), measured in one run against baselines of
// the same run:
//  1. append of 10M rows as a Delta commit vs DuckDB's own
//     COPY (query) TO 'x.parquet' (FORMAT parquet, COMPRESSION zstd);
//  2. a merge touching 1% of the keys of a 10M-row, 100-file table: bytes
//     rewritten, and time vs a full overwrite with the same result: keys in
//     one contiguous range; keys scattered at random; keys of 1% of the
//     groups, with the table laid out by key and clustered by group;
//  2c. the merge of 1% random keys with deletion vectors on (merge-on-read):
//     bytes written and rewritten, and time and CPU vs a full overwrite of the
//     same rows and vs the engine floor (raw DuckDB: the key semi-join over the
//     files' key column + the new rows written as zstd Parquet), in
//     interleaved rounds; the snapshot each merge starts from is read apart
//     (timed, reported, and in the "with the snapshot read" ratios), as the
//     overwrite's scan is;
//  3. reading the active files of a 10,000-commit table (checkpoints every 10);
//  4. a filter on the partition column of a 100-partition table: files read.
//
//   node bench/delta.mjs [--rows N] [--commits N] [--only-dv] [--rounds N]
//   (--only-dv: section 2c alone; --rounds: its rounds, 3 by default: versions 100, 101, 102, the first
//   of which writes a checkpoint)

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { CHECKPOINT_INTERVAL, DeltaTable, LocalStorage, fileLocation, loadSnapshot, writeCheckpoint, serializeCommit } from '../dist/adapters/delta/index.js';
import { planRewrite } from '../dist/adapters/delta/changes.js';
import { deletionVectorFile } from '../dist/adapters/delta/deletion-vectors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROWS = arg('--rows', 10_000_000);
const COMMITS = arg('--commits', 10_000);
const ROUNDS = arg('--rounds', 3);
const dir = path.join(here, '.work', 'delta');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
const connection = await instance.connect();
const session = {
  async execute(sql) {
    await connection.run(sql);
    return {};
  },
  async query(sql) {
    const r = await connection.runAndReadAll(sql);
    return { columns: r.columnNames(), types: r.columnTypes().map(String), rows: r.getRowsJS() };
  },
};
const ms = async (fn) => {
  const t0 = performance.now();
  const result = await fn();
  return [performance.now() - t0, result];
};
/** Wall and CPU time (user+sys of this process, DuckDB's threads included), in ms. */
const timed = async (fn) => {
  const cpu0 = process.cpuUsage();
  const [wall, result] = await ms(fn);
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1000, result };
};
const fmt = (x) => `${(x / 1000).toFixed(2)} s`;
const both = (t) => `${fmt(t.wall)} (cpu ${fmt(t.cpu)})`;
const load = () => `load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`;
const out = {};

// 2c. Deletion vectors: the merge of 1% of the keys, scattered at random,
// into a 100-file table laid out by key, with deletion vectors on. Copy-on-write
// rewrites every file for it (2b); here each file keeps its rows and gets a
// vector marking the ~1% replaced, and only the new rows are written. Rounds
// interleave the merge with its baseline: a full overwrite of the same rows
// (the merged table read and written whole as a new table), each timed in
// wall and CPU (user+sys of this process, DuckDB's threads included).
async function mergeWithDeletionVectors(rounds = ROUNDS) {
  const FILES = 100;
  const per = Math.floor(ROWS / FILES);
  const t = new DeltaTable(new LocalStorage(path.join(dir, 'merge-dv')), session);
  for (let f = 0; f < FILES; f++) {
    await t.write({ selectSql: `select range as id, range % 997 as grp, (range * 7) % 100000 / 100.0 as amount, 'tag' || (range % 1000) as tag from range(${f * per}, ${(f + 1) * per})`, mode: 'append', deletionVectors: f === 0 });
  }
  const change = { strategy: 'merge', target: { schema: 'main', name: 'merge_dv' }, staged: { schema: 'main', name: 'staged_dv' }, columns: ['id', 'grp', 'amount', 'tag'], uniqueKey: ['id'], columnChanges: [], state: [] };
  const results = [];
  for (let r = 0; r < rounds; r++) {
    const total = [...(await t.snapshot()).files.values()].reduce((s, f) => s + f.size, 0);
    await session.execute(`create or replace table staged_dv as select id, id % 997 as grp, -1.0 as amount, 'changed ${r}' as tag from (select range as id from range(${ROWS}) using sample reservoir(${Math.floor(ROWS / 100)} rows) repeatable (${42 + r}))`);
    // The engine floor: raw DuckDB doing the least a merge must do, on the same files: the key
    // column of every file semi-joined with the new keys, the hit row numbers listed per file,
    // and the new rows written as zstd Parquet (no log, no vectors, no stats).
    const locations = [...(await t.snapshot()).files.values()].map((f) => `'${fileLocation(t.storage, f.path)}'`);
    const floorFile = path.join(dir, `floor-${r}.parquet`);
    const floor = await timed(async () => {
      await session.query(`select file_index, list(file_row_number) from read_parquet([${locations.join(', ')}], file_row_number = true) as t semi join staged_dv using (id) group by all`);
      await session.execute(`copy (select * from staged_dv) to '${floorFile}' (format parquet, compression zstd)`);
    });
    rmSync(floorFile, { force: true });
    // The snapshot the merge is computed from is read first, apart, as the overwrite's scan below is: an
    // adapter merges against the snapshot its view of the table already holds (lake.ts), reading no log.
    const read = await timed(() => t.snapshot());
    const snapshot = read.result;
    const merge = await timed(async () => {
      const plan = await planRewrite(t.storage, session, snapshot, change, '"main"."staged_dv"', { deletionVectors: true });
      const written = await t.write({ readSnapshot: snapshot, selectSql: plan.selectSql, mode: 'rewrite', removeFiles: plan.removeFiles, markDeleted: plan.markDeleted, operation: 'MERGE', readPredicate: plan.readPredicate, readFiles: plan.readFiles });
      // The commit's vectors share one DV file.
      const dvFiles = new Set(written.deletionVectors.map((a) => deletionVectorFile(a.deletionVector, 'bench').relative));
      let dvBytes = 0;
      for (const f of dvFiles) dvBytes += (await t.storage.stat(f)).size;
      return { rewritten: plan.removeFiles.reduce((s, f) => s + f.size, 0), rewrittenFiles: plan.removeFiles.length, marked: plan.markDeleted.length, newRows: written.adds.reduce((s, f) => s + f.size, 0), dvBytes, version: written.commit.version };
    });
    const scan = await t.scan();
    const full = await timed(() => new DeltaTable(new LocalStorage(path.join(dir, `merge-dv-full-${r}`)), session).write({ selectSql: `select * from (${scan.sql}) as t`, mode: 'overwrite' }));
    rmSync(path.join(dir, `merge-dv-full-${r}`), { recursive: true, force: true });
    const m = merge.result;
    // The table's every 10th version also writes a checkpoint (transaction.ts): that round is marked.
    results.push({ round: r + 1, version: m.version, checkpoint: m.version % CHECKPOINT_INTERVAL === 0, totalBytes: total, filesMarked: m.marked, filesRewritten: m.rewrittenFiles, bytesRewritten: m.rewritten, bytesWritten: m.newRows + m.dvBytes + m.rewritten, dvBytes: m.dvBytes, bytesWrittenRatio: (m.newRows + m.dvBytes) / total, mergeWall: merge.wall, mergeCpu: merge.cpu, snapshotReadWall: read.wall, snapshotReadCpu: read.cpu, wallRatioWithRead: (merge.wall + read.wall) / full.wall, cpuRatioWithRead: (merge.cpu + read.cpu) / full.cpu, floorWall: floor.wall, floorCpu: floor.cpu, fullWall: full.wall, fullCpu: full.cpu, wallRatio: merge.wall / full.wall, cpuRatio: merge.cpu / full.cpu, floorWallRatio: floor.wall / full.wall, floorCpuRatio: floor.cpu / full.cpu, load: loadavg() });
    const x = results.at(-1);
    console.log(
      `merge, 1% random keys, deletion vectors, round ${x.round} (version ${x.version}${x.checkpoint ? ', writes a checkpoint' : ''}): ${x.filesMarked} files marked, ${x.filesRewritten} rewritten (${(100 * x.bytesRewritten / total).toFixed(2)}% of bytes); wrote ${((x.bytesWritten) / 1e6).toFixed(2)} MB (${(100 * x.bytesWrittenRatio).toFixed(2)}% of ${(total / 1e6).toFixed(1)} MB; DVs ${(x.dvBytes / 1e3).toFixed(1)} kB); ` +
        `ours ${fmt(x.mergeWall)} (cpu ${fmt(x.mergeCpu)}; the snapshot read before it ${x.snapshotReadWall.toFixed(1)} ms, cpu ${x.snapshotReadCpu.toFixed(1)} ms), engine floor ${fmt(x.floorWall)} (cpu ${fmt(x.floorCpu)}), full overwrite ${fmt(x.fullWall)} (cpu ${fmt(x.fullCpu)}): ours/overwrite wall ${x.wallRatio.toFixed(3)}x cpu ${x.cpuRatio.toFixed(3)}x, floor/overwrite wall ${x.floorWallRatio.toFixed(3)}x cpu ${x.floorCpuRatio.toFixed(3)}x; load ${x.load.map((l) => l.toFixed(1)).join(' ')}`,
    );
  }
  console.log(`merge with deletion vectors, ours/overwrite per round (wall / cpu; * = the round that writes a checkpoint): ${results.map((x) => `${x.round}${x.checkpoint ? '*' : ''} ${x.wallRatio.toFixed(3)} / ${x.cpuRatio.toFixed(3)}`).join(', ')}; with the snapshot read ${results.map((x) => `${x.wallRatioWithRead.toFixed(3)} / ${x.cpuRatioWithRead.toFixed(3)}`).join(', ')}; floor ${results.map((x) => `${x.floorWallRatio.toFixed(3)} / ${x.floorCpuRatio.toFixed(3)}`).join(', ')}; bytes rewritten ${results.map((x) => `${((100 * x.bytesRewritten) / x.totalBytes).toFixed(2)}%`).join(', ')}, written ${results.map((x) => `${(100 * x.bytesWrittenRatio).toFixed(2)}%`).join(', ')}`);
  return results;
}
if (process.argv.includes('--only-dv')) {
  out.mergeDeletionVectors = await mergeWithDeletionVectors();
  writeFileSync(path.join(here, '.work', 'delta-dv-results.json'), JSON.stringify(out, null, 2));
  connection.closeSync();
  instance.closeSync();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

// 1. Append
const query = `select range as id, range % 997 as grp, (range * 7) % 100000 / 100.0 as amount, 'tag' || (range % 1000) as tag, date '2024-01-01' + (range % 365)::integer as day from range(${ROWS})`;
const copyTimes = [];
const deltaTimes = [];
for (let i = 0; i < 2; i++) {
  const file = path.join(dir, `copy-${i}.parquet`);
  copyTimes.push(await timed(() => session.execute(`copy (${query}) to '${file}' (format parquet, compression zstd)`)));
  const table = new DeltaTable(new LocalStorage(path.join(dir, `append-${i}`)), session);
  deltaTimes.push(await timed(() => table.write({ selectSql: query, mode: 'append' })));
}
// Best of 2 each, wall and CPU taken apart.
const best = (ts, k) => Math.min(...ts.map((t) => t[k]));
out.append = { rows: ROWS, duckdbCopy: best(copyTimes, 'wall'), delta: best(deltaTimes, 'wall'), duckdbCopyCpu: best(copyTimes, 'cpu'), deltaCpu: best(deltaTimes, 'cpu'), load: loadavg() };
out.append.ratio = out.append.delta / out.append.duckdbCopy;
out.append.cpuRatio = out.append.deltaCpu / out.append.duckdbCopyCpu;
console.log(`append ${ROWS} rows (best of 2): DuckDB COPY ${fmt(out.append.duckdbCopy)} (cpu ${fmt(out.append.duckdbCopyCpu)}), Delta commit ${fmt(out.append.delta)} (cpu ${fmt(out.append.deltaCpu)}): wall ${out.append.ratio.toFixed(3)}x, cpu ${out.append.cpuRatio.toFixed(3)}x; ${load()}`);

// 2. Merge touching 1% of the keys of a 100-file table
const FILES = 100;
const per = Math.floor(ROWS / FILES);
const mergeRoot = path.join(dir, 'merge');
const merged = new DeltaTable(new LocalStorage(mergeRoot), session);
for (let f = 0; f < FILES; f++) {
  await merged.write({ selectSql: `select range as id, range % 997 as grp, (range * 7) % 100000 / 100.0 as amount, 'tag' || (range % 1000) as tag from range(${f * per}, ${(f + 1) * per})`, mode: 'append' });
}
const before = await merged.snapshot();
const totalBytes = [...before.files.values()].reduce((s, f) => s + f.size, 0);
const touched = Math.floor(ROWS / 100);
const start = Math.floor(ROWS / 2);
await session.execute(`create table staged as select range as id, range % 997 as grp, -1.0 as amount, 'changed' as tag from range(${start}, ${start + touched})`);
const change = { strategy: 'merge', target: { schema: 'main', name: 'merge' }, staged: { schema: 'main', name: 'staged' }, columns: ['id', 'grp', 'amount', 'tag'], uniqueKey: ['id'], columnChanges: [], state: [] };
const mergeTimed = await timed(async () => {
  const snapshot = await merged.snapshot();
  const plan = await planRewrite(merged.storage, session, snapshot, change, '"main"."staged"');
  await merged.write({ current: snapshot, selectSql: plan.selectSql, mode: 'rewrite', removeFiles: plan.removeFiles, operation: 'MERGE', readPredicate: 'all', readFiles: 'all' });
  return plan.removeFiles.reduce((s, f) => s + f.size, 0);
});
const rewritten = mergeTimed.result;
const afterMerge = await merged.scan();
// The same result as one overwrite: every row read and written again.
const fullTimed = await timed(() => merged.write({ selectSql: `select * from (${afterMerge.sql}) as t`, mode: 'overwrite' }));
out.merge = { rows: ROWS, files: FILES, keysTouched: touched, bytesRewritten: rewritten, totalBytes, bytesRatio: rewritten / totalBytes, mergeTime: mergeTimed.wall, mergeCpu: mergeTimed.cpu, fullOverwrite: fullTimed.wall, fullCpu: fullTimed.cpu, timeRatio: mergeTimed.wall / fullTimed.wall, cpuRatio: mergeTimed.cpu / fullTimed.cpu, load: loadavg() };
console.log(
  `merge of ${touched} keys (1%, one contiguous range) into ${ROWS} rows / ${FILES} files: rewrote ${(rewritten / 1e6).toFixed(1)} of ${(totalBytes / 1e6).toFixed(1)} MB (${(100 * out.merge.bytesRatio).toFixed(2)}%), ${both(mergeTimed)} vs full overwrite ${both(fullTimed)}: wall ${out.merge.timeRatio.toFixed(3)}x, cpu ${out.merge.cpuRatio.toFixed(3)}x; ${load()}`,
);

// 2b. The same 1% of keys, scattered at random over the key range (what a
// merge of real changes usually looks like): every file of a table laid out
// by key holds some of them, so copy-on-write rewrites them all. Then the
// layout that helps: when the changed keys follow another column (here: the
// rows of 1% of the groups), a table clustered by that column (rows sorted by
// it before they are cut into files) keeps the rewrite to those files.
async function mergeRun(table, stagedSql) {
  await session.execute(`create or replace table staged as ${stagedSql}`);
  return timed(async () => {
    const snapshot = await table.snapshot();
    const plan = await planRewrite(table.storage, session, snapshot, change, '"main"."staged"');
    await table.write({ current: snapshot, selectSql: plan.selectSql, mode: 'rewrite', removeFiles: plan.removeFiles, operation: 'MERGE', readPredicate: 'all', readFiles: 'all' });
    return { bytes: plan.removeFiles.reduce((s, f) => s + f.size, 0), files: plan.removeFiles.length };
  });
}
async function overwriteTime(table) {
  const scan = await table.scan();
  return timed(() => table.write({ selectSql: `select * from (${scan.sql}) as t`, mode: 'overwrite' }));
}
async function buildTable(root, orderBy) {
  const t = new DeltaTable(new LocalStorage(root), session);
  // 100 files of ROWS/100 rows each, in `orderBy` order.
  await session.execute(`create or replace table layout as select range as id, range % 997 as grp, (range * 7) % 100000 / 100.0 as amount, 'tag' || (range % 1000) as tag from range(${ROWS}) order by ${orderBy}`);
  for (let f = 0; f < FILES; f++) await t.write({ selectSql: `select id, grp, amount, tag from layout where rowid >= ${f * per} and rowid < ${(f + 1) * per}`, mode: 'append' });
  await session.execute('drop table layout');
  const total = [...(await t.snapshot()).files.values()].reduce((s, f) => s + f.size, 0);
  return { t, total };
}
const scattered = await buildTable(path.join(dir, 'merge-scattered'), 'id');
const scatterMerge = await mergeRun(scattered.t, `select id, id % 997 as grp, -1.0 as amount, 'changed' as tag from (select range as id from range(${ROWS}) using sample reservoir(${touched} rows) repeatable (42))`);
const scatterFull = await overwriteTime(scattered.t);
const groups = Math.max(1, Math.round(997 / 100));
const byKey = await buildTable(path.join(dir, 'merge-by-key'), 'id');
const byKeyMerge = await mergeRun(byKey.t, `select range as id, range % 997 as grp, -1.0 as amount, 'changed' as tag from range(${ROWS}) where range % 997 < ${groups}`);
const byKeyFull = await overwriteTime(byKey.t);
const clustered = await buildTable(path.join(dir, 'merge-clustered'), 'grp, id');
const clusteredMerge = await mergeRun(clustered.t, `select range as id, range % 997 as grp, -1.0 as amount, 'changed' as tag from range(${ROWS}) where range % 997 < ${groups}`);
const clusteredFull = await overwriteTime(clustered.t);
const row = (label, merge, total, full) => ({ label, files: merge.result.files, bytesRewritten: merge.result.bytes, totalBytes: total, bytesRatio: merge.result.bytes / total, mergeTime: merge.wall, mergeCpu: merge.cpu, fullOverwrite: full.wall, fullCpu: full.cpu, timeRatio: merge.wall / full.wall, cpuRatio: merge.cpu / full.cpu });
out.mergeLayouts = [
  row('1% random keys, table laid out by key', scatterMerge, scattered.total, scatterFull),
  row(`rows of ${groups} of 997 groups, table laid out by key`, byKeyMerge, byKey.total, byKeyFull),
  row(`rows of ${groups} of 997 groups, table clustered by group`, clusteredMerge, clustered.total, clusteredFull),
];
for (const r of out.mergeLayouts) {
  console.log(`merge, ${r.label}: ${r.files} of ${FILES} files, ${(100 * r.bytesRatio).toFixed(2)}% of bytes rewritten, ${fmt(r.mergeTime)} (cpu ${fmt(r.mergeCpu)}) vs full overwrite ${fmt(r.fullOverwrite)} (cpu ${fmt(r.fullCpu)}): wall ${r.timeRatio.toFixed(3)}x, cpu ${r.cpuRatio.toFixed(3)}x; ${load()}`);
}

out.mergeDeletionVectors = await mergeWithDeletionVectors();

// 3. Listing the active files of a table with many commits and a checkpoint every 10
const logRoot = path.join(dir, 'commits');
const storage = new LocalStorage(logRoot);
const schemaString = JSON.stringify({ type: 'struct', fields: [{ name: 'id', type: 'long', nullable: true, metadata: {} }] });
const metaData = { id: 'bench', format: { provider: 'parquet', options: {} }, schemaString, partitionColumns: [], configuration: {}, createdTime: Date.now() };
const protocol = { minReaderVersion: 1, minWriterVersion: 2 };
mkdirSync(path.join(logRoot, '_delta_log'), { recursive: true });
const files = new Map();
const [buildTime] = await ms(async () => {
  for (let v = 0; v < COMMITS; v++) {
    const add = { path: `part-${v}.parquet`, partitionValues: {}, size: 1000 + v, modificationTime: Date.now(), dataChange: true, stats: `{"numRecords":10,"minValues":{"id":${v * 10}},"maxValues":{"id":${v * 10 + 9}},"nullCount":{"id":0}}` };
    const actions = [{ commitInfo: { timestamp: Date.now(), operation: 'WRITE' } }, ...(v === 0 ? [{ protocol }, { metaData }] : []), { add }];
    writeFileSync(path.join(logRoot, '_delta_log', `${String(v).padStart(20, '0')}.json`), serializeCommit(actions));
    files.set(add.path, add);
    if (v > 0 && v % 10 === 0) {
      await writeCheckpoint(storage, session, { table: logRoot, version: v, protocol, metadata: metaData, schema: JSON.parse(schemaString), files: new Map(files), tombstones: new Map(), txns: new Map(), domains: new Map(), timestamp: Date.now() });
    }
  }
});
const listTimes = [];
let active = 0;
for (let i = 0; i < 5; i++) {
  const t = await timed(() => loadSnapshot(new LocalStorage(logRoot), session));
  listTimes.push(t);
  active = t.result.files.size;
}
listTimes.sort((a, b) => a.wall - b.wall);
const cpus = listTimes.map((t) => t.cpu).sort((a, b) => a - b);
out.listing = { commits: COMMITS, activeFiles: active, medianMs: listTimes[2].wall, minMs: listTimes[0].wall, maxMs: listTimes[4].wall, medianCpuMs: cpus[2], buildSeconds: buildTime / 1000, load: loadavg() };
console.log(`active files of a ${COMMITS}-commit table (checkpoint every 10): ${active} files in ${listTimes[2].wall.toFixed(1)} ms, cpu ${cpus[2].toFixed(1)} ms (median of 5; wall ${listTimes[0].wall.toFixed(1)}-${listTimes[4].wall.toFixed(1)}); ${load()}`);

// 4. Partition pruning
const partRoot = path.join(dir, 'partitioned');
const parts = new DeltaTable(new LocalStorage(partRoot), session);
await parts.write({ selectSql: `select range as id, range % 100 as p, range * 2 as v from range(1000000)`, mode: 'append', partitionBy: ['p'] });
const all = await parts.snapshot();
const pruned = await parts.scan({ filters: [{ column: 'p', op: '=', value: 42 }] });
const rows = Number((await session.query(`select count(*) from (${pruned.sql}) as t`)).rows[0][0]);
out.partitions = { partitions: 100, files: all.files.size, filesRead: pruned.files.length, onlyThatPartition: pruned.files.every((f) => f.partitionValues.p === '42'), rows };
console.log(`filter p = 42 on a 100-partition table: ${pruned.files.length} of ${all.files.size} files read (all of partition 42: ${out.partitions.onlyThatPartition}), ${rows} rows; ${load()}`);

writeFileSync(path.join(here, '.work', 'delta-results.json'), JSON.stringify(out, null, 2));
connection.closeSync();
instance.closeSync();
rmSync(dir, { recursive: true, force: true });
