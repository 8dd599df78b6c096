// DuckDB, embedded through @duckdb/node-api: a database file or :memory:.
// One instance per run, one connection per thread. DuckDB's DDL is
// transactional, so the shared tmp-then-swap table build is atomic here.

import path from 'node:path';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { duckdb, type DuckDBConnection, type DuckDBInstance } from './driver.js';
import { RunError } from '../../core/errors.js';
import type { Adapter, AdapterCapabilities, AdapterSession, BoundedMemoryOptions, ColumnDef, IncrementalChange, MaterializeResult, PublishExtras, QueryResult, Relation, RelationKind, SeedOptions, StagedTable, StageOptions } from '../adapter.js';
import { dialectFor } from '../dialect.js';
import { loadCsvInChunks } from './csv-chunks.js';
import { loadCsvThroughFifo, makeFifo, readHead } from './csv-fifo.js';
import { checkSeedSql, seedCsvOptions, seedFileProblem } from './seed.js';
import { SqlEngine } from '../sql-engine.js';
import { transaction } from '../transaction.js';
import { ConnectionPool } from '../pool.js';
import { traceSql } from '../trace.js';
import { displayValue, previewSql } from '../display.js';

/** A CSV stream that ends within this is loaded from one file (stageCsv): no FIFO to make, nothing to overlap. */
const SMALL_STREAM_BYTES = 4 * 1024 * 1024;
/** How much CSV read_csv reads at a time when a stream is loaded from chunk files (stageCsv without a FIFO). */
const CSV_CHUNK_BYTES = 16 * 1024 * 1024;
/** read_csv's buffer (one per thread at work, in the buffer pool): 4 of them per chunk, so a chunk is read on 4 threads. */
const CSV_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * DuckDB's buffer pool during a load (withBoundedMemory), in MB: 64, or 8 per
 * DuckDB thread where there are more than 8 (each reads a CSV_BUFFER_BYTES
 * buffer at a time, and a smaller pool fails to allocate them; 32 MB failed
 * on 2 threads).
 */
const LOAD_MEMORY_MB = 64;
const LOAD_MEMORY_MB_PER_THREAD = 8;
/** What a delete may pin per row of its table (withBoundedMemory): a 2048-row vector's versions, 8 bytes each. */
const DELETE_BYTES_PER_ROW = 8;

/** DuckDB's catalog of temporary tables (one per connection). */
const TEMP_CATALOG = 'temp';

export interface DuckDbTarget {
  name: string;
  path?: string;
  threads: number;
  settings?: Record<string, string | number | boolean>;
}

class DuckDbSession implements AdapterSession {
  constructor(readonly connection: DuckDBConnection) {}

  async execute(sql: string, params?: unknown[]): Promise<{ rowsAffected?: number }> {
    const t0 = performance.now();
    const result = await this.connection.run(sql, params as never);
    traceSql(sql, t0);
    return { rowsAffected: result.rowsChanged };
  }

  async query(sql: string, params?: unknown[]): Promise<QueryResult> {
    const t0 = performance.now();
    const reader = await this.connection.runAndReadAll(sql, params as never);
    traceSql(sql, t0);
    return {
      columns: reader.columnNames(),
      types: reader.columnTypes().map((t) => t.toString()),
      rows: reader.getRowsJS() as unknown[][],
    };
  }
}

export class DuckDbAdapter extends SqlEngine implements Adapter {
  readonly dialect = dialectFor('duckdb');
  readonly capabilities: AdapterCapabilities = { merge: true };
  readonly boundsMerges = true;
  private instance?: DuckDBInstance;
  private pool?: ConnectionPool<DuckDbSession>;
  readonly databasePath: string;

  constructor(
    private readonly target: DuckDbTarget,
    projectRoot: string,
    private readonly options: { readOnly?: boolean } = {},
  ) {
    super();
    const p = target.path ?? ':memory:';
    this.databasePath = p === ':memory:' ? p : path.resolve(projectRoot, p);
  }

  async open(): Promise<void> {
    if (this.options.readOnly && this.databasePath !== ':memory:' && !existsSync(this.databasePath)) {
      throw new RunError(`target ${this.target.name} has not been built yet: ${this.databasePath} does not exist\n  hint: run etl build (or etl seed / etl run) first`, 1);
    }
    if (this.databasePath !== ':memory:') mkdirSync(path.dirname(this.databasePath), { recursive: true });
    const options: Record<string, string> = {};
    if (this.options.readOnly && this.databasePath !== ':memory:') options.access_mode = 'READ_ONLY';
    for (const [k, v] of Object.entries(this.target.settings ?? {})) options[k] = String(v);
    try {
      this.instance = await duckdb.DuckDBInstance.create(this.databasePath, options);
    } catch (err) {
      const message = (err as Error).message;
      const lock = /Conflicting lock is held in .*\(PID (\d+)\)/.exec(message);
      if (lock) {
        throw new RunError(
          `target ${this.target.name} is locked by pid ${lock[1]}: another process has ${this.databasePath} open\n  hint: wait for it to finish (or stop it), then run again`,
          1,
        );
      }
      throw new RunError(`cannot open DuckDB database ${this.databasePath} for target ${this.target.name}: ${message}`, 2);
    }
    const instance = this.instance;
    this.pool = new ConnectionPool(this.target.threads, async () => new DuckDbSession(await instance.connect()), (s) => s.connection.closeSync());
  }

  async close(): Promise<void> {
    // Closing checkpoints what is still in the WAL; after a load that is bounded too, as the load was.
    // With the largest allowance a merge of the run had for its deletes: the versions of the rows it deleted are
    // pinned until this checkpoint, and a bound below them fails (after ~20 ms of trying to evict, at 10M rows).
    if (this.bounded.used && this.target.settings?.memory_limit === undefined && this.pool) {
      await this.withSession((session) => session.execute(`set global memory_limit = '${this.bounded.limitMb + this.bounded.closeDeleteMb}MB'`)).catch(() => undefined);
    }
    this.pool?.closeAll();
    this.pool = undefined;
    this.instance?.closeSync();
    this.instance = undefined;
  }

  withSession<T>(fn: (session: AdapterSession) => Promise<T>): Promise<T> {
    if (!this.pool) throw new Error('DuckDbAdapter: open() was not called');
    return this.pool.use(fn);
  }

  interruptAll(): void {
    this.pool?.forEachBusy((s) => s.connection.interrupt());
  }

  isTransient(err: unknown): boolean {
    // Concurrent catalog writes from our own threads can conflict, and a transaction can
    // lose a race with another (TransactionContext: Conflict); a retry succeeds. The
    // database file held by another process is not transient: it is held for a whole run.
    return /write-write conflict|Catalog write-write|TransactionContext Error: Conflict/i.test((err as Error)?.message ?? '');
  }

  /**
   * Relations per schema, read once per run and kept up to date by our own
   * DDL: DuckDB's catalog is slow to query once per node, and the
   * file lock means no other process changes the catalog during a run.
   * Keyed in lower case, as DuckDB's names are case-insensitive: a model
   * renamed from Orders.sql to orders.sql is the same relation.
   */
  private readonly relations = new Map<string, Promise<Map<string, RelationKind>>>();
  /** The tables' estimated rows when their schema was first read (a merge's memory allowance, withBoundedMemory). */
  private readonly startSizes = new Map<string, number>();

  async relationKind(session: AdapterSession, relation: Relation): Promise<RelationKind | undefined> {
    const schemaKey = relation.schema.toLowerCase();
    let known = this.relations.get(schemaKey);
    if (!known) {
      known = session
        .query(
          `select table_name, 'table', estimated_size from duckdb_tables() where database_name = current_database() and lower(schema_name) = lower($1)
           union all select view_name, 'view', null from duckdb_views() where database_name = current_database() and lower(schema_name) = lower($1) and not internal`,
          [relation.schema],
        )
        .then((r) => {
          for (const row of r.rows) if (row[2] !== null) this.startSizes.set(`${schemaKey}.${String(row[0]).toLowerCase()}`, Number(row[2]));
          return new Map(r.rows.map((row) => [String(row[0]).toLowerCase(), row[1] === 'view' ? ('view' as const) : ('table' as const)]));
        });
      this.relations.set(schemaKey, known);
      known.catch(() => this.relations.delete(schemaKey));
    }
    return (await known).get(relation.name.toLowerCase());
  }

  private async noteRelation(relation: Relation, kind: RelationKind): Promise<void> {
    const known = this.relations.get(relation.schema.toLowerCase());
    if (known) (await known).set(relation.name.toLowerCase(), kind);
  }

  override async replaceView(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult> {
    const result = await super.replaceView(session, relation, selectSql);
    await this.noteRelation(relation, 'view');
    return result;
  }

  override async publishTable(session: AdapterSession, staged: StagedTable, relation: Relation, extras?: PublishExtras): Promise<void> {
    await super.publishTable(session, staged, relation, extras);
    await this.noteRelation(relation, 'table');
    if (extras?.moveRows) await this.noteRelation(extras.moveRows.into, 'table');
  }

  /**
   * DuckDB rewrites a row group for every row it updates in place, so a merge
   * that changes 1% of rows spread over a large table costs far more as MERGE
   * than as a delete of the matched keys plus an insert. Both run in the one
   * transaction of applyIncremental, so the result is the same.
   */
  override incrementalSql(change: IncrementalChange): string[] {
    if (change.strategy !== 'merge') return super.incrementalSql(change);
    return super.incrementalSql({ ...change, strategy: 'delete+insert' });
  }

  /**
   * Rows an incremental run stages are read once and dropped: a temporary
   * table keeps them off the database file and its WAL (~20-45 ms of a 150k
   * row stage on the benchmark). "temp"."x" names DuckDB's temporary catalog,
   * unless the project itself has a schema called temp: then the stage is a
   * plain table, as for other engines. The names of the temporary tables
   * made (createTableAs) tell listColumns which catalog to read.
   */
  private readonly transientStaged = new Set<string>();

  protected override stagedRelation(relation: Relation, options?: StageOptions): { relation: Relation; temporary: boolean } {
    if (!options?.transient || relation.schema === TEMP_CATALOG) return super.stagedRelation(relation);
    return { relation: { schema: TEMP_CATALOG, name: this.tempRelation(relation).name }, temporary: true };
  }

  override async discardStaged(session: AdapterSession, staged: StagedTable): Promise<void> {
    await super.discardStaged(session, staged);
    if (staged.relation.schema === TEMP_CATALOG) this.transientStaged.delete(staged.relation.name);
  }

  /**
   * A relation known to be there (a temporary table we made, or one in the
   * catalog read at the start of the run) is read with pragma_table_info,
   * which reads just it: duckdb_columns() lists every column of every table
   * first (its first call in a process ~40-70 ms on a busy machine, on an
   * incremental run's path). Others, and one gone since, through
   * duckdb_columns() (an absent relation has no columns), rather than the
   * information_schema view over it: the view's first query in a process
   * costs ~20 ms of binding, on every run.
   */
  async listColumns(session: AdapterSession, relation: Relation): Promise<ColumnDef[]> {
    const transient = relation.schema === TEMP_CATALOG && this.transientStaged.has(relation.name);
    if (transient || (await this.relationKind(session, relation))) {
      const name = transient ? `${TEMP_CATALOG}.main.${this.dialect.quoteIdentifier(relation.name)}` : this.relationSql(relation);
      const result = await session.query(`select name, type from pragma_table_info(${this.dialect.quoteString(name)}) order by cid`).catch((err: unknown) => {
        if (transient) throw err;
        return undefined;
      });
      if (result) return result.rows.map((r) => ({ name: String(r[0]), type: String(r[1]) }));
    }
    const result = await session.query(
      'select column_name, data_type from duckdb_columns() where database_name = current_database() and lower(schema_name) = lower($1) and lower(table_name) = lower($2) order by column_index',
      [relation.schema, relation.name],
    );
    return result.rows.map((r) => ({ name: String(r[0]), type: String(r[1]) }));
  }

  /** A temporary stage is made with `create or replace` (createTableAs): one left on this connection by an earlier try is replaced by the same statement. */
  protected override readonly createReplacesTemporary = true;

  async createTableAs(session: AdapterSession, relation: Relation, selectSql: string, temporary = false): Promise<number | undefined> {
    const result = await session.query(`create ${temporary ? 'or replace temp ' : ''}table ${this.relationSql(relation)} as\n${selectSql}`);
    if (temporary) this.transientStaged.add(relation.name);
    const count = result.rows[0]?.[0];
    return count === undefined ? undefined : Number(count);
  }

  /**
   * A stream that ends within SMALL_STREAM_BYTES (an incremental run's few
   * changed rows) is written to one file as it comes, and read from it. A longer one goes
   * through a FIFO that one read_csv reads with the types given (no sniffing)
   * as it is written (csv-fifo.ts); where there is no FIFO, it is cut into
   * files of CSV_CHUNK_BYTES read one after the other while the next is
   * written, the first creating the staged table and the others appending to
   * it. What the table holds is bounded by withBoundedMemory.
   */
  async stageCsv(session: AdapterSession, relation: Relation, columns: ColumnDef[], csv: NodeJS.ReadableStream, options?: StageOptions): Promise<StagedTable> {
    // The stream is read only once the statements before it are done; an error before that must not be
    // an 'error' without a listener (which ends the process): the stream keeps it, and reading it throws it.
    csv.on('error', () => undefined);
    let staged: StagedTable | undefined;
    let rows = 0;
    const stage = async (file: string) => {
      staged = await this.stageTable(session, relation, csvSelectSql(file, columns), options);
      rows = staged.rows ?? 0;
    };
    const small = path.join(os.tmpdir(), `etl-load-${randomUUID()}.csv`);
    let dir: string | undefined;
    const load = async () => {
      const head = await readHead(csv, SMALL_STREAM_BYTES, small);
      if ('whole' in head) return stage(small);
      dir = await mkdtemp(path.join(os.tmpdir(), 'etl-load-'));
      const fifo = await makeFifo(dir);
      if (fifo) return loadCsvThroughFifo(head.rest, fifo, stage);
      await loadCsvInChunks(head.rest, dir, CSV_CHUNK_BYTES, async (file, index) => {
        if (index === 0) await stage(file);
        else rows += (await session.execute(`insert into ${this.relationSql(staged!.relation)} ${csvSelectSql(file, columns)}`)).rowsAffected ?? 0;
      });
    };
    try {
      // A table staged in the database file is built in one transaction: its row groups are written to the
      // file as they fill, where each chunk's insert committed alone would leave its last part in the WAL for
      // the checkpoint at close to write (seconds, and the memory of the whole table, after a 10M-row load).
      if (this.databasePath !== ':memory:' && !this.stagedRelation(relation, options).temporary) await transaction(session, load);
      else await load();
      // Made by read_csv with these types: its columns are known without reading them back.
      return { ...staged!, rows, columns: columns.map((c) => ({ name: c.name, type: c.type })) };
    } catch (err) {
      if (staged) await this.discardStaged(session, staged);
      throw err;
    } finally {
      // Removed synchronously: a few system calls, where the thread pool's turns cost ms on a busy machine
      // (and a removal still pending when the CLI exits would leave the files behind).
      for (const p of [small, dir]) if (p) rmSync(p, { recursive: true, force: true });
    }
  }

  /**
   * Whether a step was bounded (the checkpoint at close is then), steps holding the bounded buffer pool now, the allowance for deletes they
   * asked for (MB), the largest such allowance of the run (the bound of the
   * checkpoint at close), the setting of it under way, and the values it
   * replaced (read once: see below).
   */
  private bounded = { used: false, steps: 0, deleteMb: 0, closeDeleteMb: 0, applied: undefined as Promise<void> | undefined, before: undefined as Record<string, string> | undefined, limitMb: LOAD_MEMORY_MB };

  /**
   * A step of a load (its stage, a check over it, a merge) with the buffer
   * pool bounded to LOAD_MEMORY_MB and insertion order not kept (a raw table
   * has none to keep, and keeping it holds rows back), unless the target's
   * settings set either: then they stand. DuckDB would otherwise keep the
   * table it builds (or the columns a merge scans) in memory up to its
   * memory_limit (80% of RAM by default), so a load's memory would grow with
   * the table; bounded, it spills to the database file and temp_directory.
   *
   * A step that deletes rows of a table (`deletingFrom`: a merge) gets
   * DELETE_BYTES_PER_ROW per row of it on top: DuckDB keeps a deleted row's
   * version in an array for its whole vector of 2048 rows (16 KiB, pinned
   * until the checkpoint), so keys changed all over a 10M-row table hold
   * ~80 MB whatever few rows change, and a merge under the bare bound fails
   * to pin its blocks.
   *
   * Both settings are the instance's: steps at the same time share one bound
   * (other nodes running meanwhile are bounded too, and the allowances add
   * up), and the last one to finish sets back what was there. Set back, not
   * RESET: after a RESET DuckDB shows the default but its buffer pool keeps
   * the bound (a later join failed to pin blocks at 61 MiB), and the values
   * are read once, as DuckDB shows them rounded (18.8 GiB).
   */
  async withBoundedMemory<T>(session: AdapterSession, fn: () => Promise<T>, options: BoundedMemoryOptions = {}): Promise<T> {
    const own = this.ownBoundSettings();
    if (own.length === 0) return fn();
    const deleteMb = options.deletingFrom && own.includes('memory_limit') ? await this.deleteAllowanceMb(session, options.deletingFrom) : 0;
    this.bounded.deleteMb += deleteMb;
    this.bounded.closeDeleteMb = Math.max(this.bounded.closeDeleteMb, this.bounded.deleteMb);
    const limit = () => `'${this.bounded.limitMb + this.bounded.deleteMb}MB'`;
    if (this.bounded.steps++ === 0) {
      this.bounded.used = true;
      this.bounded.applied = (async () => {
        await this.readBoundDefaults(session, own);
        const bound: Record<string, string> = { memory_limit: limit(), preserve_insertion_order: 'false' };
        for (const k of own) await session.execute(`set global ${k} = ${bound[k]}`);
      })();
    } else if (deleteMb > 0) {
      // Raised for this step while others hold the bound.
      this.bounded.applied = this.bounded.applied!.then(() => session.execute(`set global memory_limit = ${limit()}`)).then(() => undefined);
    }
    try {
      await this.bounded.applied;
      return await fn();
    } finally {
      this.bounded.deleteMb -= deleteMb;
      if (--this.bounded.steps === 0) {
        this.bounded.applied = undefined;
        const before = this.bounded.before;
        if (before) for (const k of own) await session.execute(`set global ${k} = ${before[k]}`);
      }
    }
  }

  /** The settings withBoundedMemory makes: those the target's settings leave to it. */
  private ownBoundSettings(): string[] {
    const settings = this.target.settings ?? {};
    return ['memory_limit', 'preserve_insertion_order'].filter((k) => settings[k] === undefined);
  }

  private boundDefaults?: Promise<void>;

  /**
   * The values withBoundedMemory sets back, and its bound (per thread), read once a process: before any
   * bound is set (one read shared by every caller, the first step's sets waiting for it).
   */
  private readBoundDefaults(session: AdapterSession, own: string[]): Promise<void> {
    this.boundDefaults ??= (async () => {
      const r = await session.query(`select current_setting('threads')::integer, ${own.map((k) => `current_setting('${k}')::varchar`).join(', ')}`);
      this.bounded.before = Object.fromEntries(own.map((k, i) => [k, this.dialect.quoteString(String(r.rows[0]![i + 1]))]));
      this.bounded.limitMb = Math.max(LOAD_MEMORY_MB, LOAD_MEMORY_MB_PER_THREAD * Number(r.rows[0]![0]));
    })();
    this.boundDefaults.catch(() => (this.boundDefaults = undefined));
    return this.boundDefaults;
  }

  /** A loader reads them while its source connects, rather than before its stage. */
  async prepareBoundedMemory(session: AdapterSession): Promise<void> {
    const own = this.ownBoundSettings();
    if (own.length > 0 && this.bounded.steps === 0) await this.readBoundDefaults(session, own);
  }

  /**
   * DELETE_BYTES_PER_ROW for each row of `relation` (DuckDB's estimate), in
   * MB: as read with the catalog at the start of the run (a merge adds a few
   * rows to it), or read now.
   */
  private async deleteAllowanceMb(session: AdapterSession, relation: Relation): Promise<number> {
    let rows = this.startSizes.get(`${relation.schema.toLowerCase()}.${relation.name.toLowerCase()}`);
    if (rows === undefined) {
      const r = await session.query('select estimated_size from duckdb_tables() where database_name = current_database() and lower(schema_name) = lower($1) and lower(table_name) = lower($2)', [relation.schema, relation.name]);
      rows = Number(r.rows[0]?.[0] ?? 0);
    }
    return Math.ceil((rows * DELETE_BYTES_PER_ROW) / 1e6);
  }

  async loadSeed(session: AdapterSession, relation: Relation, csvPath: string, options: SeedOptions): Promise<MaterializeResult> {
    try {
      await session.query(await checkSeedSql(this.dialect, csvPath, options.delimiter ?? ','));
      const loaded = await this.replaceTable(session, relation, seedSelectSql(csvPath, options));
      return { rowsAffected: loaded.rowsAffected, message: `INSERT ${loaded.rowsAffected}` };
    } catch (err) {
      throw (await seedFileProblem(err, csvPath, options.path ?? csvPath)) ?? err;
    }
  }

  async preview(session: AdapterSession, selectSql: string, limit: number): Promise<QueryResult> {
    // Rows as DuckDB prints them (dates as dates, decimals with their scale): its value objects, not JS values.
    const reader = await (session as DuckDbSession).connection.runAndReadAll(previewSql(selectSql, limit));
    return {
      columns: reader.columnNames(),
      types: reader.columnTypes().map((t) => t.toString()),
      rows: reader.getRows().map((row) => row.map(displayValue)),
    };
  }
}

/** Postgres's CSV (no header, empty unquoted = NULL, "" = empty string) read with fixed column types. */
export function csvSelectSql(csvPath: string, columns: ColumnDef[]): string {
  const d = dialectFor('duckdb');
  const struct = columns.map((c) => `${d.quoteString(c.name)}: ${d.quoteString(c.type)}`).join(', ');
  return `select * from read_csv(${d.quoteString(csvPath)}, header = false, auto_detect = false, columns = {${struct}}, delim = ',', quote = '"', escape = '"', nullstr = '', allow_quoted_nulls = false, strict_mode = true, buffer_size = ${CSV_BUFFER_BYTES})`;
}

/**
 * The query a seed is loaded with: DuckDB's CSV reader and its type sniffing.
 * Static analysis describes the same query to learn a seed's columns.
 */
export function seedSelectSql(csvPath: string, options: SeedOptions): string {
  const d = dialectFor('duckdb');
  const typeEntries = Object.entries(options.columnTypes);
  // DuckDB's table functions take no bound parameters for their options, so
  // the struct of column types is built from quoted literals.
  const types = typeEntries.length ? `, types = {${typeEntries.map(([c, t]) => `${d.quoteString(c)}: ${d.quoteString(t)}`).join(', ')}}` : '';
  return `select * from read_csv(${d.quoteString(csvPath)}, header = true, auto_detect = true${types}${seedCsvOptions(d, options.delimiter ?? ',')})`;
}
