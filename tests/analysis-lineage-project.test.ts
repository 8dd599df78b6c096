// Column lineage of a whole project (core/analysis/column-lineage.ts):
// target/lineage.json written by `etl compile --check` in the shape the docs
// site reads, descriptions inherited along pass-through lineage, and
// `etl lineage -s model.column` up and down.

import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compile } from '../core/api.js';
import { runCli } from './e2e/helpers.js';

const TEMPLATE = path.resolve(import.meta.dirname, '../project-template');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function template(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'etl-lineage-'));
  dirs.push(dir);
  cpSync(TEMPLATE, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}target`) });
  return dir;
}

const readLineage = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'target/lineage.json'), 'utf8'));

describe('target/lineage.json', () => {
  it('traces every model column of project-template to its upstream columns', async () => {
    const dir = template();
    await compile({ projectDir: dir, check: true });
    const l = readLineage(dir);
    expect(l.metadata).toMatchObject({ generated_at: expect.any(String), invocation_id: expect.any(String) });
    const orders = l.nodes['model.shop.orders'].columns;
    expect(Object.keys(orders)).toEqual(['order_id', 'customer_id', 'order_date', 'status', 'credit_card_amount', 'bank_transfer_amount', 'gift_card_amount', 'paypal_amount', 'amount']);
    expect(orders.order_id).toEqual({ data_type: 'BIGINT', kind: 'passthrough', upstream: [{ node: 'model.shop.stg_orders', column: 'order_id' }] });
    expect(orders.amount).toMatchObject({ kind: 'transform', expression: 'coalesce(p.amount, 0)', upstream: [{ node: 'model.shop.stg_payments', column: 'amount' }] });
    expect(orders.credit_card_amount.upstream).toEqual([
      { node: 'model.shop.stg_payments', column: 'payment_method' },
      { node: 'model.shop.stg_payments', column: 'amount' },
    ]);
    const stg = l.nodes['model.shop.stg_payments'].columns;
    expect(stg.amount).toMatchObject({ kind: 'transform', expression: 'cast(amount_cents / 100.0 as decimal(16, 2))', upstream: [{ node: 'seed.shop.raw_payments', column: 'amount_cents' }] });
    expect(l.nodes['model.shop.stg_customers'].columns.email).toMatchObject({ kind: 'transform', expression: 'lower(email)' });
    const customers = l.nodes['model.shop.customers'].columns;
    expect(customers.number_of_orders).toMatchObject({ kind: 'transform', expression: 'coalesce(co.number_of_orders, 0)', upstream: [] });
    expect(customers.lifetime_value.upstream).toEqual([{ node: 'model.shop.stg_payments', column: 'amount' }]);
    expect(customers.first_name).toMatchObject({ kind: 'passthrough', upstream: [{ node: 'model.shop.stg_customers', column: 'first_name' }] });
  });

  it('inherits a description along pass-through lineage, saying where it came from', async () => {
    const dir = template();
    // stg_customers and customers describe no columns: the seed's descriptions flow down.
    const staging = readFileSync(path.join(dir, 'models/staging/schema.yml'), 'utf8');
    writeFileSync(path.join(dir, 'models/staging/schema.yml'), staging.replace(/  - name: stg_customers[\s\S]*?(?=\n  - name: stg_orders)/, '  - name: stg_customers\n'));
    const marts = readFileSync(path.join(dir, 'models/marts/schema.yml'), 'utf8');
    writeFileSync(path.join(dir, 'models/marts/schema.yml'), marts.replace("      - name: first_name\n        description: Customer's first name.\n", ''));
    await compile({ projectDir: dir, check: true });
    const l = readLineage(dir);
    const raw = { node: 'seed.shop.raw_customers', column: 'first_name' };
    expect(l.nodes['model.shop.stg_customers'].columns.first_name.inherited_description).toEqual({ text: "Customer's first name.", from: raw });
    // Two hops: customers.first_name <- stg_customers.first_name <- raw_customers.first_name.
    expect(l.nodes['model.shop.customers'].columns.first_name.inherited_description).toEqual({ text: "Customer's first name.", from: raw });
    // A transformation inherits nothing; a column with its own description keeps it.
    expect(l.nodes['model.shop.stg_customers'].columns.email.inherited_description).toBeUndefined();
    expect(l.nodes['model.shop.customers'].columns.last_name.inherited_description).toBeUndefined();
  });
});

describe('etl docs generate', () => {
  it('traces the same edges without a bind or a built target, select * expanded through a model and a seed', async () => {
    const dir = template();
    // A model reading a model and a seed with `select *`, and an expression without an alias.
    writeFileSync(path.join(dir, 'models/marts/order_wide.sql'), 'select o.*, c.* exclude (customer_id), upper(c.first_name) from {{ref "orders"}} o join {{ref "raw_customers"}} c on c.customer_id = o.customer_id\n');
    await compile({ projectDir: dir, check: true });
    const bound = readLineage(dir);
    rmSync(path.join(dir, 'target'), { recursive: true, force: true });
    const gen = await runCli(['docs', 'generate'], { cwd: dir });
    expect(gen.code, gen.output).toBe(0);
    // Nothing built: no catalog, and the target was read (opened) once for catalog and history together.
    expect(gen.stderr.match(/could not be read/g)).toHaveLength(1);
    const derived = readLineage(dir);
    const edges = (l: { nodes: Record<string, { columns: Record<string, { kind: string; upstream: unknown[]; expression?: string }> }> }, renamed: Record<string, string> = {}) =>
      Object.fromEntries(Object.entries(l.nodes).map(([id, n]) => [id, Object.entries(n.columns).map(([c, x]) => [renamed[c] ?? c, x.kind, x.expression ?? '', JSON.stringify(x.upstream)])]));
    // DuckDB names the unaliased upper(c.first_name) "upper(c.first_name)" as the parse does; the rest is identical.
    expect(Object.keys(derived.nodes['model.shop.order_wide'].columns)).toEqual([...Object.keys(bound.nodes['model.shop.orders'].columns), 'first_name', 'last_name', 'email', 'country', 'signup_date', 'upper(c.first_name)']);
    expect(edges(derived)).toEqual(edges(bound));
    expect(derived.nodes['model.shop.order_wide'].columns.last_name).toMatchObject({ kind: 'passthrough', upstream: [{ node: 'seed.shop.raw_customers', column: 'last_name' }], inherited_description: { text: "Customer's last name." } });
  });
});

describe('etl lineage', () => {
  it('prints the upstream and downstream columns of orders.amount, as text and json', async () => {
    const dir = template();
    const text = await runCli(['lineage', '-s', 'stg_payments.amount'], { cwd: dir });
    expect(text.code, text.output).toBe(0);
    expect(text.stdout).toContain('stg_payments.amount');
    expect(text.stdout).toMatch(/raw_payments\.amount_cents/);
    expect(text.stdout).toMatch(/orders\.amount/);
    expect(text.stdout).toMatch(/customers\.lifetime_value/);
    const up = await runCli(['lineage', '-s', 'orders.amount', '--upstream', '--output', 'json'], { cwd: dir });
    expect(up.code, up.output).toBe(0);
    const j = JSON.parse(up.stdout);
    expect(j.column).toEqual({ node: 'model.shop.orders', column: 'amount' });
    expect(j.downstream).toEqual([]);
    expect(j.upstream).toEqual([
      { to: { node: 'model.shop.orders', column: 'amount' }, from: { node: 'model.shop.stg_payments', column: 'amount' }, kind: 'transform', expression: 'coalesce(p.amount, 0)', depth: 1 },
      { to: { node: 'model.shop.stg_payments', column: 'amount' }, from: { node: 'seed.shop.raw_payments', column: 'amount_cents' }, kind: 'transform', expression: 'cast(amount_cents / 100.0 as decimal(16, 2))', depth: 2 },
    ]);
    const bad = await runCli(['lineage', '-s', 'orders.amout'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/orders has no column "amout"[\s\S]*did you mean "amount"/);
  });
});
