// A dialect is the pure, connection-free part of an engine: how identifiers
// are quoted and relations named. The compiler needs it to render {{ref}}
// without opening a connection, so this module must stay free of drivers.

export interface Dialect {
  /** Engine name, as in a target's `type`. */
  readonly name: 'duckdb' | 'postgres' | 'delta';
  /** sql-formatter language for `--format`. */
  readonly formatterLanguage: 'duckdb' | 'postgresql';
  quoteIdentifier(name: string): string;
  /** The relation as it appears in SQL. */
  relation(schema: string, name: string): string;
  /** A string literal. Prefer bound parameters; this is for DDL where engines accept no binds. */
  quoteString(value: string): string;
}

/** Standard SQL quoting: double quotes, doubled inside. */
export function quoteIdentifierAnsi(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteStringAnsi(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

const ansi = {
  quoteIdentifier: quoteIdentifierAnsi,
  quoteString: quoteStringAnsi,
  relation(schema: string, name: string): string {
    return `${quoteIdentifierAnsi(schema)}.${quoteIdentifierAnsi(name)}`;
  },
};

const DIALECTS: Record<Dialect['name'], Dialect> = {
  duckdb: { name: 'duckdb', formatterLanguage: 'duckdb', ...ansi },
  postgres: { name: 'postgres', formatterLanguage: 'postgresql', ...ansi },
  // Delta tables are computed by DuckDB, so SQL over them is DuckDB's.
  delta: { name: 'delta', formatterLanguage: 'duckdb', ...ansi },
};

export function dialectFor(type: Dialect['name']): Dialect {
  return DIALECTS[type];
}
