// Ad-hoc queries against a project's target, for programs that embed etl:
// rows as the adapter returns them, or an Apache Arrow table. The target is
// opened read-only where the engine allows it (an embedded file is not locked
// for writing), so a query may run beside nothing else but a reader.

import * as arrow from 'apache-arrow';
import { createAdapter } from '../adapters/index.js';
import type { QueryResult } from '../adapters/adapter.js';
import { RunError } from './errors.js';
import { scanProject } from './project/load.js';
import type { ProjectOptions } from './api.js';

export interface QueryOptions extends ProjectOptions {
  /** One SQL statement, in the target's dialect. */
  sql: string;
  /** Values bound to the statement's placeholders ($1, $2, ... on both engines). */
  params?: unknown[];
}

/** Runs one statement against the project's target and returns its columns, their types and the rows. */
export async function query(options: QueryOptions): Promise<QueryResult> {
  const project = scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env ?? process.env });
  const adapter = await createAdapter(project.target, project.root, { readOnly: true });
  await adapter.open();
  try {
    return await adapter.withSession((s) => s.query(options.sql, options.params));
  } catch (err) {
    throw err instanceof RunError ? err : new RunError(`query failed: ${(err as Error).message}`);
  } finally {
    await adapter.close();
  }
}

/** query(), with the result as an Apache Arrow table (see toArrowTable for the column types). */
export async function queryArrow(options: QueryOptions): Promise<arrow.Table> {
  return toArrowTable(await query(options));
}

/**
 * A query result as an Apache Arrow table. Column types follow the SQL type
 * names both engines report: booleans, integers (64-bit ones as BigInt),
 * floats, dates (DateDay) and timestamps (TimestampMillisecond, UTC) keep
 * their type; decimals become Float64; anything else (text, uuid, json,
 * lists, structs, intervals) becomes Utf8, nested values as JSON.
 */
export function toArrowTable(result: QueryResult): arrow.Table {
  const columns: Record<string, arrow.Vector> = {};
  result.columns.forEach((name, i) => {
    const { type, convert } = arrowColumn(result.types[i] ?? '');
    const values = result.rows.map((row) => (row[i] === null || row[i] === undefined ? null : convert(row[i])));
    columns[uniqueName(columns, name)] = arrow.vectorFromArray(values, type as never);
  });
  return new arrow.Table(columns);
}

function arrowColumn(sqlType: string): { type: arrow.DataType; convert: (v: unknown) => unknown } {
  const t = sqlType.toLowerCase().replace(/\(.*\)$/, '').trim();
  switch (t) {
    case 'boolean':
    case 'bool':
      return { type: new arrow.Bool(), convert: (v) => v === true || v === 't' || v === 'true' };
    case 'tinyint':
      return { type: new arrow.Int8(), convert: Number };
    case 'smallint':
    case 'int2':
      return { type: new arrow.Int16(), convert: Number };
    case 'integer':
    case 'int':
    case 'int4':
      return { type: new arrow.Int32(), convert: Number };
    case 'bigint':
    case 'int8':
      return { type: new arrow.Int64(), convert: (v) => BigInt(v as string | number | bigint) };
    case 'real':
    case 'float':
    case 'float4':
      return { type: new arrow.Float32(), convert: Number };
    case 'double':
    case 'double precision':
    case 'float8':
    case 'decimal':
    case 'numeric':
      return { type: new arrow.Float64(), convert: Number };
    case 'date':
      return { type: new arrow.DateDay(), convert: (v) => (v instanceof Date ? v : new Date(`${String(v)}T00:00:00Z`)) };
    case 'timestamp':
    case 'timestamp without time zone':
    case 'timestamp with time zone':
    case 'timestamptz':
      return { type: new arrow.TimestampMillisecond('UTC'), convert: (v) => (v instanceof Date ? v.getTime() : parseTimestamp(String(v))) };
    default:
      return { type: new arrow.Utf8(), convert: asText };
  }
}

/** A timestamp as Postgres prints it ("2024-01-02 03:04:05.123456", "+01" offsets), in ms since the epoch (UTC when it has no offset). */
function parseTimestamp(text: string): number {
  const iso = text.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00');
  return Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : `${iso}Z`);
}

function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  return String(v);
}

/** Arrow tables need distinct column names; a repeated one gets a suffix (`x`, `x_2`). */
function uniqueName(taken: Record<string, unknown>, name: string): string {
  if (!(name in taken)) return name;
  let n = 2;
  while (`${name}_${n}` in taken) n++;
  return `${name}_${n}`;
}
