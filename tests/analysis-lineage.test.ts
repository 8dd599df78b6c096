// Column lineage (core/analysis/lineage.ts) on SQL shapes, parsed by DuckDB's
// own parser (json_serialize_sql): expected edges per output column, for SQL
// in DuckDB's dialect and in Postgres's.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DuckDbBinder } from '../core/analysis/binder.js';
import { queryLineage, type KnownRelation } from '../core/analysis/lineage.js';

// The parse the project's lineage uses (json_serialize_sql, defaults left out).
let binder: DuckDbBinder;
beforeAll(async () => {
  binder = await DuckDbBinder.open();
});
afterAll(() => binder.close());

const RELATIONS: Record<string, KnownRelation> = {
  'main.orders': { node: 'model.shop.orders', columns: ['order_id', 'customer_id', 'amount', 'status', 'created_at', 'tags'] },
  'main.customers': { node: 'model.shop.customers', columns: ['customer_id', 'name', 'email', 'address'] },
  'raw.payments': { node: 'source.shop.raw.payments', columns: ['payment_id', 'order_id', 'amount', 'method'] },
  '__etl_ephemeral__enriched': { node: 'model.shop.enriched', columns: ['order_id', 'score'] },
};
const relations = new Map(Object.entries(RELATIONS));

/** Expected: kind, upstream as "node-name.column", and for transforms a piece of the expression. */
type Edge = { kind: 'passthrough' | 'transform' | 'unresolved'; up: string[]; expr?: string; reason?: RegExp };
interface Shape {
  name: string;
  sql: string;
  expect: Record<string, Edge>;
  dialect?: 'duckdb' | 'postgres';
}

const P = (...up: string[]): Edge => ({ kind: 'passthrough', up });
const T = (expr: string, ...up: string[]): Edge => ({ kind: 'transform', up, expr });
const U = (reason: RegExp, ...up: string[]): Edge => ({ kind: 'unresolved', up, reason });

const SHAPES: Shape[] = [
  { name: 'plain columns', sql: 'select order_id, amount from "main"."orders"', expect: { order_id: P('orders.order_id'), amount: P('orders.amount') } },
  { name: 'aliased column', sql: 'select amount as total from main.orders', expect: { total: P('orders.amount') } },
  { name: 'qualified by table alias', sql: 'select o.amount from main.orders o', expect: { amount: P('orders.amount') } },
  { name: 'qualified by table name', sql: 'select orders.status from main.orders', expect: { status: P('orders.status') } },
  { name: 'fully qualified', sql: 'select main.orders.status from main.orders', expect: { status: P('orders.status') } },
  { name: 'select star', sql: 'select * from main.customers', expect: { customer_id: P('customers.customer_id'), name: P('customers.name'), email: P('customers.email'), address: P('customers.address') } },
  { name: 'star exclude', sql: 'select * exclude (email, address) from main.customers', expect: { customer_id: P('customers.customer_id'), name: P('customers.name') } },
  { name: 'star replace', sql: 'select * replace (lower(email) as email) from main.customers', expect: { customer_id: P('customers.customer_id'), name: P('customers.name'), email: T('lower(email)', 'customers.email'), address: P('customers.address') } },
  { name: 'qualified star in a join', sql: 'select c.*, o.amount from main.customers c join main.orders o on o.customer_id = c.customer_id', expect: { customer_id: P('customers.customer_id'), name: P('customers.name'), email: P('customers.email'), address: P('customers.address'), amount: P('orders.amount') } },
  { name: 'arithmetic', sql: 'select amount * 100 as cents from main.orders', expect: { cents: T('amount * 100', 'orders.amount') } },
  { name: 'function of two columns', sql: "select concat(name, ' <', email, '>') as display from main.customers", expect: { display: T("concat(name, ' <', email, '>')", 'customers.name', 'customers.email') } },
  { name: 'cast is a transformation', sql: 'select cast(amount as integer) as amount from main.orders', expect: { amount: T('cast(amount as integer)', 'orders.amount') } },
  { name: 'constant', sql: "select 'x' as kind, 1 as one from main.orders", expect: { kind: T("'x'"), one: T('1') } },
  { name: 'aggregate with group by', sql: 'select customer_id, sum(amount) as total, count(*) as n from main.orders group by customer_id', expect: { customer_id: P('orders.customer_id'), total: T('sum(amount)', 'orders.amount'), n: T('count(*)') } },
  { name: 'aggregate with filter', sql: "select count(*) filter (where status = 'shipped') as shipped from main.orders", expect: { shipped: T('count(*) filter', 'orders.status') } },
  { name: 'distinct aggregate', sql: 'select count(distinct customer_id) as buyers from main.orders', expect: { buyers: T('count(distinct customer_id)', 'orders.customer_id') } },
  { name: 'window function', sql: 'select order_id, row_number() over (partition by customer_id order by created_at) as rn from main.orders', expect: { order_id: P('orders.order_id'), rn: T('row_number() over', 'orders.customer_id', 'orders.created_at') } },
  { name: 'window aggregate', sql: 'select sum(amount) over (partition by customer_id) as customer_total from main.orders', expect: { customer_total: T('sum(amount) over', 'orders.amount', 'orders.customer_id') } },
  { name: 'case', sql: "select case when status = 'returned' then 0 else amount end as net from main.orders", expect: { net: T('case when', 'orders.status', 'orders.amount') } },
  { name: 'coalesce', sql: 'select coalesce(o.amount, p.amount) as amount from main.orders o left join raw.payments p on p.order_id = o.order_id', expect: { amount: T('coalesce(o.amount, p.amount)', 'orders.amount', 'payments.amount') } },
  { name: 'inner join, columns from both sides', sql: 'select o.order_id, c.name from main.orders as o inner join main.customers as c on c.customer_id = o.customer_id', expect: { order_id: P('orders.order_id'), name: P('customers.name') } },
  { name: 'unqualified column unique to one side of a join', sql: 'select email, amount from main.orders o join main.customers c on c.customer_id = o.customer_id', expect: { email: P('customers.email'), amount: P('orders.amount') } },
  { name: 'join using merges both sides', sql: 'select customer_id, name from main.orders join main.customers using (customer_id)', expect: { customer_id: P('orders.customer_id', 'customers.customer_id'), name: P('customers.name') } },
  { name: 'cte pass-through', sql: 'with o as (select order_id, amount from main.orders) select order_id, amount from o', expect: { order_id: P('orders.order_id'), amount: P('orders.amount') } },
  { name: 'cte aggregate, then renamed', sql: 'with t as (select customer_id, sum(amount) as total from main.orders group by 1) select customer_id as id, total as lifetime from t', expect: { id: P('orders.customer_id'), lifetime: T('sum(amount)', 'orders.amount') } },
  { name: 'chained ctes', sql: 'with a as (select * from main.orders), b as (select order_id, amount * 2 as doubled from a) select * from b', expect: { order_id: P('orders.order_id'), doubled: T('amount * 2', 'orders.amount') } },
  { name: 'cte with column aliases', sql: 'with t(id, value) as (select order_id, amount from main.orders) select id, value from t', expect: { id: P('orders.order_id'), value: P('orders.amount') } },
  { name: 'subquery in from', sql: 'select s.total from (select sum(amount) as total from main.orders) as s', expect: { total: T('sum(amount)', 'orders.amount') } },
  { name: 'subquery in from with column aliases', sql: 'select x from (select amount from main.orders) as s(x)', expect: { x: P('orders.amount') } },
  { name: 'scalar subquery', sql: 'select c.customer_id, (select max(o.amount) from main.orders o where o.customer_id = c.customer_id) as biggest from main.customers c', expect: { customer_id: P('customers.customer_id'), biggest: T('(select max(o.amount)', 'orders.amount') } },
  { name: 'in subquery in a where clause does not add edges', sql: 'select name from main.customers where customer_id in (select customer_id from main.orders)', expect: { name: P('customers.name') } },
  { name: 'exists in select list', sql: 'select exists (select 1 from main.orders o where o.customer_id = c.customer_id) as has_orders from main.customers c', expect: { has_orders: T('exists', 'orders.customer_id', 'customers.customer_id') } },
  { name: 'union all', sql: 'select order_id as id, amount from main.orders union all select payment_id, amount from raw.payments', expect: { id: P('orders.order_id', 'payments.payment_id'), amount: P('orders.amount', 'payments.amount') } },
  { name: 'union with a transformation in one branch', sql: 'select amount from main.orders union select amount / 100 from raw.payments', expect: { amount: T('amount / 100', 'orders.amount', 'payments.amount') } },
  { name: 'except', sql: 'select customer_id from main.customers except select customer_id from main.orders', expect: { customer_id: P('customers.customer_id', 'orders.customer_id') } },
  { name: 'ephemeral model as a CTE', sql: 'with "__etl_ephemeral__enriched" as (select order_id, amount * 2 as score from main.orders) select e.order_id, e.score from "__etl_ephemeral__enriched" as e', expect: { order_id: P('enriched.order_id'), score: P('enriched.score') } },
  { name: 'ephemeral model referenced directly', sql: 'select score from "__etl_ephemeral__enriched"', expect: { score: P('enriched.score') } },
  { name: 'lateral column alias', sql: 'select amount * 2 as doubled, doubled + 1 as plus_one from main.orders', expect: { doubled: T('amount * 2', 'orders.amount'), plus_one: T('doubled + 1', 'orders.amount') } },
  { name: 'table function is unresolved', sql: "select a from read_csv('x.csv')", expect: { a: U(/table function read_csv/) } },
  { name: 'unknown relation is unresolved', sql: 'select a from main.somewhere_else', expect: { a: U(/not a ref or source/) } },
  { name: 'values list', sql: 'select v.k, v.label from (values (1, \'one\'), (2, \'two\')) as v(k, label)', expect: { k: T('values'), label: T('values') } },
  { name: 'recursive cte', sql: 'with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) select n from r', expect: { n: T('1') } },
  { name: 'struct field access', sql: 'select address.city as city from main.customers', expect: { city: T('address.city', 'customers.address') } },
  { name: 'lambda', sql: 'select list_transform(tags, t -> upper(t)) as tags from main.orders', expect: { tags: T('list_transform', 'orders.tags') } },
  { name: 'qualify', sql: 'select order_id from main.orders qualify row_number() over (partition by customer_id) = 1', expect: { order_id: P('orders.order_id') } },
  { name: 'expression without alias takes the bound name', sql: 'select amount + 1 from main.orders', expect: { '(amount + 1)': T('amount + 1', 'orders.amount') } },
  { name: 'nested subqueries and ctes', sql: 'with t as (select * from (select customer_id, amount from main.orders) x) select customer_id, max(amount) as top from t group by all', expect: { customer_id: P('orders.customer_id'), top: T('max(amount)', 'orders.amount') } },
  // Postgres dialect
  { name: 'pg :: casts', sql: 'select amount::numeric(16,2) as amount, order_id::text as id from "main"."orders"', expect: { amount: T('amount::numeric(16,2)', 'orders.amount'), id: T('order_id::text', 'orders.order_id') }, dialect: 'postgres' },
  { name: 'pg ilike in case', sql: "select case when email ilike '%@example.com' then 'internal' else 'external' end as audience from main.customers", expect: { audience: T('case when email ilike', 'customers.email') }, dialect: 'postgres' },
  { name: 'pg string_agg with order by', sql: "select customer_id, string_agg(status, ',' order by created_at) as statuses from main.orders group by customer_id", expect: { customer_id: P('orders.customer_id'), statuses: T('string_agg', 'orders.status', 'orders.created_at') }, dialect: 'postgres' },
  { name: 'pg date_trunc and interval', sql: "select date_trunc('month', created_at) + interval '1 month' as next_month from main.orders", expect: { next_month: T("date_trunc('month', created_at)", 'orders.created_at') }, dialect: 'postgres' },
  { name: 'pg distinct on', sql: 'select distinct on (customer_id) customer_id, amount from main.orders order by customer_id, created_at desc', expect: { customer_id: P('orders.customer_id'), amount: P('orders.amount') }, dialect: 'postgres' },
  { name: 'pg generate_series is unresolved', sql: 'select g from generate_series(1, 3) as g', expect: { g: U(/table function generate_series/) }, dialect: 'postgres' },
  { name: 'pg syntax the parser cannot read is unresolved', sql: 'select amount from main.orders for update skip locked nowait nowait', expect: {}, dialect: 'postgres' },
];

async function lineageOf(sql: string, outputColumns?: string[]) {
  const [parsed] = await binder.parseAll([sql]);
  return queryLineage(sql, JSON.parse(parsed!) as Record<string, unknown>, { relations, outputColumns });
}

const short = (id: string) => id.split('.').at(-1);

describe('column lineage of SQL shapes', () => {
  it('covers at least 40 shapes, on both dialects', () => {
    expect(SHAPES.length).toBeGreaterThanOrEqual(40);
    expect(SHAPES.filter((s) => s.dialect === 'postgres').length).toBeGreaterThanOrEqual(5);
  });
  for (const shape of SHAPES) {
    it(`${shape.dialect ?? 'duckdb'}: ${shape.name}`, async () => {
      const names = Object.keys(shape.expect);
      const lineage = await lineageOf(shape.sql, names.length ? names : ['amount']);
      if (!names.length) {
        expect(lineage.get('amount')?.kind).toBe('unresolved');
        expect(lineage.get('amount')?.reason).toMatch(/parser cannot read/);
        return;
      }
      expect([...lineage.keys()]).toEqual(names);
      for (const [col, edge] of Object.entries(shape.expect)) {
        const got = lineage.get(col)!;
        const shown = `${col}: ${JSON.stringify(got)}`;
        expect(got.kind, shown).toBe(edge.kind);
        expect(got.upstream.map((u) => `${short(u.node)}.${u.column}`).sort(), shown).toEqual([...edge.up].sort());
        if (edge.expr) expect(got.expression?.toLowerCase(), shown).toContain(edge.expr.toLowerCase());
        if (edge.reason) expect(got.reason, shown).toMatch(edge.reason);
      }
    });
  }
});
