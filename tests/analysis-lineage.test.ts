// Column lineage (core/analysis/lineage.ts) on SQL shapes, parsed by DuckDB's
// own parser (json_serialize_sql): expected edges per output column. Each
// shape runs on the engines whose dialect it is written in (most in both):
// the engine itself (an in-memory DuckDB, and a Postgres database of this
// file's own) runs the query over empty tables of the same columns and names
// its output columns, which must be the expected ones, and are handed to the
// lineage as a project's catalog hands them (Postgres names an unaliased
// expression ?column?, DuckDB by its text).

import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbBinder } from '../core/analysis/binder.js';
import { queryLineage, type KnownRelation } from '../core/analysis/lineage.js';
import { createPgDatabase, dropPgDatabase, pgConnect } from './e2e/helpers.js';

/** The tables the shapes read, in each engine's types (the columns of RELATIONS). */
const TABLES = {
  duckdb: [
    'create schema raw',
    'create table main.orders (order_id integer, customer_id integer, amount decimal(16,2), status varchar, created_at timestamp, tags varchar[])',
    'create table main.customers (customer_id integer, name varchar, email varchar, address struct(city varchar, street varchar))',
    'create table raw.payments (payment_id integer, order_id integer, amount decimal(16,2), method varchar)',
    'create table main."__etl_ephemeral__enriched" (order_id integer, score integer)',
  ],
  postgres: [
    'create schema main',
    'create schema raw',
    'create table main.orders (order_id integer, customer_id integer, amount numeric(16,2), status text, created_at timestamp, tags text[])',
    'create table main.customers (customer_id integer, name text, email text, address text)',
    'create table raw.payments (payment_id integer, order_id integer, amount numeric(16,2), method text)',
    'create table public."__etl_ephemeral__enriched" (order_id integer, score integer)',
  ],
};

// The parse the project's lineage uses (json_serialize_sql, defaults left out).
let binder: DuckDbBinder;
let duck: DuckDBInstance;
let duckdb: DuckDBConnection;
let admin: pg.Client;
let pgUrl: string;
let postgres: pg.Client;
beforeAll(async () => {
  binder = await DuckDbBinder.open();
  duck = await DuckDBInstance.create(':memory:');
  duckdb = await duck.connect();
  for (const sql of TABLES.duckdb) await duckdb.run(sql);
  admin = await pgConnect();
  pgUrl = await createPgDatabase(admin, 'etl_lineage');
  postgres = await pgConnect(pgUrl);
  for (const sql of TABLES.postgres) await postgres.query(sql);
});
afterAll(async () => {
  binder?.close();
  duckdb?.closeSync();
  duck?.closeSync();
  await postgres?.end();
  if (pgUrl) await dropPgDatabase(admin, pgUrl);
  await admin?.end();
});

/** The output column names the engine gives the query. */
async function engineColumns(engine: Engine, sql: string): Promise<string[]> {
  if (engine === 'duckdb') return (await duckdb.runAndReadAll(`describe ${sql}`)).getRowsJS().map((r) => String(r[0]));
  return (await postgres.query(sql)).fields.map((f) => f.name);
}

const RELATIONS: Record<string, KnownRelation> = {
  'main.orders': { node: 'model.shop.orders', columns: ['order_id', 'customer_id', 'amount', 'status', 'created_at', 'tags'] },
  'main.customers': { node: 'model.shop.customers', columns: ['customer_id', 'name', 'email', 'address'] },
  'raw.payments': { node: 'source.shop.raw.payments', columns: ['payment_id', 'order_id', 'amount', 'method'] },
  '__etl_ephemeral__enriched': { node: 'model.shop.enriched', columns: ['order_id', 'score'] },
};
const relations = new Map(Object.entries(RELATIONS));

type Engine = 'duckdb' | 'postgres';
/** Expected: kind, upstream as "node-name.column", and for transforms a piece of the expression. */
type Edge = { kind: 'passthrough' | 'transform' | 'unresolved'; up: string[]; expr?: string; reason?: RegExp };
interface Shape {
  name: string;
  sql: string;
  expect: Record<string, Edge>;
  /** The engines whose dialect the SQL is in; [] for SQL no engine runs (an unknown relation, a file, a syntax error). */
  on: Engine[];
}

const P = (...up: string[]): Edge => ({ kind: 'passthrough', up });
const T = (expr: string, ...up: string[]): Edge => ({ kind: 'transform', up, expr });
const U = (reason: RegExp, ...up: string[]): Edge => ({ kind: 'unresolved', up, reason });
const BOTH: Engine[] = ['duckdb', 'postgres'];
const DUCK: Engine[] = ['duckdb'];
const PG: Engine[] = ['postgres'];

const SHAPES: Shape[] = [
  { name: 'plain columns', sql: 'select order_id, amount from "main"."orders"', expect: { order_id: P('orders.order_id'), amount: P('orders.amount') }, on: BOTH },
  { name: 'aliased column', sql: 'select amount as total from main.orders', expect: { total: P('orders.amount') }, on: BOTH },
  { name: 'qualified by table alias', sql: 'select o.amount from main.orders o', expect: { amount: P('orders.amount') }, on: BOTH },
  { name: 'qualified by table name', sql: 'select orders.status from main.orders', expect: { status: P('orders.status') }, on: BOTH },
  { name: 'fully qualified', sql: 'select main.orders.status from main.orders', expect: { status: P('orders.status') }, on: BOTH },
  { name: 'select star', sql: 'select * from main.customers', expect: { customer_id: P('customers.customer_id'), name: P('customers.name'), email: P('customers.email'), address: P('customers.address') }, on: BOTH },
  { name: 'star exclude', sql: 'select * exclude (email, address) from main.customers', expect: { customer_id: P('customers.customer_id'), name: P('customers.name') }, on: DUCK },
  { name: 'star replace', sql: 'select * replace (lower(email) as email) from main.customers', expect: { customer_id: P('customers.customer_id'), name: P('customers.name'), email: T('lower(email)', 'customers.email'), address: P('customers.address') }, on: DUCK },
  { name: 'qualified star in a join', sql: 'select c.*, o.amount from main.customers c join main.orders o on o.customer_id = c.customer_id', expect: { customer_id: P('customers.customer_id'), name: P('customers.name'), email: P('customers.email'), address: P('customers.address'), amount: P('orders.amount') }, on: BOTH },
  { name: 'arithmetic', sql: 'select amount * 100 as cents from main.orders', expect: { cents: T('amount * 100', 'orders.amount') }, on: BOTH },
  { name: 'function of two columns', sql: "select concat(name, ' <', email, '>') as display from main.customers", expect: { display: T("concat(name, ' <', email, '>')", 'customers.name', 'customers.email') }, on: BOTH },
  { name: 'cast is a transformation', sql: 'select cast(amount as integer) as amount from main.orders', expect: { amount: T('cast(amount as integer)', 'orders.amount') }, on: BOTH },
  { name: 'constant', sql: "select 'x' as kind, 1 as one from main.orders", expect: { kind: T("'x'"), one: T('1') }, on: BOTH },
  { name: 'aggregate with group by', sql: 'select customer_id, sum(amount) as total, count(*) as n from main.orders group by customer_id', expect: { customer_id: P('orders.customer_id'), total: T('sum(amount)', 'orders.amount'), n: T('count(*)') }, on: BOTH },
  { name: 'aggregate with filter', sql: "select count(*) filter (where status = 'shipped') as shipped from main.orders", expect: { shipped: T('count(*) filter', 'orders.status') }, on: BOTH },
  { name: 'distinct aggregate', sql: 'select count(distinct customer_id) as buyers from main.orders', expect: { buyers: T('count(distinct customer_id)', 'orders.customer_id') }, on: BOTH },
  { name: 'window function', sql: 'select order_id, row_number() over (partition by customer_id order by created_at) as rn from main.orders', expect: { order_id: P('orders.order_id'), rn: T('row_number() over', 'orders.customer_id', 'orders.created_at') }, on: BOTH },
  { name: 'window aggregate', sql: 'select sum(amount) over (partition by customer_id) as customer_total from main.orders', expect: { customer_total: T('sum(amount) over', 'orders.amount', 'orders.customer_id') }, on: BOTH },
  { name: 'case', sql: "select case when status = 'returned' then 0 else amount end as net from main.orders", expect: { net: T('case when', 'orders.status', 'orders.amount') }, on: BOTH },
  { name: 'coalesce', sql: 'select coalesce(o.amount, p.amount) as amount from main.orders o left join raw.payments p on p.order_id = o.order_id', expect: { amount: T('coalesce(o.amount, p.amount)', 'orders.amount', 'payments.amount') }, on: BOTH },
  { name: 'inner join, columns from both sides', sql: 'select o.order_id, c.name from main.orders as o inner join main.customers as c on c.customer_id = o.customer_id', expect: { order_id: P('orders.order_id'), name: P('customers.name') }, on: BOTH },
  { name: 'unqualified column unique to one side of a join', sql: 'select email, amount from main.orders o join main.customers c on c.customer_id = o.customer_id', expect: { email: P('customers.email'), amount: P('orders.amount') }, on: BOTH },
  { name: 'join using merges both sides', sql: 'select customer_id, name from main.orders join main.customers using (customer_id)', expect: { customer_id: P('orders.customer_id', 'customers.customer_id'), name: P('customers.name') }, on: BOTH },
  { name: 'cte pass-through', sql: 'with o as (select order_id, amount from main.orders) select order_id, amount from o', expect: { order_id: P('orders.order_id'), amount: P('orders.amount') }, on: BOTH },
  { name: 'cte aggregate, then renamed', sql: 'with t as (select customer_id, sum(amount) as total from main.orders group by 1) select customer_id as id, total as lifetime from t', expect: { id: P('orders.customer_id'), lifetime: T('sum(amount)', 'orders.amount') }, on: BOTH },
  { name: 'chained ctes', sql: 'with a as (select * from main.orders), b as (select order_id, amount * 2 as doubled from a) select * from b', expect: { order_id: P('orders.order_id'), doubled: T('amount * 2', 'orders.amount') }, on: BOTH },
  { name: 'cte with column aliases', sql: 'with t(id, value) as (select order_id, amount from main.orders) select id, value from t', expect: { id: P('orders.order_id'), value: P('orders.amount') }, on: BOTH },
  { name: 'subquery in from', sql: 'select s.total from (select sum(amount) as total from main.orders) as s', expect: { total: T('sum(amount)', 'orders.amount') }, on: BOTH },
  { name: 'subquery in from with column aliases', sql: 'select x from (select amount from main.orders) as s(x)', expect: { x: P('orders.amount') }, on: BOTH },
  { name: 'scalar subquery', sql: 'select c.customer_id, (select max(o.amount) from main.orders o where o.customer_id = c.customer_id) as biggest from main.customers c', expect: { customer_id: P('customers.customer_id'), biggest: T('(select max(o.amount)', 'orders.amount') }, on: BOTH },
  { name: 'in subquery in a where clause does not add edges', sql: 'select name from main.customers where customer_id in (select customer_id from main.orders)', expect: { name: P('customers.name') }, on: BOTH },
  { name: 'exists in select list', sql: 'select exists (select 1 from main.orders o where o.customer_id = c.customer_id) as has_orders from main.customers c', expect: { has_orders: T('exists', 'orders.customer_id', 'customers.customer_id') }, on: BOTH },
  { name: 'union all', sql: 'select order_id as id, amount from main.orders union all select payment_id, amount from raw.payments', expect: { id: P('orders.order_id', 'payments.payment_id'), amount: P('orders.amount', 'payments.amount') }, on: BOTH },
  { name: 'union with a transformation in one branch', sql: 'select amount from main.orders union select amount / 100 from raw.payments', expect: { amount: T('amount / 100', 'orders.amount', 'payments.amount') }, on: BOTH },
  { name: 'except', sql: 'select customer_id from main.customers except select customer_id from main.orders', expect: { customer_id: P('customers.customer_id', 'orders.customer_id') }, on: BOTH },
  { name: 'ephemeral model as a CTE', sql: 'with "__etl_ephemeral__enriched" as (select order_id, amount * 2 as score from main.orders) select e.order_id, e.score from "__etl_ephemeral__enriched" as e', expect: { order_id: P('enriched.order_id'), score: P('enriched.score') }, on: BOTH },
  { name: 'ephemeral model referenced directly', sql: 'select score from "__etl_ephemeral__enriched"', expect: { score: P('enriched.score') }, on: BOTH },
  { name: 'lateral column alias', sql: 'select amount * 2 as doubled, doubled + 1 as plus_one from main.orders', expect: { doubled: T('amount * 2', 'orders.amount'), plus_one: T('doubled + 1', 'orders.amount') }, on: DUCK },
  { name: 'table function is unresolved', sql: "select a from read_csv('x.csv')", expect: { a: U(/table function read_csv/) }, on: [] },
  { name: 'unknown relation is unresolved', sql: 'select a from main.somewhere_else', expect: { a: U(/not a ref or source/) }, on: [] },
  { name: 'values list', sql: 'select v.k, v.label from (values (1, \'one\'), (2, \'two\')) as v(k, label)', expect: { k: T('values'), label: T('values') }, on: BOTH },
  { name: 'recursive cte', sql: 'with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select n from r', expect: { n: T('1') }, on: BOTH },
  { name: 'struct field access', sql: 'select address.city as city from main.customers', expect: { city: T('address.city', 'customers.address') }, on: DUCK },
  { name: 'lambda', sql: 'select list_transform(tags, t -> upper(t)) as tags from main.orders', expect: { tags: T('list_transform', 'orders.tags') }, on: DUCK },
  { name: 'qualify', sql: 'select order_id from main.orders qualify row_number() over (partition by customer_id) = 1', expect: { order_id: P('orders.order_id') }, on: DUCK },
  { name: 'expression without alias takes the bound name', sql: 'select amount + 1 from main.orders', expect: { '(amount + 1)': T('amount + 1', 'orders.amount') }, on: DUCK },
  { name: 'nested subqueries and ctes', sql: 'with t as (select * from (select customer_id, amount from main.orders) x) select customer_id, max(amount) as top from t group by all', expect: { customer_id: P('orders.customer_id'), top: T('max(amount)', 'orders.amount') }, on: DUCK },
  // Written for Postgres (most run on DuckDB too)
  { name: 'pg :: casts', sql: 'select amount::numeric(16,2) as amount, order_id::text as id from "main"."orders"', expect: { amount: T('amount::numeric(16,2)', 'orders.amount'), id: T('order_id::text', 'orders.order_id') }, on: BOTH },
  { name: 'pg ilike in case', sql: "select case when email ilike '%@example.com' then 'internal' else 'external' end as audience from main.customers", expect: { audience: T('case when email ilike', 'customers.email') }, on: BOTH },
  { name: 'pg string_agg with order by', sql: "select customer_id, string_agg(status, ',' order by created_at) as statuses from main.orders group by customer_id", expect: { customer_id: P('orders.customer_id'), statuses: T('string_agg', 'orders.status', 'orders.created_at') }, on: BOTH },
  { name: 'pg date_trunc and interval', sql: "select date_trunc('month', created_at) + interval '1 month' as next_month from main.orders", expect: { next_month: T("date_trunc('month', created_at)", 'orders.created_at') }, on: BOTH },
  { name: 'pg distinct on', sql: 'select distinct on (customer_id) customer_id, amount from main.orders order by customer_id, created_at desc', expect: { customer_id: P('orders.customer_id'), amount: P('orders.amount') }, on: BOTH },
  { name: 'pg generate_series is unresolved', sql: 'select g from generate_series(1, 3) as g', expect: { g: U(/table function generate_series/) }, on: PG },
  { name: 'pg unaliased expression is named ?column?', sql: 'select amount + 1 from main.orders', expect: { '?column?': T('amount + 1', 'orders.amount') }, on: PG },
  { name: 'pg lateral subquery', sql: 'select c.customer_id, l.total from main.customers c cross join lateral (select sum(o.amount) as total from main.orders o where o.customer_id = c.customer_id) as l', expect: { customer_id: P('customers.customer_id'), total: T('sum(o.amount)', 'orders.amount') }, on: BOTH },
  { name: 'pg extract epoch', sql: 'select order_id, extract(epoch from created_at) as epoch from main.orders', expect: { order_id: P('orders.order_id'), epoch: T('epoch', 'orders.created_at') }, on: BOTH },
  { name: 'pg greatest and nullif', sql: "select greatest(amount, 0) as positive, nullif(status, '') as status from main.orders", expect: { positive: T('greatest(amount, 0)', 'orders.amount'), status: T("nullif(status, '')", 'orders.status') }, on: BOTH },
  { name: 'pg array_agg ordered', sql: 'select customer_id, array_agg(order_id order by created_at) as order_ids from main.orders group by customer_id', expect: { customer_id: P('orders.customer_id'), order_ids: T('array_agg', 'orders.order_id', 'orders.created_at') }, on: BOTH },
  { name: 'pg running total with a frame', sql: 'select order_id, sum(amount) over (order by created_at rows between unbounded preceding and current row) as running from main.orders', expect: { order_id: P('orders.order_id'), running: T('sum(amount) over', 'orders.amount', 'orders.created_at') }, on: BOTH },
  { name: 'pg materialized cte', sql: 'with t as materialized (select customer_id, amount from main.orders) select customer_id, amount from t', expect: { customer_id: P('orders.customer_id'), amount: P('orders.amount') }, on: BOTH },
  { name: 'pg count over empty window', sql: 'select order_id, count(*) over () as total_orders from main.orders', expect: { order_id: P('orders.order_id'), total_orders: T('count(*) over ()') }, on: BOTH },
  { name: 'pg array element', sql: 'select tags[1] as first_tag from main.orders', expect: { first_tag: T('tags[1]', 'orders.tags') }, on: BOTH },
  { name: 'pg left join with coalesce of a count', sql: 'select c.customer_id, coalesce(x.n, 0) as orders from main.customers c left join (select customer_id, count(*) as n from main.orders group by customer_id) x on x.customer_id = c.customer_id', expect: { customer_id: P('customers.customer_id'), orders: T('coalesce(x.n, 0)') }, on: BOTH },
  { name: 'pg syntax the parser cannot read is unresolved', sql: 'select amount from main.orders for update skip locked nowait nowait', expect: {}, on: [] },
];

async function lineageOf(sql: string, outputColumns?: string[]) {
  const [parsed] = await binder.parseAll([sql]);
  return queryLineage(sql, JSON.parse(parsed!) as Record<string, unknown>, { relations, outputColumns });
}

const short = (id: string) => id.split('.').at(-1);

function expectEdges(lineage: Map<string, { kind: string; upstream: Array<{ node: string; column: string }>; expression?: string; reason?: string }>, shape: Shape): void {
  expect([...lineage.keys()]).toEqual(Object.keys(shape.expect));
  for (const [col, edge] of Object.entries(shape.expect)) {
    const got = lineage.get(col)!;
    const shown = `${col}: ${JSON.stringify(got)}`;
    expect(got.kind, shown).toBe(edge.kind);
    expect(got.upstream.map((u) => `${short(u.node)}.${u.column}`).sort(), shown).toEqual([...edge.up].sort());
    if (edge.expr) expect(got.expression?.toLowerCase(), shown).toContain(edge.expr.toLowerCase());
    if (edge.reason) expect(got.reason, shown).toMatch(edge.reason);
  }
}

describe('column lineage of SQL shapes', () => {
  it('covers at least 40 shapes on each engine', () => {
    expect(SHAPES.filter((s) => s.on.includes('duckdb')).length).toBeGreaterThanOrEqual(40);
    expect(SHAPES.filter((s) => s.on.includes('postgres')).length).toBeGreaterThanOrEqual(40);
    expect(new Set(SHAPES.map((s) => s.name)).size).toBe(SHAPES.length);
  });
  for (const shape of SHAPES) {
    for (const engine of shape.on) {
      it(`${engine}: ${shape.name}`, async () => {
        // The engine runs it and names its columns: the expected ones, which the lineage is given.
        const columns = await engineColumns(engine, shape.sql);
        expect(columns).toEqual(Object.keys(shape.expect));
        expectEdges(await lineageOf(shape.sql, columns), shape);
      });
    }
    if (shape.on.length) continue;
    it(`no engine: ${shape.name}`, async () => {
      const names = Object.keys(shape.expect);
      const lineage = await lineageOf(shape.sql, names.length ? names : ['amount']);
      if (!names.length) {
        expect(lineage.get('amount')?.kind).toBe('unresolved');
        expect(lineage.get('amount')?.reason).toMatch(/parser cannot read/);
        return;
      }
      expectEdges(lineage, shape);
    });
  }
});
