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
  | { kind: 'snapshot_run'; relation: Relation; uniqueId: string; runId: string; at: string; inserted?: number; invalidated?: number }
  /** A CDC loader's position in its source's change stream: every change committed at or before `position` (a Postgres LSN, 16/B374D848) is in the relation. */
  | { kind: 'cdc_position'; relation: Relation; uniqueId: string; slot: string; position: string; runId: string; at: string };

/** One invocation of etl: recorded when it starts, and again with its outcome when it ends (the history is append-only: no record is changed). */
export interface RunRecord {
  runId: string;
  command: string;
  target: string;
  version: string;
  /** The selection as given: "-s tag:daily --exclude big". */
  selection?: string | null;
  /** The job (`etl schedule`) that started it. */
  job?: string | null;
  /** The project's git commit, and whether tracked files differ from it. */
  gitCommit?: string | null;
  gitDirty?: boolean | null;
  user?: string | null;
  host?: string | null;
  /** ISO 8601, from the run's clock. */
  startedAt: string;
  /** Left out: running. An invocation that never ran (a job skipped for overlap) is recorded whole at once, with its end. */
  status?: string;
  finishedAt?: string;
  message?: string | null;
}

/** How a run ended. */
export interface RunEnd {
  runId: string;
  status: string;
  /** ISO 8601, from the run's clock. */
  finishedAt: string;
}

/** A relation a node read, as it was when the node ran. */
export interface UpstreamRead {
  relation: string;
  /** Rows, when this run built it (rows affected). */
  rows?: number | null;
  /** Its table version, on engines that version tables (Delta). */
  version?: number | null;
}

/** One attempt of one node (a node tried once has one). */
export interface NodeRunRecord {
  unique_id: string;
  relation: string | null;
  status: string;
  started_at: string | null;
  finished_at: string | null;
  rows_affected: number | null;
  message: string;
  /** 1-based; the last attempt's status is the node's. */
  attempt?: number;
  /** Seconds. */
  execution_time?: number | null;
  /** Where the engine reports them. */
  bytes_written?: number | null;
  bytes_scanned?: number | null;
  /**
   * Loaders: what the load moved, as run_results' adapter_response has it
   * (its `bytes` are bytes_scanned and bytes_written above); null for other
   * nodes, for a loader's failed attempts, and in rows an older etl wrote.
   */
  rows_read?: number | null;
  rows_loaded?: number | null;
  rows_rejected?: number | null;
  /** Loaders with `deletes: detect`. */
  rows_deleted?: number | null;
  rows_per_second?: number | null;
  upstream?: UpstreamRead[];
}

/** The load counts of a node run, in the order the history keeps them (etl_meta.node_runs, Delta's node_runs). */
export const LOAD_COLUMNS = ['rows_read', 'rows_loaded', 'rows_rejected', 'rows_deleted', 'rows_per_second'] as const;
/** The columns of a node_runs row, in the order the stores write them (etl_meta.node_runs, Delta's node_runs). */
export const NODE_RUN_COLUMNS = `run_id, unique_id, relation, status, started_at, finished_at, rows_affected, message, attempt, execution_time, bytes_written, bytes_scanned, upstream, ${LOAD_COLUMNS.join(', ')}`;
/** Their SQL types (counts as bigint; rows per second, rounded today, as a double). */
export const LOAD_COLUMN_TYPES: Record<(typeof LOAD_COLUMNS)[number], 'bigint' | 'double precision'> = { rows_read: 'bigint', rows_loaded: 'bigint', rows_rejected: 'bigint', rows_deleted: 'bigint', rows_per_second: 'double precision' };

/** What `etl history` and `etl report` read: invocations and node attempts since a time. */
export interface HistoryQuery {
  /** ISO instant: runs that started at or after it. */
  since?: string;
  /** Only these nodes' attempts (and the runs that ran them). */
  uniqueIds?: string[];
  /** The newest runs at most. */
  limit?: number;
}

export interface HistoryRun {
  run_id: string;
  command: string | null;
  target: string | null;
  selection: string | null;
  job: string | null;
  git_commit: string | null;
  git_dirty: boolean | null;
  user: string | null;
  host: string | null;
  etl_version: string | null;
  started_at: string | null;
  finished_at: string | null;
  status: string;
  message: string | null;
}

export interface HistoryNodeRun extends Required<Omit<NodeRunRecord, 'upstream'>> {
  run_id: string;
  upstream: UpstreamRead[];
}

export interface HistoryRows {
  runs: HistoryRun[];
  node_runs: HistoryNodeRun[];
}

/** The recent run history (the docs site shows it), newest first. */
export interface RunHistory {
  runs: Array<{ run_id: string; command: string; status: string; started_at: string | null; finished_at: string | null }>;
  /** The last runs of each node, newest first per node. */
  node_runs: Array<NodeRunRecord & { run_id: string }>;
}

/** What a second of a node's time and a GB written or scanned cost (etl.yml `cost:`). */
export interface CostRates {
  per_cpu_hour: number;
  per_gb_written: number;
  per_gb_scanned: number;
}

/** What `etl report` asks the store to aggregate. */
export interface ReportQuery {
  /** ISO: the period's start (it runs to now). */
  since: string;
  /** ISO: the previous period's start; it ends at `since`. */
  previousSince?: string;
  rates: CostRates;
  /** ISO: also the cost of every node attempt since then (the budget's month), whatever the periods (ReportRows.month_cost). */
  monthSince?: string;
  /** model: per node; job: per runs.job; total: one group; groups: per the group(s) given for each node (tags, folders). */
  by: 'model' | 'job' | 'total' | { groups: Array<[uniqueId: string, group: string]> };
}

/** One group in one period, as the engine aggregated it. */
export interface ReportGroupRow {
  group: string;
  period: 'current' | 'previous';
  /** Node runs (a node's last attempt in each run). */
  nodes: number;
  succeeded: number;
  failed: number;
  /** Attempts after a first. */
  retries: number;
  seconds: number;
  cost: number;
  bytes_written: number;
  bytes_scanned: number;
  /** Of the node runs' durations (seconds). */
  p50: number | null;
  p95: number | null;
  /** Loaders: rows loaded and rejected by the node runs (null when none of them recorded a load). */
  rows_loaded: number | null;
  rows_rejected: number | null;
}

export interface ReportRows {
  groups: ReportGroupRow[];
  /** Invocations per period. */
  runs: Array<{ period: 'current' | 'previous'; runs: number; succeeded: number; failed: number; skipped: number }>;
  /** With ReportQuery.monthSince: the cost of every node attempt since then. */
  month_cost?: number;
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
  /** The watermark stored for `relation` (max of its cursor column as text); undefined when none is stored. */
  watermark(session: AdapterSession, relation: Relation): Promise<{ column: string; value: string | null } | undefined>;
  /** The CDC position stored for `relation` (the slot and the last change applied); undefined when none is stored. */
  cdcPosition(session: AdapterSession, relation: Relation): Promise<{ slot: string; position: string } | undefined>;
  /** Starts of the batches of `relation` that succeeded. */
  finishedBatches(session: AdapterSession, relation: Relation): Promise<Set<string>>;
  read(session: AdapterSession): Promise<StateTables>;
  /** The last `runs` runs and the last `perNode` runs of each node; undefined when there is no store yet. Read only. */
  history?(session: AdapterSession, limits: { runs: number; perNode: number }): Promise<RunHistory | undefined>;
  /** Invocations and node attempts (`etl history`, `etl report`), newest first; empty when there is no store yet. Read only. */
  historyRows(session: AdapterSession, query: HistoryQuery): Promise<HistoryRows>;
  /** When each of `uniqueIds` last succeeded (ISO), however long ago; a node that never did is left out. One bounded query. Read only. */
  lastSuccesses(session: AdapterSession, uniqueIds: string[]): Promise<Map<string, string>>;
  /** Cost and time per group and period, aggregated by the engine (`etl report`, the budget check). Read only. */
  historyReport(session: AdapterSession, query: ReportQuery): Promise<ReportRows>;
  /** Deletes runs (and their node attempts) that started before `before` (ISO): the only way history rows leave. */
  pruneHistory(session: AdapterSession, before: string): Promise<{ runs: number; node_runs: number }>;
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

/** The stored watermark of `relation` (loaders read it to extract only newer rows). */
export function storedWatermark(adapter: Adapter, session: AdapterSession, relation: Relation): Promise<{ column: string; value: string | null } | undefined> {
  return adapter.state.watermark(session, relation);
}

/** The stored CDC position of `relation` (a CDC loader reads changes after it). */
export function storedCdcPosition(adapter: Adapter, session: AdapterSession, relation: Relation): Promise<{ slot: string; position: string } | undefined> {
  return adapter.state.cdcPosition(session, relation);
}

export function finishedBatches(adapter: Adapter, session: AdapterSession, relation: Relation): Promise<Set<string>> {
  return adapter.state.finishedBatches(session, relation);
}

/** Everything the state holds, for `etl state show`. */
export function readState(adapter: Adapter, session: AdapterSession): Promise<StateTables> {
  return adapter.state.read(session);
}
