// The DuckDB binder's batches (core/analysis/binder.ts): a wave of many
// independent models is split over several connections in batches that
// shrink as the wave runs out; every model gets its own outcome, a batch
// holding a broken model is re-bound model by model (the others keep their
// columns), and an incremental branch is bound against the model's result.

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
        continue;
      }
      const expected = [{ name: 'id', type: 'INTEGER' }, { name: `amount_${i}`, type: expect.stringMatching(/^DECIMAL/) }, ...(i % 2 || i === 10 ? [{ name: i === 10 ? 'placed_at' : `at_${i}`, type: 'TIMESTAMP' }] : [])];
      expect('columns' in outcome && outcome.columns, `m${i}`).toEqual(expected);
    }
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
