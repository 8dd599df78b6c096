// A dialect is the pure, connection-free part of an engine: how identifiers
// are quoted and relations named, and what else the core must know of an
// engine before (or without) connecting: its default schema, its formatter
// language, its name length limit, whether opening it writes anything. The
// compiler needs it to render {{ref}} without opening a connection, so this
// module must stay free of drivers. Core code asks the dialect; it never
// compares an engine's name.

import { createHash } from 'node:crypto';
import { DUCKDB_TYPES, POSTGRES_TYPES } from './type-names.js';

export interface Dialect {
  /** Engine name, as in a target's `type`. */
  readonly name: 'duckdb' | 'postgres' | 'delta';
  /** sql-formatter language for `--format`. */
  readonly formatterLanguage: 'duckdb' | 'postgresql';
  /** The schema models go to when the target names none. */
  readonly defaultSchema: string;
  /**
   * Whether opening the target creates nothing (a connection to a server),
   * rather than the target itself (an embedded database file): such a target
   * may be opened while the project is still being compiled, before it is
   * known to be good.
   */
  readonly opensWithoutWriting: boolean;
  /**
   * Whether a query may read another database by name: DuckDB reads any
   * attached database as "db"."schema"."table"; Postgres only the one it is
   * connected to, so a source's `database:` must name that one.
   */
  readonly readsOtherDatabases: boolean;
  /** The longest name (of a schema, a relation) the engine keeps, in bytes; longer ones it would truncate. */
  readonly maxNameBytes?: number;
  /** Base names of the types the engine knows (lower case, no parameters): what a seed's column_types may use. */
  readonly knownTypes: ReadonlySet<string>;
  /** Type constructors that take any argument list (DuckDB's struct(...), map(...), enum(...)). */
  readonly nestedTypes?: RegExp;
  quoteIdentifier(name: string): string;
  /** The relation as it appears in SQL. */
  relation(schema: string, name: string): string;
  /** A string literal. Prefer bound parameters; this is for DDL where engines accept no binds. */
  quoteString(value: string): string;
  /**
   * An older version of a table as a relation name (targets that keep versions: Delta):
   * the adapter makes the name readable when a statement uses it.
   */
  versionedRelation?(schema: string, name: string, at: { version: number } | { timestamp: string }): string;
  /** A type name in one canonical spelling, so `int` and `INTEGER` compare equal (contracts). */
  canonicalType(type: string): string;
  /**
   * The type a column of a Postgres source (as format_type prints it:
   * `numeric(12,2)`, `timestamp with time zone`, `integer[]`) gets when a
   * loader loads it here, reading Postgres's CSV text. Types without an
   * equivalent become text.
   */
  typeFromPostgres(type: string): string;
  /**
   * Whether the engine binds SQL itself (a server), so that static analysis
   * sends it what DuckDB cannot bind, and takes the final result types from it.
   */
  readonly bindsOnServer: boolean;
  /** A type name of this engine as DuckDB spells it: the type of a stand-in column when DuckDB binds a model (core/analysis). */
  bindingType(type: string): string;
}

const TYPE_ALIASES: Record<string, string> = {
  int: 'integer',
  int4: 'integer',
  signed: 'integer',
  int8: 'bigint',
  long: 'bigint',
  int2: 'smallint',
  short: 'smallint',
  float8: 'double',
  'double precision': 'double',
  float4: 'real',
  float: 'double',
  numeric: 'decimal',
  bool: 'boolean',
  logical: 'boolean',
  text: 'varchar',
  string: 'varchar',
  'character varying': 'varchar',
  char: 'varchar',
  bpchar: 'varchar',
  'timestamp without time zone': 'timestamp',
  datetime: 'timestamp',
  'timestamp with time zone': 'timestamptz',
};

/** Lower case, single spaces, aliases folded; parameters kept: decimal(16,2). */
export function canonicalTypeAnsi(type: string): string {
  const t = type.trim().toLowerCase().replace(/\s+/g, ' ').replace(/\s*\(\s*/g, '(').replace(/\s*,\s*/g, ',').replace(/\s*\)/g, ')');
  const m = /^([a-z][a-z0-9 ]*?)(\(.*\))?$/.exec(t);
  if (!m) return t;
  const base = TYPE_ALIASES[m[1]!] ?? m[1]!;
  // varchar(n) and varchar are the same type to a contract.
  if (base === 'varchar') return 'varchar';
  return `${base}${m[2] ?? ''}`;
}

/** Standard SQL quoting: double quotes, doubled inside. */
export function quoteIdentifierAnsi(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteStringAnsi(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

const ansi = {
  canonicalType: canonicalTypeAnsi,
  quoteIdentifier: quoteIdentifierAnsi,
  quoteString: quoteStringAnsi,
  relation(schema: string, name: string): string {
    return `${quoteIdentifierAnsi(schema)}.${quoteIdentifierAnsi(name)}`;
  },
};

/** Postgres base types and DuckDB's equivalent (read from Postgres's CSV text); others load as varchar. */
const DUCKDB_FROM_POSTGRES: Record<string, string> = {
  smallint: 'SMALLINT',
  integer: 'INTEGER',
  bigint: 'BIGINT',
  real: 'FLOAT',
  'double precision': 'DOUBLE',
  boolean: 'BOOLEAN',
  date: 'DATE',
  'timestamp without time zone': 'TIMESTAMP',
  'timestamp with time zone': 'TIMESTAMPTZ',
  'time without time zone': 'TIME',
  'time with time zone': 'TIMETZ',
  interval: 'INTERVAL',
  uuid: 'UUID',
  json: 'JSON',
  jsonb: 'JSON',
  text: 'VARCHAR',
  'character varying': 'VARCHAR',
  character: 'VARCHAR',
  name: 'VARCHAR',
  oid: 'BIGINT',
};

function duckdbTypeFromPostgres(type: string): string {
  const t = type.trim().toLowerCase();
  if (t.endsWith(']')) return 'VARCHAR';
  const numeric = /^numeric(?:\((\d+)(?:,(\d+))?\))?$/.exec(t.replace(/\s+/g, ''));
  if (numeric) {
    // DuckDB's DECIMAL holds 38 digits; an unconstrained numeric has no fixed scale: DOUBLE.
    const [p, sc] = [Number(numeric[1] ?? NaN), Number(numeric[2] ?? 0)];
    return Number.isFinite(p) && p <= 38 ? `DECIMAL(${p},${sc})` : 'DOUBLE';
  }
  const base = t.replace(/\(\d+(,\d+)?\)/, '').replace(/\s+/g, ' ').trim();
  return DUCKDB_FROM_POSTGRES[base] ?? 'VARCHAR';
}

/** Postgres type names (format_type's, and the aliases a yml may use) as DuckDB types. */
const DUCKDB_BINDING_TYPES: Array<[RegExp, string | ((m: RegExpExecArray) => string)]> = [
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

function duckdbBindingTypeOfPostgres(type: string): string {
  // DuckDB spells the types it bound in upper case; Postgres's format_type in lower case.
  if (!/[a-z]/.test(type)) return type;
  const t = type.trim().toLowerCase();
  const array = /\[\]$/.test(t);
  const base = t.replace(/(\[\d*\])+$/, '');
  for (const [re, to] of DUCKDB_BINDING_TYPES) {
    const m = re.exec(base);
    if (m) return `${typeof to === 'string' ? to : to(m)}${array ? '[]' : ''}`;
  }
  return `VARCHAR${array ? '[]' : ''}`;
}

/** Postgres keeps a built-in type as it is; a type of the source's own (an enum, a domain) becomes text. */
function postgresTypeFromPostgres(type: string): string {
  const base = type.trim().toLowerCase().replace(/\[\d*\]/g, '').replace(/\(.*\)/, '').replace(/\s+/g, ' ').trim();
  return POSTGRES_BUILTIN_BASES.has(base) ? type : type.trim().endsWith(']') ? 'text[]' : 'text';
}
const POSTGRES_BUILTIN_BASES = new Set([...POSTGRES_TYPES, 'time with time zone', 'time without time zone', 'timestamp with time zone', 'timestamp without time zone', 'bit varying']);

const duckdbTypes = { knownTypes: new Set(DUCKDB_TYPES), nestedTypes: /^(struct|map|union|list|enum)\b/, typeFromPostgres: duckdbTypeFromPostgres, bindsOnServer: false, bindingType: (type: string) => type };

const DIALECTS: Record<Dialect['name'], Dialect> = {
  duckdb: { name: 'duckdb', formatterLanguage: 'duckdb', defaultSchema: 'main', opensWithoutWriting: false, readsOtherDatabases: true, ...duckdbTypes, ...ansi },
  postgres: { name: 'postgres', formatterLanguage: 'postgresql', defaultSchema: 'public', opensWithoutWriting: true, readsOtherDatabases: false, maxNameBytes: 63, knownTypes: new Set(POSTGRES_TYPES), typeFromPostgres: postgresTypeFromPostgres, bindsOnServer: true, bindingType: duckdbBindingTypeOfPostgres, ...ansi },
  // Delta tables are computed by DuckDB, so SQL over them is DuckDB's.
  delta: {
    name: 'delta',
    formatterLanguage: 'duckdb',
    defaultSchema: 'main',
    opensWithoutWriting: false,
    readsOtherDatabases: true,
    ...duckdbTypes,
    ...ansi,
    // "orders@v12" / "orders@2024-06-01T00:00:00.000Z": a view the Delta adapter makes on first use (adapters/delta/session.ts).
    versionedRelation: (schema, name, at) => ansi.relation(schema, `${name}@${'version' in at ? `v${at.version}` : at.timestamp}`),
  },
};

export function dialectFor(type: Dialect['name']): Dialect {
  return DIALECTS[type];
}

/**
 * An internal relation's name, `<name><suffix>` (`__etl_tmp`, `__etl_changes`):
 * when the engine would truncate it, the name is cut and a hash of the whole
 * name added, so two long names never share an internal relation and the
 * engine never shortens one silently.
 */
export function internalName(dialect: Dialect, name: string, suffix: string): string {
  const plain = `${name}${suffix}`;
  const max = dialect.maxNameBytes;
  if (max === undefined || Buffer.byteLength(plain) <= max) return plain;
  const hash = createHash('sha1').update(name).digest('hex').slice(0, 8);
  let base = name;
  while (Buffer.byteLength(`${base}_${hash}${suffix}`) > max) base = base.slice(0, -1);
  return `${base}_${hash}${suffix}`;
}

/** A name the engine would truncate: an error naming it and the limit, or undefined. */
export function nameTooLong(dialect: Dialect, name: string): string | undefined {
  const max = dialect.maxNameBytes;
  if (max === undefined || Buffer.byteLength(name) <= max) return undefined;
  return `"${name}" is longer than ${max} bytes, the most ${dialect.name} allows in a name; set a shorter alias`;
}
