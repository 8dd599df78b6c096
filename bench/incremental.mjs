// Incremental merge benchmark: a 10M-row fact table built by an incremental
// merge model, then 1% of the source rows changed and 0.5% added, then an
// incremental run. Reports the incremental time as a ratio of a full refresh
// measured in the same run, and the merge's rows per second.
//
//   node bench/incremental.mjs [--rows N] [--changes in-place|appended]

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'dist', 'bin', 'etl.js');
const rowsArg = process.argv.indexOf('--rows');
const ROWS = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : 10_000_000;
const changesArg = process.argv.indexOf('--changes');
/** How the changed rows sit in the source: updated where they are, or deleted and appended. */
const CHANGES = changesArg > 0 ? process.argv[changesArg + 1] : 'in-place';
if (CHANGES !== 'in-place' && CHANGES !== 'appended') throw new Error('--changes in-place|appended');
const dir = path.join(here, '.work', 'incremental');

rmSync(dir, { recursive: true, force: true });
mkdirSync(path.join(dir, 'models'), { recursive: true });
writeFileSync(
  path.join(dir, 'etl.yml'),
  `name: bench_incremental\ntargets:\n  dev: { type: duckdb, path: target/bench.duckdb, schema: main, threads: 2 }\n`,
);
writeFileSync(
  path.join(dir, 'models', 'sources.yml'),
  `sources:\n  - name: raw\n    schema: raw\n    tables: [{ name: facts }]\n`,
);
writeFileSync(
  path.join(dir, 'models', 'fact.sql'),
  `{{config materialized="incremental" unique_key="id" event_time="updated_at"}}
select id, customer_id, amount, status, updated_at
from {{source "raw" "facts"}}
{{#if is_incremental}}
where updated_at > (select max(updated_at) from {{this}})
{{/if}}
`,
);

async function withDb(fn) {
  const instance = await DuckDBInstance.create(path.join(dir, 'target', 'bench.duckdb'));
  const c = await instance.connect();
  try {
    return await fn(c);
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}

function etl(args) {
  const t0 = performance.now();
  const r = spawnSync('node', [cli, ...args, '--project-dir', dir, '--log-format', 'json'], { encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`etl ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  const results = JSON.parse(readFileSync(path.join(dir, 'target', 'run_results.json'), 'utf8')).results;
  const fact = results.find((x) => x.unique_id === 'model.bench_incremental.fact');
  return { wall, model: fact.execution_time, rows: fact.adapter_response?.rows_affected ?? fact.rows_affected };
}

mkdirSync(path.join(dir, 'target'), { recursive: true });
await withDb(async (c) => {
  await c.run('create schema raw');
  await c.run(`create table raw.facts as
    select range as id, range % 100000 as customer_id, round(random() * 1000, 2) as amount,
           (['placed', 'shipped', 'completed', 'returned'])[1 + range % 4] as status,
           timestamp '2024-01-01' + to_seconds(range) as updated_at
    from range(${ROWS})`);
});

const first = etl(['build']);
const changed = Math.round(ROWS * 0.01);
const added = Math.round(ROWS * 0.005);
await withDb(async (c) => {
  const max = `(select max(updated_at) from raw.facts)`;
  // 1% of rows change (spread over the table), 0.5% are new; both newer than anything loaded.
  if (CHANGES === 'in-place') {
    // Updated where they are, as a loader that merges into the raw table leaves them.
    await c.run(`update raw.facts set amount = amount + 1, status = 'returned', updated_at = ${max} + interval 1 hour
                 where id % 100 = 7`);
  } else {
    // Old versions deleted and new ones appended, as a delete+insert loader
    // (or an upstream etl merge) leaves them: the changes sit together at the end.
    await c.run(`create temp table changed as select id, customer_id, amount + 1 as amount, 'returned' as status, ${max} + interval 1 hour as updated_at
                 from raw.facts where id % 100 = 7`);
    await c.run('delete from raw.facts where id % 100 = 7');
    await c.run('insert into raw.facts select * from changed');
  }
  await c.run(`insert into raw.facts
    select ${ROWS} + range, range % 100000, 1.0, 'placed', timestamp '2030-01-01' + to_seconds(range) from range(${added})`);
});
// The baseline: the same incremental change done by hand in raw DuckDB, on a
// copy of the database as etl finds it (the model's own filter staged into a
// temp table, then the delete of the changed keys and the insert, in one
// transaction): what the engine itself needs, whatever the tool.
const rawCopy = path.join(dir, 'target', 'raw-baseline.duckdb');
copyFileSync(path.join(dir, 'target', 'bench.duckdb'), rawCopy);
const incremental = etl(['build']);
const fullRefresh = etl(['build', '--full-refresh']);
const raw = await (async () => {
  const instance = await DuckDBInstance.create(rawCopy);
  const c = await instance.connect();
  const steps = {};
  const step = async (name, sql) => {
    const t0 = performance.now();
    await c.run(sql);
    steps[name] = (performance.now() - t0) / 1000;
  };
  try {
    await step('stage', `create temp table staged as select id, customer_id, amount, status, updated_at from raw.facts where updated_at > (select max(updated_at) from main.fact)`);
    await step('begin', 'begin');
    await step('delete', 'delete from main.fact as t where exists (select 1 from staged as s where s.id = t.id)');
    await step('insert', 'insert into main.fact select * from staged');
    await step('commit', 'commit');
    await step('full_refresh', 'create or replace table main.fact_full as select id, customer_id, amount, status, updated_at from raw.facts');
  } finally {
    c.closeSync();
    instance.closeSync();
    rmSync(rawCopy, { force: true });
  }
  const incrementalS = steps.stage + steps.begin + steps.delete + steps.insert + steps.commit;
  return { steps, incremental: incrementalS, full_refresh: steps.full_refresh, ratio: incrementalS / steps.full_refresh };
})();

const check = await withDb(async (c) => {
  const r = await c.runAndReadAll(`select count(*), count(distinct id), sum(case when status = 'returned' then 1 else 0 end) from main.fact`);
  return r.getRows()[0].map(Number);
});
if (check[0] !== ROWS + added || check[1] !== ROWS + added) throw new Error(`unexpected fact table: ${check}`);

const result = {
  rows: ROWS,
  changes: CHANGES,
  changed,
  added,
  first_build: first,
  incremental,
  full_refresh: fullRefresh,
  ratio_model: incremental.model / fullRefresh.model,
  ratio_wall: incremental.wall / fullRefresh.wall,
  merge_rows_per_s: (changed + added) / incremental.model,
  raw_duckdb: raw,
};
mkdirSync(path.join(here, '.work'), { recursive: true });
writeFileSync(path.join(here, '.work', `incremental-${CHANGES}.json`), JSON.stringify(result, null, 2));
console.log(`rows ${ROWS}, changed ${changed} (${CHANGES}), added ${added}`);
console.log(`full refresh: model ${fullRefresh.model.toFixed(2)} s, process ${fullRefresh.wall.toFixed(2)} s`);
console.log(`incremental:  model ${incremental.model.toFixed(2)} s, process ${incremental.wall.toFixed(2)} s`);
console.log(`ratio incremental / full refresh: ${result.ratio_model.toFixed(3)} (model time), ${result.ratio_wall.toFixed(3)} (process)`);
console.log(`merge: ${Math.round(result.merge_rows_per_s).toLocaleString('en')} rows/s`);
const ms = (x) => `${Math.round(x * 1000)} ms`;
console.log(
  `raw DuckDB, same change by hand: stage ${ms(raw.steps.stage)}, delete ${ms(raw.steps.delete)}, insert ${ms(raw.steps.insert)}, commit ${ms(raw.steps.commit)} = ${ms(raw.incremental)}; ` +
    `full refresh (CTAS) ${ms(raw.full_refresh)}; ratio ${raw.ratio.toFixed(3)}`,
);
console.log(`etl incremental / raw incremental: ${(incremental.model / raw.incremental).toFixed(2)}x`);
