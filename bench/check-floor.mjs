// The engine floor of the check stage (issue #16): in one process, the cold
// check of a compiled project (checkManifest, bound-schema cache off)
// alternated with DuckDB alone binding the very statements the check sends
// (each model's compiled SQL with its inputs inlined as empty typed CTEs, or
// CTEs reading an empty table for column lists many models read),
// described 200 per statement on as many in-memory databases as the binder
// uses (the parallel floor), and on one database, one statement after
// another (the serial floor: what one core of DuckDB takes). The ratio
// check / parallel floor is what the check adds above DuckDB's own parse +
// bind; on a shared machine it is steadier than either time.
// Run by bench/check.mjs; alone:
//
//   node bench/check-floor.mjs <dist> <project dir> [rounds]

import { availableParallelism } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, project, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 3);
const load = (p) => import(pathToFileURL(path.join(dist, p)).href);
const [{ compileUnwritten }, { checkManifest }, { inlineInputs }, { DuckDBInstance }] = await Promise.all([load('core/api.js'), load('core/analysis/check.js'), load('core/analysis/binder.js'), import('@duckdb/node-api')]);

const manifest = (await compileUnwritten({ projectDir: project })).manifest;
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const models = Object.values(manifest.nodes).filter((n) => n.resource_type === 'model');

async function check() {
  // A fresh copy each time (the check writes bound types into it), made outside the timing.
  const copy = structuredClone(manifest);
  const c0 = cpu();
  const t0 = performance.now();
  const r = await checkManifest(copy, path.join(project, 'target'), { cache: false });
  if (r.errors.length || r.stats.bound !== models.length) throw new Error(`the check did not bind every model: ${JSON.stringify(r.stats)}, ${r.errors.length} errors`);
  return { wall: (performance.now() - t0) / 1000, cpu: cpu() - c0, columns: r.columns };
}

// The statements, from the first check's bound schemas (as the binder builds them):
// a column list read by at least 16 models per database selects from an empty
// table of its own, made before the timing starts counting the binds (counted
// here over the whole project; the binder counts per wave).
const first = await check();
const CONNECTIONS = Math.max(1, Math.min(4, availableParallelism()));
const lists = new Map();
const listOf = (columns) => {
  const key = JSON.stringify(columns);
  if (!lists.has(key)) lists.set(key, { columns, reads: 0 });
  return lists.get(key);
};
const inputsOf = models.map((n) => n.depends_on.nodes.map((p) => ({ relation: manifest.nodes[p].relation_name, name: manifest.nodes[p].alias, columns: listOf(first.columns.get(p)).columns })));
for (const inputs of inputsOf) for (const i of inputs) listOf(i.columns).reads++;
const tables = new Map([...lists.values()].filter((l) => l.reads >= 16 * CONNECTIONS).map((l, k) => [l.columns, `__etl_stand_in_${k}`]));
const q = (s) => `"${s.replace(/"/g, '""')}"`;
const tableDdl = [...tables].map(([columns, name]) => `create table ${q(name)} (${columns.map((c) => `${q(c.name)} ${c.type}`).join(', ')});`).join('\n');
const statements = models.map((n, i) => inlineInputs(n.compiled_code, inputsOf[i], tables).sql);
const BATCH = 200;
const batches = [];
for (let i = 0; i < statements.length; i += BATCH) {
  batches.push(statements.slice(i, i + BATCH).map((sql, k) => `select ${k} as i, column_name, column_type from (describe ${sql}\n)`).join('\nunion all\n'));
}

async function floor(connections = CONNECTIONS) {
  const c0 = cpu();
  const t0 = performance.now();
  const conns = await Promise.all(
    Array.from({ length: connections }, async () => {
      const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
      const conn = await instance.connect();
      await conn.run('pragma disable_optimizer');
      if (tableDdl) await conn.run(tableDdl);
      return { instance, conn };
    }),
  );
  let next = 0;
  await Promise.all(
    conns.map(async ({ conn }) => {
      while (next < batches.length) (await conn.runAndReadAll(batches[next++])).getRows();
    }),
  );
  for (const { instance, conn } of conns) {
    conn.closeSync();
    instance.closeSync();
  }
  return { wall: (performance.now() - t0) / 1000, cpu: cpu() - c0 };
}

const runs = [];
for (let i = 0; i < rounds; i++) {
  const f = await floor();
  const c = await check();
  const serial = await floor(1);
  runs.push({ check_wall_s: c.wall, check_cpu_s: c.cpu, floor_wall_s: f.wall, floor_cpu_s: f.cpu, serial_floor_wall_s: serial.wall, serial_floor_cpu_s: serial.cpu });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r3 = (x) => Math.round(x * 1000) / 1000;
const m = (k) => median(runs.map((r) => r[k]));
console.log(
  JSON.stringify({
    models: models.length,
    connections: CONNECTIONS,
    stand_in_tables: tables.size,
    check_wall_s: r3(m('check_wall_s')),
    check_cpu_s: r3(m('check_cpu_s')),
    floor_wall_s: r3(m('floor_wall_s')),
    floor_cpu_s: r3(m('floor_cpu_s')),
    serial_floor_wall_s: r3(m('serial_floor_wall_s')),
    serial_floor_cpu_s: r3(m('serial_floor_cpu_s')),
    check_ms_per_model_cpu: r3((m('check_cpu_s') / models.length) * 1000),
    floor_ms_per_model_cpu: r3((m('floor_cpu_s') / models.length) * 1000),
    ratio_cpu: r3(median(runs.map((r) => r.check_cpu_s / r.floor_cpu_s))),
    ratio_wall: r3(median(runs.map((r) => r.check_wall_s / r.floor_wall_s))),
    ratio_wall_to_serial: r3(median(runs.map((r) => r.check_wall_s / r.serial_floor_wall_s))),
    runs: runs.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, r3(v)]))),
  }),
);
