// Binding on a Postgres server, for SQL DuckDB cannot bind (Postgres-only
// functions or syntax) and for Postgres's own result types. Each model is
// sent as `select * from (<its SQL>) as etl_check limit 0`, its inputs
// replaced by empty CTEs of their columns and types (`select null::numeric(38,2)
// as amount ... where false`): the server parses, binds and plans it and
// describes its result (types with their modifiers), and no row is read.
// Nothing is created, so nothing takes a lock or touches the catalog (a
// temporary table per model cost ~10 ms and a lock each, and 10,000 of them
// overflow the server's lock table); everything still runs inside one
// transaction that is always rolled back. Models go wave by wave (a model
// after everything it reads), BATCH of them per round trip; a batch that
// fails is bound model by model, under savepoints, to name the failing one
// and its position.

import type { Adapter, AdapterSession } from '../../adapters/adapter.js';
import { quoteIdentifierAnsi as q } from '../../adapters/dialect.js';
import { rolledBack } from '../../adapters/transaction.js';
import { selectBody } from '../../adapters/sql-text.js';
import { injectCtes } from '../compiler/ephemeral.js';
import type { BoundColumn } from './binder.js';

export interface TargetBindRequest {
  /** Inputs that are not models (seeds, sources): stand-ins with these columns and engine types. */
  tables: Array<{ relation: string; columns: BoundColumn[] }>;
  /** Models in graph order; each may read the tables and the models before it. */
  models: Array<{ id: string; relation: string; sql: string; incrementalSql?: string; inputs: string[]; extraColumns?: string }>;
}

export type TargetBindOutcome = { columns: BoundColumn[] } | { error: string; hint?: string; offset?: number; incremental?: boolean } | { skipped: string };

type Model = TargetBindRequest['models'][number];

/** A model's query as sent, and how to map a position in it back to the model's SQL. */
interface Sent {
  text: string;
  original: (offset: number) => number;
}

/** Models per round trip. */
const BATCH = 200;
/** What a model's query is wrapped in; `extra`: select items its relation has besides the query's (a snapshot's etl_ columns). */
const prefix = (extra?: string) => `select *${extra ? `, ${extra}` : ''} from (\n`;

export async function bindOnPostgres(adapter: Adapter, request: TargetBindRequest): Promise<Map<string, TargetBindOutcome>> {
  const out = new Map<string, TargetBindOutcome>();
  const cteName = new Map<string, string>();
  for (const t of request.tables) cteName.set(t.relation, `etl_check_${cteName.size}`);
  for (const m of request.models) cteName.set(m.relation, `etl_check_${cteName.size}`);
  // Columns of what a model may read: the tables, and the models of earlier waves once bound.
  const columnsOf = new Map(request.tables.map((t) => [t.relation, t.columns]));
  const standIns = new Map<string, string>();
  const standIn = (relation: string) => {
    let sql = standIns.get(relation);
    if (sql === undefined) standIns.set(relation, (sql = `select ${columnsOf.get(relation)!.map((c) => `null::${c.type} as ${q(c.name)}`).join(', ')} where false`));
    return sql;
  };

  const prepare = (sql: string, extra?: string): Sent => {
    // Relations: quoted dotted names, looked up whole or without trailing parts ("s"."t"."column").
    const edits: Array<{ at: number; from: number; to: number }> = [];
    const reads = new Set<string>();
    const body = selectBody(sql).replace(QUOTED_PATH, (m: string, at: number) => {
      for (let end = m.length; end > 0; end = m.lastIndexOf('.', end - 1)) {
        const relation = m.slice(0, end).replace(/"\s*\.\s*"/g, '"."');
        const name = cteName.get(relation);
        if (name === undefined || !columnsOf.has(relation)) continue;
        const to = q(name);
        edits.push({ at, from: end, to: to.length });
        reads.add(relation);
        return to + m.slice(end);
      }
      return m;
    });
    const withCtes = injectCtes(body, [...reads].map((r) => ({ name: q(cteName.get(r)!), sql: standIn(r) })));
    // injectCtes inserts one piece of text: where, and how long.
    let at = 0;
    while (at < body.length && body[at] === withCtes[at]) at++;
    const inserted = withCtes.length - body.length;
    const head = prefix(extra);
    return {
      text: `${head}${withCtes}\n) as etl_check limit 0`,
      original: (offset) => {
        let o = offset - head.length;
        if (o >= at + inserted) o -= inserted;
        else if (o >= at) o = at;
        return originalOffset(o, edits);
      },
    };
  };

  const waveOf = new Map<string, number>();
  const waves: Model[][] = [];
  for (const m of request.models) {
    const w = Math.max(0, ...m.inputs.map((i) => (waveOf.get(i) ?? -1) + 1));
    waveOf.set(m.id, w);
    (waves[w] ??= []).push(m);
  }

  await adapter.withSession(async (session) => {
    if (!session.describeResults) throw new Error('this target cannot describe queries');
    await rolledBack(session, async () => {
      for (const wave of waves) {
        const ready: Array<{ m: Model; sent: Sent }> = [];
        for (const m of wave) {
          const failed = m.inputs.find((p) => out.has(p) && !('columns' in out.get(p)!));
          if (failed) out.set(m.id, { skipped: `upstream ${failed.split('.').slice(2).join('.')} does not bind on the target` });
          else ready.push({ m, sent: prepare(m.sql, m.extraColumns) });
        }
        for (let i = 0; i < ready.length; i += BATCH) await bindBatch(session, ready.slice(i, i + BATCH), out);
        for (const { m } of ready) {
          const r = out.get(m.id);
          if (!r || !('columns' in r)) continue;
          columnsOf.set(m.relation, r.columns);
          if (m.incrementalSql === undefined) continue;
          // The incremental branch reads {{this}}: the model's own result, just bound.
          const inc = await describeOne(session, prepare(m.incrementalSql));
          if (!('columns' in inc)) out.set(m.id, 'error' in inc ? { ...inc, incremental: true } : inc);
        }
      }
    });
  });
  return out;
}

async function bindBatch(session: AdapterSession, batch: Array<{ m: Model; sent: Sent }>, out: Map<string, TargetBindOutcome>): Promise<void> {
  if (batch.length > 1) {
    await session.execute('savepoint etl_check_batch');
    try {
      const results = await session.describeResults!(batch.map((b) => b.sent.text).join(';\n'));
      await session.execute('release savepoint etl_check_batch');
      batch.forEach((b, i) => out.set(b.m.id, { columns: results[i]! }));
      return;
    } catch {
      await session.execute('rollback to savepoint etl_check_batch');
    }
  }
  for (const b of batch) out.set(b.m.id, await describeOne(session, b.sent));
}

/** One query under a savepoint: its columns, its error, or why it is left to the run. */
async function describeOne(session: AdapterSession, sent: Sent): Promise<TargetBindOutcome> {
  await session.execute('savepoint etl_check');
  try {
    const [columns] = await session.describeResults!(sent.text);
    await session.execute('release savepoint etl_check');
    return { columns: columns! };
  } catch (err) {
    await session.execute('rollback to savepoint etl_check');
    const e = err as Error & { position?: string; hint?: string; code?: string };
    // A data exception (class 22: a constant Postgres folds while planning, such as
    // 'x'::integer) is about values, not names or types: the run reports it.
    if (e.code?.startsWith('22')) return { skipped: `Postgres rejects a value while planning it: ${e.message.split('\n')[0]}` };
    const position = e.position ? sent.original(Number(e.position) - 1) : undefined;
    return { error: e.message, hint: e.hint, offset: position === undefined || position < 0 ? undefined : position };
  }
}

/** An offset in the rewritten SQL as an offset in the original. */
function originalOffset(offset: number, edits: Array<{ at: number; from: number; to: number }>): number {
  let shift = 0;
  for (const e of edits) {
    const start = e.at + shift;
    if (offset < start) break;
    if (offset < start + e.to) return e.at;
    shift += e.to - e.from;
  }
  return offset - shift;
}

const QUOTED_PATH = /"(?:[^"]|"")+"(?:\s*\.\s*"(?:[^"]|"")+")+/g;
