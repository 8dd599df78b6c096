// A table's state at one version (PROTOCOL.md "Action Reconciliation"): the
// protocol, metadata, active files, tombstones, transaction versions and
// metadata domains, replayed from the newest checkpoint and the commits after
// it. Time travel picks the version by number or by commit timestamp.

import type { Action, AddFile, Commit, CommitInfo, DomainMetadata, Metadata, Protocol, RemoveFile, Txn } from './actions.js';
import { commitInfoOf, fileKey, parseCommit } from './actions.js';
import { DeltaTableError, UnsupportedFeatureError } from './errors.js';
import { findLogSegment, listCommits, type CheckpointFiles, type CommitFile } from './log-files.js';
import { checkReadable } from './protocol.js';
import { parseSchema, type StructType } from './schema.js';
import { fileList, type SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';

export interface Snapshot {
  /** The table's location, for messages. */
  table: string;
  version: number;
  protocol: Protocol;
  metadata: Metadata;
  schema: StructType;
  /** Active logical files, keyed by fileKey. */
  files: Map<string, AddFile>;
  /** Removed files not yet expired, keyed by fileKey (for vacuum and checkpoints). */
  tombstones: Map<string, RemoveFile>;
  txns: Map<string, Txn>;
  /** Live metadata domains (tombstoned ones dropped). */
  domains: Map<string, DomainMetadata>;
  /** When this version was committed (ms since the epoch). */
  timestamp: number;
  /** The commitInfo of this version's commit, when the commit is in the log. */
  commitInfo?: CommitInfo;
}

export interface SnapshotOptions {
  version?: number;
  /** Reads the latest version committed at or before this instant. */
  timestamp?: Date | string;
}

/** Mutable state while replaying. */
class Replay {
  protocol?: Protocol;
  metadata?: Metadata;
  files = new Map<string, AddFile>();
  tombstones = new Map<string, RemoveFile>();
  txns = new Map<string, Txn>();
  domains = new Map<string, DomainMetadata>();

  apply(actions: Action[], table: string, where: string): void {
    for (const a of actions) {
      if ('add' in a && a.add) {
        const key = fileKey(a.add);
        this.files.set(key, a.add);
        this.tombstones.delete(key);
      } else if ('remove' in a && a.remove) {
        const key = fileKey(a.remove);
        this.files.delete(key);
        this.tombstones.set(key, a.remove);
      } else if ('metaData' in a && a.metaData) this.metadata = a.metaData;
      else if ('protocol' in a && a.protocol) this.protocol = a.protocol;
      else if ('txn' in a && a.txn) this.txns.set(a.txn.appId, a.txn);
      else if ('domainMetadata' in a && a.domainMetadata) {
        if (a.domainMetadata.removed) this.domains.delete(a.domainMetadata.domain);
        else this.domains.set(a.domainMetadata.domain, a.domainMetadata);
      } else if (('checkpointMetadata' in a && (a as Record<string, unknown>).checkpointMetadata) || ('sidecar' in a && (a as Record<string, unknown>).sidecar)) {
        throw new UnsupportedFeatureError('v2Checkpoint', table, `${where} is a v2 checkpoint`);
      }
    }
  }
}

const CHECKPOINT_COLUMNS = ['add', 'remove', 'metaData', 'protocol', 'txn', 'domainMetadata', 'checkpointMetadata', 'sidecar'];

/** The actions of a checkpoint, read with DuckDB (one action per row, each a struct column; a missing column is all null). */
export async function readCheckpoint(storage: DeltaStorage, session: SqlSession, checkpoint: CheckpointFiles): Promise<Action[]> {
  const files = fileList(checkpoint.files.map((f) => storage.locate(f.path)));
  const columns = CHECKPOINT_COLUMNS.map((c) => `'${c}'`).join(', ');
  let result;
  try {
    result = await session.query(`select to_json(columns(c -> c in (${columns}))) from read_parquet(${files}, union_by_name = true)`);
  } catch (err) {
    throw new DeltaTableError(`corrupt Delta checkpoint ${checkpoint.files[0]!.path} of ${storage.root} (version ${checkpoint.version}): ${(err as Error).message}`);
  }
  const actions: Action[] = [];
  for (const row of result.rows) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i];
      if (v == null) continue;
      const value = JSON.parse(String(v)) as Record<string, unknown>;
      actions.push({ [result.columns[i]!]: stripNulls(value) } as Action);
    }
  }
  return actions;
}

/**
 * Parquet structs carry every field, null when unset; JSON commits leave them
 * out. So do the structs inside an action (a deletion vector's maxRowIndex);
 * a map's null values (a null partition value) stay.
 */
function stripNulls(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === null) continue;
    out[k] = k === 'deletionVector' && typeof v === 'object' ? stripNulls(v as Record<string, unknown>) : v;
  }
  return out;
}

export async function readCommit(storage: DeltaStorage, file: CommitFile): Promise<Commit> {
  let text: string;
  try {
    text = (await storage.read(file.path)).toString('utf8');
  } catch (err) {
    throw new DeltaTableError(`cannot read Delta commit ${file.path} of ${storage.root} (version ${file.version}): ${(err as Error).message}`);
  }
  return parseCommit(text, `${storage.root}/${file.path}`, file.version);
}

/** Commit timestamps: the in-commit timestamp when the table records one, else the file's modification time, made strictly increasing as Delta readers do. */
export function commitTimestamps(commits: CommitFile[]): number[] {
  const out: number[] = [];
  for (const c of commits) out.push(out.length && out.at(-1)! >= c.modificationTime ? out.at(-1)! + 1 : c.modificationTime);
  return out;
}

/** The version committed at or before `timestamp`. */
export async function versionAtTimestamp(storage: DeltaStorage, timestamp: Date | string): Promise<number> {
  const at = typeof timestamp === 'string' ? new Date(timestamp) : timestamp;
  if (Number.isNaN(at.getTime())) throw new DeltaTableError(`not a timestamp: ${String(timestamp)}\n  hint: use an ISO 8601 timestamp, e.g. 2024-01-31T12:00:00Z`);
  const commits = await listCommits(storage);
  if (commits.length === 0) throw new DeltaTableError(`not a Delta table: ${storage.root} has no _delta_log/ commits`);
  const times = commitTimestamps(commits);
  let found: number | undefined;
  for (let i = 0; i < commits.length; i++) if (times[i]! <= at.getTime()) found = commits[i]!.version;
  if (found === undefined) {
    throw new DeltaTableError(`Delta table ${storage.root} has no version at ${at.toISOString()}: its first commit (version ${commits[0]!.version}) is from ${new Date(times[0]!).toISOString()}`);
  }
  return found;
}

/** Checks the replayed state and makes it a snapshot. */
function finish(replay: Replay, table: string, version: number, timestamp: number, info: CommitInfo | undefined): Snapshot {
  if (!replay.protocol) throw new DeltaTableError(`corrupt Delta table ${table}: no protocol action at version ${version}`);
  if (!replay.metadata) throw new DeltaTableError(`corrupt Delta table ${table}: no metaData action at version ${version}`);
  checkReadable(replay.protocol, replay.metadata, table);
  const schema = parseSchema(replay.metadata.schemaString, `Delta table ${table} at version ${version}`);
  // Deletion vectors are applied by the scan (scan.ts); one on a table whose protocol does not name the feature is a corrupt table.
  if (!(replay.protocol.readerFeatures ?? []).includes('deletionVectors')) {
    for (const f of replay.files.values()) if (f.deletionVector) throw new DeltaTableError(`corrupt Delta table ${table}: file ${f.path} has a deletion vector at version ${version} but the protocol has no deletionVectors reader feature`);
  }
  const snapshot: Snapshot = {
    table,
    version,
    protocol: replay.protocol,
    metadata: replay.metadata,
    schema,
    files: replay.files,
    tombstones: replay.tombstones,
    txns: replay.txns,
    domains: replay.domains,
    timestamp: typeof info?.inCommitTimestamp === 'number' ? info.inCommitTimestamp : timestamp,
    commitInfo: info,
  };
  REPLAYED.add(snapshot);
  return snapshot;
}

/**
 * Snapshots replayed from the log (loadSnapshot, updateSnapshot,
 * advanceSnapshot): their maps hold the table's whole state at their version.
 * A copy made with other files (a scan of some of them) is not one.
 */
const REPLAYED = new WeakSet<Snapshot>();

/** Whether the snapshot is one replayed from the log, whole (see REPLAYED). */
export function isReplayed(snapshot: Snapshot): boolean {
  return REPLAYED.has(snapshot);
}

/** Replays the log into the snapshot at a version (latest by default). */
export async function loadSnapshot(storage: DeltaStorage, session: SqlSession, options: SnapshotOptions = {}): Promise<Snapshot> {
  const table = storage.root;
  const version = options.timestamp !== undefined ? await versionAtTimestamp(storage, options.timestamp) : options.version;
  const segment = await findLogSegment(storage, version);
  const replay = new Replay();
  const [checkpointActions, commits] = await Promise.all([
    segment.checkpoint ? readCheckpoint(storage, session, segment.checkpoint) : Promise.resolve([]),
    Promise.all(segment.commits.map((c) => readCommit(storage, c))),
  ]);
  if (segment.checkpoint) replay.apply(checkpointActions, table, segment.checkpoint.files[0]!.path);
  for (const c of commits) replay.apply(c.actions, table, `version ${c.version}`);
  const last = commits.at(-1);
  const lastFile = segment.commits.at(-1);
  const info = last && last.version === segment.version ? commitInfoOf(last) : undefined;
  return finish(replay, table, segment.version, lastFile?.modificationTime ?? segment.checkpoint?.files[0]?.modificationTime ?? 0, info);
}

/** The latest snapshot, from an earlier one plus the commits after it (no checkpoint or listing of the log). */
export async function updateSnapshot(storage: DeltaStorage, snapshot: Snapshot): Promise<Snapshot> {
  const commits = await readCommitsAfter(storage, snapshot.version);
  if (commits.length === 0) return snapshot;
  const last = commits.at(-1)!;
  const stat = await storage.stat(`_delta_log/${String(last.version).padStart(20, '0')}.json`);
  return advanceSnapshot(snapshot, commits, stat?.modificationTime ?? Date.now());
}

/**
 * The snapshot after `commits`, the versions right after `snapshot`'s in
 * order, replayed in memory onto copies of its state (the log is not read);
 * `timestamp`: when the last of them was committed.
 */
export function advanceSnapshot(snapshot: Snapshot, commits: Commit[], timestamp: number): Snapshot {
  const replay = new Replay();
  replay.protocol = snapshot.protocol;
  replay.metadata = snapshot.metadata;
  replay.files = new Map(snapshot.files);
  replay.tombstones = new Map(snapshot.tombstones);
  replay.txns = new Map(snapshot.txns);
  replay.domains = new Map(snapshot.domains);
  let version = snapshot.version;
  for (const c of commits) {
    if (c.version !== version + 1) throw new DeltaTableError(`Delta table ${snapshot.table}: version ${c.version} does not follow version ${version}`);
    replay.apply(c.actions, snapshot.table, `version ${c.version}`);
    version = c.version;
  }
  const last = commits.at(-1);
  return last ? finish(replay, snapshot.table, last.version, timestamp, commitInfoOf(last)) : snapshot;
}

/** The commits after `version` up to the latest, read in order (conflict checks, history). */
export async function readCommitsAfter(storage: DeltaStorage, version: number): Promise<Commit[]> {
  const out: Commit[] = [];
  for (let v = version + 1; ; v++) {
    const file = `_delta_log/${String(v).padStart(20, '0')}.json`;
    const stat = await storage.stat(file);
    if (!stat) break;
    out.push(await readCommit(storage, { ...stat, version: v }));
  }
  return out;
}
