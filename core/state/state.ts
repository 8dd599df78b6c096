// State that must outlive a machine lives in the target itself, in the
// `etl_meta` schema: run history, watermarks of incremental models, finished
// microbatch intervals and snapshot runs. Every machine that builds the same
// target sees the same state. The schema is versioned from day one: numbered
// migrations, applied in order, each recorded in etl_meta.schema_version.
//
// Data and its state change together: the statements that record a watermark
// or a finished batch are run by the materialization inside the transaction
// that changes the data (see watermarkStatement / batchStatement).

import type { Adapter, AdapterSession } from '../../adapters/adapter.js';

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
];

export const CURRENT_STATE_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Creates etl_meta and applies the migrations it has not seen yet; returns the version. */
export async function migrateState(adapter: Adapter, session: AdapterSession): Promise<number> {
  // Every run after the first finds etl_meta current: one query, no lock.
  try {
    const r = await session.query(`select max(version) from ${t('schema_version')}`);
    if (Number(r.rows[0]?.[0]) === CURRENT_STATE_VERSION) return CURRENT_STATE_VERSION;
  } catch {
    // not created yet: the full path below creates it
  }
  await adapter.ensureSchema(session, META_SCHEMA);
  await session.execute(`create table if not exists ${t('schema_version')} (version integer primary key, description varchar, applied_at timestamp)`);
  const r = await session.query(`select coalesce(max(version), 0) from ${t('schema_version')}`);
  const current = Number(r.rows[0]?.[0] ?? 0);
  if (current > CURRENT_STATE_VERSION) {
    throw new Error(`the target's etl_meta is at version ${current}, newer than this etl understands (${CURRENT_STATE_VERSION}); upgrade etl`);
  }
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    await session.execute('begin');
    try {
      for (const sql of m.statements) await session.execute(sql);
      await session.execute(`insert into ${t('schema_version')} values ($1, $2, current_timestamp)`, [m.version, m.description]);
      await session.execute('commit');
    } catch (err) {
      await session.execute('rollback').catch(() => undefined);
      throw err;
    }
  }
  return CURRENT_STATE_VERSION;
}

export async function recordRunStart(session: AdapterSession, run: { runId: string; command: string; target: string; version: string }): Promise<void> {
  await session.execute(`insert into ${t('runs')} values ($1, $2, $3, $4, current_timestamp, null, 'running')`, [run.runId, run.command, run.target, run.version]);
}

export interface NodeRunRecord {
  unique_id: string;
  relation: string | null;
  status: string;
  started_at: string | null;
  finished_at: string | null;
  rows_affected: number | null;
  message: string;
}

export async function recordRunEnd(session: AdapterSession, runId: string, status: string, nodes: NodeRunRecord[]): Promise<void> {
  await session.execute('begin');
  try {
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
          n.started_at ? n.started_at.replace('T', ' ').replace('Z', '') : null,
          n.finished_at ? n.finished_at.replace('T', ' ').replace('Z', '') : null,
          n.rows_affected,
          n.message.slice(0, 2000),
        );
        const p = (k: number) => `$${base + k}`;
        return `(cast(${p(1)} as varchar), cast(${p(2)} as varchar), cast(${p(3)} as varchar), cast(${p(4)} as varchar), cast(${p(5)} as timestamp), cast(${p(6)} as timestamp), cast(${p(7)} as bigint), cast(${p(8)} as varchar))`;
      });
      await session.execute(`insert into ${t('node_runs')} values ${tuples.join(', ')}`, params);
    }
    await session.execute(`update ${t('runs')} set finished_at = current_timestamp, status = $1 where run_id = $2`, [status, runId]);
    await session.execute('commit');
  } catch (err) {
    await session.execute('rollback').catch(() => undefined);
    throw err;
  }
}

/** Upserts a model's watermark: max(event_time) of its table, read in the same transaction. */
/**
 * Records max(event_time) of a relation as its watermark, in the transaction
 * that changes the relation. With `newRowsSql` (the staged rows an
 * incremental run just applied), only rows at or above their maximum are
 * read: the table's maximum is there, since those rows are in the table now,
 * and an engine with zone maps (DuckDB) skips the rest of the table instead of
 * scanning 10M rows. No new rows (all quarantined, say) leaves the watermark
 * as it was, as the table is.
 */
export function watermarkStatement(
  relationSql: string,
  relationKey: string,
  uniqueId: string,
  eventTimeColumnSql: string,
  eventTimeColumn: string,
  runId: string,
  newRowsSql?: string,
): { sql: string; params: unknown[] } {
  const where = newRowsSql ? ` where ${eventTimeColumnSql} >= (select max(${eventTimeColumnSql}) from ${newRowsSql})` : '';
  const watermark = newRowsSql ? 'coalesce(excluded.watermark, "watermarks".watermark)' : 'excluded.watermark';
  return {
    sql:
      `insert into ${t('watermarks')} select cast($1 as varchar), cast($2 as varchar), cast($3 as varchar), cast(max(${eventTimeColumnSql}) as varchar), cast($4 as varchar), current_timestamp from ${relationSql}${where} ` +
      `on conflict (relation) do update set unique_id = excluded.unique_id, event_time_column = excluded.event_time_column, watermark = ${watermark}, run_id = excluded.run_id, updated_at = excluded.updated_at`,
    params: [relationKey, uniqueId, eventTimeColumn, runId],
  };
}

export function batchStatement(relationKey: string, uniqueId: string, start: string, end: string, status: 'success' | 'error', rows: number | null, runId: string, message: string): { sql: string; params: unknown[] } {
  return {
    sql:
      `insert into ${t('batches')} values ($1, $2, $3, $4, $5, $6, $7, current_timestamp, $8) ` +
      `on conflict (relation, batch_start) do update set batch_end = excluded.batch_end, status = excluded.status, rows_affected = excluded.rows_affected, run_id = excluded.run_id, updated_at = excluded.updated_at, message = excluded.message`,
    params: [relationKey, start, end, uniqueId, status, rows, runId, message.slice(0, 2000)],
  };
}

/** Batch starts already done for a relation. */
export async function finishedBatches(session: AdapterSession, relationKey: string): Promise<Set<string>> {
  const r = await session.query(`select batch_start from ${t('batches')} where relation = $1 and status = 'success'`, [relationKey]);
  return new Set(r.rows.map((row) => String(row[0])));
}

export function clearBatchesStatement(relationKey: string): { sql: string; params: unknown[] } {
  return { sql: `delete from ${t('batches')} where relation = $1`, params: [relationKey] };
}

/** Everything in etl_meta, for `etl state show`. */
export async function readState(session: AdapterSession): Promise<Record<string, { columns: string[]; rows: unknown[][] }>> {
  const out: Record<string, { columns: string[]; rows: unknown[][] }> = {};
  out.schema_version = await session.query(`select version, description, cast(applied_at as varchar) as applied_at from ${t('schema_version')} order by version`);
  out.watermarks = await session.query(`select relation, event_time_column, watermark, cast(updated_at as varchar) as updated_at from ${t('watermarks')} order by relation`);
  out.batches = await session.query(
    `select relation, count(*) filter (where status = 'success') as done, count(*) filter (where status = 'error') as failed, min(batch_start) as first_batch, max(batch_start) as last_batch from ${t('batches')} group by relation order by relation`,
  );
  out.snapshots = await session.query(`select relation, count(*) as runs, sum(inserted) as inserted, sum(invalidated) as invalidated, cast(max(updated_at) as varchar) as last_run from ${t('snapshot_runs')} group by relation order by relation`);
  out.runs = await session.query(`select run_id, command, target, status, cast(started_at as varchar) as started_at, cast(finished_at as varchar) as finished_at from ${t('runs')} order by started_at desc limit 10`);
  return out;
}
