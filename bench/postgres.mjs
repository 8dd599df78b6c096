// Postgres benchmarks, each against a baseline measured in the same run:
//  1. `etl seed --target pg` of a 1M-row CSV vs `psql -c "\copy ... from file csv header"`
//     into a table created with the same column types;
//  2. `etl build --target pg` of 200 view models vs the same 200 CREATE VIEW
//     statements run through one pg connection.
// Postgres: 127.0.0.1:5432, trust auth, database `test` (override with PG_URL).
//
//   node bench/postgres.mjs [--rows N] [--views N] [--repeat N] [--only seed|views]

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'dist', 'bin', 'etl.js');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROWS = arg('--rows', 1_000_000);
const VIEWS = arg('--views', 200);
const REPEAT = arg('--repeat', 3);
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined; // seed | views
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const work = path.join(here, '.work', 'postgres');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

rmSync(work, { recursive: true, force: true });
mkdirSync(path.join(work, 'seeds'), { recursive: true });
mkdirSync(path.join(work, 'models'), { recursive: true });
const schema = `etl_bench_${process.pid}`;
writeFileSync(
  path.join(work, 'etl.yml'),
  `name: bench_pg\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 4 }\n`,
);

// A 1M-row CSV: ints, a decimal, a date, a timestamp, a boolean and text.
const lines = ['id,customer_id,amount,order_date,created_at,paid,note'];
for (let i = 1; i <= ROWS; i++) {
  const d = new Date(Date.UTC(2024, 0, 1) + (i % 365) * 86_400_000);
  const day = d.toISOString().slice(0, 10);
  lines.push(`${i},${i % 5000},${(i % 10000) / 100},${day},${day} ${String(i % 24).padStart(2, '0')}:15:00,${i % 2 === 0},note ${i % 97}`);
}
const csv = path.join(work, 'seeds', 'big_seed.csv');
writeFileSync(csv, `${lines.join('\n')}\n`);

const client = new pg.Client({ connectionString: PG_URL });
await client.connect();
const q = (sql) => client.query(sql);

function timed(cmd, args, env = {}) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return s;
}

const results = { rows: ROWS, views: VIEWS, seed: { etl: [], psql: [] }, views_build: { etl: [], raw: [] } };
try {
  // 1. Seeds: etl (type inference + COPY + swap) vs psql \copy into the table etl creates.
  for (let r = 0; r < (ONLY === 'views' ? 0 : REPEAT); r++) {
    await q(`drop schema if exists ${schema} cascade`);
    results.seed.etl.push(timed('node', [cli, 'seed', '--project-dir', work, '--target', 'pg']));
    const ddl = (await q(`select string_agg(format('%I %s', column_name, format_type(a.atttypid, a.atttypmod)), ', ' order by ordinal_position) as cols
      from information_schema.columns c join pg_attribute a on a.attrelid = '${schema}.big_seed'::regclass and a.attname = c.column_name
      where table_schema = '${schema}' and table_name = 'big_seed'`)).rows[0].cols;
    await q(`drop table if exists ${schema}.psql_seed; create table ${schema}.psql_seed (${ddl})`);
    results.seed.psql.push(timed('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-c', `\\copy ${schema}.psql_seed from '${csv}' with (format csv, header true)`]));
    const [{ a }] = (await q(`select (select count(*) from ${schema}.big_seed) - (select count(*) from ${schema}.psql_seed) as a`)).rows;
    if (Number(a) !== 0) throw new Error('etl and psql loaded different row counts');
  }

  // 2. 200 views: etl build vs the same statements through one pg connection.
  rmSync(path.join(work, 'seeds'), { recursive: true, force: true });
  writeFileSync(path.join(work, 'models', 'v_0000.sql'), 'select g as id, g % 7 as k from generate_series(1, 100) as g\n');
  for (let i = 1; i < VIEWS; i++) {
    const parent = `v_${String(Math.max(0, i - 1 - (i % 3))).padStart(4, '0')}`;
    writeFileSync(path.join(work, 'models', `v_${String(i).padStart(4, '0')}.sql`), `select id, k + ${i} as k from {{ref "${parent}"}}\n`);
  }
  timed('node', [cli, 'compile', '--project-dir', work, '--target', 'pg']);
  const manifest = JSON.parse(readFileSync(path.join(work, 'target', 'manifest.json'), 'utf8'));
  const order = Object.values(manifest.nodes).filter((n) => n.resource_type === 'model');
  order.sort((a, b) => a.name.localeCompare(b.name)); // names are in dependency order
  const rawScript = path.join(work, 'raw-views.mjs');
  writeFileSync(
    rawScript,
    `import pg from ${JSON.stringify(path.join(here, '..', 'node_modules', 'pg', 'lib', 'index.js'))};
const c = new pg.Client({ connectionString: ${JSON.stringify(PG_URL)} });
await c.connect();
await c.query('create schema if not exists ${schema}_raw');
for (const sql of ${JSON.stringify(order.map((n) => `create or replace view "${schema}_raw"."${n.alias}" as\n${n.compiled_code.split(`"${schema}".`).join(`"${schema}_raw".`)}`))}) await c.query(sql);
await c.end();
`,
  );
  for (let r = 0; r < (ONLY === 'seed' ? 0 : REPEAT); r++) {
    await q(`drop schema if exists ${schema} cascade; drop schema if exists ${schema}_raw cascade`);
    results.views_build.raw.push(timed('node', [rawScript]));
    results.views_build.etl.push(timed('node', [cli, 'build', '--project-dir', work, '--target', 'pg']));
  }
  const [{ n }] = (await q(`select count(*) as n from information_schema.views where table_schema = '${schema}'`)).rows;
  if (ONLY !== 'seed' && Number(n) !== VIEWS) throw new Error(`expected ${VIEWS} views, found ${n}`);
} finally {
  await q(`drop schema if exists ${schema} cascade; drop schema if exists ${schema}_raw cascade`);
  await client.end();
}

const seedRatio = median(results.seed.etl) / median(results.seed.psql);
const viewRatio = median(results.views_build.etl) / median(results.views_build.raw);
Object.assign(results, { seed_ratio: seedRatio, views_ratio: viewRatio });
writeFileSync(path.join(here, '.work', 'postgres.json'), JSON.stringify(results, null, 2));
if (ONLY !== 'views') console.log(`seed ${ROWS} rows: etl ${median(results.seed.etl).toFixed(2)} s, psql \\copy ${median(results.seed.psql).toFixed(2)} s, ratio ${seedRatio.toFixed(2)}x`);
if (ONLY !== 'seed') console.log(`build ${VIEWS} views: etl ${median(results.views_build.etl).toFixed(2)} s, one pg connection ${median(results.views_build.raw).toFixed(2)} s, ratio ${viewRatio.toFixed(2)}x`);

