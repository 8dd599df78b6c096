// Checkpoints (PROTOCOL.md "Checkpoints", "Checkpoint Schema", "Last
// Checkpoint File"): a classic V1 checkpoint `NNNNNNNNNNNNNNNNNNNN.checkpoint.parquet`
// with Spark's checkpoint schema (one struct column per action type, one
// action per row), written by DuckDB from the snapshot, then `_last_checkpoint`.

import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Action } from './actions.js';
import { checkpointPath, LAST_CHECKPOINT } from './log-files.js';
import type { Snapshot } from './snapshot.js';
import { quoteString, type SqlSession } from './sql.js';
import type { DeltaStorage } from './storage.js';
import { retentionMillis } from './table-properties.js';

/** Commits between checkpoints. */
export const CHECKPOINT_INTERVAL = 10;

const MAP = 'MAP(VARCHAR, VARCHAR)';
const DV = 'STRUCT(storageType VARCHAR, pathOrInlineDv VARCHAR, "offset" INTEGER, sizeInBytes INTEGER, cardinality BIGINT, maxRowIndex BIGINT)';

/** Spark's checkpoint columns, in Spark's order and with Spark's types. */
export const CHECKPOINT_SCHEMA: Array<[string, string]> = [
  ['txn', 'STRUCT(appId VARCHAR, "version" BIGINT, lastUpdated BIGINT)'],
  ['add', `STRUCT(path VARCHAR, partitionValues ${MAP}, size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, tags ${MAP}, deletionVector ${DV}, baseRowId BIGINT, defaultRowCommitVersion BIGINT, stats VARCHAR)`],
  ['remove', `STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, partitionValues ${MAP}, size BIGINT, deletionVector ${DV}, baseRowId BIGINT, defaultRowCommitVersion BIGINT)`],
  ['metaData', `STRUCT(id VARCHAR, "name" VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, "options" ${MAP}), schemaString VARCHAR, partitionColumns VARCHAR[], "configuration" ${MAP}, createdTime BIGINT)`],
  ['protocol', 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER, readerFeatures VARCHAR[], writerFeatures VARCHAR[])'],
  ['domainMetadata', 'STRUCT("domain" VARCHAR, "configuration" VARCHAR, removed BOOLEAN)'],
];

/** The actions a checkpoint of the snapshot holds: no commitInfo; removes without stats or tags, and only until they expire. */
export function checkpointActions(snapshot: Snapshot, now = Date.now()): Action[] {
  const actions: Action[] = [{ protocol: snapshot.protocol }, { metaData: snapshot.metadata }];
  for (const txn of snapshot.txns.values()) actions.push({ txn });
  for (const domainMetadata of snapshot.domains.values()) actions.push({ domainMetadata });
  for (const add of snapshot.files.values()) actions.push({ add: { ...add, dataChange: false } });
  const expiry = now - retentionMillis(snapshot.metadata);
  for (const r of snapshot.tombstones.values()) {
    if ((r.deletionTimestamp ?? 0) <= expiry) continue;
    const { stats: _stats, tags: _tags, ...tombstone } = r;
    actions.push({ remove: { ...tombstone, dataChange: false } });
  }
  return actions;
}

/** Writes the checkpoint of `snapshot` and points `_last_checkpoint` at it. */
export async function writeCheckpoint(storage: DeltaStorage, session: SqlSession, snapshot: Snapshot): Promise<void> {
  const actions = checkpointActions(snapshot);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'etl-delta-checkpoint-'));
  try {
    const json = path.join(dir, 'actions.json');
    const parquet = path.join(dir, 'checkpoint.parquet');
    await fs.writeFile(json, actions.map((a) => JSON.stringify(a)).join('\n') + '\n');
    const columns = CHECKPOINT_SCHEMA.map(([name, type]) => `${quoteString(name)}: ${quoteString(type)}`).join(', ');
    // Built locally and handed to the storage whole: a reader never sees half a checkpoint.
    await session.execute(`copy (select * from read_json(${quoteString(json)}, format = 'newline_delimited', columns = {${columns}})) to ${quoteString(parquet)} (format parquet, compression zstd)`);
    const bytes = await fs.readFile(parquet);
    await storage.write(checkpointPath(snapshot.version), bytes);
    const numOfAddFiles = snapshot.files.size;
    await storage.write(LAST_CHECKPOINT, JSON.stringify({ version: snapshot.version, size: actions.length, sizeInBytes: bytes.length, numOfAddFiles }));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
