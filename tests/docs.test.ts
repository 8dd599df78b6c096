// core/docs: how the artifacts are split for the site (split.ts) and written
// (generate.ts writeSite), on project-template's real compiled manifest.

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../core/api.js';
import type { Manifest } from '../core/compiler/manifest.js';
import { splitDocs, type LineageFile, type RunResultsFile } from '../core/docs/split.js';
import { writeSite } from '../core/docs/generate.js';
import { RESOURCE_TYPES, SHARD_SIZE } from '../core/docs/model.js';

const ROOT = path.resolve(import.meta.dirname, '..');
let dir: string;
let manifest: Manifest;
const lineage = JSON.parse(readFileSync(path.join(ROOT, 'tests/fixtures/docs/shop-lineage.json'), 'utf8')) as LineageFile;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'etl-docs-'));
  cpSync(path.join(ROOT, 'project-template'), dir, { recursive: true });
  ({ manifest } = await compile({ projectDir: dir }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function result(unique_id: string, status: string, extra: Record<string, unknown> = {}) {
  return { unique_id, status, timing: [{ name: 'execute', started_at: '2026-01-01T00:00:00Z', completed_at: '2026-01-01T00:00:01Z' }], thread_id: 'main', execution_time: 1, adapter_response: {}, message: status, failures: null, rows_affected: null, compiled_path: null, relation_name: null, ...extra };
}

describe('splitDocs', () => {
  it('indexes every model, seed and source once, columnar, without tests', () => {
    const { index, nodes } = splitDocs({ manifest });
    const expected = Object.values(manifest.nodes).filter((n) => n.resource_type !== 'test').map((n) => n.unique_id).sort();
    expect([...index.ids].sort()).toEqual(expected);
    expect(nodes.map((n) => n.id)).toEqual(index.ids);
    for (const key of ['names', 'types', 'folder', 'node_tags', 'materialized', 'status', 'parents'] as const) expect(index[key]).toHaveLength(index.ids.length);
    const orders = index.ids.indexOf('model.shop.orders');
    expect(index.names[orders]).toBe('orders');
    expect(RESOURCE_TYPES[index.types[orders]!]).toBe('model');
    expect(index.folders[index.folder[orders]!]).toBe('models/marts');
    expect(index.tags[(index.node_tags[orders] as number[])[0]!]).toBe('marts');
    expect(index.parents[orders]!.map((p) => index.ids[p]).sort()).toEqual(['model.shop.stg_orders', 'model.shop.stg_payments']);
    expect(index.summary.counts).toEqual({ seed: 3, model: 5 });
    expect(index.summary.tests).toBe(Object.values(manifest.nodes).filter((n) => n.resource_type === 'test').length);
  });

  it("names the SQL formatter's dialect from the adapter's Dialect, so the site never compares engine names", () => {
    expect(splitDocs({ manifest }).index.sql_dialect).toBe('duckdb');
    const pg = { ...manifest, metadata: { ...manifest.metadata, adapter_type: 'postgres' } } as Manifest;
    expect(splitDocs({ manifest: pg }).index.sql_dialect).toBe('postgresql');
  });

  it('puts columns, catalog types, tests and their results on the node they test', () => {
    const notNull = Object.values(manifest.nodes).find((n) => n.resource_type === 'test' && n.attached_node === 'model.shop.orders' && n.column_name === 'order_id' && n.test_metadata?.name === 'not_null')!;
    const { nodes, index } = splitDocs({
      manifest,
      catalog: { nodes: { 'model.shop.orders': { columns: { ORDER_ID: { type: 'INTEGER', index: 1 }, extra_col: { type: 'VARCHAR', index: 99, name: 'extra_col' } } } } },
      runResults: { metadata: { generated_at: '2026-01-01T00:00:00Z', invocation_id: 'r1' }, elapsed_time: 3, results: [result('model.shop.orders', 'success', { rows_affected: 500, quarantined: 4 }), result(notNull.unique_id, 'fail', { failures: 7 })] } as RunResultsFile,
    });
    const orders = nodes.find((n) => n.id === 'model.shop.orders')!;
    const orderId = orders.columns.find((c) => c.name === 'order_id')!;
    expect(orderId.type).toBe('INTEGER');
    expect(orderId.description).toBe('Primary key of the order.');
    const tests = orderId.tests.map((k) => orders.tests[k]!);
    expect(tests.map((t) => t.kind).sort()).toEqual(['not_null', 'unique']);
    expect(tests.find((t) => t.kind === 'not_null')).toMatchObject({ status: 'fail', failures: 7 });
    // A column only the engine knows of is listed after the declared ones.
    expect(orders.columns.at(-1)).toMatchObject({ name: 'extra_col', type: 'VARCHAR', description: '' });
    expect(orders.run).toMatchObject({ status: 'success', rows: 500, quarantined: 4 });
    expect(index.summary.failing_tests).toEqual([expect.objectContaining({ name: notNull.name, failures: 7, column: 'order_id', node: index.ids.indexOf('model.shop.orders') })]);
    expect(index.summary.quarantined).toEqual([{ node: index.ids.indexOf('model.shop.orders'), rows: 4 }]);
    expect(index.summary.last_run).toMatchObject({ elapsed_time: 3, statuses: { success: 1, fail: 1 } });
    // A singular test reads several models: it is listed on each.
    const singular = Object.values(manifest.nodes).find((n) => n.resource_type === 'test' && !n.test_metadata && n.depends_on.nodes.length > 1);
    if (singular) for (const id of singular.depends_on.nodes) expect(nodes.find((n) => n.id === id)!.tests.map((t) => t.name)).toContain(singular.name);
  });

  it("sums up the home page: the last run, warning tests, the slowest nodes, stale sources", () => {
    const test = (name: string) => Object.values(manifest.nodes).find((n) => n.resource_type === 'test' && n.test_metadata?.name === name)!;
    const warned = test('accepted_values');
    const { index } = splitDocs({
      manifest,
      runResults: {
        metadata: { generated_at: '2026-01-01T00:00:00Z', invocation_id: 'r1' },
        elapsed_time: 9,
        results: [result('model.shop.orders', 'success', { execution_time: 4 }), result('model.shop.customers', 'error', { execution_time: 6 }), result('seed.shop.raw_orders', 'success', { execution_time: 0.5 }), result(warned.unique_id, 'warn', { failures: 2 })],
      } as RunResultsFile,
      sources: { results: [{ unique_id: 'source.shop.raw.orders', status: 'error', max_loaded_at: '2025-12-30T00:00:00Z', snapshotted_at: '2026-01-01T00:00:00Z', max_loaded_at_time_ago_in_s: 172800, criteria: { warn_after: null, error_after: '1 day', filter: null }, execution_time: 0.1 }, { unique_id: 'source.shop.raw.payments', status: 'pass', max_loaded_at: '2026-01-01T00:00:00Z', snapshotted_at: '2026-01-01T00:00:00Z', max_loaded_at_time_ago_in_s: 60, criteria: { warn_after: null, error_after: '1 day', filter: null }, execution_time: 0.1 }] },
    });
    const s = index.summary;
    expect(s.last_run).toMatchObject({ elapsed_time: 9, statuses: { success: 2, error: 1, warn: 1 }, failures: [{ id: 'model.shop.customers', status: 'error' }] });
    expect(s.warning_tests).toEqual([expect.objectContaining({ name: warned.name, failures: 2 })]);
    expect(s.failing_tests).toEqual([]);
    expect(s.slowest.map((x) => [index.names[x.node], x.seconds])).toEqual([['customers', 6], ['orders', 4], ['raw_orders', 0.5]]);
    // Only what is not fresh, with its age; a source outside the manifest keeps its id.
    expect(s.stale_sources).toEqual([{ node: null, id: 'source.shop.raw.orders', status: 'error', max_loaded_at: '2025-12-30T00:00:00Z', age_s: 172800, error: undefined }]);
  });

  it("prices each run at etl.yml's cost: rates, as etl report does, and not at all without rates", () => {
    const history = { runs: [], node_runs: [{ run_id: 'r1', unique_id: 'model.shop.orders', relation: null, status: 'success', started_at: null, finished_at: null, rows_affected: 5, message: '', execution_time: 1800, bytes_written: 2e9, bytes_scanned: null }] };
    const runResults = { metadata: { generated_at: '2026-01-01T00:00:00Z', invocation_id: 'r1' }, elapsed_time: 9, results: [result('model.shop.orders', 'success', { execution_time: 7200 })] } as RunResultsFile;
    const cost = { per_cpu_hour: 2, per_gb_written: 0.5, per_gb_scanned: 0, currency: 'EUR' };
    const priced = splitDocs({ manifest, history, runResults, cost });
    const orders = priced.nodes.find((n) => n.id === 'model.shop.orders')!;
    // Half an hour at 2 an hour, and 2 GB written at 0.5 a GB.
    expect(orders.history).toEqual([expect.objectContaining({ seconds: 1800, cost: 2 })]);
    expect(orders.run?.cost).toBe(4);
    expect(priced.index.currency).toBe('EUR');
    expect(priced.index.summary.slowest[0]).toMatchObject({ seconds: 7200, cost: 4 });
    const free = splitDocs({ manifest, history, runResults, cost: { ...cost, per_cpu_hour: 0, per_gb_written: 0 } });
    expect(free.index.currency).toBeUndefined();
    expect(free.nodes.find((n) => n.id === 'model.shop.orders')!.history[0]).not.toHaveProperty('cost');
    expect(free.index.summary.slowest[0]).not.toHaveProperty('cost');
  });

  it("gives a model's contract and its status at the last build", () => {
    const m = structuredClone(manifest);
    m.nodes['model.shop.orders']!.config.contract = { enforced: true };
    const { nodes, index } = splitDocs({
      manifest: m,
      runResults: { metadata: { generated_at: '2026-01-01T00:00:00Z', invocation_id: 'r1' }, elapsed_time: 1, results: [result('model.shop.orders', 'error', { message: 'contract: column amount is VARCHAR, the contract says DECIMAL(16,2)' })] } as RunResultsFile,
    });
    expect(nodes[index.ids.indexOf('model.shop.orders')]!.contract).toEqual({ enforced: true, status: 'error', message: 'contract: column amount is VARCHAR, the contract says DECIMAL(16,2)' });
    expect(nodes[index.ids.indexOf('model.shop.customers')]!.contract).toBeUndefined();
  });

  it('carries column lineage up and down, and inherited descriptions only where the model has none', () => {
    const { nodes } = splitDocs({ manifest, lineage });
    const stg = nodes.find((n) => n.id === 'model.shop.stg_payments')!;
    const amount = stg.columns.find((c) => c.name === 'amount')!;
    expect(amount.lineage).toEqual({ kind: 'transform', expression: 'CAST(amount_cents AS DECIMAL(16,2)) / 100', upstream: [{ node: 'seed.shop.raw_payments', column: 'amount_cents' }] });
    expect(amount.downstream?.map((d) => `${d.node}.${d.column}`).sort()).toEqual(
      ['model.shop.customers.lifetime_value', 'model.shop.orders.amount', 'model.shop.orders.bank_transfer_amount', 'model.shop.orders.credit_card_amount', 'model.shop.orders.gift_card_amount', 'model.shop.orders.paypal_amount'].sort(),
    );
    const customers = nodes.find((n) => n.id === 'model.shop.customers')!;
    // project-template describes customers.first_name itself: its own text wins.
    expect(customers.columns.find((c) => c.name === 'first_name')!.inherited).toBeUndefined();
    const described = structuredClone(manifest);
    described.nodes['model.shop.customers']!.columns.first_name!.description = '';
    const inherited = splitDocs({ manifest: described, lineage }).nodes.find((n) => n.id === 'model.shop.customers')!.columns.find((c) => c.name === 'first_name')!;
    expect(inherited.inherited).toEqual({ text: "Customer's first name.", from: { node: 'model.shop.stg_customers', column: 'first_name' } });
    expect(customers.columns.find((c) => c.name === 'number_of_orders')!.lineage).toMatchObject({ kind: 'unresolved', reason: 'count(*) reads no column' });
  });

  it('builds a search index of distinct column names and description texts', () => {
    const { search, index } = splitDocs({ manifest });
    expect(new Set(search.columns).size).toBe(search.columns.length);
    const customerId = search.columns.indexOf('customer_id');
    expect(search.col_nodes[customerId]!.map((i) => index.names[i]).sort()).toEqual(['customers', 'orders', 'raw_customers', 'raw_orders', 'stg_customers', 'stg_orders']);
    expect(new Set(search.texts).size).toBe(search.texts.length);
    const t = search.texts.indexOf('Primary key of the order.');
    const refs = search.text_refs[t]!;
    const pairs: string[] = [];
    for (let k = 0; k < refs.length; k += 2) pairs.push(`${index.names[refs[k] as number]}.${refs[k + 1]}`);
    expect(pairs).toContain('orders.order_id');
  });
});

describe('writeSite', () => {
  it('writes the nodes in data scripts of SHARD_SIZE nodes, the index and the search index, and swaps the folder in whole', async () => {
    // 70 nodes: three files, the last one short.
    const base = splitDocs({ manifest, lineage });
    const nodes = Array.from({ length: 70 }, (_, i) => ({ ...base.nodes[i % base.nodes.length]!, name: `n${i}` }));
    const data = { ...base, nodes };
    const out = path.join(dir, 'target', 'docs');
    await writeSite(out, data);
    expect(readdirSync(path.join(out, 'data', 'nodes')).sort()).toEqual(['0.js', '1.js', '2.js']);
    const received: Record<string, unknown> = {};
    const context = vm.createContext({ etlDocs: (k: string, v: unknown) => (received[k] = v) });
    for (const f of ['data/index.js', 'data/search.js', 'data/nodes/0.js', 'data/nodes/1.js', 'data/nodes/2.js']) vm.runInContext(readFileSync(path.join(out, f), 'utf8'), context);
    expect((received.index as { ids: string[] }).ids).toEqual(data.index.ids);
    expect(received.search).toEqual(data.search);
    const shards = [received.s0, received.s1, received.s2] as Array<Array<{ name: string }>>;
    expect(shards.map((s) => s.length)).toEqual([SHARD_SIZE, SHARD_SIZE, 70 - 2 * SHARD_SIZE]);
    // Node i is entry i % SHARD_SIZE of file floor(i / SHARD_SIZE).
    for (const i of [0, 31, 32, 69]) expect(shards[Math.floor(i / SHARD_SIZE)]![i % SHARD_SIZE]!.name).toBe(`n${i}`);
    const html = readFileSync(path.join(out, 'index.html'), 'utf8');
    expect(html).toContain('<title>shop · etl docs</title>');
    expect(html).not.toMatch(/https?:\/\//);
    expect(existsSync(path.join(out, 'assets', 'app.js'))).toBe(true);
    // A second generation replaces the first entirely; nothing is left beside it.
    await writeSite(out, { ...data, nodes: data.nodes.slice(0, 2) });
    expect(readdirSync(path.join(out, 'data', 'nodes')).sort()).toEqual(['0.js']);
    expect(readdirSync(path.dirname(out)).filter((e) => e.startsWith('docs'))).toEqual(['docs']);
  });
});

describe('site search', () => {
  it('finds names with a typo, columns and description words', async () => {
    const { Site } = await import('../core/docs/site/data.js');
    const { searchSite } = await import('../core/docs/site/search.js');
    const { index, search } = splitDocs({ manifest });
    const site = new Site(index);
    const labels = (q: string, kind?: string) => searchSite(site, search, q).filter((r) => !kind || r.kind === kind).map((r) => r.label);
    expect(labels('ordrs', 'model')).toContain('orders');
    expect(labels('stg_paymnts', 'model')[0]).toBe('stg_payments');
    expect(labels('lifetime_value', 'column')).toEqual(['customers.lifetime_value']);
    expect(labels('iso 3166', 'description')).toEqual(expect.arrayContaining(['stg_customers.country', 'customers.country']));
    expect(labels('marts', 'tag')).toEqual(['marts']);
    // Without the search index (before it has arrived): names and tags only.
    expect(searchSite(site, undefined, 'lifetime_value')).toEqual([]);
    expect(searchSite(site, search, '   ')).toEqual([]);
  });
});

describe('generateDocs on a built project', () => {
  it('shows the rows and quarantined rows run_results.json keeps in adapter_response', async () => {
    const built = mkdtempSync(path.join(os.tmpdir(), 'etl-docs-built-'));
    try {
      cpSync(path.join(ROOT, 'project-template'), built, { recursive: true });
      const { build } = await import('../core/api.js');
      const { generateDocs } = await import('../core/docs/generate.js');
      const summary = await build({ projectDir: built });
      expect(summary.results.every((r) => r.status === 'success' || r.status === 'pass')).toBe(true);
      const ordersResult = summary.results.find((r) => r.unique_id === 'model.shop.orders')!;
      expect(ordersResult.rows_affected).toBeGreaterThan(0);
      // The file on disk holds dbt's shape: no top-level rows_affected.
      const file = JSON.parse(readFileSync(path.join(built, 'target', 'run_results.json'), 'utf8')) as { results: Array<Record<string, unknown>> };
      expect(file.results.find((r) => r.unique_id === 'model.shop.orders')).not.toHaveProperty('rows_affected');

      const { dir: site } = await generateDocs({ projectDir: built, history: false });
      const loaded: Array<{ id: string; run?: { rows: number | null } }> = [];
      const context = vm.createContext({ etlDocs: (_key: string, value: unknown) => { if (Array.isArray(value)) loaded.push(...(value as typeof loaded)); } });
      for (const f of readdirSync(path.join(site, 'data', 'nodes'))) vm.runInContext(readFileSync(path.join(site, 'data', 'nodes', f), 'utf8'), context);
      expect(loaded.find((n) => n.id === 'model.shop.orders')?.run?.rows).toBe(ordersResult.rows_affected);
    } finally {
      rmSync(built, { recursive: true, force: true });
    }
  });

  it('reads back what dbtRunResult moved into adapter_response', async () => {
    const { dbtRunResult, nodeResultFromJson } = await import('../core/artifacts/run-results.js');
    const original = { ...result('model.shop.orders', 'success'), rows_affected: 12, quarantined: 3, compiled_path: 'target/compiled/x.sql', failing_rows_sample: { columns: ['a'], rows: [[1]] } };
    const back = nodeResultFromJson(JSON.parse(JSON.stringify(dbtRunResult(original as never, manifest))) as Record<string, unknown>);
    expect(back).toMatchObject({ rows_affected: 12, quarantined: 3, compiled_path: 'target/compiled/x.sql', failing_rows_sample: { columns: ['a'], rows: [[1]] } });
  });
});

describe('lineage graph of a hub', () => {
  it('takes FANOUT parents and children per node, the rest counted for a +N more node; an expanded node takes them all up to the cap', async () => {
    const { Site } = await import('../core/docs/site/data.js');
    const { neighbourhood, FANOUT } = await import('../core/docs/site/graph.js');
    // Node 0 reads nodes 1..30; node 31 reads node 0; nodes 32..71 read node 31.
    const n = 72;
    const parents: number[][] = Array.from({ length: n }, () => []);
    for (let i = 1; i <= 30; i++) parents[0]!.push(i);
    parents[31] = [0];
    for (let i = 32; i < n; i++) parents[i] = [31];
    const site = new Site({ ids: Array.from({ length: n }, (_, i) => `model.p.m${i}`), names: Array.from({ length: n }, (_, i) => `m${i}`), parents } as never);
    const one = neighbourhood(site, 0, 1, 2);
    expect(one.nodes).toHaveLength(1 + FANOUT + 1 + FANOUT);
    expect(one.truncated).toBe(false);
    expect(one.hidden).toEqual([{ node: 0, dir: 'up', count: 30 - FANOUT }, { node: 31, dir: 'down', count: 40 - FANOUT }]);
    // Two levels up reach nothing more (the parents have no parents): no +N more for them.
    expect(neighbourhood(site, 0, 2, 0).hidden).toEqual([{ node: 0, dir: 'up', count: 30 - FANOUT }]);
    const expanded = neighbourhood(site, 0, 1, 2, 100, new Set([0, 31]));
    expect(expanded.nodes).toHaveLength(72);
    expect(expanded.hidden).toEqual([]);
    // The cap still holds: the nearest first, the rest counted.
    const capped = neighbourhood(site, 0, 1, 2, 50, new Set([0, 31]));
    expect(capped.nodes).toHaveLength(50);
    expect(capped.truncated).toBe(true);
    expect(capped.hidden).toEqual([{ node: 31, dir: 'down', count: 72 - 50 }]);
  });
});
