// DuckDB's names are case-insensitive, and so is etl's knowledge of what the
// database holds: a model renamed from Orders.sql to orders.sql is the same
// relation, rebuilt as a table and then replaced by a view.

import path from 'node:path';
import { renameSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, killAll, removeTempDirs, runCli, withDb, writeProject } from './helpers.js';

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

describe('DuckDB relation names', () => {
  it('a model whose name changes only in case rebuilds its relation', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('names'), 'models/Orders.sql': '{{config materialized="table"}}\nselect 1 as id\n' });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    renameSync(path.join(dir, 'models/Orders.sql'), path.join(dir, 'models/orders.sql'));
    writeFileSync(path.join(dir, 'models/orders.sql'), '{{config materialized="table"}}\nselect 2 as id\n');
    const table = await runCli(['build'], { cwd: dir });
    expect(table.code, table.output).toBe(0);
    expect(await withDb(dbPathOf(dir), (db) => db.value('select id from main.orders'))).toBe(2);
    writeFileSync(path.join(dir, 'models/orders.sql'), '{{config materialized="view"}}\nselect 3 as id\n');
    const view = await runCli(['build'], { cwd: dir });
    expect(view.code, view.output).toBe(0);
    expect(await withDb(dbPathOf(dir), (db) => db.relations())).toEqual({ orders: 'VIEW' });
  });
});
