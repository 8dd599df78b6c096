// Read-only commands (`etl source freshness`, `etl state show`) open the
// target read-only: on Postgres they take no run lock, so they work while a
// build holds it; on DuckDB they write nothing to the file, and `state show`
// does not create etl_meta in a database that has none.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PG_URL, dbPathOf, pgConnect, pgTestSchemas, runCli, snapshotDir, withDb, writeProject } from './helpers.js';

const pgTest = pgTestSchemas();

const SOURCES = (schema: string) => `sources:
  - name: raw
    schema: ${schema}
    freshness: { warn_after: 12h, error_after: 24h, loaded_at_field: loaded_at }
    tables: [{ name: events }]
`;

describe('read-only commands', () => {
  it('Postgres: source freshness and state show work while another run holds the schema lock, and take none', async () => {
    const schema = pgTest.schema();
    await pgTest.admin.query(`create schema ${schema}; create table ${schema}.events as select now() as loaded_at`);
    const dir = writeProject({
      'etl.yml': `name: ro\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 2 }\n`,
      'models/sources.yml': SOURCES(schema),
      'models/a.sql': 'select 1 as id\n',
    });
    // A build running into the schema holds its lock.
    const holder = await pgConnect();
    try {
      await holder.query('select pg_advisory_lock(hashtext($1), hashtext($2))', ['etl', schema]);
      const fresh = await runCli(['source', 'freshness'], { cwd: dir });
      expect(fresh.code, fresh.output).toBe(0);
      expect(fresh.output).not.toMatch(/another etl run/);
      const state = await runCli(['state', 'show'], { cwd: dir });
      expect(state.code, state.output).toBe(0);
      // Neither took a lock of its own (the holder's is the only one on the schema).
      const locks = await pgTest.admin.query(`select count(*)::int as n from pg_locks where locktype = 'advisory' and objid::int8 = (hashtext($1)::int8 & 4294967295)`, [schema]);
      expect(Number(locks.rows[0].n)).toBe(1);
    } finally {
      await holder.end();
    }
  });

  it('DuckDB: state show on a database without etl_meta prints no state and writes nothing', async () => {
    const dir = writeProject({
      'etl.yml': 'name: ro\nversion: 1\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb, schema: main }\n',
      'models/a.sql': 'select 1 as id\n',
    });
    await withDb(dbPathOf(dir), (db) => db.rows('create table main.existing as select 1 as x'), { readOnly: false });
    const before = snapshotDir(path.join(dir, 'target'));
    const r = await runCli(['state', 'show'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    expect(snapshotDir(path.join(dir, 'target'))).toEqual(before);
    expect(await withDb(dbPathOf(dir), (db) => db.rows(`select schema_name from information_schema.schemata where schema_name = 'etl_meta'`))).toEqual([]);
  });
});
