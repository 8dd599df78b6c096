// The actions of a Delta commit (PROTOCOL.md "Actions"), their JSON form in
// `_delta_log/NNNNNNNNNNNNNNNNNNNN.json` (one action per line), and the
// logical-file key that reconciles adds and removes.

import { DeltaTableError } from './errors.js';

export interface Protocol {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export interface Metadata {
  id: string;
  name?: string | null;
  description?: string | null;
  format: { provider: string; options: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  configuration: Record<string, string>;
  createdTime?: number | null;
}

export interface DeletionVector {
  storageType: string;
  pathOrInlineDv: string;
  offset?: number | null;
  sizeInBytes: number;
  cardinality: number;
}

export interface AddFile {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string | null;
  tags?: Record<string, string> | null;
  deletionVector?: DeletionVector | null;
  baseRowId?: number | null;
  defaultRowCommitVersion?: number | null;
  clusteringProvider?: string | null;
}

export interface RemoveFile {
  path: string;
  deletionTimestamp?: number | null;
  dataChange: boolean;
  extendedFileMetadata?: boolean | null;
  partitionValues?: Record<string, string | null> | null;
  size?: number | null;
  stats?: string | null;
  tags?: Record<string, string> | null;
  deletionVector?: DeletionVector | null;
  baseRowId?: number | null;
  defaultRowCommitVersion?: number | null;
}

export interface Txn {
  appId: string;
  version: number;
  lastUpdated?: number | null;
}

export interface DomainMetadata {
  domain: string;
  configuration: string;
  removed: boolean;
}

export type CommitInfo = Record<string, unknown> & { timestamp?: number; operation?: string; inCommitTimestamp?: number };

export type Action =
  | { protocol: Protocol }
  | { metaData: Metadata }
  | { add: AddFile }
  | { remove: RemoveFile }
  | { txn: Txn }
  | { domainMetadata: DomainMetadata }
  | { commitInfo: CommitInfo }
  | { cdc: Record<string, unknown> };

/** A commit as read back: its version, actions, and the commitInfo when there is one. */
export interface Commit {
  version: number;
  actions: Action[];
}

/** The logical file an add or remove refers to: (path, deletionVector.uniqueId). */
export function fileKey(f: { path: string; deletionVector?: DeletionVector | null }): string {
  const dv = f.deletionVector;
  if (!dv) return canonicalPath(f.path);
  const uniqueId = dv.offset == null ? `${dv.storageType}${dv.pathOrInlineDv}` : `${dv.storageType}${dv.pathOrInlineDv}@${dv.offset}`;
  return `${canonicalPath(f.path)}\u0000${uniqueId}`;
}

/**
 * One spelling per file: `file:/x`, `file:///x` and `/x` name the same file,
 * and a relative path is compared decoded (PROTOCOL.md: paths are URIs).
 */
export function canonicalPath(p: string): string {
  let s = p;
  if (s.startsWith('file://')) s = s.slice('file://'.length);
  else if (s.startsWith('file:')) s = s.slice('file:'.length);
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Parses one commit file (newline-delimited JSON); a line that is not JSON is an error naming the file and line. */
export function parseCommit(text: string, file: string, version: number): Commit {
  const actions: Action[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new DeltaTableError(`corrupt Delta commit ${file}:${i + 1} (version ${version}): ${(err as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DeltaTableError(`corrupt Delta commit ${file}:${i + 1} (version ${version}): an action must be a JSON object`);
    }
    actions.push(value as Action);
  }
  return { version, actions };
}

/** One action per line, as the protocol asks; the last line ends with a newline too. */
export function serializeCommit(actions: Action[]): string {
  return actions.map((a) => JSON.stringify(a)).join('\n') + '\n';
}

export function commitInfoOf(commit: Commit): CommitInfo | undefined {
  for (const a of commit.actions) if ('commitInfo' in a) return a.commitInfo;
  return undefined;
}
