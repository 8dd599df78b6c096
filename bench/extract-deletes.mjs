// What `deletes: detect` costs (#15, loaders without CDC), measured against
// its alternatives in the same run, on a Postgres source of --rows rows (1M)
// loaded into DuckDB. Each round changes 1% of the source (0.5% updated,
// 0.25% deleted, 0.25% inserted), then runs, in turn:
//   plain   an incremental load by cursor (misses the deletes),
//   detect  the same with `deletes: detect` (reads every key too, anti join),
//   full    `etl extract --full-refresh` (the other way to drop deleted rows).
// Each has its own project and DuckDB file. Reported per round: the loader
// node's seconds (run_results) and the process's CPU seconds (user+sys); the
// medians, and detect's ratios to plain and to full. Rows of detect and full
// are checked equal to the source's count.
//
//   nice -n 10 node bench/extract-deletes.mjs [--rows N] [--rounds N]

import { execSync, spawnSync } from 'node:child_process';
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
const ROUNDS = arg('--rounds', 3);
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const work = path.join(here, '.work', 'extract-deletes');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const schema = `etl_bench_deletes_${process.pid}`;
const load = () => execSync('uptime').toString().trim().replace(/.*load average: /, 'load ');

const client = new pg.Client({ connectionString: PG_URL });
await client.connect();
await client.query(`create schema ${schema}`);
await client.query(`create table ${schema}.customers (id bigint primary key, name text, amount numeric(12,2), updated_at timestamptz not null)`);
await client.query(`insert into ${schema}.customers select g, 'name ' || g, g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' from generate_series(1, ${ROWS}) g`);
await client.query(`create index on ${schema}.customers (updated_at)`);
await client.query(`vacuum analyze ${schema}.customers`);

function project(name, incremental) {
  const dir = path.join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  writeFileSync(path.join(dir, 'etl.yml'), `name: bench_${name}\ntargets:\n  dev: { type: duckdb, path: target/bench.duckdb, threads: 4 }\n`);
  writeFileSync(
    path.join(dir, 'models', 'crm.yml'),
    `sources:\n  - name: crm\n    tables:\n      - name: customers\n        loader:\n          type: postgres\n          url: "{{env_var 'BENCH_PG_URL'}}"\n          table: ${schema}.customers\n          incremental: ${incremental}\n`,
  );
  return dir;
}

function etl(dir, ...args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', process.execPath, cli, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, BENCH_PG_URL: PG_URL, NO_COLOR: '1' } });
  if (r.status !== 0) throw new Error(`etl ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  const [wall, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  const loader = JSON.parse(readFileSync(path.join(dir, 'target', 'run_results.json'), 'utf8')).results.find((x) => x.unique_id.startsWith('loader.'));
  return { wall, cpu: user + sys, node: loader.execution_time, response: loader.adapter_response };
}

const projects = {
  plain: project('plain', '{ cursor: updated_at, primary_key: id }'),
  detect: project('detect', '{ cursor: updated_at, primary_key: id, deletes: detect }'),
  full: project('full', '{ cursor: updated_at, primary_key: id }'),
};
for (const dir of Object.values(projects)) etl(dir, 'extract');

const times = { plain: [], detect: [], full: [] };
const cpus = { plain: [], detect: [], full: [] };
let next = ROWS;
try {
  for (let round = 1; round <= ROUNDS; round++) {
    const t = `${schema}.customers`;
    const at = `timestamptz '2025-01-01 00:00:00+00' + interval '${round} hour'`;
    await client.query(`update ${t} set name = name || '+', updated_at = ${at} where id in (select id from ${t} order by id offset ${round * 7} limit ${ROWS / 200})`);
    await client.query(`delete from ${t} where id in (select id from ${t} where name not like '%+' order by id desc offset ${round * 11} limit ${ROWS / 400})`);
    await client.query(`insert into ${t} select g, 'new ' || g, 1, ${at} from generate_series(${next + 1}, ${next + ROWS / 400}) g`);
    next += ROWS / 400;
    const [{ n }] = (await client.query(`select count(*)::int as n from ${t}`)).rows;
    for (const name of ['plain', 'detect', 'full']) {
      const r = name === 'full' ? etl(projects[name], 'extract', '--full-refresh') : etl(projects[name], 'extract');
      times[name].push(r.node);
      cpus[name].push(r.cpu);
      const deleted = r.response.rows_deleted === undefined ? '' : `, ${r.response.rows_deleted} deleted`;
      console.log(`round ${round} ${name.padEnd(6)} node ${r.node.toFixed(2)} s, cpu ${r.cpu.toFixed(2)} s, wall ${r.wall.toFixed(2)} s (${r.response.rows_read} read, ${r.response.rows_loaded} loaded${deleted})  ${load()}`);
    }
    // detect and full must hold what the source holds.
    for (const name of ['detect', 'full']) {
      const rows = spawnSync(process.execPath, ['-e', `import('@duckdb/node-api').then(async ({ DuckDBInstance }) => { const i = await DuckDBInstance.create(${JSON.stringify(path.join(projects[name], 'target/bench.duckdb'))}, { access_mode: 'READ_ONLY' }); const c = await i.connect(); const r = await c.runAndReadAll('select count(*) from crm.customers'); console.log(String(r.getRows()[0][0])); })`], { cwd: path.join(here, '..'), encoding: 'utf8' });
      if (Number(rows.stdout.trim()) !== n) throw new Error(`${name}: ${rows.stdout.trim()} rows, the source has ${n}`);
    }
  }
  const m = (xs) => median(xs).toFixed(2);
  console.log(`\n${ROWS} rows, 1% changed per round, ${ROUNDS} rounds (medians):`);
  for (const name of ['plain', 'detect', 'full']) console.log(`  ${name.padEnd(6)} node ${m(times[name])} s, cpu ${m(cpus[name])} s`);
  console.log(`  detect / plain: node ${(median(times.detect) / median(times.plain)).toFixed(2)}x, cpu ${(median(cpus.detect) / median(cpus.plain)).toFixed(2)}x`);
  console.log(`  detect / full:  node ${(median(times.detect) / median(times.full)).toFixed(2)}x, cpu ${(median(cpus.detect) / median(cpus.full)).toFixed(2)}x`);
  console.log(`  ${load()}`);
} finally {
  await client.query(`drop schema ${schema} cascade`);
  await client.end();
  rmSync(work, { recursive: true, force: true });
}
