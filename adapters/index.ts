// Creates the adapter for a target. Engine modules are imported lazily, so a
// compile never loads a database driver.

import { existsSync } from 'node:fs';
import path from 'node:path';
import type { TargetConfig } from '../core/project/load.js';
import { RunError } from '../core/errors.js';
import type { Adapter, ColumnDef, SeedOptions } from './adapter.js';
import { dialectFor } from './dialect.js';

export interface AdapterOptions {
  /** Only reads (show, debug): an embedded database is neither created nor locked for writing. */
  readOnly?: boolean;
}

export async function createAdapter(target: TargetConfig, projectRoot: string, options: AdapterOptions = {}): Promise<Adapter> {
  switch (target.type) {
    case 'duckdb': {
      const { DuckDbAdapter } = await import('./duckdb/adapter.js');
      return new DuckDbAdapter(target, projectRoot, options);
    }
    case 'postgres': {
      const { PostgresAdapter } = await import('./postgres/adapter.js');
      return new PostgresAdapter(target, projectRoot, { lockTargetSchema: !options.readOnly });
    }
    case 'delta': {
      const { DeltaAdapter } = await import('./delta/adapter.js');
      return new DeltaAdapter(target, projectRoot, options);
    }
    default: {
      const unknown = target as { name: string; type: string };
      throw new RunError(`target ${unknown.name}: the ${unknown.type} adapter is not available yet`, 2);
    }
  }
}

/** Whether open() creates nothing (see Dialect.opensWithoutWriting). */
export function opensWithoutWriting(target: TargetConfig): boolean {
  return dialectFor(target.type).opensWithoutWriting;
}

/**
 * Whether a run may open the target while its project still compiles: a server
 * (opensWithoutWriting), or a DuckDB file that is already there. Opening that
 * file creates nothing (it takes the file's lock, and replays a WAL left by a
 * run that did not close, as the run would next); its ~40-70 ms (more on a
 * busy machine) then overlap the project's scan, where they came after it.
 */
export function opensEarly(target: TargetConfig, projectRoot: string): boolean {
  if (opensWithoutWriting(target)) return true;
  if (target.type !== 'duckdb') return false;
  const location = targetLocation(target, projectRoot);
  return !!location && existsSync(location);
}

/** Where an embedded target keeps its data (a DuckDB file, a Delta lake's folder), resolved; undefined for a server or memory. */
export function targetLocation(target: TargetConfig, projectRoot: string): string | undefined {
  if (target.type !== 'duckdb' && target.type !== 'delta') return undefined;
  return target.path && target.path !== ':memory:' ? path.resolve(projectRoot, target.path) : undefined;
}

/** The folder of the Delta tables of a delta target (what `etl delta` maintains); undefined for any other target. */
export function deltaLakeRoot(target: TargetConfig, projectRoot: string): string | undefined {
  return target.type === 'delta' ? targetLocation(target, projectRoot) : undefined;
}

/**
 * The database a user names to query the target: a DuckDB file's name
 * without its extension (`dev` for target/dev.duckdb, `memory` in memory), a
 * Postgres URL's or `database:` database; null where there is none.
 */
export function targetDatabase(target: { type: string; path?: string; url?: string; database?: string }): string | null {
  if (target.type === 'duckdb') {
    if (!target.path || target.path === ':memory:') return 'memory';
    return target.path.split(/[\\/]/).pop()!.replace(/\.[^.]*$/, '');
  }
  if (target.type === 'postgres') {
    if (target.database) return target.database;
    try {
      const db = decodeURIComponent(new URL(target.url ?? '').pathname.slice(1));
      return db || null;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * A seed's columns as the target's adapter would load it, without loading it:
 * DuckDB's own CSV sniffing (run by `describe`, on a DuckDB connection of the
 * caller's), or the Postgres adapter's inference from the file.
 */
export async function seedColumnTypes(type: TargetConfig['type'], csvPath: string, options: SeedOptions, describe: (sql: string) => Promise<ColumnDef[]>): Promise<ColumnDef[]> {
  if (type === 'postgres') {
    const [{ inferCsvShape }, { seedColumns }] = await Promise.all([import('./postgres/csv-types.js'), import('./postgres/seed.js')]);
    return seedColumns(await inferCsvShape(csvPath, options.delimiter), options.columnTypes);
  }
  // Delta targets load seeds through DuckDB too.
  const { seedSelectSql } = await import('./duckdb/adapter.js');
  return describe(seedSelectSql(csvPath, options));
}

export type { Adapter } from './adapter.js';
