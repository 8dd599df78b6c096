// run_results.json (dbt's run-results v6) and sources.json (sources v3),
// written from what the runner and the freshness check report. etl's own
// per-result facts (rows affected, quarantined rows, the first failing rows,
// the compiled file) go in `adapter_response`, the one open object of a
// result; its own run facts in `metadata.env` and `args`.

import { rmSync } from 'node:fs';
import path from 'node:path';
import type { Manifest, ResourceType } from '../compiler/manifest.js';
import { readJsonIfExists, writeFileAtomic } from '../compiler/artifacts.js';
import { ETL_VERSION } from '../compiler/version.js';
import type { FreshnessResult } from '../data-tests/engine/freshness.js';
import type { NodeResult } from '../runner/events.js';
import { DBT_VERSION, freshnessTime } from './manifest-json.js';

export const RUN_RESULTS_SCHEMA = 'https://schemas.getdbt.com/dbt/run-results/v6.json';
export const SOURCES_SCHEMA = 'https://schemas.getdbt.com/dbt/sources/v3.json';

function metadata(schema: string, invocationId: string, startedAt?: string): Record<string, unknown> {
  const generatedAt = new Date().toISOString();
  return {
    dbt_schema_version: schema,
    dbt_version: DBT_VERSION,
    generated_at: generatedAt,
    invocation_id: invocationId,
    invocation_started_at: startedAt ?? generatedAt,
    env: { etl_version: ETL_VERSION },
  };
}

/** One result as dbt writes it. */
export function dbtRunResult(r: NodeResult, manifest: Manifest): Record<string, unknown> {
  const node = manifest.nodes[r.unique_id];
  const isSeed = node?.resource_type === 'seed';
  const adapterResponse: Record<string, unknown> = { ...r.adapter_response };
  if (r.rows_affected !== null) adapterResponse.rows_affected = r.rows_affected;
  if (r.quarantined !== undefined) adapterResponse.quarantined = r.quarantined;
  if (r.failing_rows_sample) adapterResponse.failing_rows_sample = r.failing_rows_sample;
  if (r.compiled_path) adapterResponse.compiled_path = r.compiled_path;
  if (r.attempts) adapterResponse.attempts = r.attempts;
  const out: Record<string, unknown> = {
    status: r.status,
    timing: r.timing,
    thread_id: r.thread_id,
    execution_time: r.execution_time,
    adapter_response: adapterResponse,
    message: r.message ?? null,
    failures: r.failures,
    unique_id: r.unique_id,
    // dbt: a seed is not compiled; every other node is, skipped or not.
    compiled: isSeed || !node ? null : true,
    compiled_code: isSeed || !node ? null : node.compiled_code,
    // As manifest.json names it: with the target's database ("dev"."main"."orders").
    relation_name: r.relation_name && manifest.metadata.database && node?.database === null ? `"${manifest.metadata.database.replace(/"/g, '""')}".${r.relation_name}` : r.relation_name,
  };
  if (r.batch_results) out.batch_results = r.batch_results;
  return out;
}

/**
 * A result of run_results.json read back as the runner reported it: etl's own
 * facts lifted out of `adapter_response`, where dbtRunResult put them (the
 * file has no top-level rows_affected or quarantined: dbt's schema forbids them).
 */
export function nodeResultFromJson(r: Record<string, unknown>): NodeResult {
  const response = (r.adapter_response ?? {}) as Record<string, unknown>;
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  const result = { ...r } as unknown as NodeResult;
  result.rows_affected = num(r.rows_affected) ?? num(response.rows_affected) ?? null;
  const quarantined = num(r.quarantined) ?? num(response.quarantined);
  if (quarantined !== undefined) result.quarantined = quarantined;
  const sample = r.failing_rows_sample ?? response.failing_rows_sample;
  if (sample) result.failing_rows_sample = sample as NodeResult['failing_rows_sample'];
  result.compiled_path = (r.compiled_path ?? response.compiled_path ?? null) as string | null;
  if (Array.isArray(response.attempts)) result.attempts = response.attempts as NodeResult['attempts'];
  return result;
}

export interface RunResultsArgs {
  command: string;
  resource_types: ResourceType[];
  select?: string[];
  exclude?: string[];
  state?: string;
  defer?: boolean;
  favor_state?: boolean;
  /** etl retry: the run whose changes this one committed as (RunStarted.changes_of). */
  changes_of?: string;
}

export function writeRunResults(
  targetPath: string,
  manifest: Manifest,
  results: NodeResult[],
  elapsed: number,
  args: RunResultsArgs,
  invocationId: string,
  startedAt?: string,
): void {
  const json = {
    metadata: metadata(RUN_RESULTS_SCHEMA, invocationId, startedAt),
    results: results.map((r) => dbtRunResult(r, manifest)),
    elapsed_time: elapsed,
    args: { ...args, which: args.command, target: manifest.metadata.target_name, etl_version: ETL_VERSION },
  };
  writeFileAtomic(path.join(targetPath, 'run_results.json'), JSON.stringify(json, null, 2));
}

/**
 * target/run_started.json: a run that builds something writes it before its
 * first node and removes it once run_results.json is written, so its presence
 * means the last run died (killed, a crash) with no run_results.json of its
 * own. `etl retry` then reruns that run's nodes; `changes_of` is the run its
 * changes were committed as (IncrementalChange.commitId), so that what it
 * committed before it died is not applied again.
 */
export interface RunStarted {
  invocation_id: string;
  changes_of: string;
  command: string;
  resource_types: ResourceType[];
  nodes: string[];
}

const RUN_STARTED = 'run_started.json';

export function writeRunStarted(targetPath: string, run: RunStarted): void {
  writeFileAtomic(path.join(targetPath, RUN_STARTED), JSON.stringify(run, null, 2));
}

export function clearRunStarted(targetPath: string): void {
  rmSync(path.join(targetPath, RUN_STARTED), { force: true });
}

export function readRunStarted(targetPath: string): RunStarted | undefined {
  return readJsonIfExists<RunStarted>(path.join(targetPath, RUN_STARTED));
}

/** One freshness result as dbt writes it; a check that could not run (or found no rows) is a runtime error. */
export function dbtFreshnessResult(r: FreshnessResult): Record<string, unknown> {
  if (r.status === 'runtime error' || r.max_loaded_at === null || r.max_loaded_at_time_ago_in_s === null) {
    return { unique_id: r.unique_id, error: r.error ?? r.status, status: 'runtime error' };
  }
  const completed = new Date(new Date(r.snapshotted_at).getTime() + Math.round(r.execution_time * 1000)).toISOString();
  return {
    unique_id: r.unique_id,
    max_loaded_at: r.max_loaded_at,
    snapshotted_at: r.snapshotted_at,
    max_loaded_at_time_ago_in_s: r.max_loaded_at_time_ago_in_s,
    status: r.status,
    criteria: {
      warn_after: freshnessTime(r.criteria.warn_after ?? undefined),
      error_after: freshnessTime(r.criteria.error_after ?? undefined),
      filter: r.criteria.filter,
    },
    adapter_response: {},
    timing: [
      { name: 'compile', started_at: r.snapshotted_at, completed_at: r.snapshotted_at },
      { name: 'execute', started_at: r.snapshotted_at, completed_at: completed },
    ],
    thread_id: 'Thread-1',
    execution_time: r.execution_time,
  };
}

export function writeSourcesJson(targetPath: string, results: FreshnessResult[], elapsed: number, invocationId: string): void {
  const json = { metadata: metadata(SOURCES_SCHEMA, invocationId), results: results.map(dbtFreshnessResult), elapsed_time: elapsed };
  writeFileAtomic(path.join(targetPath, 'sources.json'), JSON.stringify(json, null, 2));
}
