// What the runner reports as it goes. Reporters (text, JSON) turn these into
// output; the runner itself never prints.

import type { ManifestNode } from '../compiler/manifest.js';
import type { AttemptRecord } from './retry.js';

export type NodeStatus = 'success' | 'error' | 'skipped' | 'pass' | 'fail' | 'warn';

/** One entry of run_results.json (dbt's shape, plus rows_affected and relation_name). */
export interface NodeResult {
  unique_id: string;
  status: NodeStatus;
  timing: Array<{ name: string; started_at: string; completed_at: string }>;
  thread_id: string;
  execution_time: number;
  /** bytes_written/bytes_scanned: where the engine reports them. Loaders add what they moved: rows_read, rows_loaded, rows_rejected, rows_deleted (deletes: detect), bytes, seconds, rows_per_second. */
  adapter_response: { _message?: string; rows_affected?: number; bytes_written?: number; bytes_scanned?: number; rows_read?: number; rows_loaded?: number; rows_rejected?: number; rows_deleted?: number; bytes?: number; rows_per_second?: number; cdc?: { summary: string }; schema_changes?: { added: string[]; removed: string[]; changed: string[] } };
  message: string;
  failures: number | null;
  rows_affected: number | null;
  compiled_path: string | null;
  relation_name: string | null;
  /** Failing tests: their first failing rows. */
  failing_rows_sample?: { columns: string[]; rows: unknown[][] };
  /** quarantine: true models: rows moved to <model>__quarantine. */
  quarantined?: number;
  /** Microbatch models: the batches ([start, end)) that succeeded and failed. */
  batch_results?: { successful: Array<[string, string]>; failed: Array<[string, string]> };
  /** A node tried more than once (retries): every attempt, the last one's outcome being the node's. */
  attempts?: AttemptRecord[];
}

export type RunEvent =
  | { type: 'run_started'; total: number; threads: number }
  | { type: 'node_started'; index: number; total: number; node: ManifestNode }
  | { type: 'node_finished'; index: number; total: number; node: ManifestNode; result: NodeResult }
  | { type: 'node_retry'; index: number; total: number; node: ManifestNode; /** The retry's number (1: the first retry, after attempt 1 failed). */ attempt: number; delayMs: number; reason: string };
