// Bad input on an incremental load of a table already loaded (the first load's
// cases are in extract-postgres.test.ts): a primary key that is not unique in
// the extracted rows (a query's) names the keys, a primary key that is not a
// column at the source names it and the yml line; each fails the run (exit 1)
// and leaves the raw table and its watermark exactly as they were, with
// `deletes: detect` on (nothing deleted either).

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, PG_URL, pgQuoteIdent, pgTestSchemas, runCli, withDb, writeProject } from './helpers.js';

const pg = pgTestSchemas();
const env = { CRM_URL: PG_URL, TZ: 'UTC' };

function loaderYml(query: string, incremental: string): string {
  return `sources:\n  - name: crm\n    tables:\n      - name: orders\n        loader:\n          type: postgres\n          url: "{{env_var 'CRM_URL'}}"\n          query: ${query}\n          incremental: ${incremental}\n`;
}

describe('bad input on an incremental load', () => {
  it('a duplicated key or a key missing at the source: exit 1 naming them and the yml line; the raw table and its watermark unchanged', async () => {
    const schema = pg.schema();
    const t = `${pgQuoteIdent(schema)}.orders`;
    await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
    // No primary key at the source: the loader checks the key itself.
    await pg.admin.query(`create table ${t} (order_id int, line int, amount int, updated_at timestamptz not null)`);
    await pg.admin.query(`insert into ${t} select g, 1, g * 10, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' from generate_series(1, 100) g`);
    const query = `select * from ${schema}.orders`;
    const dir = writeProject({ 'etl.yml': etlYml('shop'), 'models/crm.yml': loaderYml(query, '{ cursor: updated_at, primary_key: order_id, deletes: detect }') });
    expect((await runCli(['extract'], { cwd: dir, env })).code).toBe(0);
    const snapshot = () =>
      withDb(dbPathOf(dir), async (db) => ({
        rows: await db.rows('select count(*)::int as n, sum(amount)::int as s from crm.orders'),
        watermark: await db.rows(`select watermark from etl_meta.watermarks where relation = 'crm.orders'`),
      }));
    const before = await snapshot();
    expect(before.rows).toEqual([{ n: 100, s: 50500 }]);

    // Order 50 gets a second line, and order 1 is deleted: the key is not unique any more.
    await pg.admin.query(`insert into ${t} values (50, 2, 7, timestamptz '2025-01-01 00:00:00+00'), (50, 3, 8, timestamptz '2025-01-01 00:00:01+00')`);
    await pg.admin.query(`delete from ${t} where order_id = 1`);
    const duplicated = await runCli(['extract'], { cwd: dir, env });
    expect(duplicated.code, duplicated.output).toBe(1);
    expect(duplicated.output).toContain('loader of source crm.orders (models/crm.yml:5): primary_key order_id is not unique in the extracted rows: 50 x2');
    expect(duplicated.output).toContain('the raw table is unchanged');
    expect(await snapshot()).toEqual(before);

    // A key the source does not have.
    writeFileSync(path.join(dir, 'models/crm.yml'), loaderYml(query, '{ cursor: updated_at, primary_key: [order_id, line_no], deletes: detect }'));
    const missing = await runCli(['extract'], { cwd: dir, env });
    expect(missing.code, missing.output).toBe(1);
    expect(missing.output).toContain('loader of source crm.orders (models/crm.yml:5): incremental.primary_key "line_no" is not a column at the source; its columns: order_id, line, amount, updated_at');
    expect(await snapshot()).toEqual(before);

    // Named right, the same changes load: the two lines of order 50, order 1 deleted.
    writeFileSync(path.join(dir, 'models/crm.yml'), loaderYml(query, '{ cursor: updated_at, primary_key: [order_id, line], deletes: detect }'));
    const fixed = await runCli(['extract', '--full-refresh'], { cwd: dir, env });
    expect(fixed.code, fixed.output).toBe(0);
    expect((await snapshot()).rows).toEqual([{ n: 101, s: 50500 - 10 + 15 }]);
  });
});
