// What static analysis must know about each engine, in one table: how a
// seed's column types are inferred (the adapter's own inference, not a
// copy of it), and how the engine's type names become DuckDB types for the
// stand-in tables the binder creates.

import { seedSelectSql } from '../../adapters/duckdb/adapter.js';
import type { SeedOptions } from '../../adapters/adapter.js';
import type { BoundColumn, DuckDbBinder } from './binder.js';

export interface AnalysisEngine {
  /** A seed's columns as the adapter would load them. */
  seedColumns(binder: DuckDbBinder, csvPath: string, options: SeedOptions): Promise<BoundColumn[]>;
  /** An engine type name as a DuckDB type, for a stand-in table. */
  standInType(type: string): string;
  /** Whether a binder error may only mean "DuckDB does not speak this dialect" (then the engine itself decides). */
  mayBeDialect(message: string): boolean;
  /** The engine binds SQL itself (a server): the final types are its own, and what DuckDB cannot bind goes there. */
  bindsOnTarget: boolean;
}

const duckdb: AnalysisEngine = {
  seedColumns: (binder, csvPath, options) => binder.describe(seedSelectSql(csvPath, options)),
  standInType: (type) => type,
  mayBeDialect: () => false,
  bindsOnTarget: false,
};

const POSTGRES_TYPES: Array<[RegExp, string | ((m: RegExpExecArray) => string)]> = [
  [/^(integer|int|int4|serial)$/, 'INTEGER'],
  [/^(bigint|int8|bigserial)$/, 'BIGINT'],
  [/^(smallint|int2)$/, 'SMALLINT'],
  [/^(numeric|decimal)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)$/, (m) => (Number(m[2]) <= 38 ? `DECIMAL(${m[2]},${m[3] ?? 0})` : 'DOUBLE')],
  [/^(numeric|decimal)$/, 'DECIMAL(38,10)'],
  [/^(double precision|float8|float)$/, 'DOUBLE'],
  [/^(real|float4)$/, 'FLOAT'],
  [/^(boolean|bool)$/, 'BOOLEAN'],
  [/^date$/, 'DATE'],
  [/^(timestamp with time zone|timestamptz)(\(\d+\))?$/, 'TIMESTAMPTZ'],
  [/^timestamp(\(\d+\))?( without time zone)?$/, 'TIMESTAMP'],
  [/^time(\(\d+\))?( without time zone)?$/, 'TIME'],
  [/^interval/, 'INTERVAL'],
  [/^uuid$/, 'UUID'],
  [/^bytea$/, 'BLOB'],
  [/^jsonb?$/, 'JSON'],
];

const postgres: AnalysisEngine = {
  async seedColumns(_binder, csvPath, options) {
    const [{ inferCsvShape }, { seedColumns }] = await Promise.all([import('../../adapters/postgres/csv-types.js'), import('../../adapters/postgres/seed.js')]);
    return seedColumns(await inferCsvShape(csvPath, options.delimiter), options.columnTypes);
  },
  standInType(type) {
    // DuckDB spells the types it bound in upper case; Postgres's format_type in lower case.
    if (!/[a-z]/.test(type)) return type;
    const t = type.trim().toLowerCase();
    const array = /\[\]$/.test(t);
    const base = t.replace(/(\[\d*\])+$/, '');
    for (const [re, to] of POSTGRES_TYPES) {
      const m = re.exec(base);
      if (m) return `${typeof to === 'string' ? to : to(m)}${array ? '[]' : ''}`;
    }
    return `VARCHAR${array ? '[]' : ''}`;
  },
  // Functions, operators, types and syntax DuckDB lacks; a missing column is an error on any engine.
  mayBeDialect: (message) =>
    /^Parser Error|^Catalog Error: (Scalar |Aggregate |Table )?Function|^Catalog Error: Type with name|No function matches|^Not implemented/.test(message),
  bindsOnTarget: true,
};

const ENGINES: Record<string, AnalysisEngine> = { duckdb, delta: duckdb, postgres };

export function analysisEngine(type: string): AnalysisEngine {
  return ENGINES[type] ?? duckdb;
}
