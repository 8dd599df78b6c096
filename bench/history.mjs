// Benchmarks of run history, retries, cost and traces (#14; BENCHMARKS.md
// "Run history, retries, cost and traces" and "Orchestration (#14)"):
//
//   node bench/history.mjs [--reps N] [--base DIR] [--rows 100000] [--engines duckdb,postgres,delta]
//
// 1. overhead: `etl build` of project-template and an empty run (a project
//    with no models) with this build, against --base DIR (another checkout,
//    built: its dist/bin/etl.js) in the same run, interleaved, median of N;
//    wall and CPU (user + system of the etl process, getrusage at exit).
// 2. report: `etl report --since 30d --output json` (a whole process) over a
//    history of --rows node attempts (a run per 20 of them, spread over 60
//    days) on each engine that keeps history: DuckDB's etl_meta, Postgres's
//    (a database of its own, dropped after; ETL_PG_URL names the server) and
//    the Delta tables under a lake. With --base, the base's CLI reads the
//    same history, interleaved. `etl --version` in the same rounds is the
//    process's start-up floor.
//
// Work goes to bench/.work/history/ (gitignored).

import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const WORK = path.join(BENCH, '.work', 'history');
const argv = process.argv.slice(2);
const value = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const reps = Number(value('--reps') ?? 7);
const base = value('--base');
const ROWS = Number(value('--rows') ?? 100_000);
const ENGINES = (value('--engines') ?? 'duckdb,postgres,delta').split(',');
const SKIP_OVERHEAD = argv.includes('--report-only');
const PG_URL = process.env.ETL_PG_URL ?? process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
// Copies of dist/: others rebuild theirs while this runs.
function snapshot(from, name) {
  cpSync(path.join(from, 'dist'), path.join(WORK, name, 'dist'), { recursive: true });
  cpSync(path.join(from, 'package.json'), path.join(WORK, name, 'package.json'));
  // Their node_modules resolve from the checkout they came from.
  spawnSync('ln', ['-s', path.join(from, 'node_modules'), path.join(WORK, name, 'node_modules')]);
  return path.join(WORK, name, 'dist', 'bin', 'etl.js');
}
const CLI = snapshot(ROOT, 'snapshot');
const BASE_CLI = base ? snapshot(path.resolve(base), 'base') : undefined;
const clis = [['this build', CLI], ...(BASE_CLI ? [['base', BASE_CLI]] : [])];

const PRELOAD = path.join(BENCH, 'maxrss-preload.mjs');
const USAGE = path.join(WORK, 'usage.txt');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');

/** One etl process: wall ms and CPU ms (user + system, all its threads). */
function time(cli, args, cwd, env = {}) {
  rmSync(USAGE, { force: true });
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', PRELOAD, cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', BENCH_RSS_FILE: USAGE, ...env } });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  const [, user, sys] = readFileSync(USAGE, 'utf8').split(' ').map(Number);
  return { wall, cpu: (user + sys) * 1000, stdout: r.stdout };
}

/** Times each [label, cli, args, cwd] `reps` times, interleaved; medians. */
function rounds(runs) {
  const t = runs.map(() => ({ wall: [], cpu: [] }));
  for (const [, cli, args, cwd, env] of runs) time(cli, args, cwd, env); // warm
  for (let i = 0; i < reps; i++) {
    runs.forEach(([, cli, args, cwd, env], k) => {
      const x = time(cli, args, cwd, env);
      t[k].wall.push(x.wall);
      t[k].cpu.push(x.cpu);
    });
  }
  return runs.map(([label], k) => ({ what: label, wall_ms: Math.round(median(t[k].wall)), cpu_ms: Math.round(median(t[k].cpu)) }));
}

const results = { reps, rows: ROWS, base: base ?? null, overhead: [], report: {} };

// ---- 1. overhead on a build ---------------------------------------------
function project(name, kind) {
  const dir = path.join(WORK, name);
  if (kind === 'template') cpSync(path.join(ROOT, 'project-template'), dir, { recursive: true, filter: (p) => !/[\\/]target([\\/]|$)/.test(path.relative(ROOT, p)) });
  else {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'etl.yml'), 'name: empty\nversion: 1\ntarget: dev\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb }\n');
  }
  return dir;
}
if (!SKIP_OVERHEAD) {
  for (const [label, kind] of [['project-template build', 'template'], ['empty run', 'empty']]) {
    // Each CLI its own copy (its own compile cache and database, kept between rounds: a rebuild).
    const runs = clis.map(([who, cli]) => [`${label}, ${who}`, cli, ['build'], project(`${kind}-${who.replace(/\s/g, '-')}`, kind)]);
    results.overhead.push(...rounds(runs));
  }
  results.overhead_load = load();
}

// ---- 2. etl report over many history rows, per engine ---------------------
const RATES = 'cost: { per_cpu_hour: 0.5, per_gb_written: 0.02, per_gb_scanned: 0.005 }\nbudget: { monthly: 500, alert_at: 0.8 }\n';
const RUNS = Math.ceil(ROWS / 20);

/** The history as SQL each engine runs: RUNS runs every ~17 min over 60 days, 20 node attempts each (200 models), some failed, some retried. */
const fill = {
  runs: (now, interval, ts) =>
    `select 'r' || i as run_id, 'build' as command, 'dev' as target, '0' as etl_version, ${ts(`${now} - i * ${interval('17 minutes')}`)} as started_at, ${ts(`${now} - i * ${interval('17 minutes')} + ${interval('1 minute')}`)} as finished_at, ` +
    `case when i % 17 = 0 then 'error' else 'success' end as status`,
  nodes: (now, interval, ts) =>
    `select 'r' || (i / 20) as run_id, 'model.rep.m' || (i % 200) as unique_id, case when i % 53 = 0 then 'error' else 'success' end as status, ` +
    `${ts(`${now} - (i / 20) * ${interval('17 minutes')}`)} as started_at, ${ts(`${now} - (i / 20) * ${interval('17 minutes')} + ${interval('2 seconds')}`)} as finished_at, ` +
    `i % 1000 as rows_affected, case when i % 101 = 0 then 2 else 1 end as attempt, (i % 97) / 10.0 as execution_time, (i % 500) * 100000 as bytes_written, (i % 300) * 1000000 as bytes_scanned`,
};

async function reportOn(engine) {
  const dir = path.join(WORK, `report-${engine}`);
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  writeFileSync(path.join(dir, 'models', 'm.sql'), 'select 1 as x\n');
  let cleanup = async () => undefined;
  let target;
  if (engine === 'duckdb') target = 'dev: { type: duckdb, path: target/dev.duckdb }';
  else if (engine === 'delta') target = 'dev: { type: delta, path: lake, schema: main }';
  else {
    const pg = (await import(path.join(ROOT, 'node_modules/pg/lib/index.js'))).default;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query('drop database if exists etl_bench_history');
    await admin.query('create database etl_bench_history');
    const url = new URL(PG_URL);
    url.pathname = '/etl_bench_history';
    target = `dev: { type: postgres, url: "${url}", schema: rep }`;
    cleanup = async () => {
      await admin.query('drop database if exists etl_bench_history with (force)');
      await admin.end();
    };
  }
  writeFileSync(path.join(dir, 'etl.yml'), `name: rep\nversion: 1\ntarget: dev\ntargets:\n  ${target}\n${RATES}`);
  time(CLI, ['build'], dir); // creates the history store at this etl's version
  const t0 = performance.now();
  if (engine === 'duckdb') {
    const { createRequire } = await import('node:module');
    const { DuckDBInstance } = createRequire(path.join(ROOT, 'package.json'))('@duckdb/node-api');
    const inst = await DuckDBInstance.create(path.join(dir, 'target', 'dev.duckdb'));
    const c = await inst.connect();
    const sql = { now: 'now()::timestamp', interval: (x) => `interval '${x}'`, ts: (x) => x };
    await c.run(`insert into etl_meta.runs (run_id, command, target, etl_version, started_at, finished_at, status) ${fill.runs(sql.now, sql.interval, sql.ts)} from range(${RUNS}) t(i)`);
    await c.run(`insert into etl_meta.node_runs (run_id, unique_id, status, started_at, finished_at, rows_affected, attempt, execution_time, bytes_written, bytes_scanned) ${fill.nodes(sql.now, sql.interval, sql.ts).replaceAll('(i / 20)', '(i // 20)')} from range(${ROWS}) t(i)`);
    c.closeSync();
    inst.closeSync();
  } else if (engine === 'postgres') {
    const pg = (await import(path.join(ROOT, 'node_modules/pg/lib/index.js'))).default;
    const url = new URL(PG_URL);
    url.pathname = '/etl_bench_history';
    const c = new pg.Client({ connectionString: String(url) });
    await c.connect();
    const sql = { now: 'localtimestamp', interval: (x) => `interval '${x}'`, ts: (x) => x };
    await c.query(`insert into etl_meta.runs (run_id, command, target, etl_version, started_at, finished_at, status) ${fill.runs(sql.now, sql.interval, sql.ts)} from generate_series(0, ${RUNS - 1}) t(i)`);
    await c.query(`insert into etl_meta.node_runs (run_id, unique_id, status, started_at, finished_at, rows_affected, attempt, execution_time, bytes_written, bytes_scanned) ${fill.nodes(sql.now, sql.interval, sql.ts)} from generate_series(0, ${ROWS - 1}) t(i)`);
    await c.query('analyze etl_meta.runs; analyze etl_meta.node_runs');
    await c.end();
  } else {
    // One append commit per table, through the Delta adapter (the log a long history has would have more).
    const { createAdapter } = await import(path.join(WORK, 'snapshot', 'dist', 'adapters', 'index.js'));
    const { scanProject } = await import(path.join(WORK, 'snapshot', 'dist', 'core', 'project', 'load.js'));
    const scan = scanProject(dir, { env: process.env });
    const adapter = await createAdapter(scan.target, scan.root, {});
    await adapter.open();
    const sql = { now: 'now()', interval: (x) => `interval '${x}'`, ts: (x) => `cast(${x} as timestamptz)` };
    const v = (x) => `cast(null as varchar) as ${x}`;
    await adapter.withSession(async (s) => {
      await adapter.appendRows(s, { schema: 'etl_meta', name: 'runs' }, `${fill.runs(sql.now, sql.interval, sql.ts)}, ${['selection', 'job', 'git_commit'].map(v).join(', ')}, cast(null as boolean) as git_dirty, ${['user_name', 'host', 'message'].map(v).join(', ')} from range(${RUNS}) t(i)`);
      await adapter.appendRows(
        s,
        { schema: 'etl_meta', name: 'node_runs' },
        `select run_id, unique_id, cast(null as varchar) as relation, status, started_at, finished_at, cast(rows_affected as bigint) as rows_affected, '' as message, cast(attempt as integer) as attempt, cast(execution_time as double) as execution_time, cast(bytes_written as bigint) as bytes_written, cast(bytes_scanned as bigint) as bytes_scanned, cast(null as varchar) as upstream from (${fill.nodes(sql.now, sql.interval, sql.ts).replaceAll('(i / 20)', '(i // 20)')} from range(${ROWS}) t(i))`,
      );
    });
    await adapter.close();
  }
  const fillMs = Math.round(performance.now() - t0);
  // The report must have read the rows: its current period holds about half of them.
  const check = JSON.parse(time(CLI, ['report', '--since', '30d', '--output', 'json'], dir).stdout);
  if (!(check.current.node_runs > ROWS / 3)) throw new Error(`${engine}: the report saw ${check.current.node_runs} node runs`);
  const runs = [
    ...clis.map(([who, cli]) => [`etl report, ${who}`, cli, ['report', '--since', '30d', '--output', 'json'], dir]),
    ['etl --version (start-up), this build', CLI, ['--version'], dir],
  ];
  const out = { fill_ms: fillMs, node_runs_in_period: check.current.node_runs, rounds: rounds(runs), load: load() };
  await cleanup();
  return out;
}
for (const engine of ENGINES) results.report[engine] = await reportOn(engine);

console.log(JSON.stringify(results, null, 2));
writeFileSync(path.join(WORK, 'results.json'), JSON.stringify(results, null, 2));
