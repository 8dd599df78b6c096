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

/** A type name in lower case, single spaces, none around its parameters: `numeric(12,2)`, `timestamp(3) with time zone`. */
function typeText(type: string): string {
  return type.trim().toLowerCase().replace(/\s+/g, ' ').replace(/\s*\(\s*/g, '(').replace(/\s*,\s*/g, ',').replace(/\s*\)/g, ')');
}

/** Lower case, single spaces, aliases folded; parameters kept: decimal(16,2). */
export function canonicalTypeAnsi(type: string): string {
  const t = typeText(type);
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

/**
 * Postgres types (format_type's spelling, and the aliases a yml may use) as
 * DuckDB types: the one mapping between the two, used wherever a Postgres
 * column becomes a DuckDB one (a loader into a DuckDB or Delta target, a
 * stand-in when DuckDB binds a model of a Postgres target). As DuckDB's own
 * postgres scanner maps them: a numeric without a precision has no fixed
 * scale and becomes DOUBLE, as does one wider than DECIMAL's 38 digits; an
 * array is a list of its element's type; a type DuckDB lacks (an enum, a
 * domain, inet, money, a range) is text.
 */
const DUCKDB_OF_POSTGRES: Array<[RegExp, string | ((m: RegExpExecArray) => string)]> = [
  [/^(integer|int|int4|serial|serial4)$/, 'INTEGER'],
  [/^(bigint|int8|bigserial|serial8|oid)$/, 'BIGINT'],
  [/^(smallint|int2|smallserial|serial2)$/, 'SMALLINT'],
  [/^(?:numeric|decimal)\((\d+)(?:,(-?\d+))?\)$/, (m) => (Number(m[1]) <= 38 && Number(m[2] ?? 0) >= 0 && Number(m[2] ?? 0) <= Number(m[1]) ? `DECIMAL(${m[1]},${m[2] ?? 0})` : 'DOUBLE')],
  [/^(numeric|decimal)$/, 'DOUBLE'],
  [/^(double precision|float8|float)$/, 'DOUBLE'],
  [/^(real|float4)$/, 'FLOAT'],
  [/^(boolean|bool)$/, 'BOOLEAN'],
  [/^date$/, 'DATE'],
  [/^(timestamp(\(\d+\))? with time zone|timestamptz(\(\d+\))?)$/, 'TIMESTAMP WITH TIME ZONE'],
  [/^timestamp(\(\d+\))?( without time zone)?$/, 'TIMESTAMP'],
  [/^(time(\(\d+\))? with time zone|timetz(\(\d+\))?)$/, 'TIME WITH TIME ZONE'],
  [/^time(\(\d+\))?( without time zone)?$/, 'TIME'],
  [/^interval\b/, 'INTERVAL'],
  [/^uuid$/, 'UUID'],
  [/^bytea$/, 'BLOB'],
  [/^jsonb?$/, 'JSON'],
];

/** A Postgres type as DuckDB's (see DUCKDB_OF_POSTGRES). */
export function duckdbTypeOfPostgres(type: string): string {
  const t = typeText(type);
  // format_type prints `integer[]` whatever the dimensions; a yml may write `integer[3]` or `integer[][]`.
  const array = /\[\d*\]$/.test(t);
  const base = t.replace(/(\[\d*\])+$/, '');
  let duck = 'VARCHAR';
  for (const [re, to] of DUCKDB_OF_POSTGRES) {
    const m = re.exec(base);
    if (m) {
      duck = typeof to === 'string' ? to : to(m);
      break;
    }
  }
  return array ? `${duck}[]` : duck;
}

/**
 * The type a Postgres column gets when a loader stages it in DuckDB from
 * Postgres's CSV text (COPY ... TO STDOUT): its DuckDB type, except where
 * DuckDB cannot read that text back: an array (`{1,2}`, where DuckDB reads
 * `[1,2]`) and bytea (`\x0102`, one escape for all the bytes) stay text.
 */
function duckdbLoadedTypeOfPostgres(type: string): string {
  const duck = duckdbTypeOfPostgres(type);
  return duck.endsWith('[]') || duck === 'BLOB' ? 'VARCHAR' : duck;
}

/**
 * The stand-in type of a column of a Postgres target when DuckDB binds a
 * model: a type in DuckDB's spelling (its name upper case, as DuckDB bound it:
 * `DECIMAL(38,2)`, `STRUCT(a INTEGER)[]`) is kept.
 */
function duckdbBindingTypeOfPostgres(type: string): string {
  return /^[A-Z][A-Z ]*(\(|\[|$)/.test(type.trim()) ? type : duckdbTypeOfPostgres(type);
}

/** Postgres keeps a built-in type as it is; a type of the source's own (an enum, a domain) becomes text. */
function postgresTypeFromPostgres(type: string): string {
  const base = type.trim().toLowerCase().replace(/\[\d*\]/g, '').replace(/\(.*\)/, '').replace(/\s+/g, ' ').trim();
  return POSTGRES_BUILTIN_BASES.has(base) ? type : type.trim().endsWith(']') ? 'text[]' : 'text';
}
const POSTGRES_BUILTIN_BASES = new Set([...POSTGRES_TYPES, 'time with time zone', 'time without time zone', 'timestamp with time zone', 'timestamp without time zone', 'bit varying']);

const duckdbTypes = { knownTypes: new Set(DUCKDB_TYPES), nestedTypes: /^(struct|map|union|list|enum)\b/, typeFromPostgres: duckdbLoadedTypeOfPostgres, bindsOnServer: false, bindingType: (type: string) => type };

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
