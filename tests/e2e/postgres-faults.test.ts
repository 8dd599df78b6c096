// Faults found in review, on the real Postgres: names past its 63-byte limit,
// the unit-test scratch schema of a run holding its lock, and backends
// terminated under a running model and under the lock connection. Each
// scenario builds into its own schema, dropped after.

import path from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PG_URL, pgConnect, pollUntil, pgTestSchemas, runCli, startCli, writeProject } from './helpers.js';

const pgTest = pgTestSchemas();

function pgProject(files: Record<string, string>): { dir: string; schema: string } {
  const schema = pgTest.schema();
  const dir = writeProject({ 'etl.yml': `name: faults\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 2 }\n`, ...files });
  return { dir, schema };
}

async function relations(schema: string): Promise<string[]> {
  const r = await pgTest.admin.query(`select relname::text as name from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'v') order by 1`, [schema]);
  return r.rows.map((x) => x.name as string);
}

describe('names past 63 bytes', () => {
  it('a table whose name Postgres would truncate is refused before anything is built (exit 2, naming the model)', async () => {
    const long = `t_${'x'.repeat(68)}`;
    const { dir, schema } = pgProject({ [`models/${long}.sql`]: '{{config materialized="table"}}\nselect 1 as id\n', 'models/other.sql': '{{config materialized="table"}}\nselect 1 as id\n' });
    const r = await runCli(['build'], { cwd: dir });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toContain(`models/${long}.sql:1: model "${long}": "${long}" is longer than 63 bytes`);
    expect(await relations(schema)).toEqual([]);
  });

  it('a model whose quarantine table would be truncated is refused too', async () => {
    const name = `q_${'x'.repeat(55)}`;
    const { dir } = pgProject({ [`models/${name}.sql`]: '{{config materialized="table" quarantine=true}}\nselect 1 as id\n' });
    const r = await runCli(['build'], { cwd: dir });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toContain(`"${name}__quarantine" is longer than 63 bytes`);
  });

  it('snapshots and incremental models with names near the limit build, and build again (internal names are hash-shortened)', async () => {
    const snap = `s_${'y'.repeat(56)}`; // 58 bytes: + __etl_changes / __etl_gone / __etl_source would pass 63
    const inc = `i_${'z'.repeat(58)}`;
    const { dir, schema } = pgProject({
      'models/src.sql': '{{config materialized="table"}}\nselect * from (values (1, 10), (2, 30)) as t(id, v)\n',
      [`snapshots/${snap}.sql`]: '{{config unique_key="id" strategy="check" check_cols="all" hard_deletes="new_record"}}\nselect * from {{ref "src"}}\n',
      [`models/${inc}.sql`]: '{{config materialized="incremental" unique_key="id"}}\nselect * from {{ref "src"}}\n',
    });
    const first = await runCli(['build'], { cwd: dir });
    expect(first.code, first.output).toBe(0);
    // One row changes and one goes: the snapshot needs both of its work tables at once.
    await pgTest.admin.query(`update "${schema}".src set v = 20 where id = 1; delete from "${schema}".src where id = 2`);
    const second = await runCli(['build', '--exclude', 'src'], { cwd: dir });
    expect(second.code, second.output).toBe(0);
    const versions = await pgTest.admin.query(`select id, v, (etl_valid_to is null) as current, etl_is_deleted from "${schema}"."${snap}" order by id, v, current`);
    expect(versions.rows.map((x) => [Number(x.id), Number(x.v), x.current, x.etl_is_deleted])).toEqual([
      [1, 10, 'false', 'false'],
      [1, 20, 'true', 'false'],
      [2, 30, 'false', 'false'],
      [2, 30, 'true', 'true'],
    ]);
    expect((await pgTest.admin.query(`select id, v from "${schema}"."${inc}" order by id`)).rows.map((x) => [Number(x.id), Number(x.v)])).toEqual([
      [1, 20],
      [2, 30],
    ]);
    // No internal relation is left behind.
    expect(await relations(schema)).toEqual([inc, snap, 'src'].sort());
  });
});


describe('--threads above the target threads', () => {
  it('runs that many models at once: the pool follows the effective thread count', async () => {
    const key = 700_000 + Math.floor(Math.random() * 100_000);
    // Each model waits for a lock the test holds, so all three are running at once or not at all.
    const model = `{{config materialized="table"}}\nselect 1 as id from (select pg_advisory_xact_lock_shared(${key})) as wait\n`;
    const { dir } = pgProject({ 'models/m1.sql': model, 'models/m2.sql': model, 'models/m3.sql': model });
    // (the target has threads: 2)
    const holder = await pgConnect();
    try {
      await holder.query('select pg_advisory_lock($1)', [key]);
      const run = startCli(['build', '--threads', '3', '--no-check'], { cwd: dir });
      const waiting = () =>
        pgTest.admin
          .query(`select count(*) as n from pg_locks where locktype = 'advisory' and not granted and objid = $1`, [key])
          .then((r) => Number(r.rows[0].n) === 3);
      const allThree = await pollUntil(waiting);
      await holder.query('select pg_advisory_unlock($1)', [key]);
      const r = await run.exitWithin(30_000);
      expect(allThree, 'three models waiting on the lock at once').toBe(true);
      expect(r.code, r.output).toBe(0);
    } finally {
      await holder.end();
    }
  });
});

describe('backends terminated mid-run', () => {
  const key = () => 800_000 + Math.floor(Math.random() * 100_000);
  // The slow model waits for a lock the test holds: the test knows when it is running.
  const project = (k: number) =>
    pgProject({
      'models/base.sql': '{{config materialized="table"}}\nselect {{var "v" 1}} as v\n',
      'models/slow.sql': `{{config materialized="table"}}\nselect {{var "v" 1}} as v from (select pg_advisory_xact_lock_shared(${k})) as wait\n`,
      'models/after.sql': '{{config materialized="table"}}\nselect v from {{ref "slow"}}\n',
    });

  async function values(schema: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const t of ['base', 'slow', 'after']) out[t] = Number((await pgTest.admin.query(`select v from "${schema}"."${t}"`)).rows[0].v);
    return out;
  }

  /** Starts the second build (v=2) with the slow model waiting, runs `kill` on the server, then lets the model go. */
  async function secondBuildKilling(dir: string, k: number, kill: () => Promise<number>) {
    const holder = await pgConnect();
    try {
      await holder.query('select pg_advisory_lock($1)', [k]);
      const run = startCli(['build', '--no-check', '--vars', '{v: 2}'], { cwd: dir });
      const waiting = await pollUntil(async () => Number((await pgTest.admin.query(`select count(*) as n from pg_locks where locktype = 'advisory' and not granted and objid = $1`, [k])).rows[0].n) === 1);
      expect(waiting, 'the slow model is running').toBe(true);
      expect(await kill()).toBe(1);
      await holder.query('select pg_advisory_unlock($1)', [k]);
      return await run.exitWithin(30_000);
    } finally {
      await holder.end();
    }
  }

  it("the running model's backend: the run fails, the previous tables stay as they were", async () => {
    const k = key();
    const { dir, schema } = project(k);
    expect((await runCli(['build', '--no-check'], { cwd: dir })).code).toBe(0);
    const r = await secondBuildKilling(dir, k, async () => {
      const t = await pgTest.admin.query(`select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and not granted and objid = $1`, [k]);
      return t.rowCount ?? 0;
    });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/Error in model slow[\s\S]*terminat/);
    expect(await values(schema)).toEqual({ base: 2, slow: 1, after: 1 });
    expect(await relations(schema)).toEqual(['after', 'base', 'slow']);
  });

  it("the lock connection's backend: the run stops before its next write with a clear error, the previous tables stay", async () => {
    const k = key();
    const { dir, schema } = project(k);
    expect((await runCli(['build', '--no-check'], { cwd: dir })).code).toBe(0);
    const r = await secondBuildKilling(dir, k, async () => {
      // This run's lock connection: the one holding the advisory lock on its schema.
      const t = await pgTest.admin.query(
        `select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted
            and classid::int8 = (hashtext('etl')::int8 & 4294967295) and objid::int8 = (hashtext($1)::int8 & 4294967295)`,
        [schema],
      );
      return t.rowCount ?? 0;
    });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain(`lost its lock on schema "${schema}"`);
    expect(r.output).toContain('PgBouncer');
    // What ran is still on record, for etl retry: the slow model failed.
    const results = JSON.parse(readFileSync(path.join(dir, 'target/run_results.json'), 'utf8')) as { results: Array<{ unique_id: string; status: string }> };
    expect(results.results.find((x) => x.unique_id.endsWith('.slow'))?.status).toBe('error');
    // The slow model's new table was never published, and nothing after it ran.
    expect((await values(schema)).slow).toBe(1);
    expect((await values(schema)).after).toBe(1);
  });
});

describe('unit-test scratch schemas', () => {
  it('a scratch schema another run holds is not dropped: the unit test fails on the lock and its tables stay', async () => {
    const { dir, schema } = pgProject({
      'models/src.sql': '{{config materialized="table"}}\nselect 1 as id\n',
      'models/doubled.sql': 'select id * 2 as id from {{ref "src"}}\n',
      'models/unit.yml': "unit_tests:\n  - name: doubles\n    model: doubled\n    given:\n      - input: ref('src')\n        rows: [{ id: 2 }]\n    expect:\n      rows: [{ id: 4 }]\n",
    });
    const built = await runCli(['build', '--no-check'], { cwd: dir });
    expect(built.code, built.output).toBe(0);
    // The scratch schema of unit test "doubles" on this target schema (core/data-tests/unit-tests.ts).
    const scratch = `etl_unit__${schema}__doubles`;
    const holder = await pgConnect();
    try {
      // Another run's scratch schema, in use: it holds the schema's run lock.
      await holder.query('select pg_advisory_lock(hashtext($1), hashtext($2))', ['etl', scratch]);
      await holder.query(`create schema "${scratch}"; create table "${scratch}".in_use as select 1 as x`);
      const r = await runCli(['test', '--select', 'doubled'], { cwd: dir });
      expect(r.code, r.output).toBe(1);
      expect(r.output).toContain(`another etl run is building schema "${scratch}"`);
      expect(Number((await pgTest.admin.query(`select count(*) as n from "${scratch}".in_use`)).rows[0].n)).toBe(1);
    } finally {
      await holder.query(`drop schema if exists "${scratch}" cascade`);
      await holder.end();
    }
  });
});
