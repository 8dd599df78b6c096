// Partition values (PROTOCOL.md "Partition Value Serialization"): how a value
// is written into add.partitionValues and the Hive-style folder, and read
// back as a typed SQL literal. Paths in the log are URIs (RFC 2396), so a
// folder name with '%' in it is written as '%25'.

import { DeltaTableError } from './errors.js';
import { duckdbTypeOf, quoteIdent, type DeltaType } from './schema.js';
import { quoteString } from './sql.js';

/** DuckDB's (and Hive's) folder name for a NULL partition value. */
export const HIVE_NULL = '__HIVE_DEFAULT_PARTITION__';

/** SQL (DuckDB) that serializes a partition column to its Delta string; '' and NULL both become NULL, as the protocol reads them. */
export function serializePartitionSql(column: string, type: DeltaType): string {
  const c = quoteIdent(column);
  let expr: string;
  if (typeof type !== 'string') throw new DeltaTableError(`partition column ${column} has a nested type; Delta partitions hold only primitive types`);
  if (type === 'timestamp') expr = `strftime(timezone('UTC', ${c}), '%Y-%m-%dT%H:%M:%S.%fZ')`;
  else if (type === 'timestamp_ntz') expr = `strftime(${c}, '%Y-%m-%d %H:%M:%S.%f')`;
  else if (type === 'binary') throw new DeltaTableError(`partition column ${column} is binary; etl partitions by primitive, non-binary columns\n  hint: partition by a string column derived from it`);
  else expr = `cast(${c} as varchar)`;
  return `nullif(${expr}, '')`;
}

/** A partition value from the log as a typed SQL literal (NULL for null or ''). */
export function partitionLiteralSql(value: string | null | undefined, type: DeltaType): string {
  const duck = duckdbTypeOf(type);
  if (value === null || value === undefined || value === '') return `cast(null as ${duck})`;
  if (type === 'timestamp') {
    // Without a zone the protocol says "the writer's time zone", which the log does not record: etl reads it as UTC.
    const zoned = /(Z|[+-]\d\d(:?\d\d)?)$/.test(value) ? value : `${value}+00`;
    return `cast(${quoteString(zoned)} as TIMESTAMPTZ)`;
  }
  if (type === 'binary') return `encode(${quoteString(value)})`;
  return `cast(${quoteString(value)} as ${duck})`;
}

/** A relative file path as the log stores it: each segment URI-encoded (a literal '%' in a folder name becomes '%25'). */
export function encodeLogPath(relative: string): string {
  return relative
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/%3D/g, '=').replace(/%40/g, '@').replace(/%3A/g, ':'))
    .join('/');
}

/** The partition values in a Hive-style relative path DuckDB wrote (`k=v/` folders, values percent-encoded by DuckDB). */
export function partitionValuesFromPath(relative: string, partitionColumns: string[]): Record<string, string | null> {
  const values: Record<string, string | null> = {};
  for (const seg of relative.split('/').slice(0, -1)) {
    const eq = seg.indexOf('=');
    if (eq < 0) continue;
    const key = decodeURIComponent(seg.slice(0, eq));
    const raw = decodeURIComponent(seg.slice(eq + 1));
    values[key] = raw === HIVE_NULL || raw === '' ? null : raw;
  }
  for (const c of partitionColumns) if (!(c in values)) throw new DeltaTableError(`data file ${relative} has no folder for partition column ${c}`);
  return Object.fromEntries(partitionColumns.map((c) => [c, values[c]!]));
}
