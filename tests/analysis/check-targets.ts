// The targets static analysis is proven on (issue #16): project-template's
// copies pointed at a DuckDB file, a Postgres schema of their own or a Delta
// lake, with what each suite asks of a target: whether anything was written
// to it, and the columns and types of a relation it built.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { DuckDBInstance } from '@duckdb/node-api';
import { duckdbTypeOf, parseSchema } from '../../adapters/delta/index.js';
import { brokenProject, type BrokenProject } from './broken-projects.js';
import { dropPgSchema, newPgSchema, PG_URL, pgConnect, pgQuoteIdent } from '../e2e/helpers.js';

export type CheckTargetName = 'duckdb' | 'postgres' | 'delta';

export interface CheckProject {
  dir: string;
  /** Nothing of the target exists yet: no database file, schema or lake. */
  untouched(): Promise<boolean>;
  /** `name type` of each column of a relation the build made, in order, as the target stores it (Delta: its log's schema read as DuckDB types). */
  builtColumns(schema: string, name: string): Promise<string[]>;
  /** The schema models build into. */
  schema: string;
  /** What the target holds, to compare before and after a command that must not write: files byte for byte, or a server's relations and their storage. */
  fingerprint(): Promise<string>;
}

export interface CheckTarget {
  name: CheckTargetName;
  /** project-template (with the case's edits) on this target. */
  project(c: Pick<BrokenProject, 'edits'> & { name?: string }): CheckProject;
  /** A type as this target names a column of project-template's seeds: bigint, varchar, date. */
  type(t: 'bigint' | 'varchar' | 'date'): string;
  close(): Promise<void>;
}

const DEV = /^ {2}dev: \{ type: duckdb, path: target\/dev\.duckdb, schema: main, threads: 4 \}$/m;

function withTarget(dev: string): (yml: string) => string {
  return (yml) => {
    if (!DEV.test(yml)) throw new Error('project-template has no DuckDB target dev to point elsewhere');
    return yml.replace(DEV, `  dev: ${dev}`);
  };
}

async function duckColumns(file: string, schema: string, name: string): Promise<string[]> {
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  const conn = await instance.connect();
  try {
    const r = await conn.runAndReadAll('select column_name, data_type from duckdb_columns() where schema_name = $1 and table_name = $2 order by column_index', [schema, name]);
    return r.getRowsJS().map((row) => `${row[0]} ${row[1]}`);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** The schema of a Delta table's latest metaData action, each type read as DuckDB's. */
function deltaColumns(table: string): string[] {
  const log = path.join(table, '_delta_log');
  let schemaString: string | undefined;
  for (const f of readdirSync(log).filter((x) => /^\d{20}\.json$/.test(x)).sort()) {
    for (const line of readFileSync(path.join(log, f), 'utf8').split('\n')) {
      if (line.includes('"metaData"')) schemaString = (JSON.parse(line) as { metaData: { schemaString: string } }).metaData.schemaString;
    }
  }
  if (!schemaString) throw new Error(`${table} has no metaData in its log`);
  return parseSchema(schemaString, table).fields.map((f) => `${f.name} ${duckdbTypeOf(f.type)}`);
}

/** Every file below `dir` (whose name matches `only`, at the top) with its size, time and content hash. */
function filesFingerprint(dir: string, only?: RegExp): string {
  const out: string[] = [];
  const walk = (d: string, top: boolean) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (top && only && !only.test(e.name)) continue;
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f, false);
      else out.push(`${path.relative(dir, f)} ${statSync(f).size} ${statSync(f).mtimeMs} ${createHash('sha1').update(readFileSync(f)).digest('hex')}`);
    }
  };
  walk(dir, true);
  return out.join('\n');
}

export function duckdbTarget(): CheckTarget {
  return {
    name: 'duckdb',
    project(c) {
      const dir = brokenProject({ name: c.name ?? 'duckdb', edits: c.edits, errors: [] });
      const file = path.join(dir, 'target/dev.duckdb');
      return { dir, schema: 'main', untouched: async () => !existsSync(file), builtColumns: (schema, name) => duckColumns(file, schema, name), fingerprint: async () => filesFingerprint(path.join(dir, 'target'), /^dev\.duckdb/) };
    },
    type: (t) => t.toUpperCase(),
    close: async () => undefined,
  };
}

export function deltaTarget(): CheckTarget {
  return {
    name: 'delta',
    project(c) {
      const dir = brokenProject({ name: c.name ?? 'delta', edits: c.edits, errors: [] }, withTarget('{ type: delta, path: lake, schema: main, threads: 2 }'));
      const lake = path.join(dir, 'lake');
      return { dir, schema: 'main', untouched: async () => !existsSync(lake), builtColumns: async (schema, name) => deltaColumns(path.join(lake, schema, name)), fingerprint: async () => filesFingerprint(lake) };
    },
    type: (t) => t.toUpperCase(),
    close: async () => undefined,
  };
}

/** Postgres: each project in a schema of its own, dropped by close(). */
export async function postgresTarget(): Promise<CheckTarget & { admin: pg.Client }> {
  const admin = await pgConnect();
  const schemas: string[] = [];
  const exists = async (schema: string) => ((await admin.query('select 1 from pg_namespace where nspname = $1', [schema])).rowCount ?? 0) > 0;
  return {
    name: 'postgres',
    admin,
    project(c) {
      const schema = newPgSchema();
      schemas.push(schema);
      const dir = brokenProject({ name: c.name ?? 'postgres', edits: c.edits, errors: [] }, withTarget(`{ type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 2 }`));
      return {
        dir,
        schema,
        untouched: async () => !(await exists(schema)),
        builtColumns: async (s, name) =>
          (
            await admin.query<{ c: string }>(
              `select a.attname || ' ' || format_type(a.atttypid, a.atttypmod) as c from pg_attribute a join pg_class r on r.oid = a.attrelid join pg_namespace n on n.oid = r.relnamespace
                where n.nspname = $1 and r.relname = $2 and a.attnum > 0 and not a.attisdropped order by a.attnum`,
              [s, name],
            )
          ).rows.map((r) => r.c),
        // Each relation of the schema with its storage (a rewrite or truncate gives it a new file) and the last transaction that wrote a row of it.
        fingerprint: async () => {
          const relations = await admin.query<{ relname: string; relfilenode: string; kind: string }>(
            `select c.relname::text, c.relfilenode::text, c.relkind::text as kind from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 order by 1`,
            [schema],
          );
          const rows: string[] = [];
          for (const r of relations.rows.filter((x) => x.kind === 'r')) {
            const t = await admin.query<{ n: string; x: string | null }>(`select count(*)::text as n, max(xmin::text::bigint)::text as x from ${pgQuoteIdent(schema)}.${pgQuoteIdent(r.relname)}`);
            rows.push(`${r.relname}: ${t.rows[0]!.n} rows, last written by ${t.rows[0]!.x}`);
          }
          return JSON.stringify({ relations: relations.rows, rows });
        },
      };
    },
    type: (t) => ({ bigint: 'integer', varchar: 'text', date: 'date' })[t],
    async close() {
      for (const s of schemas) await dropPgSchema(admin, s);
      await admin.end();
    },
  };
}
