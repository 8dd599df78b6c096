// Cold `etl docs generate` and `etl compile` of the generated 10,000-model
// project (bench/gen.mjs, with column descriptions), with and without 3 tests
// per model, for this build and, alternated in the same run, a base build (a
// copy of another checkout's dist/, e.g. main's). The project gets a
// synthetic catalog.json as in bench/docs.mjs (it is not built).
//
//   node bench/docs-generate.mjs [--base <dir with dist/>] [--rounds 2] [--models 10000]
//
// Each run is one `etl` process, cold: target/'s artifacts are moved aside
// first (deleting tens of thousands of files right before would make the next
// creation slower on this disk). While it runs, /proc/<pid>/task/*/stat is
// read every 20 ms, which gives the CPU time of each thread: the main thread
// (compile, manifest.json), the docs worker, V8's GC helpers, libuv's pool.
// On a shared machine the wall time follows the load; the main thread's CPU
// and the total CPU are the figures to compare, with the load average
// printed beside each run. Results go to bench/.work/docs-generate.json.

import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateProject } from './gen.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const WORK = path.join(BENCH, '.work');
const argv = process.argv.slice(2);
const value = (name, d) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : d;
};
const MODELS = Number(value('--models', 10000));
const ROUNDS = Number(value('--rounds', 2));
const BASE = value('--base');

// Private copies of dist/: a rebuild during the run would change the code measured.
function snapshot(from, name) {
  const to = path.join(WORK, name);
  rmSync(to, { recursive: true, force: true });
  cpSync(path.join(from, 'dist'), path.join(to, 'dist'), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(to, 'package.json'));
  return path.join(to, 'dist', 'bin', 'etl.js');
}
const builds = [['this', snapshot(ROOT, 'snapshot-docs-generate')]];
if (BASE) builds.unshift(['base', snapshot(path.resolve(BASE), 'snapshot-docs-generate-base')]);

const trash = path.join(WORK, 'trash-docs-generate');
rmSync(trash, { recursive: true, force: true });

function project(tests) {
  const dir = path.join(WORK, `docs-generate-${MODELS}${tests ? '' : '-no-tests'}`);
  if (!existsSync(path.join(dir, 'etl.yml'))) generateProject(dir, { models: MODELS, kind: 'compile', tests });
  return dir;
}

/** One cold run of `etl <args>` in dir, with the CPU time of each of its threads. */
function run(cli, dir, args) {
  const target = path.join(dir, 'target');
  const aside = path.join(trash, `${Date.now()}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(aside, { recursive: true });
  for (const p of ['.etl', 'manifest.json', 'compiled', 'docs', 'lineage.json']) if (existsSync(path.join(target, p))) renameSync(path.join(target, p), path.join(aside, p));
  const load = os.loadavg()[0];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, cli, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const threads = new Map();
    let pid;
    const sample = () => {
      // /usr/bin/time's child is node.
      if (!pid) {
        try {
          pid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0]) || undefined;
        } catch {
          return;
        }
        if (!pid) return;
      }
      let tids;
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        return;
      }
      for (const tid of tids) {
        try {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          // utime + stime, in clock ticks (USER_HZ, 100 a second on Linux).
          threads.set(tid, (Number(f[11]) + Number(f[12])) / 100);
        } catch {
          // the thread ended between the listing and the read
        }
      }
    };
    const timer = setInterval(sample, 20);
    child.on('exit', (code) => {
      clearInterval(timer);
      const wall = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`etl ${args.join(' ')} failed (${code}):\n${out}\n${err}`));
      const rssKiB = Number(err.trim().split('\n').pop());
      const cpu = [...threads.values()].reduce((a, b) => a + b, 0);
      resolve({ wall, cpu, main: threads.get(String(pid)) ?? NaN, rss_mib: Math.round(rssKiB / 1024), load: Math.round(load * 10) / 10 });
    });
  });
}

async function ensureCatalog(dir, cli) {
  const file = path.join(dir, 'target', 'catalog.json');
  if (existsSync(file)) return;
  // Types as the engine would give them, for every model and seed (as bench/docs.mjs does).
  return run(cli, dir, ['compile']).then(() => {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'target', 'manifest.json'), 'utf8'));
    const catalog = { metadata: {}, nodes: {}, sources: {} };
    const cols = ['id', 'category', 'amount', 'created_at'];
    for (const n of Object.values(manifest.nodes)) {
      if (n.resource_type === 'test') continue;
      catalog.nodes[n.unique_id] = { columns: Object.fromEntries(cols.map((c, i) => [c, { type: ['INTEGER', 'VARCHAR', 'BIGINT', 'DATE'][i], index: i + 1, name: c, comment: null }])) };
    }
    writeFileSync(file, JSON.stringify(catalog));
  });
}

const shapes = [
  [`${MODELS.toLocaleString('en')} models + 3 tests each`, project(true)],
  [`${MODELS.toLocaleString('en')} models`, project(false)],
];
for (const [, dir] of shapes) await ensureCatalog(dir, builds[builds.length - 1][1]);

const results = [];
const fmt = (x) => x.toFixed(2);
console.log('round | shape | command | build | wall s | CPU s (all threads) | main thread CPU s | peak RSS MiB | load 1m');
for (let r = 1; r <= ROUNDS; r++) {
  for (const [shape, dir] of shapes) {
    for (const args of [['docs', 'generate'], ['compile']]) {
      for (const [build, cli] of builds) {
        const m = await run(cli, dir, args);
        results.push({ round: r, shape, command: args.join(' '), build, ...m });
        console.log(`${r} | ${shape} | ${args.join(' ')} | ${build} | ${fmt(m.wall)} | ${fmt(m.cpu)} | ${fmt(m.main)} | ${m.rss_mib} | ${m.load}`);
      }
    }
  }
}
rmSync(trash, { recursive: true, force: true });

// Medians per shape, command and build, and this build's ratios to the base.
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const summary = {};
for (const row of results) {
  const key = `${row.shape} | ${row.command} | ${row.build}`;
  (summary[key] ??= []).push(row);
}
console.log('\nmedians: shape | command | build | wall s | CPU s | main thread CPU s | peak RSS MiB');
const medians = {};
for (const [key, rows] of Object.entries(summary)) {
  medians[key] = { wall: median(rows.map((x) => x.wall)), cpu: median(rows.map((x) => x.cpu)), main: median(rows.map((x) => x.main)), rss_mib: median(rows.map((x) => x.rss_mib)) };
  const m = medians[key];
  console.log(`${key} | ${fmt(m.wall)} | ${fmt(m.cpu)} | ${fmt(m.main)} | ${m.rss_mib}`);
}
writeFileSync(path.join(WORK, 'docs-generate.json'), JSON.stringify({ models: MODELS, rounds: ROUNDS, base: BASE ?? null, results, medians }, null, 2));
