// The files of `_delta_log/`: their names (PROTOCOL.md "Delta Log Entries",
// "Checkpoints", "Last Checkpoint File") and the choice of the log segment a
// snapshot is replayed from: the newest complete checkpoint at or before the
// wanted version, then every commit after it, contiguous.

import type { DeltaStorage, StoredFile } from './storage.js';
import { DeltaTableError, UnsupportedFeatureError } from './errors.js';

export const LOG_DIR = '_delta_log';
export const LAST_CHECKPOINT = `${LOG_DIR}/_last_checkpoint`;

export function versionName(version: number): string {
  return String(version).padStart(20, '0');
}

export function commitPath(version: number): string {
  return `${LOG_DIR}/${versionName(version)}.json`;
}

export function checkpointPath(version: number): string {
  return `${LOG_DIR}/${versionName(version)}.checkpoint.parquet`;
}

export interface CommitFile extends StoredFile {
  version: number;
}

export interface CheckpointFiles {
  version: number;
  /** One file, or every part of a multi-part checkpoint. */
  files: StoredFile[];
}

/** What a snapshot is built from. */
export interface LogSegment {
  version: number;
  checkpoint?: CheckpointFiles;
  /** Commits after the checkpoint (or from 0), in version order. */
  commits: CommitFile[];
}

const COMMIT = /^(\d{20})\.json$/;
const CLASSIC_CHECKPOINT = /^(\d{20})\.checkpoint\.parquet$/;
const MULTI_PART_CHECKPOINT = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/;
const UUID_CHECKPOINT = /^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$/;

interface Listing {
  commits: CommitFile[];
  checkpoints: Map<number, { classic?: StoredFile; parts: Map<number, Map<number, StoredFile>>; uuid?: StoredFile }>;
}

function parseListing(files: StoredFile[]): Listing {
  const commits: CommitFile[] = [];
  const checkpoints: Listing['checkpoints'] = new Map();
  const slot = (v: number) => {
    let s = checkpoints.get(v);
    if (!s) checkpoints.set(v, (s = { parts: new Map() }));
    return s;
  };
  for (const f of files) {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1);
    let m: RegExpExecArray | null;
    if ((m = COMMIT.exec(name))) commits.push({ ...f, version: Number(m[1]) });
    else if ((m = CLASSIC_CHECKPOINT.exec(name))) slot(Number(m[1])).classic = f;
    else if ((m = MULTI_PART_CHECKPOINT.exec(name))) {
      const parts = slot(Number(m[1])).parts;
      const of = Number(m[3]);
      if (!parts.has(of)) parts.set(of, new Map());
      parts.get(of)!.set(Number(m[2]), f);
    } else if ((m = UUID_CHECKPOINT.exec(name))) slot(Number(m[1])).uuid = f;
  }
  commits.sort((a, b) => a.version - b.version);
  return { commits, checkpoints };
}

/** The complete checkpoint of a version, if any; a multi-part checkpoint with a part missing does not count. */
function completeCheckpoint(version: number, entry: Listing['checkpoints'] extends Map<number, infer E> ? E : never, table: string): CheckpointFiles | undefined {
  if (entry.classic) return { version, files: [entry.classic] };
  for (const [of, parts] of entry.parts) {
    if (parts.size === of) return { version, files: [...parts.entries()].sort((a, b) => a[0] - b[0]).map(([, f]) => f) };
  }
  if (entry.uuid) throw new UnsupportedFeatureError('v2Checkpoint', table, `UUID-named checkpoint ${entry.uuid.path}`);
  return undefined;
}

/** The version `_last_checkpoint` points at, or undefined when absent or unreadable (then the log is listed whole). */
export async function readLastCheckpointHint(storage: DeltaStorage): Promise<number | undefined> {
  try {
    const text = (await storage.read(LAST_CHECKPOINT)).toString('utf8');
    const v = (JSON.parse(text) as { version?: unknown }).version;
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
  } catch {
    // Absent or corrupt: a hint only; the listing is the truth.
    return undefined;
  }
}

/** Every commit file of the log with its modification time (history, timestamp time travel). */
export async function listCommits(storage: DeltaStorage): Promise<CommitFile[]> {
  return parseListing(await storage.list(LOG_DIR)).commits;
}

/**
 * The segment for `version` (latest when undefined). Throws with the table
 * and version for a table without a log, a version that does not exist, and
 * a log with a gap.
 */
export async function findLogSegment(storage: DeltaStorage, version?: number): Promise<LogSegment> {
  const table = storage.root;
  const hint = await readLastCheckpointHint(storage);
  let listing: Listing | undefined;
  // Listing from the hint skips the old commits; a time-travel read before it needs the whole log.
  if (hint !== undefined && (version === undefined || version >= hint)) {
    listing = parseListing(await storage.list(LOG_DIR, { startAfter: `${versionName(hint)}.` }));
    const entry = listing.checkpoints.get(hint);
    if (!entry || !completeCheckpoint(hint, entry, table)) listing = undefined;
  }
  listing ??= parseListing(await storage.list(LOG_DIR));
  const { commits, checkpoints } = listing;
  if (commits.length === 0 && checkpoints.size === 0) {
    throw new DeltaTableError(`not a Delta table: ${table} has no ${LOG_DIR}/ commits\n  hint: check the path; a Delta table is a folder with a ${LOG_DIR}/ folder in it`);
  }
  const latest = Math.max(commits.at(-1)?.version ?? -1, ...checkpoints.keys());
  const target = version ?? latest;
  if (target > latest) throw new DeltaTableError(`Delta table ${table} has no version ${target}: its latest version is ${latest}`);
  if (target < 0) throw new DeltaTableError(`Delta table ${table} has no version ${target}`);

  let checkpoint: CheckpointFiles | undefined;
  for (const v of [...checkpoints.keys()].filter((v) => v <= target).sort((a, b) => b - a)) {
    checkpoint = completeCheckpoint(v, checkpoints.get(v)!, table);
    if (checkpoint) break;
  }
  const from = checkpoint ? checkpoint.version + 1 : 0;
  const segment = commits.filter((c) => c.version >= from && c.version <= target);
  let expected = from;
  for (const c of segment) {
    if (c.version !== expected) {
      throw new DeltaTableError(`Delta table ${table} has a gap in its log: version ${expected} is missing (the next commit is ${c.version})`);
    }
    expected++;
  }
  if (expected <= target) {
    const oldest = commits[0]?.version;
    const what = oldest !== undefined && oldest > target ? `its log starts at version ${oldest} (older commits were cleaned up) and no checkpoint covers version ${target}` : `commit ${versionName(expected)}.json is missing`;
    throw new DeltaTableError(`Delta table ${table} cannot be read at version ${target}: ${what}`);
  }
  return { version: target, checkpoint, commits: segment };
}
