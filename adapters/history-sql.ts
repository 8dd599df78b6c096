// Run history as SQL, for every store whose history is two relations a
// session can query (etl_meta.runs and etl_meta.node_runs): the SQL engines'
// etl_meta (adapters/sql-state.ts) and the Delta tables under the lake
// (adapters/delta/state-store.ts), which DuckDB reads. `etl history` reads
// rows; `etl report` aggregates in the engine, never in JS.

import type { HistoryNodeRun, HistoryQuery, HistoryRows, HistoryRun, UpstreamRead } from '../core/state/state.js';
import type { AdapterSession } from './adapter.js';

/** Where a store keeps its history, as SQL. */
export interface HistorySource {
  /** A relation or subquery with one row per run (run_id, command, target, selection, job, git_commit, git_dirty, user_name, host, etl_version, started_at, finished_at, status, message). */
  runs: string;
  /** A relation with one row per node attempt. */
  nodeRuns: string;
  /** A parameter as the store's timestamp type. */
  timestamp(param: string): string;
  /** An ISO instant as the value bound to `timestamp(param)`. */
  bindTimestamp(iso: string): string;
}

const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** A timestamp as the engines print it ('2024-01-01 10:00:00.123', maybe with '+00'), as ISO in UTC. */
export function isoFromSql(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  const s = String(v).trim().replace(' ', 'T');
  const withZone = /([+-]\d\d(:?\d\d)?|Z)$/.test(s) ? s.replace(/([+-]\d\d)$/, '$1:00') : `${s}Z`;
  const d = new Date(withZone);
  return Number.isNaN(d.getTime()) ? String(v) : d.toISOString();
}

function where(src: HistorySource, query: HistoryQuery, params: unknown[], column = 'started_at'): string {
  const parts: string[] = [];
  if (query.since) {
    params.push(src.bindTimestamp(query.since));
    parts.push(`${column} >= ${src.timestamp(`$${params.length}`)}`);
  }
  if (query.uniqueIds) {
    if (query.uniqueIds.length === 0) parts.push('false');
    else {
      const marks = query.uniqueIds.map((id) => (params.push(id), `$${params.length}`));
      parts.push(`run_id in (select run_id from ${src.nodeRuns} where unique_id in (${marks.join(', ')}))`);
    }
  }
  return parts.length ? ` where ${parts.join(' and ')}` : '';
}

export async function queryHistory(session: AdapterSession, src: HistorySource, query: HistoryQuery): Promise<HistoryRows> {
  const params: unknown[] = [];
  const limit = query.limit ? ` limit ${Math.max(1, Math.floor(query.limit))}` : '';
  const runs = await session.query(
    `select run_id, command, target, selection, job, git_commit, cast(git_dirty as varchar), user_name, host, etl_version, cast(started_at as varchar), cast(finished_at as varchar), status, message from ${src.runs}${where(src, query, params)} order by started_at desc${limit}`,
    params,
  );
  const out: HistoryRows = { runs: runs.rows.map(runRow), node_runs: [] };
  if (out.runs.length === 0) return out;
  const ids = out.runs.map((r) => r.run_id);
  const nodeParams: unknown[] = [...ids];
  let nodeFilter = `run_id in (${ids.map((_, i) => `$${i + 1}`).join(', ')})`;
  if (query.uniqueIds) nodeFilter += ` and unique_id in (${query.uniqueIds.map((id) => (nodeParams.push(id), `$${nodeParams.length}`)).join(', ')})`;
  const nodes = await session.query(
    `select run_id, unique_id, relation, status, cast(started_at as varchar), cast(finished_at as varchar), rows_affected, message, coalesce(attempt, 1), execution_time, bytes_written, bytes_scanned, upstream from ${src.nodeRuns} where ${nodeFilter} order by started_at desc, unique_id, attempt desc`,
    nodeParams,
  );
  out.node_runs = nodes.rows.map(nodeRow);
  return out;
}

function runRow(r: unknown[]): HistoryRun {
  const dirty = text(r[6]);
  return {
    run_id: String(r[0]),
    command: text(r[1]),
    target: text(r[2]),
    selection: text(r[3]),
    job: text(r[4]),
    git_commit: text(r[5]),
    git_dirty: dirty === null ? null : dirty === 'true',
    user: text(r[7]),
    host: text(r[8]),
    etl_version: text(r[9]),
    started_at: isoFromSql(r[10]),
    finished_at: isoFromSql(r[11]),
    status: String(r[12] ?? ''),
    message: text(r[13]),
  };
}

function nodeRow(r: unknown[]): HistoryNodeRun {
  let upstream: UpstreamRead[] = [];
  try {
    upstream = r[12] ? (JSON.parse(String(r[12])) as UpstreamRead[]) : [];
  } catch {
    // a row written by hand: no upstream
  }
  return {
    run_id: String(r[0]),
    unique_id: String(r[1]),
    relation: text(r[2]),
    status: String(r[3] ?? ''),
    started_at: isoFromSql(r[4]),
    finished_at: isoFromSql(r[5]),
    rows_affected: num(r[6]),
    message: String(r[7] ?? ''),
    attempt: Number(r[8] ?? 1),
    execution_time: num(r[9]),
    bytes_written: num(r[10]),
    bytes_scanned: num(r[11]),
    upstream,
  };
}

/** Deletes runs that started before `before`, and their node attempts. */
export async function pruneHistorySql(session: AdapterSession, src: HistorySource & { runsTable: string }, before: string): Promise<{ runs: number; node_runs: number }> {
  const cutoff = src.timestamp('$1');
  const b = src.bindTimestamp(before);
  const nodes = await session.execute(`delete from ${src.nodeRuns} where run_id in (select run_id from ${src.runsTable} where started_at < ${cutoff})`, [b]);
  const runs = await session.execute(`delete from ${src.runsTable} where started_at < ${cutoff}`, [b]);
  return { runs: runs.rowsAffected ?? 0, node_runs: nodes.rowsAffected ?? 0 };
}
