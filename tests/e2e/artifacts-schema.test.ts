// The artifacts in target/ are valid against dbt's published JSON schemas
// (tests/fixtures/dbt-schemas), so tools written for dbt's artifacts read
// them: the "everything" project (every kind of node, a failing build) and
// project-template, validated with ajv's draft 2020-12 validator.

import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyTemplate, killAll, makeTempDir, readJson, REPO_ROOT, removeTempDirs, runCli } from './helpers.js';

const SCHEMAS = path.join(REPO_ROOT, 'tests/fixtures/dbt-schemas');
const EVERYTHING = path.join(REPO_ROOT, 'tests/fixtures/everything');

type Artifact = 'manifest' | 'run-results' | 'sources' | 'catalog';
const validators = new Map<Artifact, ValidateFunction>();
function validator(name: Artifact): ValidateFunction {
  let v = validators.get(name);
  if (!v) {
    // The schemas use formats (uuid, date-time) that ajv only checks with ajv-formats: left unchecked, as strict: false allows.
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    v = ajv.compile(JSON.parse(readFileSync(path.join(SCHEMAS, `${name}.json`), 'utf8')) as object);
    validators.set(name, v);
  }
  return v;
}

/**
 * The first errors by path. A node matches one branch of an anyOf (Model,
 * Seed, ...): errors of the other branches are noise, so for each instance
 * path only errors under the branch its resource_type names are kept when
 * there are any.
 */
function describeErrors(errors: ErrorObject[] | null | undefined, data: unknown): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    if (e.keyword === 'anyOf') continue;
    const at = e.instancePath || '/';
    const node = nodeAt(data, e.instancePath);
    const title = node?.resource_type ? branchTitle(node.resource_type as string, node) : undefined;
    if (title && /\/anyOf\/\d+\//.test(e.schemaPath) && !schemaBranchMatches(e.schemaPath, title)) continue;
    const extra = e.keyword === 'additionalProperties' ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : e.keyword === 'const' || e.keyword === 'enum' ? ` (${JSON.stringify(e.params)})` : '';
    out.push(`${at}: ${e.message}${extra}`);
  }
  return [...new Set(out)].slice(0, 25);
}

const titles: Record<string, string> = { model: 'Model', seed: 'Seed', snapshot: 'Snapshot', source: 'SourceDefinition', macro: 'Macro', unit_test: 'UnitTestDefinition' };
function branchTitle(resourceType: string, node: Record<string, unknown>): string | undefined {
  if (resourceType === 'test') return node.test_metadata ? 'GenericTest' : 'SingularTest';
  return titles[resourceType];
}
// Which anyOf branch a schema path is in is not in the path's text; the
// validator's errors carry the branch index only. Errors are kept when the
// parent schema of the failing keyword has the wanted title.
let manifestSchema: any;
function schemaBranchMatches(schemaPath: string, title: string): boolean {
  manifestSchema ??= JSON.parse(readFileSync(path.join(SCHEMAS, 'manifest.json'), 'utf8'));
  let s: any = manifestSchema;
  for (const part of schemaPath.replace(/^#\//, '').split('/')) {
    s = s?.[decodeURIComponent(part.replace(/~1/g, '/').replace(/~0/g, '~'))];
    if (s && typeof s === 'object' && 'title' in s && ['Model', 'Seed', 'Snapshot', 'GenericTest', 'SingularTest', 'Analysis', 'HookNode', 'SqlOperation', 'Function'].includes(s.title)) return s.title === title;
  }
  return true;
}

function nodeAt(data: unknown, instancePath: string): Record<string, unknown> | undefined {
  // /nodes/<id>/... or /disabled/<id>/<i>/...: the node is the object holding resource_type.
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let cur: any = data;
  let found: Record<string, unknown> | undefined;
  for (const p of parts) {
    cur = cur?.[p];
    if (cur && typeof cur === 'object' && typeof cur.resource_type === 'string') found = cur;
  }
  return found;
}

function expectValid(name: Artifact, data: unknown): void {
  const validate = validator(name);
  const ok = validate(data);
  expect(ok ? [] : describeErrors(validate.errors, data), `${name}.json errors (first 25 by path)`).toEqual([]);
}

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

describe('the everything project: every kind of node, a failing build', () => {
  let dir: string;
  const artifacts: Partial<Record<Artifact, any>> = {};

  beforeAll(async () => {
    dir = path.join(makeTempDir(), 'everything');
    cpSync(EVERYTHING, dir, { recursive: true });
    expect((await runCli(['seed'], { cwd: dir })).code).toBe(0);
    // A model that errors in the engine on purpose: the static check would stop the build before it.
    const build = await runCli(['build', '--no-check'], { cwd: dir });
    expect(build.code, build.output).toBe(1);
    artifacts.manifest = readJson(dir, 'target/manifest.json');
    artifacts['run-results'] = readJson(dir, 'target/run_results.json');
    const freshness = await runCli(['source', 'freshness'], { cwd: dir });
    expect(freshness.code, freshness.output).toBe(1);
    artifacts.sources = readJson(dir, 'target/sources.json');
    const docs = await runCli(['docs', 'generate'], { cwd: dir });
    expect(docs.code, docs.output).toBe(0);
    artifacts.catalog = readJson(dir, 'target/catalog.json');
  });

  it('built what it was meant to: every status appears', () => {
    const statuses = new Set((artifacts['run-results'].results as Array<{ status: string }>).map((r) => r.status));
    expect([...statuses].sort()).toEqual(['error', 'fail', 'pass', 'skipped', 'success', 'warn']);
    expect(new Set((artifacts.sources.results as Array<{ status: string }>).map((r) => r.status))).toEqual(new Set(['pass', 'error']));
  });

  for (const name of ['manifest', 'run-results', 'sources', 'catalog'] as const) {
    it(`${name}.json is valid against dbt's schema`, () => expectValid(name, artifacts[name]));
  }

  it('catalog.json has every built relation and source with the engine\'s columns, types and positions', () => {
    const { nodes, sources } = artifacts.catalog;
    // Built: seeds, views, the table, the incremental model, the snapshot. Not: the ephemeral model, the failed one, its skipped child, the disabled one.
    expect(Object.keys(nodes).sort()).toEqual(
      ['model.everything.customer_totals', 'model.everything.fresh_orders', 'model.everything.orders', 'model.everything.stg_customers', 'model.everything.stg_orders', 'seed.everything.raw_customers', 'seed.everything.raw_orders', 'snapshot.everything.orders_history'],
    );
    expect(Object.keys(sources).sort()).toEqual(['source.everything.shop_raw.fresh', 'source.everything.shop_raw.raw_orders', 'source.everything.shop_raw.unchecked']);
    expect(nodes['model.everything.orders'].metadata).toMatchObject({ type: 'BASE TABLE', schema: 'main', name: 'orders', database: 'dev' });
    expect(nodes['model.everything.stg_orders'].metadata.type).toBe('VIEW');
    expect(Object.values(nodes['model.everything.orders'].columns)).toEqual([
      { type: 'BIGINT', index: 1, name: 'order_id', comment: null },
      { type: 'BIGINT', index: 2, name: 'customer_id', comment: null },
      { type: 'VARCHAR', index: 3, name: 'status', comment: null },
      { type: 'DECIMAL(16,2)', index: 4, name: 'amount', comment: null },
    ]);
    expect(sources['source.everything.shop_raw.fresh'].metadata).toMatchObject({ name: 'fresh_orders', type: 'VIEW' });
  });

  it('the manifest names relations as a user types them, and has the data_type of every column the yml declares', () => {
    const { nodes, sources } = artifacts.manifest;
    expect(nodes['model.everything.orders']).toMatchObject({ database: 'dev', relation_name: '"dev"."main"."orders"' });
    expect(sources['source.everything.shop_raw.raw_orders']).toMatchObject({ database: 'dev', relation_name: '"dev"."main"."raw_orders"' });
    expect(artifacts['run-results'].results.find((r: { unique_id: string }) => r.unique_id === 'model.everything.orders').relation_name).toBe('"dev"."main"."orders"');
    expect(nodes['model.everything.orders'].columns.amount.data_type).toBe('decimal(16,2)');
    expect(nodes['model.everything.stg_orders'].columns.order_id.data_type).toBe('integer');
    expect(sources['source.everything.shop_raw.raw_orders'].columns.order_id.data_type).toBe('integer');
  });
});

describe('project-template', () => {
  it('manifest.json and run_results.json are valid against dbt\'s schemas, share one invocation_id, and are read back', async () => {
    const dir = copyTemplate();
    const build = await runCli(['build'], { cwd: dir });
    expect(build.code, build.output).toBe(0);
    const manifest = readJson(dir, 'target/manifest.json');
    expectValid('manifest', manifest);
    expectValid('run-results', readJson(dir, 'target/run_results.json'));
    expect(readJson(dir, 'target/run_results.json').metadata.invocation_id).toBe(manifest.metadata.invocation_id);
    expect(manifest.metadata).toMatchObject({ dbt_version: expect.stringMatching(/^1\.\d+\.\d+$/), env: { etl_version: expect.any(String) } });

    // A warm run (the compile cache) gives manifest.json this invocation's id, in place, and stays valid.
    const again = await runCli(['run', '-s', 'stg_orders'], { cwd: dir });
    expect(again.code, again.output).toBe(0);
    const warm = readJson(dir, 'target/manifest.json');
    expect(warm.metadata.invocation_id).not.toBe(manifest.metadata.invocation_id);
    expect(readJson(dir, 'target/run_results.json').metadata.invocation_id).toBe(warm.metadata.invocation_id);
    expect({ ...warm, metadata: {} }).toEqual({ ...manifest, metadata: {} });
    expectValid('manifest', warm);
    const cached = await runCli(['ls', '-s', 'orders', '--resource-type', 'model'], { cwd: dir });
    expect(cached.stdout.trim()).toBe('shop.marts.orders');

    // state:modified against a copy of this target, and result: against the last run.
    cpSync(path.join(dir, 'target'), path.join(dir, 'prod-state'), { recursive: true });
    const file = path.join(dir, 'models/marts/customers.sql');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- changed\n`);
    const modified = await runCli(['ls', '-s', 'state:modified', '--state', 'prod-state', '--resource-type', 'model'], { cwd: dir });
    expect(modified.code, modified.output).toBe(0);
    expect(modified.stdout.trim()).toBe('shop.marts.customers');
    const lastRun = await runCli(['ls', '-s', 'result:success', '--resource-type', 'model'], { cwd: dir });
    expect(lastRun.stdout.trim()).toBe('shop.staging.stg_orders');
  });
});
