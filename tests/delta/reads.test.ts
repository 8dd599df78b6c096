// What a model's SQL read of its own table (adapters/delta/reads.ts), parsed
// by DuckDB: none, all of it, or the rows of simple filters; and the read
// set it gives a commit, checked against files another writer added.

import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conflictWith, DeltaTable, LocalStorage, type AddFile, type Commit } from '../../adapters/delta/index.js';
import { readsOfSql, widenReads } from '../../adapters/delta/reads.js';
import { openDuckDb, tempDir, type TestDb } from './helpers.js';

let db: TestDb;
let tmp: ReturnType<typeof tempDir>;
beforeAll(async () => {
  db = await openDuckDb();
  tmp = tempDir('etl-delta-reads-');
});
afterAll(() => {
  db?.close();
  tmp?.remove();
});

const orders = { schema: 'main', name: 'orders' };
const schema = { schema: { type: 'struct' as const, fields: ['id', 'day', 'amount', 'Status'].map((name) => ({ name, type: 'long', nullable: true, metadata: {} })) } };
const reads = (sql: string) => readsOfSql(db.session, sql, orders, schema);

describe('what SQL reads of its own table', () => {
  it('nothing when it never names the table, or names it only as a CTE or an older version', async () => {
    expect(await reads('select * from main.customers')).toBe('none');
    expect(await reads('with orders as (select 1 as id) select * from orders')).toBe('none');
    expect(await reads('select * from "main"."orders@v12"')).toBe('none');
    expect(await reads('select * from other.orders')).toBe('none');
  });

  it('the whole table for a scan without filters, a join, or SQL DuckDB cannot parse', async () => {
    expect(await reads('select * from src where updated_at > (select max(id) from "main"."orders")')).toBe('all');
    expect(await reads('select * from main.orders o join main.items i on o.id = i.order_id where o.id = 3')).toBe('all');
    expect(await reads('select * from orders where id = 1 union all select * from orders')).toBe('all');
    expect(await reads('select * from orders where id = 1 +')).toBe('all');
  });

  it('the rows of simple filters: comparisons either way round, in lists, null tests, casts, the alias; other conjuncts dropped', async () => {
    expect(await reads('select * from "main"."orders" as o where o.id in (1, 2) and 10 <= day and "status" is not null and amount * 2 > 7')).toEqual([
      [
        { column: 'id', op: 'in', value: [1, 2] },
        { column: 'day', op: '>=', value: 10 },
        { column: 'Status', op: 'is not null' },
      ],
    ]);
    expect(await reads(`select * from src where exists (select 1 from orders where amount < cast('5' as bigint)) or id = (select max(id) from orders where day = 3)`)).toEqual([
      [{ column: 'amount', op: '<', value: '5' }],
      [{ column: 'day', op: '=', value: 3 }],
    ]);
    // A disjunction is not a conjunct of simple filters: the whole table.
    expect(await reads('select * from orders where id = 1 or id = 2')).toBe('all');
  });
});

describe('the read set a commit is checked with', () => {
  it('conflicts with a file another writer added inside what the SQL read, not outside it', async () => {
    const table = new DeltaTable(new LocalStorage(path.join(tmp.dir, 'orders')), db.session);
    await table.write({ selectSql: 'select range as id, range % 5 as day, 1 as amount, 0 as "Status" from range(10)', mode: 'append' });
    const snapshot = await table.snapshot();
    const read = widenReads(snapshot, { readPredicate: 'none', readFiles: new Set() }, await readsOfSql(db.session, 'select * from orders where id >= 100', orders, snapshot));
    // The existing file (ids 0..9) holds none of those rows: not read.
    expect(read.readFiles).toEqual(new Set());
    const winner = async (selectSql: string): Promise<Commit> => {
      const written = await table.write({ selectSql, mode: 'append' });
      return { version: written.commit!.version, actions: written.adds.map((add) => ({ add })) };
    };
    const request = { operation: 'WRITE', readVersion: snapshot.version, actions: [], ...read };
    expect(conflictWith(await winner('select 50 as id, 1 as day, 1 as amount, 0 as "Status"'), request)).toBeUndefined();
    expect(conflictWith(await winner('select 150 as id, 1 as day, 1 as amount, 0 as "Status"'), request)).toMatch(/^it added the file part-\S+ to data this change read$/);
    // A whole-table read conflicts with either.
    const whole = { ...request, ...widenReads(snapshot, { readPredicate: 'none', readFiles: new Set() }, 'all') };
    expect(conflictWith(await winner('select 50 as id, 1 as day, 1 as amount, 0 as "Status"'), whole)).toMatch(/it added the file/);
    const file: AddFile = [...snapshot.files.values()][0]!;
    expect(widenReads(snapshot, { readPredicate: 'none', readFiles: new Set() }, [[{ column: 'id', op: '=', value: 3 }]]).readFiles).toEqual(new Set([file.path]));
  });
});
