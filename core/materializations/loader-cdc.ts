// Loaders in CDC mode (`incremental: { mode: cdc }` on a Postgres source): the
// raw table follows the source table's change stream, deletes included
// (core/extract/postgres-cdc.ts reads it from a logical replication slot).
//
// One run, and why a crash can neither lose nor duplicate a change:
// 1. The changes committed after the position stored with the table are read
//    without consuming them (peek) and staged on the target: one row per
//    change (order, kind, columns).
// 2. The engine reduces them to the last change per key and applies that set
//    (delete+insert by key; a key whose last change is a delete is only
//    deleted) in ONE target transaction (Delta: one commit) that also stores
//    the new position (a cdc_position state record).
// 3. Only then is the slot advanced to that position.
// Killed before 2 commits: the target and its position are as before and the
// slot was not advanced: the next run reads the same changes again. Killed
// between 2 and 3: the slot still streams changes the target has, but they
// are at or before the stored position and are skipped. Applying the last
// change per key is idempotent anyway: a row upserted or deleted twice ends
// the same.
//
// The first load (no table, no position, --full-refresh) creates the slot and
// copies the table as of the snapshot the slot exports, and stores the slot's
// start as the position: the changes after it are exactly those the copy
// lacks. When the slot is gone (dropped, invalidated because the WAL it needed
// was removed, or moved past the stored position by another reader), or the
// source truncated the table, the changes in between cannot be known: the
// table is reloaded in full from a new slot, and the run says why (a warning).

import type { ColumnDef, MaterializeResult, Relation, StagedTable } from '../../adapters/adapter.js';
import { pausePoint } from '../../adapters/trace.js';
import { RunError } from '../errors.js';
import { CHANGE_OP, CHANGE_SEQ, CHANGE_UNCHANGED, defaultSlotName, lsnValue, PostgresCdcSource, type ChangeSummary } from '../extract/postgres-cdc.js';
import { PostgresExtractor } from '../extract/postgres.js';
import { countedSource, type SourceColumn } from '../extract/extractor.js';
import { formatBytes } from '../reporting/bytes.js';
import { recordState, storedCdcPosition, type StateRecord } from '../state/state.js';
import { describeDrift, nothingNew, round, type LoadStats } from './loader.js';
import { relationOf, type Materialization, type MaterializationContext } from './materialization.js';
import { explainSchemaChangeFailure, planSchemaChange, planSourceDrift } from './schema-change.js';

/** The column of the reduced changes that says a key's last change deleted it. */
const DELETED = 'etl_cdc_deleted';

/** Why the table is loaded in full; `warn`: not asked for (the slot was lost), said as a warning. */
interface Reload {
  how: 'CREATE TABLE' | 'FULL REFRESH' | 'FULL RELOAD';
  why?: string;
  warn?: boolean;
}

export const loaderCdc: Materialization = {
  run: async (ctx): Promise<MaterializeResult> => {
    const { adapter, session, node } = ctx;
    const spec = node.config.loader!;
    const relation = relationOf(node);
    const meta = ctx.manifest.metadata;
    const name = (sourceDatabase: string) => defaultSlotName({ project: meta.project_name, target: meta.target_name, database: meta.database, sourceDatabase, schema: relation.schema, table: relation.name });
    const source = new PostgresCdcSource(spec, meta.project_root, process.env, ctx.clock, spec.cdc?.slot ?? name);
    const t0 = performance.now();
    try {
      await source.open();
      const slot = source.slot;
      const { key } = await source.describe();
      const existing = await adapter.relationKind(session, relation);
      const refresh = node.config.full_refresh === false ? false : ctx.fullRefresh || node.config.full_refresh === true;
      const stored = existing && !refresh ? await storedCdcPosition(adapter, session, relation) : undefined;
      const state = await source.slotState();
      if (state && !state.ours) {
        throw new RunError(
          `loader of source ${spec.source} (${spec.declared_at}): replication slot ${slot} exists at the source but is not this loader's (plugin ${state.plugin}, database ${state.database})\n  hint: name another slot: incremental: { mode: cdc, slot: <name> }`,
        );
      }
      if (state?.active) throw new RunError(`loader of source ${spec.source} (${spec.declared_at}): replication slot ${slot} is in use by another connection (another run of this loader?); try again when it has finished`);

      let reload: Reload | undefined;
      if (!existing) reload = { how: 'CREATE TABLE' };
      else if (refresh) reload = { how: 'FULL REFRESH' };
      else if (!stored) reload = { how: 'FULL RELOAD', why: `no CDC position is stored with ${relation.schema}.${relation.name} (it was loaded another way)` };
      else if (stored.slot !== slot) reload = { how: 'FULL RELOAD', why: `the table was loaded from replication slot ${stored.slot}, the loader now reads ${slot}`, warn: true };
      else if (!state) reload = { how: 'FULL RELOAD', why: `replication slot ${slot} no longer exists at the source (dropped?); the changes since ${stored.position} cannot be read`, warn: true };
      else if (state.lost) reload = { how: 'FULL RELOAD', why: `replication slot ${slot} was invalidated at the source (the WAL it needed was removed: max_slot_wal_keep_size); the changes since ${stored.position} cannot be read`, warn: true };
      else if (state.confirmed && lsnValue(state.confirmed) > lsnValue(stored.position)) {
        reload = { how: 'FULL RELOAD', why: `replication slot ${slot} is at ${state.confirmed}, past this table's position ${stored.position}: another reader consumed changes (two targets on one slot? give each its own with incremental.slot)`, warn: true };
      }

      if (!reload) {
        const applied = await applyChanges(ctx, source, relation, key, stored!.position, t0);
        if (!('truncated' in applied)) return applied;
        reload = { how: 'FULL RELOAD', why: `the table was truncated at the source`, warn: true };
      }
      if (stored && stored.slot !== slot) await dropOldSlot(ctx, stored.slot);
      return await fullLoad(ctx, source, relation, key, reload, t0);
    } finally {
      await source.close();
    }
  },
};

/** The slot a table was loaded from before `slot:` changed holds WAL for nobody: it goes. */
async function dropOldSlot(ctx: MaterializationContext, old: string): Promise<void> {
  const spec = ctx.node.config.loader!;
  const previous = new PostgresCdcSource(spec, ctx.manifest.metadata.project_root, process.env, ctx.clock, old);
  try {
    await previous.open();
    await previous.dropSlot();
  } finally {
    await previous.close();
  }
}

function positionRecord(ctx: MaterializationContext, relation: Relation, slot: string, position: string): StateRecord {
  return { kind: 'cdc_position', relation, uniqueId: ctx.node.unique_id, slot, position, runId: ctx.runId, at: ctx.clock.now().toISOString() };
}

function checkKey(ctx: MaterializationContext, columns: SourceColumn[], key: string[]): void {
  const spec = ctx.node.config.loader!;
  const missing = key.filter((k) => !columns.some((c) => c.name === k));
  if (missing.length) {
    throw new RunError(
      `loader of source ${spec.source} (${spec.declared_at}): incremental.primary_key ${missing.map((m) => `"${m}"`).join(', ')} is not a column of table ${spec.table} at the source; its columns: ${columns.map((c) => c.name).join(', ')}\n  hint: name the columns that identify a row; the raw table is unchanged`,
    );
  }
  const reserved = columns.filter((c) => [CHANGE_SEQ, CHANGE_OP, CHANGE_UNCHANGED, DELETED].includes(c.name));
  if (reserved.length) throw new RunError(`loader of source ${spec.source} (${spec.declared_at}): column ${reserved[0]!.name} of table ${spec.table} has a name CDC loading uses itself\n  hint: load it by a cursor column instead`);
}

/**
 * The first load, or a reload: a new slot, the table copied as of its
 * snapshot and swapped in with the slot's start as the position. A slot made
 * here for a load that does not publish is dropped again (it would hold WAL).
 */
async function fullLoad(ctx: MaterializationContext, source: PostgresCdcSource, relation: Relation, key: string[], reload: Reload, t0: number): Promise<MaterializeResult> {
  const { adapter, session } = ctx;
  const spec = ctx.node.config.loader!;
  await source.dropSlot();
  const created = await source.createSlot();
  let published = false;
  let bytes = 0;
  const count = (n: number) => void (bytes += n);
  let staged: StagedTable | undefined;
  try {
    const extractor = new PostgresExtractor(spec, ctx.manifest.metadata.project_root, process.env, ctx.clock, created.snapshot);
    try {
      await extractor.open();
      // The copy's transaction holds the snapshot now; the exporting connection may go.
      await source.release();
      const columns = await extractor.columns();
      checkKey(ctx, columns, key);
      const rows = countedSource(extractor.extract({ columns }), count);
      const targetColumns = columns.map((c) => ({ name: c.name, type: adapter.dialect.typeFromPostgres(c.type) }));
      staged = await adapter.stageCsv(session, relation, targetColumns, rows);
    } finally {
      await extractor.close();
    }
    try {
      await adapter.publishTable(session, staged, relation, { state: [positionRecord(ctx, relation, source.slot, created.position)] });
    } catch (err) {
      await adapter.discardStaged(session, staged);
      throw err;
    }
    published = true;
  } finally {
    if (!published) await source.dropSlot().catch(() => undefined);
  }
  const loaded = staged.rows ?? 0;
  const seconds = (performance.now() - t0) / 1000;
  const stats: LoadStats = { rows_read: loaded, rows_loaded: loaded, rows_rejected: 0, bytes: bytes, seconds: round(seconds, 3), rows_per_second: Math.round(loaded / Math.max(seconds, 1e-3)) };
  return {
    rowsAffected: loaded,
    message: `${reload.how}${reload.why ? `: ${reload.why}` : ''} (CDC from slot ${source.slot} at ${created.position}; ${loaded} rows read, ${loaded} loaded, ${formatBytes(bytes)}, ${stats.rows_per_second} rows/s)`,
    ...(reload.warn ? { status: 'warn' as const } : {}),
    bytesScanned: bytes,
    bytesWritten: bytes,
    stats: { ...stats, cdc: { summary: `${reload.how} from slot ${source.slot} at ${created.position}`, slot: source.slot, position: created.position, ...(reload.why ? { reason: reload.why } : {}) } },
  };
}

/**
 * The changes since `after`, applied with the new position in one transaction,
 * then the slot advanced. `{ truncated }`: the table was truncated at the
 * source and must be reloaded (nothing was changed).
 */
async function applyChanges(ctx: MaterializationContext, source: PostgresCdcSource, relation: Relation, key: string[], after: string, t0: number): Promise<MaterializeResult | { truncated: true }> {
  const { adapter, session, node } = ctx;
  const spec = node.config.loader!;
  const d = adapter.dialect;
  // The columns as the source has them now (a column added there is added here: drift).
  const described = new PostgresExtractor(spec, ctx.manifest.metadata.project_root, process.env, ctx.clock);
  let columns: SourceColumn[];
  try {
    await described.open();
    columns = await described.columns();
  } finally {
    await described.close();
  }
  checkKey(ctx, columns, key);
  const { rows: changeRows, summary: read } = source.changes(columns, key, after);
  let bytes = 0;
  const rows = countedSource(changeRows, (n) => void (bytes += n));
  const changeColumns: ColumnDef[] = [
    { name: CHANGE_SEQ, type: d.typeFromPostgres('bigint') },
    { name: CHANGE_OP, type: d.typeFromPostgres('text') },
    { name: CHANGE_UNCHANGED, type: d.typeFromPostgres('text') },
    ...columns.map((c) => ({ name: c.name, type: d.typeFromPostgres(c.type) })),
  ];
  const changes = await adapter.stageCsv(session, { schema: relation.schema, name: `${relation.name}__changes` }, changeColumns, rows, { transient: true });
  let summary: ChangeSummary;
  let final: StagedTable | undefined;
  let loaded = 0;
  let drift: ReturnType<typeof describeDrift> | undefined;
  try {
    summary = await read;
    if (summary.truncated) return { truncated: true };
    pausePoint(`cdc changes staged ${source.slot}`);
    const position = positionRecord(ctx, relation, source.slot, summary.position);
    if ((changes.rows ?? 0) === 0) {
      // Nothing of this table, but the slot moves on past the rest of the database's changes.
      if (summary.position !== after) {
        await recordState(adapter, session, [position]);
        pausePoint(`cdc committed ${source.slot}`);
        await source.advance(summary.position);
      }
      const r = nothingNew(t0, `no changes since ${after}`);
      return { ...r, stats: { ...r.stats, cdc: { summary: `CDC no changes since ${after}`, slot: source.slot, from: after, to: summary.position, changes: 0 } } };
    }
    const existingColumns = new Set((await adapter.listColumns(session, relation)).map((c) => c.name));
    final = await adapter.stageTable(session, relation, lastChangePerKey(d.quoteIdentifier, d.relation(changes.relation.schema, changes.relation.name), d.relation(relation.schema, relation.name), columns.map((c) => c.name), key, summary.unchanged, existingColumns), { transient: true });
    const plan = node.config.on_schema_change ? await planSchemaChange(adapter, session, node, relation, final.relation, [DELETED]) : await planSourceDrift(adapter, session, node, relation, final.relation, [DELETED]);
    drift = describeDrift(plan);
    try {
      const applied = await adapter.applyIncremental(session, {
        strategy: 'delete+insert',
        uniqueKey: key,
        deletedFlag: DELETED,
        target: relation,
        staged: final.relation,
        columns: plan.columns,
        columnChanges: plan.changes,
        state: [position],
      });
      loaded = applied.rowsAffected;
    } catch (err) {
      throw explainSchemaChangeFailure(node, plan, err);
    }
  } finally {
    await adapter.discardStaged(session, changes);
    if (final) await adapter.discardStaged(session, final);
  }
  pausePoint(`cdc committed ${source.slot}`);
  await source.advance(summary.position);
  const seconds = (performance.now() - t0) / 1000;
  const stats: LoadStats = { rows_read: summary.changes, rows_loaded: loaded, rows_rejected: 0, bytes: bytes, seconds: round(seconds, 3), rows_per_second: Math.round(summary.changes / Math.max(seconds, 1e-3)) };
  const changed = [...drift.added.map((c) => `+${c}`), ...drift.changed.map((c) => `~${c}`)];
  const warning = drift.removed.length && !node.config.on_schema_change ? `; column${drift.removed.length === 1 ? '' : 's'} ${drift.removed.join(', ')} no longer at the source (kept, NULL in new rows)` : '';
  return {
    rowsAffected: loaded,
    message: `CDC ${after} -> ${summary.position} (${summary.changes} changes read, ${loaded} rows upserted or deleted, ${formatBytes(bytes)}, ${stats.rows_per_second} changes/s${changed.length ? `, columns ${changed.join(' ')}` : ''})${warning}`,
    ...(warning ? { status: 'warn' as const } : {}),
    bytesScanned: bytes,
    bytesWritten: bytes,
    stats: {
      ...stats,
      cdc: { summary: `CDC ${after} -> ${summary.position}`, slot: source.slot, from: after, to: summary.position, changes: summary.changes },
      ...(drift.added.length || drift.removed.length || drift.changed.length ? { schema_changes: drift } : {}),
    },
  };
}

/**
 * The staged changes reduced to the last one per key, with DELETED true where
 * it deleted the row; SQL DuckDB and Postgres share. A column an update left
 * out (an unchanged TOAST value) takes the value of the key's latest earlier
 * change that had it, or the target's.
 */
export function lastChangePerKey(q: (name: string) => string, changes: string, target: string, columns: string[], key: string[], unchanged: Set<number>, targetColumns: Set<string>): string {
  const keys = key.map(q).join(', ');
  let from = changes;
  if (unchanged.size) {
    const left = (i: number) => `${q(CHANGE_UNCHANGED)} like '%,${i},%'`;
    const idx = [...unchanged].sort((a, b) => a - b);
    // etl_cdc_g<i>: how many of the key's changes so far had column i; equal counts share its value.
    const groups = idx.map((i) => `count(case when s.${left(i)} then null else 1 end) over (partition by ${key.map((k) => `s.${q(k)}`).join(', ')} order by s.${q(CHANGE_SEQ)} rows between unbounded preceding and current row) as etl_cdc_g${i}`);
    const before = idx.map((i) => `${targetColumns.has(columns[i]!) ? `t.${q(columns[i]!)}` : 'null'} as etl_cdc_t${i}`);
    const grouped = `select s.*, ${[...groups, ...before].join(', ')} from ${changes} as s left join ${target} as t on ${key.map((k) => `t.${q(k)} = s.${q(k)}`).join(' and ')}`;
    const resolved = columns.map((c, i) =>
      unchanged.has(i)
        ? `case when ${left(i)} then (case when etl_cdc_g${i} = 0 then etl_cdc_t${i} else first_value(${q(c)}) over (partition by ${keys}, etl_cdc_g${i} order by ${q(CHANGE_SEQ)}) end) else ${q(c)} end as ${q(c)}`
        : q(c),
    );
    from = `(select ${q(CHANGE_SEQ)}, ${q(CHANGE_OP)}, ${resolved.join(', ')} from (${grouped}) as etl_cdc_grouped)`;
  }
  return (
    `select ${columns.map(q).join(', ')}, ${q(CHANGE_OP)} = 'd' as ${q(DELETED)} from (` +
    `select *, row_number() over (partition by ${keys} order by ${q(CHANGE_SEQ)} desc) as etl_cdc_rank from ${from} as etl_cdc_changes) as etl_cdc_last where etl_cdc_rank = 1`
  );
}
