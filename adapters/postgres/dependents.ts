// Views that depend on a relation we are about to replace. Postgres binds a
// view to the table's oid and refuses to drop a table with dependent views;
// DROP ... CASCADE would silently drop the user's views. Instead we capture
// each dependent view (definition, options, comments, grants, and a
// materialized view's indexes), drop them, swap the relation, and recreate
// them, all in the caller's transaction: readers see the old state or the
// new one, and if a view no longer fits the new relation nothing changes.

import type { AdapterSession, Relation } from '../adapter.js';
import type { Dialect } from '../dialect.js';

export interface ExistingRelation {
  oid: number;
  /** pg_class.relkind: r table, p partitioned table, v view, m materialized view, f foreign table. */
  relkind: string;
}

export interface DependentView {
  schema: string;
  name: string;
  materialized: boolean;
  definition: string;
  options: string[];
  comment: string | null;
  columnComments: Array<[string, string]>;
  grants: Array<{ privilege: string; grantee: string; grantable: boolean }>;
  indexes: string[];
}

export async function existingRelation(session: AdapterSession, relation: Relation): Promise<ExistingRelation | undefined> {
  const r = await session.query(
    `select c.oid::int8, c.relkind::text from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p', 'v', 'm', 'f')`,
    [relation.schema, relation.name],
  );
  const row = r.rows[0];
  return row ? { oid: Number(row[0]), relkind: String(row[1]) } : undefined;
}

/** `drop table|view|materialized view` for what is there now. */
export function dropExistingSql(dialect: Dialect, relation: Relation, relkind: string): string {
  const kind = relkind === 'v' ? 'view' : relkind === 'm' ? 'materialized view' : relkind === 'f' ? 'foreign table' : 'table';
  return `drop ${kind} ${dialect.relation(relation.schema, relation.name)}`;
}

/** Every view that depends on `oid`, directly or through other views, in creation order. */
export async function dependentViews(session: AdapterSession, oid: number): Promise<DependentView[]> {
  // A view's dependencies are recorded against its rewrite rule.
  const found = await session.query(
    `with recursive deps(oid, depth) as (
        select r.ev_class, 1
          from pg_catalog.pg_depend d
          join pg_catalog.pg_rewrite r on r.oid = d.objid
         where d.classid = 'pg_catalog.pg_rewrite'::regclass
           and d.refclassid = 'pg_catalog.pg_class'::regclass
           and d.refobjid = $1::oid and r.ev_class <> $1::oid
        union all
        select r.ev_class, deps.depth + 1
          from deps
          join pg_catalog.pg_depend d on d.refobjid = deps.oid
          join pg_catalog.pg_rewrite r on r.oid = d.objid
         where d.classid = 'pg_catalog.pg_rewrite'::regclass
           and d.refclassid = 'pg_catalog.pg_class'::regclass
           and r.ev_class <> deps.oid and deps.depth < 100
     )
     select c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text,
            pg_catalog.pg_get_viewdef(c.oid), coalesce(c.reloptions, '{}')::text[],
            pg_catalog.obj_description(c.oid, 'pg_class'), max(deps.depth)
       from deps
       join pg_catalog.pg_class c on c.oid = deps.oid
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      group by c.oid, n.nspname, c.relname, c.relkind, c.reloptions
      order by max(deps.depth), n.nspname, c.relname`,
    [oid],
  );
  const views: DependentView[] = [];
  for (const row of found.rows) {
    const viewOid = Number(row[0]);
    views.push({
      schema: String(row[1]),
      name: String(row[2]),
      materialized: row[3] === 'm',
      definition: String(row[4]).trim().replace(/;$/, ''),
      options: row[5] as string[],
      comment: (row[6] as string | null) ?? null,
      columnComments: await columnComments(session, viewOid),
      grants: await grants(session, viewOid),
      indexes: row[3] === 'm' ? await indexes(session, viewOid) : [],
    });
  }
  return views;
}

async function columnComments(session: AdapterSession, oid: number): Promise<Array<[string, string]>> {
  const r = await session.query(
    `select a.attname::text, pg_catalog.col_description(a.attrelid, a.attnum)
       from pg_catalog.pg_attribute a
      where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped
        and pg_catalog.col_description(a.attrelid, a.attnum) is not null
      order by a.attnum`,
    [oid],
  );
  return r.rows.map((row) => [String(row[0]), String(row[1])]);
}

async function grants(session: AdapterSession, oid: number): Promise<DependentView['grants']> {
  const r = await session.query(
    `select a.privilege_type::text, case when a.grantee = 0 then 'PUBLIC' else quote_ident(g.rolname) end, a.is_grantable
       from pg_catalog.pg_class c
       cross join lateral pg_catalog.aclexplode(c.relacl) a
       left join pg_catalog.pg_roles g on g.oid = a.grantee
      where c.oid = $1::oid and a.grantee <> c.relowner`,
    [oid],
  );
  return r.rows.map((row) => ({ privilege: String(row[0]), grantee: String(row[1]), grantable: row[2] === true }));
}

async function indexes(session: AdapterSession, oid: number): Promise<string[]> {
  const r = await session.query('select pg_catalog.pg_get_indexdef(indexrelid) from pg_catalog.pg_index where indrelid = $1::oid', [oid]);
  return r.rows.map((row) => String(row[0]));
}

export function dropViewSql(dialect: Dialect, v: DependentView): string {
  return `drop ${v.materialized ? 'materialized view' : 'view'} ${dialect.relation(v.schema, v.name)}`;
}

/** The statements that recreate `v` as it was. */
export function recreateViewSql(dialect: Dialect, v: DependentView): string[] {
  const rel = dialect.relation(v.schema, v.name);
  const withOptions = v.options.length ? ` with (${v.options.join(', ')})` : '';
  const statements = [`create ${v.materialized ? 'materialized view' : 'view'} ${rel}${withOptions} as\n${v.definition}`];
  statements.push(...v.indexes);
  const kind = v.materialized ? 'materialized view' : 'view';
  if (v.comment !== null) statements.push(`comment on ${kind} ${rel} is ${dialect.quoteString(v.comment)}`);
  for (const [column, comment] of v.columnComments) {
    statements.push(`comment on column ${rel}.${dialect.quoteIdentifier(column)} is ${dialect.quoteString(comment)}`);
  }
  for (const g of v.grants) {
    statements.push(`grant ${g.privilege} on ${rel} to ${g.grantee}${g.grantable ? ' with grant option' : ''}`);
  }
  return statements;
}
