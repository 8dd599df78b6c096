import { describe, it, expect, afterEach, afterAll, beforeAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { loadProject } from '../core/project/load.js';
import { compileProject } from '../core/compiler/compile.js';
import type { Manifest, ManifestNode } from '../core/compiler/manifest.js';
import { ProjectError, type Diagnostic } from '../core/errors.js';

const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const ETL_YML = `name: shop
vars:
  start_date: "2024-01-01"
target: dev
targets:
  dev: { type: duckdb, path: target/dev.duckdb, schema: main, threads: 2 }
`;

const SOURCES_YML = `sources:
  - name: raw
    schema: raw
    tables:
      - name: orders
      - name: customers
        identifier: raw_customers
`;

function writeProject(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-compile-test-'));
  dirs.push(root);
  const all = { 'etl.yml': ETL_YML, ...files };
  for (const [rel, text] of Object.entries(all)) {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, text);
  }
  return root;
}

async function compile(files: Record<string, string>, env: NodeJS.ProcessEnv = {}, vars?: Record<string, unknown>): Promise<Manifest> {
  const root = writeProject(files);
  const project = loadProject(root, { env, vars });
  return (await compileProject(project, env)).manifest;
}

async function compileErrors(files: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<Diagnostic[]> {
  const root = writeProject(files);
  try {
    const project = loadProject(root, { env });
    await compileProject(project, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ProjectError);
    return (err as ProjectError).diagnostics;
  }
  throw new Error('expected compilation to fail with a ProjectError');
}

function model(m: Manifest, name: string): ManifestNode {
  const node = m.nodes[`model.shop.${name}`];
  if (!node) throw new Error(`no model ${name} in manifest; nodes: ${Object.keys(m.nodes).join(', ')}`);
  return node;
}

describe('compileProject: refs, sources, schema and alias', () => {
  it('refs resolve to quoted relations and record dependencies', async () => {
    const m = await compile({
      'models/schema.yml': SOURCES_YML,
      'models/staging/stg_orders.sql': 'select * from {{source "raw" "orders"}}',
      'models/staging/stg_customers.sql': 'select * from {{source "raw" "customers"}}',
      'models/marts/orders.sql': 'select * from {{ref "stg_orders"}} o\njoin {{ref "stg_customers"}} c using (customer_id)\njoin {{ref "countries"}} using (country)',
      'seeds/countries.csv': 'country,name\nfr,France\n',
    });
    const orders = model(m, 'orders');
    expect(orders.compiled_code).toBe(
      'select * from "main"."stg_orders" o\njoin "main"."stg_customers" c using (customer_id)\njoin "main"."countries" using (country)',
    );
    expect(orders.relation_name).toBe('"main"."orders"');
    expect(orders.schema).toBe('main');
    expect(orders.fqn).toEqual(['shop', 'marts', 'orders']);
    expect(orders.raw_code).toContain('{{ref "stg_orders"}}');
    expect(orders.depends_on.nodes.sort()).toEqual(['model.shop.stg_customers', 'model.shop.stg_orders', 'seed.shop.countries']);
    expect(orders.refs).toEqual([{ name: 'stg_orders' }, { name: 'stg_customers' }, { name: 'countries' }]);
    expect(model(m, 'stg_orders').compiled_code).toBe('select * from "raw"."orders"');
    expect(model(m, 'stg_customers').compiled_code).toBe('select * from "raw"."raw_customers"');
    expect(model(m, 'stg_orders').depends_on.nodes).toEqual(['source.shop.raw.orders']);
    expect(model(m, 'stg_orders').sources).toEqual([['raw', 'orders']]);
    expect(m.sources['source.shop.raw.customers']!.relation_name).toBe('"raw"."raw_customers"');
    expect(m.nodes['seed.shop.countries']!.config.materialized).toBe('seed');
  });

  it('a custom schema becomes <target schema>_<schema>, and alias renames the relation', async () => {
    const m = await compile({
      'models/a.sql': '{{config schema="finance" alias="a_v2"}}select 1 as x',
      'models/b.sql': 'select * from {{ref "a"}}',
      'models/c.sql': 'select 1',
      'models/c.yml': 'models:\n  - name: c\n    config: { schema: ops }\n',
    });
    const a = model(m, 'a');
    expect(a.schema).toBe('main_finance');
    expect(a.alias).toBe('a_v2');
    expect(a.relation_name).toBe('"main_finance"."a_v2"');
    expect(a.config.schema).toBe('finance');
    expect(model(m, 'b').compiled_code).toBe('select * from "main_finance"."a_v2"');
    expect(model(m, 'c').relation_name).toBe('"main_ops"."c"');
  });

  it('{{this}} renders the model relation', async () => {
    const m = await compile({ 'models/t.sql': '{{config alias="tt"}}select count(*) from {{this}}' });
    expect(model(m, 't').compiled_code).toBe('select count(*) from "main"."tt"');
  });

  it('parent_map and child_map list every edge, sources included', async () => {
    const m = await compile({
      'models/schema.yml': SOURCES_YML,
      'models/a.sql': 'select * from {{source "raw" "orders"}}',
      'models/b.sql': 'select * from {{ref "a"}}',
      'models/c.sql': 'select * from {{ref "a"}} join {{ref "b"}} using (id)',
    });
    expect(m.parent_map).toEqual({
      'model.shop.a': ['source.shop.raw.orders'],
      'model.shop.b': ['model.shop.a'],
      'model.shop.c': ['model.shop.a', 'model.shop.b'],
      'source.shop.raw.orders': [],
      'source.shop.raw.customers': [],
    });
    expect(m.child_map).toEqual({
      'model.shop.a': ['model.shop.b', 'model.shop.c'],
      'model.shop.b': ['model.shop.c'],
      'model.shop.c': [],
      'source.shop.raw.orders': ['model.shop.a'],
      'source.shop.raw.customers': [],
    });
  });
});

describe('compileProject: errors', () => {
  it('an unknown ref suggests the closest model, with file:line:col', async () => {
    const diags = await compileErrors({
      'models/orders.sql': 'select 1',
      'models/marts/report.sql': 'select *\nfrom {{ref "ordres"}}',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/marts/report.sql', line: 2, col: 8, message: 'unknown ref "ordres"', hint: 'did you mean "orders"?' });
  });

  it('an ETL_ENV_SECRET_* variable is refused in a model and in a config value, naming the file and never its value', async () => {
    const env = { ETL_ENV_SECRET_TOKEN: 'hunter22-value', PLAIN: 'ok' };
    // Config is read in a stage before rendering, so each case is its own project.
    const inModel = await compileErrors({ 'models/a.sql': 'select 1 as x,\n  \'{{env_var "ETL_ENV_SECRET_TOKEN"}}\' as t', 'models/c.sql': "select '{{env_var \"PLAIN\"}}' as p" }, env);
    const inConfig = await compileErrors({ 'models/b.sql': '{{config tags=(env_var "ETL_ENV_SECRET_TOKEN")}}\nselect 1' }, env);
    expect([...inModel, ...inConfig].map((d) => [d.file, d.line])).toEqual([
      ['models/a.sql', 2],
      ['models/b.sql', 1],
    ]);
    for (const d of [...inModel, ...inConfig]) {
      expect(d.message).toMatch(/ETL_ENV_SECRET_TOKEN holds a secret .* may only be used in a target setting in etl\.yml/);
      expect(`${d.message} ${d.hint}`).not.toContain('hunter22');
    }
  });

  it('an unknown source is an error naming the close table', async () => {
    const diags = await compileErrors({
      'models/schema.yml': SOURCES_YML,
      'models/a.sql': 'select * from {{source "raw" "ordrs"}}',
      'models/b.sql': '\n\nselect * from {{source "rwa" "orders"}}',
    });
    expect(diags).toHaveLength(2);
    expect(diags[0]).toMatchObject({ file: 'models/a.sql', line: 1, col: 17, message: 'unknown source "raw.ordrs"', hint: 'did you mean "orders"?' });
    expect(diags[1]).toMatchObject({ file: 'models/b.sql', line: 3, col: 17, message: 'unknown source "rwa.orders"', hint: 'did you mean "raw"?' });
  });

  it('an unknown helper is an error at its position', async () => {
    const diags = await compileErrors({
      'models/a.sql': 'select\n  {{cents_to_dolars "amount"}} as x',
      'models/b.sql': 'select {{refs}}',
    });
    expect(diags).toHaveLength(2);
    expect(diags[0]).toMatchObject({ file: 'models/a.sql', line: 2, col: 5, message: 'unknown helper "cents_to_dolars"' });
    expect(diags[1]).toMatchObject({ file: 'models/b.sql', line: 1, col: 10, message: 'unknown helper or variable "refs"', hint: 'did you mean "ref"?' });
  });

  it('an unknown partial is an error with a did-you-mean', async () => {
    const diags = await compileErrors({
      'macros/cents.hbs': '({{col}} / 100)',
      'models/a.sql': 'select\n{{> cent col="x"}}',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/a.sql', line: 2, col: 1, message: 'unknown partial "cent"', hint: 'did you mean "cents"?' });
  });

  it('two models with one name in different folders: an error naming both paths', async () => {
    const diags = await compileErrors({
      'models/staging/orders.sql': 'select 1',
      'models/marts/orders.sql': 'select 2',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]!.message).toContain('"orders"');
    expect(diags[0]!.message).toContain('models/marts/orders.sql');
    expect(diags[0]!.message).toContain('models/staging/orders.sql');
  });

  it('a model and a seed with one name are an error too', async () => {
    const diags = await compileErrors({ 'models/countries.sql': 'select 1', 'seeds/countries.csv': 'a\n1\n' });
    expect(diags).toHaveLength(1);
    expect(diags[0]!.message).toMatch(/seeds\/countries\.csv/);
    expect(diags[0]!.message).toMatch(/models\/countries\.sql/);
  });

  it('a cycle a -> b -> c -> a is one error listing the members in dependency order', async () => {
    const diags = await compileErrors({
      'models/a.sql': 'select * from {{ref "b"}}',
      'models/b.sql': 'select * from {{ref "c"}}',
      'models/c.sql': '-- closes the loop\nselect * from {{ref "a"}}',
      'models/d.sql': 'select * from {{ref "a"}}',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]!.message).toBe('dependency cycle: a -> b -> c -> a');
    expect(diags[0]).toMatchObject({ file: 'models/a.sql', line: 1, col: 17 });
    expect(diags[0]!.hint).toContain('models/b.sql');
    expect(diags[0]!.hint).toContain('models/c.sql');
  });

  it('a cycle found from another starting member is still in dependency order', async () => {
    const diags = await compileErrors({
      'models/a_first.sql': 'select * from {{ref "z_two"}}',
      'models/z_two.sql': 'select * from {{ref "m_three"}}',
      'models/m_three.sql': 'select * from {{ref "a_first"}}',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]!.message).toBe('dependency cycle: a_first -> z_two -> m_three -> a_first');
  });

  it('a cycle is reported together with other errors, not only once they are fixed', async () => {
    const diags = await compileErrors({
      'models/c1.sql': 'select * from {{ref "c2"}}',
      'models/c2.sql': 'select * from {{ref "c1"}}',
      'models/other.sql': 'select * from {{ref "nope"}}',
    });
    expect(diags.map((d) => d.message).sort()).toEqual(['dependency cycle: c1 -> c2 -> c1', 'unknown ref "nope"']);
  });

  it('an error inside a partial names the partial file', async () => {
    const diags = await compileErrors({
      'macros/sub/cols.hbs': 'id,\n  {{missing_thing}}\n',
      'models/a.sql': 'select\n{{> cols}}\nfrom t',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'macros/sub/cols.hbs', line: 2, col: 5, message: '"missing_thing" is not defined' });
  });

  it('an unknown helper inside a partial names the partial file', async () => {
    const diags = await compileErrors({
      'macros/p.hbs': '\n{{nope_helper "x"}}',
      'models/a.sql': 'select {{> p}}',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'macros/p.hbs', line: 2, col: 3, message: 'unknown helper "nope_helper"' });
  });

  it('a model that refs itself is an error suggesting {{this}}', async () => {
    const diags = await compileErrors({ 'models/a.sql': 'select * from {{ref "a"}}' });
    expect(diags).toHaveLength(1);
    expect(diags[0]!.message).toBe('a refs itself');
    expect(diags[0]!.hint).toContain('{{this}}');
  });

  it('several broken models are all reported in one ProjectError', async () => {
    const diags = await compileErrors({
      'models/schema.yml': SOURCES_YML,
      'models/ok.sql': 'select 1',
      'models/bad_ref.sql': 'select * from {{ref "okk"}}',
      'models/bad_source.sql': 'select * from {{source "raw" "nope"}}',
      'models/bad_helper.sql': 'select {{nope 1}}',
      'models/bad_syntax.sql': 'select {{#if x}}',
      'models/bad_config.sql': '{{config materialized="tabel"}}select 1',
      'models/bad_literal.sql': 'select * from {{ref name}}',
    });
    const byFile = Object.fromEntries(diags.map((d) => [d.file, d.message]));
    expect(Object.keys(byFile).sort()).toEqual([
      'models/bad_config.sql',
      'models/bad_helper.sql',
      'models/bad_literal.sql',
      'models/bad_ref.sql',
      'models/bad_source.sql',
      'models/bad_syntax.sql',
    ]);
    expect(diags).toHaveLength(6);
    expect(byFile['models/bad_ref.sql']).toBe('unknown ref "okk"');
    expect(byFile['models/bad_syntax.sql']).toMatch(/\{\{#if\}\} block is never closed/);
    // The thrown error's message carries every diagnostic, one per line group.
    const root = writeProject({ 'models/x.sql': '{{ref "y"}}', 'models/y2.sql': '{{ref "z"}}' });
    const err = await compileProject(loadProject(root, { env: {} }), {}).catch((e: unknown) => e as ProjectError);
    expect(err).toBeInstanceOf(ProjectError);
    expect((err as ProjectError).message).toContain('models/x.sql:1:3: unknown ref "y"');
    expect((err as ProjectError).message).toContain('models/y2.sql:1:3: unknown ref "z"');
  });

  it('a missing variable at render time is reported with file:line:col', async () => {
    const diags = await compileErrors({ 'models/a.sql': 'select 1\nwhere x = {{model.nope}}' });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/a.sql', line: 2, col: 13, message: '"model.nope" is not defined' });
  });

  it('a ref to a disabled model is an error', async () => {
    const diags = await compileErrors({
      'models/old.sql': 'select 1',
      'models/old.yml': 'models:\n  - name: old\n    config: { enabled: false }\n',
      'models/new.sql': 'select * from {{ref "old"}}',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/new.sql', line: 1, col: 17, message: 'ref "old": that model is disabled' });
    expect(diags[0]!.hint).toContain('models/old.sql');
  });

  it('a disabled model is left out of the nodes and kept under disabled', async () => {
    const m = await compile({ 'models/old.sql': '{{config enabled=false}}select 1', 'models/new.sql': 'select 2' });
    expect(Object.keys(m.nodes)).toEqual(['model.shop.new']);
    expect(m.disabled['model.shop.old']).toHaveLength(1);
  });
});

describe('compileProject: config', () => {
  const etlWithFolders = `${ETL_YML}models:
  materialized: view
  marts:
    +materialized: incremental
    +tags: [marts]
`;

  it('{{config}} overrides folder and yml config; tags add up', async () => {
    const m = await compile({
      'etl.yml': etlWithFolders,
      'models/marts/orders.sql': '{{config materialized="table" tags=(list "a" "b")}}\nselect 1',
      'models/marts/orders.yml': 'models:\n  - name: orders\n    config: { materialized: ephemeral, tags: [yml] }\n',
      'models/marts/plain.sql': 'select 1',
      'models/top.sql': 'select 1',
    });
    const orders = model(m, 'orders');
    expect(orders.config.materialized).toBe('table');
    expect(orders.config.tags).toEqual(['marts', 'yml', 'a', 'b']);
    expect(orders.tags).toEqual(['marts', 'yml', 'a', 'b']);
    expect(orders.compiled_code).toBe('\nselect 1');
    expect(model(m, 'plain').config.materialized).toBe('incremental');
    expect(model(m, 'plain').config.tags).toEqual(['marts']);
    expect(model(m, 'top').config.materialized).toBe('view');
    expect(model(m, 'top').config.tags).toEqual([]);
  });

  it('(var "m" "table") in config uses the default, or the project var', async () => {
    const files = { 'models/a.sql': '{{config materialized=(var "m" "table")}}select 1' };
    expect(model(await compile(files), 'a').config.materialized).toBe('table');
    expect(model(await compile(files, {}, { m: 'view' }), 'a').config.materialized).toBe('view');
  });

  it('an invalid config value is an error at the value', async () => {
    const diags = await compileErrors({ 'models/a.sql': 'select 1\n{{config materialized="tabel" unique_key="id"}}' });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/a.sql', line: 2 });
    expect(diags[0]!.message).toBe('invalid materialized "tabel" for model "a"');
    expect(diags[0]!.hint).toBe('did you mean "table"? (one of: view, table, incremental, ephemeral)');
  });

  it('an unknown config key suggests the right one', async () => {
    const diags = await compileErrors({ 'models/a.sql': '{{config materialised="table"}}select 1' });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/a.sql', line: 1, message: 'unknown config key "materialised"', hint: 'did you mean "materialized"?' });
  });

  it('a config value that cannot be known before rendering is an error', async () => {
    const diags = await compileErrors({ 'models/a.sql': '{{config materialized=some_name}}select 1' });
    expect(diags).toHaveLength(1);
    expect(diags[0]!.message).toMatch(/^config materialized: "some_name" cannot be used in config/);
  });
});

describe('compileProject: seeds and properties', () => {
  it('seed config from seeds/*.yml (column_types) and columns from models/*.yml reach the nodes', async () => {
    const m = await compile({
      'seeds/raw_orders.csv': 'id,amount\n1,10\n',
      'seeds/seeds.yml': 'seeds:\n  - name: raw_orders\n    config:\n      column_types: { id: integer, amount: "decimal(10,2)" }\n',
      'models/orders.sql': 'select * from {{ref "raw_orders"}}',
      'models/orders.yml': 'models:\n  - name: orders\n    description: One row per order.\n    columns:\n      - name: id\n        data_type: integer\n',
    });
    const seed = m.nodes['seed.shop.raw_orders']!;
    expect(seed.config.column_types).toEqual({ id: 'integer', amount: 'decimal(10,2)' });
    expect(seed.relation_name).toBe('"main"."raw_orders"');
    expect(seed.patch_path).toBe('seeds/seeds.yml');
    const orders = model(m, 'orders');
    expect(orders.description).toBe('One row per order.');
    expect(orders.columns.id).toMatchObject({ name: 'id', data_type: 'integer' });
    expect(orders.compiled_code).toBe('select * from "main"."raw_orders"');
  });

  it('a yml entry that matches no model file is an error with a did-you-mean', async () => {
    const diags = await compileErrors({
      'models/orders.sql': 'select 1',
      'models/schema.yml': 'models:\n  - name: order\n    description: typo\n',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'models/schema.yml', line: 2, message: 'models entry "order" matches no model file', hint: 'did you mean "orders"?' });
  });
});

describe('compileProject: incremental and macros', () => {
  it('an incremental model gets both variants', async () => {
    const m = await compile({
      'models/events.sql': `{{config materialized="incremental" unique_key="id"}}
select * from {{ref "src"}}
{{#if is_incremental}}
where ts > (select max(ts) from {{this}})
{{/if}}
`,
      'models/src.sql': 'select 1 as id, now() as ts',
    });
    const events = model(m, 'events');
    expect(events.config.materialized).toBe('incremental');
    expect(events.config.incremental_strategy).toBe('merge');
    expect(events.compiled_code).toBe('\nselect * from "main"."src"\n');
    expect(events.compiled_incremental_code).toBe('\nselect * from "main"."src"\nwhere ts > (select max(ts) from "main"."events")\n');
    expect(model(m, 'src').compiled_incremental_code).toBeUndefined();
  });

  it('helpers exported by macros/*.mjs are callable, and partials from macros/*.hbs', async () => {
    const m = await compile({
      'macros/money.mjs': `export function cents_to_dollars(column, options) {
  const scale = options.hash.scale ?? 2;
  return '(' + column + ' / 100)::decimal(16, ' + scale + ')';
}
export const notAHelper = 42;
`,
      'macros/cols.hbs': 'id,\n{{prefix}}_amount',
      'models/payments.sql': 'select {{cents_to_dollars "amount"}} as amount, {{cents_to_dollars "fee" scale=4}} as fee, {{> cols prefix="p"}} from t',
    });
    const p = model(m, 'payments');
    expect(p.compiled_code).toBe('select (amount / 100)::decimal(16, 2) as amount, (fee / 100)::decimal(16, 4) as fee, id,\np_amount from t');
    expect(p.depends_on.macros).toEqual(['macro.shop.cols']);
    expect(m.macros['macro.shop.cols']).toMatchObject({ name: 'cols', path: 'macros/cols.hbs' });
  });

  it('TypeScript macros are bundled in memory: relative imports and node: modules work, no temporary folder is left', async () => {
    const macroTemps = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('etl-macro-')).length;
    const tempsBefore = macroTemps();
    const m = await compile({
      'lib/scale.ts': 'export const DEFAULT_SCALE: number = 2;\nexport function castTo(expr: string, scale: number): string {\n  return `(${expr} / 100)::decimal(16, ${scale})`;\n}\n',
      'lib/names.js': "export const quoteName = (n) => '\"' + n + '\"';\n",
      'macros/money.ts': `import { basename } from 'node:path';
import { DEFAULT_SCALE, castTo } from '../lib/scale';
import { quoteName } from '../lib/names.js';
interface Options { hash: { scale?: number } }
export function cents_to_dollars(column: string, options: Options): string {
  return castTo(quoteName(column), options.hash.scale ?? DEFAULT_SCALE);
}
export function macro_file(): string {
  return basename(new URL(import.meta.url).pathname);
}
`,
      'models/payments.sql': 'select {{cents_to_dollars "amount"}} as amount, {{cents_to_dollars "fee" scale=4}} as fee, \'{{macro_file}}\' as f from t',
    });
    expect(model(m, 'payments').compiled_code).toBe('select ("amount" / 100)::decimal(16, 2) as amount, ("fee" / 100)::decimal(16, 4) as fee, \'money.ts\' as f from t');
    expect(macroTemps()).toBe(tempsBefore);
  });

  it('a TypeScript macro that does not parse is a compile error naming the file and the position', async () => {
    const diags = await compileErrors({
      'macros/bad.ts': 'export function f(x: string {\n  return x;\n}\n',
      'models/m.sql': 'select 1 as id',
    });
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ file: 'macros/bad.ts', line: 1, col: 29 });
    expect(diags[0]!.message).toMatch(/^cannot load macros: Expected "\)" but found "\{"$/);
  });

  it('refs inside a partial count as dependencies of the model using it', async () => {
    const m = await compile({
      'macros/from_orders.hbs': 'from {{ref "orders"}}',
      'models/orders.sql': 'select 1 as id',
      'models/report.sql': 'select *\n{{> from_orders}}',
    });
    const report = model(m, 'report');
    expect(report.depends_on.nodes).toEqual(['model.shop.orders']);
    expect(report.compiled_code).toBe('select *\nfrom "main"."orders"');
  });
});

describe('compileProject: ephemeral models run in DuckDB', () => {
  let instance: DuckDBInstance;
  let db: DuckDBConnection;

  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    db = await instance.connect();
    await db.run('create schema raw');
    await db.run(`create table raw.orders as select * from (values (1, 10, 500, 'placed'), (2, 10, 1500, 'shipped'), (3, 20, 250, 'returned')) t(id, customer_id, amount_cents, status)`);
    await db.run(`create table main.customers as select * from (values (10, 'ann'), (20, 'bob')) t(id, name)`);
  });

  afterAll(() => {
    db?.closeSync();
    instance?.closeSync();
  });

  async function rows(sql: string): Promise<unknown[][]> {
    const reader = await db.runAndReadAll(sql);
    return reader.getRowsJS() as unknown[][];
  }

  const files = {
    'models/schema.yml': SOURCES_YML,
    'models/customers.sql': 'select 1 as placeholder',
    'models/base_orders.sql': '{{config materialized="ephemeral"}}\nselect id, customer_id, amount_cents / 100.0 as amount, status\nfrom {{source "raw" "orders"}};\n',
    'models/live_orders.sql': '{{config materialized="ephemeral"}}\nselect * from {{ref "base_orders"}} where status <> \'returned\'',
    'models/order_totals.sql': 'select customer_id, sum(amount) as total from {{ref "base_orders"}} group by 1 order by 1',
    'models/with_consumer.sql': `-- a consumer that has its own WITH
WITH named AS (
  select o.id, c.name from {{ref "base_orders"}} o join main.customers c on c.id = o.customer_id
)
select * from named order by id`,
    'models/chain.sql': 'select count(*) as n, sum(amount) as amount from {{ref "live_orders"}}',
  };

  it('an ephemeral model is inlined as a CTE, and is not a relation itself', async () => {
    const m = await compile(files);
    const eph = model(m, 'base_orders');
    expect(eph.config.materialized).toBe('ephemeral');
    expect(eph.relation_name).toBeNull();
    const totals = model(m, 'order_totals');
    expect(totals.depends_on.nodes).toEqual(['model.shop.base_orders']);
    expect(totals.compiled_code).toMatch(/^with "__etl_ephemeral__base_orders" as \(/);
    expect(totals.compiled_code).toContain('select customer_id, sum(amount) as total from "__etl_ephemeral__base_orders" group by 1');
    expect(await rows(totals.compiled_code)).toEqual([
      [10, 20],
      [20, 2.5],
    ]);
  });

  it('a consumer that starts with WITH (after a comment) gets the CTE added to its list', async () => {
    const m = await compile(files);
    const sql = model(m, 'with_consumer').compiled_code;
    expect(sql.startsWith('-- a consumer that has its own WITH\nWITH "__etl_ephemeral__base_orders" as (')).toBe(true);
    expect(sql.slice(sql.indexOf('\n')).match(/\bwith\b/gi)).toHaveLength(1);
    expect(await rows(sql)).toEqual([
      [1, 'ann'],
      [2, 'ann'],
      [3, 'bob'],
    ]);
  });

  it('a chain of two ephemerals is inlined in dependency order', async () => {
    const m = await compile(files);
    const sql = model(m, 'chain').compiled_code;
    const base = sql.indexOf('"__etl_ephemeral__base_orders" as (');
    const live = sql.indexOf('"__etl_ephemeral__live_orders" as (');
    expect(base).toBeGreaterThanOrEqual(0);
    expect(live).toBeGreaterThan(base);
    expect(model(m, 'chain').depends_on.nodes).toEqual(['model.shop.live_orders']);
    expect(await rows(sql)).toEqual([[2n, 20]]);
  });

  it('an ephemeral that has its own WITH is inlined as a nested query that runs', async () => {
    const m = await compile({
      ...files,
      'models/eph_with.sql': "{{config materialized='ephemeral'}}\nwith t as (select * from {{ref 'base_orders'}}) select status, count(*) as n from t group by 1",
      'models/uses_eph_with.sql': '/* block comment */ select * from {{ref "eph_with"}} order by status',
    });
    const sql = model(m, 'uses_eph_with').compiled_code;
    expect(sql.startsWith('/* block comment */ with "__etl_ephemeral__base_orders" as (')).toBe(true);
    expect(sql.indexOf('"__etl_ephemeral__eph_with" as (')).toBeGreaterThan(sql.indexOf('"__etl_ephemeral__base_orders" as ('));
    expect(await rows(sql)).toEqual([
      ['placed', 1n],
      ['returned', 1n],
      ['shipped', 1n],
    ]);
  });

  it('an incremental consumer of an ephemeral gets the CTE in both variants', async () => {
    const m = await compile({
      ...files,
      'models/inc.sql': '{{config materialized="incremental"}}select * from {{ref "base_orders"}}{{#if is_incremental}} where id > 2{{/if}}',
    });
    const inc = model(m, 'inc');
    expect(inc.compiled_code).toContain('"__etl_ephemeral__base_orders" as (');
    expect(inc.compiled_incremental_code).toContain('"__etl_ephemeral__base_orders" as (');
    expect(await rows(`select count(*) from (${inc.compiled_code})`)).toEqual([[3n]]);
    expect(await rows(`select count(*) from (${inc.compiled_incremental_code})`)).toEqual([[1n]]);
  });
});

describe('custom generic tests', () => {
  it('a ref to an unknown model in a custom generic test is one error at its line, not a second one from rendering it', async () => {
    const diagnostics = await compileErrors({
      'macros/tests/matches_other.sql': 'select * from {{model}}\nwhere {{column_name}} not in (select id from {{ref "missing_model"}})\n',
      'models/a.sql': 'select 1 as id\n',
      'models/a.yml': 'models:\n  - name: a\n    columns:\n      - name: id\n        tests: [matches_other]\n',
    });
    expect(diagnostics.map((d) => `${d.file}:${d.line}: ${d.message}`)).toEqual([expect.stringMatching(/matches_other\.sql:2: unknown ref "missing_model"/)]);
  });
});
