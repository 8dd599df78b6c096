// One pooled pg connection as an AdapterSession. Values come back as the
// core expects across engines: integers as numbers (text beyond 2^53),
// numeric as exact strings, dates and timestamps as the text Postgres prints
// (never a JS Date shifted into the local time zone). Errors leave with the
// password scrubbed out of them.

import pg from 'pg';
import type { AdapterSession, ColumnDef, QueryResult } from '../adapter.js';
import { scrubError } from './connection.js';
import { traceSql } from '../trace.js';

const { types } = pg;
const raw = (v: string) => v;

/** Type parsers shared by every connection of the adapter. */
export const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    switch (oid) {
      case types.builtins.INT8: // count(*) and sums of ints arrive as int8
        return (v: string) => {
          const n = Number(v);
          return Number.isSafeInteger(n) ? n : v;
        };
      case types.builtins.DATE:
      case types.builtins.TIMESTAMP:
      case types.builtins.TIMESTAMPTZ:
      case types.builtins.TIME:
      case types.builtins.TIMETZ:
      case types.builtins.INTERVAL:
      case types.builtins.NUMERIC:
        return raw;
      default:
        return types.getTypeParser(oid, format ?? 'text');
    }
  },
} as pg.CustomTypesConfig;

/** Names of common type oids; the rest are asked of pg_type once. */
const TYPE_NAMES: Record<number, string> = {
  16: 'boolean',
  17: 'bytea',
  18: 'char',
  19: 'name',
  20: 'bigint',
  21: 'smallint',
  23: 'integer',
  25: 'text',
  26: 'oid',
  114: 'json',
  700: 'real',
  701: 'double precision',
  1042: 'character',
  1043: 'character varying',
  1082: 'date',
  1083: 'time without time zone',
  1114: 'timestamp without time zone',
  1184: 'timestamp with time zone',
  1186: 'interval',
  1700: 'numeric',
  2950: 'uuid',
  3802: 'jsonb',
};

export class PgSession implements AdapterSession {
  /** The shared schema whose setup lock this session holds, released when it goes back to the pool (see ensureSchema). */
  sharedSchemaLock?: string;

  constructor(
    readonly client: pg.PoolClient,
    readonly pid: number,
    private readonly secrets: readonly string[],
    private readonly typeNames: Map<number, string>,
    /** Runs before each statement; throws to stop it (a run that lost its schema lock). */
    private readonly guard: () => void = () => undefined,
  ) {}

  async execute(sql: string, params?: unknown[]): Promise<{ rowsAffected?: number }> {
    this.guard();
    const t0 = performance.now();
    try {
      const r = await this.client.query(sql, params);
      traceSql(sql, t0);
      // A multi-statement text returns one result per statement.
      const last = Array.isArray(r) ? (r as pg.QueryResult[]).at(-1) : r;
      return { rowsAffected: last?.rowCount ?? undefined };
    } catch (err) {
      throw scrubError(err, this.secrets);
    }
  }

  async query(sql: string, params?: unknown[]): Promise<QueryResult> {
    this.guard();
    let r: pg.QueryArrayResult;
    const t0 = performance.now();
    try {
      r = await this.client.query({ text: sql, values: params, rowMode: 'array' });
      traceSql(sql, t0);
    } catch (err) {
      throw scrubError(err, this.secrets);
    }
    if (Array.isArray(r)) r = (r as pg.QueryArrayResult[]).at(-1)!;
    const fields = r.fields ?? [];
    return {
      columns: fields.map((f) => f.name),
      types: await this.typeNamesOf(fields.map((f) => f.dataTypeID)),
      rows: r.rows ?? [],
    };
  }

  async describeResults(sql: string): Promise<ColumnDef[][]> {
    this.guard();
    let r: pg.QueryArrayResult | pg.QueryArrayResult[];
    const t0 = performance.now();
    try {
      r = await this.client.query({ text: sql, rowMode: 'array' });
      traceSql(sql, t0);
    } catch (err) {
      throw scrubError(err, this.secrets);
    }
    const results = Array.isArray(r) ? r : [r];
    // format_type of each (type, modifier) once: numeric(38,2), character varying(20), integer[].
    const key = (f: pg.FieldDef) => `${f.dataTypeID}:${f.dataTypeModifier}`;
    const unknown = new Map<string, pg.FieldDef>();
    for (const res of results) for (const f of res.fields ?? []) if (!this.formattedTypes.has(key(f))) unknown.set(key(f), f);
    if (unknown.size) {
      const fields = [...unknown.values()];
      const names = await this.client.query({
        text: 'select pg_catalog.format_type(t, m) from unnest($1::oid[], $2::int4[]) with ordinality as u(t, m, i) order by i',
        values: [fields.map((f) => f.dataTypeID), fields.map((f) => f.dataTypeModifier)],
        rowMode: 'array',
      });
      fields.forEach((f, i) => this.formattedTypes.set(key(f), String(names.rows[i]![0])));
    }
    return results.map((res) => (res.fields ?? []).map((f: pg.FieldDef) => ({ name: f.name, type: this.formattedTypes.get(key(f))! })));
  }

  private readonly formattedTypes = new Map<string, string>();

  /** Whether a transaction is open (or failed) on this connection. */
  inTransaction(): boolean {
    const status = this.client.getTransactionStatus();
    return status === 'T' || status === 'E';
  }

  private async typeNamesOf(oids: number[]): Promise<string[]> {
    const unknown = [...new Set(oids.filter((o) => !(o in TYPE_NAMES) && !this.typeNames.has(o)))];
    if (unknown.length) {
      const r = await this.client.query({
        text: 'select oid::int8, pg_catalog.format_type(oid, null) from pg_catalog.pg_type where oid = any($1::oid[])',
        values: [unknown],
        rowMode: 'array',
      });
      for (const [oid, name] of r.rows) this.typeNames.set(Number(oid), String(name));
    }
    return oids.map((o) => TYPE_NAMES[o] ?? this.typeNames.get(o) ?? `oid ${o}`);
  }
}
