// OPTIMIZE (compaction): within each partition, files smaller than the
// target (and every file with a deletion vector, whose deleted rows are then
// dropped for good) are rewritten together into files of about the target size, in one
// commit whose adds and removes have dataChange = false (the rows are the
// same; readers tailing the log skip it). Conflicts only with a writer that
// removed one of the compacted files.

import type { Action, AddFile } from './actions.js';
import { fileKey } from './actions.js';
import { checkWritable } from './protocol.js';
import { scanSnapshot } from './scan.js';
import { loadSnapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';
import { removeOf, partitionKey } from './table.js';
import { commit, type CommitResult } from './transaction.js';
import { TARGET_FILE_SIZE, writeDataFiles } from './write.js';

export interface OptimizeOptions {
  targetFileSize?: number;
  writer?: string;
}

export interface OptimizeResult {
  commit?: CommitResult;
  filesRemoved: number;
  filesAdded: number;
}

export async function optimize(storage: DeltaStorage, session: SqlSession, options: OptimizeOptions = {}): Promise<OptimizeResult> {
  const target = options.targetFileSize ?? TARGET_FILE_SIZE;
  const snapshot = await loadSnapshot(storage, session);
  checkWritable(snapshot.protocol, snapshot.metadata, snapshot.schema, storage.root);
  const partitionColumns = snapshot.metadata.partitionColumns;
  const groups = new Map<string, AddFile[]>();
  for (const f of snapshot.files.values()) {
    // A file with a deletion vector is rewritten whatever its size: the new file holds only its live rows (the vector is purged).
    if (f.size >= target && !f.deletionVector) continue;
    const k = partitionKey(f, partitionColumns);
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  const now = Date.now();
  const actions: Action[] = [];
  const compacted = new Set<string>();
  let added = 0;
  for (const files of groups.values()) {
    if (files.length < 2 && !files[0]?.deletionVector) continue;
    const rows = await scanSnapshot(storage, session, { ...snapshot, files: new Map(files.map((f) => [fileKey(f), f])) });
    const adds = await writeDataFiles(storage, session, { selectSql: rows.sql, schema: snapshot.schema, partitionColumns, targetFileSize: target, dataChange: false });
    for (const f of files) {
      actions.push({ remove: removeOf(f, now, false) });
      compacted.add(fileKey(f));
    }
    for (const add of adds) actions.push({ add });
    added += adds.length;
  }
  if (compacted.size === 0) return { filesRemoved: 0, filesAdded: 0 };
  const result = await commit(storage, session, {
    operation: 'OPTIMIZE',
    operationParameters: { predicate: [], targetFileSize: target },
    operationMetrics: { numRemovedFiles: compacted.size, numAddedFiles: added },
    readVersion: snapshot.version,
    snapshot,
    actions,
    readPredicate: 'none',
    readFiles: compacted,
    writer: options.writer,
  });
  return { commit: result, filesRemoved: compacted.size, filesAdded: added };
}
