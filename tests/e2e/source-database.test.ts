// A source's `database:` is part of its relation: on DuckDB it names an
// attached database, so a model reads that database's table and not a table
// of the same schema and name in the target's own file. (On Postgres, which
// reads only the database it is connected to, any other database is a
// project error: see tests/fixtures/broken/yml-source-database-not-connected.)

import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, killAll, removeTempDirs, runCli, withDb, writeProject } from './helpers.js';

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

describe("a source's database", () => {
  it('DuckDB: reads the attached database it names', async () => {
    const dir = writeProject({
      'etl.yml': etlYml('srcdb'),
      'models/sources.yml': 'sources:\n  - name: raw\n    database: warehouse\n    schema: raw\n    tables: [{ name: orders }]\n',
      'models/orders.sql': `{{config materialized="table" pre_hook="attach if not exists 'warehouse.duckdb' as warehouse (read_only)"}}\nselect id from {{source "raw" "orders"}}\n`,
    });
    // The warehouse has the orders; the target's own file has a decoy of the same schema and name.
    await withDb(path.join(dir, 'warehouse.duckdb'), (db) => db.rows('create schema raw; create table raw.orders as select 7 as id'), { readOnly: false });
    await withDb(dbPathOf(dir), (db) => db.rows('create schema raw; create table raw.orders as select 1 as id'), { readOnly: false });
    const r = await runCli(['build', '--no-check'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    expect(await withDb(dbPathOf(dir), (db) => db.rows('select id from main.orders'))).toEqual([{ id: 7 }]);
  });
});
