// The one interface every engine implements. The core asks an adapter what it
// supports (capabilities) instead of testing the engine's name, and calls a
// handful of atomic operations. Each operation either completes or leaves the
// previous relation readable and unchanged.

import type { Dialect } from './dialect.js';

export interface Relation {
  schema: string;
  name: string;
}

export type RelationKind = 'table' | 'view';

export interface StageOptions {
  /**
   * The staged rows are only read (and maybe trimmed) on this session, then
   * dropped, never published: an engine may keep them out of the database
   * file (DuckDB: a temporary table, not written to disk or WAL).
   */
  transient?: boolean;
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
  /** DDL can run inside a transaction and be rolled back (DuckDB, Postgres). */
  transactionalDdl: boolean;
  /** The engine has MERGE INTO. */
  merge: boolean;
  /** Several connections may write at once. */
  concurrentWrites: boolean;
}

/** A statement that records state (a watermark, a batch) with the change it describes. */
export interface StateStatement {
  sql: string;
  params: unknown[];
}

/** A column change made by on_schema_change before new rows go in. */
export type ColumnChange =
  | { kind: 'add'; column: string; type: string }
  | { kind: 'drop'; column: string }
  | { kind: 'alter_type'; column: string; from: string; type: string };

/** New rows (staged) applied to an existing table, in one transaction. */
export interface IncrementalChange {
  strategy: 'append' | 'merge' | 'delete+insert' | 'replace_where';
  target: Relation;
  /** The new rows: a staged table, or (replace_where) a query read once inside the transaction. */
  staged: Relation | { sql: string };
  /** Columns inserted, by name (the target's order). */
  columns: string[];
  /** merge and delete+insert: the key columns. */
  uniqueKey: string[];
  /** replace_where (microbatch): target rows matching this predicate are replaced. */
  where?: string;
  columnChanges: ColumnChange[];
  /** State records (watermarks, batches) written in the same transaction. */
  stateStatements: StateStatement[];
}

export interface StagedTable {
  relation: Relation;
  rows?: number;
}

/** What a materialization reports back. */
export interface MaterializeResult {
  rowsAffected?: number;
  /** Engine-specific, short: "CREATE VIEW", "INSERT 0 12". */
  message: string;
  /** Data tests: the verdict, the failing-row count and the first failing rows. */
  status?: 'pass' | 'warn' | 'fail' | 'error';
  failures?: number;
  sample?: QueryResult;
  /** Rows moved to <model>__quarantine by quarantine: true. */
  quarantined?: number;
  /** Microbatch models: which batches ([start, end)) succeeded and failed. */
  batches?: { successful: Array<[string, string]>; failed: Array<[string, string]> };
}

export interface SeedOptions {
  columnTypes: Record<string, string>;
  delimiter?: string;
}

/** One connection; statements on it run one at a time. */
export interface AdapterSession {
  execute(sql: string, params?: unknown[]): Promise<{ rowsAffected?: number }>;
  query(sql: string, params?: unknown[]): Promise<QueryResult>;
}

export interface Adapter {
  readonly dialect: Dialect;
  readonly capabilities: AdapterCapabilities;
  /** Connects (or opens the file). Throws RunError with exit code 2 when the target cannot be reached. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** Runs `fn` on a pooled connection; the pool is sized by the target's threads. */
  withSession<T>(fn: (session: AdapterSession) => Promise<T>): Promise<T>;
  /** Cancels every running statement (Ctrl-C). */
  interruptAll(): void;
  /** Whether an error is worth retrying (dropped connection, serialization failure). */
  isTransient(err: unknown): boolean;

  ensureSchema(session: AdapterSession, schema: string): Promise<void>;
  /** The kind of an existing relation, or undefined. */
  relationKind(session: AdapterSession, relation: Relation): Promise<RelationKind | undefined>;
  listColumns(session: AdapterSession, relation: Relation): Promise<ColumnDef[]>;

  /** Creates or replaces a view, atomically. */
  replaceView(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult>;
  /** Builds a table under a temporary name and swaps it in within one transaction. */
  replaceTable(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult>;
  /**
   * Builds a table from `selectSql` where no reader sees it yet. The staged
   * relation can be queried and changed (contracts, quarantine) before
   * publishTable swaps it in atomically, or discardStaged drops it.
   */
  stageTable(session: AdapterSession, relation: Relation, selectSql: string, options?: StageOptions): Promise<StagedTable>;
  /** `stateStatements` run in the same transaction as the swap (a watermark never ahead of the data). */
  publishTable(session: AdapterSession, staged: StagedTable, relation: Relation, stateStatements?: StateStatement[]): Promise<void>;
  discardStaged(session: AdapterSession, staged: StagedTable): Promise<void>;
  /** Applies new rows to an existing table in one transaction (incremental models). */
  applyIncremental(session: AdapterSession, change: IncrementalChange): Promise<{ rowsAffected: number }>;
  /** Loads a CSV file into a table (replacing it atomically). */
  loadSeed(session: AdapterSession, relation: Relation, csvPath: string, options: SeedOptions): Promise<MaterializeResult>;
  /** Runs `selectSql` and returns at most `limit` rows. */
  preview(session: AdapterSession, selectSql: string, limit: number): Promise<QueryResult>;
}
