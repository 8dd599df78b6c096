// Postgres through `pg`: a pool sized by the target's threads, transactional
// DDL for atomic swaps (a table is built under a temporary name and swapped
// in within one transaction, dependent views recreated), COPY for seeds.
// Knows nothing of the project beyond its target settings.

import pg from 'pg';
import { RunError } from '../../core/errors.js';
import type { StateRecord } from '../../core/state/state.js';
import type { Adapter, AdapterCapabilities, AdapterSession, CatalogColumn, ColumnChange, ColumnDef, IncrementalChange, MaterializeResult, QueryResult, Relation, RelationKind, SeedOptions, StagedTable } from '../adapter.js';
import { dialectFor } from '../dialect.js';
import { SqlEngine } from '../sql-engine.js';
import { transaction } from '../transaction.js';
import { previewRows } from '../display.js';
import { connectionSettings, scrub, scrubError, type ConnectionSettings, type PostgresTarget } from './connection.js';
import { inferCsvShape, inferCsvShapeInWorker, type CsvShape } from './csv-types.js';
import { dependentViews, dropExistingSql, dropViewSql, existingRelation, recreateViewSql, type DependentView } from './dependents.js';
import { connectHint, errorText, isConnectionLost, isTransientPgError } from './errors.js';
import { copyCsv, copyCsvStream, copyFileProblem, createTableSql, seedColumns, type SeedColumn } from './seed.js';
import { SeedFileError } from '../seed-file.js';
import { PgSession, typeParsers } from './session.js';
import { LOCK_APPLICATION_NAME, SchemaLocks } from './lock.js';

export type { PostgresTarget } from './connection.js';

export interface PostgresAdapterOptions {
  /** Take the run lock of the target's schema in open() (commands that build; not show or debug). */
  lockTargetSchema?: boolean;
}

/** The advisory lock that serializes setting up a shared schema (keys: this and the schema name). */
const SHARED_SCHEMA_LOCK_NAMESPACE = 'etl meta setup';

/** Postgres truncates longer names silently; we refuse them instead. */
const MAX_NAME_BYTES = 63;

const noop = () => undefined;

/** Rows read to guess a seed's column types before the full read confirms them. */
const SEED_SAMPLE_ROWS = 20_000;

class SeedTypesChanged extends Error {}

export class PostgresAdapter extends SqlEngine implements Adapter {
  readonly dialect = dialectFor('postgres');
  readonly capabilities: AdapterCapabilities = { merge: true };
  private settings?: ConnectionSettings;
  /** The settings connections are made with (after sslmode=prefer chose TLS or not). */
  private clientConfig?: pg.ClientConfig;
  private pool?: pg.Pool;
  private locks?: SchemaLocks;
  private readonly busy = new Set<PgSession>();
  private readonly typeNames = new Map<number, string>();
  private interrupting = false;
  /** close() was called: an open() still under way stops at its next step. */
  private closed = false;
  /** The probe's connection while it connects, so that close() can cut it short. */
  private connectingClient?: pg.Client;

  constructor(
    private readonly target: PostgresTarget,
    private readonly projectRoot: string,
    private readonly options: PostgresAdapterOptions = {},
  ) {
    super();
  }

  async open(): Promise<void> {
    const settings = connectionSettings(this.target, this.projectRoot);
    this.settings = settings;
    let config = settings.config;
    let first: pg.Client;
    try {
      first = await this.probe(config);
    } catch (err) {
      // sslmode=prefer: a server without TLS gets a plain connection, as with libpq.
      if (settings.sslmode !== 'prefer' || !/does not support SSL/i.test(errorText(err))) throw this.connectError(err);
      config = { ...config, ssl: false };
      try {
        first = await this.probe(config);
      } catch (err2) {
        throw this.connectError(err2);
      }
    }
    if (this.closed) {
      await first.end().catch(noop);
      throw new RunError(`target ${this.target.name}: closed while connecting`);
    }
    this.clientConfig = config;
    const pool = new pg.Pool({ ...config, types: typeParsers, max: this.target.threads, idleTimeoutMillis: 30_000 });
    // An idle connection the server drops is removed by the pool; a busy one
    // reports through its running query. Either way, no unhandled 'error'.
    pool.on('error', noop);
    pool.on('connect', (client) => client.on('error', noop));
    this.pool = pool;
    // The first pooled connection is made while the lock is taken: the run's
    // first statements need it right after.
    pool.connect().then((c) => c.release(), noop);
    // The probe's connection becomes the one that holds the schema locks: one
    // connection fewer to set up per run. A read-only command takes no lock.
    if (!this.options.lockTargetSchema) void first.end().catch(noop);
    this.locks = new SchemaLocks(config, this.target.name, settings.secrets, this.options.lockTargetSchema ? first : undefined);
    if (this.options.lockTargetSchema) {
      // Before anything is written (target/, etl_meta, the schema): a second
      // run on this schema fails here and changes nothing, as a second run on
      // a DuckDB file does.
      try {
        await this.locks.acquire(this.target.schema);
      } catch (err) {
        await this.close();
        throw err;
      }
    }
  }

  /**
   * Connects and asks the server's version: proves the target is reachable.
   * Returns the connection, named for its later use: holding the schema locks.
   */
  private async probe(config: pg.ClientConfig): Promise<pg.Client> {
    const client = new pg.Client({ ...config, application_name: LOCK_APPLICATION_NAME });
    client.on('error', noop);
    this.connectingClient = client;
    try {
      await client.connect();
      const r = await client.query<{ v: string }>("select current_setting('server_version_num') as v");
      // MERGE arrived in Postgres 15.
      this.capabilities.merge = Number(r.rows[0]?.v) >= 150000;
      return client;
    } catch (err) {
      await client.end().catch(noop);
      throw err;
    } finally {
      this.connectingClient = undefined;
    }
  }

  private connectError(err: unknown): RunError {
    const s = this.settings!;
    const hint = connectHint(err, s.address);
    // The database or user name may be the password itself (it happens): scrub all of it.
    const message = `cannot connect to postgres target ${this.target.name} at ${s.address} (database ${s.database}, user ${s.user}): ${errorText(err)}${hint ? `\n  hint: ${hint}` : ''}`;
    return new RunError(scrub(message, s.secrets), 2);
  }

  /**
   * Also while open() is under way (a project found bad while the connection
   * was being made): a connect that is still waiting on the network is cut
   * short rather than waited for up to connect_timeout.
   */
  async close(): Promise<void> {
    this.closed = true;
    // A client still connecting waits for the server before end() completes:
    // its socket is destroyed instead (its connect() then fails, and open() with it).
    this.connectingClient?.connection.stream.destroy();
    const pool = this.pool;
    this.pool = undefined;
    // Each end waits for the server to close its session: side by side.
    await Promise.all([this.locks?.releaseAll(), pool?.end().catch(noop)]);
  }

  async withSession<T>(fn: (session: AdapterSession) => Promise<T>): Promise<T> {
    if (!this.pool) throw new Error('PostgresAdapter: open() was not called');
    this.locks?.assertHeld();
    const secrets = this.settings!.secrets;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw scrubError(err, secrets);
    }
    const pid = (client as unknown as { processID: number | null }).processID ?? 0;
    const session = new PgSession(client, pid, secrets, this.typeNames, () => this.locks?.assertHeld());
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
      if (!broken && session.sharedSchemaLock !== undefined) {
        await client.query('select pg_catalog.pg_advisory_unlock(hashtext($1), hashtext($2))', [SHARED_SCHEMA_LOCK_NAMESPACE, session.sharedSchemaLock]).catch((err: unknown) => (broken = err));
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

  override async ensureSchema(session: AdapterSession, schema: string, options?: { shared?: boolean }): Promise<void> {
    if (options?.shared) {
      // A shared schema (the state's) is used by every run on the database,
      // whatever schema it builds: holding a run lock on it would make two runs
      // into different schemas exclude each other. Its setup (the migrations,
      // and the run's first record) is serialized instead, by a lock this
      // session holds until the caller is done with it (see withSession): two
      // first runs on a fresh database would otherwise both create its tables.
      await session.query('select pg_catalog.pg_advisory_lock(hashtext($1), hashtext($2))', [SHARED_SCHEMA_LOCK_NAMESPACE, schema]);
      (session as PgSession).sharedSchemaLock = schema;
    } else {
      await this.locks?.acquire(schema);
    }
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
    checkName(relation);
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
    await transaction(session, async () => {
      const dependents = await this.dropWithDependents(session, relation);
      await session.execute(create);
      await this.recreateDependents(session, relation, dependents);
    });
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

  /**
   * New rows go in with explicit casts to the target's column types where the
   * staged type differs: Postgres converts on insert/update only where an
   * assignment cast exists (not text -> integer, say), DuckDB always tries.
   */
  override async applyIncremental(session: AdapterSession, change: IncrementalChange): Promise<{ rowsAffected: number }> {
    // A query source (microbatch) is the model itself: its types are the table's.
    if ('sql' in change.staged) return super.applyIncremental(session, change);
    const stagedTypes = new Map((await this.listColumns(session, change.staged)).map((c) => [c.name, c.type]));
    const targetTypes = new Map((await this.listColumns(session, change.target)).map((c) => [c.name, c.type]));
    for (const c of change.columnChanges) {
      if (c.kind === 'drop') targetTypes.delete(c.column);
      else targetTypes.set(c.column, c.type);
    }
    const casts = new Map<string, string>();
    for (const column of new Set([...change.columns, ...change.uniqueKey])) {
      const from = stagedTypes.get(column);
      const to = targetTypes.get(column);
      if (from && to && from !== to) casts.set(column, castTargetType(to));
    }
    return super.applyIncremental(session, casts.size ? ({ ...change, casts } as PgIncrementalChange) : change);
  }

  protected override newValueSql(change: IncrementalChange, column: string, qualifier?: string): string {
    const plain = super.newValueSql(change, column, qualifier);
    const type = (change as PgIncrementalChange).casts?.get(column);
    return type ? `cast(${plain} as ${type})` : plain;
  }

  /** Postgres before 15 has no MERGE: an update of the matched rows, then an insert of the others. */
  override incrementalSql(change: IncrementalChange): string[] {
    if (change.strategy !== 'merge' || this.capabilities.merge) return super.incrementalSql(change);
    const q = (c: string) => this.dialect.quoteIdentifier(c);
    const target = this.relationSql(change.target);
    const staged = 'sql' in change.staged ? `(\n${change.staged.sql}\n)` : this.relationSql(change.staged);
    const keyMatch = change.uniqueKey.map((k) => `etl_target.${q(k)} = ${this.newValueSql(change, k, 'etl_new')}`).join(' and ');
    const updates = change.columns.filter((c) => !change.uniqueKey.includes(c)).map((c) => `${q(c)} = ${this.newValueSql(change, c, 'etl_new')}`);
    const statements: string[] = [];
    if (updates.length) statements.push(`update ${target} as etl_target set ${updates.join(', ')} from ${staged} as etl_new where ${keyMatch}`);
    statements.push(
      `insert into ${target} (${change.columns.map(q).join(', ')}) select ${change.columns.map((c) => this.newValueSql(change, c, 'etl_new')).join(', ')} from ${staged} as etl_new ` +
        `where not exists (select 1 from ${target} as etl_target where ${keyMatch})`,
    );
    return statements;
  }

  async createTableAs(session: AdapterSession, relation: Relation, selectSql: string): Promise<number | undefined> {
    const r = await session.execute(`create table ${this.relationSql(relation)} as\n${selectSql}`);
    return r.rowsAffected;
  }

  /** Build, swap and recreate dependent views in one transaction: a failure anywhere changes nothing. */
  override async replaceTable(session: AdapterSession, relation: Relation, selectSql: string, state: StateRecord[] = []): Promise<MaterializeResult> {
    checkName(relation);
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
    checkName(relation);
    const tmp = this.tempRelation(relation);
    await session.execute(this.dropSql(tmp, 'table'));
    try {
      await session.execute(createTableSql(this.dialect, this.relationSql(tmp), columns));
      const rows = await copyCsvStream((session as PgSession).client, this.dialect, this.relationSql(tmp), columns, csv, { header: false });
      return { relation: tmp, rows };
    } catch (err) {
      await session.execute(this.dropSql(tmp, 'table')).catch(() => undefined);
      throw scrubError(err, this.settings!.secrets);
    }
  }

  async loadSeed(session: AdapterSession, relation: Relation, csvPath: string, options: SeedOptions): Promise<MaterializeResult> {
    try {
      return await this.loadSeedFile(session, relation, csvPath, options);
    } catch (err) {
      throw (await copyFileProblem(err, csvPath, options.path ?? csvPath)) ?? err;
    }
  }

  private async loadSeedFile(session: AdapterSession, relation: Relation, csvPath: string, options: SeedOptions): Promise<MaterializeResult> {
    checkName(relation);
    const infer = async (maxRows?: number) => {
      try {
        return maxRows === undefined ? await inferCsvShapeInWorker(csvPath, options.delimiter) : await inferCsvShape(csvPath, options.delimiter, { maxRows });
      } catch (err) {
        const at = /^line (\d+):? (.*)$/s.exec((err as Error).message);
        if (at) throw new SeedFileError(options.path ?? csvPath, Number(at[1]), at[2]!.replace(/^has /, 'the record has '));
        throw new Error(`${options.path ?? csvPath}: ${(err as Error).message}`, { cause: err });
      }
    };
    const columnsOf = (shape: CsvShape) => {
      try {
        return seedColumns(shape, options.columnTypes);
      } catch (err) {
        throw new Error(`${csvPath}: ${(err as Error).message}`, { cause: err });
      }
    };
    // Types from the first rows, checked by a full read of the file that runs
    // while Postgres copies it: the two take about as long, so a large seed
    // costs one of them rather than both. If the full read disagrees (a text
    // value in row 900,000), the copy is rolled back and done again.
    const sample = await infer(SEED_SAMPLE_ROWS);
    let shape: CsvShape = sample;
    if (!sample.complete) {
      const full = infer();
      full.catch(() => undefined); // awaited below on every path
      const agrees = (f: CsvShape) => f.types.every((t, i) => t === sample.types[i]) && !(f.blankLines > 0 && sample.blankLines === 0);
      try {
        const rows = await this.copySeed(session, relation, csvPath, columnsOf(sample), options, sample.blankLines > 0, async () => {
          if (!agrees(await full)) throw new SeedTypesChanged();
        });
        return { rowsAffected: rows, message: `INSERT ${rows}` };
      } catch (err) {
        const fullShape = await full;
        if (!(err instanceof SeedTypesChanged) && agrees(fullShape)) throw err;
        shape = fullShape;
      }
    }
    const rows = await this.copySeed(session, relation, csvPath, columnsOf(shape), options, shape.blankLines > 0);
    return { rowsAffected: rows, message: `INSERT ${rows}` };
  }

  /** Creates the staged table, COPYs the file into it and swaps it in, in one transaction. */
  private async copySeed(
    session: AdapterSession,
    relation: Relation,
    csvPath: string,
    columns: SeedColumn[],
    options: SeedOptions,
    skipBlankLines: boolean,
    beforeSwap?: () => Promise<void>,
  ): Promise<number> {
    const tmp = this.tempRelation(relation);
    const client = (session as PgSession).client;
    return transaction(session, async () => {
      await session.execute(this.dropSql(tmp, 'table'));
      await session.execute(createTableSql(this.dialect, this.relationSql(tmp), columns));
      let copied: number;
      try {
        copied = await copyCsv(client, this.dialect, this.relationSql(tmp), columns, csvPath, {
          delimiter: options.delimiter,
          skipBlankLines,
        });
      } catch (err) {
        throw scrubError(err, this.settings!.secrets);
      }
      if (beforeSwap) await beforeSwap();
      await this.swapInOpenTransaction(session, tmp, relation);
      return copied;
    });
  }

  preview(session: AdapterSession, selectSql: string, limit: number): Promise<QueryResult> {
    return previewRows(session, selectSql, limit);
  }

  protected override async swapInOpenTransaction(session: AdapterSession, tmp: Relation, relation: Relation): Promise<void> {
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

/** An incremental change with the casts the new rows need (column -> type). */
type PgIncrementalChange = IncrementalChange & { casts?: Map<string, string> };

/**
 * The type to cast new values to for a column of type `type`. A length-limited
 * character type is cast to text, so that the assignment still rejects a value
 * too long instead of an explicit cast cutting it short.
 */
function castTargetType(type: string): string {
  return /^(character varying|character|varchar|char|bpchar)\s*\(\s*\d+\s*\)$/i.test(type.trim()) ? 'text' : type;
}

function checkName(relation: Relation): void {
  for (const part of [relation.schema, relation.name]) {
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) {
      throw new Error(`"${part}" is longer than ${MAX_NAME_BYTES} bytes, the most Postgres allows in a name; set a shorter alias`);
    }
  }
}
