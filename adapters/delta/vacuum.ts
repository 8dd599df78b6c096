// VACUUM: deletes data files the table no longer references and that are
// older than the retention, so readers of versions within the retention keep
// their files. A retention shorter than the table's
// delta.deletedFileRetentionDuration is refused unless forced, as Delta does.

import { canonicalPath } from './actions.js';
import type { DeletionVector } from './actions.js';
import { deletionVectorFile } from './deletion-vectors.js';
import { DeltaTableError } from './errors.js';
import { checkWritable } from './protocol.js';
import { fileLocation } from './scan.js';
import { loadSnapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';
import { retentionMillis } from './table-properties.js';

export interface VacuumOptions {
  /** Keep unreferenced files younger than this (default: the table's delta.deletedFileRetentionDuration). */
  retentionHours?: number;
  /** Allow a retention shorter than the table's. */
  force?: boolean;
  /** List what would be deleted without deleting. */
  dryRun?: boolean;
  now?: number;
}

export interface VacuumResult {
  /** Relative paths deleted (or, on a dry run, to be deleted). */
  deleted: string[];
  retentionHours: number;
}

/** Hidden and underscore-prefixed entries (the log, change data, temporary files) are never data files of the table. */
function isHidden(relative: string): boolean {
  return relative.split('/').some((seg) => seg.startsWith('_') || seg.startsWith('.'));
}

export async function vacuum(storage: DeltaStorage, session: SqlSession, options: VacuumOptions = {}): Promise<VacuumResult> {
  const snapshot = await loadSnapshot(storage, session);
  // vacuumProtocolCheck: vacuum is a write and needs a table etl may write.
  checkWritable(snapshot.protocol, snapshot.metadata, snapshot.schema, storage.root);
  const tableRetention = retentionMillis(snapshot.metadata);
  const retention = options.retentionHours !== undefined ? options.retentionHours * 3_600_000 : tableRetention;
  if (!(retention >= 0)) throw new DeltaTableError(`vacuum retention must be a number of hours >= 0`);
  if (retention < tableRetention && !options.force) {
    throw new DeltaTableError(
      `refusing to vacuum ${storage.root} with a retention of ${retention / 3_600_000}h: the table keeps removed files for ${tableRetention / 3_600_000}h (delta.deletedFileRetentionDuration), and readers of older versions may still need them\n  hint: use a longer retention, or --force if no reader or writer is using an older version`,
    );
  }
  const now = options.now ?? Date.now();
  const cutoff = now - retention;
  const referenced = new Set<string>();
  const reference = (f: { path: string; deletionVector?: DeletionVector | null }) => {
    referenced.add(fileLocation(storage, f.path));
    // A deletion vector's file is kept while a file (or a tombstone) refers to it.
    const dv = f.deletionVector && f.deletionVector.storageType !== 'i' ? deletionVectorFile(f.deletionVector, storage.root) : undefined;
    if (dv?.relative) referenced.add(storage.locate(dv.relative));
  };
  for (const f of snapshot.files.values()) reference(f);
  // Tombstones younger than the retention still serve time travel.
  for (const r of snapshot.tombstones.values()) if ((r.deletionTimestamp ?? 0) > cutoff) reference(r);
  const deleted: string[] = [];
  for (const f of await storage.list('', { recursive: true })) {
    if (isHidden(f.path)) continue;
    if (referenced.has(storage.locate(canonicalPath(f.path)))) continue;
    if (f.modificationTime > cutoff) continue;
    deleted.push(f.path);
  }
  if (!options.dryRun) for (const p of deleted) await storage.delete(p);
  return { deleted, retentionHours: retention / 3_600_000 };
}
