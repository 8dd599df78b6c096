// The Delta Lake protocol library: storage, log replay, schema mapping,
// reading, writing, commits with conflict detection, checkpoints, vacuum and
// compaction. DuckDB computes and writes Parquet; this library writes the log.

export { LocalStorage, type DeltaStorage, type StoredFile } from './storage.js';
export { DeltaTable, type WriteOptions, type WriteResult, type HistoryEntry } from './table.js';
export { loadSnapshot, type Snapshot, type SnapshotOptions } from './snapshot.js';
export { scanSnapshot, pruneFiles, fileLocation, type Scan, type ScanFilter } from './scan.js';
export { commit, conflictWith, type CommitRequest, type CommitResult } from './transaction.js';
export { writeCheckpoint, checkpointActions, CHECKPOINT_INTERVAL } from './checkpoint.js';
export { vacuum, type VacuumOptions } from './vacuum.js';
export { optimize, type OptimizeOptions } from './optimize.js';
export { DeltaTableError, UnsupportedFeatureError, ConcurrentModificationError } from './errors.js';
export { parseSchema, schemaFromDuckDb, duckdbTypeOf, type StructType } from './schema.js';
export * from './actions.js';
