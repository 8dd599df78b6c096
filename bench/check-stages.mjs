// Where the time of a cold `etl compile --check` goes, stage by stage, in one
// process (the steps of core/api.ts compile() with check on, each timed: wall
// and the process's CPU, DuckDB's threads included), alternated with a plain
// cold compile (compile + write). target/ is removed before each.
//
//   node bench/check-stages.mjs [dist] [project dir] [rounds]
//
// Defaults: this checkout's dist/, bench/.work/check-10000 (bench/check.mjs
// generates it), 3 rounds. Prints one JSON line of medians.

import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const [dist = path.join(BENCH, '..', 'dist'), project = path.join(BENCH, '.work', 'check-10000'), roundsArg = '3'] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(path.join(dist, p)).href);
const [api, { checkProject }, lineage] = await Promise.all([load('core/api.js'), load('core/analysis/index.js'), load('core/analysis/column-lineage.js')]);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const target = path.join(project, 'target');

function timer() {
  const laps = {};
  let t = performance.now();
  let c = cpu();
  return {
    laps,
    lap(name) {
      const now = performance.now();
      const cc = cpu();
      laps[`${name}_s`] = (now - t) / 1000;
      laps[`${name}_cpu_s`] = cc - c;
      t = now;
      c = cc;
    },
  };
}

async function plain() {
  rmSync(target, { recursive: true, force: true });
  const t = timer();
  const r = await api.compileUnwritten({ projectDir: project });
  void r.manifest;
  t.lap('compile');
  await r.writeArtifacts();
  t.lap('write');
  return t.laps;
}

async function checked() {
  rmSync(target, { recursive: true, force: true });
  const t = timer();
  const r = await api.compileUnwritten({ projectDir: project });
  const manifest = r.manifest;
  t.lap('compile');
  const check = await checkProject(manifest, { target: r.project.target, projectRoot: r.project.root, targetPath: r.project.targetPath });
  if (check.errors.length) throw new Error(`${check.errors.length} check errors`);
  t.lap('check');
  const prefetched = lineage.prefetchLineage?.(manifest, r.project.targetPath);
  await r.writeArtifacts();
  t.lap('write');
  lineage.writeLineageArtifact(r.project.targetPath, await lineage.projectLineage(manifest, check.columns, r.project.targetPath, { prefetched }));
  t.lap('lineage');
  return t.laps;
}

const runs = { plain: [], checked: [] };
const loadStart = os.loadavg()[0];
for (let i = 0; i < Number(roundsArg); i++) {
  runs.plain.push(await plain());
  runs.checked.push(await checked());
}
const r3 = (x) => Math.round(x * 1000) / 1000;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const medians = (list) => Object.fromEntries(Object.keys(list[0]).map((k) => [k, r3(median(list.map((l) => l[k])))]));
const total = (list, suffix) => median(list.map((l) => Object.entries(l).filter(([k]) => k.endsWith(suffix) && (suffix === '_cpu_s' || !k.endsWith('_cpu_s'))).reduce((a, [, v]) => a + v, 0)));
console.log(
  JSON.stringify({
    load: [loadStart, os.loadavg()[0]].map((x) => Math.round(x * 10) / 10),
    plain: { ...medians(runs.plain), total_s: r3(total(runs.plain, '_s')), total_cpu_s: r3(total(runs.plain, '_cpu_s')) },
    check: { ...medians(runs.checked), total_s: r3(total(runs.checked, '_s')), total_cpu_s: r3(total(runs.checked, '_cpu_s')) },
  }),
);
