// Benchmarks of run history, retries, cost and traces (#14; BENCHMARKS.md
// "Run history, retries, cost and traces"):
//
//   node bench/history.mjs [--reps N] [--base DIR] [--rows 100000]
//
// 1. overhead: `etl build` of project-template and an empty run (a project
//    with no models) with this build, against --base DIR (a checkout of main
//    before #14, built: its dist/bin/etl.js) in the same run, alternating the
//    two, median of N. Without --base only this build is timed.
// 2. report: `etl report` (a whole process) over a DuckDB target whose
//    etl_meta holds --rows node attempts (and a run per 20 of them), against
//    the same aggregate query run by raw DuckDB in-process, and
//    `etl --version` (the process's start-up).
//
// Work goes to bench/.work/history/ (gitignored).

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

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
const CLI = path.join(WORK, 'snapshot', 'dist', 'bin', 'etl.js');

rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
// A copy of dist/: others rebuild it while this runs.
cpSync(path.join(ROOT, 'dist'), path.join(WORK, 'snapshot', 'dist'), { recursive: true });
cpSync(path.join(ROOT, 'package.json'), path.join(WORK, 'snapshot', 'package.json'));
let BASE_CLI;
if (base) {
  cpSync(path.join(base, 'dist'), path.join(WORK, 'base', 'dist'), { recursive: true });
  cpSync(path.join(base, 'package.json'), path.join(WORK, 'base', 'package.json'));
  BASE_CLI = path.join(WORK, 'base', 'dist', 'bin', 'etl.js');
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(cli, args, cwd) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  return ms;
}

// ---- 1. overhead on a build ---------------------------------------------
const results = {};
function project(name, build) {
  const dir = path.join(WORK, name);
  if (build === 'template') cpSync(path.join(ROOT, 'project-template'), dir, { recursive: true, filter: (p) => !p.includes(`${path.sep}target`) });
  else {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'etl.yml'), 'name: empty\nversion: 1\ntarget: dev\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb }\n');
  }
  return dir;
}
for (const [label, kind] of [['project-template build', 'template'], ['empty run', 'empty']]) {
  const mine = project(`${kind}-mine`, kind);
  const theirs = BASE_CLI ? project(`${kind}-base`, kind) : undefined;
  // One warm-up each: the compile cache and the database file exist from then on, as in a rebuild.
  time(CLI, ['build'], mine);
  if (theirs) time(BASE_CLI, ['build'], theirs);
  const a = [];
  const b = [];
  for (let i = 0; i < reps; i++) {
    a.push(time(CLI, ['build'], mine));
    if (theirs) b.push(time(BASE_CLI, ['build'], theirs));
  }
  results[label] = { this_ms: Math.round(median(a)), base_ms: theirs ? Math.round(median(b)) : null };
  if (theirs) results[label].ratio = Number((median(a) / median(b)).toFixed(3));
  results[label].delta_ms = theirs ? Math.round(median(a) - median(b)) : null;
}

// ---- 2. etl report over many history rows -------------------------------
const dir = project('report', 'empty');
writeFileSync(path.join(dir, 'etl.yml'), 'name: rep\nversion: 1\ntarget: dev\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb }\ncost: { per_cpu_hour: 0.5, per_gb_written: 0.02, per_gb_scanned: 0.005 }\nbudget: { monthly: 500, alert_at: 0.8 }\n');
mkdirSync(path.join(dir, 'models'));
writeFileSync(path.join(dir, 'models', 'm.sql'), 'select 1 as x\n');
time(CLI, ['build'], dir); // creates etl_meta at this etl's version
const db = path.join(dir, 'target', 'dev.duckdb');
{
  const inst = await DuckDBInstance.create(db);
  const c = await inst.connect();
  const runs = Math.ceil(ROWS / 20);
  await c.run(`insert into etl_meta.runs (run_id, command, target, etl_version, started_at, finished_at, status) select 'r' || i, 'build', 'dev', '0', now()::timestamp - (i * interval 10 minute), now()::timestamp - (i * interval 10 minute) + interval 1 minute, case when i % 17 = 0 then 'error' else 'success' end from range(${runs}) t(i)`);
  await c.run(`insert into etl_meta.node_runs (run_id, unique_id, relation, status, started_at, finished_at, rows_affected, message, attempt, execution_time, bytes_written, bytes_scanned, upstream)
    select 'r' || (i // 20), 'model.rep.m' || (i % 200), null, case when i % 53 = 0 then 'error' else 'success' end, now()::timestamp - ((i // 20) * interval 10 minute), now()::timestamp - ((i // 20) * interval 10 minute) + interval 2 second, i % 1000, '', 1, (i % 97) / 10.0, (i % 500) * 100000, (i % 300) * 1000000, null from range(${ROWS}) t(i)`);
  const t0 = performance.now();
  const q = await c.runAndReadAll(`with n as (select unique_id as grp, status, execution_time as secs, execution_time / 3600.0 * 0.5 + coalesce(bytes_written, 0) / 1e9 * 0.02 + coalesce(bytes_scanned, 0) / 1e9 * 0.005 as cost, row_number() over (partition by run_id, unique_id order by attempt desc) as rn from etl_meta.node_runs where started_at >= now()::timestamp - interval 60 day)
    select grp, count(*), sum(secs), sum(cost), percentile_cont(0.5) within group (order by secs), percentile_cont(0.95) within group (order by secs) from n group by grp`);
  results['raw DuckDB aggregate'] = { ms: Math.round(performance.now() - t0), groups: q.getRows().length };
  c.closeSync();
  inst.closeSync();
}
const rep = [];
const hist = [];
const ver = [];
for (let i = 0; i < reps; i++) {
  rep.push(time(CLI, ['report', '--since', '30d', '--output', 'json'], dir));
  hist.push(time(CLI, ['history', '--limit', '20'], dir));
  ver.push(time(CLI, ['--version'], dir));
}
results[`etl report over ${ROWS} node rows`] = { ms: Math.round(median(rep)) };
// The same report in this process (no node start-up, no CLI): what the report itself costs.
{
  const { costReport } = await import(path.join(WORK, 'snapshot', 'dist', 'core', 'history', 'report.js'));
  const inproc = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = await costReport({ projectDir: dir, since: new Date(Date.now() - 30 * 86_400_000).toISOString() });
    inproc.push(performance.now() - t0);
    if (r.current.node_runs === 0) throw new Error('the report saw no history');
  }
  results[`costReport() in-process over ${ROWS} node rows`] = { ms: Math.round(median(inproc)) };
}
results['etl history --limit 20 (same rows)'] = { ms: Math.round(median(hist)) };
results['etl --version (start-up)'] = { ms: Math.round(median(ver)) };

console.log(JSON.stringify({ reps, base: base ?? null, rows: ROWS, results }, null, 2));
writeFileSync(path.join(WORK, 'results.json'), JSON.stringify(results, null, 2));
