// Table schemas: Delta's JSON form (Spark's StructType, PROTOCOL.md "Schema
// Serialization Format") and DuckDB's types, both ways. Reading maps every
// Delta type; writing maps what DuckDB computes to the Delta type that holds
// it exactly (widening unsigned and 128-bit integers where a wider Delta type
// exists) and refuses a type Delta cannot hold, naming the column.

import { DeltaTableError } from './errors.js';

export type DeltaType = string | StructType | ArrayType | MapType;

export interface StructField {
  name: string;
  type: DeltaType;
  nullable: boolean;
  metadata: Record<string, unknown>;
}

export interface StructType {
  type: 'struct';
  fields: StructField[];
}

export interface ArrayType {
  type: 'array';
  elementType: DeltaType;
  containsNull: boolean;
}

export interface MapType {
  type: 'map';
  keyType: DeltaType;
  valueType: DeltaType;
  valueContainsNull: boolean;
}

const PRIMITIVE_TO_DUCKDB: Record<string, string> = {
  string: 'VARCHAR',
  long: 'BIGINT',
  integer: 'INTEGER',
  short: 'SMALLINT',
  byte: 'TINYINT',
  float: 'FLOAT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  binary: 'BLOB',
  date: 'DATE',
  timestamp: 'TIMESTAMPTZ',
  timestamp_ntz: 'TIMESTAMP',
  // A void column is all nulls and absent from data files; any type holds that.
  void: 'INTEGER',
};

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Parses and checks a metaData.schemaString. */
export function parseSchema(schemaString: string, where: string): StructType {
  if (typeof schemaString !== 'string') throw new DeltaTableError(`${where}: metaData has no schemaString`);
  let value: unknown;
  try {
    value = JSON.parse(schemaString);
  } catch (err) {
    throw new DeltaTableError(`${where}: schemaString is not JSON: ${(err as Error).message}`);
  }
  const problem = checkType(value, 'schema');
  if (problem || (value as StructType).type !== 'struct') throw new DeltaTableError(`${where}: schemaString is not a Spark StructType: ${problem ?? 'the top level must be a struct'}`);
  return value as StructType;
}

/** Why `t` is not a valid Delta type, or undefined when it is. */
function checkType(t: unknown, at: string): string | undefined {
  if (typeof t === 'string') {
    return t in PRIMITIVE_TO_DUCKDB || /^decimal\(\s*\d+\s*,\s*\d+\s*\)$/.test(t) || t === 'variant' ? undefined : `${at}: unknown type "${t}"`;
  }
  if (typeof t !== 'object' || t === null) return `${at}: a type must be a string or an object`;
  const o = t as Record<string, unknown>;
  switch (o.type) {
    case 'struct': {
      if (!Array.isArray(o.fields)) return `${at}: struct without fields`;
      for (const f of o.fields as unknown[]) {
        const field = f as Record<string, unknown>;
        if (typeof field?.name !== 'string') return `${at}: a field without a name`;
        if (typeof field.nullable !== 'boolean') return `${at}.${field.name}: nullable must be a boolean`;
        if (typeof field.metadata !== 'object' || field.metadata === null) return `${at}.${field.name}: metadata must be an object`;
        const p = checkType(field.type, `${at}.${field.name}`);
        if (p) return p;
      }
      return undefined;
    }
    case 'array':
      if (typeof o.containsNull !== 'boolean') return `${at}: array without containsNull`;
      return checkType(o.elementType, `${at}.element`);
    case 'map':
      if (typeof o.valueContainsNull !== 'boolean') return `${at}: map without valueContainsNull`;
      return checkType(o.keyType, `${at}.key`) ?? checkType(o.valueType, `${at}.value`);
    default:
      return `${at}: unknown type ${JSON.stringify(o.type)}`;
  }
}

/** The DuckDB type that holds values of a Delta type. */
export function duckdbTypeOf(t: DeltaType): string {
  if (typeof t === 'string') {
    const p = PRIMITIVE_TO_DUCKDB[t];
    if (p) return p;
    const d = /^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(t);
    if (d) return `DECIMAL(${d[1]},${d[2]})`;
    throw new DeltaTableError(`Delta type ${t} has no DuckDB equivalent`);
  }
  if (t.type === 'struct') return `STRUCT(${t.fields.map((f) => `${quoteIdent(f.name)} ${duckdbTypeOf(f.type)}`).join(', ')})`;
  if (t.type === 'array') return `${duckdbTypeOf(t.elementType)}[]`;
  return `MAP(${duckdbTypeOf(t.keyType)}, ${duckdbTypeOf(t.valueType)})`;
}

/** Whether a type (anywhere inside) is timestamp_ntz, which needs the timestampNtz table feature. */
export function usesTimestampNtz(t: DeltaType): boolean {
  if (typeof t === 'string') return t === 'timestamp_ntz';
  if (t.type === 'struct') return t.fields.some((f) => usesTimestampNtz(f.type));
  if (t.type === 'array') return usesTimestampNtz(t.elementType);
  return usesTimestampNtz(t.keyType) || usesTimestampNtz(t.valueType);
}

// ---- DuckDB type strings (as DESCRIBE prints them) to Delta types ----

/** A DuckDB type, parsed from its printed form. */
interface DuckType {
  name: string;
  /** DECIMAL(p,s) parameters. */
  params?: number[];
  /** STRUCT fields, MAP key/value, LIST element. */
  fields?: Array<{ name: string; type: DuckType }>;
  element?: DuckType;
}

export function parseDuckDbType(text: string): DuckType {
  let i = 0;
  const s = text;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  const ident = (): string => {
    ws();
    if (s[i] === '"') {
      let out = '';
      i++;
      while (i < s.length) {
        if (s[i] === '"' && s[i + 1] === '"') {
          out += '"';
          i += 2;
        } else if (s[i] === '"') {
          i++;
          break;
        } else out += s[i++];
      }
      return out;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(s.slice(i));
    if (!m) throw new Error(`cannot parse DuckDB type ${text}`);
    i += m[0].length;
    return m[0];
  };
  const type = (): DuckType => {
    ws();
    let name = ident().toUpperCase();
    // Multi-word names: TIMESTAMP WITH TIME ZONE, DOUBLE PRECISION.
    const rest = s.slice(i).toUpperCase();
    const multi = /^\s+(WITH TIME ZONE|PRECISION|VARYING)\b/.exec(rest);
    if (multi) {
      name = `${name} ${multi[1]}`;
      i += multi[0].length;
    }
    let t: DuckType = { name };
    ws();
    if (s[i] === '(') {
      i++;
      if (name === 'STRUCT' || name === 'UNION') {
        t.fields = [];
        for (;;) {
          const fname = ident();
          t.fields.push({ name: fname, type: type() });
          ws();
          if (s[i] === ',') i++;
          else break;
        }
      } else if (name === 'MAP') {
        const k = type();
        ws();
        i++; // ','
        const v = type();
        t.fields = [
          { name: 'key', type: k },
          { name: 'value', type: v },
        ];
      } else {
        const params: number[] = [];
        for (;;) {
          ws();
          const m = /^-?\d+/.exec(s.slice(i));
          if (!m) break;
          params.push(Number(m[0]));
          i += m[0].length;
          ws();
          if (s[i] === ',') i++;
          else break;
        }
        t.params = params;
        // ENUM('a', 'b'): skip what is not a number, quotes included.
        let quoted = false;
        while (i < s.length && (quoted || s[i] !== ')')) {
          if (s[i] === "'") quoted = !quoted;
          i++;
        }
      }
      ws();
      i++; // ')'
    }
    for (;;) {
      ws();
      if (s[i] !== '[') break;
      const close = s.indexOf(']', i);
      i = close + 1;
      t = { name: 'LIST', element: t };
    }
    return t;
  };
  const t = type();
  return t;
}

const DUCKDB_TO_DELTA: Record<string, string> = {
  BOOLEAN: 'boolean',
  BOOL: 'boolean',
  TINYINT: 'byte',
  INT1: 'byte',
  SMALLINT: 'short',
  INT2: 'short',
  INTEGER: 'integer',
  INT: 'integer',
  INT4: 'integer',
  BIGINT: 'long',
  INT8: 'long',
  // Unsigned integers widen to the next signed type that holds every value.
  UTINYINT: 'short',
  USMALLINT: 'integer',
  UINTEGER: 'long',
  UBIGINT: 'decimal(20,0)',
  HUGEINT: 'decimal(38,0)',
  UHUGEINT: 'decimal(38,0)',
  FLOAT: 'float',
  REAL: 'float',
  DOUBLE: 'double',
  VARCHAR: 'string',
  UUID: 'string',
  JSON: 'string',
  ENUM: 'string',
  BLOB: 'binary',
  DATE: 'date',
  TIMESTAMP: 'timestamp_ntz',
  TIMESTAMP_S: 'timestamp_ntz',
  TIMESTAMP_MS: 'timestamp_ntz',
  TIMESTAMP_NS: 'timestamp_ntz',
  'TIMESTAMP WITH TIME ZONE': 'timestamp',
  TIMESTAMPTZ: 'timestamp',
};

const NO_DELTA_TYPE: Record<string, string> = {
  TIME: 'Delta has no time-of-day type; cast it to a string or a timestamp',
  TIMETZ: 'Delta has no time-of-day type; cast it to a string or a timestamp',
  'TIME WITH TIME ZONE': 'Delta has no time-of-day type; cast it to a string or a timestamp',
  INTERVAL: 'Delta has no interval type; cast it to a string or a number of seconds',
  BIT: 'Delta has no bit-string type; cast it to a string',
  BITSTRING: 'Delta has no bit-string type; cast it to a string',
  UNION: 'Delta has no union type; cast it to one type',
  VARINT: 'Delta has no unbounded integer type; cast it to decimal(38,0)',
  BIGNUM: 'Delta has no unbounded integer type; cast it to decimal(38,0)',
  NULL: 'the column is always NULL and has no type; cast it, e.g. cast(null as varchar)',
  '"NULL"': 'the column is always NULL and has no type; cast it',
};

/** The Delta type for a column DuckDB computed; an error naming the column for a type Delta cannot hold. */
export function deltaTypeOfDuckDb(typeText: string, column: string): DeltaType {
  const walk = (t: DuckType, at: string): DeltaType => {
    if (t.name === 'LIST' && t.element) return { type: 'array', elementType: walk(t.element, `${at}[]`), containsNull: true };
    if (t.name === 'STRUCT') {
      return { type: 'struct', fields: (t.fields ?? []).map((f) => ({ name: checkColumnName(f.name, `${at}.${f.name}`), type: walk(f.type, `${at}.${f.name}`), nullable: true, metadata: {} })) };
    }
    if (t.name === 'MAP') return { type: 'map', keyType: walk(t.fields![0]!.type, `${at}.key`), valueType: walk(t.fields![1]!.type, `${at}.value`), valueContainsNull: true };
    if (t.name === 'DECIMAL' || t.name === 'NUMERIC') {
      const [p = 18, sc = 3] = t.params ?? [];
      return `decimal(${p},${sc})`;
    }
    const mapped = DUCKDB_TO_DELTA[t.name];
    if (mapped) return mapped;
    const why = NO_DELTA_TYPE[t.name] ?? `Delta cannot hold DuckDB type ${t.name}; cast it to a supported type`;
    throw new DeltaTableError(`column ${at} has type ${typeText}, which a Delta table cannot hold: ${why}`);
  };
  let parsed: DuckType;
  try {
    parsed = parseDuckDbType(typeText);
  } catch {
    throw new DeltaTableError(`column ${column} has type ${typeText}, which etl cannot map to a Delta type`);
  }
  return walk(parsed, column);
}

const INVALID_NAME_CHARS = /[ ,;{}()\n\t=]/;

/** Delta without column mapping (and Spark) refuses these characters in column names. */
export function checkColumnName(name: string, at: string = name): string {
  if (INVALID_NAME_CHARS.test(name)) {
    throw new DeltaTableError(`column ${JSON.stringify(at)} has a character a Delta table cannot hold in a column name (one of  ,;{}()=, tab, newline)\n  hint: rename it with an alias, e.g. as ${name.replace(/[ ,;{}()\n\t=]+/g, '_')}`);
  }
  return name;
}

/** The table schema for columns DuckDB computed (name and printed type); refuses names equal but for case. */
export function schemaFromDuckDb(columns: Array<{ name: string; type: string }>): StructType {
  const seen = new Map<string, string>();
  const fields: StructField[] = [];
  for (const c of columns) {
    const lower = c.name.toLowerCase();
    if (seen.has(lower)) throw new DeltaTableError(`columns ${JSON.stringify(seen.get(lower))} and ${JSON.stringify(c.name)} differ only in case, which a Delta table cannot hold\n  hint: rename one of them`);
    seen.set(lower, c.name);
    checkColumnName(c.name);
    fields.push({ name: c.name, type: deltaTypeOfDuckDb(c.type, c.name), nullable: true, metadata: {} });
  }
  return { type: 'struct', fields };
}

/** The schema as it goes into metaData.schemaString. */
export function schemaString(schema: StructType): string {
  return JSON.stringify(schema);
}
