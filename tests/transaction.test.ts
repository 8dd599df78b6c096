// The one transaction helper (adapters/transaction.ts), on a real in-memory
// DuckDB: what it commits, what it rolls back, and that a rollback failing
// too never hides the error that caused it.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDbAdapter } from '../adapters/duckdb/adapter.js';
import type { AdapterSession } from '../adapters/adapter.js';
import { transaction } from '../adapters/transaction.js';

describe('transaction(session, fn)', () => {
  let adapter: DuckDbAdapter;
  const session = <T>(fn: (s: AdapterSession) => Promise<T>) => adapter.withSession(fn);
  const count = () => session(async (s) => Number((await s.query('select count(*) from main.t')).rows[0]![0]));

  beforeEach(async () => {
    adapter = new DuckDbAdapter({ name: 'dev', path: ':memory:', threads: 1 }, process.cwd());
    await adapter.open();
    await session((s) => s.execute('create table main.t (x integer)'));
  });
  afterEach(async () => {
    await adapter.close();
  });

  it("commits fn's statements and returns its value", async () => {
    const value = await session((s) =>
      transaction(s, async () => {
        await s.execute('insert into main.t values (1), (2)');
        return 'done';
      }),
    );
    expect(value).toBe('done');
    expect(await count()).toBe(2);
  });

  it('rolls every statement back when fn fails, and rethrows its error', async () => {
    const err = await session((s) =>
      transaction(s, async () => {
        await s.execute('insert into main.t values (1)');
        await s.execute('create table main.u (y integer)');
        throw new Error('the original failure');
      }),
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('the original failure');
    expect(await count()).toBe(0);
    expect(await session(async (s) => (await s.query(`select count(*) from duckdb_tables() where table_name = 'u'`)).rows[0]![0])).toBe(0n);
  });

  it('a rollback that fails too does not replace the original error', async () => {
    // fn ends the transaction itself, so the rollback finds none and fails.
    const err = await session((s) =>
      transaction(s, async () => {
        await s.execute('insert into main.t values (1)');
        await s.execute('commit');
        throw new Error('the original failure');
      }),
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('the original failure');
    expect(String((err as { rollbackError?: unknown }).rollbackError)).toMatch(/transaction/i);
    // The session is usable afterwards.
    expect(await count()).toBe(1);
  });
});
