// Loader nodes: extract from a source system and load the source's raw table.
// The rows stream from the source (core/extract/) into a table staged on the
// target (adapter.stageCsv), which is then checked and published in one
// atomic step: a full load swaps it in (publishTable), an incremental one
// merges it by the primary key (applyIncremental); the watermark (max of the
// cursor) commits with the data. A failure leaves the previous table as it
// was. Deletes at the source are seen by a full load, or by every run with
// `deletes: detect` (loader-deletes.ts: the source's keys, an anti join).

import { Readable } from 'node:stream';
import type { AdapterSession, BoundedMemoryOptions, ColumnDef, MaterializeResult, StagedTable } from '../../adapters/adapter.js';
import type { LoaderSpec, ManifestNode } from '../compiler/manifest.js';
import { RunError } from '../errors.js';
import { backoffPolicy, CircuitOpenError, RetriesExhausted, withRetry } from '../runner/retry.js';
import { isTransientPgError } from '../../adapters/postgres/errors.js';
import { countedSource, extractorFor, lookbackAmount, TransientSourceError, type RejectedRecord, type SourceColumn, type SourceUnit } from '../extract/extractor.js';
import { FILE_COLUMN } from '../extract/files.js';
import { finishedBatches, storedWatermark, type StateRecord } from '../state/state.js';
import { formatBytes } from '../reporting/bytes.js';
import { relationOf, type Materialization, type MaterializationContext } from './materialization.js';
import { explainSchemaChangeFailure, planSchemaChange, planSourceDrift, type DriftPlan, type SchemaPlan } from './schema-change.js';
import { GONE, stageSourceKeys, stageWithDeletes } from './loader-deletes.js';

/** What one load moved, for the run output, run_results and history. */
export interface LoadStats {
  rows_read: number;
  rows_loaded: number;
  rows_rejected: number;
  /** deletes: detect: rows of the raw table whose key is no longer at the source, deleted. */
  rows_deleted?: number;
  bytes: number;
  seconds: number;
  rows_per_second: number;
}

/** Postgres sources: tries of the whole load after a transient failure, unless the loader says (`retries:`). */
const POSTGRES_SOURCE_RETRIES = 3;

export const loader: Materialization = {
  run: async (ctx) => {
    const spec = ctx.node.config.loader!;
    try {
      // HTTP retries each request itself; a Postgres load is tried again whole (nothing of a failed one was published).
      if (spec.type !== 'postgres') return await load(ctx);
      const { value, attempts } = await withRetry(() => load(ctx), {
        maxAttempts: 1 + (spec.retries ?? POSTGRES_SOURCE_RETRIES),
        policy: backoffPolicy(spec.retry_backoff),
        isTransient: transientSourceFailure,
        now: () => ctx.clock.now(),
        signal: ctx.signal,
      });
      if (attempts.length === 1) return value;
      const retried = attempts.length - 1;
      return { ...value, message: `${value.message}; after ${retried} ${retried === 1 ? 'retry' : 'retries'} (${attempts[0]!.message})` };
    } catch (thrown) {
      const err = thrown instanceof RetriesExhausted ? thrown.cause : thrown;
      // The source's host is resting after failing again and again: not called, the node and those after it skipped.
      if (err instanceof CircuitOpenError) return { rowsAffected: 0, status: 'skipped', message: `skipped: source ${spec.source}: ${err.message}` };
      if (thrown instanceof RetriesExhausted && thrown.attempts.length > 1) {
        const first = (err as Error)?.message ?? String(err);
        throw new RunError(`${first}\n  (gave up after ${thrown.attempts.length} attempts; retries: ${thrown.attempts.length - 1})`);
      }
      throw err;
    }
  },
};

/** A refused or dropped source connection (or a backend terminated under the load): the load is tried again. */
function transientSourceFailure(err: unknown): boolean {
  return err instanceof TransientSourceError || (!(err instanceof CircuitOpenError) && !(err instanceof RunError) && isTransientPgError(err));
}

async function load(ctx: MaterializationContext): Promise<MaterializeResult> {
  const bound = new HeldBound(ctx);
  try {
    return await loadOnce(ctx, bound);
  } finally {
    await bound.release();
  }
}

async function loadOnce(ctx: MaterializationContext, bound: HeldBound): Promise<MaterializeResult> {
  const { adapter, session, node } = ctx;
  const spec = node.config.loader!;
  const relation = relationOf(node);
  const t0 = performance.now();
  const declaredTypes = Object.fromEntries(Object.values(node.columns).flatMap((c) => (c.data_type ? [[c.name, c.data_type]] : [])));
  const extractor = extractorFor(spec, ctx.manifest.metadata.project_root, process.env, declaredTypes, ctx.clock);
  // The source is opened while the target is asked what it holds.
  const opened = extractor.open();
  opened.catch(() => undefined);
  const incremental = spec.incremental;
  const refresh = node.config.full_refresh === false ? false : ctx.fullRefresh || node.config.full_refresh === true;
  let existing: Awaited<ReturnType<typeof adapter.relationKind>>;
  let since: { cursor: string; value: string; lookback: number } | undefined;
  let units: SourceUnit[] | undefined;
  let bytes = 0;
  let staged: StagedTable | undefined;
  /** deletes: detect: every key at the source, staged. */
  let sourceKeys: StagedTable | undefined;
  let columns: SourceColumn[] = [];
  /** Good records read at the source, where it counts them (more than staged when only those past the watermark are kept). */
  let goodRead = 0;
  let rejected: RejectedRecord[] = [];
  let perFile = new Map<string, number>();
  let closing: Promise<void> | undefined;
  let tableColumns: ColumnDef[] | undefined;
  /** Rows merged into the table there (a watermark or new files), not a full load. */
  let merging = false;
  try {
    existing = await adapter.relationKind(session, relation);
    const replacing = !existing || refresh || (!incremental && !extractor.units);
    if (incremental && !replacing) {
      const stored = await storedWatermark(adapter, session, relation);
      if (stored?.value != null && stored.column === incremental.cursor) since = { cursor: incremental.cursor, value: stored.value, lookback: lookbackAmount(incremental.lookback) };
    }
    // A merge since the watermark: the table's columns (for drift) are read while the source is still opening, not after the stage.
    if (since) tableColumns = await adapter.listColumns(session, relation);
    await adapter.prepareBoundedMemory?.(session);
    await opened;
    if (extractor.units) {
      const done = replacing ? new Set<string>() : await finishedBatches(adapter, session, relation);
      units = (await extractor.units()).filter((u) => !done.has(u.key));
      extractor.only!(new Set(units.map((u) => u.key)));
      if (units.length === 0) return nothingNew(t0, existing ? 'no new or changed files' : `no files match ${spec.path}`);
    }
    columns = await extractor.columns({ since: since?.value });
    rejected = extractor.rejected?.() ?? [];
    perFile = (await extractor.rowsPerFile?.()) ?? perFile;
    if (columns.length === 0) {
      // No record at all (an API with nothing new): nothing changes but the rejected ones.
      checkRejected(spec, rejected.length, 0);
      if (rejected.length) await keepRejected(ctx, relation, rejected);
      return nothingNew(t0, 'no new records', rejected.length);
    }
    checkColumns(spec, columns);
    goodRead = await countRows(extractor, perFile);
    checkRejected(spec, rejected.length, goodRead);
    const count = (n: number) => void (bytes += n);
    const rows = countedSource(extractor.extract({ columns, since }), count);
    const targetColumns = columns.map((c) => ({ name: c.name, type: adapter.dialect.typeFromPostgres(c.type) }));
    // A merge's steps, from the stage to the merge, under one bound (with the merge's allowance for its deletes).
    merging = !!existing && !refresh && (since !== undefined || units !== undefined);
    if (merging) await bound.hold({ deletingFrom: relation });
    staged = await bound.run(() => adapter.stageCsv(session, relation, targetColumns, rows, { transient: !!existing && !replacing }));
    // A merge that detects deletes reads every key too, in the same snapshot (a full load has every row anyway).
    if (incremental?.deletes === 'detect' && since !== undefined) {
      const keyColumns = incremental.primary_key;
      try {
        sourceKeys = await bound.run(() => stageSourceKeys(ctx, extractor, relation, columns, keyColumns, count));
      } catch (err) {
        await adapter.discardStaged(session, staged);
        throw err;
      }
    }
    // Staged: the source's connection closes while the rows are checked and merged.
    closing = opened.catch(() => undefined).then(() => extractor.close());
    closing.catch(() => undefined);
  } finally {
    if (!closing) {
      await opened.catch(() => undefined);
      await extractor.close();
    }
  }

  let loaded: number;
  let deleted = 0;
  let drift: { added: string[]; removed: string[]; changed: string[] } | undefined;
  try {
    if (incremental && !(await extractor.keyIsUnique?.(incremental.primary_key))) {
      const rel = adapter.dialect.relation(staged.relation.schema, staged.relation.name);
      await bound.run(() => checkUniqueKey(session, adapter.dialect.quoteIdentifier, rel, spec, incremental.primary_key));
    }
    const state: StateRecord[] = incremental
      ? [{ kind: 'watermark', relation, uniqueId: node.unique_id, eventTimeColumn: incremental.cursor, runId: ctx.runId, at: ctx.clock.now().toISOString(), newRows: merging ? staged.relation : undefined }]
      : units
        ? [
            ...(merging ? [] : [{ kind: 'batches_cleared' as const, relation }]),
            ...units.map((u): StateRecord => ({ kind: 'batch', relation, uniqueId: node.unique_id, start: u.key, end: u.name, status: 'success', runId: ctx.runId, at: ctx.clock.now().toISOString(), message: '', rows: perFile.get(u.name) ?? 0 })),
          ]
        : [];
    if (!merging) {
      // Bounded too: Delta writes the staged rows out as Parquet here, and would hold them all on the way.
      const table = staged;
      await bound.run(() => adapter.publishTable(session, table, relation, { state }));
      loaded = staged.rows ?? 0;
    } else {
      // deletes: detect: the changed rows and the keys gone at the source, applied together.
      const keys = sourceKeys;
      const withDeletes = keys ? await bound.run(() => stageWithDeletes(ctx, relation, staged!, keys, columns, incremental!.primary_key)) : undefined;
      const applying = withDeletes?.staged ?? staged;
      try {
        // The loader's own on_schema_change if it sets one, else: add, keep removed (warn), widen, fail on the rest.
        const ignored = withDeletes ? [GONE] : [];
        const plan = node.config.on_schema_change
          ? await planSchemaChange(adapter, session, node, relation, applying.relation, ignored, tableColumns, applying.columns)
          : await planSourceDrift(adapter, session, node, relation, applying.relation, ignored, tableColumns, applying.columns);
        drift = describeDrift(plan);
        try {
          const applied = await bound.run(
            async () =>
              adapter.applyIncremental(session, {
                // Files: a changed file's rows replace the rows it gave before; deletes: a key gone deletes its row.
                // A row the table has columns for that the source no longer gives is replaced whole (delete+insert):
                // NULL there on every engine, where a merge would keep the old value on some.
                ...(units
                  ? { strategy: 'delete+insert', uniqueKey: [FILE_COLUMN] }
                  : withDeletes || (await lacksColumns(ctx, relation, plan, tableColumns))
                    ? { strategy: 'delete+insert', uniqueKey: incremental!.primary_key, ...(withDeletes ? { deletedFlag: GONE } : {}) }
                    : { strategy: 'merge', uniqueKey: incremental!.primary_key }),
                target: relation,
                staged: applying.relation,
                columns: plan.columns,
                columnChanges: plan.changes,
                stagedRows: applying.rows,
                state,
              }),
            { deletingFrom: relation },
          );
          deleted = withDeletes?.deleted ?? 0;
          loaded = applied.rowsAffected - deleted;
        } catch (err) {
          throw explainSchemaChangeFailure(node, plan, err);
        }
      } finally {
        if (withDeletes) await adapter.discardStaged(session, withDeletes.staged);
      }
      await adapter.discardStaged(session, staged);
    }
  } catch (err) {
    await adapter.discardStaged(session, staged);
    await closing;
    throw err;
  } finally {
    if (sourceKeys) await adapter.discardStaged(session, sourceKeys);
  }
  await closing;
  if (rejected.length) await keepRejected(ctx, relation, rejected);
  const seconds = (performance.now() - t0) / 1000;
  const read = Math.max(staged.rows ?? loaded, goodRead) + rejected.length;
  const stats: LoadStats = { rows_read: read, rows_loaded: loaded, rows_rejected: rejected.length, ...(sourceKeys ? { rows_deleted: deleted } : {}), bytes, seconds: round(seconds, 3), rows_per_second: Math.round(read / Math.max(seconds, 1e-3)) };
  const warning = drift?.removed.length && !node.config.on_schema_change ? `; column${drift.removed.length === 1 ? '' : 's'} ${drift.removed.join(', ')} no longer at the source (kept, NULL in new rows)` : '';
  const changed = drift ? [...drift.added.map((c) => `+${c}`), ...drift.changed.map((c) => `~${c}`)] : [];
  const how = units && merging ? `LOAD ${units.length} new or changed file${units.length === 1 ? '' : 's'}` : merging ? `MERGE since ${since!.value}` : existing ? (refresh ? 'FULL REFRESH' : 'FULL LOAD') : 'CREATE TABLE';
  return {
    rowsAffected: loaded,
    message: `${how} (${read} rows read, ${loaded} loaded${sourceKeys ? `, ${deleted} deleted` : ''}${rejected.length ? `, ${rejected.length} rejected` : ''}, ${formatBytes(bytes)}, ${stats.rows_per_second} rows/s${changed.length ? `, columns ${changed.join(' ')}` : ''})${warning}`,
    ...(warning ? { status: 'warn' as const } : {}),
    // The run history keeps these (etl history): the bytes read at the source and moved into the target.
    bytesScanned: bytes,
    bytesWritten: bytes,
    stats: { ...stats, ...(drift && (drift.added.length || drift.removed.length || drift.changed.length) ? { schema_changes: drift } : {}) },
  };
}

/** Whether the table has columns (not dropped by the plan) that the new rows do not give; `tableColumns`: the table's, where already read. */
async function lacksColumns(ctx: MaterializationContext, relation: { schema: string; name: string }, plan: SchemaPlan | DriftPlan, tableColumns: ColumnDef[] | undefined): Promise<boolean> {
  if ('removed' in plan) return plan.removed.length > 0;
  const dropped = new Set(plan.changes.flatMap((c) => (c.kind === 'drop' ? [c.column] : [])));
  const given = new Set(plan.columns);
  // The table's columns as read before the stage (a merge since the watermark), which nothing has changed since.
  return (tableColumns ?? (await ctx.adapter.listColumns(ctx.session, relation))).some((c) => !given.has(c.name) && !dropped.has(c.name));
}

/**
 * The steps of a load whose memory would grow with the table (the stage, the
 * key check, a full load's publish, a merge) run with the engine's memory
 * bounded, where it has a bound to set (DuckDB's buffer pool); a merge's
 * bound allows for the rows it deletes (see DuckDbAdapter.withBoundedMemory).
 */
function bounded<T>(ctx: MaterializationContext, fn: () => Promise<T>, options?: BoundedMemoryOptions): Promise<T> {
  // A merge is bounded only where the adapter bounds merges (Adapter.boundsMerges); elsewhere it runs at the engine's own limit.
  if (options?.deletingFrom && !ctx.adapter.boundsMerges) return fn();
  return ctx.adapter.withBoundedMemory ? ctx.adapter.withBoundedMemory(ctx.session, fn, options) : fn();
}

/**
 * The bound of a load's steps: each step bounded alone (`run`), or, once
 * `hold` is called (a merge, before its stage), one bound held over every
 * step until `release`: the engine's setting is made once and set back once,
 * not set back and made again between the stage and the merge. The held
 * bound has the merge's allowance for its deletes from the stage on (the
 * run's largest bound is the same: the merge's). Only where the adapter
 * bounds a merge as it does a stage (Adapter.boundsMerges).
 */
class HeldBound {
  private held?: { done: Promise<unknown>; release: () => void };

  constructor(private readonly ctx: MaterializationContext) {}

  async hold(options: BoundedMemoryOptions): Promise<void> {
    const bounding = this.ctx.adapter.withBoundedMemory;
    if (!bounding || !this.ctx.adapter.boundsMerges || this.held) return;
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const done = bounding.call(this.ctx.adapter, this.ctx.session, () => {
      entered();
      return released;
    }, options);
    done.catch(() => undefined);
    // Held once the bound is set; setting it failed, nothing is held.
    await Promise.race([inside, done]);
    this.held = { done, release };
  }

  run<T>(fn: () => Promise<T>, options?: BoundedMemoryOptions): Promise<T> {
    return this.held ? fn() : bounded(this.ctx, fn, options);
  }

  async release(): Promise<void> {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    held.release();
    await held.done;
  }
}

export function nothingNew(t0: number, why: string, rejected = 0): MaterializeResult {
  const seconds = round((performance.now() - t0) / 1000, 3);
  return { rowsAffected: 0, message: `NOTHING TO LOAD (${why})`, stats: { rows_read: rejected, rows_loaded: 0, rows_rejected: rejected, bytes: 0, seconds, rows_per_second: 0 } };
}

/** Records read, for max_rejected as a percentage: per file when the source counts them so. */
async function countRows(extractor: { rowsRead?(): Promise<number> }, perFile: Map<string, number>): Promise<number> {
  if (extractor.rowsRead) return extractor.rowsRead();
  return [...perFile.values()].reduce((a, b) => a + b, 0);
}

/** max_rejected: a count, or a percentage of the records read; exceeded, nothing of the run is published. */
function checkRejected(spec: LoaderSpec, rejected: number, good: number): void {
  if (rejected === 0) return;
  const limit = spec.max_rejected ?? 0;
  const total = rejected + good;
  const over = typeof limit === 'number' ? rejected > limit : (rejected / Math.max(total, 1)) * 100 > parseFloat(limit);
  if (over) {
    throw new RunError(
      `loader of source ${spec.source} (${spec.declared_at}): ${rejected} of ${total} records rejected, more than max_rejected (${limit}); nothing of this run is published\n  hint: fix the files, or raise max_rejected to load the good records and keep the bad ones in ${spec.source.split('.')[1]}__rejected`,
    );
  }
}

/** Rejected records go to <table>__rejected (created on first use): the raw record, the error, where it was, and the run. */
async function keepRejected(ctx: MaterializationContext, relation: { schema: string; name: string }, rejected: RejectedRecord[]): Promise<void> {
  const { adapter, session } = ctx;
  const into = { schema: relation.schema, name: `${relation.name}__rejected` };
  const csvField = (v: string | number) => `"${String(v).replace(/"/g, '""')}"`;
  const text = rejected.map((r) => [r.file, r.line, r.raw, r.error, ctx.runId, ctx.clock.now().toISOString()].map(csvField).join(',')).join('\n') + '\n';
  const t = (name: string) => adapter.dialect.typeFromPostgres(name);
  const columns = [
    { name: 'file', type: t('text') },
    { name: 'line', type: t('bigint') },
    { name: 'raw_record', type: t('text') },
    { name: 'error', type: t('text') },
    { name: 'run_id', type: t('text') },
    { name: 'rejected_at', type: t('timestamp with time zone') },
  ];
  const exists = await adapter.relationKind(session, into);
  const staged = await adapter.stageCsv(session, into, columns, Readable.from([text]), { transient: !!exists });
  try {
    if (exists) await adapter.applyIncremental(session, { strategy: 'append', target: into, staged: staged.relation, columns: columns.map((c) => c.name), uniqueKey: [], columnChanges: [], state: [] });
    else await adapter.publishTable(session, staged, into);
  } finally {
    if (exists) await adapter.discardStaged(session, staged);
  }
}

/** The cursor and the primary key must be columns at the source: an error names the source and its yml line. */
function checkColumns(spec: LoaderSpec, columns: SourceColumn[]): void {
  if (!spec.incremental) return;
  const names = columns.map((c) => c.name);
  const wanted = [['cursor', [spec.incremental.cursor]] as const, ['primary_key', spec.incremental.primary_key] as const];
  for (const [key, list] of wanted) {
    const missing = list.filter((c) => !names.includes(c));
    if (missing.length) {
      throw new RunError(
        `loader of source ${spec.source} (${spec.declared_at}): incremental.${key} ${missing.map((m) => `"${m}"`).join(', ')} is not a column at the source; its columns: ${names.join(', ')}\n  hint: name one of its columns, or add the column to ${spec.query !== undefined ? 'the query' : `table ${spec.table}`}; the raw table is unchanged`,
      );
    }
  }
}

/** A primary key that is not unique in the extracted rows would merge arbitrarily: refused, naming the keys. */
async function checkUniqueKey(session: AdapterSession, quote: (s: string) => string, staged: string, spec: LoaderSpec, key: string[]): Promise<void> {
  const cols = key.map(quote).join(', ');
  const dup = await session.query(`select ${cols}, count(*) as n from ${staged} group by ${cols} having count(*) > 1 order by count(*) desc limit 5`);
  if (dup.rows.length === 0) return;
  const shown = dup.rows.map((r) => `${key.length > 1 ? `(${r.slice(0, key.length).map(String).join(', ')})` : String(r[0])} x${String(r[key.length])}`).join(', ');
  throw new RunError(
    `loader of source ${spec.source} (${spec.declared_at}): primary_key ${key.join(', ')} is not unique in the extracted rows: ${shown}${dup.rows.length === 5 ? ', ...' : ''}\n  hint: fix the key at the source or name the columns that identify a row; the raw table is unchanged`,
  );
}

/** What changed in the raw table's columns, for run_results (schema_changes) and the run output. */
export function describeDrift(plan: SchemaPlan | DriftPlan): { added: string[]; removed: string[]; changed: string[] } {
  if ('removed' in plan) return { added: plan.added, removed: plan.removed, changed: plan.widened };
  return {
    added: plan.changes.flatMap((c) => (c.kind === 'add' ? [c.column] : [])),
    removed: plan.changes.flatMap((c) => (c.kind === 'drop' ? [c.column] : [])),
    changed: plan.changes.flatMap((c) => (c.kind === 'alter_type' ? [c.column] : [])),
  };
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
