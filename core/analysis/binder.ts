// Binds SQL without running it: DuckDB on an empty in-memory database. Each
// relation a query reads is replaced by an empty CTE with the input's
// columns and types, and prepare() parses and binds the query and reports
// its result columns and types; no row is read or written anywhere.

import { duckdb, type DuckDBConnection, type DuckDBInstance } from '../../adapters/duckdb/driver.js';
import { availableParallelism } from 'node:os';
import { quoteIdentifierAnsi as q } from '../../adapters/dialect.js';
import { injectCtes } from '../compiler/ephemeral.js';
import { selectBody } from '../../adapters/sql-text.js';
import { mayHaveSetOperation, setOperationMismatch, type SetOperationDescriber } from './set-operations.js';

export interface BoundColumn {
  name: string;
  type: string;
}

export type BindOutcome = { columns: BoundColumn[] } | { error: string };

export class DuckDbBinder {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  static async open(): Promise<DuckDbBinder> {
    const instance = await emptyDatabase();
    return new DuckDbBinder(instance, await bindingConnection(instance));
  }

  /**
   * One array per distinct column list bound by this binder: most models of a
   * project share a few schemas, whose stand-in text and hash are then made once.
   */
  private readonly schemas = new Map<string, BoundColumn[]>();
  private interned(columns: BoundColumn[]): BoundColumn[] {
    const key = columns.map((c) => `${c.name}\0${c.type}`).join('\0');
    const known = this.schemas.get(key);
    if (known) return known;
    this.schemas.set(key, columns);
    return columns;
  }

  close(): void {
    for (const p of this.pool ?? []) {
      p.connection.closeSync();
      p.instance.closeSync();
    }
    this.connection.closeSync();
    this.instance.closeSync();
  }

  /**
   * Binds independent queries, each with its inputs inlined as empty typed
   * CTEs in place of the relations it names: no table per input is created,
   * so the catalog stays small (DuckDB binds slower as its catalog grows) and
   * the queries bind in parallel on several connections. Column lists read
   * by many of the queries select from a table of their own (sharedStandIns).
   */
  async bindInline(jobs: InlineJob[]): Promise<Map<string, InlineOutcome>> {
    const out = new Map<string, InlineOutcome>();
    // Batches of queries described in one statement (one round trip, DuckDB's
    // own type names); a batch that fails is bound query by query, which
    // names the failing one and its position.
    // A few queries bind faster than another database opens.
    const connections = jobs.length >= 64 ? await this.connections() : [this.connection];
    const tables = await this.sharedStandIns(jobs, connections);
    // Batches shrink as the jobs run out (a share of what is left, between
    // MIN_BATCH and BATCH), so the connections finish together: the next wave
    // waits for the slowest one, and an even split left one idle for up to a batch.
    let next = 0;
    const take = (): InlineJob[] => {
      const left = jobs.length - next;
      const size = Math.max(MIN_BATCH, Math.min(BATCH, Math.ceil(left / (2 * connections.length))));
      return jobs.slice(next, (next += size));
    };
    const worker = async (conn: DuckDBConnection) => {
      while (next < jobs.length) {
        const batch = take();
        const full = batch.map((job) => inlineInputs(job.sql, job.inputs, tables));
        const described = await describeAll(conn, full.map((f) => f.sql));
        // Models whose incremental branch is bound next, with the branch's SQL.
        const incremental: Array<{ job: InlineJob; result: { columns: BoundColumn[] }; sql: string; names: Map<string, string> }> = [];
        for (let k = 0; k < batch.length; k++) {
          const job = batch[k]!;
          const result = described ? { columns: this.interned(described[k]!) } : await bindOne(conn, full[k]!.sql);
          if ('error' in result) {
            out.set(job.id, { error: result.error, sql: full[k]!.sql, names: full[k]!.names });
            continue;
          }
          if (job.setOperations && mayHaveSetOperation(job.sql)) {
            const mismatch = await setOperationMismatch(describer(conn), full[k]!.sql);
            if (mismatch) {
              out.set(job.id, { error: mismatch.message, hint: mismatch.hint, offset: mismatch.offset, sql: full[k]!.sql, names: full[k]!.names });
              continue;
            }
          }
          if (job.incrementalSql !== undefined) {
            // The incremental branch reads {{this}}: the model's own result, just bound.
            incremental.push({ job, result, ...inlineInputs(job.incrementalSql, [...job.inputs, { relation: job.self!, name: job.selfName!, columns: result.columns }], tables) });
            continue;
          }
          out.set(job.id, result);
        }
        // The batch's incremental branches in one statement too; query by query only when one fails.
        const branches = incremental.length ? await describeAll(conn, incremental.map((i) => i.sql)) : [];
        for (const { job, result, sql, names } of incremental) {
          const r = branches ? undefined : await prepareColumns(conn, sql);
          out.set(job.id, r && 'error' in r ? { error: r.error, sql, names, incremental: true } : result);
        }
      }
    };
    await Promise.all(connections.map(worker));
    return out;
  }

  /**
   * Column lists that many models of a wave read (a hub model's, a family of
   * same-shaped inputs'): an empty table each, made once in every database
   * that binds, which their stand-in CTEs select from. DuckDB binds a table
   * reference for less than the casts of a typed empty select (about 20%
   * less per model in bench/check-variants.mjs), but making a table costs as
   * much as binding several such selects: a list read a few times stays a select.
   */
  private readonly standInTables = new Map<BoundColumn[], string>();
  private readonly tablesMade = new WeakMap<DuckDBConnection, Set<string>>();
  private async sharedStandIns(jobs: InlineJob[], connections: DuckDBConnection[]): Promise<Map<BoundColumn[], string>> {
    const reads = new Map<BoundColumn[], number>();
    for (const job of jobs) for (const input of job.inputs) if (input.columns.length) reads.set(input.columns, (reads.get(input.columns) ?? 0) + 1);
    for (const [columns, n] of reads) if (n >= SHARED_STAND_IN_READS * connections.length && !this.standInTables.has(columns)) this.standInTables.set(columns, `__etl_stand_in_${this.standInTables.size}`);
    for (const conn of connections) {
      let made = this.tablesMade.get(conn);
      if (!made) this.tablesMade.set(conn, (made = new Set()));
      const missing = [...this.standInTables].filter(([, name]) => !made!.has(name));
      if (!missing.length) continue;
      const ddl = ([columns, name]: [BoundColumn[], string]) => `create table ${q(name)} (${columns.map((c) => `${q(c.name)} ${c.type}`).join(', ')});`;
      try {
        await conn.run(missing.map(ddl).join('\n'));
        for (const [, name] of missing) made.add(name);
      } catch {
        // A type a column definition does not take: that list keeps its typed select.
        for (const entry of missing) {
          try {
            await conn.run(ddl(entry));
            made.add(entry[1]);
          } catch {
            this.standInTables.delete(entry[0]);
          }
        }
      }
    }
    return this.standInTables;
  }

  /** One connection per in-memory database: binding on one database is serialised, on several it runs in parallel. */
  private pool?: Array<{ instance: DuckDBInstance; connection: DuckDBConnection }>;
  private async connections(): Promise<DuckDBConnection[]> {
    this.pool ??= await Promise.all(
      Array.from({ length: BIND_CONNECTIONS - 1 }, async () => {
        const instance = await emptyDatabase();
        return { instance, connection: await bindingConnection(instance) };
      }),
    );
    return [this.connection, ...this.pool.map((p) => p.connection)];
  }

  /**
   * DuckDB's parse trees (json_serialize_sql) of many statements, in one round trip, as JSON
   * text; a parse error is in its result, not thrown. Text, so that a caller parses each tree
   * when it reads it: 10,000 trees parsed at once outlive V8's young generation, and copying
   * them out of it cost more than the parse.
   */
  async parseAll(sqls: string[]): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < sqls.length; i += 2000) {
      const chunk = sqls.slice(i, i + 2000).map(selectBody);
      const reader = await this.connection.runAndReadAll('select json_serialize_sql(s, skip_null := true, skip_empty := true, skip_default := true) from (select unnest($1::varchar[]) as s, generate_subscripts($1::varchar[], 1) as i) order by i', [duckdb.listValue(chunk)]);
      for (const row of reader.getRows()) out.push(String(row[0]));
    }
    return out;
  }

  /** Columns of any query the binder can describe (seeds: DuckDB's own CSV sniffing). */
  async describe(sql: string): Promise<BoundColumn[]> {
    const reader = await this.connection.runAndReadAll(`describe ${sql}`);
    return reader.getRowsJS().map((r) => ({ name: String(r[0]), type: String(r[1]) }));
  }
}


/**
 * Whether a DuckDB binder error may only mean that DuckDB does not speak the
 * target's dialect (a function, operator, type or syntax DuckDB lacks), so
 * that an engine binding SQL itself decides; a missing column is an error on any engine.
 */
export function mayBeDialectGap(message: string): boolean {
  return /^Parser Error|^Catalog Error: (Scalar |Aggregate |Table )?Function|^Catalog Error: Type with name|No function matches|^Not implemented/.test(message);
}

/** Reads of one column list in a wave, per binding database, from which its stand-in is a table. */
const SHARED_STAND_IN_READS = 16;

/** Queries described per statement, at most and (but for the last) at least. */
const BATCH = 200;
const MIN_BATCH = 16;

/** Parallel binding connections: binding is CPU work in DuckDB, off the JS thread. */
const BIND_CONNECTIONS = Math.max(1, Math.min(4, availableParallelism()));

export interface InlineInput {
  /** The quoted relation as the SQL names it. */
  relation: string;
  /** A name for its CTE: the table's own name, so `stg_orders.id` still resolves. */
  name: string;
  columns: BoundColumn[];
}

export interface InlineJob {
  id: string;
  sql: string;
  inputs: InlineInput[];
  incrementalSql?: string;
  /** Report set operations whose branches disagree on a column's type family (what DuckDB casts silently). */
  setOperations?: boolean;
  /** The model's own relation and CTE name, for {{this}} in the incremental branch. */
  self?: string;
  selfName?: string;
}

export type InlineOutcome =
  | { columns: BoundColumn[] }
  /** An error of the query (`sql`, with its inputs inlined as `names`): DuckDB's message, or the check's own with its hint and offset. */
  | { error: string; sql: string; names: Map<string, string>; incremental?: boolean; hint?: string; offset?: number };

/**
 * `sql` with each input relation replaced by a CTE of the same columns and
 * types and no rows (names: relation -> CTE name). Names that clash (two
 * inputs called alike, or a CTE of the query's own) get a numbered name.
 */
export function inlineInputs(sql: string, inputs: InlineInput[], tables?: ReadonlyMap<BoundColumn[], string>): { sql: string; names: Map<string, string> } {
  const used = inputs.filter((i) => sql.includes(i.relation));
  if (!used.length) return { sql: selectBody(sql), names: new Map() };
  const names = new Map<string, string>();
  const taken = new Set<string>();
  const lower = sql.toLowerCase();
  used.forEach((input, i) => {
    let name = input.name;
    if (taken.has(name.toLowerCase()) || definesCte(lower, name.toLowerCase())) name = `__etl_input_${i}`;
    taken.add(name.toLowerCase());
    names.set(input.relation, name);
  });
  // Longest first: no relation is a prefix of another once quoted, but be safe.
  let body = selectBody(sql);
  for (const relation of [...names.keys()].sort((a, b) => b.length - a.length)) body = body.split(relation).join(q(names.get(relation)!));
  const ctes = used.map((input) => {
    const table = tables?.get(input.columns);
    return { name: q(names.get(input.relation)!), sql: table ? `select * from ${q(table)}` : standInSelect(input.columns) };
  });
  return { sql: injectCtes(body, ctes), names };
}

/** An empty select of these columns and types; one text per input however many models read it. */
const standIns = new WeakMap<BoundColumn[], string>();
function standInSelect(columns: BoundColumn[]): string {
  let text = standIns.get(columns);
  if (text === undefined) {
    const cols = columns.length ? columns.map((c) => `cast(null as ${c.type}) as ${q(c.name)}`).join(', ') : 'null as __etl_no_columns';
    standIns.set(columns, (text = `select ${cols} limit 0`));
  }
  return text;
}

/** Whether the (lower-cased) SQL defines a CTE of this (lower-cased) name: `name as (`. */
function definesCte(sql: string, name: string): boolean {
  for (let at = sql.indexOf(name); at !== -1; at = sql.indexOf(name, at + 1)) {
    let start = at;
    let end = at + name.length;
    if (sql[start - 1] === '"' && sql[end] === '"') {
      start--;
      end++;
    }
    const before = sql[start - 1];
    if (before !== undefined && !/[\s,(]/.test(before)) continue;
    if (/^\s+as\s*\(/.test(sql.slice(end, end + 40))) return true;
  }
  return false;
}

function emptyDatabase(): Promise<DuckDBInstance> {
  // No extension may be fetched while binding, and one thread is plenty for empty inputs.
  return duckdb.DuckDBInstance.create(':memory:', { threads: '1', autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
}

/** A connection that binds without optimizing: the result types are the binder's; plans are never run. */
async function bindingConnection(instance: DuckDBInstance): Promise<DuckDBConnection> {
  const c = await instance.connect();
  await c.run('pragma disable_optimizer');
  return c;
}

/**
 * The result columns of each query, as DuckDB's DESCRIBE names their types
 * (the names duckdb_columns() gives a built relation), from one statement;
 * undefined when any query fails. One thread and no optimizer: the union's
 * branches run in order, each DESCRIBE's rows in column order. The rows come
 * back as one JSON text: one value to convert rather than three per column.
 */
async function describeAll(conn: DuckDBConnection, sqls: string[]): Promise<BoundColumn[][] | undefined> {
  const union = sqls.map((sql, i) => `select ${i} as i, column_name, column_type from (describe ${selectBody(sql)}\n)`).join('\nunion all\n');
  let rows: Array<[number, string, string]>;
  try {
    const reader = await conn.runAndReadAll(`select json_group_array(json_array(i, column_name, column_type))::varchar from (${union}\n)`);
    rows = JSON.parse(String(reader.getRows()[0]![0])) as Array<[number, string, string]>;
  } catch {
    return undefined;
  }
  const out: BoundColumn[][] = sqls.map(() => []);
  for (const [i, name, type] of rows) out[i]!.push({ name, type });
  return out.some((cols) => !cols.length) ? undefined : out;
}

/** Parse, unparse and describe on one binding connection, for the set-operation check. */
function describer(conn: DuckDBConnection): SetOperationDescriber {
  const one = async (sql: string, param: string) => String((await conn.runAndReadAll(sql, [param])).getRows()[0]![0]);
  return {
    parse: (sql) => one('select json_serialize_sql($1::varchar)', sql),
    unparse: (json) => one('select json_deserialize_sql($1::json)', json),
    describe: async (sql) => (await describeAll(conn, [sql]))?.[0],
  };
}

/** One query: the binder's error with its position, or its columns as describeAll names them. */
async function bindOne(conn: DuckDBConnection, sql: string): Promise<BindOutcome> {
  const prepared = await prepareColumns(conn, sql);
  if ('error' in prepared) return prepared;
  return { columns: (await describeAll(conn, [sql]))?.[0] ?? prepared.columns };
}

async function prepareColumns(conn: DuckDBConnection, sql: string): Promise<BindOutcome> {
  try {
    const prepared = await conn.prepare(sql);
    const columns: BoundColumn[] = [];
    for (let i = 0; i < prepared.columnCount; i++) columns.push({ name: prepared.columnName(i), type: prepared.columnType(i).toString() });
    prepared.destroySync();
    return { columns };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
