// Snapshots: SCD type-2 history of a query. Each row version carries
// etl_scd_id, etl_updated_at, etl_valid_from and etl_valid_to (null while
// current). `strategy: timestamp` detects a change by a newer updated_at;
// `strategy: check` by a difference in check_cols. hard_deletes decides what a
// row that vanished from the source becomes: ignored, closed (invalidate), or
// closed plus a deletion record (new_record, with etl_is_deleted). A run
// applies all of it in one transaction; a run with no source change adds
// nothing.

import type { AdapterSession, MaterializeResult } from '../../adapters/adapter.js';
import { transaction } from '../../adapters/transaction.js';
import type { ManifestNode } from '../compiler/manifest.js';
import { recordState } from '../state/state.js';
import { asList } from '../project/load.js';
import { relationOf, type Materialization } from './materialization.js';

interface SnapshotSql {
  q: (s: string) => string;
  keys: string[];
  now: string;
  node: ManifestNode;
}

/** The timestamp a new version starts at: the row's updated_at, or the run's time (check). */
function versionStart(s: SnapshotSql, row: string): string {
  return s.node.config.strategy === 'timestamp' ? `cast(${row}.${s.q(s.node.config.updated_at!)} as timestamp)` : s.now;
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

export const snapshot: Materialization = {
  run: async ({ adapter, session, node, runId, now: clock }): Promise<MaterializeResult> => {
    const relation = relationOf(node);
    const d = adapter.dialect;
    const s: SnapshotSql = { q: (x) => d.quoteIdentifier(x), keys: asList(node.config.unique_key), now: snapshotTime(clock ?? new Date()), node };
    const deletions = node.config.hard_deletes === 'new_record';
    const existing = await adapter.relationKind(session, relation);

    if (!existing) {
      const vf = versionStart(s, 'etl_src');
      const sql =
        `select etl_src.*, ${scdId(s, 'etl_src', vf)} as etl_scd_id, ${vf} as etl_updated_at, ${vf} as etl_valid_from, cast(null as timestamp) as etl_valid_to` +
        `${deletions ? ', false as etl_is_deleted' : ''}\nfrom (\n${node.compiled_code}\n) as etl_src`;
      const staged = await adapter.stageTable(session, relation, sql);
      const inserted = staged.rows ?? 0;
      try {
        await adapter.publishTable(session, staged, relation, { state: [{ kind: 'snapshot_run', relation, uniqueId: node.unique_id, runId, inserted, invalidated: 0 }] });
      } catch (err) {
        await adapter.discardStaged(session, staged);
        throw err;
      }
      return { rowsAffected: staged.rows, message: `SNAPSHOT (${inserted} rows, first run)` };
    }

    const source = await adapter.stageTable(session, { schema: relation.schema, name: `${relation.name}__etl_source` }, node.compiled_code);
    try {
      const sourceDefs = await adapter.listColumns(session, source.relation);
      const sourceColumns = sourceDefs.map((c) => c.name);
      const snapColumns = new Set((await adapter.listColumns(session, relation)).map((c) => c.name.toLowerCase()));
      const missing = sourceColumns.filter((c) => !snapColumns.has(c.toLowerCase()));
      const rel = d.relation(relation.schema, relation.name);
      const src = d.relation(source.relation.schema, source.relation.name);
      const cols = sourceColumns.map(s.q).join(', ');
      const checkCols = node.config.strategy === 'check' ? (node.config.check_cols === 'all' ? sourceColumns.filter((c) => !s.keys.includes(c)) : (node.config.check_cols ?? [])) : [];
      const changed =
        node.config.strategy === 'timestamp'
          ? `cast(etl_new.${s.q(node.config.updated_at!)} as timestamp) > etl_cur.etl_updated_at`
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
      statements.push(`create table ${d.relation(relation.schema, `${relation.name}__etl_changes`)} as select etl_new.*, ${startAfter('etl_cur.etl_valid_from')} as etl_new_valid_from ${changedRows}`);
      const changes = d.relation(relation.schema, `${relation.name}__etl_changes`);
      statements.push(
        `update ${rel} as etl_cur set etl_valid_to = etl_chg.etl_new_valid_from from ${changes} as etl_chg where ${keyMatch(s, 'etl_cur', 'etl_chg')} and etl_cur.etl_valid_to is null`,
      );
      statements.push(`insert into ${rel} (${insertCols}) ${newVersion('etl_chg', 'etl_chg.etl_new_valid_from')} from ${changes} as etl_chg`);
      // New keys (and keys that come back after a delete under invalidate).
      statements.push(
        `insert into ${rel} (${insertCols}) ${newVersion('etl_new', startAfter('etl_hist.etl_history_end'))} from ${src} as etl_new ` +
          `left join (select ${s.keys.map(s.q).join(', ')}, max(etl_valid_to) as etl_history_end from ${rel} group by ${s.keys.map(s.q).join(', ')}) as etl_hist on ${keyMatch(s, 'etl_new', 'etl_hist')} where not exists (select 1 from ${rel} as etl_cur where ${keyMatch(s, 'etl_new', 'etl_cur')} and ${current})`,
      );
      if (node.config.hard_deletes === 'invalidate' || deletions) {
        const gone = `etl_cur.etl_valid_to is null${deletions ? ' and not etl_cur.etl_is_deleted' : ''} and not exists (select 1 from ${src} as etl_new where ${keyMatch(s, 'etl_new', 'etl_cur')})`;
        if (deletions) {
          // The deletion record: the last known row, flagged, current from now on.
          statements.push(
            `create table ${d.relation(relation.schema, `${relation.name}__etl_gone`)} as select ${sourceColumns.map((c) => `etl_cur.${s.q(c)}`).join(', ')} from ${rel} as etl_cur where ${gone}`,
          );
        }
        statements.push(`update ${rel} as etl_cur set etl_valid_to = ${s.now} where ${gone}`);
        if (deletions) {
          const goneRel = d.relation(relation.schema, `${relation.name}__etl_gone`);
          statements.push(
            `insert into ${rel} (${insertCols}) select ${sourceColumns.map((c) => `etl_gone.${s.q(c)}`).join(', ')}, ${scdId(s, 'etl_gone', s.now)}, ${s.now}, ${s.now}, cast(null as timestamp), true from ${goneRel} as etl_gone`,
          );
        }
      }
      await session.execute(`drop table if exists ${changes}`);
      await session.execute(`drop table if exists ${d.relation(relation.schema, `${relation.name}__etl_gone`)}`);
      const before = await countRows(session, rel);
      const closedBefore = await countRows(session, rel, 'etl_valid_to is not null');
      await transaction(session, async () => {
        for (const sql of statements) await session.execute(sql);
        await session.execute(`drop table if exists ${changes}`);
        await session.execute(`drop table if exists ${d.relation(relation.schema, `${relation.name}__etl_gone`)}`);
      });
      const inserted = (await countRows(session, rel)) - before;
      // Versions this run closed (a timestamp update closes at the row's updated_at, not at now).
      const closed = (await countRows(session, rel, 'etl_valid_to is not null')) - closedBefore;
      await recordState(adapter, session, [{ kind: 'snapshot_run', relation, uniqueId: node.unique_id, runId, inserted, invalidated: closed }]);
      return { rowsAffected: inserted, message: `SNAPSHOT (${inserted} new versions)` };
    } finally {
      await adapter.discardStaged(session, source);
    }
  },
};

async function countRows(session: AdapterSession, rel: string, where?: string): Promise<number> {
  return Number((await session.query(`select count(*) from ${rel}${where ? ` where ${where}` : ''}`)).rows[0]?.[0] ?? 0);
}
