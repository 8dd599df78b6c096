// Binds SQL without running it: DuckDB on an in-memory database that holds
// empty stand-in tables with the inputs' columns, at the names the compiled
// SQL uses. prepare() parses and binds a statement and reports its result
// columns and types; no row is read or written anywhere.

import { DuckDBInstance, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { quoteIdentifierAnsi as q } from '../../adapters/dialect.js';

export interface BoundColumn {
  name: string;
  type: string;
}

export type BindOutcome = { columns: BoundColumn[] } | { error: string };

export class DuckDbBinder {
  private readonly schemas = new Set<string>(['main']);
  private readonly tables = new Set<string>();

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
    this.parseStatement?.destroySync();
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

  /** DuckDB's parse tree of `sql` as JSON (json_serialize_sql); a parse error is in the result, not thrown. */
  async parse(sql: string): Promise<Record<string, unknown>> {
    this.parseStatement ??= await this.connection.prepare('select json_serialize_sql($1::varchar)');
    this.parseStatement.bindVarchar(1, stripTrailingSemicolon(sql));
    const reader = await this.parseStatement.runAndReadAll();
    return JSON.parse(String(reader.getRows()[0]![0])) as Record<string, unknown>;
  }

  private parseStatement?: DuckDBPreparedStatement;

  /** Columns of any query the binder can describe (seeds: DuckDB's own CSV sniffing). */
  async describe(sql: string): Promise<BoundColumn[]> {
    const reader = await this.connection.runAndReadAll(`describe ${sql}`);
    return reader.getRowsJS().map((r) => ({ name: String(r[0]), type: String(r[1]) }));
  }
}

function stripTrailingSemicolon(sql: string): string {
  return sql.replace(/;\s*$/, '');
}
