// The state API: what a run remembers about a target between runs, and must
// outlive the machine that ran it. Run history (runs, node runs), the
// watermark of each incremental model, the finished and failed batches of
// microbatch models and the snapshot runs. Every machine that builds the same
// target sees the same state, so it lives in the target itself.
//
// THE SEAM (what an adapter implements):
// - Materializations never write state themselves. They describe it as typed
//   StateRecords and hand them to the adapter's atomic operation that changes
//   the data: publishTable, replaceTable, applyIncremental, applySnapshot.
//   The adapter stores them in the same atomic unit as the data (SQL engines:
//   the same transaction; Delta: the same commit, as commitInfo, txn or
//   domainMetadata), so a crash can never leave a watermark ahead of the data
//   or a batch marked done whose rows are missing.
// - Everything else goes through the adapter's StateStore (`adapter.state`):
//   preparing the store, the run's start and end, records that change no data
//   (a failed batch), the finished batches a microbatch run skips, and what
//   `etl state show` prints. The store assumes no SQL catalog: a SQL engine
//   keeps it in the `etl_meta` schema (adapters/sql-state.ts, shared by DuckDB
//   and Postgres), another engine where it can.
// - A record leaves out a count the adapter knows best (a batch's `rows`, a
//   snapshot run's `inserted`/`invalidated`): the adapter fills in what the
//   change it commits with actually did.
// - The store is versioned: an adapter refuses state written by a newer etl.

import type { Adapter, AdapterSession, Relation } from '../../adapters/adapter.js';

// Every time a record carries (`at`, a run's start and end) is an ISO 8601 UTC
// instant read from the run's clock (core/clock.ts), never the engine's
// current_timestamp: ETL_NOW pins them all.
export type StateRecord =
  /** max(event_time) of the relation after the change; `newRows`: the rows just added, where that maximum is (a shortcut, not a filter). */
  | { kind: 'watermark'; relation: Relation; uniqueId: string; eventTimeColumn: string; runId: string; at: string; newRows?: Relation }
  /** One microbatch interval [start, end); `rows` left out: the rows the change applied. */
  | { kind: 'batch'; relation: Relation; uniqueId: string; start: string; end: string; status: 'success' | 'error'; runId: string; at: string; message: string; rows?: number | null }
  /** Forgets every batch of a relation (a full refresh rebuilds them all). */
  | { kind: 'batches_cleared'; relation: Relation }
  /** One snapshot run; counts left out: the versions the change inserted and closed. */
  | { kind: 'snapshot_run'; relation: Relation; uniqueId: string; runId: string; at: string; inserted?: number; invalidated?: number };

export interface RunRecord {
  runId: string;
  command: string;
  target: string;
  version: string;
  /** ISO 8601, from the run's clock. */
  startedAt: string;
}

/** How a run ended. */
export interface RunEnd {
  runId: string;
  status: string;
  /** ISO 8601, from the run's clock. */
  finishedAt: string;
}

export interface NodeRunRecord {
  unique_id: string;
  relation: string | null;
  status: string;
  started_at: string | null;
  finished_at: string | null;
  rows_affected: number | null;
  message: string;
}

/** The recent run history (the docs site shows it), newest first. */
export interface RunHistory {
  runs: Array<{ run_id: string; command: string; status: string; started_at: string | null; finished_at: string | null }>;
  /** The last runs of each node, newest first per node. */
  node_runs: Array<NodeRunRecord & { run_id: string }>;
}

/** What `etl state show` prints: tables by name. */
export type StateTables = Record<string, { columns: string[]; rows: unknown[][] }>;

/** Where an adapter keeps state that is not committed with a data change. */
export interface StateStore {
  /** Creates the store or upgrades it to this etl's version (before a run that builds); returns the version. */
  prepare(session: AdapterSession): Promise<number>;
  runStarted(session: AdapterSession, run: RunRecord): Promise<void>;
  runFinished(session: AdapterSession, end: RunEnd, nodes: NodeRunRecord[]): Promise<void>;
  /** Records that change no data (a failed batch), committed together on their own. */
  record(session: AdapterSession, records: StateRecord[]): Promise<void>;
  /** Starts of the batches of `relation` that succeeded. */
  finishedBatches(session: AdapterSession, relation: Relation): Promise<Set<string>>;
  read(session: AdapterSession): Promise<StateTables>;
  /** The last `runs` runs and the last `perNode` runs of each node; undefined when there is no store yet. Read only. */
  history?(session: AdapterSession, limits: { runs: number; perNode: number }): Promise<RunHistory | undefined>;
}

/** The key a relation's state is kept under. */
export function relationKey(relation: Relation): string {
  return `${relation.schema}.${relation.name}`;
}

export function migrateState(adapter: Adapter, session: AdapterSession): Promise<number> {
  return adapter.state.prepare(session);
}

export function recordRunStart(adapter: Adapter, session: AdapterSession, run: RunRecord): Promise<void> {
  return adapter.state.runStarted(session, run);
}

export function recordRunEnd(adapter: Adapter, session: AdapterSession, end: RunEnd, nodes: NodeRunRecord[]): Promise<void> {
  return adapter.state.runFinished(session, end, nodes);
}

/** Records that change no data, on their own. */
export function recordState(adapter: Adapter, session: AdapterSession, records: StateRecord[]): Promise<void> {
  return adapter.state.record(session, records);
}

export function finishedBatches(adapter: Adapter, session: AdapterSession, relation: Relation): Promise<Set<string>> {
  return adapter.state.finishedBatches(session, relation);
}

/** Everything the state holds, for `etl state show`. */
export function readState(adapter: Adapter, session: AdapterSession): Promise<StateTables> {
  return adapter.state.read(session);
}
