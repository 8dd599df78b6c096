// Binding on a Postgres server, for SQL DuckDB cannot bind (Postgres-only
// functions or syntax) and for Postgres's own result types: inside one
// transaction that is always rolled back, empty temporary stand-ins are
// created for the inputs, and each model becomes `create temp table ... as
// <its SQL> with no data` (bound, planned, never run), its relations
// rewritten to the stand-ins. Temporary tables are private to the session
// and the rollback removes them; nothing is visible to other sessions.

import type { Adapter, AdapterSession } from '../../adapters/adapter.js';
import { quoteIdentifierAnsi as q } from '../../adapters/dialect.js';
import { rolledBack } from '../../adapters/transaction.js';
import { selectBody } from '../../adapters/sql-text.js';
import type { BoundColumn } from './binder.js';

export interface TargetBindRequest {
  /** Inputs that are not models (seeds, sources): stand-ins with these columns and engine types. */
  tables: Array<{ relation: string; columns: BoundColumn[] }>;
  /** Models in graph order; each may read the tables and the models before it. */
  models: Array<{ id: string; relation: string; sql: string; incrementalSql?: string; inputs: string[] }>;
}

export type TargetBindOutcome = { columns: BoundColumn[] } | { error: string; hint?: string; offset?: number; incremental?: boolean } | { skipped: string };

interface Rewritten {
  sql: string;
  /** Replacements made, in order: where in the original, how long it was, how long the stand-in is. */
  edits: Array<{ at: number; from: number; to: number }>;
}

export async function bindOnPostgres(adapter: Adapter, request: TargetBindRequest): Promise<Map<string, TargetBindOutcome>> {
  const out = new Map<string, TargetBindOutcome>();
  const standIn = new Map<string, string>();
  const name = () => q(`etl_check_${standIn.size}`);
  for (const t of request.tables) standIn.set(t.relation, `pg_temp.${name()}`);
  for (const m of request.models) standIn.set(m.relation, `pg_temp.${name()}`);
  const pattern = standIn.size ? new RegExp([...standIn.keys()].sort((a, b) => b.length - a.length).map(escape).join('|'), 'g') : undefined;
  const rewrite = (sql: string): Rewritten => {
    const edits: Rewritten['edits'] = [];
    const text = pattern ? sql.replace(pattern, (m, at: number) => {
      const to = standIn.get(m)!;
      edits.push({ at, from: m.length, to: to.length });
      return to;
    }) : sql;
    return { sql: text, edits };
  };
  await adapter.withSession((session) =>
    rolledBack(session, async () => {
      for (const t of request.tables) {
        const cols = t.columns.length ? t.columns.map((c) => `${q(c.name)} ${c.type}`).join(', ') : '';
        await session.execute(`create temp table ${standIn.get(t.relation)!.slice('pg_temp.'.length)} (${cols})`);
      }
      for (const m of request.models) {
        const failed = m.inputs.find((i) => out.has(i) && !('columns' in out.get(i)!));
        if (failed) {
          out.set(m.id, { skipped: `upstream ${failed.split('.').slice(2).join('.')} does not bind on the target` });
          continue;
        }
        const target = standIn.get(m.relation)!.slice('pg_temp.'.length);
        const full = await createAs(session, target, rewrite(m.sql));
        if ('error' in full) {
          out.set(m.id, full);
          continue;
        }
        if (m.incrementalSql !== undefined) {
          const check = await createAs(session, q(`etl_check_inc_${out.size}`), rewrite(m.incrementalSql));
          if ('error' in check) {
            out.set(m.id, { ...check, incremental: true });
            continue;
          }
        }
        out.set(m.id, full);
      }
    }),
  );
  return out;
}

async function createAs(session: AdapterSession, target: string, r: Rewritten): Promise<TargetBindOutcome> {
  const prefix = `create temp table ${target} as\n`;
  await session.execute('savepoint etl_check');
  try {
    await session.execute(`${prefix}${selectBody(r.sql)}\nwith no data`);
    const cols = await session.query(
      `select a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) from pg_catalog.pg_attribute a
        where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum`,
      [`pg_temp.${target}`],
    );
    await session.execute('release savepoint etl_check');
    return { columns: cols.rows.map((row) => ({ name: String(row[0]), type: String(row[1]) })) };
  } catch (err) {
    await session.execute('rollback to savepoint etl_check');
    const e = err as Error & { position?: string; hint?: string; code?: string };
    // A data exception (class 22: a constant Postgres folds while planning, such as
    // 'x'::integer) is about values, not names or types: the run reports it.
    if (e.code?.startsWith('22')) return { skipped: `Postgres rejects a value while planning it: ${e.message.split('\n')[0]}` };
    const position = e.position ? Number(e.position) - 1 - prefix.length : undefined;
    return { error: e.message, hint: e.hint, offset: position === undefined || position < 0 ? undefined : originalOffset(position, r.edits) };
  }
}

/** An offset in the rewritten SQL as an offset in the original. */
function originalOffset(offset: number, edits: Rewritten['edits']): number {
  let shift = 0;
  for (const e of edits) {
    const start = e.at + shift;
    if (offset < start) break;
    if (offset < start + e.to) return e.at;
    shift += e.to - e.from;
  }
  return offset - shift;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
