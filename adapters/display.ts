// What a person is shown of query results (etl show, failing-row samples,
// unit-test diffs), the same on every engine: integers that fit a JS number
// stay numbers (JSON-safe), larger ones become text; bytes as \x hex; an
// engine's value object (a DuckDB date, decimal, list) as the engine prints
// it; a plain object or array (Postgres json, arrays) as JSON.

import type { AdapterSession, QueryResult } from './adapter.js';
import { selectBody } from './sql-text.js';

export function displayValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return `\\x${Buffer.from(v).toString('hex')}`;
  if (typeof v === 'object') {
    const plain = Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null;
    return plain ? JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) : String(v);
  }
  return v;
}

/** `selectSql` limited to `limit` rows, as a query every engine runs (a trailing `;` allowed). */
export function previewSql(selectSql: string, limit: number): string {
  return `select * from (\n${selectBody(selectSql)}\n) as __etl_preview limit ${Math.max(0, Math.floor(limit))}`;
}

/** The first `limit` rows of `selectSql` on a session whose rows are plain JS values. */
export async function previewRows(session: AdapterSession, selectSql: string, limit: number): Promise<QueryResult> {
  const r = await session.query(previewSql(selectSql, limit));
  return { ...r, rows: r.rows.map((row) => row.map(displayValue)) };
}
