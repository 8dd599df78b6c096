// Committing (PROTOCOL.md "Creation of New Log Entries"): a commit is the
// next version's JSON file, created with putIfAbsent so two writers never
// both take a version. A writer that loses the race re-reads the commits that
// won and checks them against what it read and removed (optimistic
// concurrency, as Delta's reference writers do): when they touched none of it
// the commit is retried at the next version; otherwise it fails with a
// conflict naming both writers. Every 10th version gets a checkpoint.
//
// Isolation (Spark's ConflictChecker, checkForAddedFilesThatShouldHaveBeenReadByCurrentTxn):
// Serializable, etl's default, checks every file a winner added against
// what this commit read; WriteSerializable (the table's delta.isolationLevel,
// Spark's default) skips the files of a winner that is a blind append
// (commitInfo.isBlindAppend: it read nothing of the table) unless this commit
// changes the metadata. What a change read is its read predicate and read
// files: the rows its plan touched (changes.ts) and those its SQL read of the
// table (reads.ts); reads of other tables are not checked (Delta's conflict
// model is per table).

import { randomUUID } from 'node:crypto';
import type { Action, AddFile, Commit, CommitInfo, RemoveFile } from './actions.js';
import { commitInfoOf, fileKey, parseCommit, serializeCommit } from './actions.js';
import { CHECKPOINT_INTERVAL, writeCheckpoint } from './checkpoint.js';
import { ConcurrentModificationError, DeltaTableError } from './errors.js';
import { ETL_VERSION } from '../../core/compiler/version.js';
import { pausePoint } from '../trace.js';
import { commitPath } from './log-files.js';
import { advanceSnapshot, isReplayed, loadSnapshot, readCommitsAfter, type Snapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';
import type { IsolationLevel } from './table-properties.js';

/** commitInfo.engineInfo, as Spark writes `Apache-Spark/3.5.0 Delta-Lake/3.1.0`. */
export const ENGINE_INFO = `etl/${ETL_VERSION}`;

export interface CommitRequest {
  /** Spark's operation name: WRITE, CREATE OR REPLACE TABLE, MERGE, DELETE, OPTIMIZE... */
  operation: string;
  operationParameters?: Record<string, unknown>;
  operationMetrics?: Record<string, number>;
  /** The version the change was computed from; -1 when the table did not exist. */
  readVersion: number;
  /**
   * The snapshot at readVersion as read from the log (loadSnapshot or
   * updateSnapshot): a checkpoint this commit owes is then built from it, the
   * commits that won in between and this one, in memory, instead of replaying
   * the log again. Without it (or with a copy of one) the log is replayed.
   */
  snapshot?: Snapshot;
  /** add, remove, metaData, protocol, txn, domainMetadata actions (commitInfo is added here). */
  actions: Action[];
  /**
   * Which new rows would have changed this commit's result: 'none' for a
   * blind append, 'all' for a change that read the whole table, or a test on
   * a new file's partition values (a change that read some partitions).
   */
  readPredicate: 'none' | 'all' | ((file: AddFile) => boolean);
  /** Keys (fileKey) of files this change read; a concurrent removal of one is a conflict. 'all' when it read every file. */
  readFiles?: 'all' | Set<string>;
  /** Serializable (default) or WriteSerializable (see the module header); recorded in commitInfo.isolationLevel. */
  isolationLevel?: IsolationLevel;
  /** Who writes (an etl invocation id: manifest.json's and run_results.json's), recorded in commitInfo and named in conflicts. */
  writer?: string;
  /** The node that writes (its unique_id), recorded in commitInfo. */
  nodeId?: string;
  /** Extra commitInfo fields (etl's state records, for example). */
  commitInfo?: Record<string, unknown>;
  maxAttempts?: number;
}

export interface CommitResult {
  version: number;
  /** How many versions were tried (1 when nobody else committed in between). */
  attempts: number;
  /** A checkpoint that could not be written (the commit itself stands). */
  checkpointError?: Error;
}

function describeWriter(info: CommitInfo | undefined, version: number): string {
  const op = typeof info?.operation === 'string' ? info.operation : 'a commit';
  const run = (info?.etlInvocationId ?? info?.etlRunId) as string | undefined;
  const who = (run && info?.etlNodeId ? `${run} (${String(info.etlNodeId)})` : run) ?? (info?.engineInfo as string | undefined) ?? (info?.userName as string | undefined);
  return `${op}${who ? ` by ${who}` : ''} (version ${version})`;
}

/** Why a winning commit conflicts with this one, or undefined when this one can be retried after it. */
export function conflictWith(winner: Commit, request: CommitRequest): string | undefined {
  const ourRemoves = new Set<string>();
  const ourTxns = new Set<string>();
  const ourDomains = new Set<string>();
  for (const a of request.actions) {
    if ('remove' in a) ourRemoves.add(fileKey(a.remove));
    else if ('txn' in a) ourTxns.add(a.txn.appId);
    else if ('domainMetadata' in a) ourDomains.add(a.domainMetadata.domain);
  }
  if (request.readVersion < 0 && winner.version === 0) return 'the table was created by another writer at the same time';
  // WriteSerializable: a winner's blind append is ordered after this commit, unless this one changes the metadata.
  const skipAdds = request.isolationLevel === 'WriteSerializable' && commitInfoOf(winner)?.isBlindAppend === true && !request.actions.some((a) => 'metaData' in a);
  for (const a of winner.actions) {
    if ('protocol' in a && a.protocol) return 'it changed the table protocol';
    if ('metaData' in a && a.metaData) return 'it changed the table metadata (schema, partitioning or properties)';
    if ('txn' in a && a.txn && ourTxns.has(a.txn.appId)) return `it committed for the same application id ${a.txn.appId}`;
    if ('domainMetadata' in a && a.domainMetadata && ourDomains.has(a.domainMetadata.domain)) return `it changed the metadata domain ${a.domainMetadata.domain}`;
    if ('remove' in a && a.remove) {
      const r: RemoveFile = a.remove;
      const key = fileKey(r);
      if (ourRemoves.has(key)) return `both removed the file ${r.path}`;
      const read = request.readFiles;
      if (r.dataChange && (read === 'all' || read?.has(key))) return `it removed the file ${r.path}, which this change read`;
    }
    if ('add' in a && a.add && a.add.dataChange && !skipAdds) {
      const p = request.readPredicate;
      const values = Object.entries(a.add.partitionValues ?? {});
      const where = values.length ? ` in partition ${values.map(([k, v]) => `${k}=${v ?? 'null'}`).join('/')}` : '';
      if (p === 'all' || (typeof p === 'function' && p(a.add))) return `it added the file ${a.add.path}${where} to data this change read`;
    }
  }
  return undefined;
}

/** Commits the actions at the next free version (see the module header). */
export async function commit(storage: DeltaStorage, session: SqlSession, request: CommitRequest): Promise<CommitResult> {
  const txnId = randomUUID();
  const ours = `${request.operation}${request.writer ? ` by ${request.writer}${request.nodeId ? ` (${request.nodeId})` : ''}` : ''}`;
  const maxAttempts = request.maxAttempts ?? 10_000;
  let version = request.readVersion + 1;
  let checkedUpTo = request.readVersion;
  // The commits after readVersion that won, in order (the checkpoint's state is built from them).
  const won: Commit[] = [];
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const info: CommitInfo = {
      timestamp: Date.now(),
      operation: request.operation,
      // Spark records each parameter as a JSON-encoded string.
      operationParameters: Object.fromEntries(Object.entries(request.operationParameters ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])),
      ...(request.readVersion >= 0 ? { readVersion: request.readVersion } : {}),
      isolationLevel: request.isolationLevel ?? 'Serializable',
      isBlindAppend: request.readPredicate === 'none' && !request.actions.some((a) => 'remove' in a),
      ...(request.operationMetrics ? { operationMetrics: Object.fromEntries(Object.entries(request.operationMetrics).map(([k, v]) => [k, String(v)])) } : {}),
      engineInfo: ENGINE_INFO,
      txnId,
      ...(request.writer ? { etlInvocationId: request.writer } : {}),
      ...(request.nodeId ? { etlNodeId: request.nodeId } : {}),
      ...request.commitInfo,
    };
    const body = serializeCommit([{ commitInfo: info }, ...request.actions]);
    if (await storage.putIfAbsent(commitPath(version), body)) {
      pausePoint(`delta commit ${request.operation} v${version} ${storage.root}`);
      let checkpointError: Error | undefined;
      if (version > 0 && version % CHECKPOINT_INTERVAL === 0) {
        try {
          await writeCheckpoint(storage, session, await stateAt(storage, session, request, won, parseCommit(body, commitPath(version), version)));
        } catch (err) {
          checkpointError = err as Error;
        }
      }
      return { version, attempts: attempt, checkpointError };
    }
    // Another writer took this version: check every commit that won since we read.
    const winners = await readCommitsAfter(storage, checkedUpTo);
    for (const w of winners) {
      const why = conflictWith(w, request);
      if (why) throw new ConcurrentModificationError(storage.root, w.version, ours, describeWriter(commitInfoOf(w), w.version), why);
    }
    if (winners.length === 0) throw new DeltaTableError(`Delta table ${storage.root}: version ${version} exists but cannot be read back`);
    won.push(...winners);
    checkedUpTo = winners.at(-1)!.version;
    version = checkedUpTo + 1;
  }
  throw new DeltaTableError(`Delta table ${storage.root}: gave up committing ${ours} after ${maxAttempts} attempts; other writers kept committing first`);
}

/**
 * The table's state at `ours`'s version for its checkpoint: the request's
 * snapshot advanced in memory by the winners and `ours` (the commit as written,
 * parsed back, so it equals a replay of the JSON), or, without a replayed
 * snapshot at readVersion, the log replayed.
 */
async function stateAt(storage: DeltaStorage, session: SqlSession, request: CommitRequest, won: Commit[], ours: Commit): Promise<Snapshot> {
  const base = request.snapshot;
  if (base && isReplayed(base) && base.version === request.readVersion && base.table === storage.root) return advanceSnapshot(base, [...won, ours], Date.now());
  return loadSnapshot(storage, session, { version: ours.version });
}
