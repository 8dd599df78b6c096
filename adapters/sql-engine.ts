// What SQL engines with transactional DDL share (DuckDB, Postgres): a table is
// built under a temporary name, then the old relation is dropped and the new
// one renamed into place inside one transaction, so a reader sees either the
// old table or the new one. Engines override the few statements that differ.

import type { Dialect } from './dialect.js';
import type { AdapterSession, ColumnChange, IncrementalChange, MaterializeResult, Relation, RelationKind, StageOptions, StagedTable, StateStatement } from './adapter.js';

export const TEMP_SUFFIX = '__etl_tmp';

export abstract class SqlEngine {
  abstract readonly dialect: Dialect;

  relationSql(r: Relation): string {
    return this.dialect.relation(r.schema, r.name);
  }

  tempRelation(r: Relation): Relation {
    return { schema: r.schema, name: `${r.name}${TEMP_SUFFIX}` };
  }

  abstract relationKind(session: AdapterSession, relation: Relation): Promise<RelationKind | undefined>;

  async ensureSchema(session: AdapterSession, schema: string): Promise<void> {
    await session.execute(`create schema if not exists ${this.dialect.quoteIdentifier(schema)}`);
  }

  dropSql(r: Relation, kind: RelationKind): string {
    return `drop ${kind} if exists ${this.relationSql(r)}`;
  }

  renameSql(from: Relation, toName: string): string {
    return `alter table ${this.relationSql(from)} rename to ${this.dialect.quoteIdentifier(toName)}`;
  }

  /** Runs statements in one transaction; rolls back and rethrows on failure. */
  async inTransaction(session: AdapterSession, statements: Array<string | StateStatement>): Promise<void> {
    await session.execute('begin');
    try {
      for (const s of statements) await (typeof s === 'string' ? session.execute(s) : session.execute(s.sql, s.params));
      await session.execute('commit');
    } catch (err) {
      await session.execute('rollback').catch(() => undefined);
      throw err;
    }
  }

  async replaceView(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult> {
    const existing = await this.relationKind(session, relation);
    const create = `create or replace view ${this.relationSql(relation)} as\n${selectSql}`;
    if (existing === 'table') {
      await this.inTransaction(session, [this.dropSql(relation, 'table'), create]);
    } else {
      await session.execute(create);
    }
    return { message: 'CREATE VIEW' };
  }

  /** `create table <tmp> as <select>` (a temporary table when `temporary`, see stagedRelation); returns the row count. */
  abstract createTableAs(session: AdapterSession, relation: Relation, selectSql: string, temporary?: boolean): Promise<number | undefined>;

  async replaceTable(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult> {
    const staged = await this.stageTable(session, relation, selectSql);
    try {
      await this.publishTable(session, staged, relation);
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

  async stageTable(session: AdapterSession, relation: Relation, selectSql: string, options?: StageOptions): Promise<StagedTable> {
    const { relation: tmp, temporary } = this.stagedRelation(relation, options);
    await session.execute(this.dropSql(tmp, 'table'));
    try {
      const rows = await this.createTableAs(session, tmp, selectSql, temporary);
      return { relation: tmp, rows };
    } catch (err) {
      await session.execute(this.dropSql(tmp, 'table')).catch(() => undefined);
      throw err;
    }
  }

  async publishTable(session: AdapterSession, staged: StagedTable, relation: Relation, stateStatements: StateStatement[] = []): Promise<void> {
    await this.swapIn(session, staged.relation, relation, stateStatements);
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
        return [`delete from ${target} as etl_target where exists (select 1 from ${staged} as etl_new where ${keyMatch})`, insert];
      case 'replace_where':
        return [`delete from ${target} where ${change.where}`, insert];
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
    let rows = 0;
    if (!('sql' in change.staged)) {
      const staged = await session.query(`select count(*) from ${this.relationSql(change.staged)}`);
      rows = Number(staged.rows[0]?.[0] ?? 0);
    }
    await session.execute('begin');
    try {
      for (const c of change.columnChanges) await session.execute(this.columnChangeSql(change.target, c));
      const statements = this.incrementalSql(change);
      for (const [i, sql] of statements.entries()) {
        const r = await session.execute(sql);
        // A query source is counted by its insert, the last statement.
        if ('sql' in change.staged && i === statements.length - 1) rows = r.rowsAffected ?? 0;
      }
      for (const s of change.stateStatements) await session.execute(s.sql, s.params);
      await session.execute('commit');
    } catch (err) {
      await session.execute('rollback').catch(() => undefined);
      throw err;
    }
    return { rowsAffected: rows };
  }

  /** Replaces `relation` with the table `tmp` in one transaction. */
  async swapIn(session: AdapterSession, tmp: Relation, relation: Relation, after: StateStatement[] = []): Promise<void> {
    const existing = await this.relationKind(session, relation);
    const statements: Array<string | StateStatement> = [];
    if (existing) statements.push(this.dropSql(relation, existing));
    statements.push(this.renameSql(tmp, relation.name), ...after);
    await this.inTransaction(session, statements);
  }
}
