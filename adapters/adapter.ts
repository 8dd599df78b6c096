// The one interface every engine implements. The core asks an adapter what it
// supports (capabilities) instead of testing the engine's name, and calls a
// handful of atomic operations. Each operation either completes or leaves the
// previous relation readable and unchanged.

import type { StateRecord, StateStore } from '../core/state/state.js';
import type { Dialect } from './dialect.js';

export interface Relation {
  schema: string;
  name: string;
}

export type RelationKind = 'table' | 'view';

/** What a bounded step does beyond building: `deletingFrom`, the table it deletes rows of (a merge), whose size the bound allows for. */
export interface BoundedMemoryOptions {
  deletingFrom?: Relation;
}

export interface StageOptions {
  /**
   * The staged rows are only read (and maybe trimmed) on this session, then
   * dropped, never published: an engine may keep them out of the database
   * file (DuckDB: a temporary table, not written to disk or WAL).
   */
  transient?: boolean;
}

/** One column of a relation, as the engine's catalog has it. */
export interface CatalogColumn {
  schema: string;
  table: string;
  kind: RelationKind;
  column: string;
  type: string;
  index: number;
}

export interface ColumnDef {
  name: string;
  type: string;
}

export interface QueryResult {
  columns: string[];
  types: string[];
  rows: unknown[][];
}

export interface AdapterCapabilities {
  /** The engine has MERGE INTO. */
  merge: boolean;
}

/**
 * Rows moved out of a staged table into another table (quarantine), in the
 * same atomic unit as the publish: they are in the published table or in
 * `into`, never both, never neither, and a failed publish moves nothing.
 */
export interface RowMove {
  /** Created from the moved rows' columns if it does not exist; appended to otherwise. */
  into: Relation;
  /** The alias of the staged table in `columns` and `where`. */
  alias: string;
  /** The select list of the moved rows (the staged columns plus any the target adds). */
  columns: string;
  /** Which staged rows move. */
  where: string;
}

/** What commits with a publish, in the same transaction (or commit). */
export interface PublishExtras {
  /** State (a watermark, batches, a snapshot run): never ahead of the data, never behind it. */
  state?: StateRecord[];
  /** Rows that leave the staged table for another one before it is published. */
  moveRows?: RowMove;
  /** partition_by: engines that partition tables (Delta) write the table partitioned by these columns. */
  partitionBy?: string[];
  /** deletion_vectors: Delta marks the rows later changes delete in deletion vectors instead of rewriting files. */
  deletionVectors?: boolean;
}

/** A column change made by on_schema_change before new rows go in. */
export type ColumnChange =
  | { kind: 'add'; column: string; type: string }
  | { kind: 'drop'; column: string }
  | { kind: 'alter_type'; column: string; from: string; type: string };

/** New rows (staged) applied to an existing table, in one transaction. */
export interface IncrementalChange {
  strategy: 'append' | 'merge' | 'delete+insert' | 'replace_where' | 'insert_overwrite';
  target: Relation;
  /** The new rows: a staged table, or (replace_where) a query read once inside the transaction. */
  staged: Relation | { sql: string };
  /**
   * The SQL that computed the staged rows (the model's compiled code): what
   * it read of the target (`{{this}}`) is part of what the change read, which
   * Delta's conflict detection checks other writers' commits against.
   */
  sql?: string;
  /** Columns inserted, by name (the target's order). */
  columns: string[];
  /** merge and delete+insert: the key columns. */
  uniqueKey: string[];
  /**
   * delete+insert: a boolean column of the staged rows (not in `columns`):
   * a row where it is true deletes the target's row with its key and inserts
   * nothing (CDC loaders: a delete at the source).
   */
  deletedFlag?: string;
  /** insert_overwrite: the partition columns; the target's rows in any partition the new rows touch are replaced. */
  partitionBy?: string[];
  /** replace_where (microbatch): target rows matching this predicate are replaced. */
  where?: string;
  columnChanges: ColumnChange[];
  /** State (watermarks, batches) committed with the rows; a batch without `rows` gets the rows applied. */
  state: StateRecord[];
  /** Rows that leave the staged table (quarantine) in the same transaction, before the rest is applied. */
  moveRows?: RowMove;
  /** The staged table's rows where the caller knows them (its stage counted them): the change's rows, not counted again. */
  stagedRows?: number;
  /** deletion_vectors (Delta): true turns them on for the table; undefined follows the table's own property. */
  deletionVectors?: boolean;
  /**
   * Identifies the change for a retry: `run` (the run that first made it) and
   * `seq` (ascending within the run). A target that records applied changes
   * in the commit (Delta's txn action, appId = run, version = seq) skips a
   * change whose run already applied this seq or a later one, so a retried
   * batch whose commit landed is not applied twice.
   */
  commitId?: { run: string; seq: number };
}

/** One run of a snapshot (SCD type 2): the query's rows against the history kept so far. */
export interface SnapshotChange {
  /** The history table (created by the first run). */
  target: Relation;
  /** The snapshot's query. */
  sql: string;
  uniqueKey: string[];
  /** timestamp: a newer `updatedAt` makes a new version; check: a change in `checkCols`. */
  strategy: 'timestamp' | 'check';
  updatedAt?: string;
  /** 'all': every column of the query but the key. */
  checkCols: 'all' | string[];
  /** What a row that vanished from the query becomes: kept current, closed, or closed plus a deletion record. */
  hardDeletes: 'ignore' | 'invalidate' | 'new_record';
  /** The run's time: checked rows' versions and deletions start or end at it. */
  now: Date;
  /** Committed with the versions; a snapshot_run without counts gets this run's. */
  state: StateRecord[];
}

export interface SnapshotResult {
  firstRun: boolean;
  /** Versions added. */
  inserted: number;
  /** Versions closed. */
  invalidated: number;
}

export interface StagedTable {
  relation: Relation;
  rows?: number;
  /**
   * Its columns as listColumns would read them, where the stage made them
   * itself with the types it was given (DuckDB's stageCsv): a loader's drift
   * check compares these with the table's instead of reading the stage back.
   */
  columns?: ColumnDef[];
}

/** What a materialization reports back. */
export interface MaterializeResult {
  rowsAffected?: number;
  /** Bytes of data the change wrote and the query scanned, where the engine reports them (run history, cost). */
  bytesWritten?: number;
  bytesScanned?: number;
  /** Engine-specific, short: "CREATE VIEW", "INSERT 0 12". */
  message: string;
  /** Data tests: the verdict, the failing-row count and the first failing rows. */
  status?: 'pass' | 'warn' | 'fail' | 'error' | 'skipped';
  failures?: number;
  sample?: QueryResult;
  /** Rows moved to <model>__quarantine by quarantine: true. */
  quarantined?: number;
  /** Loaders: rows read, loaded and rejected, bytes moved, throughput (run_results' adapter_response). */
  stats?: Record<string, unknown>;
  /** Microbatch models: which batches ([start, end)) succeeded and failed. */
  batches?: { successful: Array<[string, string]>; failed: Array<[string, string]> };
}

export interface SeedOptions {
  columnTypes: Record<string, string>;
  delimiter?: string;
  /** The file as the user names it (relative to the project), for errors. */
  path?: string;
}

/**
 * Who works on a session: the run (its invocation id, as in manifest.json and
 * run_results.json) and the node. Engines that record their writers (Delta's
 * commitInfo) use it; others ignore it.
 */
export interface SessionContext {
  invocationId: string;
  /** The node's unique_id, when the session builds one. */
  nodeId?: string;
}

/** One connection; statements on it run one at a time. */
export interface AdapterSession {
  execute(sql: string, params?: unknown[]): Promise<{ rowsAffected?: number }>;
  query(sql: string, params?: unknown[]): Promise<QueryResult>;
  /**
   * The result columns of each statement of `sql` (one or several, separated
   * by semicolons), with their full engine types (numeric(38,2), varchar(20)),
   * as a relation created from it would have them. Static analysis runs
   * queries that return no rows through it (engines that bind on the server).
   */
  describeResults?(sql: string): Promise<ColumnDef[][]>;
}

export interface Adapter {
  readonly dialect: Dialect;
  readonly capabilities: AdapterCapabilities;
  /** Where run history and the state of incremental models, batches and snapshots live (see core/state/state.ts). */
  readonly state: StateStore;
  /** Connects (or opens the file). Throws RunError with exit code 2 when the target cannot be reached. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** Runs `fn` on a pooled connection; the pool is sized by the target's threads. `context` names who works on it. */
  withSession<T>(fn: (session: AdapterSession) => Promise<T>, context?: SessionContext): Promise<T>;
  /** Cancels every running statement (Ctrl-C). */
  interruptAll(): void;
  /**
   * Whether an error is transient: the same work can succeed when tried again
   * (a dropped connection, a serialization failure, a deadlock, a lock timeout,
   * a Delta commit conflict). Only these are retried (core/runner/retry.ts) and
   * counted by the circuit breaker; anything else fails the node at once.
   */
  isTransient(err: unknown): boolean;

  /**
   * Creates the schema if needed. A schema the run builds into is also locked
   * for the run (one writer per schema). `shared`: a schema every run on the
   * target uses whatever schema it builds (the state's): its creation is
   * serialized instead, so two runs into different schemas never exclude each other.
   */
  ensureSchema(session: AdapterSession, schema: string, options?: { shared?: boolean }): Promise<void>;
  /** The kind of an existing relation, or undefined. */
  relationKind(session: AdapterSession, relation: Relation): Promise<RelationKind | undefined>;
  listColumns(session: AdapterSession, relation: Relation): Promise<ColumnDef[]>;
  /**
   * Every column of every table and view in `schemas`, with the engine's type
   * and 1-based position, in one catalog query (catalog.json). Optional: an
   * engine without it is read relation by relation (listColumns).
   */
  catalogColumns?(session: AdapterSession, schemas: string[]): Promise<CatalogColumn[]>;
  /** The database a user names to query this target (`dev` for dev.duckdb, the Postgres database). */
  databaseName?(session: AdapterSession): Promise<string | null>;

  /** Creates or replaces a view, atomically. */
  replaceView(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult>;
  /** Builds a table under a temporary name and swaps it in within one transaction, with `state`. */
  replaceTable(session: AdapterSession, relation: Relation, selectSql: string, state?: StateRecord[]): Promise<MaterializeResult>;
  /**
   * Builds a table from `selectSql` where no reader sees it yet. The staged
   * relation can be queried and changed (contracts, quarantine) before
   * publishTable swaps it in atomically, or discardStaged drops it.
   */
  stageTable(session: AdapterSession, relation: Relation, selectSql: string, options?: StageOptions): Promise<StagedTable>;
  /**
   * Loaders: stages rows streamed in as CSV (no header; Postgres's CSV, where
   * an empty unquoted field is NULL and "" an empty string) into a new table
   * of `columns` (this engine's types), where no reader sees it yet, as
   * stageTable does. The stream is consumed as it comes: never held in memory.
   */
  stageCsv(session: AdapterSession, relation: Relation, columns: ColumnDef[], csv: NodeJS.ReadableStream, options?: StageOptions): Promise<StagedTable>;
  /**
   * Loaders: runs a step whose memory would grow with the table (a stage, a
   * check over it, a merge) with the engine's memory bounded, for engines
   * that would otherwise hold what they build in memory (DuckDB's buffer
   * pool). Others stream and need not.
   */
  withBoundedMemory?<T>(session: AdapterSession, fn: () => Promise<T>, options?: BoundedMemoryOptions): Promise<T>;
  /**
   * withBoundedMemory bounds a merge too (`deletingFrom`, with its allowance), so a loader may hold one bound
   * from its stage to its merge. Where unset, a loader runs its merge unbounded (Delta: at DuckDB's own limit,
   * its stage bounded).
   */
  readonly boundsMerges?: boolean;
  /** Reads ahead what withBoundedMemory sets back (once a process): a loader does while its source connects. */
  prepareBoundedMemory?(session: AdapterSession): Promise<void>;
  /** Swaps the staged table in; `extras` (state, quarantined rows) commit with it. Engines that know what the swap wrote say so (run history, cost). */
  publishTable(session: AdapterSession, staged: StagedTable, relation: Relation, extras?: PublishExtras): Promise<void | { bytesWritten?: number }>;
  discardStaged(session: AdapterSession, staged: StagedTable): Promise<void>;
  /** Applies new rows to an existing table in one transaction (incremental models). */
  /** `alreadyApplied`: the change's commitId was applied before (by the run it names), so nothing was done now. */
  applyIncremental(session: AdapterSession, change: IncrementalChange): Promise<{ rowsAffected: number; bytesWritten?: number; alreadyApplied?: boolean }>;
  /** Applies one snapshot run, with its state, atomically. */
  applySnapshot(session: AdapterSession, change: SnapshotChange): Promise<SnapshotResult>;
  /** Loads a CSV file into a table (replacing it atomically). */
  loadSeed(session: AdapterSession, relation: Relation, csvPath: string, options: SeedOptions): Promise<MaterializeResult>;
  /**
   * Makes tables stored elsewhere readable under their source relation
   * (`location:` on a source table). Targets that read tables by path
   * implement it (Delta); others cannot have such sources.
   */
  attachExternal?(session: AdapterSession, tables: Array<{ relation: Relation; location: string }>): Promise<void>;
  /**
   * The current version of each relation (undefined: not a versioned table),
   * on engines that version tables (Delta): the run history records the
   * versions a node read. Optional.
   */
  relationVersions?(session: AdapterSession, relations: Relation[]): Promise<Array<number | undefined>>;
  /** Runs `selectSql` and returns at most `limit` rows. */
  preview(session: AdapterSession, selectSql: string, limit: number): Promise<QueryResult>;
}
