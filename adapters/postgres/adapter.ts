// Postgres through `pg`: the composition of the modules that each own one
// part. connect.ts: the connections (probe, pool, schema locks, cancelling);
// swap.ts: replacing a relation in a transaction with its dependent views;
// seed.ts: seeds by COPY; merge.ts: new rows' casts and MERGE before 15;
// names are checked against the Dialect's limit. The SQL every engine shares
// is sql-engine.ts. Knows nothing of the project beyond its target settings.

import type { StateRecord } from '../../core/state/state.js';
import type { Adapter, AdapterCapabilities, AdapterSession, CatalogColumn, ColumnChange, ColumnDef, IncrementalChange, MaterializeResult, QueryResult, Relation, RelationKind, SeedOptions, StagedTable } from '../adapter.js';
import { dialectFor, nameTooLong } from '../dialect.js';
import { previewRows } from '../display.js';
import { SqlEngine } from '../sql-engine.js';
import { transaction } from '../transaction.js';
import { PgConnections } from './connect.js';
import { scrubError, type PostgresTarget } from './connection.js';
import { existingRelation } from './dependents.js';
import { isTransientPgError } from './errors.js';
import { castNewValue, mergeWithoutMerge, withCasts } from './merge.js';
import { copyCsvStream, createTableSql, loadSeedCsv } from './seed.js';
import type { PgSession } from './session.js';
import { replaceWithDependents } from './swap.js';

export type { PostgresTarget } from './connection.js';

export interface PostgresAdapterOptions {
  /** Take the run lock of the target's schema in open() (commands that build; not show or debug). */
  lockTargetSchema?: boolean;
}

/** MERGE arrived in Postgres 15 (server_version_num). */
const MERGE_SINCE = 150000;

export class PostgresAdapter extends SqlEngine implements Adapter {
  readonly dialect = dialectFor('postgres');
  readonly capabilities: AdapterCapabilities = { merge: true };
  private readonly connections: PgConnections;

  constructor(target: PostgresTarget, projectRoot: string, options: PostgresAdapterOptions = {}) {
    super();
    this.connections = new PgConnections(target, projectRoot, options.lockTargetSchema ?? false);
  }

  async open(): Promise<void> {
    await this.connections.open();
    this.capabilities.merge = this.connections.serverVersion >= MERGE_SINCE;
  }

  /** Also while open() is under way: a connect still waiting on the network is cut short. */
  close(): Promise<void> {
    return this.connections.close();
  }

  withSession<T>(fn: (session: AdapterSession) => Promise<T>): Promise<T> {
    return this.connections.withSession(fn);
  }

  interruptAll(): void {
    void this.cancelRunning();
  }

  /** Cancels the statement running on every busy connection. */
  cancelRunning(): Promise<void> {
    return this.connections.cancelRunning();
  }

  isTransient(err: unknown): boolean {
    return isTransientPgError(err);
  }

  override async ensureSchema(session: AdapterSession, schema: string, options?: { shared?: boolean }): Promise<void> {
    if (options?.shared) await this.connections.lockSharedSchema(session as PgSession, schema);
    else await this.connections.lockSchema(schema);
    // Postgres checks the CREATE privilege before IF NOT EXISTS: a user who may
    // only write into an existing schema must not be asked to create it.
    const exists = await session.query('select 1 from pg_catalog.pg_namespace where nspname = $1', [schema]);
    if (exists.rows.length) return;
    try {
      await session.execute(`create schema if not exists ${this.dialect.quoteIdentifier(schema)}`);
    } catch (err) {
      // Two runs creating the same schema at once: the loser sees a unique violation.
      if ((err as { code?: string }).code !== '23505') throw err;
    }
  }

  async relationKind(session: AdapterSession, relation: Relation): Promise<RelationKind | undefined> {
    const existing = await existingRelation(session, relation);
    if (!existing) return undefined;
    return existing.relkind === 'v' || existing.relkind === 'm' ? 'view' : 'table';
  }

  /** pg_catalog rather than information_schema: format_type keeps precision and length (numeric(16,2), varchar(10)). */
  override async catalogColumns(session: AdapterSession, schemas: string[]): Promise<CatalogColumn[]> {
    if (!schemas.length) return [];
    const result = await session.query(
      `select n.nspname::text, c.relname::text, c.relkind::text, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnum::int
         from pg_catalog.pg_attribute a
         join pg_catalog.pg_class c on c.oid = a.attrelid
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'p', 'f') and a.attnum > 0 and not a.attisdropped
        order by 1, 2, a.attnum`,
      [schemas],
    );
    return result.rows.map((r) => ({ schema: String(r[0]), table: String(r[1]), kind: r[2] === 'v' || r[2] === 'm' ? 'view' : 'table', column: String(r[3]), type: String(r[4]), index: Number(r[5]) }));
  }

  async listColumns(session: AdapterSession, relation: Relation): Promise<ColumnDef[]> {
    const result = await session.query(
      `select a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
         from pg_catalog.pg_attribute a
         join pg_catalog.pg_class c on c.oid = a.attrelid
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
        order by a.attnum`,
      [relation.schema, relation.name],
    );
    return result.rows.map((r) => ({ name: String(r[0]), type: String(r[1]) }));
  }

  override async replaceView(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult> {
    this.checkName(relation);
    const create = `create or replace view ${this.relationSql(relation)} as\n${selectSql}`;
    // The common case is one statement: no lookup first.
    try {
      await session.execute(create);
      return { message: 'CREATE VIEW' };
    } catch (err) {
      // CREATE OR REPLACE only appends columns; a view whose columns were
      // renamed, removed or retyped (42P16, 42804), or a table of that name
      // (42809, not a view), must be dropped and created again.
      const code = (err as { code?: string }).code;
      if (code !== '42P16' && code !== '42804' && code !== '42809') throw err;
      if (!(await existingRelation(session, relation))) throw err;
    }
    await transaction(session, () => replaceWithDependents(session, this.dialect, relation, () => session.execute(create)));
    return { message: 'CREATE VIEW' };
  }

  /**
   * Postgres converts a column's values to the new type only where an
   * assignment cast exists (integer -> bigint, not text -> integer); `using`
   * asks for the explicit cast, as DuckDB does implicitly.
   */
  override columnChangeSql(target: Relation, change: ColumnChange): string {
    if (change.kind !== 'alter_type') return super.columnChangeSql(target, change);
    const col = this.dialect.quoteIdentifier(change.column);
    return `alter table ${this.relationSql(target)} alter column ${col} type ${change.type} using cast(${col} as ${change.type})`;
  }

  /** New rows go in with explicit casts where their type differs from the target's (merge.ts). */
  override async applyIncremental(session: AdapterSession, change: IncrementalChange): Promise<{ rowsAffected: number }> {
    return super.applyIncremental(session, await withCasts(session, change, (s, r) => this.listColumns(s, r)));
  }

  protected override newValueSql(change: IncrementalChange, column: string, qualifier?: string): string {
    return castNewValue(change, column, super.newValueSql(change, column, qualifier));
  }

  override incrementalSql(change: IncrementalChange): string[] {
    if (change.strategy !== 'merge' || this.capabilities.merge) return super.incrementalSql(change);
    return mergeWithoutMerge(change, {
      relation: (r) => this.relationSql(r),
      quote: (c) => this.dialect.quoteIdentifier(c),
      newValue: (c, qualifier) => this.newValueSql(change, c, qualifier),
    });
  }

  async createTableAs(session: AdapterSession, relation: Relation, selectSql: string): Promise<number | undefined> {
    const r = await session.execute(`create table ${this.relationSql(relation)} as\n${selectSql}`);
    return r.rowsAffected;
  }

  /** Build, swap and recreate dependent views in one transaction: a failure anywhere changes nothing. */
  override async replaceTable(session: AdapterSession, relation: Relation, selectSql: string, state: StateRecord[] = []): Promise<MaterializeResult> {
    this.checkName(relation);
    const tmp = this.tempRelation(relation);
    const rows = await transaction(session, async () => {
      await session.execute(this.dropSql(tmp, 'table'));
      const count = await this.createTableAs(session, tmp, selectSql);
      await this.swapInOpenTransaction(session, tmp, relation);
      await this.state.writeInTransaction(session, state);
      return count;
    });
    return { rowsAffected: rows, message: `CREATE TABLE (${rows ?? '?'} rows)` };
  }

  /** COPY ... FROM STDIN into a new table beside the target: the server reads the stream as it comes. */
  async stageCsv(session: AdapterSession, relation: Relation, columns: ColumnDef[], csv: NodeJS.ReadableStream): Promise<StagedTable> {
    this.checkName(relation);
    const tmp = this.tempRelation(relation);
    await session.execute(this.dropSql(tmp, 'table'));
    try {
      await session.execute(createTableSql(this.dialect, this.relationSql(tmp), columns));
      const rows = await copyCsvStream((session as PgSession).client, this.dialect, this.relationSql(tmp), columns, csv, { header: false });
      return { relation: tmp, rows };
    } catch (err) {
      await session.execute(this.dropSql(tmp, 'table')).catch(() => undefined);
      throw scrubError(err, this.connections.secrets as string[]);
    }
  }

  async loadSeed(session: AdapterSession, relation: Relation, csvPath: string, options: SeedOptions): Promise<MaterializeResult> {
    this.checkName(relation);
    const staged = this.tempRelation(relation);
    const load = { dialect: this.dialect, staged, swap: (s: PgSession) => this.swapInOpenTransaction(s, staged, relation), secrets: this.connections.secrets };
    return loadSeedCsv(load, session as PgSession, csvPath, options);
  }

  preview(session: AdapterSession, selectSql: string, limit: number): Promise<QueryResult> {
    return previewRows(session, selectSql, limit);
  }

  /** The dependent views of `relation` are dropped before and recreated after (swap.ts). */
  protected override swapInOpenTransaction(session: AdapterSession, tmp: Relation, relation: Relation): Promise<void> {
    return replaceWithDependents(session, this.dialect, relation, () => session.execute(this.renameSql(tmp, relation.name)));
  }

  /** Postgres truncates a longer name silently; it is refused instead. */
  private checkName(relation: Relation): void {
    for (const part of [relation.schema, relation.name]) {
      const problem = nameTooLong(this.dialect, part);
      if (problem) throw new Error(problem);
    }
  }
}
