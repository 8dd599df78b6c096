// Planning with many data tests: a project of 2,000 models carrying 10,000
// generic tests, compiled cold and planned (the graph with test edges) as
// `etl build` does, in a fresh process; then the same with 1, 5 and 20 tests
// per model, planned and built on DuckDB, to show the scheduler's cost per
// node does not grow with the number of tests per model.
//
//   node bench/plan.mjs

import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const cli = path.join(root, 'dist', 'bin', 'etl.js');
const work = path.join(here, '.work', 'plan');

/** models, each refs 1-2 earlier ones, with `testsPerModel` generic tests in yml. */
function generate(dir, models, testsPerModel) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  mkdirSync(path.join(dir, 'seeds'), { recursive: true });
  writeFileSync(path.join(dir, 'etl.yml'), `name: bench_plan\ntargets:\n  dev: { type: duckdb, path: target/plan.duckdb, schema: main, threads: 4 }\n`);
  writeFileSync(path.join(dir, 'seeds', 'base.csv'), `id,k,amount\n${Array.from({ length: 50 }, (_, i) => `${i + 1},${i % 4},${i * 3}`).join('\n')}\n`);
  const yml = ['models:'];
  for (let i = 0; i < models; i++) {
    const name = `m_${String(i).padStart(5, '0')}`;
    const parent = i === 0 ? 'base' : `m_${String(Math.floor(i / 2)).padStart(5, '0')}`;
    writeFileSync(path.join(dir, 'models', `${name}.sql`), `select id, k, amount + ${i} as amount from {{ref "${parent}"}}\n`);
    const tests = [];
    const kinds = ['unique', 'not_null', '{ accepted_values: { values: [0, 1, 2, 3] } }', '{ expression_is_true: { expression: ">= 0" } }'];
    for (let t = 0; t < testsPerModel; t++) {
      const column = ['id', 'k', 'amount'][t % 3];
      const kind = column === 'k' && t % 2 === 0 ? kinds[2] : column === 'amount' ? kinds[3] : kinds[t % 2];
      tests.push({ column, kind, name: `t${t}_${name}` });
    }
    yml.push(`  - name: ${name}`, '    columns:');
    for (const column of ['id', 'k', 'amount']) {
      const mine = tests.filter((t) => t.column === column);
      if (!mine.length) continue;
      yml.push(`      - name: ${column}`, '        tests:');
      for (const t of mine) {
        const kind = t.kind.startsWith('{') ? t.kind.slice(1, -1).trim() : `${t.kind}: {}`;
        const [testName, args] = [kind.slice(0, kind.indexOf(':')), kind.slice(kind.indexOf(':') + 1).trim()];
        const inner = args === '{}' ? '' : args.slice(1, -1).trim();
        yml.push(`          - ${testName}: { ${inner ? `${inner}, ` : ''}name: ${t.name} }`);
      }
    }
  }
  writeFileSync(path.join(dir, 'models', 'schema.yml'), `${yml.join('\n')}\n`);
}

/** Compile cold and plan like `etl build`, in a fresh process; prints JSON timings. */
function planInProcess(dir) {
  const script = `
    const t0 = performance.now();
    const api = await import(${JSON.stringify(path.join(root, 'dist', 'core', 'api.js'))});
    const { planRun } = await import(${JSON.stringify(path.join(root, 'dist', 'core', 'plan', 'plan.js'))});
    const t1 = performance.now();
    const { manifest, project } = await api.compile({ projectDir: ${JSON.stringify(dir)}, noCache: true });
    const t2 = performance.now();
    const { selected } = api.selectFromManifest(manifest, project.targetPath, {});
    const plan = planRun(manifest, selected, new Set(['seed', 'model', 'snapshot', 'test']));
    const t3 = performance.now();
    const tests = plan.ids.filter((id) => id.startsWith('test.')).length;
    console.log(JSON.stringify({ load_s: (t1 - t0) / 1000, compile_s: (t2 - t1) / 1000, plan_s: (t3 - t2) / 1000, nodes: plan.ids.length, tests }));
  `;
  const t0 = performance.now();
  const r = spawnSync('node', ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return { ...JSON.parse(r.stdout), process_s: (performance.now() - t0) / 1000 };
}

function build(dir) {
  rmSync(path.join(dir, 'target', 'plan.duckdb'), { force: true });
  const t0 = performance.now();
  const r = spawnSync('node', [cli, 'build', '--project-dir', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${r.stdout}\n${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { big: null, per_model: [] };

const big = path.join(work, 'p2000x5');
generate(big, 2000, 5);
const runs = [planInProcess(big), planInProcess(big), planInProcess(big)];
results.big = { ...runs[0], process_s: median(runs.map((r) => r.process_s)), compile_s: median(runs.map((r) => r.compile_s)), plan_s: median(runs.map((r) => r.plan_s)) };
console.log(`2,000 models + ${results.big.tests} tests: compile+plan ${results.big.process_s.toFixed(2)} s as a process (compile ${results.big.compile_s.toFixed(2)} s, plan ${results.big.plan_s.toFixed(3)} s)`);

for (const perModel of [1, 5, 20]) {
  const dir = path.join(work, `p200x${perModel}`);
  generate(dir, 200, perModel);
  const planned = planInProcess(dir);
  spawnSync('node', [cli, 'compile', '--project-dir', dir]);
  const built = median([build(dir), build(dir), build(dir)]);
  const nodes = planned.nodes;
  results.per_model.push({ tests_per_model: perModel, nodes, plan_s: planned.plan_s, build_s: built, ms_per_node: (built * 1000) / nodes });
  console.log(`200 models x ${perModel} tests: ${nodes} nodes, plan ${(planned.plan_s * 1000).toFixed(1)} ms, build ${built.toFixed(2)} s, ${((built * 1000) / nodes).toFixed(2)} ms per node`);
}
mkdirSync(path.join(here, '.work'), { recursive: true });
writeFileSync(path.join(here, '.work', 'plan.json'), JSON.stringify(results, null, 2));
