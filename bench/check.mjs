// Benchmark of static analysis (issue #16): `etl compile --check` on the
// generated 10,000-model project, cold (no target/) against plain `etl
// compile` cold, warm with nothing changed, warm after one model changes
// (a comment: only it re-binds; a new column: it and its descendants do),
// and what the check adds to `etl build` of project-template (warm, against
// `--no-check`). Each figure is the median of N separate processes.
//
//   node bench/check.mjs [--reps N] [--models 10000]

import { spawnSync } from 'node:child_process';
import { cpSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  const r = spawnSync(process.execPath, [CLI, ...args, '--project-dir', dir], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 64 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`etl ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return { seconds, stdout: r.stdout };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r3 = (x) => Math.round(x * 1000) / 1000;
function checkStats(stdout) {
  const line = stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'compiled');
  return line.check;
}

const project = path.join(WORK, `check-${MODELS}`);
generateProject(project, { models: MODELS, kind: 'compile', tests: false });
const target = path.join(project, 'target');
const results = {};

// 1. Cold: plain compile vs compile --check, target/ removed before each.
const cold = { compile: [], check: [], stage: [] };
for (let i = 0; i < REPS; i++) {
  rmSync(target, { recursive: true, force: true });
  cold.compile.push(etl(project, 'compile').seconds);
  rmSync(target, { recursive: true, force: true });
  const r = etl(project, 'compile', '--check', '--log-format', 'json');
  cold.check.push(r.seconds);
  cold.stage.push(checkStats(r.stdout).seconds);
}
results.cold = { compile_s: r3(median(cold.compile)), compile_check_s: r3(median(cold.check)), check_stage_s: r3(median(cold.stage)), per_model_ms: r3((median(cold.stage) / MODELS) * 1000) };

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
results.template_build = { with_check_s: r3(median(withCheck)), no_check_s: r3(median(noCheck)), added_s: r3(median(withCheck) - median(noCheck)), with_check_cold_cache_s: r3(coldCache) };

console.log(JSON.stringify(results, null, 2));
mkdirSync(WORK, { recursive: true });
writeFileSync(path.join(WORK, 'check-results.json'), JSON.stringify(results, null, 2));

function readdirFirst(dir) {
  // The model in the middle of the generated order: it has descendants.
  const files = spawnSync('find', ['models', '-name', '*.sql'], { cwd: dir, encoding: 'utf8' }).stdout.trim().split('\n').sort();
  return files[Math.floor(files.length / 2)].replace(/^models\//, '');
}
