// Microbatch incremental models: the model's rows are processed in batches of
// event time (hour, day or month). Each batch replaces its slice of the table
// and is recorded as done in etl_meta.batches in one transaction. A failed
// batch is recorded as failed and the others go on; `etl retry` reruns
// exactly the failed batches. `lookback` reprocesses the last N done batches
// to catch late-arriving rows.

import type { MaterializeResult } from '../../adapters/adapter.js';
import { selectBody } from '../../adapters/sql-text.js';
import { finishedBatches, recordState, type StateRecord } from '../state/state.js';
import { relationOf, type MaterializationContext } from './materialization.js';
import { wantsFullBuild, watermarkFor } from './incremental-state.js';

export type BatchSize = 'hour' | 'day' | 'month';
export type Batch = [start: string, end: string];

export const BATCH_START = '__ETL_BATCH_START__';
export const BATCH_END = '__ETL_BATCH_END__';

/** 'YYYY-MM-DD HH:MM:SS' in UTC: how batch bounds are written into SQL and state. */
export function formatBound(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

export function parseBound(text: string): Date {
  const t = text.trim();
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(t) ? `${t}T00:00:00Z` : /[zZ]|[+-]\d\d:?\d\d$/.test(t) ? t.replace(' ', 'T') : `${t.replace(' ', 'T')}Z`;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new Error(`"${text}" is not a date or timestamp`);
  return d;
}

export function truncate(d: Date, size: BatchSize): Date {
  const out = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), size === 'month' ? 1 : d.getUTCDate(), size === 'hour' ? d.getUTCHours() : 0));
  return out;
}

export function nextBound(d: Date, size: BatchSize): Date {
  if (size === 'hour') return new Date(d.getTime() + 3_600_000);
  if (size === 'day') return new Date(d.getTime() + 86_400_000);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
}

/** Batches covering [from, to), aligned to batch_size. */
export function batchesBetween(from: Date, to: Date, size: BatchSize): Batch[] {
  const out: Batch[] = [];
  for (let s = truncate(from, size); s < to; s = nextBound(s, size)) out.push([formatBound(s), formatBound(nextBound(s, size))]);
  return out;
}

/**
 * `event_time` within the batch. Bounds are UTC: against a column with a time
 * zone each bound is the UTC instant (a bare timestamp literal would be read
 * in the session's zone, which on DuckDB is the machine's); against a column
 * without one, the UTC wall-clock time.
 */
function inBatch(eventTime: string, batch: Batch, eventTimeType: string | undefined): string {
  const bound = (b: string) => (eventTimeType && /with time zone|timestamptz/i.test(eventTimeType) ? `cast('${b}+00:00' as timestamptz)` : `cast('${b}' as timestamp)`);
  return `${eventTime} >= ${bound(batch[0])} and ${eventTime} < ${bound(batch[1])}`;
}

function batchSql(code: string, eventTime: string, batch: Batch, quote: (s: string) => string, eventTimeType?: string): string {
  const filled = code.split(BATCH_START).join(batch[0]).split(BATCH_END).join(batch[1]);
  // The rows of a batch are only those in its interval, whatever the model's own filter.
  return `select * from (\n${selectBody(filled)}\n) as etl_batch where ${inBatch(quote(eventTime), batch, eventTimeType)}`;
}

const typeOf = (columns: Array<{ name: string; type: string }>, name: string) => columns.find((c) => c.name.toLowerCase() === name.toLowerCase())?.type;

/** A batch's number since the epoch, in batches of its size: ascending with its start (IncrementalChange.commitId's seq). */
export function batchSeq(batch: Batch, size: BatchSize): number {
  const start = parseBound(batch[0]);
  if (size === 'month') return start.getUTCFullYear() * 12 + start.getUTCMonth();
  return Math.floor(start.getTime() / (size === 'hour' ? 3_600_000 : 86_400_000));
}

export async function runMicrobatch(ctx: MaterializationContext): Promise<MaterializeResult> {
  const { adapter, session, node, runId } = ctx;
  const size = node.config.batch_size as BatchSize;
  const eventTime = node.config.event_time!;
  const relation = relationOf(node);
  const batchRecord = (b: Batch, status: 'success' | 'error', message = '', rows?: number | null): StateRecord => ({
    kind: 'batch',
    relation,
    uniqueId: node.unique_id,
    start: b[0],
    end: b[1],
    status,
    runId,
    at: ctx.clock.now().toISOString(),
    message,
    rows,
  });
  const q = (s: string) => adapter.dialect.quoteIdentifier(s);
  const existing = await adapter.relationKind(session, relation);
  const now = ctx.clock.now();
  const begin = parseBound(String(node.config.begin));
  const all = batchesBetween(begin, nextBound(truncate(now, size), size), size);

  // Which batches: an explicit range, the failed ones (retry), or what is not done yet plus lookback.
  let todo: Batch[];
  if (ctx.batchRange) todo = batchesBetween(parseBound(ctx.batchRange.start), parseBound(ctx.batchRange.end), size);
  else if (ctx.retryBatches) todo = ctx.retryBatches;
  else if (!existing || wantsFullBuild(ctx, existing)) todo = all;
  else {
    // As dbt: the batch of the last run (the latest done one) is always reprocessed, since it
    // may have been incomplete then, and `lookback` batches before it catch late-arriving rows.
    const done = await finishedBatches(adapter, session, relation);
    const lookback = node.config.lookback ?? 1;
    let lastDone = -1;
    all.forEach((b, i) => {
      if (done.has(b[0])) lastDone = i;
    });
    const from = lastDone < 0 ? 0 : Math.max(0, lastDone - lookback);
    todo = all.filter((b, i) => !done.has(b[0]) || i >= from);
  }

  const code = existing && !wantsFullBuild(ctx, existing) ? (node.compiled_incremental_code ?? node.compiled_code) : node.compiled_code;
  const successful: Batch[] = [];
  const failed: Array<{ batch: Batch; reason: string }> = [];
  let rows = 0;

  if (existing && wantsFullBuild(ctx, existing) && !ctx.batchRange && !ctx.retryBatches) {
    // Full refresh: every batch goes into a staged table that replaces the old one at once.
    const staged = await adapter.stageTable(session, relation, `select * from (${batchSql(code, eventTime, all[0] ?? [formatBound(begin), formatBound(begin)], q)}) as etl_empty limit 0`);
    try {
      const stagedDefs = await adapter.listColumns(session, staged.relation);
      const stagedColumns = stagedDefs.map((c) => c.name);
      for (const b of all) {
        const r = await adapter.applyIncremental(session, { strategy: 'append', target: staged.relation, staged: { sql: batchSql(code, eventTime, b, q, typeOf(stagedDefs, eventTime)) }, columns: stagedColumns, uniqueKey: [], columnChanges: [], state: [] });
        rows += r.rowsAffected;
      }
      // The table, its finished batches and its watermark change together.
      await adapter.publishTable(session, staged, relation, {
        state: [{ kind: 'batches_cleared', relation }, ...all.map((b) => batchRecord(b, 'success', '', null)), ...watermarkFor(ctx)],
        deletionVectors: node.config.deletion_vectors,
      });
    } catch (err) {
      await adapter.discardStaged(session, staged);
      throw err;
    }
    return { rowsAffected: rows, message: `FULL REFRESH (${all.length} batches, ${rows} rows)`, batches: { successful: all, failed: [] } };
  }

  if (!existing) {
    // First build: an empty table with the model's columns, then batch by batch.
    const shape = await adapter.stageTable(session, relation, `select * from (${batchSql(node.compiled_code, eventTime, all[0] ?? [formatBound(begin), formatBound(begin)], q)}) as etl_empty limit 0`);
    await adapter.publishTable(session, shape, relation, { deletionVectors: node.config.deletion_vectors });
  }
  const columnDefs = await adapter.listColumns(session, relation);
  const columns = columnDefs.map((c) => c.name);
  const eventTimeType = typeOf(columnDefs, eventTime);
  for (const [i, b] of todo.entries()) {
    const where = inBatch(q(eventTime), b, eventTimeType);
    try {
      const r = await adapter.applyIncremental(session, {
        strategy: 'replace_where',
        target: relation,
        staged: { sql: batchSql(code, eventTime, b, q, eventTimeType) },
        columns,
        uniqueKey: [],
        where,
        columnChanges: [],
        deletionVectors: node.config.deletion_vectors,
        // The batch is recorded with its rows (its slice of the table: the rows applied).
        // The watermark (a scan of the table) is refreshed with the last batch only:
        // behind the data after a crash is safe, ahead of it never happens.
        state: [batchRecord(b, 'success'), ...(i === todo.length - 1 ? watermarkFor(ctx) : [])],
        // A batch replaces its slice, so applying it twice gives the same rows; within a run
        // (the runner's retries of the node) a batch already committed is not committed again.
        commitId: { run: runId, seq: batchSeq(b, size) },
      });
      rows += r.rowsAffected;
      successful.push(b);
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      if (ctx.signal?.aborted) throw err;
      failed.push({ batch: b, reason: message.split('\n')[0]! });
      // Best effort: the batch's failure is already the node's error; a failed record only
      // means retry finds nothing recorded for it, and the next run redoes it as not done.
      await recordState(adapter, session, [batchRecord(b, 'error', message, null)]).catch(() => undefined);
    }
  }
  const batches = { successful, failed: failed.map((f) => f.batch) };
  if (failed.length) {
    const list = failed.map((f) => `  ${f.batch[0]} .. ${f.batch[1]}: ${f.reason}`).join('\n');
    return {
      status: 'error',
      rowsAffected: rows,
      message: `${failed.length} of ${todo.length} batches failed (retry them with etl retry):\n${list}`,
      batches,
    };
  }
  return { rowsAffected: rows, message: `MICROBATCH (${todo.length} batch${todo.length === 1 ? '' : 'es'}, ${rows} rows)`, batches };
}
