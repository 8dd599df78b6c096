// Extract and load (#15), against baselines measured in the same run:
//  1. Postgres -> DuckDB full extraction of --rows rows (1M): `etl extract --full-refresh`
//     vs `psql -c "\copy (select ...) to stdout csv"` piped into DuckDB's read_csv
//     (a `create table as select * from read_csv('/dev/stdin', ...)` with the same types);
//     rows/s of each, whole process (wall) and the loader node alone (run_results).
//  2. Peak RSS of `etl extract` at --rows and at --big rows (10M; --big 0 skips it),
//     --big-repeat rounds at --big (each: the baseline, a full load, a 1% change merged).
//  3. An incremental extraction of 1% changed rows (spread over the table, every 100th id)
//     vs the full extraction (loader node time, and wall), at --rows and at --big, each beside
//     the ENGINE FLOOR of the same work in the same run (see floor(): psql's \copy into DuckDB,
//     the incremental's rows merged by key into the same target file): the floor's own
//     incremental/full ratio, etl's, and etl's incremental over the floor's; with
//     --breakdown, one more traced incremental run at --rows printed as a timeline
//     (ETL_TRACE_SQL: every target statement and the source's connect, describe and COPY).
//  4. CDC (`incremental: { mode: cdc }`, a source database of its own): the first load (slot
//     created, table copied as of its snapshot), then interleaved rounds of a 1% change
//     (changes read from the slot and applied) and a full reload (--full-refresh), loader node
//     time and CPU time (user+sys of etl) of each; changes/s at 1% and at 10%.
// The source tables have a primary key (id) and an index on the cursor column (updated_at),
// as a real source's would: the incremental's COPY reads the changed rows by that index.
// --compare <etl.js>: another build's CLI (the session's start, say) run alternately with
// this one on every figure of 1-3, on the same source and target.
// Postgres: 127.0.0.1:5432, trust auth, database `test` (override with PG_URL).
//
// --settle: the source table is vacuumed after each 1% change, before the incremental run
// (see changeOnePercent).
//
//   node bench/extract.mjs [--rows N] [--big N] [--repeat N] [--big-repeat N] [--breakdown]
//                          [--settle] [--compare path/to/dist/bin/etl.js] [--cdc-only] [--no-cdc]
//                          [--no-other-targets] (no 10M load into Postgres and Delta targets)

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'dist', 'bin', 'etl.js');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROWS = arg('--rows', 1_000_000);
const BIG = arg('--big', 10_000_000);
const REPEAT = arg('--repeat', 3);
const BIG_REPEAT = arg('--big-repeat', 1);
const COMPARE = (() => {
  const i = process.argv.indexOf('--compare');
  return i > 0 ? path.resolve(process.argv[i + 1]) : undefined;
})();
const loadAvg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const work = path.join(here, '.work', 'extract');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const schema = `etl_bench_extract_${process.pid}`;
const COLUMNS = "id bigint primary key, name text, email varchar(80), amount numeric(12,2), active boolean, born date, updated_at timestamptz not null";
const DUCK_COLUMNS = "{'id': 'BIGINT', 'name': 'VARCHAR', 'email': 'VARCHAR', 'amount': 'DECIMAL(12,2)', 'active': 'BOOLEAN', 'born': 'DATE', 'updated_at': 'TIMESTAMPTZ'}";

if (process.argv.includes('--cdc-only')) {
  await cdcBench();
  process.exit(0);
}

const client = new pg.Client({ connectionString: PG_URL });
await client.connect();
await client.query(`create schema ${schema}`);

async function sourceTable(name, rows) {
  await client.query(`create table ${schema}.${name} (${COLUMNS})`);
  await client.query(
    `insert into ${schema}.${name} select g, 'name ' || g, case when g % 10 = 0 then null else 'c' || g || '@x.org' end, g * 1.25, g % 3 = 0, date '1990-01-01' + (g % 9000), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' from generate_series(1, ${rows}) g`,
  );
  await client.query(`create index on ${schema}.${name} (updated_at)`);
  await client.query(`vacuum analyze ${schema}.${name}`);
}

function project(table, target = '{ type: duckdb, path: target/bench.duckdb, threads: 4 }') {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(path.join(work, 'models'), { recursive: true });
  writeFileSync(path.join(work, 'etl.yml'), `name: bench_extract\ntargets:\n  dev: ${target}\n`);
  writeFileSync(
    path.join(work, 'models', 'crm.yml'),
    `sources:\n  - name: crm\n    tables:\n      - name: customers\n        loader:\n          type: postgres\n          url: "{{env_var 'BENCH_PG_URL'}}"\n          table: ${schema}.${table}\n          incremental: { cursor: updated_at, primary_key: id }\n`,
  );
}

/** `etl <args>` (this build, or `cliPath`) under /usr/bin/time: wall seconds, peak RSS (MiB), CPU, the loader node's own seconds, stderr. */
function etl(...args) {
  return etlWith(cli, {}, ...args);
}
function etlWith(cliPath, env, ...args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', process.execPath, cliPath, ...args], { cwd: work, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, BENCH_PG_URL: PG_URL, NO_COLOR: '1', ...env } });
  if (r.status !== 0) throw new Error(`etl ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  const [wall, rssKb, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  const results = JSON.parse(readFileSync(path.join(work, 'target', 'run_results.json'), 'utf8')).results;
  const loader = results.find((x) => x.unique_id.startsWith('loader.'));
  return { wall, rssMiB: rssKb / 1024, cpu: user + sys, node: loader.execution_time, response: loader.adapter_response, stderr: r.stderr };
}

/** The builds measured: this one, and --compare's. */
const builds = [{ name: 'this build', cli }, ...(COMPARE ? [{ name: `--compare ${COMPARE}`, cli: COMPARE }] : [])];

/**
 * A 1% change at the source: every 100th row (spread over the table), a new name and a cursor past every earlier
 * one. With --settle, the table is vacuumed after it (as autovacuum would be by at some point): the first reader of
 * freshly updated rows otherwise sets their hint bits and, past shared_buffers, writes every page it touched back out
 * (2.7-5.7 s for 100k rows over a 10M-row table, measured with EXPLAIN ANALYZE alone): the source's cost, not etl's.
 */
const SETTLE = process.argv.includes('--settle');
async function changeOnePercent(table, rows, round) {
  await client.query(`update ${schema}.${table} set name = 'changed ${round} ' || id, updated_at = timestamptz '2025-01-01 00:00:00+00' + (${round} * ${rows} + id) * interval '1 second' where id % 100 = ${round % 100}`);
  if (SETTLE) await client.query(`vacuum ${schema}.${table}`);
}

/** psql's \copy to stdout, piped into DuckDB's read_csv (a fresh database file), timed as one shell pipeline. */
function baseline(table) {
  const db = path.join(work, 'baseline.duckdb');
  rmSync(db, { force: true });
  const duck = `import('@duckdb/node-api').then(async ({ DuckDBInstance }) => { const i = await DuckDBInstance.create(${JSON.stringify(db)}); const c = await i.connect(); await c.run("create table t as select * from read_csv('/dev/stdin', header = false, auto_detect = false, columns = ${DUCK_COLUMNS}, nullstr = '', allow_quoted_nulls = false)"); })`;
  const copy = `\\copy (select * from ${schema}.${table}) to stdout with (format csv)`;
  const times = [path.join(work, 'psql.time'), path.join(work, 'duck.time')];
  const t0 = performance.now();
  const r = spawnSync('bash', ['-c', `set -o pipefail; /usr/bin/time -f '%M %U %S' -o ${times[0]} psql "${PG_URL}" -c ${JSON.stringify(copy)} | /usr/bin/time -f '%M %U %S' -o ${times[1]} ${JSON.stringify(process.execPath)} -e ${JSON.stringify(duck)}`], { cwd: path.join(here, '..'), encoding: 'utf8' });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
  const [psqlTime, duckTime] = times.map((f) => readFileSync(f, 'utf8').trim().split('\n').pop().split(' ').map(Number));
  return { seconds, rssMiB: duckTime[0] / 1024, cpu: psqlTime[1] + psqlTime[2] + duckTime[1] + duckTime[2] };
}

/**
 * The engine floor: the same work as etl's load without etl, in one Node process that loads
 * @duckdb/node-api as etl does and opens the database; then, timed in-process (`seconds`): psql's
 * `\copy (select ...) to stdout csv` (started then, as etl connects to the source once its target is
 * open) written into a FIFO that one DuckDB `read_csv` reads with the types given, as the baseline's.
 *  - full: `create table as` that read, into a fresh database file (the baseline's work);
 *  - incremental (`since`, the watermark etl reads from): the rows with the cursor at or past it, as
 *    etl's COPY selects them, into a temporary stage, then the merge etl makes on the same target file:
 *    `delete ... where exists (the key in the stage)` and `insert ... select` in one transaction (no
 *    watermark, no run history: etl's own bookkeeping).
 * Whole-process wall, peak RSS and CPU from /usr/bin/time (the CPU counts psql's, a child waited for).
 */
function floor(table, since) {
  const fifo = path.join(work, 'floor.fifo');
  rmSync(fifo, { force: true });
  spawnSync('mkfifo', [fifo]);
  const db = since ? path.join(work, 'target', 'bench.duckdb') : path.join(work, 'floor.duckdb');
  if (!since) rmSync(db, { force: true });
  const where = since ? ` where updated_at >= '${since}'::timestamptz` : '';
  const copy = `\\copy (select * from ${schema}.${table}${where}) to stdout with (format csv)`;
  const read = `read_csv(${JSON.stringify(fifo).replace(/"/g, "'")}, header = false, auto_detect = false, columns = ${DUCK_COLUMNS}, nullstr = '', allow_quoted_nulls = false)`;
  const statements = since
    ? [`create temp table floor_stage as select * from ${read}`, 'begin', 'delete from crm.customers as t where exists (select 1 from floor_stage as s where s.id = t.id)', 'insert into crm.customers select * from floor_stage', 'commit']
    : [`create table t as select * from ${read}`];
  const script = `
    const { DuckDBInstance } = require('@duckdb/node-api');
    const { spawn } = require('node:child_process');
    (async () => {
      const i = await DuckDBInstance.create(${JSON.stringify(db)});
      const c = await i.connect();
      const t0 = performance.now();
      const psql = spawn('bash', ['-c', 'exec psql "$0" -c "$1" > "$2"', ${JSON.stringify(PG_URL)}, ${JSON.stringify(copy)}, ${JSON.stringify(fifo)}], { stdio: ['ignore', 'inherit', 'inherit'] });
      const exited = new Promise((ok, fail) => psql.on('exit', (code) => (code === 0 ? ok() : fail(new Error('psql exited ' + code)))));
      const [stage, ...rest] = ${JSON.stringify(statements)};
      const staged = Number((await c.runAndReadAll(stage)).getRows()[0][0]);
      await exited;
      for (const sql of rest) await c.run(sql);
      const seconds = (performance.now() - t0) / 1000;
      c.closeSync(); i.closeSync();
      process.stdout.write(JSON.stringify({ seconds, rows: staged }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', process.execPath, '-e', script], { cwd: path.join(here, '..'), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`floor failed: ${r.stderr}`);
  const [wall, rssKb, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  const out = JSON.parse(r.stdout);
  rmSync(fifo, { force: true });
  return { wall, rssMiB: rssKb / 1024, cpu: user + sys, node: out.seconds, rows: out.rows };
}

/** The cursor's maximum at the source: the watermark etl's next incremental reads from (before a change). */
async function sourceWatermark(table) {
  return (await client.query(`select max(updated_at)::text as w from ${schema}.${table}`)).rows[0].w;
}

/** a / b to 3 places. */
const ratio = (a, b) => (a / b).toFixed(3);

try {
  await sourceTable('customers', ROWS);
  project('customers');
  etl('extract'); // warm-up: the first load
  console.log(`source: ${schema}.customers, ${ROWS} rows, primary key (id), index on updated_at (the cursor)${SETTLE ? '; vacuumed after each change (--settle)' : ''}; load average at start ${loadAvg()}`);

  const full = builds.map(() => []);
  const base = [];
  const floorFull = [];
  for (let i = 0; i < REPEAT; i++) {
    base.push(baseline('customers'));
    floorFull.push(floor('customers'));
    builds.forEach((b, k) => full[k].push(etlWith(b.cli, {}, 'extract', '--full-refresh')));
  }
  const baseWall = median(base.map((b) => b.seconds));
  console.log(`Postgres -> DuckDB, ${ROWS} rows (median of ${REPEAT}, interleaved; load average ${loadAvg()}):`);
  console.log(`  baseline psql \\copy | duckdb read_csv: ${baseWall.toFixed(2)} s (${Math.round(ROWS / baseWall)} rows/s, CPU ${median(base.map((b) => b.cpu)).toFixed(2)} s of psql and DuckDB), peak RSS of its DuckDB process ${median(base.map((b) => b.rssMiB)).toFixed(0)} MiB`);
  const fullTimes = [];
  builds.forEach((b, k) => {
    const fullWall = median(full[k].map((f) => f.wall));
    const fullNode = median(full[k].map((f) => f.node));
    fullTimes.push({ wall: fullWall, node: fullNode });
    console.log(`  ${b.name}: etl extract --full-refresh: ${fullWall.toFixed(2)} s wall (${Math.round(ROWS / fullWall)} rows/s, CPU ${median(full[k].map((f) => f.cpu)).toFixed(2)} s), loader node ${fullNode.toFixed(2)} s (${Math.round(ROWS / fullNode)} rows/s), ${(full[k][0].response.bytes / 1048576).toFixed(1)} MiB moved, peak RSS ${median(full[k].map((f) => f.rssMiB)).toFixed(0)} MiB (max ${Math.max(...full[k].map((f) => f.rssMiB)).toFixed(0)})`);
    console.log(`    ratio (rows/s, etl wall / baseline): ${(baseWall / fullWall).toFixed(2)}x; loader node / baseline: ${(baseWall / fullNode).toFixed(2)}x`);
  });

  const floorFullWall = median(floorFull.map((f) => f.wall));
  const floorFullNode = median(floorFull.map((f) => f.node));
  console.log(`  engine floor, full (psql \\copy into a FIFO read by DuckDB's read_csv, started once DuckDB is open): ${floorFullWall.toFixed(2)} s wall, ${floorFullNode.toFixed(2)} s in-process (rounds: ${floorFull.map((f) => f.node.toFixed(2)).join(', ')}), CPU ${median(floorFull.map((f) => f.cpu)).toFixed(2)} s`);

  // Incremental rounds: each build merges its own 1% change (the builds take turns on the one target). This
  // build's round also runs the engine floor on the same change (the same rows, by the watermark etl reads
  // from, merged into the same target file), before etl in odd rounds and after it in even ones: the first
  // reader of freshly updated rows pays for their hint bits (see changeOnePercent), so each goes first as often.
  const incr = builds.map(() => []);
  const floorIncr = [];
  let round = 0;
  for (let i = 0; i < REPEAT; i++) {
    for (const [k, b] of builds.entries()) {
      const since = await sourceWatermark('customers');
      await changeOnePercent('customers', ROWS, round++);
      const floorFirst = k === 0 && i % 2 === 1;
      if (floorFirst) floorIncr.push({ ...floor('customers', since), first: true });
      const r = etlWith(b.cli, {}, 'extract');
      if (r.response.rows_read < ROWS / 100) throw new Error(`incremental read ${r.response.rows_read} rows`);
      incr[k].push({ ...r, first: !floorFirst });
      if (k === 0 && !floorFirst) floorIncr.push({ ...floor('customers', since), first: false });
      if (k === 0 && floorIncr.at(-1).rows !== r.response.rows_read) throw new Error(`the floor read ${floorIncr.at(-1).rows} rows, etl ${r.response.rows_read}`);
    }
  }
  console.log(`Incremental, 1% changed (${incr[0][0].response.rows_read} rows read), median of ${REPEAT} (load average ${loadAvg()}):`);
  const rounds = (xs, f) => xs.map((r) => `${f(r).toFixed(3)}${r.first ? '*' : ''}`).join(', ');
  builds.forEach((b, k) => {
    const incrNode = median(incr[k].map((r) => r.node));
    const incrWall = median(incr[k].map((r) => r.wall));
    console.log(`  ${b.name}: loader node ${incrNode.toFixed(3)} s (rounds: ${rounds(incr[k], (r) => r.node)}; * read the change first), ${(incrNode / fullTimes[k].node).toFixed(3)} of the full load's node time; wall ${incrWall.toFixed(2)} s (rounds: ${rounds(incr[k], (r) => r.wall)}), ${(incrWall / fullTimes[k].wall).toFixed(3)} of the full wall; CPU ${median(incr[k].map((r) => r.cpu)).toFixed(2)} s, peak RSS ${median(incr[k].map((r) => r.rssMiB)).toFixed(0)} MiB`);
  });
  const floorNode = median(floorIncr.map((f) => f.node));
  const floorWall = median(floorIncr.map((f) => f.wall));
  const etlNode = median(incr[0].map((r) => r.node));
  const etlWall = median(incr[0].map((r) => r.wall));
  console.log(`  engine floor: in-process ${floorNode.toFixed(3)} s (rounds: ${rounds(floorIncr, (f) => f.node)}), wall ${floorWall.toFixed(2)} s (rounds: ${rounds(floorIncr, (f) => f.wall)}), CPU ${median(floorIncr.map((f) => f.cpu)).toFixed(2)} s`);
  console.log(`  ratios at ${ROWS} (in-process / wall): floor incremental/full ${ratio(floorNode, floorFullNode)} / ${ratio(floorWall, floorFullWall)}; etl incremental/full ${ratio(etlNode, fullTimes[0].node)} / ${ratio(etlWall, fullTimes[0].wall)}; etl incremental / floor incremental ${ratio(etlNode, floorNode)} / ${ratio(etlWall, floorWall)}`);
  if (process.argv.includes('--breakdown')) {
    for (const b of builds) {
      await changeOnePercent('customers', ROWS, round++);
      const traced = etlWith(b.cli, { ETL_TRACE_SQL: '1' }, 'extract');
      console.log(`Breakdown of one incremental run (${b.name}; ETL_TRACE_SQL; ms since the process started: start-end, duration, statement; load average ${loadAvg()}):`);
      console.log(`  loader node ${traced.node.toFixed(3)} s, whole process ${traced.wall.toFixed(2)} s`);
      for (const line of traced.stderr.split('\n')) {
        const m = /^\[sql ([\d.]+) ms(?:, at (\d+) ms)?\] (.*)$/.exec(line);
        if (m) console.log(`  ${m[2] ? `${String(Math.round(Number(m[2]) - Number(m[1]))).padStart(6)}-${m[2].padEnd(6)}` : ''.padEnd(13)} ${m[1].padStart(8)}  ${m[3].slice(0, 110)}`);
      }
    }
  }

  if (BIG > 0) {
    await sourceTable('customers_big', BIG);
    project('customers_big');
    console.log(`source: ${schema}.customers_big, ${BIG} rows, primary key (id), index on updated_at (the cursor)`);
    etl('extract'); // the first load
    for (let i = 0; i < BIG_REPEAT; i++) {
      const bigBase = baseline('customers_big');
      console.log(`At ${BIG} rows, round ${i + 1} of ${BIG_REPEAT} (load average ${loadAvg()}):`);
      console.log(`  baseline: ${bigBase.seconds.toFixed(1)} s (${Math.round(BIG / bigBase.seconds)} rows/s, CPU ${bigBase.cpu.toFixed(1)} s), peak RSS of its DuckDB process ${bigBase.rssMiB.toFixed(0)} MiB`);
      const bigFloor = floor('customers_big');
      console.log(`  engine floor, full: ${bigFloor.wall.toFixed(1)} s wall, ${bigFloor.node.toFixed(1)} s in-process, CPU ${bigFloor.cpu.toFixed(1)} s`);
      for (const [k, b] of builds.entries()) {
        const big = etlWith(b.cli, {}, 'extract', '--full-refresh');
        console.log(`  ${b.name}: full load ${big.wall.toFixed(1)} s wall (${Math.round(BIG / big.wall)} rows/s, CPU ${big.cpu.toFixed(1)} s; loader node ${big.node.toFixed(1)} s), peak RSS ${big.rssMiB.toFixed(0)} MiB; ratio (rows/s, etl wall / baseline) ${(bigBase.seconds / big.wall).toFixed(2)}x (load average ${loadAvg()})`);
        const since = await sourceWatermark('customers_big');
        await changeOnePercent('customers_big', BIG, round++);
        // This build's round: the floor on the same change, first in odd rounds (see the incremental rounds above).
        const floorFirst = k === 0 && i % 2 === 1;
        const before = floorFirst ? floor('customers_big', since) : undefined;
        const bigIncr = etlWith(b.cli, {}, 'extract');
        const bigFloorIncr = k === 0 ? (before ?? floor('customers_big', since)) : undefined;
        console.log(`    incremental, 1% changed (${bigIncr.response.rows_read} rows read, merged into ${BIG}): loader node ${bigIncr.node.toFixed(2)} s, ${(bigIncr.node / big.node).toFixed(3)} of the full load's node time; wall ${bigIncr.wall.toFixed(2)} s, ${(bigIncr.wall / big.wall).toFixed(3)} of the full wall; CPU ${bigIncr.cpu.toFixed(2)} s; peak RSS ${bigIncr.rssMiB.toFixed(0)} MiB (load average ${loadAvg()})`);
        if (bigFloorIncr) {
          console.log(`    engine floor, same change (${floorFirst ? 'before' : 'after'} etl): in-process ${bigFloorIncr.node.toFixed(2)} s, wall ${bigFloorIncr.wall.toFixed(2)} s, CPU ${bigFloorIncr.cpu.toFixed(2)} s, peak RSS ${bigFloorIncr.rssMiB.toFixed(0)} MiB`);
          console.log(`    ratios at ${BIG} (in-process / wall): floor incremental/full ${ratio(bigFloorIncr.node, bigFloor.node)} / ${ratio(bigFloorIncr.wall, bigFloor.wall)}; etl incremental/full ${ratio(bigIncr.node, big.node)} / ${ratio(bigIncr.wall, big.wall)}; etl incremental / floor incremental ${ratio(bigIncr.node, bigFloorIncr.node)} / ${ratio(bigIncr.wall, bigFloorIncr.wall)}`);
        }
      }
    }
    // The same load into the other targets: Postgres (COPY FROM STDIN) and Delta (staged by DuckDB, written as Parquet).
    if (!process.argv.includes('--no-other-targets')) {
      await client.query(`create schema ${schema}_target`);
      project('customers_big', `{ type: postgres, url: "${PG_URL}", schema: ${schema}_target, threads: 2 }`);
      const intoPg = etl('extract');
      console.log(`Into a Postgres target at ${BIG} rows: peak RSS ${intoPg.rssMiB.toFixed(0)} MiB, ${intoPg.wall.toFixed(1)} s wall (${Math.round(BIG / intoPg.wall)} rows/s; loader node ${intoPg.node.toFixed(1)} s)`);
      project('customers_big', '{ type: delta, path: lake, schema: main, threads: 2 }');
      const intoDelta = etl('extract');
      console.log(`Into a Delta target at ${BIG} rows: peak RSS ${intoDelta.rssMiB.toFixed(0)} MiB, ${intoDelta.wall.toFixed(1)} s wall (${Math.round(BIG / intoDelta.wall)} rows/s; loader node ${intoDelta.node.toFixed(1)} s; load average ${loadAvg()})`);
    }
  }
} finally {
  await client.query(`drop schema if exists ${schema} cascade`);
  await client.query(`drop schema if exists ${schema}_target cascade`);
  await client.end();
  rmSync(work, { recursive: true, force: true });
}
if (!process.argv.includes('--no-cdc')) await cdcBench();

/** 4. CDC: a 1% change read from the slot and applied vs a full reload, in interleaved rounds. */
async function cdcBench() {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  // A database of its own: a slot decodes every change of its database, and must go with it.
  const dbName = `etl_bench_cdc_${process.pid}`;
  await admin.query(`create database ${dbName}`);
  const url = new URL(PG_URL);
  url.pathname = `/${dbName}`;
  const source = new pg.Client({ connectionString: url.toString() });
  await source.connect();
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const run = (...args) => {
    const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', process.execPath, cli, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, BENCH_PG_URL: url.toString(), NO_COLOR: '1' } });
    if (r.status !== 0) throw new Error(`etl ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    const [wall, rssKb, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
    const loader = JSON.parse(readFileSync(path.join(work, 'target', 'run_results.json'), 'utf8')).results.find((x) => x.unique_id.startsWith('loader.'));
    return { wall, rssMiB: rssKb / 1024, cpu: user + sys, node: loader.execution_time, response: loader.adapter_response, line: r.stdout.split('\n').find((l) => l.includes('loader ')) };
  };
  try {
    await source.query(`create table public.customers (${COLUMNS})`);
    await source.query(
      `insert into public.customers select g, 'name ' || g, case when g % 10 = 0 then null else 'c' || g || '@x.org' end, g * 1.25, g % 3 = 0, date '1990-01-01' + (g % 9000), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' from generate_series(1, ${ROWS}) g`,
    );
    await source.query('vacuum analyze public.customers');
    rmSync(work, { recursive: true, force: true });
    mkdirSync(path.join(work, 'models'), { recursive: true });
    writeFileSync(path.join(work, 'etl.yml'), 'name: bench_extract\ntargets:\n  dev: { type: duckdb, path: target/bench.duckdb, threads: 4 }\n');
    writeFileSync(
      path.join(work, 'models', 'crm.yml'),
      `sources:\n  - name: crm\n    tables:\n      - name: customers\n        loader:\n          type: postgres\n          url: "{{env_var 'BENCH_PG_URL'}}"\n          table: public.customers\n          incremental: { mode: cdc }\n`,
    );
    console.log(`CDC, Postgres -> DuckDB, ${ROWS} rows (load average at start ${load()}):`);
    const first = run('extract');
    console.log(`  first load (slot created, table copied as of its snapshot): loader node ${first.node.toFixed(2)} s, ${first.wall.toFixed(2)} s wall, ${first.cpu.toFixed(2)} s CPU, peak RSS ${first.rssMiB.toFixed(0)} MiB`);
    const cdc = [];
    const full = [];
    for (let i = 0; i < REPEAT; i++) {
      // 1% of the rows: 0.8% updated, 0.1% deleted, 0.1% new, in one transaction each.
      await source.query(`update public.customers set name = 'changed ${i} ' || id, amount = amount + 1 where id <= ${ROWS} and id % 1000 between ${i * 10} and ${i * 10 + 7}`);
      await source.query(`delete from public.customers where id <= ${ROWS} and id % 1000 = ${i * 10 + 8}`);
      await source.query(`insert into public.customers select g, 'new ' || g, null, 1, true, null, now() from generate_series(${ROWS + 1 + i * (ROWS / 1000)}, ${ROWS + (i + 1) * (ROWS / 1000)}) g`);
      const r = run('extract');
      if (r.response.rows_read !== ROWS / 100) throw new Error(`CDC read ${r.response.rows_read} changes, expected ${ROWS / 100}: ${r.line}`);
      cdc.push(r);
      full.push(run('extract', '--full-refresh'));
    }
    const m = (xs, f) => median(xs.map(f));
    const [cdcNode, fullNode, cdcCpu, fullCpu, cdcWall, fullWall] = [m(cdc, (r) => r.node), m(full, (r) => r.node), m(cdc, (r) => r.cpu), m(full, (r) => r.cpu), m(cdc, (r) => r.wall), m(full, (r) => r.wall)];
    console.log(`  1% changed (${ROWS / 100} changes), median of ${REPEAT} rounds: loader node ${cdcNode.toFixed(3)} s (${Math.round(ROWS / 100 / cdcNode)} changes/s), ${cdcWall.toFixed(2)} s wall, ${cdcCpu.toFixed(2)} s CPU`);
    console.log(`  full reload (--full-refresh: new slot, snapshot copy), same rounds: loader node ${fullNode.toFixed(3)} s, ${fullWall.toFixed(2)} s wall, ${fullCpu.toFixed(2)} s CPU`);
    console.log(`  ratio 1% CDC / full reload: loader node ${(cdcNode / fullNode).toFixed(3)}, wall ${(cdcWall / fullWall).toFixed(3)}, CPU ${(cdcCpu / fullCpu).toFixed(3)}`);
    await source.query(`update public.customers set amount = amount + 1 where id % 10 = 3`);
    const tenth = run('extract');
    console.log(`  10% changed (${tenth.response.rows_read} changes): loader node ${tenth.node.toFixed(2)} s (${Math.round(tenth.response.rows_read / tenth.node)} changes/s), ${tenth.cpu.toFixed(2)} s CPU, peak RSS ${tenth.rssMiB.toFixed(0)} MiB (load average at end ${load()})`);
  } finally {
    await source.end();
    await admin.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1`, [dbName]).catch(() => undefined);
    await admin.query(`drop database if exists ${dbName} with (force)`);
    await admin.end();
    rmSync(work, { recursive: true, force: true });
  }
}
