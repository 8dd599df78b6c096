// `etl delta history | vacuum | optimize` on the tables of a lake, with a
// DuckDB of their own (these commands need no model to run).

import { duckdb } from '../duckdb/driver.js';
import type { Relation } from '../adapter.js';
import { optimize, type OptimizeOptions } from './optimize.js';
import { LocalStorage } from './storage.js';
import { DeltaTable, type HistoryEntry } from './table.js';
import { vacuum, type VacuumOptions } from './vacuum.js';
import { Lake } from './lake.js';
import { settleLake } from './quarantine.js';
import { duckDbSqlSession, type SqlSession } from './sql.js';

export interface TableOutcome<T> {
  table: string;
  relation: Relation;
  result: T;
}

async function withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
  const instance = await duckdb.DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const session: SqlSession = duckDbSqlSession(connection);
  try {
    return await fn(session);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** The relations given, or every Delta table of the lake (etl's own run history included). */
async function tablesOf(lakeRoot: string, relations: Relation[] | undefined): Promise<Relation[]> {
  return relations ?? (await new Lake(lakeRoot).discover());
}

function each<T>(lakeRoot: string, relations: Relation[] | undefined, fn: (storage: LocalStorage, session: SqlSession) => Promise<T>): Promise<Array<TableOutcome<T>>> {
  return withSession(async (session) => {
    const out: Array<TableOutcome<T>> = [];
    const lake = new Lake(lakeRoot);
    for (const relation of await tablesOf(lakeRoot, relations)) {
      const storage = lake.storage(relation);
      out.push({ table: `${relation.schema}.${relation.name}`, relation, result: await fn(storage, session) });
    }
    return out;
  });
}

export function historyOf(lakeRoot: string, relations: Relation[], limit?: number): Promise<Array<TableOutcome<HistoryEntry[]>>> {
  return each(lakeRoot, relations, (storage, session) => new DeltaTable(storage, session).history(limit));
}

/** Vacuum, after committing quarantine rows a model commit recorded (quarantine.ts): files it names are unreferenced until then. */
export async function vacuumLake(lakeRoot: string, relations: Relation[] | undefined, options: VacuumOptions): Promise<Array<TableOutcome<Awaited<ReturnType<typeof vacuum>>>>> {
  await withSession(async (session) => {
    const lake = new Lake(lakeRoot);
    await lake.discover();
    await settleLake(lake, session);
  });
  return each(lakeRoot, relations, (storage, session) => vacuum(storage, session, options));
}

export function optimizeLake(lakeRoot: string, relations: Relation[] | undefined, options: OptimizeOptions): Promise<Array<TableOutcome<Awaited<ReturnType<typeof optimize>>>>> {
  return each(lakeRoot, relations, (storage, session) => optimize(storage, session, options));
}
