// A DuckDB session whose SQL may change Delta tables. Reads need nothing: a
// Delta table is a view. A statement that writes to one (insert, update,
// delete, alter: the SCD-2 snapshot's SQL, a user's hook) first turns the
// view into a DuckDB table holding the snapshot's rows; the statements of
// the transaction change that table, and the commit writes it back as one
// Delta commit (a full rewrite: correct for any SQL, though not file by
// file). A rollback, or a failed Delta commit, leaves the table as it was.

import type { QueryResult, SessionContext } from '../adapter.js';
import type { Relation } from '../adapter.js';
import { relationKeyOf, relationSql } from './lake.js';
import type { SqlSession } from './sql.js';
import type { StateRecord } from '../../core/state/state.js';
import type { AppliedCounts } from './state-store.js';

const IDENT = String.raw`(?:"(?:[^"]|"")*"|[A-Za-z_][\w$]*)`;
const WRITES = new RegExp(String.raw`^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from|alter\s+table|merge\s+into|truncate(?:\s+table)?)\s+(${IDENT})\s*\.\s*(${IDENT})`, 'i');

function unquote(id: string): string {
  return id.startsWith('"') ? id.slice(1, -1).replace(/""/g, '"') : id.toLowerCase();
}

/** The relation a statement writes to, if it is one of the DML/DDL forms above. */
export function writtenRelation(sql: string): Relation | undefined {
  const m = WRITES.exec(sql.replace(/^(\s*--[^\n]*\n)+/, ''));
  return m ? { schema: unquote(m[1]!), name: unquote(m[2]!) } : undefined;
}

/** State records written inside a transaction, committed with the table they describe. */
export interface PendingState {
  records: StateRecord[];
  applied: AppliedCounts;
}

export interface ShadowHost {
  isDeltaTable(r: Relation): boolean;
  /** The rows of the Delta table now, as a SELECT. */
  scanSql(session: SqlSession, r: Relation): Promise<string>;
  /** Writes the DuckDB table back as the Delta table's next version (with its state) and makes the name a view again. */
  writeBack(session: SqlSession, r: Relation, state: PendingState[], context: SessionContext | undefined): Promise<void>;
  /** Makes the name a view of the current Delta snapshot again. */
  restoreView(session: SqlSession, r: Relation): Promise<void>;
  /** Makes `"schema"."table@v12"` (or `@<timestamp>`) a view of that older snapshot. */
  versionView(session: SqlSession, view: Relation, table: Relation, at: { version: number } | { timestamp: string }): Promise<void>;
}

const VERSIONED = /"((?:[^"]|"")*)"\s*\.\s*"((?:[^"]|"")*)@(v\d+|\d{4}-\d\d-\d\dT[\d:.]+Z)"/g;

/** The older versions a statement reads (dialect.versionedRelation's names). */
export function versionedRelations(sql: string): Array<{ view: Relation; table: Relation; at: { version: number } | { timestamp: string } }> {
  const out = [];
  for (const m of sql.matchAll(VERSIONED)) {
    const schema = m[1]!.replace(/""/g, '"');
    const name = m[2]!.replace(/""/g, '"');
    const tag = m[3]!;
    out.push({ view: { schema, name: `${name}@${tag}` }, table: { schema, name }, at: tag.startsWith('v') ? { version: Number(tag.slice(1)) } : { timestamp: tag } });
  }
  return out;
}

export class DeltaSession implements SqlSession {
  private inTransaction = false;
  private readonly shadows = new Map<string, Relation>();
  private pending: PendingState[] = [];

  /** State records of the open transaction: they commit with the Delta table they name. */
  addState(records: StateRecord[], applied: AppliedCounts): void {
    this.pending.push({ records, applied });
  }

  constructor(
    readonly inner: SqlSession & { connection?: unknown },
    private readonly host: ShadowHost,
    /** Who works on this session (commitInfo's etlInvocationId and etlNodeId). */
    readonly context?: SessionContext,
  ) {}

  /** The DuckDB connection (preview reads through it). */
  get connection(): unknown {
    return this.inner.connection;
  }

  private async before(sql: string): Promise<'begin' | 'commit' | 'rollback' | undefined> {
    const word = sql.trim().replace(/;$/, '').toLowerCase();
    if (word === 'begin' || word === 'begin transaction') return 'begin';
    if (word === 'commit') return 'commit';
    if (word === 'rollback') return 'rollback';
    if (sql.includes('@')) for (const v of versionedRelations(sql)) await this.host.versionView(this.inner, v.view, v.table, v.at);
    const target = writtenRelation(sql);
    if (target && this.host.isDeltaTable(target) && !this.shadows.has(relationKeyOf(target))) {
      const scan = await this.host.scanSql(this.inner, target);
      await this.inner.execute(`drop view if exists ${relationSql(target)}`);
      await this.inner.execute(`create table ${relationSql(target)} as ${scan}`);
      this.shadows.set(relationKeyOf(target), target);
    }
    return undefined;
  }

  private async after(kind: 'begin' | 'commit' | 'rollback' | undefined, failed: boolean): Promise<void> {
    if (kind === 'begin') {
      this.inTransaction = true;
      return;
    }
    if (kind === 'rollback') {
      // DuckDB's rollback undid the shadow table and brought the view back.
      this.inTransaction = false;
      this.shadows.clear();
      this.pending = [];
      return;
    }
    if (kind === 'commit' || (!this.inTransaction && this.shadows.size)) {
      this.inTransaction = false;
      const shadows = [...this.shadows.values()];
      const pending = this.pending;
      this.shadows.clear();
      this.pending = [];
      if (failed) {
        for (const r of shadows) await this.host.restoreView(this.inner, r);
        return;
      }
      for (const [i, r] of shadows.entries()) {
        try {
          const state = pending.map((p) => ({ records: p.records.filter((x) => relationKeyOf(x.relation) === relationKeyOf(r)), applied: p.applied })).filter((p) => p.records.length);
          await this.host.writeBack(this.inner, r, state, this.context);
        } catch (err) {
          for (const rest of shadows.slice(i)) await this.host.restoreView(this.inner, rest).catch(() => undefined);
          throw err;
        }
      }
    }
  }

  /** Runs one statement on DuckDB with the shadowing around it. */
  private async run<T>(sql: string, statement: () => Promise<T>): Promise<T> {
    const kind = await this.before(sql);
    let result: T;
    try {
      result = await statement();
    } catch (err) {
      if (kind === 'commit' || kind === 'rollback') {
        // DuckDB rolled the transaction back, shadow tables included.
        this.inTransaction = false;
        this.shadows.clear();
        this.pending = [];
      } else if (!this.inTransaction) await this.after(undefined, true);
      throw err;
    }
    await this.after(kind, false);
    return result;
  }

  execute(sql: string, params?: unknown[]): Promise<{ rowsAffected?: number }> {
    return this.run(sql, () => this.inner.execute(sql, params));
  }

  query(sql: string, params?: unknown[]): Promise<QueryResult> {
    return this.run(sql, () => this.inner.query(sql, params));
  }
}
