// Run history as SQL, for every store whose history is two relations a
// session can query (etl_meta.runs and etl_meta.node_runs): the SQL engines'
// etl_meta (adapters/sql-state.ts) and the Delta tables under the lake
// (adapters/delta/state-store.ts), which DuckDB reads. `etl history` reads
// rows; `etl report` aggregates in the engine, never in JS.

import { LOAD_COLUMN_TYPES, LOAD_COLUMNS, type HistoryNodeRun, type HistoryQuery, type HistoryRows, type HistoryRun, type ReportGroupRow, type ReportQuery, type ReportRows, type UpstreamRead } from '../core/state/state.js';
import type { AdapterSession } from './adapter.js';

/** Where a store keeps its history, as SQL. */
export interface HistorySource {
  /** A relation or subquery with one row per run (run_id, command, target, selection, job, git_commit, git_dirty, user_name, host, etl_version, started_at, finished_at, status, message). */
  runs: string;
  /** A relation with one row per node attempt. */
  nodeRuns: string;
  /** Whether nodeRuns has the loaders' columns (LOAD_COLUMNS); a store an older etl wrote reads them as null. */
  hasLoadColumns: boolean;
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
    `select run_id, unique_id, relation, status, cast(started_at as varchar), cast(finished_at as varchar), rows_affected, message, coalesce(attempt, 1), execution_time, bytes_written, bytes_scanned, upstream, ${loadColumns(src)} from ${src.nodeRuns} where ${nodeFilter} order by started_at desc, unique_id, attempt desc`,
    nodeParams,
  );
  out.node_runs = nodes.rows.map(nodeRow);
  return out;
}

/** The loaders' columns, or nulls in their place where the store predates them. */
function loadColumns(src: HistorySource): string {
  return LOAD_COLUMNS.map((c) => (src.hasLoadColumns ? c : `cast(null as ${LOAD_COLUMN_TYPES[c]}) as ${c}`)).join(', ');
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
    ...(Object.fromEntries(LOAD_COLUMNS.map((c, i) => [c, num(r[13 + i])])) as Pick<HistoryNodeRun, (typeof LOAD_COLUMNS)[number]>),
    upstream,
  };
}

/** The last successful finish of each of `uniqueIds` (a stale-SLA check): one row per node, however old. */
export async function lastSuccessesSql(session: AdapterSession, src: Pick<HistorySource, 'nodeRuns'>, uniqueIds: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (uniqueIds.length === 0) return out;
  const r = await session.query(
    `select unique_id, cast(max(finished_at) as varchar) from ${src.nodeRuns} where status = 'success' and finished_at is not null and unique_id in (${uniqueIds.map((_, i) => `$${i + 1}`).join(', ')}) group by unique_id`,
    uniqueIds,
  );
  for (const row of r.rows) out.set(String(row[0]), isoFromSql(row[1])!);
  return out;
}

/** Deletes runs that started before `before`, and their node attempts (and starts, where a store keeps them apart). */
export async function pruneHistorySql(session: AdapterSession, src: HistorySource & { runsTable: string; runStartsTable?: string }, before: string): Promise<{ runs: number; node_runs: number }> {
  const cutoff = src.timestamp('$1');
  const b = src.bindTimestamp(before);
  // Runs as history shows them: ended ones, and those that never ended (only a start).
  const runs = Number((await session.query(`select count(*) from ${src.runs} where started_at < ${cutoff}`, [b])).rows[0]?.[0] ?? 0);
  const nodes = await session.execute(`delete from ${src.nodeRuns} where run_id in (select run_id from ${src.runs} where started_at < ${cutoff})`, [b]);
  if (src.runStartsTable) await session.execute(`delete from ${src.runStartsTable} where started_at < ${cutoff}`, [b]);
  await session.execute(`delete from ${src.runsTable} where started_at < ${cutoff}`, [b]);
  return { runs, node_runs: nodes.rowsAffected ?? 0 };
}

/**
 * Cost and time per group and period, aggregated in the engine (`etl
 * report`): one query over the node attempts (and, with monthSince, the
 * month's cost beside them), plus a count of the runs.
 */
export async function reportHistorySql(session: AdapterSession, src: HistorySource, q: ReportQuery): Promise<ReportRows> {
  const params: unknown[] = [];
  const bind = (v: unknown) => (params.push(v), `$${params.length}`);
  const current = src.timestamp(bind(src.bindTimestamp(q.since)));
  const from = q.previousSince ? src.timestamp(bind(src.bindTimestamp(q.previousSince))) : current;
  // Rates are numbers validated at load: literals, so the planner sees constants.
  const rate = (x: number) => (Number.isFinite(x) ? String(x) : '0');
  const cost = `(coalesce(nr.execution_time, 0) / 3600.0 * ${rate(q.rates.per_cpu_hour)} + coalesce(nr.bytes_written, 0) / 1e9 * ${rate(q.rates.per_gb_written)} + coalesce(nr.bytes_scanned, 0) / 1e9 * ${rate(q.rates.per_gb_scanned)})`;
  let group = `cast('total' as varchar)`;
  let join = '';
  if (q.by === 'model') group = 'nr.unique_id';
  else if (q.by === 'job') {
    group = `coalesce(runs.job, '')`;
    join = ` join ${src.runs} on runs.run_id = nr.run_id`;
  } else if (typeof q.by === 'object') {
    if (q.by.groups.length === 0) return { groups: [], runs: await runTotals() };
    group = 'g.grp';
    join = ` join (values ${q.by.groups.map(([id, g]) => `(cast(${bind(id)} as varchar), cast(${bind(g)} as varchar))`).join(', ')}) as g(unique_id, grp) on g.unique_id = nr.unique_id`;
  }
  const double = (x: string) => `cast(${x} as double precision)`;
  // The budget's month as one more row: every attempt since the month began, whatever the grouping.
  const month = q.monthSince
    ? ` union all select cast(null as varchar), 'month', 0, 0, 0, 0, ${double('0')}, ${double(`coalesce(sum(${cost}), 0)`)}, ${double('0')}, ${double('0')}, ${double('null')}, ${double('null')}, ${double('null')}, ${double('null')} from ${src.nodeRuns} as nr where nr.started_at >= ${src.timestamp(bind(src.bindTimestamp(q.monthSince)))}`
    : '';
  // A node's run is its last attempt. Only retried nodes have more than one, so the last attempt is
  // found among those few (a group by of the attempts after a first) rather than by numbering every row.
  const r = await session.query(
    `with retried as (select run_id, unique_id, max(attempt) as last_attempt from ${src.nodeRuns} where started_at >= ${from} and attempt > 1 group by run_id, unique_id), ` +
      `n as (select ${group} as grp, case when nr.started_at >= ${current} then 'current' else 'previous' end as period, nr.status, coalesce(nr.attempt, 1) as attempt, ` +
      `${double('nr.execution_time')} as secs, nr.bytes_written, nr.bytes_scanned, ${cost} as cost, coalesce(nr.attempt, 1) >= coalesce(retried.last_attempt, 1) as last, ` +
      `${src.hasLoadColumns ? 'nr.rows_loaded, nr.rows_rejected' : 'cast(null as bigint) as rows_loaded, cast(null as bigint) as rows_rejected'} ` +
      `from ${src.nodeRuns} as nr left join retried on retried.run_id = nr.run_id and retried.unique_id = nr.unique_id${join} where nr.started_at >= ${from}) ` +
      `select grp, period, count(*) filter (where last), count(*) filter (where last and status in ('success', 'pass', 'warn')), count(*) filter (where last and status in ('error', 'fail')), ` +
      `count(*) filter (where attempt > 1), ${double('coalesce(sum(secs), 0)')}, ${double('coalesce(sum(cost), 0)')}, ${double('coalesce(sum(bytes_written), 0)')}, ${double('coalesce(sum(bytes_scanned), 0)')}, ` +
      `${double('percentile_cont(0.5) within group (order by secs) filter (where last)')}, ${double('percentile_cont(0.95) within group (order by secs) filter (where last)')}, ` +
      `${double('sum(rows_loaded) filter (where last)')}, ${double('sum(rows_rejected) filter (where last)')} ` +
      `from n group by grp, period${month}`,
    params,
  );
  const out: ReportRows = { groups: r.rows.filter((x) => x[1] !== 'month').map(groupRow), runs: await runTotals() };
  if (q.monthSince) out.month_cost = Number(r.rows.find((x) => x[1] === 'month')?.[7] ?? 0);
  return out;

  async function runTotals(): Promise<ReportRows['runs']> {
    const p: unknown[] = [];
    const b = (v: unknown) => (p.push(v), `$${p.length}`);
    const cur = src.timestamp(b(src.bindTimestamp(q.since)));
    const start = q.previousSince ? src.timestamp(b(src.bindTimestamp(q.previousSince))) : cur;
    const t = await session.query(
      `select case when started_at >= ${cur} then 'current' else 'previous' end as period, count(*), count(*) filter (where status = 'success'), count(*) filter (where status in ('error', 'interrupted')), count(*) filter (where status = 'skipped') ` +
        `from ${src.runs} where started_at >= ${start} and status <> 'running' group by 1`,
      p,
    );
    return t.rows.map((x) => ({ period: String(x[0]) as 'current' | 'previous', runs: Number(x[1]), succeeded: Number(x[2]), failed: Number(x[3]), skipped: Number(x[4]) }));
  }
}

function groupRow(r: unknown[]): ReportGroupRow {
  return {
    group: String(r[0] ?? ''),
    period: String(r[1]) as 'current' | 'previous',
    nodes: Number(r[2]),
    succeeded: Number(r[3]),
    failed: Number(r[4]),
    retries: Number(r[5]),
    seconds: Number(r[6]),
    cost: Number(r[7]),
    bytes_written: Number(r[8]),
    bytes_scanned: Number(r[9]),
    p50: num(r[10]),
    p95: num(r[11]),
    rows_loaded: num(r[12]),
    rows_rejected: num(r[13]),
  };
}
