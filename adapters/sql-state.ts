// The state store of SQL engines (DuckDB, Postgres): the `etl_meta` schema in
// the target. Implements core/state's StateStore, and turns the StateRecords
// a materialization hands to an atomic operation into statements that the
// engine runs inside that operation's transaction (writeInTransaction).
// etl_meta is versioned from day one: numbered migrations, applied in order,
// each recorded in etl_meta.schema_version.

import type { HistoryQuery, HistoryRows, NodeRunRecord, ReportQuery, ReportRows, RunEnd, RunHistory, RunRecord, StateRecord, StateStore, StateTables } from '../core/state/state.js';
import { LOAD_COLUMN_TYPES, LOAD_COLUMNS, NODE_RUN_COLUMNS, relationKey } from '../core/state/state.js';
import type { AdapterSession, Relation } from './adapter.js';
import type { Dialect } from './dialect.js';
import { lastSuccessesSql, pruneHistorySql, queryHistory, reportHistorySql, type HistorySource } from './history-sql.js';
import { transaction } from './transaction.js';

export const META_SCHEMA = 'etl_meta';

export interface Migration {
  version: number;
  description: string;
  statements: string[];
}

const t = (name: string) => `"${META_SCHEMA}"."${name}"`;

/** Append only: never edit a released migration; add the next number. */
export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'run history, watermarks, microbatch intervals, snapshot runs',
    statements: [
      `create table if not exists ${t('runs')} (run_id varchar primary key, command varchar, target varchar, etl_version varchar, started_at timestamp, finished_at timestamp, status varchar)`,
      `create table if not exists ${t('node_runs')} (run_id varchar, unique_id varchar, relation varchar, status varchar, started_at timestamp, finished_at timestamp, rows_affected bigint, message varchar)`,
      `create table if not exists ${t('watermarks')} (relation varchar primary key, unique_id varchar, event_time_column varchar, watermark varchar, run_id varchar, updated_at timestamp)`,
      `create table if not exists ${t('batches')} (relation varchar, batch_start varchar, batch_end varchar, unique_id varchar, status varchar, rows_affected bigint, run_id varchar, updated_at timestamp, message varchar, primary key (relation, batch_start))`,
      `create table if not exists ${t('snapshot_runs')} (relation varchar, unique_id varchar, run_id varchar, inserted bigint, invalidated bigint, updated_at timestamp)`,
    ],
  },
  {
    version: 2,
    description: 'run history and audit trail: who ran what from which commit, one node_runs row per attempt with its duration, bytes and upstream reads',
    statements: [
      ...['selection varchar', 'job varchar', 'git_commit varchar', 'git_dirty boolean', 'user_name varchar', 'host varchar', 'message varchar'].map((c) => `alter table ${t('runs')} add column ${c}`),
      ...['attempt integer', 'execution_time double precision', 'bytes_written bigint', 'bytes_scanned bigint', 'upstream varchar'].map((c) => `alter table ${t('node_runs')} add column ${c}`),
    ],
  },
  {
    version: 3,
    description: 'append-only run history: a run starting is a row of run_starts; its runs row is written once, complete, when it ends',
    statements: [
      `create table if not exists ${t('run_starts')} (run_id varchar primary key, command varchar, target varchar, etl_version varchar, started_at timestamp, selection varchar, job varchar, git_commit varchar, git_dirty boolean, user_name varchar, host varchar)`,
    ],
  },
  {
    version: 4,
    description: 'CDC loaders: the replication slot and the last source position applied to each raw table',
    statements: [`create table if not exists ${t('cdc_positions')} (relation varchar primary key, unique_id varchar, slot varchar, position varchar, run_id varchar, updated_at timestamp)`],
  },
  {
    version: 5,
    description: "loaders' counts in node_runs: rows read, loaded, rejected and deleted, and rows per second (null for other nodes and older rows)",
    statements: ['rows_read bigint', 'rows_loaded bigint', 'rows_rejected bigint', 'rows_deleted bigint', 'rows_per_second double precision'].map((c) => `alter table ${t('node_runs')} add column ${c}`),
  },
];

/** The columns a run has when it starts (run_starts), in the order runStarted binds them. */
const RUN_START_COLUMNS = 'run_id, command, target, etl_version, started_at, selection, job, git_commit, git_dirty, user_name, host';

/**
 * One row per run, as `etl history` and `etl report` read it: the ended runs
 * (complete rows of runs) and the runs still going, or that never ended (a
 * killed process), as their row of run_starts with status running.
 */
const RUNS_AND_STARTS =
  `(select run_id, command, target, etl_version, started_at, finished_at, status, selection, job, git_commit, git_dirty, user_name, host, message from ${t('runs')} union all ` +
  `select s.run_id, s.command, s.target, s.etl_version, s.started_at, cast(null as timestamp), 'running', s.selection, s.job, s.git_commit, s.git_dirty, s.user_name, s.host, cast(null as varchar) ` +
  `from ${t('run_starts')} as s where not exists (select 1 from ${t('runs')} as ended where ended.run_id = s.run_id)) as runs`;

/** The columns of a runs row, in the order runStarted binds them. */
const RUN_COLUMNS = 'run_id, command, target, etl_version, started_at, finished_at, status, selection, job, git_commit, git_dirty, user_name, host, message';

export const CURRENT_STATE_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** A statement with its bound values. */
export interface BoundStatement {
  sql: string;
  params: unknown[];
}

/** What the change a record commits with did, for the counts a record leaves out. */
export interface AppliedCounts {
  rows?: number;
  inserted?: number;
  invalidated?: number;
}

/** What the store needs of its engine. */
export interface SqlStateHost {
  readonly dialect: Dialect;
  /** `shared`: a schema every run on the target uses, whatever schema it builds (see Adapter.ensureSchema). */
  ensureSchema(session: AdapterSession, schema: string, options?: { shared?: boolean }): Promise<void>;
}

export class SqlStateStore implements StateStore {
  constructor(private readonly host: SqlStateHost) {}

  async prepare(session: AdapterSession): Promise<number> {
    // Every run after the first finds etl_meta current: one query, no lock.
    try {
      const r = await session.query(`select max(version) from ${t('schema_version')}`);
      if (Number(r.rows[0]?.[0]) === CURRENT_STATE_VERSION) return CURRENT_STATE_VERSION;
    } catch {
      // not created yet: the full path below creates it
    }
    await this.host.ensureSchema(session, META_SCHEMA, { shared: true });
    await session.execute(`create table if not exists ${t('schema_version')} (version integer primary key, description varchar, applied_at timestamp)`);
    const r = await session.query(`select coalesce(max(version), 0) from ${t('schema_version')}`);
    const current = Number(r.rows[0]?.[0] ?? 0);
    if (current > CURRENT_STATE_VERSION) {
      throw new Error(`the target's etl_meta is at version ${current}, newer than this etl understands (${CURRENT_STATE_VERSION}); upgrade etl`);
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await transaction(session, async () => {
        for (const sql of m.statements) await session.execute(sql);
        await session.execute(`insert into ${t('schema_version')} values ($1, $2, current_timestamp)`, [m.version, m.description]);
      });
    }
    return CURRENT_STATE_VERSION;
  }

  async runStarted(session: AdapterSession, run: RunRecord): Promise<void> {
    const gitDirty = run.gitDirty === undefined || run.gitDirty === null ? null : String(run.gitDirty);
    // The invocation's facts, in the column order run_starts and runs share.
    const invocationFacts = [run.selection ?? null, run.job ?? null, run.gitCommit ?? null, gitDirty, run.user ?? null, run.host ?? null];
    if (run.status === undefined) {
      // Running: its runs row is written once, whole, when it ends (the history is never updated).
      await session.execute(`insert into ${t('run_starts')} (${RUN_START_COLUMNS}) values ($1, $2, $3, $4, cast($5 as timestamp), $6, $7, $8, cast($9 as boolean), $10, $11)`, [
        run.runId,
        run.command,
        run.target,
        run.version,
        sqlTimestamp(run.startedAt),
        ...invocationFacts,
      ]);
      return;
    }
    // An invocation recorded whole (a skipped job): its one row.
    await session.execute(
      `insert into ${t('runs')} (${RUN_COLUMNS}) values ($1, $2, $3, $4, cast($5 as timestamp), cast($6 as timestamp), $7, $8, $9, $10, cast($11 as boolean), $12, $13, $14)`,
      [
        run.runId,
        run.command,
        run.target,
        run.version,
        sqlTimestamp(run.startedAt),
        sqlTimestamp(run.finishedAt ?? null),
        run.status,
        ...invocationFacts,
        run.message ?? null,
      ],
    );
  }

  async runFinished(session: AdapterSession, end: RunEnd, nodes: NodeRunRecord[]): Promise<void> {
    const { runId, status } = end;
    await transaction(session, async () => {
      // Many rows per statement: one insert per node costs more than the nodes on a large view-only project.
      const ROWS_PER_INSERT = 200;
      for (let i = 0; i < nodes.length; i += ROWS_PER_INSERT) {
        const chunk = nodes.slice(i, i + ROWS_PER_INSERT);
        const params: unknown[] = [];
        const tuples = chunk.map((n) => {
          const base = params.length;
          params.push(
            runId,
            n.unique_id,
            n.relation,
            n.status,
            sqlTimestamp(n.started_at),
            sqlTimestamp(n.finished_at),
            n.rows_affected,
            n.message.slice(0, 2000),
            n.attempt ?? 1,
            n.execution_time ?? null,
            n.bytes_written ?? null,
            n.bytes_scanned ?? null,
            n.upstream?.length ? JSON.stringify(n.upstream) : null,
            ...LOAD_COLUMNS.map((c) => n[c] ?? null),
          );
          const p = (k: number) => `$${base + k}`;
          return `(cast(${p(1)} as varchar), cast(${p(2)} as varchar), cast(${p(3)} as varchar), cast(${p(4)} as varchar), cast(${p(5)} as timestamp), cast(${p(6)} as timestamp), cast(${p(7)} as bigint), cast(${p(8)} as varchar), cast(${p(9)} as integer), cast(${p(10)} as double precision), cast(${p(11)} as bigint), cast(${p(12)} as bigint), cast(${p(13)} as varchar), ${LOAD_COLUMNS.map((c, i) => `cast(${p(14 + i)} as ${LOAD_COLUMN_TYPES[c]})`).join(', ')})`;
        });
        await session.execute(`insert into ${t('node_runs')} (${NODE_RUN_COLUMNS}) values ${tuples.join(', ')}`, params);
      }
      // The history is an audit trail: rows are only ever added (etl history prune alone deletes).
      // The run's one runs row: what it started with (run_starts) and how it ended.
      await session.execute(
        `insert into ${t('runs')} (${RUN_COLUMNS}) select ${RUN_START_COLUMNS.replace('started_at', 'started_at, cast($2 as timestamp), cast($3 as varchar)')}, cast(null as varchar) from ${t('run_starts')} where run_id = $1`,
        [runId, sqlTimestamp(end.finishedAt), status],
      );
    });
  }

  async record(session: AdapterSession, records: StateRecord[]): Promise<void> {
    if (records.length === 0) return;
    await transaction(session, () => this.writeInTransaction(session, records));
  }

  /** Writes `records` on the session's open transaction: the engine's atomic operations call this before they commit. */
  async writeInTransaction(session: AdapterSession, records: StateRecord[], applied: AppliedCounts = {}): Promise<void> {
    for (const record of records) {
      // An incremental run's watermark: its row is there (the run read it), updated in place; an upsert
      // (insert ... on conflict) costs DuckDB twice the time. Not there after all, it is inserted.
      const update = record.kind === 'watermark' && record.newRows ? this.watermarkUpdate(record) : undefined;
      if (update && ((await session.execute(update.sql, update.params)).rowsAffected ?? 0) > 0) continue;
      const s = this.statement(record, applied);
      await session.execute(s.sql, s.params);
    }
  }

  /** A watermark's row updated where it is: max(event_time) of the relation at or above the new rows' maximum (see statement). */
  private watermarkUpdate(record: Extract<StateRecord, { kind: 'watermark' }>): BoundStatement {
    const d = this.host.dialect;
    const col = d.quoteIdentifier(record.eventTimeColumn);
    const rel = d.relation(record.relation.schema, record.relation.name);
    const newRows = d.relation(record.newRows!.schema, record.newRows!.name);
    return {
      sql:
        `update ${t('watermarks')} set unique_id = cast($2 as varchar), event_time_column = cast($3 as varchar), ` +
        `watermark = coalesce((select cast(max(${col}) as varchar) from ${rel} where ${col} >= (select max(${col}) from ${newRows})), "watermarks".watermark), ` +
        `run_id = cast($4 as varchar), updated_at = cast($5 as timestamp) where relation = $1`,
      params: [relationKey(record.relation), record.uniqueId, record.eventTimeColumn, record.runId, sqlTimestamp(record.at)],
    };
  }

  statement(record: StateRecord, applied: AppliedCounts = {}): BoundStatement {
    const d = this.host.dialect;
    const key = relationKey(record.relation);
    switch (record.kind) {
      case 'watermark': {
        // max(event_time) of the relation, read in the transaction that changed it. With
        // `newRows` (the rows an incremental run just applied), only rows at or above their
        // maximum are read: the table's maximum is there, since those rows are in the table
        // now, and an engine with zone maps (DuckDB) skips the rest of the table instead of
        // scanning 10M rows. No new rows (all quarantined, say) leaves the watermark as it
        // was, as the table is.
        const col = d.quoteIdentifier(record.eventTimeColumn);
        const rel = d.relation(record.relation.schema, record.relation.name);
        const where = record.newRows ? ` where ${col} >= (select max(${col}) from ${d.relation(record.newRows.schema, record.newRows.name)})` : '';
        const watermark = record.newRows ? 'coalesce(excluded.watermark, "watermarks".watermark)' : 'excluded.watermark';
        return {
          sql:
            `insert into ${t('watermarks')} select cast($1 as varchar), cast($2 as varchar), cast($3 as varchar), cast(max(${col}) as varchar), cast($4 as varchar), cast($5 as timestamp) from ${rel}${where} ` +
            `on conflict (relation) do update set unique_id = excluded.unique_id, event_time_column = excluded.event_time_column, watermark = ${watermark}, run_id = excluded.run_id, updated_at = excluded.updated_at`,
          params: [key, record.uniqueId, record.eventTimeColumn, record.runId, sqlTimestamp(record.at)],
        };
      }
      case 'batch':
        return {
          sql:
            `insert into ${t('batches')} values ($1, $2, $3, $4, $5, cast($6 as bigint), $7, cast($9 as timestamp), $8) ` +
            `on conflict (relation, batch_start) do update set batch_end = excluded.batch_end, status = excluded.status, rows_affected = excluded.rows_affected, run_id = excluded.run_id, updated_at = excluded.updated_at, message = excluded.message`,
          params: [key, record.start, record.end, record.uniqueId, record.status, record.rows === undefined ? (applied.rows ?? null) : record.rows, record.runId, record.message.slice(0, 2000), sqlTimestamp(record.at)],
        };
      case 'batches_cleared':
        return { sql: `delete from ${t('batches')} where relation = $1`, params: [key] };
      case 'cdc_position':
        return {
          sql:
            `insert into ${t('cdc_positions')} values ($1, $2, $3, $4, $5, cast($6 as timestamp)) ` +
            `on conflict (relation) do update set unique_id = excluded.unique_id, slot = excluded.slot, position = excluded.position, run_id = excluded.run_id, updated_at = excluded.updated_at`,
          params: [key, record.uniqueId, record.slot, record.position, record.runId, sqlTimestamp(record.at)],
        };
      case 'snapshot_run':
        return {
          sql: `insert into ${t('snapshot_runs')} values ($1, $2, $3, cast($4 as bigint), cast($5 as bigint), cast($6 as timestamp))`,
          params: [key, record.uniqueId, record.runId, record.inserted ?? applied.inserted ?? 0, record.invalidated ?? applied.invalidated ?? 0, sqlTimestamp(record.at)],
        };
    }
  }

  async watermark(session: AdapterSession, relation: Relation): Promise<{ column: string; value: string | null } | undefined> {
    const r = await session.query(`select event_time_column, watermark from ${t('watermarks')} where relation = $1`, [relationKey(relation)]);
    const row = r.rows[0];
    return row ? { column: String(row[0]), value: row[1] === null || row[1] === undefined ? null : String(row[1]) } : undefined;
  }

  async cdcPosition(session: AdapterSession, relation: Relation): Promise<{ slot: string; position: string } | undefined> {
    const r = await session.query(`select slot, position from ${t('cdc_positions')} where relation = $1`, [relationKey(relation)]);
    const row = r.rows[0];
    return row ? { slot: String(row[0]), position: String(row[1]) } : undefined;
  }

  async finishedBatches(session: AdapterSession, relation: Relation): Promise<Set<string>> {
    const r = await session.query(`select batch_start from ${t('batches')} where relation = $1 and status = 'success'`, [relationKey(relation)]);
    return new Set(r.rows.map((row) => String(row[0])));
  }

  async read(session: AdapterSession): Promise<StateTables> {
    const out: StateTables = {};
    // Read only: a target never built has no store, and reading must not create one.
    const exists = await session.query(`select count(*) from information_schema.tables where table_schema = $1 and table_name = 'schema_version'`, [META_SCHEMA]);
    if (Number(exists.rows[0]?.[0] ?? 0) === 0) return out;
    out.schema_version = await session.query(`select version, description, cast(applied_at as varchar) as applied_at from ${t('schema_version')} order by version`);
    out.watermarks = await session.query(`select relation, event_time_column, watermark, cast(updated_at as varchar) as updated_at from ${t('watermarks')} order by relation`);
    out.batches = await session.query(
      `select relation, count(*) filter (where status = 'success') as done, count(*) filter (where status = 'error') as failed, min(batch_start) as first_batch, max(batch_start) as last_batch from ${t('batches')} group by relation order by relation`,
    );
    out.snapshots = await session.query(
      `select relation, count(*) as runs, sum(inserted) as inserted, sum(invalidated) as invalidated, cast(max(updated_at) as varchar) as last_run from ${t('snapshot_runs')} group by relation order by relation`,
    );
    const version = Number(out.schema_version.rows.at(-1)?.[0] ?? 0);
    // Read only: a store an older etl made lacks the later tables until a build migrates it.
    if (version >= 4) out.cdc_positions = await session.query(`select relation, slot, position, cast(updated_at as varchar) as updated_at from ${t('cdc_positions')} order by relation`);
    const runs = version >= 3 ? RUNS_AND_STARTS : t('runs');
    out.runs = await session.query(`select run_id, command, target, status, cast(started_at as varchar) as started_at, cast(finished_at as varchar) as finished_at from ${runs} order by started_at desc limit 10`);
    return out;
  }

  /** Where the history is, as etl_meta's version keeps it: runs still going in run_starts from version 3, in runs (updated when they ended) before. */
  private historySource(version: number): HistorySource & { runsTable: string; runStartsTable?: string } {
    return {
      runs: version >= 3 ? RUNS_AND_STARTS : t('runs'),
      runsTable: t('runs'),
      runStartsTable: version >= 3 ? t('run_starts') : undefined,
      nodeRuns: t('node_runs'),
      hasLoadColumns: version >= 5,
      timestamp: (param) => `cast(${param} as timestamp)`,
      bindTimestamp: (iso) => sqlTimestamp(iso)!,
    };
  }

  /** etl_meta's version when it has run history (2 on), else 0 (read only: never creates it). */
  private async historyVersion(session: AdapterSession): Promise<number> {
    const exists = await session.query(`select count(*) from information_schema.tables where table_schema = $1 and table_name = 'schema_version'`, [META_SCHEMA]);
    if (Number(exists.rows[0]?.[0] ?? 0) === 0) return 0;
    const r = await session.query(`select max(version) from ${t('schema_version')}`);
    const version = Number(r.rows[0]?.[0] ?? 0);
    return version >= 2 ? version : 0;
  }

  async historyRows(session: AdapterSession, query: HistoryQuery): Promise<HistoryRows> {
    const version = await this.historyVersion(session);
    if (!version) return { runs: [], node_runs: [] };
    return queryHistory(session, this.historySource(version), query);
  }

  async lastSuccesses(session: AdapterSession, uniqueIds: string[]): Promise<Map<string, string>> {
    const exists = await session.query(`select count(*) from information_schema.tables where table_schema = $1 and table_name = 'node_runs'`, [META_SCHEMA]);
    if (Number(exists.rows[0]?.[0] ?? 0) === 0) return new Map();
    return lastSuccessesSql(session, { nodeRuns: t('node_runs') }, uniqueIds);
  }

  async historyReport(session: AdapterSession, query: ReportQuery): Promise<ReportRows> {
    const version = await this.historyVersion(session);
    if (!version) return { groups: [], runs: [] };
    return reportHistorySql(session, this.historySource(version), query);
  }

  async pruneHistory(session: AdapterSession, before: string): Promise<{ runs: number; node_runs: number }> {
    const version = await this.historyVersion(session);
    if (!version) return { runs: 0, node_runs: 0 };
    return transaction(session, () => pruneHistorySql(session, this.historySource(version), before));
  }

  async history(session: AdapterSession, limits: { runs: number; perNode: number }): Promise<RunHistory | undefined> {
    const exists = await session.query(`select count(*) from information_schema.tables where table_schema = $1 and table_name = 'node_runs'`, [META_SCHEMA]);
    if (Number(exists.rows[0]?.[0] ?? 0) === 0) return undefined;
    const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
    const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    const runs = await session.query(`select run_id, command, status, cast(started_at as varchar), cast(finished_at as varchar) from ${this.historySource(await this.historyVersion(session)).runs} order by started_at desc limit $1`, [limits.runs]);
    const nodeRuns = await session.query(
      `select run_id, unique_id, relation, status, cast(started_at as varchar), cast(finished_at as varchar), rows_affected, message, execution_time, bytes_written, bytes_scanned from (` +
        `select *, row_number() over (partition by unique_id order by started_at desc) as n from ${t('node_runs')}) as r where n <= $1 order by unique_id, started_at desc`,
      [limits.perNode],
    );
    return {
      runs: runs.rows.map((r) => ({ run_id: String(r[0]), command: String(r[1] ?? ''), status: String(r[2] ?? ''), started_at: text(r[3]), finished_at: text(r[4]) })),
      node_runs: nodeRuns.rows.map((r) => ({
        run_id: String(r[0]),
        unique_id: String(r[1]),
        relation: text(r[2]),
        status: String(r[3] ?? ''),
        started_at: text(r[4]),
        finished_at: text(r[5]),
        rows_affected: r[6] === null || r[6] === undefined ? null : Number(r[6]),
        message: String(r[7] ?? ''),
        execution_time: num(r[8]),
        bytes_written: num(r[9]),
        bytes_scanned: num(r[10]),
      })),
    };
  }
}

/** An ISO instant as a timestamp literal the engines read the same way ('2024-01-01 00:00:00.000'). */
function sqlTimestamp(iso: string | null): string | null {
  return iso ? iso.replace('T', ' ').replace('Z', '') : null;
}
