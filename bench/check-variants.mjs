// Ways DuckDB could bind the 10,000 models of the check, measured against
// each other in one process (alternated, CPU of the process beside wall):
//   cte        what the check does: each model with its inputs inlined as
//              empty typed CTEs (`select cast(null as T) ... limit 0`),
//              described 200 per statement, on 2 databases / 1 database;
//   cte-1db    the same on one database with two connections (does binding
//              on one database serialise?);
//   prepare    each model prepared on its own (no batching);
//   schema     stand-in CTEs reading an empty table per distinct column list
//              (`select * from __etl_schema_k`), the tables made first;
//   tables     every model's result an empty table in the catalog (the brief's
//              "stand-in table per model"): the raw compiled SQL bound, the
//              10,000 CREATEs made first, 500 per statement in one transaction;
//   create     the CREATEs of `tables` alone;
//   parse      parsing only (extractStatements) of the `cte` statements.
// Bound schemas come from one checkManifest run first.
//
//   node bench/check-variants.mjs [dist] [project dir] [rounds] [variant regex]

import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const [distArg = path.join(BENCH, '..', 'dist'), project = path.join(BENCH, '.work', 'check-10000'), roundsArg = '2', only] = process.argv.slice(2);
const dist = path.resolve(distArg);
const load = (p) => import(pathToFileURL(path.join(dist, p)).href);
const [{ compileUnwritten }, { checkManifest }, { inlineInputs }] = await Promise.all([load('core/api.js'), load('core/analysis/check.js'), load('core/analysis/binder.js')]);
const { DuckDBInstance } = createRequire(path.join(dist, 'adapters/duckdb/driver.js'))('@duckdb/node-api');
const manifest = (await compileUnwritten({ projectDir: project })).manifest;
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const models = Object.values(manifest.nodes).filter((n) => n.resource_type === 'model');
const { columns } = await checkManifest(structuredClone(manifest), path.join(project, 'target'), { cache: false });
const q = (s) => `"${s.replace(/"/g, '""')}"`;

const inlined = models.map((n) => inlineInputs(n.compiled_code, n.depends_on.nodes.map((p) => ({ relation: manifest.nodes[p].relation_name, name: manifest.nodes[p].alias, columns: columns.get(p) }))).sql);
const schemaKey = (c) => c.map((x) => `${x.name} ${x.type}`).join(',');
const schemaTables = new Map();
for (const [, c] of columns) if (!schemaTables.has(schemaKey(c))) schemaTables.set(schemaKey(c), { name: `__etl_schema_${schemaTables.size}`, c });
const viaSchemaTables = models.map((n) => {
  let body = n.compiled_code;
  const ctes = [];
  for (const p of n.depends_on.nodes) {
    const rel = manifest.nodes[p].relation_name;
    if (!body.includes(rel)) continue;
    body = body.split(rel).join(q(manifest.nodes[p].alias));
    ctes.push(`${q(manifest.nodes[p].alias)} as (select * from ${schemaTables.get(schemaKey(columns.get(p))).name})`);
  }
  // The generated models start with comments, then `with`, or a select.
  return /^(\s*--[^\n]*\n)*\s*with\b/i.test(body) ? body.replace(/\bwith\b/i, `with ${ctes.join(', ')},`) : `with ${ctes.join(', ')} ${body}`;
});
const schemaDdl = [...schemaTables.values()].map((t) => `create table ${t.name} (${t.c.map((x) => `${q(x.name)} ${x.type}`).join(', ')});`).join('\n');
const tableDdl = [...columns].filter(([id]) => manifest.nodes[id]?.relation_name).map(([id, c]) => `create table ${manifest.nodes[id].relation_name} (${c.map((x) => `${q(x.name)} ${x.type}`).join(', ')});`);
const schemas = [...new Set(models.map((n) => n.schema))].map((s) => `create schema if not exists ${q(s)};`).join('\n');

const batchesOf = (statements, size = 200) => {
  const out = [];
  for (let i = 0; i < statements.length; i += size) {
    out.push(`select json_group_array(json_array(i, column_name, column_type))::varchar from (${statements.slice(i, i + size).map((sql, k) => `select ${k} as i, column_name, column_type from (describe ${sql}\n)`).join('\nunion all\n')})`);
  }
  return out;
};
async function open(n, setup) {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
      const conn = await instance.connect();
      await conn.run('pragma disable_optimizer');
      if (setup) await setup(conn);
      return { instance, conn };
    }),
  );
}
async function runBatches(conns, batches) {
  let next = 0;
  await Promise.all(conns.map(async ({ conn }) => {
    while (next < batches.length) (await conn.runAndReadAll(batches[next++])).getRows();
  }));
}
const close = (conns) => conns.forEach(({ instance, conn }) => (conn.closeSync(), instance.closeSync()));
const createTables = async (k) => {
  await k.run(schemas);
  for (let i = 0; i < tableDdl.length; i += 500) await k.run(`begin;\n${tableDdl.slice(i, i + 500).join('\n')}\ncommit;`);
};
const cte = batchesOf(inlined);
const schema = batchesOf(viaSchemaTables);
const raw = batchesOf(models.map((n) => n.compiled_code));

const variants = {
  'cte, 2 databases': async () => { const c = await open(2); await runBatches(c, cte); close(c); },
  'cte, 1 database': async () => { const c = await open(1); await runBatches(c, cte); close(c); },
  'cte-1db, 2 connections': async () => {
    const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    const conns = await Promise.all([instance.connect(), instance.connect()]);
    for (const conn of conns) await conn.run('pragma disable_optimizer');
    await runBatches(conns.map((conn) => ({ conn })), cte);
    conns.forEach((conn) => conn.closeSync());
    instance.closeSync();
  },
  'prepare, 2 databases': async () => {
    const c = await open(2);
    let next = 0;
    await Promise.all(c.map(async ({ conn }) => {
      while (next < inlined.length) (await conn.prepare(inlined[next++])).destroySync();
    }));
    close(c);
  },
  'schema, 2 databases': async () => { const c = await open(2, (k) => k.run(schemaDdl)); await runBatches(c, schema); close(c); },
  'tables, 2 databases': async () => { const c = await open(2, createTables); await runBatches(c, raw); close(c); },
  'create, 2 databases': async () => { const c = await open(2, createTables); close(c); },
  'parse, 1 database': async () => { const c = await open(1); for (const b of cte) await c[0].conn.extractStatements(b); close(c); },
};

const results = {};
const loads = [os.loadavg()[0]];
for (let round = 0; round < Number(roundsArg); round++) {
  for (const [name, run] of Object.entries(variants)) {
    if (only && !new RegExp(only).test(name)) continue;
    const c0 = cpu();
    const t0 = performance.now();
    await run();
    (results[name] ??= []).push({ wall_s: Math.round(performance.now() - t0) / 1000, cpu_s: Math.round((cpu() - c0) * 1000) / 1000 });
  }
}
loads.push(os.loadavg()[0]);
console.log(JSON.stringify({ models: models.length, distinct_column_lists: schemaTables.size, load: loads.map((x) => Math.round(x * 10) / 10), results }, null, 1));
