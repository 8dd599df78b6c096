// Benchmark of static analysis (issue #16): `etl compile --check` on the
// generated 10,000-model project, cold (no target/) against plain `etl
// compile` cold, warm with nothing changed, warm after one model changes
// (a comment: only it re-binds; a new column: it and its descendants do),
// and what the check adds to `etl build` of project-template (warm, against
// `--no-check`), and the engine floor (bench/check-floor.mjs: DuckDB alone
// binding the same statements, alternated with the check in one process).
// Then the same project on a Postgres target with 5% of its models calling
// to_char (Postgres-only): DuckDB binds what it can, the server binds those
// models and their descendants and gives Postgres's types for all (skipped
// with --no-postgres; ETL_PG_URL, default the local test database). Each
// figure is the median of N separate processes; CPU time (user + system of
// the process and its DuckDB threads) is given beside wall time, since the
// machine is shared.
//
//   node bench/check.mjs [--reps N] [--models 10000] [--no-postgres]

import { spawnSync } from 'node:child_process';
import { cpSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateProject } from './gen.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const WORK = path.join(BENCH, '.work');
const SNAPSHOT = path.join(WORK, 'check-snapshot');
const CLI = path.join(SNAPSHOT, 'dist', 'bin', 'etl.js');
const argv = process.argv.slice(2);
const value = (name, d) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : d;
};
const REPS = Number(value('--reps', 3));
const MODELS = Number(value('--models', 10000));

if (!existsSync(path.join(ROOT, 'dist', 'bin', 'etl.js'))) {
  console.error('dist/bin/etl.js is missing: run npm run build first');
  process.exit(2);
}
// A copy of dist/: others may rebuild dist/ while this runs.
rmSync(SNAPSHOT, { recursive: true, force: true });
cpSync(path.join(ROOT, 'dist'), path.join(SNAPSHOT, 'dist'), { recursive: true });
copyFileSync(path.join(ROOT, 'package.json'), path.join(SNAPSHOT, 'package.json'));

function etl(dir, ...args) {
  const t0 = performance.now();
  const before = childCpu();
  const r = spawnSync(process.execPath, [CLI, ...args, '--project-dir', dir], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`etl ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return { seconds, cpu: childCpu() - before, stdout: r.stdout };
}
/** User + system seconds of this process's waited-for children (/proc/self/stat cutime + cstime, Linux). */
function childCpu() {
  const fields = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}
const PG_URL = process.env.ETL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r3 = (x) => Math.round(x * 1000) / 1000;
function checkStats(stdout) {
  const line = stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'compiled');
  return line.check;
}

const project = path.join(WORK, `check-${MODELS}`);
console.error(`load average at start: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
generateProject(project, { models: MODELS, kind: 'compile', tests: false });
const target = path.join(project, 'target');
const results = {};

// 1. Cold: plain compile vs compile --check, target/ removed before each.
const cold = { compile: [], compile_cpu: [], check: [], check_cpu: [], stage: [], cpu: [] };
for (let i = 0; i < REPS; i++) {
  rmSync(target, { recursive: true, force: true });
  const plain = etl(project, 'compile');
  cold.compile.push(plain.seconds);
  cold.compile_cpu.push(plain.cpu);
  rmSync(target, { recursive: true, force: true });
  const r = etl(project, 'compile', '--check', '--log-format', 'json');
  cold.check.push(r.seconds);
  cold.check_cpu.push(r.cpu);
  cold.stage.push(checkStats(r.stdout).seconds);
  cold.cpu.push(checkStats(r.stdout).cpu_seconds);
}
results.cold = {
  compile_s: r3(median(cold.compile)),
  compile_cpu_s: r3(median(cold.compile_cpu)),
  compile_check_s: r3(median(cold.check)),
  compile_check_cpu_s: r3(median(cold.check_cpu)),
  check_stage_s: r3(median(cold.stage)),
  check_stage_cpu_s: r3(median(cold.cpu)),
  per_model_ms: r3((median(cold.stage) / MODELS) * 1000),
  per_model_cpu_ms: r3((median(cold.cpu) / MODELS) * 1000),
};

// 1b. The engine floor: in one process, the cold check alternated with DuckDB alone binding the same statements.
{
  const r = spawnSync(process.execPath, [path.join(BENCH, 'check-floor.mjs'), path.join(SNAPSHOT, 'dist'), project, String(REPS)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`check-floor.mjs exited ${r.status}:\n${r.stderr}`);
  results.floor = JSON.parse(r.stdout.trim().split('\n').pop());
}

// 2. Warm, nothing changed: every bound schema from target/.etl.
const warm = [];
let stats;
for (let i = 0; i < REPS; i++) {
  const r = etl(project, 'compile', '--check', '--log-format', 'json');
  warm.push(r.seconds);
  stats = checkStats(r.stdout);
}
results.warm_unchanged = { compile_check_s: r3(median(warm)), check_stage_s: r3(stats.seconds), bound: stats.bound, cached: stats.cached };

// 3. Warm after one model changes: a comment (its columns stay: only it re-binds), then a new column (its descendants re-bind too).
const model = path.join(project, 'models', readdirFirst(project));
const original = readFileSync(model, 'utf8');
for (const [label, edit] of [
  ['comment', (t, i) => `${t}\n-- bench change ${i}\n`],
  ['new_column', (t, i) => t.replace(/\n    r0\.created_at\n/, `\n    r0.created_at,\n    ${i} as bench_extra\n`)],
]) {
  const runs = [];
  for (let i = 0; i < REPS; i++) {
    writeFileSync(model, edit(original, i + 1));
    const r = etl(project, 'compile', '--check', '--log-format', 'json');
    const c = checkStats(r.stdout);
    runs.push({ wall: r.seconds, stage: c.seconds, bound: c.bound, cached: c.cached });
    writeFileSync(model, original);
    etl(project, 'compile', '--check', '--log-format', 'json');
  }
  const m = runs.sort((a, b) => a.wall - b.wall)[Math.floor(runs.length / 2)];
  results[`one_model_${label}`] = { compile_check_s: r3(m.wall), check_stage_s: r3(m.stage), bound: m.bound, cached: m.cached };
}

// 4. etl build of project-template, warm: with the check (default) and --no-check, alternated.
const tpl = path.join(WORK, 'check-template');
rmSync(tpl, { recursive: true, force: true });
cpSync(path.join(ROOT, 'project-template'), tpl, { recursive: true, filter: (s) => !s.includes(`${path.sep}target`) });
etl(tpl, 'build');
const withCheck = [];
const noCheck = [];
for (let i = 0; i < Math.max(REPS, 5); i++) {
  withCheck.push(etl(tpl, 'build').seconds);
  noCheck.push(etl(tpl, 'build', '--no-check').seconds);
}
rmSync(path.join(tpl, 'target', '.etl', 'bound-schemas.json'), { force: true });
const coldCache = etl(tpl, 'build').seconds;
// Cold: target/ (the database too) removed before each build, alternated.
const coldWith = [];
const coldWithout = [];
for (let i = 0; i < Math.max(REPS, 5); i++) {
  rmSync(path.join(tpl, 'target'), { recursive: true, force: true });
  coldWith.push(etl(tpl, 'build'));
  rmSync(path.join(tpl, 'target'), { recursive: true, force: true });
  coldWithout.push(etl(tpl, 'build', '--no-check'));
}
const m = (runs, k) => median(runs.map((r) => r[k]));
results.template_build = {
  with_check_s: r3(median(withCheck)),
  no_check_s: r3(median(noCheck)),
  added_s: r3(median(withCheck) - median(noCheck)),
  with_check_cold_cache_s: r3(coldCache),
  cold_with_check_s: r3(m(coldWith, 'seconds')),
  cold_with_check_cpu_s: r3(m(coldWith, 'cpu')),
  cold_no_check_s: r3(m(coldWithout, 'seconds')),
  cold_no_check_cpu_s: r3(m(coldWithout, 'cpu')),
};

// 5. Postgres target: 5% of the models call to_char, which DuckDB lacks.
if (!argv.includes('--no-postgres')) {
  const pgProject = path.join(WORK, `check-pg-${MODELS}`);
  generateProject(pgProject, { models: MODELS, kind: 'compile', tests: false });
  const yml = path.join(pgProject, 'etl.yml');
  // compile --check creates nothing on the server: the schema is only named.
  writeFileSync(yml, readFileSync(yml, 'utf8').replace(/  dev: \{[^\n]*\}/, `  dev: { type: postgres, url: "${PG_URL}", schema: bench_check }`));
  const files = spawnSync('find', ['models', '-name', '*.sql'], { cwd: pgProject, encoding: 'utf8' }).stdout.trim().split('\n').sort();
  let pgOnly = 0;
  for (let i = 0; i < files.length && pgOnly < MODELS * 0.05; i += 10) {
    const f = path.join(pgProject, files[i]);
    const t = readFileSync(f, 'utf8');
    const u = t.replace(/\n    r0\.created_at\n/, "\n    r0.created_at,\n    to_char(r0.created_at, 'YYYY-MM') as pg_month\n");
    if (u !== t) writeFileSync(f, u), pgOnly++;
  }
  const pgTarget = path.join(pgProject, 'target');
  const runs = [];
  for (let i = 0; i < REPS; i++) {
    rmSync(pgTarget, { recursive: true, force: true });
    const r = etl(pgProject, 'compile', '--check', '--log-format', 'json');
    runs.push({ wall: r.seconds, ...checkStats(r.stdout) });
  }
  const m = runs.sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)];
  const warmPg = checkStats(etl(pgProject, 'compile', '--check', '--log-format', 'json').stdout);
  results.postgres = {
    models: MODELS,
    postgres_only: pgOnly,
    bound_by_duckdb: m.bound,
    bound_on_server_only: MODELS - m.bound,
    cold_compile_check_s: r3(m.wall),
    cold_check_stage_s: r3(m.seconds),
    cold_check_stage_cpu_s: r3(m.cpu_seconds),
    per_model_ms: r3((m.seconds / MODELS) * 1000),
    warm_check_stage_s: r3(warmPg.seconds),
    warm_bound: warmPg.bound,
  };
}

console.error(`load average at end: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log(JSON.stringify(results, null, 2));
mkdirSync(WORK, { recursive: true });
writeFileSync(path.join(WORK, 'check-results.json'), JSON.stringify(results, null, 2));

function readdirFirst(dir) {
  // The model in the middle of the generated order: it has descendants.
  const files = spawnSync('find', ['models', '-name', '*.sql'], { cwd: dir, encoding: 'utf8' }).stdout.trim().split('\n').sort();
  return files[Math.floor(files.length / 2)].replace(/^models\//, '');
}
