// Binds SQL without running it: DuckDB on an in-memory database that holds
// empty stand-in tables with the inputs' columns, at the names the compiled
// SQL uses. prepare() parses and binds a statement and reports its result
// columns and types; no row is read or written anywhere.

import { DuckDBInstance, listValue, type DuckDBConnection } from '@duckdb/node-api';
import { quoteIdentifierAnsi as q } from '../../adapters/dialect.js';

export interface BoundColumn {
  name: string;
  type: string;
}

export type BindOutcome = { columns: BoundColumn[] } | { error: string };

/** A model to bind: its SQL, and where its result goes (its own relation, or a scratch table for an ephemeral model). */
export interface BindJob {
  id: string;
  target?: { schema: string; name: string };
  sql: string;
  /** The SQL with is_incremental true; bound after the model's own table exists. */
  incrementalSql?: string;
  /** Columns the materialization adds (snapshots' etl_ columns). */
  extraColumns?: BoundColumn[];
}

/** Scratch tables: ephemeral models' results and incremental branches. */
const SCRATCH = '__etl_check';

export class DuckDbBinder {
  private readonly schemas = new Set<string>(['main']);
  private readonly tables = new Set<string>();
  private scratch = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  static async open(): Promise<DuckDbBinder> {
    // No extension may be fetched while binding, and one thread is plenty for empty tables.
    const instance = await DuckDBInstance.create(':memory:', { threads: '1', autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
    return new DuckDbBinder(instance, await instance.connect());
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }

  hasTable(schema: string, name: string): boolean {
    return this.tables.has(`${schema}\0${name}`);
  }

  /** Creates empty stand-ins (replacing any of the same name), in one round trip. */
  async createTables(tables: Array<{ schema: string; name: string; columns: BoundColumn[] }>): Promise<void> {
    if (tables.length === 0) return;
    const statements: string[] = [];
    for (const t of tables) {
      if (!this.schemas.has(t.schema)) {
        statements.push(`create schema if not exists ${q(t.schema)}`);
        this.schemas.add(t.schema);
      }
      // A relation without columns cannot be a table; one placeholder column keeps `select *` bindable.
      const cols = t.columns.length ? t.columns : [{ name: '__etl_no_columns', type: 'INTEGER' }];
      statements.push(`create or replace table ${q(t.schema)}.${q(t.name)} (${cols.map((c) => `${q(c.name)} ${c.type}`).join(', ')})`);
      this.tables.add(`${t.schema}\0${t.name}`);
    }
    try {
      await this.connection.run(statements.join(';\n'));
    } catch {
      // One bad type must not lose the others: create them one at a time, unknown types as VARCHAR.
      for (const t of tables) await this.createTableLeniently(t);
    }
  }

  private async createTableLeniently(t: { schema: string; name: string; columns: BoundColumn[] }): Promise<void> {
    const cols = t.columns.length ? t.columns : [{ name: '__etl_no_columns', type: 'INTEGER' }];
    const defs = [];
    for (const c of cols) {
      const ok = await this.connection.run(`select cast(null as ${c.type})`).then(
        () => true,
        () => false,
      );
      defs.push(`${q(c.name)} ${ok ? c.type : 'VARCHAR'}`);
    }
    await this.connection.run(`create schema if not exists ${q(t.schema)}; create or replace table ${q(t.schema)}.${q(t.name)} (${defs.join(', ')})`);
  }

  /**
   * Binds independent queries in one round trip: each becomes `create table
   * <target> as select * from (<sql>) limit 0` (bound and planned, nothing
   * read), so the result is also the stand-in its children bind against. A
   * failing statement stops the batch there: it is bound alone for a clean
   * message, and the batch goes on after it.
   */
  async bindAll(jobs: BindJob[]): Promise<Map<string, BindOutcome & { incremental?: boolean }>> {
    const out = new Map<string, BindOutcome & { incremental?: boolean }>();
    const statements: Array<{ job: BindJob; incremental: boolean; schema: string; name: string; text: string }> = [];
    const schemas = new Set<string>([SCRATCH]);
    for (const job of jobs) {
      const target = job.target ?? { schema: SCRATCH, name: `m${this.scratch++}` };
      schemas.add(target.schema);
      const extra = (job.extraColumns ?? []).map((c) => `, cast(null as ${c.type}) as ${q(c.name)}`).join('');
      const ctas = (schema: string, name: string, sql: string) => `create or replace table ${q(schema)}.${q(name)} as select *${extra} from (\n${stripTrailingSemicolon(sql)}\n) limit 0`;
      statements.push({ job, incremental: false, ...target, text: ctas(target.schema, target.name, job.sql) });
      // The incremental branch reads {{this}}: the table just made.
      if (job.incrementalSql !== undefined) {
        const name = `i${this.scratch++}`;
        statements.push({ job, incremental: true, schema: SCRATCH, name, text: ctas(SCRATCH, name, job.incrementalSql) });
      }
    }
    const newSchemas = [...schemas].filter((s) => !this.schemas.has(s));
    if (newSchemas.length) await this.connection.run(newSchemas.map((s) => `create schema if not exists ${q(s)}`).join(';\n'));
    for (const s of newSchemas) this.schemas.add(s);
    const failed = new Set<BindJob>();
    let i = 0;
    while (i < statements.length) {
      const pending = statements.slice(i).filter((s) => !failed.has(s.job));
      if (!pending.length) break;
      try {
        await this.connection.run(pending.map((s) => s.text).join(';\n'));
        break;
      } catch (err) {
        // Statements run in order, each committed: the failed one is the first whose table is missing.
        const made = await this.existing(pending.map((s) => `${s.schema}\0${s.name}`));
        const bad = pending.find((s) => !made.has(`${s.schema}\0${s.name}`));
        if (!bad) throw err;
        const alone = await this.bind(bad.incremental ? bad.job.incrementalSql! : bad.job.sql);
        out.set(bad.job.id, { error: 'error' in alone ? alone.error : (err as Error).message, incremental: bad.incremental });
        failed.add(bad.job);
        i = statements.indexOf(bad) + 1;
      }
    }
    const made = statements.filter((s) => !s.incremental && !failed.has(s.job));
    for (const s of made) this.tables.add(`${s.schema}\0${s.name}`);
    const cols = await this.columnsOf(made.map((s) => `${s.schema}\0${s.name}`));
    for (const s of made) out.set(s.job.id, { columns: cols.get(`${s.schema}\0${s.name}`) ?? [] });
    return out;
  }

  private async existing(keys: string[]): Promise<Set<string>> {
    const r = await this.connection.runAndReadAll(
      `select t.k from duckdb_tables() d join (select unnest($1::varchar[]) as k) t on d.schema_name || chr(0) || d.table_name = t.k where d.database_name = current_database()`,
      [listValue(keys)],
    );
    return new Set(r.getRows().map((row) => String(row[0])));
  }

  private async columnsOf(keys: string[]): Promise<Map<string, BoundColumn[]>> {
    const out = new Map<string, BoundColumn[]>();
    if (!keys.length) return out;
    const r = await this.connection.runAndReadAll(
      `select t.k, c.column_name, c.data_type from duckdb_columns() c join (select unnest($1::varchar[]) as k) t on c.schema_name || chr(0) || c.table_name = t.k
        where c.database_name = current_database() order by c.table_oid, c.column_index`,
      [listValue(keys)],
    );
    for (const row of r.getRows()) {
      const k = String(row[0]);
      let list = out.get(k);
      if (!list) out.set(k, (list = []));
      list.push({ name: String(row[1]), type: String(row[2]) });
    }
    return out;
  }

  /** The result columns of `sql`, or the binder's (or parser's) message. */
  async bind(sql: string): Promise<BindOutcome> {
    try {
      const prepared = await this.connection.prepare(stripTrailingSemicolon(sql));
      const columns: BoundColumn[] = [];
      for (let i = 0; i < prepared.columnCount; i++) columns.push({ name: prepared.columnName(i), type: prepared.columnType(i).toString() });
      prepared.destroySync();
      return { columns };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /** DuckDB's parse trees (json_serialize_sql) of many statements, in one round trip; a parse error is in its result, not thrown. */
  async parseAll(sqls: string[]): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    for (let i = 0; i < sqls.length; i += 2000) {
      const chunk = sqls.slice(i, i + 2000).map(stripTrailingSemicolon);
      const reader = await this.connection.runAndReadAll('select json_serialize_sql(s) from (select unnest($1::varchar[]) as s, generate_subscripts($1::varchar[], 1) as i) order by i', [listValue(chunk)]);
      for (const row of reader.getRows()) out.push(JSON.parse(String(row[0])) as Record<string, unknown>);
    }
    return out;
  }

  /** Columns of any query the binder can describe (seeds: DuckDB's own CSV sniffing). */
  async describe(sql: string): Promise<BoundColumn[]> {
    const reader = await this.connection.runAndReadAll(`describe ${sql}`);
    return reader.getRowsJS().map((r) => ({ name: String(r[0]), type: String(r[1]) }));
  }
}

function stripTrailingSemicolon(sql: string): string {
  return sql.replace(/;\s*$/, '');
}
