// Replacing a relation on Postgres, on the caller's open transaction: the
// relation and the views that depend on it are dropped, the new relation put
// in its place (a rename, or a view created), and those views recreated as
// they were (dependents.ts reads and writes them). A view that no longer fits
// fails the transaction, so nothing changes.

import type { AdapterSession, Relation } from '../adapter.js';
import type { Dialect } from '../dialect.js';
import { dependentViews, dropExistingSql, dropViewSql, existingRelation, recreateViewSql, type DependentView } from './dependents.js';

/** Drops `relation` with its dependent views, runs `create` (which puts the new one in place), recreates the views. */
export async function replaceWithDependents(session: AdapterSession, dialect: Dialect, relation: Relation, create: () => Promise<unknown>): Promise<void> {
  const dependents = await dropWithDependents(session, dialect, relation);
  await create();
  await recreateDependents(session, dialect, relation, dependents);
}

/** Drops `relation` (if there) and the views that depend on it; returns those views, to recreate. */
async function dropWithDependents(session: AdapterSession, dialect: Dialect, relation: Relation): Promise<DependentView[]> {
  const existing = await existingRelation(session, relation);
  if (!existing) return [];
  const dependents = await dependentViews(session, existing.oid);
  try {
    for (const v of [...dependents].reverse()) await session.execute(dropViewSql(dialect, v));
    await session.execute(dropExistingSql(dialect, relation, existing.relkind));
  } catch (err) {
    const e = err as { code?: string; message: string; detail?: string };
    if (e.code !== '2BP01') throw err;
    throw new Error(
      `cannot replace ${dialect.relation(relation.schema, relation.name)}: ${e.message}${e.detail ? `\n${e.detail}` : ''}\n  hint: views are recreated automatically, but other dependent objects (foreign keys, functions) must be dropped first`,
      { cause: err },
    );
  }
  return dependents;
}

async function recreateDependents(session: AdapterSession, dialect: Dialect, relation: Relation, views: DependentView[]): Promise<void> {
  for (const v of views) {
    for (const sql of recreateViewSql(dialect, v)) {
      try {
        await session.execute(sql);
      } catch (err) {
        const name = dialect.relation(v.schema, v.name);
        throw new Error(
          `cannot replace ${dialect.relation(relation.schema, relation.name)}: the ${v.materialized ? 'materialized view' : 'view'} ${name} depends on it and does not work with the new version: ${(err as Error).message}\n  hint: change ${name} to fit (or drop it) and run again; nothing was changed`,
          { cause: err },
        );
      }
    }
  }
}
