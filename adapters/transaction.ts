// The one way a transaction is opened on a session. Everything that must
// change together (a table swap and its state records, a migration, the
// quarantined rows and the table they left) runs inside `transaction`.

import type { AdapterSession } from './adapter.js';

/**
 * Runs `fn` between begin and commit on `session`; on any failure (of `fn` or
 * of the commit) rolls back and rethrows the original error. A rollback that
 * fails as well (a dead connection: the server has already rolled back) never
 * replaces the error that caused it; it is kept on the error as
 * `rollbackError` for whoever debugs it.
 */
export async function transaction<T>(session: AdapterSession, fn: () => Promise<T>): Promise<T> {
  await session.execute('begin');
  try {
    const result = await fn();
    await session.execute('commit');
    return result;
  } catch (err) {
    try {
      await session.execute('rollback');
    } catch (rollbackError) {
      if (err instanceof Error && !('rollbackError' in err)) Object.defineProperty(err, 'rollbackError', { value: rollbackError, enumerable: false });
    }
    throw err;
  }
}

/**
 * Runs `fn` in a transaction that is always rolled back, whatever `fn` does:
 * scratch work (static analysis binding SQL against temporary stand-ins)
 * that must leave nothing behind and is never visible to another session.
 */
export async function rolledBack<T>(session: AdapterSession, fn: () => Promise<T>): Promise<T> {
  await session.execute('begin');
  try {
    return await fn();
  } finally {
    await session.execute('rollback');
  }
}
