// Postgres through `pg`: a pool sized by the target's threads, transactional
// DDL for atomic swaps (a table is built under a temporary name and swapped
// in within one transaction, dependent views recreated), COPY for seeds.
// Knows nothing of the project beyond its target settings.

import { createHash } from 'node:crypto';
import pg from 'pg';
import { RunError } from '../../core/errors.js';
import type { Adapter, AdapterCapabilities, AdapterSession, ColumnDef, MaterializeResult, QueryResult, Relation, RelationKind, SeedOptions } from '../adapter.js';
import { dialectFor } from '../dialect.js';
import { SqlEngine, TEMP_SUFFIX } from '../sql-engine.js';
import { connectionSettings, scrub, scrubError, type ConnectionSettings, type PostgresTarget } from './connection.js';
import { inferCsvShape, type CsvShape } from './csv-types.js';
import { dependentViews, dropExistingSql, dropViewSql, existingRelation, recreateViewSql, type DependentView } from './dependents.js';
import { connectHint, errorText, isConnectionLost, isTransientPgError } from './errors.js';
import { copyCsv, createTableSql, seedColumns, type SeedColumn } from './seed.js';
import { PgSession, typeParsers } from './session.js';
import { SchemaLocks } from './lock.js';

export type { PostgresTarget } from './connection.js';

/** Postgres truncates longer names silently; we refuse them instead. */
const MAX_NAME_BYTES = 63;

const noop = () => undefined;

export class PostgresAdapter extends SqlEngine implements Adapter {
  readonly dialect = dialectFor('postgres');
  readonly capabilities: AdapterCapabilities = { transactionalDdl: true, merge: true, concurrentWrites: true };
  private settings?: ConnectionSettings;
  /** The settings connections are made with (after sslmode=prefer chose TLS or not). */
  private clientConfig?: pg.ClientConfig;
  private pool?: pg.Pool;
  private locks?: SchemaLocks;
  private readonly busy = new Set<PgSession>();
  private readonly typeNames = new Map<number, string>();
  private interrupting = false;

  constructor(
    private readonly target: PostgresTarget,
    private readonly projectRoot: string,
  ) {
    super();
  }

  async open(): Promise<void> {
    const settings = connectionSettings(this.target, this.projectRoot);
    this.settings = settings;
    let config = settings.config;
    try {
      await this.probe(config);
    } catch (err) {
      // sslmode=prefer: a server without TLS gets a plain connection, as with libpq.
      if (settings.sslmode !== 'prefer' || !/does not support SSL/i.test(errorText(err))) throw this.connectError(err);
      config = { ...config, ssl: false };
      try {
        await this.probe(config);
      } catch (err2) {
        throw this.connectError(err2);
      }
    }
    this.clientConfig = config;
    const pool = new pg.Pool({ ...config, types: typeParsers, max: this.target.threads, idleTimeoutMillis: 30_000 });
    // An idle connection the server drops is removed by the pool; a busy one
    // reports through its running query. Either way, no unhandled 'error'.
    pool.on('error', noop);
    pool.on('connect', (client) => client.on('error', noop));
    this.pool = pool;
    this.locks = new SchemaLocks(config, this.target.name, settings.secrets);
  }

  /** Connects once and asks the server's version: proves the target is reachable. */
  private async probe(config: pg.ClientConfig): Promise<void> {
    const client = new pg.Client(config);
    client.on('error', noop);
    try {
      await client.connect();
      const r = await client.query<{ v: string }>("select current_setting('server_version_num') as v");
      // MERGE arrived in Postgres 15.
      this.capabilities.merge = Number(r.rows[0]?.v) >= 150000;
    } finally {
      await client.end().catch(noop);
    }
  }

  private connectError(err: unknown): RunError {
    const s = this.settings!;
    const hint = connectHint(err, s.address);
    // The database or user name may be the password itself (it happens): scrub all of it.
    const message = `cannot connect to postgres target ${this.target.name} at ${s.address} (database ${s.database}, user ${s.user}): ${errorText(err)}${hint ? `\n  hint: ${hint}` : ''}`;
    return new RunError(scrub(message, s.secrets), 2);
  }

  async close(): Promise<void> {
    await this.locks?.releaseAll();
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end().catch(noop);
  }

  async withSession<T>(fn: (session: AdapterSession) => Promise<T>): Promise<T> {
    if (!this.pool) throw new Error('PostgresAdapter: open() was not called');
    const secrets = this.settings!.secrets;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw scrubError(err, secrets);
    }
    const pid = (client as unknown as { processID: number | null }).processID ?? 0;
    const session = new PgSession(client, pid, secrets, this.typeNames);
    this.busy.add(session);
    let broken: unknown;
    try {
      return await fn(session);
    } catch (err) {
      if (isConnectionLost(err)) broken = err;
      if (this.interrupting && (err as { code?: string })?.code === '57014') (err as Error).message = `interrupted: ${(err as Error).message}`;
      throw err;
    } finally {
      this.busy.delete(session);
      if (!broken && session.inTransaction()) {
        // Never hand the next caller a connection in the middle of a transaction.
        await client.query('rollback').catch((err: unknown) => (broken = err));
      }
      // release(err) destroys the client: a dropped connection is never reused.
      client.release(broken ? (broken as Error) : undefined);
    }
  }

  interruptAll(): void {
    void this.cancelRunning();
  }

  /** Cancels the statement running on every busy connection (pg_cancel_backend over a separate connection). */
  async cancelRunning(): Promise<void> {
    const pids = [...this.busy].map((s) => s.pid).filter((pid) => pid > 0);
    if (!pids.length || !this.clientConfig) return;
    this.interrupting = true;
    const client = new pg.Client(this.clientConfig);
    client.on('error', noop);
    try {
      await client.connect();
      await client.query('select pg_catalog.pg_cancel_backend(pid) from unnest($1::int[]) as pid', [pids]);
    } catch {
      // best effort: the run is stopping anyway
    } finally {
      await client.end().catch(noop);
    }
  }

  isTransient(err: unknown): boolean {
    return isTransientPgError(err);
  }

  override async ensureSchema(session: AdapterSession, schema: string): Promise<void> {
    await this.locks?.acquire(schema);
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

  /** Long names get a hashed temporary name, so the temporary never collides with the relation itself. */
  override tempRelation(r: Relation): Relation {
    const plain = `${r.name}${TEMP_SUFFIX}`;
    if (Buffer.byteLength(plain) <= MAX_NAME_BYTES) return { schema: r.schema, name: plain };
    const hash = createHash('sha1').update(r.name).digest('hex').slice(0, 8);
    let base = r.name;
    while (Buffer.byteLength(`${base}_${hash}${TEMP_SUFFIX}`) > MAX_NAME_BYTES) base = base.slice(0, -1);
    return { schema: r.schema, name: `${base}_${hash}${TEMP_SUFFIX}` };
  }

  override async replaceView(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult> {
    checkName(relation);
    const create = `create or replace view ${this.relationSql(relation)} as\n${selectSql}`;
    const existing = await existingRelation(session, relation);
    if (!existing || existing.relkind === 'v') {
      try {
        await session.execute(create);
        return { message: 'CREATE VIEW' };
      } catch (err) {
        // CREATE OR REPLACE only appends columns; a view whose columns were
        // renamed, removed or retyped must be dropped and created again.
        const code = (err as { code?: string }).code;
        if (!existing || (code !== '42P16' && code !== '42804')) throw err;
      }
    }
    await this.transaction(session, async () => {
      const dependents = await this.dropWithDependents(session, relation);
      await session.execute(create);
      await this.recreateDependents(session, relation, dependents);
    });
    return { message: 'CREATE VIEW' };
  }

  async createTableAs(session: AdapterSession, relation: Relation, selectSql: string): Promise<number | undefined> {
    const r = await session.execute(`create table ${this.relationSql(relation)} as\n${selectSql}`);
    return r.rowsAffected;
  }

  /** Build, swap and recreate dependent views in one transaction: a failure anywhere changes nothing. */
  override async replaceTable(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult> {
    checkName(relation);
    const tmp = this.tempRelation(relation);
    const rows = await this.transaction(session, async () => {
      await session.execute(this.dropSql(tmp, 'table'));
      const count = await this.createTableAs(session, tmp, selectSql);
      await this.swapInOpenTransaction(session, tmp, relation);
      return count;
    });
    return { rowsAffected: rows, message: `CREATE TABLE (${rows ?? '?'} rows)` };
  }

  override async swapIn(session: AdapterSession, tmp: Relation, relation: Relation): Promise<void> {
    await this.transaction(session, () => this.swapInOpenTransaction(session, tmp, relation));
  }

  async loadSeed(session: AdapterSession, relation: Relation, csvPath: string, options: SeedOptions): Promise<MaterializeResult> {
    checkName(relation);
    let shape: CsvShape;
    let columns: SeedColumn[];
    try {
      shape = await inferCsvShape(csvPath, options.delimiter);
      columns = seedColumns(shape, options.columnTypes);
    } catch (err) {
      throw new Error(`${csvPath}: ${(err as Error).message}`, { cause: err });
    }
    const tmp = this.tempRelation(relation);
    const client = (session as PgSession).client;
    const rows = await this.transaction(session, async () => {
      await session.execute(this.dropSql(tmp, 'table'));
      await session.execute(createTableSql(this.dialect, this.relationSql(tmp), columns));
      let copied: number;
      try {
        copied = await copyCsv(client, this.dialect, this.relationSql(tmp), columns, csvPath, {
          delimiter: options.delimiter,
          skipBlankLines: shape.blankLines > 0,
        });
      } catch (err) {
        throw scrubError(err, this.settings!.secrets);
      }
      await this.swapInOpenTransaction(session, tmp, relation);
      return copied;
    });
    return { rowsAffected: rows, message: `INSERT ${rows}` };
  }

  async preview(session: AdapterSession, selectSql: string, limit: number): Promise<QueryResult> {
    const body = selectSql.trim().replace(/;\s*$/, '');
    const r = await session.query(`select * from (\n${body}\n) as __etl_preview limit ${Math.max(0, Math.floor(limit))}`);
    return { ...r, rows: r.rows.map((row) => (row as unknown[]).map(displayValue)) };
  }

  /** Runs `fn` between begin and commit; rolls back and rethrows on failure. */
  private async transaction<T>(session: AdapterSession, fn: () => Promise<T>): Promise<T> {
    await session.execute('begin');
    try {
      const result = await fn();
      await session.execute('commit');
      return result;
    } catch (err) {
      // On a dead connection the rollback fails too; the server already rolled back.
      await session.execute('rollback').catch(noop);
      throw err;
    }
  }

  private async swapInOpenTransaction(session: AdapterSession, tmp: Relation, relation: Relation): Promise<void> {
    const dependents = await this.dropWithDependents(session, relation);
    await session.execute(this.renameSql(tmp, relation.name));
    await this.recreateDependents(session, relation, dependents);
  }

  /** Drops `relation` (if there) and the views that depend on it; returns those views, to recreate. */
  private async dropWithDependents(session: AdapterSession, relation: Relation): Promise<DependentView[]> {
    const existing = await existingRelation(session, relation);
    if (!existing) return [];
    const dependents = await dependentViews(session, existing.oid);
    try {
      for (const v of [...dependents].reverse()) await session.execute(dropViewSql(this.dialect, v));
      await session.execute(dropExistingSql(this.dialect, relation, existing.relkind));
    } catch (err) {
      const e = err as { code?: string; message: string; detail?: string };
      if (e.code !== '2BP01') throw err;
      throw new Error(
        `cannot replace ${this.relationSql(relation)}: ${e.message}${e.detail ? `\n${e.detail}` : ''}\n  hint: views are recreated automatically, but other dependent objects (foreign keys, functions) must be dropped first`,
        { cause: err },
      );
    }
    return dependents;
  }

  private async recreateDependents(session: AdapterSession, relation: Relation, views: DependentView[]): Promise<void> {
    for (const v of views) {
      for (const sql of recreateViewSql(this.dialect, v)) {
        try {
          await session.execute(sql);
        } catch (err) {
          const name = this.dialect.relation(v.schema, v.name);
          throw new Error(
            `cannot replace ${this.relationSql(relation)}: the ${v.materialized ? 'materialized view' : 'view'} ${name} depends on it and does not work with the new version: ${(err as Error).message}\n  hint: change ${name} to fit (or drop it) and run again; nothing was changed`,
            { cause: err },
          );
        }
      }
    }
  }
}

function checkName(relation: Relation): void {
  for (const part of [relation.schema, relation.name]) {
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) {
      throw new Error(`"${part}" is longer than ${MAX_NAME_BYTES} bytes, the most Postgres allows in a name; set a shorter alias`);
    }
  }
}

/** Values as a person reads them: no Buffers, no objects. */
function displayValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'object') return JSON.stringify(v);
  return v;
}
