// The one mapping of Postgres types to DuckDB's (adapters/dialect.ts,
// duckdbTypeOfPostgres): a stand-in column when DuckDB binds a model of a
// Postgres target (the Postgres dialect's bindingType), and a column a loader
// stages in a DuckDB or Delta target from Postgres's CSV text (their
// typeFromPostgres). The types come from a real server as format_type prints
// them; each DuckDB type must exist in DuckDB, and the loaded type must read
// Postgres's own text of a value (what COPY ... TO STDOUT sends).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { dialectFor } from '../adapters/dialect.js';
import { dropPgSchema, newPgSchema, pgConnect, pgQuoteIdent } from './e2e/helpers.js';

interface Case {
  /** The type as a column is declared in Postgres. */
  declared: string;
  /** A value of it, as a Postgres literal. */
  value: string;
  /** format_type's spelling. */
  formatType: string;
  /** DuckDB's type of it (binding). */
  duckdb: string;
  /** The type a loader stages it as, when not the DuckDB type (text DuckDB cannot read back). */
  loaded?: string;
}

const CASES: Case[] = [
  { declared: 'smallint', value: '7', formatType: 'smallint', duckdb: 'SMALLINT' },
  { declared: 'integer', value: '42', formatType: 'integer', duckdb: 'INTEGER' },
  { declared: 'bigint', value: '9007199254740993', formatType: 'bigint', duckdb: 'BIGINT' },
  { declared: 'numeric(12,2)', value: '1234.56', formatType: 'numeric(12,2)', duckdb: 'DECIMAL(12,2)' },
  { declared: 'numeric(38,0)', value: '12345678901234567890123456789012345678', formatType: 'numeric(38,0)', duckdb: 'DECIMAL(38,0)' },
  // No fixed scale, or wider than DECIMAL's 38 digits: DOUBLE, as DuckDB's postgres scanner.
  { declared: 'numeric', value: '123.456789012345', formatType: 'numeric', duckdb: 'DOUBLE' },
  { declared: 'numeric(40,2)', value: '12345678901234567890123456789012345678.25', formatType: 'numeric(40,2)', duckdb: 'DOUBLE' },
  { declared: 'real', value: '1.5', formatType: 'real', duckdb: 'FLOAT' },
  { declared: 'double precision', value: '2.25', formatType: 'double precision', duckdb: 'DOUBLE' },
  { declared: 'boolean', value: 'true', formatType: 'boolean', duckdb: 'BOOLEAN' },
  { declared: 'date', value: "'2024-02-29'", formatType: 'date', duckdb: 'DATE' },
  { declared: 'timestamp', value: "'2024-02-29 10:11:12.5'", formatType: 'timestamp without time zone', duckdb: 'TIMESTAMP' },
  { declared: 'timestamp(3)', value: "'2024-02-29 10:11:12.123'", formatType: 'timestamp(3) without time zone', duckdb: 'TIMESTAMP' },
  { declared: 'timestamptz', value: "'2024-02-29 10:11:12+02'", formatType: 'timestamp with time zone', duckdb: 'TIMESTAMP WITH TIME ZONE' },
  { declared: 'time', value: "'10:11:12'", formatType: 'time without time zone', duckdb: 'TIME' },
  { declared: 'timetz', value: "'10:11:12+02'", formatType: 'time with time zone', duckdb: 'TIME WITH TIME ZONE' },
  { declared: 'interval', value: "'1 year 2 months 3 days 04:05:06.5'", formatType: 'interval', duckdb: 'INTERVAL' },
  { declared: 'uuid', value: "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", formatType: 'uuid', duckdb: 'UUID' },
  { declared: 'json', value: `'{"a": [1, 2]}'`, formatType: 'json', duckdb: 'JSON' },
  { declared: 'jsonb', value: `'{"a": [1, 2]}'`, formatType: 'jsonb', duckdb: 'JSON' },
  { declared: 'text', value: "'plain'", formatType: 'text', duckdb: 'VARCHAR' },
  { declared: 'varchar(20)', value: "'short'", formatType: 'character varying(20)', duckdb: 'VARCHAR' },
  { declared: 'char(5)', value: "'abc'", formatType: 'character(5)', duckdb: 'VARCHAR' },
  { declared: 'name', value: "'relname'", formatType: 'name', duckdb: 'VARCHAR' },
  { declared: 'oid', value: '4294967295', formatType: 'oid', duckdb: 'BIGINT' },
  // Arrays: lists of the element's type; Postgres's text of one ({1,2}) is not DuckDB's ([1,2]), so a loader keeps it as text.
  { declared: 'integer[]', value: 'array[1, 2]', formatType: 'integer[]', duckdb: 'INTEGER[]', loaded: 'VARCHAR' },
  { declared: 'text[]', value: "array['a b', 'c,d']", formatType: 'text[]', duckdb: 'VARCHAR[]', loaded: 'VARCHAR' },
  { declared: 'numeric(12,2)[]', value: 'array[1.5]', formatType: 'numeric(12,2)[]', duckdb: 'DECIMAL(12,2)[]', loaded: 'VARCHAR' },
  { declared: 'timestamptz[]', value: "array['2024-01-01 00:00+00'::timestamptz]", formatType: 'timestamp with time zone[]', duckdb: 'TIMESTAMP WITH TIME ZONE[]', loaded: 'VARCHAR' },
  { declared: 'integer[][]', value: "'{{1,2},{3,4}}'", formatType: 'integer[]', duckdb: 'INTEGER[]', loaded: 'VARCHAR' },
  // bytea's text is one \x for all the bytes; DuckDB's BLOB text escapes each byte.
  { declared: 'bytea', value: "'\\x0102ff'::bytea", formatType: 'bytea', duckdb: 'BLOB', loaded: 'VARCHAR' },
  // Types DuckDB lacks: text.
  { declared: 'inet', value: "'192.168.0.1'", formatType: 'inet', duckdb: 'VARCHAR' },
  { declared: 'money', value: '12.5', formatType: 'money', duckdb: 'VARCHAR' },
  { declared: 'int4range', value: "'[1,5)'", formatType: 'int4range', duckdb: 'VARCHAR' },
  { declared: 'mood', value: "'happy'", formatType: 'mood', duckdb: 'VARCHAR' },
];

let admin: pg.Client;
let schema: string;
let duck: DuckDBInstance;
let conn: DuckDBConnection;
/** Each case's column as the server describes it: format_type, and its value as Postgres prints it. */
const described = new Map<string, { formatType: string; text: string | null }>();

beforeAll(async () => {
  admin = await pgConnect();
  schema = newPgSchema();
  const s = pgQuoteIdent(schema);
  await admin.query(`create schema ${s}`);
  await admin.query(`create type ${s}.mood as enum ('sad', 'happy')`);
  await admin.query(`set search_path to ${s}, public`);
  const cols = CASES.map((c, i) => `c${i} ${c.declared}`).join(', ');
  await admin.query(`create table ${s}.typed (${cols})`);
  await admin.query(`insert into ${s}.typed values (${CASES.map((c) => `${c.value}::${c.declared}`).join(', ')})`);
  const types = await admin.query<{ n: number; t: string }>(
    `select a.attnum as n, format_type(a.atttypid, a.atttypmod) as t from pg_attribute a where a.attrelid = $1::regclass and a.attnum > 0 order by a.attnum`,
    [`${s}.typed`],
  );
  // ::text is what COPY's CSV carries for a value (before the CSV quoting the reader undoes).
  const text = await admin.query(`select ${CASES.map((_, i) => `c${i}::text`).join(', ')} from ${s}.typed`);
  CASES.forEach((c, i) => described.set(c.declared, { formatType: types.rows[i]!.t, text: text.rows[0]![`c${i}`] as string | null }));
  duck = await DuckDBInstance.create(':memory:');
  conn = await duck.connect();
});

afterAll(async () => {
  conn?.closeSync();
  duck?.closeSync();
  if (schema) await dropPgSchema(admin, schema);
  await admin?.end();
});

describe('Postgres types as DuckDB types: one mapping', () => {
  for (const c of CASES) {
    it(`${c.declared}: ${c.duckdb}${c.loaded ? `, loaded as ${c.loaded}` : ''}`, async () => {
      const d = described.get(c.declared)!;
      expect(d.formatType).toBe(c.formatType);
      // The stand-in of a Postgres target's column when DuckDB binds a model.
      expect(dialectFor('postgres').bindingType(d.formatType)).toBe(c.duckdb);
      // The column a loader makes in a DuckDB or Delta target.
      const loaded = c.loaded ?? c.duckdb;
      expect(dialectFor('duckdb').typeFromPostgres(d.formatType)).toBe(loaded);
      expect(dialectFor('delta').typeFromPostgres(d.formatType)).toBe(loaded);
      // A type DuckDB has, as DuckDB spells it.
      const r = await conn.runAndReadAll(`select typeof(cast(null as ${c.duckdb}))`);
      expect(r.getRows()[0]![0]).toBe(c.duckdb);
      // The loaded type reads Postgres's text of the value; where it stays text, DuckDB's own type cannot.
      await expect(conn.runAndReadAll(`select cast($1::varchar as ${loaded})`, [d.text])).resolves.toBeDefined();
      if (c.duckdb === 'BLOB') {
        // Read as DuckDB's BLOB text, '\\x0102ff' is 1 escaped byte and 5 characters, not Postgres's 3 bytes.
        const misread = await conn.runAndReadAll(`select octet_length(cast($1::varchar as BLOB))`, [d.text]);
        expect(Number(misread.getRows()[0]![0])).not.toBe(3);
      } else if (c.loaded) await expect(conn.runAndReadAll(`select cast($1::varchar as ${c.duckdb})`, [d.text])).rejects.toThrow(/Conversion Error/);
    });
  }

  it('a yml may spell them as Postgres allows: aliases, spaces, array bounds, upper case as DuckDB bound it', () => {
    const bind = dialectFor('postgres').bindingType;
    expect(['int4', 'int8', 'int2', 'serial', 'bigserial', 'float8', 'float4', 'bool', 'decimal', 'timestamptz(3)', 'timetz', 'interval day to second'].map(bind)).toEqual([
      'INTEGER', 'BIGINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'DOUBLE', 'FLOAT', 'BOOLEAN', 'DOUBLE', 'TIMESTAMP WITH TIME ZONE', 'TIME WITH TIME ZONE', 'INTERVAL',
    ]);
    expect(bind('numeric( 16 , 2 )')).toBe('DECIMAL(16,2)');
    expect(bind('integer[3]')).toBe('INTEGER[]');
    expect(bind('Numeric(10,2)')).toBe('DECIMAL(10,2)');
    // Scales DECIMAL cannot hold (Postgres 15 allows them): DOUBLE.
    expect(bind('numeric(5,-2)')).toBe('DOUBLE');
    expect(bind('numeric(2,5)')).toBe('DOUBLE');
    // DuckDB's spelling, as DuckDB bound a model whose types the server did not give: kept.
    expect(bind('DECIMAL(38,2)')).toBe('DECIMAL(38,2)');
    expect(bind('STRUCT(a INTEGER)[]')).toBe('STRUCT(a INTEGER)[]');
    expect(bind('TIMESTAMP WITH TIME ZONE')).toBe('TIMESTAMP WITH TIME ZONE');
  });
});
