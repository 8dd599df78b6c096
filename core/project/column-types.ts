// Type names a seed's `column_types` may use, per target engine. Checked when
// the project is loaded, so a typo (`integr`) is a project error at its yml
// line before any connection is made or any table written, instead of an
// engine error halfway through a build. A user-defined type is written
// schema-qualified (`public.citext`) and passes unchecked: only the engine
// knows it.

import { closestMatch } from '../errors.js';

const DUCKDB = [
  'bigint', 'int8', 'long', 'integer', 'int4', 'int', 'signed', 'smallint', 'int2', 'short', 'tinyint', 'int1',
  'hugeint', 'int128', 'uhugeint', 'uint128', 'ubigint', 'uint64', 'uinteger', 'uint32', 'usmallint', 'uint16', 'utinyint', 'uint8',
  'varint', 'bignum', 'boolean', 'bool', 'logical', 'blob', 'bytea', 'binary', 'varbinary', 'date', 'double', 'float8',
  'double precision', 'float', 'float4', 'real', 'decimal', 'numeric', 'interval', 'json', 'time', 'timetz',
  'time with time zone', 'time without time zone', 'timestamp', 'datetime', 'timestamptz', 'timestamp with time zone',
  'timestamp without time zone', 'timestamp_s', 'timestamp_ms', 'timestamp_ns', 'timestamp_us', 'uuid', 'varchar', 'char', 'bpchar',
  'text', 'string', 'nvarchar', 'character varying', 'character', 'bit', 'bitstring',
];

const POSTGRES = [
  'smallint', 'integer', 'int', 'bigint', 'int2', 'int4', 'int8', 'decimal', 'numeric', 'real', 'double precision', 'float',
  'float4', 'float8', 'smallserial', 'serial', 'bigserial', 'serial2', 'serial4', 'serial8', 'money', 'character', 'char',
  'varchar', 'character varying', 'bpchar', 'text', 'name', 'bytea', 'timestamp', 'timestamp without time zone',
  'timestamp with time zone', 'timestamptz', 'date', 'time', 'time without time zone', 'time with time zone', 'timetz',
  'interval', 'boolean', 'bool', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle', 'cidr', 'inet', 'macaddr',
  'macaddr8', 'bit', 'bit varying', 'varbit', 'tsvector', 'tsquery', 'uuid', 'xml', 'json', 'jsonb', 'jsonpath', 'oid',
  'int4range', 'int8range', 'numrange', 'tsrange', 'tstzrange', 'daterange', 'int4multirange', 'int8multirange',
  'nummultirange', 'tsmultirange', 'tstzmultirange', 'datemultirange', 'pg_lsn', 'txid_snapshot', 'pg_snapshot', 'regclass',
];

const KNOWN: Record<string, Set<string>> = { duckdb: new Set(DUCKDB), delta: new Set(DUCKDB), postgres: new Set(POSTGRES) };

/** The base of a type name: `numeric(16, 2)` -> numeric, `varchar[]` -> varchar, `TIMESTAMP  WITH TIME ZONE` -> timestamp with time zone. */
function baseName(type: string): string {
  return type
    .toLowerCase()
    .replace(/\[\d*\]/g, '')
    .replace(/\([^)]*\)/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Why `type` is not a type of `engine`, with the closest known one; undefined when it is one. */
export function unknownColumnType(engine: string, type: string): { message: string; hint: string } | undefined {
  const known = KNOWN[engine];
  if (!known) return undefined;
  const base = baseName(type);
  if (known.has(base) || base.includes('.') || base.includes('"')) return undefined;
  // DuckDB's nested types (struct(...), map(...), a[] of anything, enum(...)) and Postgres' arrays of known types.
  if (engine !== 'postgres' && /^(struct|map|union|list|enum)\b/.test(base)) return undefined;
  const match = closestMatch(base, known);
  return {
    message: `unknown type "${type}"`,
    hint: `${match ? `did you mean "${match}"? ` : ''}a user-defined type is written schema-qualified (e.g. public.citext)`,
  };
}
