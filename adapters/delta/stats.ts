// Per-file statistics (PROTOCOL.md "Per-file Statistics"): numRecords and, per
// column, minValues, maxValues and nullCount, taken from the Parquet footers
// DuckDB just wrote (parquet_metadata), never from a second read of the data.
// Row-group statistics are folded into file statistics here; a column whose
// row groups lack a bound gets no bound rather than a wrong one.

import { fileList, type SqlSession } from './sql.js';
import type { DeltaType, StructType } from './schema.js';

/**
 * Longer strings get bounds cut to this many characters, as Delta's own
 * writers do: the prefix as the minimum (never above any value), the prefix
 * with its last character incremented as the maximum (above every value that
 * starts with the prefix). PROTOCOL.md asks only for bounds, not exact values.
 */
export const STRING_STATS_LIMIT = 32;

/** The smallest string above every string starting with `prefix` (code point order, which is UTF-8 byte order), or undefined when none is (all U+10FFFF). */
export function stringAbove(prefix: string): string | undefined {
  const points = [...prefix].map((c) => c.codePointAt(0)!);
  while (points.length) {
    const last = points.pop()!;
    if (last >= 0x10ffff) continue;
    // Surrogates are not characters: the one after U+D7FF is U+E000.
    points.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
    return String.fromCodePoint(...points);
  }
  return undefined;
}

/** A string bound as Delta keeps it: at most STRING_STATS_LIMIT characters, still a bound. */
export function stringBound(value: string, side: 'min' | 'max'): string | undefined {
  const chars = [...value];
  if (chars.length <= STRING_STATS_LIMIT) return value;
  const prefix = chars.slice(0, STRING_STATS_LIMIT).join('');
  return side === 'min' ? prefix : stringAbove(prefix);
}

export interface FileStats {
  numRecords: number;
  minValues: Record<string, unknown>;
  maxValues: Record<string, unknown>;
  nullCount: Record<string, unknown>;
}

interface Leaf {
  /** Path through structs, top level first. */
  path: string[];
  type: string;
}

/** Leaves with statistics: primitive columns, also inside structs (lists and maps have none in Delta). */
function statLeaves(schema: StructType, skip: Set<string>): Leaf[] {
  const out: Leaf[] = [];
  const walk = (t: DeltaType, path: string[]) => {
    if (typeof t === 'string') out.push({ path, type: t });
    else if (t.type === 'struct') for (const f of t.fields) walk(f.type, [...path, f.name]);
  };
  for (const f of schema.fields) if (!skip.has(f.name)) walk(f.type, [f.name]);
  return out;
}

/** Compares two row-group bounds of one Delta type; undefined when they cannot be compared. */
function compare(type: string, a: string, b: string): number {
  if (type === 'long' || type === 'integer' || type === 'short' || type === 'byte') {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type === 'float' || type === 'double') return Number(a) - Number(b);
  if (type.startsWith('decimal')) {
    const x = decimalUnits(a);
    const y = decimalUnits(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type === 'timestamp' || type === 'timestamp_ntz') {
    const x = timestampMicros(a);
    const y = timestampMicros(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function decimalUnits(s: string): bigint {
  const neg = s.startsWith('-');
  const [i = '0', f = ''] = s.replace(/^[-+]/, '').split('.');
  const v = BigInt(i + f.padEnd(38, '0'));
  return neg ? -v : v;
}

/** Microseconds since the epoch of DuckDB's printed timestamp ("2020-01-01 10:00:00.123456+00", zone optional = UTC). */
export function timestampMicros(s: string): bigint {
  const m = /^(-?\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?\s*(Z|[+-]\d\d(?::?\d\d)?)?$/.exec(s.trim());
  if (!m) throw new Error(`not a timestamp: ${s}`);
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  let micros = BigInt(ms) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0').slice(0, 6) || '0');
  const zone = m[8];
  if (zone && zone !== 'Z') {
    const z = /^([+-])(\d\d):?(\d\d)?$/.exec(zone)!;
    const offset = (Number(z[2]) * 60 + Number(z[3] ?? 0)) * 60_000_000;
    micros -= BigInt(z[1] === '-' ? -offset : offset);
  }
  return micros;
}

/** Spark's JSON form of a timestamp statistic: milliseconds, UTC with Z (timestamp) or without a zone (timestamp_ntz). */
function timestampStat(micros: bigint, ntz: boolean): string {
  const ms = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n); // truncated down to milliseconds
  const iso = new Date(Number(ms)).toISOString();
  return ntz ? iso.slice(0, -1) : iso;
}

/** A bound as it goes into the stats JSON, or undefined when Delta keeps none for the type. */
function statValue(type: string, raw: string, side: 'min' | 'max'): unknown {
  switch (type) {
    case 'long':
    case 'integer':
    case 'short':
    case 'byte':
      return new RawNumber(String(BigInt(raw)));
    case 'float':
    case 'double': {
      const n = Number(raw);
      return Number.isFinite(n) ? n : undefined;
    }
    case 'date':
      return raw;
    case 'timestamp':
    case 'timestamp_ntz':
      return timestampStat(timestampMicros(raw), type === 'timestamp_ntz');
    case 'string':
      return stringBound(raw, side);
    case 'boolean':
      return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : undefined;
    default:
      if (type.startsWith('decimal')) return /^-?\d+(\.\d+)?$/.test(raw) ? new RawNumber(raw) : undefined;
      return undefined; // binary: no bounds, as in Delta's own writers
  }
}

/** A number kept as its exact decimal text (longs beyond 2^53, decimals), written unquoted into the stats JSON. */
export class RawNumber {
  constructor(readonly text: string) {}
  toJSON(): number {
    return Number(this.text);
  }
}

/** The stats JSON string of add.stats, with exact numbers. */
export function serializeStats(stats: FileStats): string {
  const write = (v: unknown): string => {
    if (v instanceof RawNumber) return v.text;
    if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${write(x)}`).join(',')}}`;
    return JSON.stringify(v);
  };
  return write(stats);
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let o = target;
  for (const p of path.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[path.at(-1)!] = value;
}

/**
 * Statistics of Parquet files (DuckDB locations), keyed by location. `skip`
 * names columns not in the files (partition columns).
 */
export async function collectStats(session: SqlSession, locations: string[], schema: StructType, skip: Set<string>): Promise<Map<string, FileStats>> {
  const out = new Map<string, FileStats>();
  if (locations.length === 0) return out;
  const files = fileList(locations);
  const [meta, counts] = await Promise.all([
    session.query(`select file_name, path_in_schema, stats_min_value, stats_max_value, stats_null_count, row_group_num_rows from parquet_metadata(${files})`),
    session.query(`select file_name, num_rows from parquet_file_metadata(${files})`),
  ]);
  for (const [file, rows] of counts.rows) out.set(String(file), { numRecords: Number(rows), minValues: {}, maxValues: {}, nullCount: {} });
  const leaves = new Map(statLeaves(schema, skip).map((l) => [l.path.join(', '), l]));
  interface Acc {
    min?: string;
    max?: string;
    nulls: number;
    boundsValid: boolean;
  }
  const acc = new Map<string, Map<string, Acc>>();
  for (const [file, pathInSchema, min, max, nullCount, rgRows] of meta.rows) {
    const leaf = leaves.get(String(pathInSchema));
    if (!leaf) continue;
    let perFile = acc.get(String(file));
    if (!perFile) acc.set(String(file), (perFile = new Map()));
    let a = perFile.get(leaf.path.join('\u0000'));
    if (!a) perFile.set(leaf.path.join('\u0000'), (a = { nulls: 0, boundsValid: true }));
    const nulls = nullCount == null ? NaN : Number(nullCount);
    a.nulls += nulls;
    if (min == null || max == null) {
      // A row group of only nulls has no bounds and needs none; otherwise a bound is unknown.
      if (!(nulls === Number(rgRows))) a.boundsValid = false;
      continue;
    }
    try {
      if (a.min === undefined || compare(leaf.type, String(min), a.min) < 0) a.min = String(min);
      if (a.max === undefined || compare(leaf.type, String(max), a.max) > 0) a.max = String(max);
    } catch {
      a.boundsValid = false;
    }
  }
  for (const [file, perFile] of acc) {
    const stats = out.get(file);
    if (!stats) continue;
    for (const [key, a] of perFile) {
      const path = key.split('\u0000');
      const leaf = leaves.get(path.join(', '))!;
      if (Number.isFinite(a.nulls)) setPath(stats.nullCount, path, a.nulls);
      if (!a.boundsValid || a.min === undefined || a.max === undefined) continue;
      const min = statValue(leaf.type, a.min, 'min');
      const max = statValue(leaf.type, a.max, 'max');
      if (min === undefined || max === undefined) continue;
      setPath(stats.minValues, path, min);
      setPath(stats.maxValues, path, max);
    }
  }
  return out;
}
