// The type names each engine knows, as written in DDL (base names, without
// parameters or array brackets): what a seed's `column_types` may use. Part of
// the Dialect (connection-free, driver-free).

export const DUCKDB_TYPES = [
  'bigint', 'int8', 'long', 'integer', 'int4', 'int', 'signed', 'smallint', 'int2', 'short', 'tinyint', 'int1',
  'hugeint', 'int128', 'uhugeint', 'uint128', 'ubigint', 'uint64', 'uinteger', 'uint32', 'usmallint', 'uint16', 'utinyint', 'uint8',
  'varint', 'bignum', 'boolean', 'bool', 'logical', 'blob', 'bytea', 'binary', 'varbinary', 'date', 'double', 'float8',
  'double precision', 'float', 'float4', 'real', 'decimal', 'numeric', 'interval', 'json', 'time', 'timetz',
  'time with time zone', 'time without time zone', 'timestamp', 'datetime', 'timestamptz', 'timestamp with time zone',
  'timestamp without time zone', 'timestamp_s', 'timestamp_ms', 'timestamp_ns', 'timestamp_us', 'uuid', 'varchar', 'char', 'bpchar',
  'text', 'string', 'nvarchar', 'character varying', 'character', 'bit', 'bitstring',
];

export const POSTGRES_TYPES = [
  'smallint', 'integer', 'int', 'bigint', 'int2', 'int4', 'int8', 'decimal', 'numeric', 'real', 'double precision', 'float',
  'float4', 'float8', 'smallserial', 'serial', 'bigserial', 'serial2', 'serial4', 'serial8', 'money', 'character', 'char',
  'varchar', 'character varying', 'bpchar', 'text', 'name', 'bytea', 'timestamp', 'timestamp without time zone',
  'timestamp with time zone', 'timestamptz', 'date', 'time', 'time without time zone', 'time with time zone', 'timetz',
  'interval', 'boolean', 'bool', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle', 'cidr', 'inet', 'macaddr',
  'macaddr8', 'bit', 'bit varying', 'varbit', 'tsvector', 'tsquery', 'uuid', 'xml', 'json', 'jsonb', 'jsonpath', 'oid',
  'int4range', 'int8range', 'numrange', 'tsrange', 'tstzrange', 'daterange', 'int4multirange', 'int8multirange',
  'nummultirange', 'tsmultirange', 'tstzmultirange', 'datemultirange', 'pg_lsn', 'txid_snapshot', 'pg_snapshot', 'regclass',
];
