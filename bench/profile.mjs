// CPU profile of one etl command on a generated project, summarised.
//
//   node bench/profile.mjs [--models 10000] [--tests] [--warm] [--build] [--top 25] [--interval 500]
//
// Runs `node --cpu-prof dist/bin/etl.js compile` (cold: target/ deleted;
// --warm: a second run against an unchanged project; --build: `etl build` of
// the views project, fresh database) and prints, from the .cpuprofile:
//   - self time per function (name, file:line), the hotspots;
//   - inclusive time per function (each sample counted once per function on
//     its stack), to see which stage the time goes to;
//   - self time per file / package.
// Profiles are kept in bench/.work/profiles/ (open them in Chrome DevTools).
// The CLI runs from a copy of dist/ (bench/.work/snapshot-profile/).

import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateProject } from './gen.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const WORK = path.join(BENCH, '.work');
const PROFILES = path.join(WORK, 'profiles');
const argv = process.argv.slice(2);
const value = (name, d) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : d;
};
const models = Number(value('--models', 10000));
const top = Number(value('--top', 25));
const interval = Number(value('--interval', 500)); // microseconds
const warm = argv.includes('--warm');
const build = argv.includes('--build');
const kind = build ? 'views' : 'compile';

// The same project names as bench/run.mjs: compile-N is the issue's shape, compile-N-tests has 3 tests per model.
const tests = argv.includes('--tests');
const dir = path.join(WORK, `${build ? 'views' : 'compile'}-${models}${tests ? '-tests' : ''}`);
if (!existsSync(path.join(dir, 'etl.yml')) || argv.includes('--regen')) generateProject(dir, { models, kind, tests });
const rel = path.relative(ROOT, dir);
// A private copy of dist/: a concurrent rebuild would otherwise change the
// code mid-measurement and invalidate the compile cache (keyed by the build).
const SNAPSHOT = path.join(WORK, 'snapshot-profile');
rmSync(SNAPSHOT, { recursive: true, force: true });
cpSync(path.join(ROOT, 'dist'), path.join(SNAPSHOT, 'dist'), { recursive: true });
copyFileSync(path.join(ROOT, 'package.json'), path.join(SNAPSHOT, 'package.json'));
const cli = path.join(SNAPSHOT, 'dist', 'bin', 'etl.js');
const command = build ? 'build' : 'compile';

if (build) {
  for (const f of ['bench.duckdb', 'bench.duckdb.wal']) rmSync(path.join(dir, 'target', f), { force: true });
} else {
  // Moved aside, deleted after the run: creating files right after deleting
  // tens of thousands is slow on this ext4 and would skew the profile.
  const trash = path.join(WORK, 'trash');
  mkdirSync(trash, { recursive: true });
  if (existsSync(path.join(dir, 'target'))) renameSync(path.join(dir, 'target'), path.join(trash, `profile-${process.pid}`));
  process.on('exit', () => rmSync(trash, { recursive: true, force: true }));
  if (warm) {
    const w = spawnSync(process.execPath, [cli, 'compile', '--project-dir', rel], { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    if (w.status !== 0) throw new Error(`warm-up compile failed:\n${(w.stdout + w.stderr).slice(-2000)}`);
    console.log(`warm-up: ${w.stdout.trim().split('\n').pop()}`);
  }
}

mkdirSync(PROFILES, { recursive: true });
const name = `${command}-${models}${warm ? '-warm' : ''}-${Date.now()}.cpuprofile`;
const t0 = performance.now();
const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`, `--cpu-prof-name=${name}`, `--cpu-prof-interval=${interval}`, cli, command, '--project-dir', rel], {
  cwd: ROOT,
  encoding: 'utf8',
  maxBuffer: 256 * 1024 * 1024,
});
const wall = (performance.now() - t0) / 1000;
if (r.status !== 0) {
  console.error(r.stdout.slice(-2000), r.stderr.slice(-2000));
  process.exit(1);
}
console.log(`${command} ${models} models${warm ? ' (warm)' : ''}: ${wall.toFixed(2)}s wall under the profiler; ${r.stdout.trim().split('\n').pop()}`);

const file = path.join(PROFILES, name);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per sample: the deltas (µs) between consecutive samples.
const selfUs = new Map(); // node id -> µs
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
}
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);

const shortUrl = (url) => {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm);
  if (u.startsWith(SNAPSHOT)) return u.slice(SNAPSHOT.length + 1);
  if (u.startsWith(ROOT)) return u.slice(ROOT.length + 1);
  return u;
};
const keyOf = (n) => {
  const cf = n.callFrame;
  const fn = cf.functionName || '(anonymous)';
  return `${fn}\t${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
};
const fileOf = (n) => {
  const u = shortUrl(n.callFrame.url);
  if (!u) return n.callFrame.functionName || '(native)';
  if (u.startsWith('node_modules/')) {
    const parts = u.split('/');
    return parts[1].startsWith('@') ? `${parts[0]}/${parts[1]}/${parts[2]}` : `${parts[0]}/${parts[1]}`;
  }
  if (u.startsWith('node:')) return 'node: internals';
  return u;
};

const selfByFn = new Map();
const selfByFile = new Map();
const inclByFn = new Map();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  const k = keyOf(n);
  selfByFn.set(k, (selfByFn.get(k) ?? 0) + us);
  const f = fileOf(n);
  selfByFile.set(f, (selfByFile.get(f) ?? 0) + us);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const ck = keyOf(byId.get(cur));
    if (seen.has(ck)) continue;
    seen.add(ck);
    inclByFn.set(ck, (inclByFn.get(ck) ?? 0) + us);
  }
}

const ms = (us) => (us / 1000).toFixed(0).padStart(7);
const pct = (us) => `${((100 * us) / totalUs).toFixed(1).padStart(5)}%`;
const print = (title, map, n, filter = () => true) => {
  console.log(`\n${title}`);
  const rows = [...map].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]).slice(0, n);
  for (const [k, us] of rows) {
    const [fn, where] = k.split('\t');
    console.log(`${ms(us)} ms ${pct(us)}  ${fn}${where ? `  ${where}` : ''}`);
  }
  return rows;
};
console.log(`profile: ${path.relative(ROOT, file)}; ${(totalUs / 1000).toFixed(0)} ms sampled every ${interval} µs`);
const selfRows = print(`top ${top} by self time`, selfByFn, top);
const inclRows = print('inclusive time of etl functions (dist/)', inclByFn, top, (k) => k.includes('\tdist/'));
const fileRows = print('self time by file / package', selfByFile, 20);
writeFileSync(
  file.replace(/\.cpuprofile$/, '.summary.json'),
  JSON.stringify({ command, models, warm, wall_s: wall, sampled_ms: totalUs / 1000, self: selfRows, inclusive: inclRows, files: fileRows }, null, 2),
);
