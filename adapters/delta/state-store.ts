// etl's state on a Delta target, without a SQL catalog. A model's state (its
// watermark, microbatch batches, snapshot runs) lives in its own table's log
// as the metadata domain `etl.state` (a domainMetadata action, so the table
// gets writer version 7 with the domainMetadata feature), written in the same
// commit as the data it describes: a crash can never leave a watermark ahead
// of the data. Domains survive checkpoints, unlike commitInfo. Run history is
// two Delta tables of their own, <lake>/etl_meta/runs and node_runs.

import type { Relation } from '../adapter.js';
import type { HistoryQuery, HistoryRows, NodeRunRecord, ReportQuery, ReportRows, RunEnd, RunRecord, StateRecord, StateStore, StateTables } from '../../core/state/state.js';
import { LOAD_COLUMN_TYPES, LOAD_COLUMNS, NODE_RUN_COLUMNS, relationKey } from '../../core/state/state.js';
import { lastSuccessesSql, queryHistory, reportHistorySql, type HistorySource } from '../history-sql.js';
import type { Lake } from './lake.js';
import { quoteString, type SqlSession } from './sql.js';

export const STATE_DOMAIN = 'etl.state';
export const META_SCHEMA = 'etl_meta';
const STATE_VERSION = 1;
/** Snapshot runs kept per table (the newest). */
const SNAPSHOT_RUNS_KEPT = 100;

export interface TableState {
  version: number;
  uniqueId?: string;
  watermark?: { column: string; value: string | null; runId: string; updatedAt: string };
  batches: Record<string, { end: string; status: string; rows: number | null; runId: string; message: string; updatedAt: string }>;
  snapshotRuns: Array<{ runId: string; inserted: number; invalidated: number; updatedAt: string }>;
  /** A CDC loader's slot and the last source position in the table. */
  cdc?: { slot: string; position: string; runId: string; updatedAt: string };
}

export function parseTableState(configuration: string | undefined, table: string): TableState {
  if (!configuration) return { version: STATE_VERSION, batches: {}, snapshotRuns: [] };
  const s = JSON.parse(configuration) as TableState;
  if (s.version > STATE_VERSION) throw new Error(`the etl state of ${table} is at version ${s.version}, newer than this etl understands (${STATE_VERSION}); upgrade etl`);
  return { version: STATE_VERSION, uniqueId: s.uniqueId, watermark: s.watermark, batches: s.batches ?? {}, snapshotRuns: s.snapshotRuns ?? [], ...(s.cdc ? { cdc: s.cdc } : {}) };
}

export interface AppliedCounts {
  rows?: number;
  inserted?: number;
  invalidated?: number;
}

/**
 * The state after `records`. `watermarkOf` computes max(event_time) of the
 * table as the commit leaves it (null for no rows).
 */
export async function applyRecords(state: TableState, records: StateRecord[], applied: AppliedCounts, watermarkOf: (column: string, newRows?: Relation) => Promise<string | null>): Promise<TableState> {
  const next: TableState = { ...state, batches: { ...state.batches }, snapshotRuns: [...state.snapshotRuns] };
  for (const r of records) {
    switch (r.kind) {
      case 'watermark': {
        const value = await watermarkOf(r.eventTimeColumn, r.newRows);
        // No new rows leave the watermark as it was, as the SQL engines do.
        next.watermark = { column: r.eventTimeColumn, value: value ?? (r.newRows ? (state.watermark?.value ?? null) : null), runId: r.runId, updatedAt: r.at };
        next.uniqueId = r.uniqueId;
        break;
      }
      case 'batch':
        next.batches[r.start] = { end: r.end, status: r.status, rows: r.rows === undefined ? (applied.rows ?? null) : r.rows, runId: r.runId, message: r.message.slice(0, 2000), updatedAt: r.at };
        next.uniqueId = r.uniqueId;
        break;
      case 'batches_cleared':
        next.batches = {};
        break;
      case 'cdc_position':
        next.cdc = { slot: r.slot, position: r.position, runId: r.runId, updatedAt: r.at };
        next.uniqueId = r.uniqueId;
        break;
      case 'snapshot_run':
        next.snapshotRuns.push({ runId: r.runId, inserted: r.inserted ?? applied.inserted ?? 0, invalidated: r.invalidated ?? applied.invalidated ?? 0, updatedAt: r.at });
        next.snapshotRuns = next.snapshotRuns.slice(-SNAPSHOT_RUNS_KEPT);
        next.uniqueId = r.uniqueId;
        break;
    }
  }
  return next;
}

/** What the Delta adapter offers the store. */
export interface DeltaStateHost {
  readonly lake: Lake;
  /** Commits records that change no data to the relation's table (a domainMetadata-only commit). */
  commitState(session: SqlSession, relation: Relation, records: StateRecord[]): Promise<void>;
  /** Appends rows (a SELECT) to a Delta table of the lake, creating it on first use; columns the table lacks are added. */
  appendRows(session: SqlSession, relation: Relation, selectSql: string): Promise<void>;
  /** Replaces every row of a Delta table of the lake with a SELECT's (one overwrite commit; older versions keep the rest until vacuumed). */
  overwriteRows(session: SqlSession, relation: Relation, selectSql: string): Promise<void>;
}

const RUNS: Relation = { schema: META_SCHEMA, name: 'runs' };
const NODE_RUNS: Relation = { schema: META_SCHEMA, name: 'node_runs' };

/** One row per run: the start row's facts and the end row's outcome. */
const RUNS_BY_ID = `(select run_id, max(command) as command, max(target) as target, max(selection) as selection, max(job) as job, max(git_commit) as git_commit, bool_or(git_dirty) as git_dirty, max(user_name) as user_name, max(host) as host, max(etl_version) as etl_version, max(started_at) as started_at, max(finished_at) as finished_at, coalesce(max(status) filter (where finished_at is not null), max(status)) as status, max(message) as message from "${META_SCHEMA}"."runs" group by run_id) as runs`;
const EMPTY_NODE_RUNS =
  `(select null::varchar as run_id, null::varchar as unique_id, null::varchar as relation, null::varchar as status, null::timestamptz as started_at, null::timestamptz as finished_at, null::bigint as rows_affected, ` +
  `null::varchar as message, null::integer as attempt, null::double as execution_time, null::bigint as bytes_written, null::bigint as bytes_scanned, null::varchar as upstream, ${LOAD_COLUMNS.map((c) => `cast(null as ${LOAD_COLUMN_TYPES[c]}) as ${c}`).join(', ')} where false) as node_runs`;

const lit = (v: string | null | number | undefined) => (v === null || v === undefined ? 'null' : typeof v === 'number' ? String(v) : quoteString(v));
const ts = (iso: string | null | undefined) => (iso ? `cast(${quoteString(iso)} as timestamptz)` : 'cast(null as timestamptz)');

export class DeltaStateStore implements StateStore {
  constructor(private readonly host: DeltaStateHost) {}

  async prepare(): Promise<number> {
    return STATE_VERSION;
  }

  async runStarted(session: SqlSession, run: RunRecord): Promise<void> {
    await this.appendRun(session, { ...run, status: run.status ?? 'running' });
  }

  private async appendRun(session: SqlSession, run: Partial<RunRecord> & { runId: string; status: string }): Promise<void> {
    // The run log is append-only: a run's start row has its facts, its end row the outcome (see RUNS_BY_ID).
    const v = (x: string | null | undefined) => `cast(${lit(x)} as varchar)`;
    await this.host.appendRows(
      session,
      RUNS,
      `select ${v(run.runId)} as run_id, ${v(run.command)} as command, ${v(run.target)} as target, ${v(run.version)} as etl_version, ${ts(run.startedAt)} as started_at, ${ts(run.finishedAt)} as finished_at, ${v(run.status)} as status, ` +
        `${v(run.selection)} as selection, ${v(run.job)} as job, ${v(run.gitCommit)} as git_commit, cast(${run.gitDirty === undefined || run.gitDirty === null ? 'null' : String(run.gitDirty)} as boolean) as git_dirty, ${v(run.user)} as user_name, ${v(run.host)} as host, ${v(run.message)} as message`,
    );
  }

  async runFinished(session: SqlSession, { runId, status, finishedAt }: RunEnd, nodes: NodeRunRecord[]): Promise<void> {
    if (nodes.length) {
      // A node_runs table an older etl wrote gains the loaders' columns here: appendRows adds the columns a table lacks.
      const rows = nodes.map(
        (n) =>
          `(${lit(runId)}, ${lit(n.unique_id)}, ${lit(n.relation)}, ${lit(n.status)}, ${ts(n.started_at)}, ${ts(n.finished_at)}, cast(${lit(n.rows_affected)} as bigint), ${lit(n.message.slice(0, 2000))}, ` +
          `cast(${lit(n.attempt ?? 1)} as integer), cast(${lit(n.execution_time)} as double), cast(${lit(n.bytes_written)} as bigint), cast(${lit(n.bytes_scanned)} as bigint), cast(${lit(n.upstream?.length ? JSON.stringify(n.upstream) : null)} as varchar), ` +
          `${LOAD_COLUMNS.map((c) => `cast(${lit(n[c])} as ${LOAD_COLUMN_TYPES[c]})`).join(', ')})`,
      );
      await this.host.appendRows(
        session,
        NODE_RUNS,
        `select cast(run_id as varchar) as run_id, cast(unique_id as varchar) as unique_id, cast(relation as varchar) as relation, cast(status as varchar) as status, started_at, finished_at, rows_affected, cast(message as varchar) as message, attempt, execution_time, bytes_written, bytes_scanned, upstream, ${LOAD_COLUMNS.join(', ')} ` +
          `from (values ${rows.join(', ')}) as t(${NODE_RUN_COLUMNS})`,
      );
    }
    await this.appendRun(session, { runId, finishedAt, status });
  }

  private historySource(hasLoadColumns: boolean): HistorySource {
    return {
      runs: RUNS_BY_ID,
      nodeRuns: `"${META_SCHEMA}"."node_runs"`,
      hasLoadColumns,
      timestamp: (param) => `cast(${param} as timestamptz)`,
      bindTimestamp: (iso) => iso,
    };
  }

  async historyRows(session: SqlSession, query: HistoryQuery): Promise<HistoryRows> {
    if (!this.host.lake.isTable(RUNS) || !(await this.hasColumn(session, RUNS, 'selection'))) return { runs: [], node_runs: [] };
    if (!this.host.lake.isTable(NODE_RUNS)) return { runs: (await queryHistory(session, { ...this.historySource(true), nodeRuns: EMPTY_NODE_RUNS }, query)).runs, node_runs: [] };
    return queryHistory(session, this.historySource(await this.hasColumn(session, NODE_RUNS, LOAD_COLUMNS[0])), query);
  }

  /**
   * Whether a history table has a column: tables written before run history had
   * its audit columns (runs.selection) are read as having no history, and
   * node_runs before the loaders' columns (rows_read) as having them null.
   */
  private async hasColumn(session: SqlSession, table: Relation, column: string): Promise<boolean> {
    const r = await session.query(`select count(*) from (describe "${META_SCHEMA}"."${table.name}") where column_name = ${quoteString(column)}`);
    return Number(r.rows[0]?.[0] ?? 0) > 0;
  }

  async lastSuccesses(session: SqlSession, uniqueIds: string[]): Promise<Map<string, string>> {
    if (!this.host.lake.isTable(NODE_RUNS)) return new Map();
    return lastSuccessesSql(session, this.historySource(false), uniqueIds);
  }

  async historyReport(session: SqlSession, query: ReportQuery): Promise<ReportRows> {
    if (!this.host.lake.isTable(RUNS) || !this.host.lake.isTable(NODE_RUNS) || !(await this.hasColumn(session, RUNS, 'selection'))) return { groups: [], runs: [] };
    return reportHistorySql(session, this.historySource(await this.hasColumn(session, NODE_RUNS, LOAD_COLUMNS[0])), query);
  }

  async pruneHistory(session: SqlSession, before: string): Promise<{ runs: number; node_runs: number }> {
    if (!this.host.lake.isTable(RUNS)) return { runs: 0, node_runs: 0 };
    const cutoff = `cast(${quoteString(before)} as timestamptz)`;
    // A run's rows go together: its start row decides (the end row has no started_at).
    const old = `select run_id from "${META_SCHEMA}"."runs" group by run_id having max(started_at) < ${cutoff}`;
    const count = async (sql: string) => Number((await session.query(sql)).rows[0]?.[0] ?? 0);
    const runs = await count(`select count(*) from (${old})`);
    if (runs === 0) return { runs: 0, node_runs: 0 };
    let nodeRuns = 0;
    if (this.host.lake.isTable(NODE_RUNS)) {
      nodeRuns = await count(`select count(*) from "${META_SCHEMA}"."node_runs" where run_id in (${old})`);
      await this.host.overwriteRows(session, NODE_RUNS, `select * from "${META_SCHEMA}"."node_runs" where run_id not in (${old})`);
    }
    await this.host.overwriteRows(session, RUNS, `select * from "${META_SCHEMA}"."runs" where run_id not in (${old})`);
    return { runs, node_runs: nodeRuns };
  }

  async record(session: SqlSession, records: StateRecord[]): Promise<void> {
    const byRelation = new Map<string, { relation: Relation; records: StateRecord[] }>();
    for (const r of records) {
      const k = relationKey(r.relation);
      if (!byRelation.has(k)) byRelation.set(k, { relation: r.relation, records: [] });
      byRelation.get(k)!.records.push(r);
    }
    for (const { relation, records: rs } of byRelation.values()) await this.host.commitState(session, relation, rs);
  }

  async stateOf(session: SqlSession, relation: Relation): Promise<TableState> {
    if (!this.host.lake.isTable(relation)) return parseTableState(undefined, relationKey(relation));
    const snapshot = await this.host.lake.snapshot(relation, session);
    return parseTableState(snapshot.domains.get(STATE_DOMAIN)?.configuration, relationKey(relation));
  }

  async watermark(session: SqlSession, relation: Relation): Promise<{ column: string; value: string | null } | undefined> {
    const w = (await this.stateOf(session, relation)).watermark;
    return w ? { column: w.column, value: w.value } : undefined;
  }

  async cdcPosition(session: SqlSession, relation: Relation): Promise<{ slot: string; position: string } | undefined> {
    const c = (await this.stateOf(session, relation)).cdc;
    return c ? { slot: c.slot, position: c.position } : undefined;
  }

  async finishedBatches(session: SqlSession, relation: Relation): Promise<Set<string>> {
    const s = await this.stateOf(session, relation);
    return new Set(Object.entries(s.batches).filter(([, b]) => b.status === 'success').map(([start]) => start));
  }

  async read(session: SqlSession): Promise<StateTables> {
    const watermarks: unknown[][] = [];
    const batches: unknown[][] = [];
    const snapshots: unknown[][] = [];
    const cdcPositions: unknown[][] = [];
    for (const relation of this.host.lake.relations().sort((a, b) => relationKey(a).localeCompare(relationKey(b)))) {
      if (relation.schema === META_SCHEMA) continue;
      const s = await this.stateOf(session, relation);
      const key = relationKey(relation);
      if (s.watermark) watermarks.push([key, s.watermark.column, s.watermark.value, s.watermark.updatedAt]);
      if (s.cdc) cdcPositions.push([key, s.cdc.slot, s.cdc.position, s.cdc.updatedAt]);
      const b = Object.entries(s.batches);
      if (b.length) {
        const starts = b.map(([start]) => start).sort();
        batches.push([key, b.filter(([, x]) => x.status === 'success').length, b.filter(([, x]) => x.status === 'error').length, starts[0], starts.at(-1)]);
      }
      if (s.snapshotRuns.length) snapshots.push([key, s.snapshotRuns.length, s.snapshotRuns.reduce((n, r) => n + r.inserted, 0), s.snapshotRuns.reduce((n, r) => n + r.invalidated, 0), s.snapshotRuns.at(-1)!.updatedAt]);
    }
    const out: StateTables = {
      schema_version: { columns: ['version', 'description'], rows: [[STATE_VERSION, 'state in each table\'s etl.state metadata domain; run history in etl_meta/runs and etl_meta/node_runs']] },
      watermarks: { columns: ['relation', 'event_time_column', 'watermark', 'updated_at'], rows: watermarks },
      batches: { columns: ['relation', 'done', 'failed', 'first_batch', 'last_batch'], rows: batches },
      snapshots: { columns: ['relation', 'runs', 'inserted', 'invalidated', 'last_run'], rows: snapshots },
      cdc_positions: { columns: ['relation', 'slot', 'position', 'updated_at'], rows: cdcPositions },
      runs: { columns: ['run_id', 'command', 'target', 'status', 'started_at', 'finished_at'], rows: [] },
    };
    if (this.host.lake.isTable(RUNS)) {
      const runs = await session.query(
        `select run_id, arg_max(command, started_at) filter (where command is not null), arg_max(target, started_at) filter (where target is not null), arg_max(status, coalesce(finished_at, started_at)), cast(max(started_at) as varchar), cast(max(finished_at) as varchar) from "${META_SCHEMA}"."runs" group by run_id order by max(started_at) desc limit 10`,
      );
      out.runs!.rows = runs.rows;
    }
    return out;
  }
}
