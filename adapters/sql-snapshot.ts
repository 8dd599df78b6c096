// Snapshots on SQL engines (DuckDB, Postgres): SCD type-2 history kept in
// place. Each row version carries etl_scd_id, etl_updated_at, etl_valid_from
// and etl_valid_to (null while current). The first run creates the table from
// the query; later runs stage the query's rows, then close changed and
// vanished versions and insert new ones, all in one transaction together with
// the run's state records (the snapshot run with what it inserted and closed).

import type { AdapterSession, SnapshotChange, SnapshotResult } from './adapter.js';
import { internalName } from './dialect.js';
import type { SqlEngine } from './sql-engine.js';
import { selectBody } from './sql-text.js';
import { transaction } from './transaction.js';

interface SnapshotSql {
  q: (s: string) => string;
  keys: string[];
  /** The run's time as a timestamp literal. */
  now: string;
  change: SnapshotChange;
}

/** The timestamp a new version starts at: the row's updated_at, or the run's time (check). */
function versionStart(s: SnapshotSql, row: string): string {
  return s.change.strategy === 'timestamp' ? `cast(${row}.${s.q(s.change.updatedAt!)} as timestamp)` : s.now;
}

function scdId(s: SnapshotSql, row: string, validFrom: string): string {
  const parts = s.keys.map((k) => `cast(${row}.${s.q(k)} as varchar)`);
  return `md5(concat_ws('|', ${parts.join(', ')}, cast(${validFrom} as varchar)))`;
}

/** The run's time to the millisecond: two runs in one second must not share version bounds or scd ids. */
function snapshotTime(d: Date): string {
  return `cast('${d.toISOString().slice(0, 23).replace('T', ' ')}' as timestamp)`;
}

function keyMatch(s: SnapshotSql, a: string, b: string): string {
  return s.keys.map((k) => `${a}.${s.q(k)} = ${b}.${s.q(k)}`).join(' and ');
}

export async function applySnapshotSql(engine: SqlEngine, session: AdapterSession, change: SnapshotChange): Promise<SnapshotResult> {
  const relation = change.target;
  const d = engine.dialect;
  const s: SnapshotSql = { q: (x) => d.quoteIdentifier(x), keys: change.uniqueKey, now: snapshotTime(change.now), change };
  const deletions = change.hardDeletes === 'new_record';

  if (!(await engine.relationKind(session, relation))) {
    const vf = versionStart(s, 'etl_src');
    const sql =
      `select etl_src.*, ${scdId(s, 'etl_src', vf)} as etl_scd_id, ${vf} as etl_updated_at, ${vf} as etl_valid_from, cast(null as timestamp) as etl_valid_to` +
      `${deletions ? ', false as etl_is_deleted' : ''}\nfrom (\n${selectBody(change.sql)}\n) as etl_src`;
    const staged = await engine.stageTable(session, relation, sql);
    const inserted = staged.rows ?? 0;
    try {
      await engine.publishTable(session, staged, relation, { state: change.state.map((r) => (r.kind === 'snapshot_run' ? { inserted, invalidated: 0, ...r } : r)) });
    } catch (err) {
      await engine.discardStaged(session, staged);
      throw err;
    }
    return { firstRun: true, inserted, invalidated: 0 };
  }

  const source = await engine.stageTable(session, { schema: relation.schema, name: internalName(d, relation.name, '__etl_source') }, change.sql);
  try {
    const sourceDefs = await engine.listColumns(session, source.relation);
    const sourceColumns = sourceDefs.map((c) => c.name);
    const snapColumns = new Set((await engine.listColumns(session, relation)).map((c) => c.name.toLowerCase()));
    const missing = sourceColumns.filter((c) => !snapColumns.has(c.toLowerCase()));
    const rel = d.relation(relation.schema, relation.name);
    const src = d.relation(source.relation.schema, source.relation.name);
    const changes = d.relation(relation.schema, internalName(d, relation.name, '__etl_changes'));
    const goneRel = d.relation(relation.schema, internalName(d, relation.name, '__etl_gone'));
    const cols = sourceColumns.map(s.q).join(', ');
    const checkCols = change.strategy === 'check' ? (change.checkCols === 'all' ? sourceColumns.filter((c) => !s.keys.includes(c)) : change.checkCols) : [];
    const changed =
      change.strategy === 'timestamp'
        ? `cast(etl_new.${s.q(change.updatedAt!)} as timestamp) > etl_cur.etl_updated_at`
        : checkCols.map((c) => `etl_new.${s.q(c)} is distinct from etl_cur.${s.q(c)}`).join(' or ') || 'false';
    const current = `etl_cur.etl_valid_to is null`;
    const revived = deletions ? ` or etl_cur.etl_is_deleted` : '';
    const vf = versionStart(s, 'etl_new');
    // A new version never starts before the version it follows ends: a row revived after a
    // delete (or whose updated_at is older than that) starts when it came back, so history
    // has no overlaps or negative intervals and every etl_scd_id stays unique.
    const startAfter = (boundary: string) => `case when ${boundary} is null or ${vf} > ${boundary} then ${vf} else greatest(${s.now}, ${boundary}) end`;
    const newVersion = (from: string, validFrom: string) =>
      `select ${sourceColumns.map((c) => `${from}.${s.q(c)}`).join(', ')}, ${scdId(s, from, validFrom)}, ${versionStart(s, from)}, ${validFrom}, cast(null as timestamp)${deletions ? ', false' : ''}`;
    const insertCols = `${cols}, etl_scd_id, etl_updated_at, etl_valid_from, etl_valid_to${deletions ? ', etl_is_deleted' : ''}`;
    const statements: string[] = [];
    for (const c of missing) {
      const type = sourceDefs.find((x) => x.name === c)!.type;
      statements.push(`alter table ${rel} add column ${s.q(c)} ${type}`);
    }
    // Changed rows: close the current version, then add the new one.
    const changedRows = `from ${src} as etl_new join ${rel} as etl_cur on ${keyMatch(s, 'etl_new', 'etl_cur')} and ${current} where (${changed})${revived}`;
    statements.push(`create table ${changes} as select etl_new.*, ${startAfter('etl_cur.etl_valid_from')} as etl_new_valid_from ${changedRows}`);
    statements.push(`update ${rel} as etl_cur set etl_valid_to = etl_chg.etl_new_valid_from from ${changes} as etl_chg where ${keyMatch(s, 'etl_cur', 'etl_chg')} and etl_cur.etl_valid_to is null`);
    statements.push(`insert into ${rel} (${insertCols}) ${newVersion('etl_chg', 'etl_chg.etl_new_valid_from')} from ${changes} as etl_chg`);
    // New keys (and keys that come back after a delete under invalidate).
    statements.push(
      `insert into ${rel} (${insertCols}) ${newVersion('etl_new', startAfter('etl_hist.etl_history_end'))} from ${src} as etl_new ` +
        `left join (select ${s.keys.map(s.q).join(', ')}, max(etl_valid_to) as etl_history_end from ${rel} group by ${s.keys.map(s.q).join(', ')}) as etl_hist on ${keyMatch(s, 'etl_new', 'etl_hist')} where not exists (select 1 from ${rel} as etl_cur where ${keyMatch(s, 'etl_new', 'etl_cur')} and ${current})`,
    );
    if (change.hardDeletes === 'invalidate' || deletions) {
      const gone = `etl_cur.etl_valid_to is null${deletions ? ' and not etl_cur.etl_is_deleted' : ''} and not exists (select 1 from ${src} as etl_new where ${keyMatch(s, 'etl_new', 'etl_cur')})`;
      // The deletion record: the last known row, flagged, current from now on.
      if (deletions) statements.push(`create table ${goneRel} as select ${sourceColumns.map((c) => `etl_cur.${s.q(c)}`).join(', ')} from ${rel} as etl_cur where ${gone}`);
      statements.push(`update ${rel} as etl_cur set etl_valid_to = ${s.now} where ${gone}`);
      if (deletions) {
        statements.push(
          `insert into ${rel} (${insertCols}) select ${sourceColumns.map((c) => `etl_gone.${s.q(c)}`).join(', ')}, ${scdId(s, 'etl_gone', s.now)}, ${s.now}, ${s.now}, cast(null as timestamp), true from ${goneRel} as etl_gone`,
        );
      }
    }
    await session.execute(`drop table if exists ${changes}`);
    await session.execute(`drop table if exists ${goneRel}`);
    const count = async (where?: string) => Number((await session.query(`select count(*) from ${rel}${where ? ` where ${where}` : ''}`)).rows[0]?.[0] ?? 0);
    const before = await count();
    const closedBefore = await count('etl_valid_to is not null');
    // The versions, their counts and the run's state records commit together.
    return await transaction(session, async () => {
      for (const sql of statements) await session.execute(sql);
      await session.execute(`drop table if exists ${changes}`);
      await session.execute(`drop table if exists ${goneRel}`);
      const inserted = (await count()) - before;
      // Versions this run closed (a timestamp update closes at the row's updated_at, not at now).
      const invalidated = (await count('etl_valid_to is not null')) - closedBefore;
      await engine.state.writeInTransaction(session, change.state, { inserted, invalidated });
      return { firstRun: false, inserted, invalidated };
    });
  } finally {
    await engine.discardStaged(session, source);
  }
}
