// Benchmarks for etl (see BENCHMARKS.md). Run through `npm run bench`, which
// builds dist/ first.
//
//   node bench/run.mjs [--quick] [--reps N] [--sizes 1000,10000] [--no-compile] [--no-build]
//
// 1. compile: generated projects of 1,000 and 10,000 models; `etl compile`
//    timed as a whole process, cold (target/ deleted) and warm (run again,
//    nothing changed: must hit the compile cache). Wall time and peak RSS.
// 2. build: a generated project of 1,000 view models; `etl build` (fresh
//    DuckDB file, compile cache warm) against bench/raw-duckdb.mjs running the
//    same statements, read from the compiled manifest, on one connection.
//
// Each measurement is a separate process; the median of N runs is reported
// (N = 3, or 1 with --quick, which also does only the 1k project). Prints a
// table and writes bench/.work/results.json. Generated projects and logs go
// to bench/.work/ (gitignored).

import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateProject } from './gen.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const WORK = path.join(BENCH, '.work');
const LOGS = path.join(WORK, 'logs');
const DIST = path.join(ROOT, 'dist');
// The CLI is run from a copy of dist/ taken at the start: other people
// rebuild dist/ while this runs, and a rebuild both changes the code under
// measurement and invalidates the compile cache (its key includes the build).
const SNAPSHOT = path.join(WORK, 'snapshot');
const CLI = path.join(SNAPSHOT, 'dist', 'bin', 'etl.js'); // the bundled `etl` command (package.json bin)
const RAW = path.join(BENCH, 'raw-duckdb.mjs');
const PRELOAD = path.join(BENCH, 'maxrss-preload.mjs');
const TIME = '/usr/bin/time';

// ---- options -------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const value = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
if (flag('--help') || flag('-h')) {
  console.log('usage: node bench/run.mjs [--quick] [--reps N] [--sizes 1000,10000] [--no-compile] [--no-build]');
  process.exit(0);
}
const quick = flag('--quick');
const reps = Number(value('--reps') ?? (quick ? 1 : 3));
const sizes = (value('--sizes') ?? (quick ? '1000' : '1000,10000')).split(',').map(Number);
const doCompile = !flag('--no-compile');
const doBuild = !flag('--no-build');
const BUILD_MODELS = 1000;

if (!existsSync(path.join(DIST, 'bin', 'etl.js'))) {
  console.error('dist/bin/etl.js is missing: run `npm run bench` (or npm run build) first');
  process.exit(2);
}
rmSync(SNAPSHOT, { recursive: true, force: true });
cpSync(DIST, path.join(SNAPSHOT, 'dist'), { recursive: true });
// package.json: "type": "module", and the version etl reports.
copyFileSync(path.join(ROOT, 'package.json'), path.join(SNAPSHOT, 'package.json'));
rmSync(LOGS, { recursive: true, force: true });

// ---- measuring a process -------------------------------------------------

// GNU time if present (no install: it is checked, not assumed); otherwise a
// preload that reports process.resourceUsage().maxRSS of the child at exit.
const haveTime = !process.env.BENCH_NO_GNU_TIME && spawnSync(TIME, ['-f', '%e %M %U %S', 'true'], { encoding: 'utf8' }).status === 0;
const rssMethod = haveTime ? `${TIME} -f '%e %M %U %S' (GNU time: ru_maxrss of the child)` : `node --import bench/maxrss-preload.mjs (process.resourceUsage().maxRSS at exit)`;

// Other people share this machine (compilers, test runs). Before each
// measurement, wait (up to QUIET_WAIT_S) until the CPUs are mostly idle, and
// record how busy they were, so noisy runs can be told apart.
const QUIET_WAIT_S = Number(value('--quiet-wait') ?? 30);
const QUIET_BUSY = 0.25;
function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  return { idle, total: f.reduce((a, b) => a + b, 0) };
}
function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
function busyFraction(ms) {
  const a = cpuTimes();
  sleepMs(ms);
  const b = cpuTimes();
  return b.total === a.total ? 0 : 1 - (b.idle - a.idle) / (b.total - a.total);
}
function waitForQuiet() {
  if (!existsSync('/proc/stat')) return null;
  const deadline = Date.now() + QUIET_WAIT_S * 1000;
  let busy = busyFraction(300);
  while (busy > QUIET_BUSY && Date.now() < deadline) busy = busyFraction(1000);
  return round(busy, 2);
}

// Busy fraction of the machine during a run that was not the child's own CPU
// time: other people's work. A run with more than MAX_OTHERS of it is redone
// (up to RETRIES times); the figure is kept with every run either way.
const MAX_OTHERS = Number(value('--max-others') ?? 0.2);
const RETRIES = Number(value('--retries') ?? 2);
const NCPU = os.cpus().length;
const USER_HZ = 100;

let runCounter = 0;
/**
 * Runs `node <args>` as a child process (after `setup()`); returns wall
 * seconds (measured here, around the spawn), CPU seconds and peak RSS of the
 * child. Output goes to a log file under bench/.work/logs/.
 */
function measureNode(label, nodeArgs, { expect, setup } = {}) {
  let last;
  let discarded = 0;
  for (let attempt = 0; attempt <= RETRIES; attempt++) {
    setup?.();
    last = runOnce(label, nodeArgs, expect);
    if (last.others_busy === null || last.others_busy <= MAX_OTHERS || attempt === RETRIES) break;
    discarded++;
    console.log(`    (${label}: ${Math.round(last.others_busy * 100)}% of the machine busy with other work during the run; measuring again)`);
  }
  return { ...last, discarded };
}

function runOnce(label, nodeArgs, expect) {
  mkdirSync(LOGS, { recursive: true });
  const id = `${String(++runCounter).padStart(3, '0')}-${label.replace(/[^a-z0-9]+/gi, '-')}`;
  const logFile = path.join(LOGS, `${id}.log`);
  const statFile = path.join(LOGS, `${id}.stat`);
  rmSync(statFile, { force: true });
  let cmd;
  let args;
  const env = { ...process.env, NO_COLOR: '1' };
  if (haveTime) {
    cmd = TIME;
    args = ['-f', '%e %M %U %S', '-o', statFile, process.execPath, ...nodeArgs];
  } else {
    cmd = process.execPath;
    args = ['--import', PRELOAD, ...nodeArgs];
    env.BENCH_RSS_FILE = statFile;
  }
  const busyBefore = waitForQuiet();
  const s0 = existsSync('/proc/stat') ? cpuTimes() : null;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const s1 = s0 ? cpuTimes() : null;
  const output = `$ node ${nodeArgs.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`;
  writeFileSync(logFile, output);
  if (r.status !== 0) {
    const tail = output.split('\n').slice(-15).join('\n');
    throw new Error(`${label}: exit ${r.status ?? r.signal}; log ${path.relative(ROOT, logFile)}\n${tail}`);
  }
  if (expect && !expect.test(output)) {
    throw new Error(`${label}: output does not match ${expect}; log ${path.relative(ROOT, logFile)}`);
  }
  let rssKiB = null;
  let cpu = null;
  let sysS = null;
  if (existsSync(statFile)) {
    const fields = readFileSync(statFile, 'utf8').trim().split('\n').pop().split(/\s+/).map(Number);
    // GNU time: "%e %M %U %S"; the preload: "maxRSS user system".
    const [rss, user, sys] = haveTime ? fields.slice(1) : fields;
    rssKiB = rss;
    if (Number.isFinite(user) && Number.isFinite(sys)) {
      cpu = round(user + sys, 2);
      sysS = round(sys, 2);
    }
  }
  let others = null;
  if (s0 && s1 && cpu !== null) {
    const busySeconds = (s1.total - s0.total - (s1.idle - s0.idle)) / USER_HZ;
    others = round(Math.max(0, (busySeconds - cpu) / (wall * NCPU)), 2);
  }
  return {
    wall_s: round(wall, 3),
    cpu_s: cpu,
    sys_s: sysS,
    rss_mib: rssKiB === null ? null : round(rssKiB / 1024, 1),
    busy_before: busyBefore,
    others_busy: others,
    log: path.relative(ROOT, logFile),
    stdout: r.stdout,
  };
}

const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const summarize = (runs) => ({ median_wall_s: median(runs.map((r) => r.wall_s)), median_rss_mib: median(runs.map((r) => r.rss_mib)), median_cpu_s: median(runs.map((r) => r.cpu_s)), median_sys_s: median(runs.map((r) => r.sys_s)), runs: runs.map(({ stdout, ...r }) => r) });
const show = (r) => `${r.wall_s}s wall ${r.cpu_s ?? '?'}s cpu (${r.sys_s ?? '?'} sys) ${r.rss_mib} MiB${r.others_busy ? ` [others ${Math.round(r.others_busy * 100)}%]` : ''}`;
// "Cold" means no target/. It is moved aside, not deleted: on the machine
// this was written on (ext4 on a VM disk), creating files is slow and
// erratic, and was much slower right after deleting a previous 40k-file
// target/ (kernel time grew by ~7 s per 10k-model cold run when target/ was
// deleted between runs). Deleting between runs would measure the filesystem's
// housekeeping, not etl. The moved-aside trees are deleted before and after
// the whole benchmark.
const TRASH = path.join(WORK, 'trash');
let trashCounter = 0;
const moveAside = (p) => {
  if (!existsSync(p)) return;
  mkdirSync(TRASH, { recursive: true });
  renameSync(p, path.join(TRASH, `${process.pid}-${++trashCounter}`));
};
const rmTarget = (dir) => moveAside(path.join(dir, 'target'));
/** A fresh generated project (the old one, with its target/, goes to the trash first). */
const freshProject = (dir, options) => {
  moveAside(dir);
  return generateProject(dir, options);
};
const rmDb = (file) => {
  for (const f of [file, `${file}.wal`]) rmSync(f, { force: true });
};
const sh = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout?.trim() ?? null;

// ---- the benchmarks ------------------------------------------------------

const machine = {
  nproc: Number(sh('nproc', [])),
  node: sh(process.execPath, ['-e', 'console.log(process.version)']),
  cpu: os.cpus()[0]?.model ?? 'unknown',
  mem_gib: round(os.totalmem() / 2 ** 30, 1),
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
  dirty: Boolean(sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'cli', 'core', 'adapters'])),
};
console.log(`etl benchmarks: ${machine.nproc} cpus (${machine.cpu}), node ${machine.node}, ${reps} run(s) each, median reported`);
console.log(`peak RSS via ${rssMethod}\n`);

const results = {
  generated_at: new Date().toISOString(),
  quick,
  reps,
  machine,
  method: {
    rss: rssMethod,
    wall: 'hrtime around spawnSync of the whole process (node startup included)',
    cli: 'a copy of dist/ taken at the start (bench/.work/snapshot)',
    noise: `each run waits for the CPUs to be < ${QUIET_BUSY * 100}% busy (up to ${QUIET_WAIT_S}s) and is redone (up to ${RETRIES}x) when other processes used > ${MAX_OTHERS * 100}% of the machine during it`,
  },
  compile: [],
  build: null,
  targets: [],
};

// Old projects and moved-aside targets are deleted now, before anything is
// timed; an untimed warm-up run after each generation absorbs what is left of
// the slow-create effect (and loads the project files into the page cache:
// "cold" is about etl's target/, not the OS's caches).
for (const name of existsSync(WORK) ? readdirSync(WORK) : []) {
  if (/^(compile|views)-\d+(-tests)?$/.test(name)) moveAside(path.join(WORK, name));
}
rmSync(TRASH, { recursive: true, force: true });
const warmUp = (nodeArgs) => {
  const r = spawnSync(process.execPath, nodeArgs, { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`warm-up ${nodeArgs.join(' ')}: exit ${r.status}\n${(r.stdout + r.stderr).slice(-2000)}`);
};

// Two shapes per size: the foundation issue's (each model refs 1-3 earlier
// ones and has a yml entry), on which the targets are judged, and the same
// project with 3 generic tests per model (4x the nodes), reported alongside.
const SHAPES = [
  { suffix: '', tests: false, label: 'models' },
  { suffix: '-tests', tests: true, label: 'models + 3 tests each' },
];
if (doCompile) {
  for (const n of sizes) {
    for (const variant of SHAPES) {
      const dir = path.join(WORK, `compile-${n}${variant.suffix}`);
      const shape = freshProject(dir, { models: n, kind: 'compile', tests: variant.tests });
      const rel = path.relative(ROOT, dir);
      const name = `compile-${n}${variant.suffix}`;
      warmUp([CLI, 'compile', '--project-dir', rel]);
      const cold = [];
      const warm = [];
      for (let i = 0; i < reps; i++) {
        const c = measureNode(`${name}-cold`, [CLI, 'compile', '--project-dir', rel], { expect: /Compiled \d+ nodes/, setup: () => rmTarget(dir) });
        if (/from cache/.test(c.stdout)) throw new Error(`${name}-cold: hit the cache with target/ deleted`);
        cold.push(c);
        const w = measureNode(`${name}-warm`, [CLI, 'compile', '--project-dir', rel], { expect: /Compiled \d+ nodes/ });
        w.cache_hit = /from cache/.test(w.stdout);
        warm.push(w);
        console.log(`  compile ${n} ${variant.label}: cold ${show(c)}; warm ${show(w)}${w.cache_hit ? '' : ' (cache MISS)'}`);
      }
      const nodes = Number(/Compiled (\d+) nodes/.exec(cold[0].stdout)?.[1]);
      results.compile.push({ models: n, tests: variant.tests, label: variant.label, nodes, project: rel, shape, cold: summarize(cold), warm: { ...summarize(warm), cache_hit: warm.every((w) => w.cache_hit) } });
    }
  }
}

if (doBuild) {
  const n = BUILD_MODELS;
  const dir = path.join(WORK, `views-${n}`);
  const rel = path.relative(ROOT, dir);
  const shape = freshProject(dir, { models: n, kind: 'views' });
  // The compiled statements for the raw baseline, from etl's own manifest.
  warmUp([CLI, 'compile', '--project-dir', rel]);
  warmUp([CLI, 'build', '--project-dir', rel]);
  const manifestCopy = path.join(WORK, `views-${n}.manifest.json`);
  copyFileSync(path.join(dir, 'target', 'manifest.json'), manifestCopy);
  const etlDb = path.join(dir, 'target', 'bench.duckdb');
  const rawDb = path.join(WORK, `raw-${n}.duckdb`);
  const nodes = n + shape.seeds;
  const ok = new RegExp(`${nodes} succeeded, 0 failed`);
  const etl = [];
  const etl1 = [];
  const etlCold = [];
  const etlColdNoCheck = [];
  const raw = [];
  for (let i = 0; i < reps; i++) {
    const e = measureNode(`build-${n}-etl`, [CLI, 'build', '--project-dir', rel], { expect: ok, setup: () => rmDb(etlDb) });
    etl.push(e);
    const e1 = measureNode(`build-${n}-etl-threads1`, [CLI, 'build', '--threads', '1', '--project-dir', rel], { expect: ok, setup: () => rmDb(etlDb) });
    etl1.push(e1);
    const ec = measureNode(`build-${n}-etl-cold`, [CLI, 'build', '--project-dir', rel], { expect: ok, setup: () => rmTarget(dir) });
    etlCold.push(ec);
    // What the check stage (core/analysis) adds to a cold build.
    const en = measureNode(`build-${n}-etl-cold-no-check`, [CLI, 'build', '--no-check', '--project-dir', rel], { expect: ok, setup: () => rmTarget(dir) });
    etlColdNoCheck.push(en);
    const r = measureNode(`build-${n}-raw`, [RAW, manifestCopy, rawDb], { expect: /"statements"/, setup: () => rmDb(rawDb) });
    r.inner = JSON.parse(r.stdout.trim().split('\n').pop());
    raw.push(r);
    console.log(`  build ${n} views: etl ${show(e)}; etl --threads 1 ${show(e1)}; etl cold ${show(ec)}; etl cold --no-check ${show(en)}; raw ${show(r)}`);
  }
  // Both databases must hold the same views.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const count = async (file) => {
    const inst = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
    const con = await inst.connect();
    const reader = await con.runAndReadAll("select (select count(*) from duckdb_views() where not internal), (select count(*) from duckdb_tables() where schema_name = 'main')");
    const [views, tables] = reader.getRows()[0].map(Number);
    con.closeSync();
    inst.closeSync();
    return { views, tables };
  };
  const check = { etl: await count(etlDb), raw: await count(rawDb) };
  if (check.etl.views !== n || check.raw.views !== n) throw new Error(`view counts differ from ${n}: ${JSON.stringify(check)}`);
  const sEtl = summarize(etl);
  const sRaw = summarize(raw);
  results.build = {
    models: n,
    project: rel,
    shape,
    check,
    etl: { ...sEtl, note: 'etl build, target threads (default 4), fresh DuckDB file, compile cache warm' },
    etl_threads1: { ...summarize(etl1), note: 'etl build --threads 1 (one connection, like the baseline)' },
    etl_cold: { ...summarize(etlCold), note: 'etl build with target/ deleted: compile included' },
    etl_cold_no_check: { ...summarize(etlColdNoCheck), note: 'the same with --no-check: what the check stage adds' },
    raw: { ...sRaw, median_execute_s: median(raw.map((r) => r.inner.execute_s)), runs: raw.map(({ stdout, ...r }) => r), note: 'bench/raw-duckdb.mjs: same statements, one connection, one process' },
    ratio: round(sEtl.median_wall_s / sRaw.median_wall_s, 2),
    ratio_threads1: round(median(etl1.map((r) => r.wall_s)) / sRaw.median_wall_s, 2),
    ratio_cold: round(median(etlCold.map((r) => r.wall_s)) / sRaw.median_wall_s, 2),
    ratio_cold_no_check: round(median(etlColdNoCheck.map((r) => r.wall_s)) / sRaw.median_wall_s, 2),
  };
}

// ---- targets and report --------------------------------------------------

const c10k = results.compile.find((c) => c.models === 10000 && !c.tests);
if (c10k) {
  results.targets.push(
    { name: '10k compile cold wall', value: c10k.cold.median_wall_s, unit: 's', target: 3, met: c10k.cold.median_wall_s < 3 },
    { name: '10k compile cold peak RSS', value: c10k.cold.median_rss_mib, unit: 'MiB', target: 1024, met: c10k.cold.median_rss_mib !== null && c10k.cold.median_rss_mib < 1024 },
    { name: '10k compile warm wall', value: c10k.warm.median_wall_s, unit: 's', target: 1, met: c10k.warm.median_wall_s < 1 && c10k.warm.cache_hit },
  );
}
if (results.build) results.targets.push({ name: '1k views build etl/raw', value: results.build.ratio, unit: 'x', target: 1.5, met: results.build.ratio < 1.5 });

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
const fmt = (x, d = 2) => (x === null || x === undefined ? 'n/a' : x.toFixed(d));
const rows = [];
for (const c of results.compile) {
  rows.push([`compile ${c.models} ${c.label} (${c.nodes} nodes), cold`, fmt(c.cold.median_wall_s), fmt(c.cold.median_cpu_s), fmt(c.cold.median_sys_s), fmt(c.cold.median_rss_mib, 0), '']);
  rows.push([`compile ${c.models} ${c.label}, warm${c.warm.cache_hit ? '' : ' (NO cache hit)'}`, fmt(c.warm.median_wall_s), fmt(c.warm.median_cpu_s), fmt(c.warm.median_sys_s), fmt(c.warm.median_rss_mib, 0), '']);
}
if (results.build) {
  const b = results.build;
  rows.push([`build ${b.models} views, raw DuckDB`, fmt(b.raw.median_wall_s), fmt(b.raw.median_cpu_s), fmt(b.raw.median_sys_s), fmt(b.raw.median_rss_mib, 0), '1.00x']);
  rows.push([`build ${b.models} views, etl`, fmt(b.etl.median_wall_s), fmt(b.etl.median_cpu_s), fmt(b.etl.median_sys_s), fmt(b.etl.median_rss_mib, 0), `${fmt(b.ratio)}x`]);
  rows.push([`build ${b.models} views, etl --threads 1`, fmt(b.etl_threads1.median_wall_s), fmt(b.etl_threads1.median_cpu_s), fmt(b.etl_threads1.median_sys_s), fmt(b.etl_threads1.median_rss_mib, 0), `${fmt(b.ratio_threads1)}x`]);
  rows.push([`build ${b.models} views, etl, cold target/`, fmt(b.etl_cold.median_wall_s), fmt(b.etl_cold.median_cpu_s), fmt(b.etl_cold.median_sys_s), fmt(b.etl_cold.median_rss_mib, 0), `${fmt(b.ratio_cold)}x`]);
  rows.push([`build ${b.models} views, etl, cold target/, --no-check`, fmt(b.etl_cold_no_check.median_wall_s), fmt(b.etl_cold_no_check.median_cpu_s), fmt(b.etl_cold_no_check.median_sys_s), fmt(b.etl_cold_no_check.median_rss_mib, 0), `${fmt(b.ratio_cold_no_check)}x`]);
}
console.log(`\n${table(['benchmark (median of ' + reps + ')', 'wall s', 'cpu s', 'of it sys', 'peak RSS MiB', 'wall vs raw'], rows)}`);
if (results.targets.length) {
  console.log(`\n${table(['target', 'measured', 'goal', 'met'], results.targets.map((t) => [t.name, `${fmt(t.value)} ${t.unit}`, `< ${t.target} ${t.unit}`, t.met ? 'yes' : 'NO']))}`);
}
mkdirSync(WORK, { recursive: true });
writeFileSync(path.join(WORK, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
// Kept too, so a --quick run does not lose the figures of the last full one.
mkdirSync(path.join(WORK, 'history'), { recursive: true });
writeFileSync(path.join(WORK, 'history', `results-${results.generated_at.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`), `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nwrote ${path.relative(process.cwd(), path.join(WORK, 'results.json'))}`);
rmSync(TRASH, { recursive: true, force: true });
