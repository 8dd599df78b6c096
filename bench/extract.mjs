// Extract and load (#15), against baselines measured in the same run:
//  1. Postgres -> DuckDB full extraction of --rows rows (1M): `etl extract --full-refresh`
//     vs `psql -c "\copy (select ...) to stdout csv"` piped into DuckDB's read_csv
//     (a `create table as select * from read_csv('/dev/stdin', ...)` with the same types);
//     rows/s of each, whole process (wall) and the loader node alone (run_results).
//  2. Peak RSS of `etl extract` at --rows and at --big rows (10M; --big 0 skips it).
//  3. An incremental extraction of 1% changed rows vs the full extraction (loader node time).
// Postgres: 127.0.0.1:5432, trust auth, database `test` (override with PG_URL).
//
//   node bench/extract.mjs [--rows N] [--big N] [--repeat N]

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
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const work = path.join(here, '.work', 'extract');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const schema = `etl_bench_extract_${process.pid}`;
const COLUMNS = "id bigint primary key, name text, email varchar(80), amount numeric(12,2), active boolean, born date, updated_at timestamptz not null";
const DUCK_COLUMNS = "{'id': 'BIGINT', 'name': 'VARCHAR', 'email': 'VARCHAR', 'amount': 'DECIMAL(12,2)', 'active': 'BOOLEAN', 'born': 'DATE', 'updated_at': 'TIMESTAMPTZ'}";

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

/** `etl <args>` under /usr/bin/time: wall seconds, peak RSS (MiB), and the loader node's own seconds. */
function etl(...args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', process.execPath, cli, ...args], { cwd: work, encoding: 'utf8', env: { ...process.env, BENCH_PG_URL: PG_URL, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`etl ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  const [wall, rssKb, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  const results = JSON.parse(readFileSync(path.join(work, 'target', 'run_results.json'), 'utf8')).results;
  const loader = results.find((x) => x.unique_id.startsWith('loader.'));
  return { wall, rssMiB: rssKb / 1024, cpu: user + sys, node: loader.execution_time, response: loader.adapter_response };
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

try {
  await sourceTable('customers', ROWS);
  project('customers');
  etl('extract'); // warm-up: the first load

  const full = [];
  const base = [];
  for (let i = 0; i < REPEAT; i++) {
    base.push(baseline('customers'));
    full.push(etl('extract', '--full-refresh'));
  }
  const fullWall = median(full.map((f) => f.wall));
  const fullNode = median(full.map((f) => f.node));
  const baseWall = median(base.map((b) => b.seconds));
  const load = (await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ');
  console.log(`Postgres -> DuckDB, ${ROWS} rows (median of ${REPEAT}; load average ${load}):`);
  console.log(`  etl extract --full-refresh: ${fullWall.toFixed(2)} s wall (${Math.round(ROWS / fullWall)} rows/s, CPU ${median(full.map((f) => f.cpu)).toFixed(2)} s), loader node ${fullNode.toFixed(2)} s (${Math.round(ROWS / fullNode)} rows/s), ${(full[0].response.bytes / 1048576).toFixed(1)} MiB moved`);
  console.log(`  baseline psql \\copy | duckdb read_csv: ${baseWall.toFixed(2)} s (${Math.round(ROWS / baseWall)} rows/s, CPU ${median(base.map((b) => b.cpu)).toFixed(2)} s of psql and DuckDB), peak RSS of its DuckDB process ${median(base.map((b) => b.rssMiB)).toFixed(0)} MiB`);
  console.log(`  ratio (rows/s, etl wall / baseline): ${(baseWall / fullWall).toFixed(2)}x; loader node / baseline: ${(baseWall / fullNode).toFixed(2)}x`);
  console.log(`  peak RSS of etl extract at ${ROWS} rows: ${median(full.map((f) => f.rssMiB)).toFixed(0)} MiB`);

  const incr = [];
  for (let i = 0; i < REPEAT; i++) {
    // 1% of the rows changed since the last load, spread over the table.
    await client.query(`update ${schema}.customers set name = 'changed ${i} ' || id, updated_at = timestamptz '2025-01-01 00:00:00+00' + (${i} * ${ROWS} + id) * interval '1 second' where id % 100 = ${i}`);
    const r = etl('extract');
    if (r.response.rows_read < ROWS / 100) throw new Error(`incremental read ${r.response.rows_read} rows`);
    incr.push(r);
  }
  const incrNode = median(incr.map((r) => r.node));
  const incrWall = median(incr.map((r) => r.wall));
  console.log(`Incremental, 1% changed (${incr[0].response.rows_read} rows read): loader node ${incrNode.toFixed(3)} s, ${(incrNode / fullNode).toFixed(3)} of the full load's node time (wall ${incrWall.toFixed(2)} s, ${(incrWall / fullWall).toFixed(3)} of the full wall)`);

  if (BIG > 0) {
    await sourceTable('customers_big', BIG);
    project('customers_big');
    const bigBase = baseline('customers_big');
    const big = etl('extract');
    console.log(`Peak RSS of etl extract at ${BIG} rows: ${big.rssMiB.toFixed(0)} MiB (${big.wall.toFixed(1)} s wall, ${Math.round(BIG / big.wall)} rows/s, CPU ${big.cpu.toFixed(1)} s; loader node ${big.node.toFixed(1)} s)`);
    console.log(`  baseline at ${BIG} rows: ${bigBase.seconds.toFixed(1)} s (${Math.round(BIG / bigBase.seconds)} rows/s, CPU ${bigBase.cpu.toFixed(1)} s), peak RSS of its DuckDB process ${bigBase.rssMiB.toFixed(0)} MiB; ratio (rows/s, etl wall / baseline) ${(bigBase.seconds / big.wall).toFixed(2)}x (load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')})`);
    await client.query(`update ${schema}.customers_big set name = 'changed', updated_at = timestamptz '2025-01-01 00:00:00+00' + id * interval '1 second' where id % 100 = 0`);
    const bigIncr = etl('extract');
    console.log(`Incremental at ${BIG} rows, 1% changed (${bigIncr.response.rows_read} rows read): loader node ${bigIncr.node.toFixed(2)} s, ${(bigIncr.node / big.node).toFixed(3)} of the full load's node time`);
    // The same load into the other targets: Postgres (COPY FROM STDIN) and Delta (staged by DuckDB, written as Parquet).
    await client.query(`create schema ${schema}_target`);
    project('customers_big', `{ type: postgres, url: "${PG_URL}", schema: ${schema}_target, threads: 2 }`);
    const intoPg = etl('extract');
    console.log(`Into a Postgres target at ${BIG} rows: peak RSS ${intoPg.rssMiB.toFixed(0)} MiB, ${intoPg.wall.toFixed(1)} s wall (${Math.round(BIG / intoPg.wall)} rows/s; loader node ${intoPg.node.toFixed(1)} s)`);
    project('customers_big', '{ type: delta, path: lake, schema: main, threads: 2 }');
    const intoDelta = etl('extract');
    console.log(`Into a Delta target at ${BIG} rows: peak RSS ${intoDelta.rssMiB.toFixed(0)} MiB, ${intoDelta.wall.toFixed(1)} s wall (${Math.round(BIG / intoDelta.wall)} rows/s; loader node ${intoDelta.node.toFixed(1)} s)`);
  }
} finally {
  await client.query(`drop schema if exists ${schema} cascade`);
  await client.query(`drop schema if exists ${schema}_target cascade`);
  await client.end();
  rmSync(work, { recursive: true, force: true });
}
