import { describe, it, expect, afterEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { loadProject, mergeConfig, scanProject, type LoadOptions, type Project } from '../core/project/load.js';
import { checksumOf, filesUnder, readStamps, STAMPS_FILE, type FileStamp } from '../core/project/files.js';
import { redact } from '../core/project/secrets.js';
import { ProjectError, type Diagnostic } from '../core/errors.js';

const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Writes a project into a fresh temp dir; keys are paths relative to the root. */
function writeProject(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-project-test-'));
  dirs.push(root);
  for (const [rel, text] of Object.entries(files)) {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, text);
  }
  return root;
}

const BASIC_ETL_YML = `name: shop
version: 1
vars:
  start_date: "2024-01-01"
target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, schema: main, threads: 4 }
  prod: { type: duckdb, path: target/prod.duckdb, schema: analytics }
`;

/** Loads a project that must fail; returns its diagnostics. */
function loadErrors(root: string, options: LoadOptions = {}): Diagnostic[] {
  try {
    loadProject(root, { env: {}, ...options });
  } catch (err) {
    expect(err).toBeInstanceOf(ProjectError);
    return (err as ProjectError).diagnostics;
  }
  throw new Error('expected loadProject to throw a ProjectError');
}

function load(root: string, options: LoadOptions = {}): Project {
  return loadProject(root, { env: {}, ...options });
}

describe('loadProject: a valid project', () => {
  it('reads etl.yml, models, seeds, macros, properties and sources', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'models/staging/stg_orders.sql': 'select * from {{source "raw" "orders"}}\n',
      'models/marts/orders.sql': 'select * from {{ref "stg_orders"}}\n',
      'models/marts/schema.yml': `models:
  - name: orders
    description: One row per order.
    columns:
      - name: order_id
        tests: [unique, not_null]
sources:
  - name: raw
    schema: raw
    tables: [{ name: orders }, { name: customers }]
`,
      'seeds/raw_customers.csv': 'id,name\n1,a\n',
      'macros/cents.hbs': '({{col}} / 100)',
      'macros/helpers.mjs': 'export const x = () => 1;\n',
      'tests/assert_positive.sql': 'select 1 where false',
      'snapshots/snap.sql': 'select 1',
    });
    const project = load(root);
    expect(project.name).toBe('shop');
    expect(project.root).toBe(path.resolve(root));
    expect(project.targetName).toBe('dev');
    expect(project.target).toEqual({ type: 'duckdb', path: 'target/dev.duckdb', schema: 'main', threads: 4, name: 'dev' });
    expect(project.vars).toEqual({ start_date: '2024-01-01' });
    expect(project.targetPath).toBe(path.join(path.resolve(root), 'target'));
    expect(project.models.map((m) => [m.name, m.path])).toEqual([
      ['orders', 'models/marts/orders.sql'],
      ['stg_orders', 'models/staging/stg_orders.sql'],
    ]);
    expect(project.models[0]!.text).toBe('select * from {{ref "stg_orders"}}\n');
    expect(project.models[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(project.seeds.map((s) => [s.name, s.path, s.kind])).toEqual([['raw_customers', 'seeds/raw_customers.csv', 'seed']]);
    expect(project.snapshots.map((s) => s.name)).toEqual(['snap']);
    expect(project.singularTests.map((s) => s.path)).toEqual(['tests/assert_positive.sql']);
    expect(project.partials).toEqual([{ name: 'cents', path: 'macros/cents.hbs', text: '({{col}} / 100)' }]);
    expect(project.helperModules.map((h) => h.path)).toEqual(['macros/helpers.mjs']);
    const orders = project.properties.model.get('orders')!;
    expect(orders.description).toBe('One row per order.');
    expect(orders.columns![0]!.tests).toEqual(['unique', 'not_null']);
    expect(orders.declaredIn).toEqual({ file: 'models/marts/schema.yml', line: 2, col: 5 });
    expect(project.sources).toHaveLength(1);
    expect(project.sources[0]!.name).toBe('raw');
    expect(project.sources[0]!.tables.map((t) => t.name)).toEqual(['orders', 'customers']);
    expect(project.sources[0]!.declaredIn.file).toBe('models/marts/schema.yml');
  });

  it('--target and --vars override etl.yml, and target defaults are filled', () => {
    const root = writeProject({ 'etl.yml': BASIC_ETL_YML });
    const project = load(root, { target: 'prod', vars: { start_date: '2025-01-01', extra: 1 } });
    expect(project.targetName).toBe('prod');
    expect(project.target.schema).toBe('analytics');
    expect(project.target.threads).toBe(4);
    expect(project.vars).toEqual({ start_date: '2025-01-01', extra: 1 });
  });

  it('the fingerprint changes when a model changes', () => {
    const root = writeProject({ 'etl.yml': BASIC_ETL_YML, 'models/a.sql': 'select 1' });
    const before = load(root).fingerprint;
    expect(load(root).fingerprint).toBe(before);
    fs.writeFileSync(path.join(root, 'models/a.sql'), 'select 2');
    expect(load(root).fingerprint).not.toBe(before);
  });

  it('a missing etl.yml is a ProjectError with a hint', () => {
    const root = writeProject({ 'models/a.sql': 'select 1' });
    const [d] = loadErrors(root);
    expect(d!.message).toMatch(/no etl\.yml/);
    expect(d!.hint).toMatch(/etl init/);
  });
});

describe('loadProject: folder-level config', () => {
  const files = (modelsSection: string) => ({
    'etl.yml': `${BASIC_ETL_YML}${modelsSection}`,
    'models/top.sql': 'select 1',
    'models/staging/stg.sql': 'select 1',
    'models/staging/deep/deeper.sql': 'select 1',
    'models/marts/mart.sql': 'select 1',
  });

  it('deepest folder wins', () => {
    const root = writeProject(
      files(`models:
  materialized: view
  schema: base
  staging:
    materialized: table
    deep:
      materialized: incremental
  marts:
    materialized: ephemeral
`),
    );
    const p = load(root);
    expect(p.folderConfig('model', 'models/top.sql')).toEqual({ materialized: 'view', schema: 'base' });
    expect(p.folderConfig('model', 'models/staging/stg.sql')).toEqual({ materialized: 'table', schema: 'base' });
    expect(p.folderConfig('model', 'models/staging/deep/deeper.sql')).toEqual({ materialized: 'incremental', schema: 'base' });
    expect(p.folderConfig('model', 'models/marts/mart.sql')).toEqual({ materialized: 'ephemeral', schema: 'base' });
  });

  it('accepts dbt-style +key and the project name as a first level', () => {
    const root = writeProject(
      files(`models:
  shop:
    +materialized: view
    staging:
      +materialized: table
      +tags: [staging]
      deep:
        +enabled: false
`),
    );
    const p = load(root);
    expect(p.folderConfig('model', 'models/top.sql')).toEqual({ materialized: 'view' });
    expect(p.folderConfig('model', 'models/staging/stg.sql')).toEqual({ materialized: 'table', tags: ['staging'] });
    expect(p.folderConfig('model', 'models/staging/deep/deeper.sql')).toEqual({
      materialized: 'table',
      tags: ['staging'],
      enabled: false,
    });
  });

  it('the project-name level is more specific than the section top level', () => {
    const root = writeProject(
      files(`models:
  +materialized: view
  +tags: [a]
  shop:
    +materialized: table
    +tags: [b]
    staging:
      +schema: stg
`),
    );
    const p = load(root);
    expect(p.folderConfig('model', 'models/top.sql')).toEqual({ materialized: 'table', tags: ['a', 'b'] });
    expect(p.folderConfig('model', 'models/staging/stg.sql')).toEqual({ materialized: 'table', tags: ['a', 'b'], schema: 'stg' });
  });

  it('tags add up across levels instead of replacing each other', () => {
    const root = writeProject(
      files(`models:
  tags: [all]
  staging:
    tags: [staging, all]
    deep:
      +tags: deep
`),
    );
    const p = load(root);
    expect(p.folderConfig('model', 'models/top.sql').tags).toEqual(['all']);
    expect(p.folderConfig('model', 'models/staging/stg.sql').tags).toEqual(['all', 'staging']);
    expect(p.folderConfig('model', 'models/staging/deep/deeper.sql').tags).toEqual(['all', 'staging', 'deep']);
  });

  it('seeds: folder config applies to seeds', () => {
    const root = writeProject({
      'etl.yml': `${BASIC_ETL_YML}seeds:
  +schema: raw
  lookups:
    +quote_columns: true
`,
      'seeds/lookups/countries.csv': 'code\nfr\n',
      'seeds/other.csv': 'a\n1\n',
    });
    const p = load(root);
    expect(p.folderConfig('seed', 'seeds/other.csv')).toEqual({ schema: 'raw' });
    expect(p.folderConfig('seed', 'seeds/lookups/countries.csv')).toEqual({ schema: 'raw', quote_columns: true });
  });

  it('an unknown folder key is an error with a did-you-mean to the folder, at its line', () => {
    const root = writeProject(
      files(`models:
  stagin:
    materialized: table
`),
    );
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'etl.yml', line: 10, col: 3 });
    expect(diags[0]!.message).toMatch(/unknown key "stagin"/);
    expect(diags[0]!.hint).toBe('did you mean "staging"?');
  });

  it('an invalid folder config value is an error at its line', () => {
    const root = writeProject(
      files(`models:
  staging:
    materialized: tabel
`),
    );
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'etl.yml', line: 11 });
    expect(diags[0]!.message).toMatch(/materialized/);
  });
});

describe('mergeConfig', () => {
  it('later wins for scalars; tags are a union in order', () => {
    expect(mergeConfig({ materialized: 'view', schema: 'a' }, { materialized: 'table' })).toEqual({ materialized: 'table', schema: 'a' });
    expect(mergeConfig({ tags: ['a', 'b'] }, { tags: ['b', 'c'] })).toEqual({ tags: ['a', 'b', 'c'] });
    expect(mergeConfig({ tags: 'a' }, { tags: 'b' })).toEqual({ tags: ['a', 'b'] });
    expect(mergeConfig({ tags: ['a'] }, {})).toEqual({ tags: ['a'] });
    expect(mergeConfig({}, { tags: 'x' })).toEqual({ tags: 'x' });
  });
});

describe('loadProject: YAML errors', () => {
  it('invalid YAML syntax in etl.yml names the file, line and column', () => {
    const root = writeProject({
      'etl.yml': `name: shop
targets:
  dev: { type: duckdb, path: x
models:
  materialized: view
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]!.file).toBe('etl.yml');
    expect(diags[0]!.message).toMatch(/^invalid YAML/);
    // The flow mapping opened on line 3 is never closed; the parser notices on line 4.
    expect(diags[0]!.line).toBeGreaterThanOrEqual(3);
    expect(diags[0]!.line).toBeLessThanOrEqual(4);
    expect(diags[0]!.col).toBeGreaterThanOrEqual(1);
  });

  it('bad indentation in etl.yml gives the exact line:col', () => {
    const root = writeProject({
      'etl.yml': `name: shop
targets:
  dev:
    type: duckdb
   path: x
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    // The yaml parser reports a misaligned mapping item at the start of its line.
    expect(diags[0]).toMatchObject({ file: 'etl.yml', line: 5, col: 1 });
    expect(diags[0]!.message).toMatch(/^invalid YAML: All mapping items must start at the same column/);
    expect(diags[0]!.message).not.toMatch(/at line/);
  });

  it('a duplicated key in etl.yml is an error at the duplicate naming the key and both lines', () => {
    const root = writeProject({
      'etl.yml': `name: shop
name: other
targets:
  dev: { type: duckdb }
`,
    });
    const diags = loadErrors(root);
    expect(diags[0]).toMatchObject({ file: 'etl.yml', line: 2, col: 1 });
    expect(diags[0]!.message).toBe('duplicate key "name": set on line 1 and again on line 2');
  });

  it('invalid YAML syntax in models/*.yml names that file and its line:col, and other files are still checked', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'models/a.sql': 'select 1',
      'models/a.yml': `models:
  - name: a
    description: x: y
`,
      'models/b.yml': `models:
  - name: a2
    descripton: x
`,
    });
    const diags = loadErrors(root);
    expect(diags.map((d) => d.file)).toEqual(['models/a.yml', 'models/b.yml']);
    expect(diags[0]!.message).toMatch(/^invalid YAML/);
    expect(diags[0]!.line).toBe(3);
    expect(diags[0]!.col).toBe(18);
  });

  it('an unknown top-level key in etl.yml suggests the right one', () => {
    const root = writeProject({
      'etl.yml': `${BASIC_ETL_YML}modles:
  materialized: table
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'etl.yml', line: 9, col: 1 });
    expect(diags[0]!.message).toMatch(/unknown key "modles"/);
    expect(diags[0]!.hint).toBe('did you mean "models"?');
  });

  it('a missing required key in etl.yml is reported', () => {
    const root = writeProject({ 'etl.yml': 'name: shop\n' });
    const diags = loadErrors(root);
    expect(diags[0]!.message).toMatch(/missing required key "targets"/);
    expect(diags[0]!.file).toBe('etl.yml');
  });

  it('an unknown key inside a models yml entry gives the line and did-you-mean', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'models/orders.sql': 'select 1',
      'models/schema.yml': `version: 2
models:
  - name: orders
    descripton: One row per order.
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/schema.yml', line: 4, col: 5 });
    expect(diags[0]!.message).toMatch(/unknown key "descripton"/);
    expect(diags[0]!.message).toMatch(/models\[0\]/);
    expect(diags[0]!.hint).toBe('did you mean "description"?');
  });

  it('an unknown key in a column entry is located too', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'models/orders.sql': 'select 1',
      'models/schema.yml': `models:
  - name: orders
    columns:
      - name: id
        data_typ: integer
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/schema.yml', line: 5, col: 9 });
    expect(diags[0]!.hint).toBe('did you mean "data_type"?');
  });

  it('an invalid config value in a models yml entry is located at the value', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'models/orders.sql': 'select 1',
      'models/schema.yml': `models:
  - name: orders
    config:
      materialized: tabel
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/schema.yml', line: 4, col: 21 });
    expect(diags[0]!.hint).toMatch(/did you mean "table"/);
  });

  it('YAML anchors and << merge keys work in models yml, as in dbt projects', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'models/a.sql': 'select 1',
      'models/b.sql': 'select 1',
      'models/schema.yml': `models:
  - name: a
    config: &shared
      materialized: table
      tags: [x]
  - name: b
    config:
      <<: *shared
      materialized: view
`,
    });
    const p = load(root);
    expect(p.properties.model.get('a')!.config).toEqual({ materialized: 'table', tags: ['x'] });
    expect(p.properties.model.get('b')!.config).toEqual({ materialized: 'view', tags: ['x'] });
  });

  it('a model described twice names both places', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'models/orders.sql': 'select 1',
      'models/a.yml': `models:
  - name: orders
    description: first
`,
      'models/b.yml': `models:
  - name: other
  - name: orders
    description: second
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/b.yml', line: 3 });
    expect(diags[0]!.message).toMatch(/"orders" is described twice/);
    expect(diags[0]!.hint).toContain('models/a.yml:2');
  });
});

describe('loadProject: targets', () => {
  it('an unknown --target suggests the closest one', () => {
    const root = writeProject({ 'etl.yml': BASIC_ETL_YML });
    const diags = loadErrors(root, { target: 'prd' });
    expect(diags).toHaveLength(1);
    expect(diags[0]!.message).toBe('unknown target "prd"');
    expect(diags[0]!.hint).toBe('did you mean "prod"?');
    expect(diags[0]!.file).toBe('etl.yml');
  });

  it('an unknown default target in etl.yml points at the target: line', () => {
    const root = writeProject({
      'etl.yml': `name: shop
target: dve
targets:
  dev: { type: duckdb }
`,
    });
    const diags = loadErrors(root);
    expect(diags[0]).toMatchObject({ file: 'etl.yml', line: 2, message: 'unknown target "dve"', hint: 'did you mean "dev"?' });
  });

  it('without target: the first target is used', () => {
    const root = writeProject({ 'etl.yml': 'name: shop\ntargets:\n  one: { type: duckdb }\n  two: { type: duckdb }\n' });
    const p = load(root);
    expect(p.targetName).toBe('one');
    expect(p.target.schema).toBe('main');
  });

  it('an invalid target type is an error at the target', () => {
    const root = writeProject({ 'etl.yml': 'name: shop\ntargets:\n  dev: { type: duckdbb }\n' });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]!.file).toBe('etl.yml');
    expect(diags[0]!.line).toBe(3);
  });

  it('env_var in a target value is read from options.env', () => {
    const root = writeProject({
      'etl.yml': `name: shop
targets:
  dev: { type: duckdb, path: "{{env_var 'DB_PATH'}}", schema: "{{env_var 'SCHEMA' 'fallback'}}" }
`,
    });
    const p = load(root, { env: { DB_PATH: '/data/x.duckdb' } });
    expect(p.target).toMatchObject({ type: 'duckdb', path: '/data/x.duckdb' });
    expect(p.target.schema).toBe('fallback');
  });

  it('var in a target value is read from vars', () => {
    const root = writeProject({
      'etl.yml': `name: shop
vars: { db: a.duckdb }
targets:
  dev: { type: duckdb, path: "target/{{var 'db'}}" }
`,
    });
    expect(load(root).target).toMatchObject({ path: 'target/a.duckdb' });
    expect(load(root, { vars: { db: 'b.duckdb' } }).target).toMatchObject({ path: 'target/b.duckdb' });
  });

  it('a missing env var with no default is an error naming the variable and the setting', () => {
    const root = writeProject({
      'etl.yml': `name: shop
targets:
  dev:
    type: duckdb
    path: "{{env_var 'DB_PATH'}}"
`,
    });
    const diags = loadErrors(root, { env: {} });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'etl.yml', line: 5, col: 11 });
    expect(diags[0]!.message).toBe('environment variable DB_PATH is not set');
    expect(diags[0]!.hint).toContain("{{env_var 'DB_PATH' 'default'}}");
  });

  it('passwords and URL passwords are registered as secrets and redacted', () => {
    const root = writeProject({
      'etl.yml': `name: shop
target: pg
targets:
  pg:
    type: postgres
    url: "{{env_var 'PG_URL'}}"
    password: "{{env_var 'PGPASS'}}"
    user: "{{env_var 'PGUSER'}}"
`,
    });
    const p = load(root, {
      env: { PG_URL: 'postgres://bob:s3cr%40t@db.example.com:5432/shop', PGPASS: 'hunter22', PGUSER: 'bob' },
    });
    expect(p.target.type).toBe('postgres');
    expect((p.target as { url: string }).url).toBe('postgres://bob:s3cr%40t@db.example.com:5432/shop');
    expect(p.target.schema).toBe('public');
    expect(p.secrets.values.has('hunter22')).toBe(true);
    expect(p.secrets.values.has('s3cr%40t')).toBe(true);
    expect(p.secrets.values.has('s3cr@t')).toBe(true);
    // A user name is not a secret, and neither is the rest of the URL.
    expect(p.secrets.values.has('bob')).toBe(false);
    const log = 'connecting to postgres://bob:s3cr%40t@db.example.com:5432/shop with password hunter22 (decoded s3cr@t)';
    const out = redact(log, p.secrets);
    expect(out).toBe('connecting to postgres://bob:****@db.example.com:5432/shop with password **** (decoded ****)');
    expect(out).not.toContain('hunter22');
  });

  it('an ETL_ENV_SECRET_* variable in any target setting is a secret, whatever the setting', () => {
    const root = writeProject({
      'etl.yml': `name: shop
targets:
  pg: { type: postgres, host: "{{env_var 'ETL_ENV_SECRET_HOST'}}", user: "{{env_var 'PLAIN_USER'}}" }
`,
    });
    const p = load(root, { env: { ETL_ENV_SECRET_HOST: 'db-internal-7', PLAIN_USER: 'bob' } });
    expect((p.target as { host: string }).host).toBe('db-internal-7');
    expect([...p.secrets.values]).toEqual(['db-internal-7']);
    expect(redact('host db-internal-7 user bob', p.secrets)).toBe('host **** user bob');
  });

  it('a literal password in etl.yml is a secret too', () => {
    const root = writeProject({
      'etl.yml': `name: shop
targets:
  pg: { type: postgres, host: localhost, password: "topsecret" }
`,
    });
    const p = load(root);
    expect([...p.secrets.values]).toEqual(['topsecret']);
    expect(redact('pw=topsecret;', p.secrets)).toBe('pw=****;');
    expect(redact('nothing here', undefined)).toBe('nothing here');
  });
});

describe('secrets', () => {
  it('redact masks a longer secret whole even when a shorter one is inside it', () => {
    const secrets = { values: new Set(['pass', 'password123']) };
    expect(redact('pw=password123 and pass', secrets)).toBe('pw=**** and ****');
  });

  it('an env var whose value contains "{{" is not mistaken for an unsupported tag', () => {
    const root = writeProject({
      'etl.yml': `name: shop
targets:
  pg: { type: postgres, host: localhost, password: "{{env_var 'PGPASS'}}" }
`,
    });
    const p = load(root, { env: { PGPASS: 'a{{b}}c' } });
    expect((p.target as { password: string }).password).toBe('a{{b}}c');
    expect(p.secrets.values.has('a{{b}}c')).toBe(true);
  });

  it('any other {{helper}} in a target value is an error', () => {
    const root = writeProject({
      'etl.yml': `name: shop
targets:
  dev: { type: duckdb, path: "{{ref 'x'}}" }
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]!.message).toMatch(/only \{\{env_var/);
    expect(diags[0]).toMatchObject({ file: 'etl.yml', line: 3 });
  });
});

describe('loadProject: seeds yml', () => {
  it('reads column_types from a seeds entry config', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'seeds/raw_orders.csv': 'id,amount\n1,10\n',
      'seeds/seeds.yml': `seeds:
  - name: raw_orders
    config:
      column_types: { id: integer, amount: "decimal(10,2)" }
      delimiter: ","
`,
    });
    const p = load(root);
    const props = p.properties.seed.get('raw_orders')!;
    expect(props.config).toEqual({ column_types: { id: 'integer', amount: 'decimal(10,2)' }, delimiter: ',' });
    expect(props.declaredIn).toEqual({ file: 'seeds/seeds.yml', line: 2, col: 5 });
    expect(p.properties.model.size).toBe(0);
  });

  it('a non-string column type is an error at that value', () => {
    const root = writeProject({
      'etl.yml': BASIC_ETL_YML,
      'seeds/raw_orders.csv': 'id\n1\n',
      'seeds/seeds.yml': `seeds:
  - name: raw_orders
    config:
      column_types:
        id: 12
`,
    });
    const diags = loadErrors(root);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'seeds/seeds.yml', line: 5, col: 13 });
  });
});

describe('filesUnder', () => {
  it('lists files recursively, sorted, relative with forward slashes', () => {
    const root = writeProject({
      'a.sql': '',
      'a/x.sql': '',
      'a/b/c.sql': '',
      'b-c.sql': '',
      'b.sql': '',
      'b/y.sql': '',
      'z/deep/er/still.csv': '',
      'Z.sql': '',
    });
    // Sorted as strings ('.' < '/' puts a.sql before a/x.sql), whatever order readdir and the walk gave.
    expect(filesUnder(root)).toEqual(['Z.sql', 'a.sql', 'a/b/c.sql', 'a/x.sql', 'b-c.sql', 'b.sql', 'b/y.sql', 'z/deep/er/still.csv']);
    // Relative to the folder asked for.
    expect(filesUnder(path.join(root, 'a'))).toEqual(['b/c.sql', 'x.sql']);
  });

  it('leaves out hidden files and everything in hidden folders', () => {
    const root = writeProject({
      'kept.sql': '',
      '.hidden.sql': '',
      'sub/.DS_Store': '',
      'sub/kept.sql': '',
      '.git/config': '',
      '.cache/models/m.sql': '',
      'sub/.private/p.sql': '',
    });
    expect(filesUnder(root)).toEqual(['kept.sql', 'sub/kept.sql']);
  });

  it('includes symlinked files, does not follow symlinked folders, skips dangling links', () => {
    const outside = writeProject({ 'real.sql': 'select 1', 'folder/inner.sql': 'select 2' });
    const root = writeProject({ 'models/own.sql': '' });
    fs.symlinkSync(path.join(outside, 'real.sql'), path.join(root, 'models/linked.sql'));
    fs.symlinkSync(path.join(outside, 'folder'), path.join(root, 'models/linked_folder'));
    fs.symlinkSync(path.join(outside, 'nope.sql'), path.join(root, 'models/dangling.sql'));
    expect(filesUnder(root)).toEqual(['models/linked.sql', 'models/own.sql']);
  });

  it('a folder that does not exist holds no files', () => {
    const root = writeProject({ 'x.sql': '' });
    expect(filesUnder(path.join(root, 'no_such_folder'))).toEqual([]);
  });
});

describe('checksumOf', () => {
  const FAKE = 'f'.repeat(64);
  /** A file whose mtime is a whole second an hour ago, so mtimeMs is exact and far from now. */
  function seedFile(text = 'id,name\n1,ann\n'): { abs: string; mtimeMs: number; size: number } {
    const root = writeProject({ 'seeds/s.csv': text });
    const abs = path.join(root, 'seeds/s.csv');
    const mtimeSec = Math.floor(Date.now() / 1000) - 3600;
    fs.utimesSync(abs, mtimeSec, mtimeSec);
    const st = fs.statSync(abs);
    expect(st.mtimeMs).toBe(mtimeSec * 1000);
    return { abs, mtimeMs: st.mtimeMs, size: st.size };
  }

  it('without a stamp: hashes the content and records a stamp', () => {
    const text = 'id,name\n1,ann\n';
    const { abs, mtimeMs, size } = seedFile(text);
    const other: FileStamp = { size: 1, mtimeMs: 1, hashedAt: 2, checksum: 'other' };
    const stamps: Record<string, FileStamp> = { 'seeds/other.csv': other };
    const before = Date.now();
    const r = checksumOf(abs, 'seeds/s.csv', stamps);
    const after = Date.now();
    expect(r).toEqual({ checksum: sha256(text), changed: true });
    expect(stamps['seeds/s.csv']).toMatchObject({ size, mtimeMs, checksum: sha256(text) });
    expect(stamps['seeds/s.csv']!.hashedAt).toBeGreaterThanOrEqual(before);
    expect(stamps['seeds/s.csv']!.hashedAt).toBeLessThanOrEqual(after);
    expect(stamps['seeds/other.csv']).toBe(other);
  });

  it('trusts a stamp whose size and mtime match and that was hashed more than 50 ms after the mtime', () => {
    const { abs, mtimeMs, size } = seedFile();
    for (const hashedAt of [mtimeMs + 51, mtimeMs + 3_600_000]) {
      const stamp: FileStamp = { size, mtimeMs, hashedAt, checksum: FAKE };
      const stamps = { k: stamp };
      // The fake checksum comes back: the file was not read.
      expect(checksumOf(abs, 'k', stamps), `hashedAt = mtime + ${hashedAt - mtimeMs}`).toEqual({ checksum: FAKE, changed: false });
      expect(stamps).toEqual({ k: { size, mtimeMs, hashedAt, checksum: FAKE } });
    }
  });

  it('does not trust a racy stamp (hashed 50 ms or less after the mtime): rehashes and updates it', () => {
    const text = 'id,name\n1,ann\n';
    const { abs, mtimeMs, size } = seedFile(text);
    for (const hashedAt of [mtimeMs + 50, mtimeMs + 10, mtimeMs, mtimeMs - 1000]) {
      const stamps: Record<string, FileStamp> = { k: { size, mtimeMs, hashedAt, checksum: FAKE } };
      const before = Date.now();
      const r = checksumOf(abs, 'k', stamps);
      expect(r, `hashedAt = mtime + ${hashedAt - mtimeMs}`).toEqual({ checksum: sha256(text), changed: true });
      expect(stamps.k).toMatchObject({ size, mtimeMs, checksum: sha256(text) });
      expect(stamps.k!.hashedAt).toBeGreaterThanOrEqual(before);
      // Now well after the mtime: trusted next time.
      expect(checksumOf(abs, 'k', stamps)).toEqual({ checksum: sha256(text), changed: false });
    }
  });

  it('a different size or mtime forces a rehash', () => {
    const text = 'id,name\n1,bob\n';
    const { abs, mtimeMs, size } = seedFile(text);
    const hashedAt = mtimeMs + 3_600_000; // trustworthy, but for the mismatch
    const cases: Array<[string, FileStamp]> = [
      ['size + 1', { size: size + 1, mtimeMs, hashedAt, checksum: FAKE }],
      ['size - 1', { size: size - 1, mtimeMs, hashedAt, checksum: FAKE }],
      ['mtime - 1 s', { size, mtimeMs: mtimeMs - 1000, hashedAt, checksum: FAKE }],
      ['mtime + 1 ms', { size, mtimeMs: mtimeMs + 1, hashedAt, checksum: FAKE }],
    ];
    for (const [name, stamp] of cases) {
      const stamps = { k: stamp };
      expect(checksumOf(abs, 'k', stamps), name).toEqual({ checksum: sha256(text), changed: true });
      expect(stamps.k, name).toMatchObject({ size, mtimeMs, checksum: sha256(text) });
    }
  });

  it('sees an edit that keeps the size once the mtime moves', () => {
    const { abs, size } = seedFile('id,name\n1,ann\n');
    const stamps: Record<string, FileStamp> = {};
    expect(checksumOf(abs, 'k', stamps).checksum).toBe(sha256('id,name\n1,ann\n'));
    fs.writeFileSync(abs, 'id,name\n1,bob\n');
    const later = Math.floor(Date.now() / 1000) - 1800; // still in the past, but not the stamp's mtime
    fs.utimesSync(abs, later, later);
    expect(fs.statSync(abs).size).toBe(size);
    expect(checksumOf(abs, 'k', stamps)).toEqual({ checksum: sha256('id,name\n1,bob\n'), changed: true });
  });
});

describe('scanProject: seed checksum stamps', () => {
  it('hashes seeds the first time, reuses trustworthy stamps from target/.etl after', () => {
    const root = writeProject({ 'etl.yml': BASIC_ETL_YML, 'seeds/a.csv': 'id\n1\n', 'seeds/b.csv': 'id\n2\n' });
    const old = Math.floor(Date.now() / 1000) - 3600;
    for (const f of ['seeds/a.csv', 'seeds/b.csv']) fs.utimesSync(path.join(root, f), old, old);
    const first = scanProject(root, { env: {} });
    expect(first.files.seeds.map((s) => [s.path, s.checksum])).toEqual([
      ['seeds/a.csv', sha256('id\n1\n')],
      ['seeds/b.csv', sha256('id\n2\n')],
    ]);
    // New stamps, for the caller to save; scanning writes nothing.
    expect(Object.keys(first.fileStamps ?? {}).sort()).toEqual(['seeds/a.csv', 'seeds/b.csv']);
    expect(fs.existsSync(path.join(root, 'target'))).toBe(false);

    // Saved (as writeFileStamps does), with a fake checksum for b: the next scan believes it.
    const saved = { ...first.fileStamps!, 'seeds/b.csv': { ...first.fileStamps!['seeds/b.csv']!, checksum: 'fake' } };
    fs.mkdirSync(path.dirname(path.join(root, 'target', STAMPS_FILE)), { recursive: true });
    fs.writeFileSync(path.join(root, 'target', STAMPS_FILE), JSON.stringify(saved));
    expect(readStamps(path.join(root, 'target'))).toEqual(saved);
    const second = scanProject(root, { env: {} });
    expect(second.files.seeds.map((s) => s.checksum)).toEqual([sha256('id\n1\n'), 'fake']);
    expect(second.fileStamps).toBeUndefined();
    expect(second.fingerprint).not.toBe(first.fingerprint);
  });
});

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
