// The raw baseline for `etl build`: the same statements, straight through
// @duckdb/node-api, on one connection in one process, with nothing else.
//
//   node bench/raw-duckdb.mjs <manifest.json> <database file>
//
// Reads target/manifest.json of an `etl compile` of the project, then runs:
//   create schema if not exists <schema>          (each schema, once)
//   create or replace table <seed> as select * from read_csv(...)  (each seed,
//     with the read_csv options etl's DuckDB adapter uses)
//   create or replace view <relation_name> as\n<compiled_code>  (each model,
//     in topological order)
// It prints one JSON line: statements run and the time spent on them.

import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

const t0 = performance.now();
const [manifestPath, dbPath] = process.argv.slice(2);
if (!manifestPath || !dbPath) {
  console.error('usage: node bench/raw-duckdb.mjs <manifest.json> <database file>');
  process.exit(2);
}
for (const f of [dbPath, `${dbPath}.wal`]) rmSync(f, { force: true });

const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const root = manifest.metadata.env?.etl_project_root ?? manifest.metadata.project_root;
const nodes = Object.values(manifest.nodes).filter((n) => n.resource_type === 'seed' || n.resource_type === 'model');

// Kahn's algorithm, ties in manifest order: a valid build order.
const ids = nodes.map((n) => n.unique_id);
const inPlan = new Set(ids);
const waiting = new Map(nodes.map((n) => [n.unique_id, (n.depends_on.nodes ?? []).filter((d) => inPlan.has(d)).length]));
const children = new Map(ids.map((id) => [id, []]));
for (const n of nodes) for (const d of n.depends_on.nodes ?? []) if (inPlan.has(d)) children.get(d).push(n.unique_id);
const order = [];
const ready = ids.filter((id) => waiting.get(id) === 0);
for (let i = 0; i < ready.length; i++) {
  const id = ready[i];
  order.push(id);
  for (const c of children.get(id)) {
    const left = waiting.get(c) - 1;
    waiting.set(c, left);
    if (left === 0) ready.push(c);
  }
}
if (order.length !== ids.length) throw new Error('cycle in manifest');

const q = (s) => `'${s.replace(/'/g, "''")}'`;
const qi = (s) => `"${s.replace(/"/g, '""')}"`;
const statements = [];
for (const schema of new Set(nodes.map((n) => n.schema))) statements.push(`create schema if not exists ${qi(schema)}`);
for (const id of order) {
  const n = manifest.nodes[id];
  // manifest.json's relation_name names the database too ("dev"."main"."m"); this baseline writes to its own file.
  n.relation_name = `${qi(n.schema)}.${qi(n.alias)}`;
  if (n.resource_type === 'seed') {
    const types = Object.entries(n.config.column_types ?? {});
    const typeSql = types.length ? `, types = {${types.map(([c, t]) => `${q(c)}: ${q(t)}`).join(', ')}}` : '';
    const delim = n.config.delimiter ? `, delim = ${q(n.config.delimiter)}` : '';
    const csv = path.join(root, n.original_file_path);
    statements.push(`create or replace table ${n.relation_name} as\nselect * from read_csv(${q(csv)}, header = true, auto_detect = true${typeSql}${delim})`);
  } else if (n.config.materialized === 'view') {
    statements.push(`create or replace view ${n.relation_name} as\n${n.compiled_code}`);
  } else {
    throw new Error(`${id}: raw baseline handles views only, got ${n.config.materialized}`);
  }
}

const t1 = performance.now();
const instance = await DuckDBInstance.create(dbPath);
const connection = await instance.connect();
for (const sql of statements) await connection.run(sql);
connection.closeSync();
instance.closeSync();
const t2 = performance.now();
console.log(JSON.stringify({ statements: statements.length, prepare_s: (t1 - t0) / 1000, execute_s: (t2 - t1) / 1000 }));
