// A Delta table as etl uses it: read a snapshot (latest, by version or by
// timestamp), scan it as SQL, and write to it: append, overwrite (all of it,
// or the partitions the new rows touch), with etl's state in the same commit
// (txn and domainMetadata actions, commitInfo fields). Each write is one
// commit; its data files are written first, so a crash before the commit
// leaves only unreferenced files.

import { randomUUID } from 'node:crypto';
import type { Action, AddFile, DomainMetadata, Metadata, Protocol, RemoveFile } from './actions.js';
import { commitInfoOf, fileKey } from './actions.js';
import { DeltaTableError } from './errors.js';
import { listCommits, LOG_DIR } from './log-files.js';
import { checkWritable, protocolFor, sameProtocol } from './protocol.js';
import { rememberDeletedPositions, scanSnapshot, type Scan, type ScanOptions } from './scan.js';
import { schemaFromDuckDb, schemaString, type StructType } from './schema.js';
import { commitTimestamps, loadSnapshot, readCommit, updateSnapshot, type Snapshot, type SnapshotOptions } from './snapshot.js';
import type { SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';
import { commit, type CommitResult } from './transaction.js';
import { writeDataFiles } from './write.js';
import { writeDeletionVectors } from './deletion-vectors.js';
import { deletionVectorsEnabled, ENABLE_DELETION_VECTORS, isolationLevelOf } from './table-properties.js';

/**
 * append: add the rows. overwrite: replace every file. overwrite-partitions:
 * replace the files of the partitions the rows touch. rewrite: remove
 * `removeFiles` (copy-on-write: the rows kept from them are in the new rows).
 */
export type WriteMode = 'append' | 'overwrite' | 'overwrite-partitions' | 'rewrite';

export interface DomainValue {
  domain: string;
  configuration: string;
}

export interface WriteOptions {
  /** The rows: any DuckDB SELECT; undefined for a commit that adds no rows (state only, or removals). */
  selectSql?: string;
  /** A recent snapshot of the table, brought up to date from the commits after it instead of replaying the log. */
  current?: Snapshot;
  /**
   * The snapshot the change was computed from (the rows it read, the files it
   * removes). The commit is made against it, never brought up to date: every
   * commit after it is checked for a conflict (transaction.ts), so a change
   * planned on version N cannot silently undo one committed at N+1.
   */
  readSnapshot?: Snapshot;
  mode: WriteMode;
  /** Partition columns of a new table (an existing table keeps its own unless overwritten). */
  partitionBy?: string[];
  /** Who writes (an etl invocation id; default: the session's): commitInfo and conflict messages. */
  writer?: string;
  /** The node that writes (its unique_id; default: the session's). */
  nodeId?: string;
  /** Idempotence: skipped when the table already holds this appId at this version or later. */
  txn?: { appId: string; version: number };
  /**
   * Metadata domains set in the same commit (etl's state), or a function
   * that computes them from the table as this commit leaves it.
   */
  domains?: DomainValue[] | ((after: Snapshot) => Promise<DomainValue[]>);
  /** Data files written before (stageAppend, by this process or an earlier one) instead of rows: their adds, with `schema`. */
  stagedAdds?: AddFile[];
  /** rewrite: the files removed. */
  removeFiles?: AddFile[];
  /**
   * rewrite: files kept whose rows at these positions are deleted, by a new
   * deletion vector (every deleted position, the file's earlier vector's
   * included): the file's add is replaced by one with the vector.
   */
  markDeleted?: Array<{ file: AddFile; positions: number[] }>;
  /** Turns deletion vectors on for the table (delta.enableDeletionVectors and the deletionVectors feature) if they are not. */
  deletionVectors?: boolean;
  /** The table's schema after the write, when the caller changes it (columns added, dropped or retyped); default: from the rows. */
  schema?: StructType;
  /** Spark's operation name for commitInfo (default WRITE, or CREATE TABLE AS SELECT). */
  operation?: string;
  /** Conflict detection, when the caller read more than the mode implies (a merge reads the whole table). */
  readPredicate?: 'none' | 'all' | ((file: AddFile) => boolean);
  readFiles?: 'all' | Set<string>;
  commitInfo?: Record<string, unknown>;
  /** append: add columns that the table lacks (new columns read NULL in older files). */
  mergeSchema?: boolean;
  /** Extra table properties for a new table. */
  configuration?: Record<string, string>;
  targetFileSize?: number;
}

export interface WriteResult {
  /** undefined when the write was skipped (its txn was already committed). */
  commit?: CommitResult;
  adds: AddFile[];
  removes: RemoveFile[];
  /** markDeleted: the files' new adds, with their deletion vectors. */
  deletionVectors: AddFile[];
  rows: number;
}

export interface HistoryEntry {
  version: number;
  timestamp: number;
  operation?: string;
  operationParameters?: Record<string, unknown>;
  /** Who wrote it: etl's invocation id (run_results.json's), or the engine (Spark, delta-rs). */
  writer?: string;
  /** The etl node that wrote it (unique_id). */
  nodeId?: string;
  commitInfo?: Record<string, unknown>;
}

export function removeOf(add: AddFile, now: number, dataChange = true): RemoveFile {
  return { path: add.path, deletionTimestamp: now, dataChange, extendedFileMetadata: true, partitionValues: add.partitionValues, size: add.size, ...(add.deletionVector ? { deletionVector: add.deletionVector } : {}) };
}

/** Rows newly deleted by the vectors (their cardinality beyond the files' earlier vectors). */
function deletedRows(marked: Array<{ file: AddFile; positions: number[] }>): number {
  return marked.reduce((n, m) => n + m.positions.length - (m.file.deletionVector?.cardinality ?? 0), 0);
}

/** A file's statistics once some of its rows are deleted: still bounds (over the physical rows, numRecords included), no longer tight. */
function looseBounds(stats: string | null | undefined): string | null | undefined {
  if (!stats) return stats;
  try {
    return JSON.stringify({ ...(JSON.parse(stats) as Record<string, unknown>), tightBounds: false });
  } catch {
    return stats;
  }
}

export function rowCount(adds: AddFile[]): number {
  let n = 0;
  for (const a of adds) {
    try {
      n += (JSON.parse(a.stats ?? '{}') as { numRecords?: number }).numRecords ?? 0;
    } catch {
      // no stats: not counted
    }
  }
  return n;
}

export class DeltaTable {
  constructor(
    readonly storage: DeltaStorage,
    readonly session: SqlSession,
  ) {}

  /** Whether the folder holds a Delta table (a _delta_log with at least one commit or checkpoint). */
  async exists(): Promise<boolean> {
    const files = await this.storage.list(LOG_DIR);
    return files.some((f) => /\/\d{20}\.(json|checkpoint\.parquet|checkpoint\.\d{10}\.\d{10}\.parquet)$/.test(f.path));
  }

  snapshot(options: SnapshotOptions = {}): Promise<Snapshot> {
    return loadSnapshot(this.storage, this.session, options);
  }

  /** One SQL relation over a snapshot. */
  async scan(options: ScanOptions & SnapshotOptions & { snapshot?: Snapshot } = {}): Promise<Scan & { snapshot: Snapshot }> {
    const snapshot = options.snapshot ?? (await this.snapshot(options));
    return { ...(await scanSnapshot(this.storage, this.session, snapshot, options)), snapshot };
  }

  /** The columns (name, DuckDB type) a query produces, without running it. */
  async describe(selectSql: string): Promise<Array<{ name: string; type: string }>> {
    const r = await this.session.query(`describe select * from (${selectSql}) as etl_rows`);
    return r.rows.map((row) => ({ name: String(row[0]), type: String(row[1]) }));
  }

  async write(options: WriteOptions): Promise<WriteResult> {
    const table = this.storage.root;
    const current = options.readSnapshot ?? (options.current ? await updateSnapshot(this.storage, options.current) : (await this.exists()) ? await this.snapshot() : undefined);
    if (current && options.txn) {
      const done = current.txns.get(options.txn.appId);
      if (done && done.version >= options.txn.version) return { adds: [], removes: [], deletionVectors: [], rows: 0 };
    }
    if (options.selectSql === undefined && !options.schema && !current) throw new DeltaTableError(`cannot create ${table} without rows or a schema`);
    const incoming = options.schema ?? (options.selectSql === undefined ? current!.schema : schemaFromDuckDb(await this.describe(options.selectSql)));
    const usesDomains = options.domains !== undefined || (current?.protocol.writerFeatures ?? []).includes('domainMetadata');
    const planned = this.planMetadata(current, incoming, options, usesDomains);
    const { schema } = planned;
    let { metadata, protocol } = planned;
    if (options.deletionVectors && !deletionVectorsEnabled(metadata)) {
      metadata = { ...metadata, configuration: { ...metadata.configuration, [ENABLE_DELETION_VECTORS]: 'true' } };
      protocol = protocolFor(schema, { current: current?.protocol, deletionVectors: true, domainMetadata: usesDomains });
    }
    const partitionColumns = metadata.partitionColumns;
    checkWritable(protocol, metadata, schema, table, { removesData: options.mode !== 'append' });
    const marked = options.mode === 'rewrite' ? (options.markDeleted ?? []) : [];
    if (marked.length && !(protocol.readerFeatures ?? []).includes('deletionVectors')) throw new DeltaTableError(`cannot write deletion vectors to ${table}: its protocol has no deletionVectors feature\n  hint: set deletion_vectors: true on the model`);

    // The data files (DuckDB's work) and one DV file for every vector of the commit (the library's), written at the same time, before the commit.
    const [adds, descriptors] = await Promise.all([
      options.stagedAdds ?? (options.selectSql === undefined ? [] : writeDataFiles(this.storage, this.session, { selectSql: options.selectSql, schema, partitionColumns, targetFileSize: options.targetFileSize })),
      marked.length ? writeDeletionVectors(this.storage, marked.map((m) => m.positions)) : [],
    ]);
    const dvAdds: AddFile[] = marked.map((m, i) => ({ ...m.file, deletionVector: descriptors[i], dataChange: true, stats: looseBounds(m.file.stats) }));
    const now = Date.now();
    let removed: AddFile[] = [];
    let readPredicate: 'none' | 'all' | ((f: AddFile) => boolean) = 'none';
    let readFiles: 'all' | Set<string> | undefined;
    if (current && options.mode === 'overwrite') {
      removed = [...current.files.values()];
      readPredicate = 'all';
      readFiles = 'all';
    } else if (current && options.mode === 'overwrite-partitions') {
      const touched = new Set(adds.map((a) => partitionKey(a, partitionColumns)));
      removed = [...current.files.values()].filter((f) => touched.has(partitionKey(f, partitionColumns)));
      readPredicate = (f) => touched.has(partitionKey(f, partitionColumns));
      readFiles = new Set(removed.map(fileKey));
    } else if (current && options.mode === 'rewrite') {
      removed = [...(options.removeFiles ?? []), ...marked.map((m) => m.file)];
      readPredicate = 'all';
      readFiles = new Set(removed.map(fileKey));
    }
    const removes = removed.map((f) => removeOf(f, now));

    let domains: DomainValue[] = [];
    if (typeof options.domains === 'function') {
      // The table as this commit leaves it: kept files plus the new ones.
      const files = new Map(current?.files ?? []);
      for (const f of removed) files.delete(fileKey(f));
      for (const a of [...adds, ...dvAdds]) files.set(fileKey(a), a);
      const after: Snapshot = current ? { ...current, schema, metadata, protocol, files } : { table, version: -1, protocol, metadata, schema, files, tombstones: new Map(), txns: new Map(), domains: new Map(), timestamp: now };
      domains = await options.domains(after);
    } else domains = options.domains ?? [];

    const actions: Action[] = [];
    if (!current || !sameProtocol(protocol, current.protocol)) actions.push({ protocol });
    if (!current || current.metadata !== metadata) actions.push({ metaData: metadata });
    if (options.txn) actions.push({ txn: { appId: options.txn.appId, version: options.txn.version, lastUpdated: now } });
    for (const d of domains) actions.push({ domainMetadata: { domain: d.domain, configuration: d.configuration, removed: false } satisfies DomainMetadata });
    for (const remove of removes) actions.push({ remove });
    for (const add of [...dvAdds, ...adds]) actions.push({ add });

    const operation = options.operation ?? (!current ? 'CREATE TABLE AS SELECT' : 'WRITE');
    const mode = options.mode === 'append' ? 'Append' : 'Overwrite';
    const rows = rowCount(adds);
    const result = await commit(this.storage, this.session, {
      operation,
      operationParameters: { mode, partitionBy: partitionColumns, ...(options.mode === 'overwrite-partitions' ? { dynamicPartitionOverwrite: true } : {}) },
      operationMetrics: { numFiles: adds.length, numOutputRows: rows, numOutputBytes: adds.reduce((s, a) => s + a.size, 0), numRemovedFiles: removes.length - dvAdds.length, ...(dvAdds.length ? { numDeletionVectorsAdded: dvAdds.length, numDeletedRows: deletedRows(marked) } : {}) },
      readVersion: current?.version ?? -1,
      snapshot: current,
      actions,
      readPredicate: options.readPredicate ?? readPredicate,
      readFiles: options.readFiles ?? readFiles,
      isolationLevel: isolationLevelOf(metadata),
      writer: options.writer ?? this.session.context?.invocationId,
      nodeId: options.nodeId ?? this.session.context?.nodeId,
      commitInfo: options.commitInfo,
    });
    // The vectors' positions are known: a later read or merge of these files (the next round's) does not read them back.
    dvAdds.forEach((a, i) => rememberDeletedPositions(this.storage, a, marked[i]!.positions));
    return { commit: result, adds, removes, deletionVectors: dvAdds, rows };
  }

  /**
   * Writes the rows' data files for an append committed later (write with
   * `stagedAdds`; quarantine.ts), in the schema that append will have on
   * `current` (columns the table lacks added). Commits nothing: until that
   * commit the files are unreferenced.
   */
  async stageAppend(selectSql: string, current: Snapshot | undefined): Promise<{ adds: AddFile[]; schema: StructType }> {
    const incoming = schemaFromDuckDb(await this.describe(selectSql));
    const { schema, metadata } = this.planMetadata(current, incoming, { mode: 'append', mergeSchema: true }, false);
    const adds = await writeDataFiles(this.storage, this.session, { selectSql, schema, partitionColumns: metadata.partitionColumns });
    return { adds, schema };
  }

  /** The schema, metadata and protocol after this write (the current ones, unchanged, when nothing changes). */
  private planMetadata(current: Snapshot | undefined, incoming: StructType, options: WriteOptions, domainMetadata: boolean): { schema: StructType; metadata: Metadata; protocol: Protocol } {
    const table = this.storage.root;
    const partitionBy = options.partitionBy ?? [];
    for (const p of partitionBy) if (!incoming.fields.some((f) => f.name === p)) throw new DeltaTableError(`partition column ${p} is not a column of the rows written to ${table}`);
    if (!current || options.mode === 'overwrite' || (options.mode === 'rewrite' && options.schema)) {
      // A new table, or a full overwrite: the rows define the schema and partitioning.
      const partitionColumns = current && options.partitionBy === undefined ? current.metadata.partitionColumns.filter((p) => incoming.fields.some((f) => f.name === p)) : partitionBy;
      if (partitionColumns.length && partitionColumns.length === incoming.fields.length) throw new DeltaTableError(`every column of ${table} is a partition column; a Delta table needs at least one data column`);
      const same = current && schemaString(current.schema) === schemaString(incoming) && JSON.stringify(current.metadata.partitionColumns) === JSON.stringify(partitionColumns);
      const metadata: Metadata = same
        ? current!.metadata
        : {
            id: current?.metadata.id ?? randomUUID(),
            format: { provider: 'parquet', options: {} },
            schemaString: schemaString(incoming),
            partitionColumns,
            configuration: { ...(current?.metadata.configuration ?? {}), ...(options.configuration ?? {}) },
            createdTime: current?.metadata.createdTime ?? Date.now(),
          };
      const protocol = protocolFor(incoming, { current: current?.protocol, domainMetadata });
      return { schema: incoming, metadata, protocol };
    }
    // Appending to an existing table: the rows must fit its schema (or add columns when merging).
    const existing = current.schema;
    const byName = new Map(existing.fields.map((f) => [f.name, f]));
    const added = [];
    for (const f of incoming.fields) {
      const e = byName.get(f.name);
      if (!e) {
        added.push(f);
        continue;
      }
      if (JSON.stringify(e.type) !== JSON.stringify(f.type)) {
        // A narrower integer or a decimal/float of another size is cast on write; anything else is refused.
        if (!castable(f.type, e.type)) throw new DeltaTableError(`column ${f.name} of ${table} is ${JSON.stringify(e.type)} but the new rows have ${JSON.stringify(f.type)}\n  hint: cast it in the model, or rebuild the table (--full-refresh)`);
      }
    }
    if (added.length && !options.mergeSchema) {
      throw new DeltaTableError(`the new rows have columns ${added.map((f) => f.name).join(', ')} that ${table} does not\n  hint: set on_schema_change (append_new_columns) or rebuild the table (--full-refresh)`);
    }
    const schema: StructType = added.length ? { type: 'struct', fields: [...existing.fields, ...added] } : existing;
    const metadata = added.length ? { ...current.metadata, schemaString: schemaString(schema) } : current.metadata;
    const protocol = protocolFor(schema, { current: current.protocol, domainMetadata });
    return { schema, metadata, protocol };
  }

  /** Versions, newest first, with their commitInfo (from the commits still in the log). */
  async history(limit?: number): Promise<HistoryEntry[]> {
    const all = await listCommits(this.storage);
    // The timestamps time travel uses: modification times made strictly increasing.
    const times = commitTimestamps(all);
    const out: HistoryEntry[] = [];
    for (let i = all.length - 1; i >= 0 && (limit === undefined || out.length < limit); i--) {
      const c = all[i]!;
      const info = commitInfoOf(await readCommit(this.storage, c));
      out.push({
        version: c.version,
        timestamp: typeof info?.inCommitTimestamp === 'number' ? info.inCommitTimestamp : times[i]!,
        operation: info?.operation,
        operationParameters: info?.operationParameters as Record<string, unknown> | undefined,
        writer: ((info?.etlInvocationId ?? info?.etlRunId) as string | undefined) ?? (info?.engineInfo as string | undefined),
        nodeId: info?.etlNodeId as string | undefined,
        commitInfo: info,
      });
    }
    return out;
  }
}

const INTEGERS = ['byte', 'short', 'integer', 'long'];

/** Whether values of `from` always fit `to` (so the writer's cast cannot lose or fail). */
function castable(from: unknown, to: unknown): boolean {
  if (typeof from !== 'string' || typeof to !== 'string') return false;
  if (INTEGERS.includes(from) && INTEGERS.includes(to)) return INTEGERS.indexOf(from) <= INTEGERS.indexOf(to);
  if (from === 'float' && to === 'double') return true;
  if (INTEGERS.includes(from) && to === 'double') return true;
  return false;
}

export function partitionKey(file: { partitionValues?: Record<string, string | null> | null }, columns: string[]): string {
  return JSON.stringify(columns.map((c) => file.partitionValues?.[c] ?? null));
}
