// The DuckDB binder's batches (core/analysis/binder.ts): a wave of many
// independent models is split over several connections in batches that
// shrink as the wave runs out; every model gets its own outcome, a batch
// holding a broken model is re-bound model by model (the others keep their
// columns), an input many models read is an empty table rather than a typed
// select (never named in a message), and an incremental branch is bound
// against the model's result.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbBinder, type InlineJob } from '../core/analysis/binder.js';

let binder: DuckDbBinder;
beforeAll(async () => {
  binder = await DuckDbBinder.open();
});
afterAll(() => binder.close());

const orders = { relation: '"main"."orders"', name: 'orders', columns: [{ name: 'id', type: 'INTEGER' }, { name: 'amount', type: 'DECIMAL(18,2)' }, { name: 'placed_at', type: 'TIMESTAMP' }] };

describe('bindInline over a wave of many models', () => {
  it('gives each of 700 models its own columns, the broken ones their own error, across batches and connections', async () => {
    const broken = new Set([3, 350, 699]);
    const jobs: InlineJob[] = Array.from({ length: 700 }, (_, i) => ({
      id: `model.m${i}`,
      // Each model's own output column name and width, so a mixed-up outcome shows.
      sql: broken.has(i) ? `select amout_${i} from "main"."orders"` : `select id, amount * ${i} as amount_${i}${i % 2 ? `, placed_at as at_${i}` : ''} from "main"."orders"`,
      inputs: [orders],
      ...(i === 10 ? { incrementalSql: 'select id, amount * 10 as amount_10 from "main"."orders" where placed_at > (select max(placed_at) from "main"."m10")', self: '"main"."m10"', selfName: 'm10' } : {}),
    }));
    jobs[10]!.sql = 'select id, amount * 10 as amount_10, placed_at from "main"."orders"';
    const outcomes = await binder.bindInline(jobs);
    expect(outcomes.size).toBe(700);
    for (let i = 0; i < 700; i++) {
      const outcome = outcomes.get(`model.m${i}`)!;
      if (broken.has(i)) {
        expect('error' in outcome && outcome.error, `m${i}`).toMatch(new RegExp(`amout_${i}`));
        // The input read by every model of the wave is a table of its own, which the message never names.
        expect('error' in outcome && outcome.sql).toMatch(/"orders" as \(\s*select \* from "__etl_stand_in_\d+"/);
        expect('error' in outcome && outcome.error).not.toMatch(/__etl_stand_in/);
        continue;
      }
      const expected = [{ name: 'id', type: 'INTEGER' }, { name: `amount_${i}`, type: expect.stringMatching(/^DECIMAL/) }, ...(i % 2 || i === 10 ? [{ name: i === 10 ? 'placed_at' : `at_${i}`, type: 'TIMESTAMP' }] : [])];
      expect('columns' in outcome && outcome.columns, `m${i}`).toEqual(expected);
    }
  });

  it('keeps a typed empty select for an input only a few models read', async () => {
    const customers = { relation: '"main"."customers"', name: 'customers', columns: [{ name: 'id', type: 'INTEGER' }, { name: 'tier', type: 'VARCHAR' }] };
    const jobs: InlineJob[] = Array.from({ length: 70 }, (_, i) => ({ id: `model.k${i}`, sql: i < 3 ? 'select c.tier from "main"."customers" c where c.tiers is null' : 'select tier from "main"."customers"', inputs: [customers] }));
    jobs[69] = { id: 'model.k69', sql: 'select o.amount, c.tier from "main"."orders" o join "main"."customers" c on c.id = o.idd', inputs: [{ ...orders, columns: orders.columns.slice() }, customers] };
    const outcomes = await binder.bindInline(jobs);
    const few = outcomes.get('model.k0')!;
    expect('error' in few && few.error).toMatch(/tiers/);
    // customers is read by 70 models: a table; this copy of orders' columns by one: a typed select.
    const both = outcomes.get('model.k69')!;
    expect('error' in both && both.error).toMatch(/idd/);
    expect('error' in both && both.sql).toMatch(/"orders" as \(\s*select cast\(null as INTEGER\) as "id"/);
    expect('error' in both && both.sql).toMatch(/"customers" as \(\s*select \* from "__etl_stand_in_\d+"/);
    expect([...outcomes.values()].filter((o) => 'columns' in o && o.columns.length === 1 && o.columns[0]!.name === 'tier')).toHaveLength(66);
  });

  it('reports an incremental branch that does not bind against the model itself', async () => {
    const jobs: InlineJob[] = Array.from({ length: 100 }, (_, i) => ({ id: `model.m${i}`, sql: 'select id, placed_at from "main"."orders"', inputs: [orders] }));
    jobs[42] = { ...jobs[42]!, incrementalSql: 'select id, placed_at from "main"."orders" where placed_at > (select max(updated_at) from "main"."m42")', self: '"main"."m42"', selfName: 'm42' };
    const outcomes = await binder.bindInline(jobs);
    const bad = outcomes.get('model.m42')!;
    expect('error' in bad && bad.incremental).toBe(true);
    expect('error' in bad && bad.error).toMatch(/updated_at/);
    expect([...outcomes.values()].filter((o) => 'columns' in o)).toHaveLength(99);
  });
});
