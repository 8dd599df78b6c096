// What SQL engines with transactional DDL share (DuckDB, Postgres): a table is
// built under a temporary name, then the old relation is dropped and the new
// one renamed into place inside one transaction, so a reader sees either the
// old table or the new one. State records and quarantined rows are written in
// that same transaction. Engines override the few statements that differ.

import type { StateRecord } from '../core/state/state.js';
import { internalName, type Dialect } from './dialect.js';
import type { AdapterSession, CatalogColumn, ColumnChange, ColumnDef, IncrementalChange, MaterializeResult, PublishExtras, Relation, RelationKind, RowMove, SnapshotChange, SnapshotResult, StageOptions, StagedTable } from './adapter.js';
import { applySnapshotSql } from './sql-snapshot.js';
import { SqlStateStore } from './sql-state.js';
import { transaction } from './transaction.js';

export const TEMP_SUFFIX = '__etl_tmp';

export abstract class SqlEngine {
  abstract readonly dialect: Dialect;
  /** etl_meta, written in the transactions below. */
  readonly state: SqlStateStore = new SqlStateStore(this);

  relationSql(r: Relation): string {
    return this.dialect.relation(r.schema, r.name);
  }

  tempRelation(r: Relation): Relation {
    return { schema: r.schema, name: internalName(this.dialect, r.name, TEMP_SUFFIX) };
  }

  abstract relationKind(session: AdapterSession, relation: Relation): Promise<RelationKind | undefined>;
  abstract listColumns(session: AdapterSession, relation: Relation): Promise<ColumnDef[]>;

  /** information_schema, which both engines have; Postgres overrides it for types with their precision. */
  async catalogColumns(session: AdapterSession, schemas: string[]): Promise<CatalogColumn[]> {
    if (!schemas.length) return [];
    const result = await session.query(
      `select c.table_schema, c.table_name, t.table_type, c.column_name, c.data_type, c.ordinal_position
         from information_schema.columns c
         join information_schema.tables t on t.table_catalog = c.table_catalog and t.table_schema = c.table_schema and t.table_name = c.table_name
        where c.table_catalog = current_database() and c.table_schema in (${schemas.map((_, i) => `$${i + 1}`).join(', ')})
        order by c.table_schema, c.table_name, c.ordinal_position`,
      schemas,
    );
    return result.rows.map((r) => ({ schema: String(r[0]), table: String(r[1]), kind: String(r[2]) === 'VIEW' ? 'view' : 'table', column: String(r[3]), type: String(r[4]), index: Number(r[5]) }));
  }

  async databaseName(session: AdapterSession): Promise<string | null> {
    const r = await session.query('select current_database()');
    return r.rows[0]?.[0] === undefined || r.rows[0]?.[0] === null ? null : String(r.rows[0][0]);
  }

  async ensureSchema(session: AdapterSession, schema: string, _options?: { shared?: boolean }): Promise<void> {
    await session.execute(`create schema if not exists ${this.dialect.quoteIdentifier(schema)}`);
  }

  dropSql(r: Relation, kind: RelationKind): string {
    return `drop ${kind} if exists ${this.relationSql(r)}`;
  }

  renameSql(from: Relation, toName: string): string {
    return `alter table ${this.relationSql(from)} rename to ${this.dialect.quoteIdentifier(toName)}`;
  }

  async replaceView(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult> {
    const existing = await this.relationKind(session, relation);
    const create = `create or replace view ${this.relationSql(relation)} as\n${selectSql}`;
    if (existing === 'table') {
      await transaction(session, async () => {
        await session.execute(this.dropSql(relation, 'table'));
        await session.execute(create);
      });
    } else {
      await session.execute(create);
    }
    return { message: 'CREATE VIEW' };
  }

  /** `create table <tmp> as <select>` (a temporary table when `temporary`, see stagedRelation); returns the row count. */
  abstract createTableAs(session: AdapterSession, relation: Relation, selectSql: string, temporary?: boolean): Promise<number | undefined>;

  async replaceTable(session: AdapterSession, relation: Relation, selectSql: string, state: StateRecord[] = []): Promise<MaterializeResult> {
    const staged = await this.stageTable(session, relation, selectSql);
    try {
      await this.publishTable(session, staged, relation, { state });
    } catch (err) {
      await this.discardStaged(session, staged);
      throw err;
    }
    return { rowsAffected: staged.rows, message: `CREATE TABLE (${staged.rows ?? '?'} rows)` };
  }

  /** Where stageTable builds: beside the target; an engine may keep transient rows in a temporary table instead. */
  protected stagedRelation(relation: Relation, _options?: StageOptions): { relation: Relation; temporary: boolean } {
    return { relation: this.tempRelation(relation), temporary: false };
  }

  /** Whether createTableAs replaces a temporary table of the same name (`create or replace temp`), so a stage left by an earlier try needs no drop first. */
  protected readonly createReplacesTemporary: boolean = false;

  async stageTable(session: AdapterSession, relation: Relation, selectSql: string, options?: StageOptions): Promise<StagedTable> {
    const { relation: tmp, temporary } = this.stagedRelation(relation, options);
    if (!(temporary && this.createReplacesTemporary)) await session.execute(this.dropSql(tmp, 'table'));
    try {
      const rows = await this.createTableAs(session, tmp, selectSql, temporary);
      return { relation: tmp, rows };
    } catch (err) {
      await session.execute(this.dropSql(tmp, 'table')).catch(() => undefined);
      throw err;
    }
  }

  async publishTable(session: AdapterSession, staged: StagedTable, relation: Relation, extras: PublishExtras = {}): Promise<void> {
    await transaction(session, async () => {
      if (extras.moveRows) await this.moveRows(session, staged.relation, extras.moveRows);
      await this.swapInOpenTransaction(session, staged.relation, relation);
      await this.state.writeInTransaction(session, extras.state ?? []);
    });
  }

  /** Replaces `relation` with the table `tmp`, on the caller's open transaction. */
  protected async swapInOpenTransaction(session: AdapterSession, tmp: Relation, relation: Relation): Promise<void> {
    const existing = await this.relationKind(session, relation);
    if (existing) await session.execute(this.dropSql(relation, existing));
    await session.execute(this.renameSql(tmp, relation.name));
  }

  /** Moves rows out of `from` into `move.into` (created if absent), on the caller's open transaction. */
  protected async moveRows(session: AdapterSession, from: Relation, move: RowMove): Promise<void> {
    const into = this.relationSql(move.into);
    const select = `select ${move.columns} from ${this.relationSql(from)} as ${move.alias} where ${move.where}`;
    await session.execute(`create table if not exists ${into} as ${select} limit 0`);
    await session.execute(`insert into ${into} ${select}`);
    await session.execute(`delete from ${this.relationSql(from)} as ${move.alias} where ${move.where}`);
  }

  async discardStaged(session: AdapterSession, staged: StagedTable): Promise<void> {
    await session.execute(this.dropSql(staged.relation, 'table')).catch(() => undefined);
  }

  columnChangeSql(target: Relation, change: ColumnChange): string {
    const rel = this.relationSql(target);
    const col = this.dialect.quoteIdentifier(change.column);
    switch (change.kind) {
      case 'add':
        return `alter table ${rel} add column ${col} ${change.type}`;
      case 'drop':
        return `alter table ${rel} drop column ${col}`;
      case 'alter_type':
        return `alter table ${rel} alter column ${col} type ${change.type}`;
    }
  }

  /**
   * A column of the new rows as it goes into the target (`qualifier` is the
   * new rows' alias, if any). Engines whose inserts convert only by
   * assignment casts override it to cast explicitly.
   */
  protected newValueSql(_change: IncrementalChange, column: string, qualifier?: string): string {
    const q = this.dialect.quoteIdentifier(column);
    return qualifier ? `${qualifier}.${q}` : q;
  }

  /** The DML of an incremental change; standard SQL that DuckDB and Postgres 15+ share. */
  incrementalSql(change: IncrementalChange): string[] {
    const q = (c: string) => this.dialect.quoteIdentifier(c);
    const target = this.relationSql(change.target);
    const staged = 'sql' in change.staged ? `(\n${change.staged.sql}\n) as etl_source` : this.relationSql(change.staged);
    const cols = change.columns.map(q).join(', ');
    const insert = `insert into ${target} (${cols}) select ${change.columns.map((c) => this.newValueSql(change, c)).join(', ')} from ${staged}`;
    const keyMatch = change.uniqueKey.map((k) => `etl_target.${q(k)} = ${this.newValueSql(change, k, 'etl_new')}`).join(' and ');
    switch (change.strategy) {
      case 'append':
        return [insert];
      case 'delete+insert':
        return [
          `delete from ${target} as etl_target where exists (select 1 from ${staged} as etl_new where ${keyMatch})`,
          change.deletedFlag ? `${insert} where not ${q(change.deletedFlag)}` : insert,
        ];
      case 'replace_where':
        return [`delete from ${target} where ${change.where}`, insert];
      case 'insert_overwrite': {
        // Null-safe: the rows of a NULL partition are replaced by new rows with NULL there.
        const samePartition = (change.partitionBy ?? []).map((p) => `etl_target.${q(p)} is not distinct from ${this.newValueSql(change, p, 'etl_new')}`).join(' and ');
        return [`delete from ${target} as etl_target where exists (select 1 from ${staged} as etl_new where ${samePartition})`, insert];
      }
      case 'merge': {
        const updates = change.columns.filter((c) => !change.uniqueKey.includes(c)).map((c) => `${q(c)} = ${this.newValueSql(change, c, 'etl_new')}`);
        return [
          `merge into ${target} as etl_target using ${staged} as etl_new on ${keyMatch}
` +
            (updates.length ? `when matched then update set ${updates.join(', ')}
` : '') +
            `when not matched then insert (${cols}) values (${change.columns.map((c) => this.newValueSql(change, c, 'etl_new')).join(', ')})`,
        ];
      }
    }
  }

  async applyIncremental(session: AdapterSession, change: IncrementalChange): Promise<{ rowsAffected: number }> {
    const staged = change.staged;
    const rows = await transaction(session, async () => {
      let applied = 0;
      if (!('sql' in staged)) {
        if (change.moveRows) await this.moveRows(session, staged, change.moveRows);
        // Rows moved out (quarantine) leave the stage's own count behind: counted then.
        if (change.stagedRows !== undefined && !change.moveRows) applied = change.stagedRows;
        else applied = Number((await session.query(`select count(*) from ${this.relationSql(staged)}`)).rows[0]?.[0] ?? 0);
      }
      for (const c of change.columnChanges) await session.execute(this.columnChangeSql(change.target, c));
      const statements = this.incrementalSql(change);
      for (const [i, sql] of statements.entries()) {
        const r = await session.execute(sql);
        // A query source is counted by its insert, the last statement.
        if ('sql' in staged && i === statements.length - 1) applied = r.rowsAffected ?? 0;
      }
      await this.state.writeInTransaction(session, change.state, { rows: applied });
      return applied;
    });
    return { rowsAffected: rows };
  }

  applySnapshot(session: AdapterSession, change: SnapshotChange): Promise<SnapshotResult> {
    return applySnapshotSql(this, session, change);
  }
}
