// What configuring alerts (etl.yml alerts:, a model sla:) adds to a run
// (BENCHMARKS.md "Schedules and alerts (#14)"):
//   1. `etl build` of project-template (warm compile cache, a fresh DuckDB file each run);
//   2. an empty run: `etl build` of a project with no models.
// Each without alerts (the baseline, same build, same run) and with alerts on
// every event (a webhook to a local receiver that answers 200, a command
// sink, an sla on every model); nothing fails, so nothing is delivered: the
// figure is the cost of the configuration and of checking the results.
// With --base-cli PATH (another build's dist/bin/etl.js) the same runs of
// that build are measured too.
//
//   node bench/alerts.mjs [--reps N (5)] [--base-cli ../base/dist/bin/etl.js]

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const WORK = path.join(BENCH, '.work', 'alerts');
const argv = process.argv.slice(2);
const value = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const reps = Number(value('--reps') ?? 5);
const baseCli = value('--base-cli');
const CLI = path.join(WORK, 'snapshot', 'dist', 'bin', 'etl.js');
if (!existsSync(path.join(ROOT, 'dist', 'bin', 'etl.js'))) {
  console.error('dist/bin/etl.js is missing: run npm run build first');
  process.exit(2);
}
rmSync(WORK, { recursive: true, force: true });
// A copy of dist/: others may rebuild it while this runs.
cpSync(path.join(ROOT, 'dist'), path.join(WORK, 'snapshot', 'dist'), { recursive: true });
cpSync(path.join(ROOT, 'package.json'), path.join(WORK, 'snapshot', 'package.json'));

// A receiver that is never called when nothing fails; there so the URL is real.
const server = http.createServer((req, res) => req.resume().on('end', () => res.end('ok')));
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/hook`;
const ALERTS = `alerts:
  - name: ops
    on: [failure, sla_breach, test_fail, test_warn, freshness_error, cost_spike]
    webhook: { url: "${url}", headers: { Authorization: "Bearer {{env_var 'ETL_ENV_SECRET_BENCH' 'x'}}" }, format: slack }
  - name: script
    on: [failure, test_fail]
    command: "cat > /dev/null"
`;

function makeProject(name, withAlerts, empty) {
  const dir = path.join(WORK, name);
  if (empty) {
    mkdirSync(path.join(dir, 'models'), { recursive: true });
    writeFileSync(path.join(dir, 'etl.yml'), 'name: empty\nversion: 1\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb }\n');
  } else {
    cpSync(path.join(ROOT, 'project-template'), dir, { recursive: true, filter: (p) => !/[\\/]target([\\/]|$)/.test(path.relative(ROOT, p)) });
  }
  if (withAlerts) {
    // An sla on every model (folder default), far from breached.
    const yml = `${path.join(dir, 'etl.yml')}`;
    const text = spawnSync('cat', [yml], { encoding: 'utf8' }).stdout;
    writeFileSync(yml, `${text.replace(/^models:\n/m, 'models:\n  sla: 24h\n')}${empty ? 'models: { sla: 24h }\n' : ''}${ALERTS}`);
  }
  return dir;
}

const PRELOAD = path.join(BENCH, 'maxrss-preload.mjs');
const RSS_FILE = path.join(WORK, 'usage.txt');

/** One `etl build` in its own process: wall ms, and CPU ms (user + system, from getrusage at exit: less disturbed by other load). */
function timeBuild(cli, dir) {
  rmSync(path.join(dir, 'target', 'dev.duckdb'), { force: true });
  rmSync(path.join(dir, 'target', 'dev.duckdb.wal'), { force: true });
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--import', PRELOAD, cli, 'build', '--project-dir', dir], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', BENCH_RSS_FILE: RSS_FILE } });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`etl build failed in ${dir}:\n${r.stdout}\n${r.stderr}`);
  const [, user, sys] = readFileSync(RSS_FILE, 'utf8').split(' ').map(Number);
  return { wall, cpu: (user + sys) * 1000 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cases = [
  ['project-template', false],
  ['empty run', true],
];
const rows = [];
for (const [label, empty] of cases) {
  const plain = makeProject(`${label}-plain`.replace(/\s/g, '-'), false, empty);
  const alerted = makeProject(`${label}-alerts`.replace(/\s/g, '-'), true, empty);
  const clis = [['this build, no alerts', CLI, plain], ['this build, alerts', CLI, alerted]];
  if (baseCli) clis.unshift(['base build', path.resolve(baseCli), plain]);
  for (const [, cli, dir] of clis) timeBuild(cli, dir); // warm: compile cache, OS caches
  const times = Object.fromEntries(clis.map(([name]) => [name, { wall: [], cpu: [] }]));
  // Interleaved, so a burst of load on the shared machine hits all alike.
  for (let i = 0; i < reps; i++) {
    for (const [name, cli, dir] of clis) {
      const t = timeBuild(cli, dir);
      times[name].wall.push(t.wall);
      times[name].cpu.push(t.cpu);
    }
  }
  const base = { wall: median(times['this build, no alerts'].wall), cpu: median(times['this build, no alerts'].cpu) };
  const delta = (m, b) => `${m - b >= 0 ? '+' : ''}${(m - b).toFixed(1)} ms (${((m / b - 1) * 100).toFixed(1)}%)`;
  for (const [name] of clis) {
    const wall = median(times[name].wall);
    const cpu = median(times[name].cpu);
    rows.push({ case: label, variant: name, wall_ms: Math.round(wall), wall_vs_no_alerts: delta(wall, base.wall), cpu_ms: Math.round(cpu), cpu_vs_no_alerts: delta(cpu, base.cpu) });
  }
}
server.close();
console.table(rows);
console.log(`median of ${reps} runs each; load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
writeFileSync(path.join(WORK, 'results.json'), JSON.stringify({ reps, rows, loadavg: os.loadavg() }, null, 2));
