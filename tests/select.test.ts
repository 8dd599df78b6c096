import { describe, it, expect } from 'vitest';
import type { Manifest, ManifestNode, ManifestSource, NodeConfig, ResourceType } from '../core/compiler/manifest.js';
import { ProjectError } from '../core/errors.js';
import { explainSelection, selectNodes, testTypeOf, type SelectionContext } from '../core/graph/select.js';

const PROJECT = 'shop';

interface NodeSpec {
  type?: ResourceType;
  name: string;
  /** Path relative to the project root; defaults to models/<name>.sql etc. */
  file?: string;
  deps?: string[];
  tags?: string[];
  config?: Partial<NodeConfig>;
  checksum?: string;
  extra?: Record<string, unknown>;
}

function id(name: string, type: ResourceType = 'model'): string {
  return `${type}.${PROJECT}.${name}`;
}

function srcId(source: string, table: string): string {
  return `source.${PROJECT}.${source}.${table}`;
}

function node(spec: NodeSpec): ManifestNode {
  const type = spec.type ?? 'model';
  const dir = { model: 'models', seed: 'seeds', snapshot: 'snapshots', test: 'tests' }[type];
  const file = spec.file ?? `${dir}/${spec.name}.${type === 'seed' ? 'csv' : 'sql'}`;
  const tags = spec.tags ?? [];
  const materialized = type === 'model' ? 'view' : type;
  const config: NodeConfig = {
    materialized,
    enabled: true,
    tags,
    pre_hook: [],
    post_hook: [],
    retries: 0,
    meta: {},
    ...spec.config,
  };
  const base: ManifestNode = {
    unique_id: id(spec.name, type),
    resource_type: type,
    package_name: PROJECT,
    name: spec.name,
    path: file,
    original_file_path: file,
    fqn: [PROJECT, ...file.split('/').slice(1, -1), spec.name],
    database: null,
    schema: 'main',
    alias: spec.name,
    relation_name: type === 'test' ? null : `"main"."${spec.name}"`,
    raw_code: `select 1 as ${spec.name}`,
    compiled_code: `select 1 as ${spec.name}`,
    compiled_path: `target/compiled/${PROJECT}/${file}`,
    language: 'sql',
    depends_on: { nodes: spec.deps ?? [], macros: [] },
    refs: [],
    sources: [],
    config,
    tags,
    description: '',
    columns: {},
    meta: {},
    checksum: { name: 'sha256', checksum: spec.checksum ?? `sum-${spec.name}` },
    patch_path: null,
  };
  return Object.assign(base, spec.extra ?? {});
}

function source(sourceName: string, table: string, tags: string[] = []): ManifestSource {
  return {
    unique_id: srcId(sourceName, table),
    resource_type: 'source',
    package_name: PROJECT,
    name: table,
    source_name: sourceName,
    identifier: table,
    schema: sourceName,
    database: null,
    relation_name: `"${sourceName}"."${table}"`,
    path: 'models/sources.yml',
    original_file_path: 'models/sources.yml',
    fqn: [PROJECT, sourceName, table],
    description: '',
    source_description: '',
    loaded_at_field: null,
    freshness: null,
    columns: {},
    meta: {},
    tags,
  };
}

function manifest(nodes: ManifestNode[], sources: ManifestSource[] = []): Manifest {
  const parent_map: Record<string, string[]> = {};
  const child_map: Record<string, string[]> = {};
  for (const s of sources) {
    parent_map[s.unique_id] = [];
    child_map[s.unique_id] = [];
  }
  for (const n of nodes) {
    parent_map[n.unique_id] = [...n.depends_on.nodes];
    child_map[n.unique_id] ??= [];
  }
  for (const n of nodes) for (const p of n.depends_on.nodes) (child_map[p] ??= []).push(n.unique_id);
  return {
    metadata: {
      dbt_schema_version: 'https://schemas.getdbt.com/dbt/manifest/v12.json',
      etl_version: '0.1.0',
      generated_at: '2024-01-01T00:00:00Z',
      invocation_id: 'test',
      project_name: PROJECT,
      project_root: '/proj',
      target_name: 'dev',
      adapter_type: 'duckdb',
      target_schema: 'main',
      fingerprint: 'x',
    },
    nodes: Object.fromEntries(nodes.map((n) => [n.unique_id, n])),
    sources: Object.fromEntries(sources.map((s) => [s.unique_id, s])),
    macros: {},
    parent_map,
    child_map,
    exposures: {},
    metrics: {},
    groups: {},
    selectors: {},
    disabled: {},
    docs: {},
  };
}

// raw.orders, raw.customers (sources)
//   -> stg_orders, stg_customers (staging views, tag staging)
//   -> orders (mart table, deps stg_orders + stg_customers + seed country_codes)
//   -> customer_ltv (mart table, tag finance) -> ltv_report
// snapshot orders_snapshot <- stg_orders
// tests: not_null_orders_order_id (generic on orders), relationships_orders_customer (generic, orders + stg_customers),
//        assert_ltv_positive (singular on customer_ltv), unit_orders (unit test on orders)
function shop(): Manifest {
  return manifest(
    [
      node({ type: 'seed', name: 'country_codes' }),
      node({ name: 'stg_orders', file: 'models/staging/stg_orders.sql', deps: [srcId('raw', 'orders')], tags: ['staging'] }),
      node({ name: 'stg_customers', file: 'models/staging/stg_customers.sql', deps: [srcId('raw', 'customers')], tags: ['staging'] }),
      node({
        name: 'orders',
        file: 'models/marts/orders.sql',
        deps: [id('stg_orders'), id('stg_customers'), id('country_codes', 'seed')],
        config: { materialized: 'table', unique_key: ['order_id', 'line'] },
      }),
      node({ name: 'customer_ltv', file: 'models/marts/finance/customer_ltv.sql', deps: [id('orders')], tags: ['finance', 'nightly'], config: { materialized: 'table' } }),
      node({ name: 'ltv_report', file: 'models/marts/finance/ltv_report.sql', deps: [id('customer_ltv')], tags: ['nightly'] }),
      node({ type: 'snapshot', name: 'orders_snapshot', deps: [id('stg_orders')] }),
      node({
        type: 'test',
        name: 'not_null_orders_order_id',
        file: 'models/marts/schema.yml',
        deps: [id('orders')],
        extra: { test_metadata: { name: 'not_null', kwargs: { column_name: 'order_id' } } },
      }),
      node({
        type: 'test',
        name: 'relationships_orders_customer',
        file: 'models/marts/schema.yml',
        deps: [id('orders'), id('stg_customers')],
        extra: { test_metadata: { name: 'relationships', kwargs: {} } },
      }),
      node({ type: 'test', name: 'assert_ltv_positive', deps: [id('customer_ltv')] }),
      node({ type: 'test', name: 'unit_orders', file: 'models/marts/schema.yml', deps: [id('orders')], extra: { unit_test: true } }),
    ],
    [source('raw', 'orders'), source('raw', 'customers', ['raw_data']), source('other', 'events')],
  );
}

const ctx = (m: Manifest = shop(), extra: Partial<SelectionContext> = {}): SelectionContext => ({ manifest: m, ...extra });

/** Selected node names, sorted. */
function names(select?: string[], exclude?: string[], c: SelectionContext = ctx()): string[] {
  return [...selectNodes(c, select, exclude)].map((u) => c.manifest.nodes[u]!.name).sort();
}

function sorted(...xs: string[]): string[] {
  return [...xs].sort();
}

function expectProjectError(fn: () => unknown, ...fragments: string[]): ProjectError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ProjectError);
  const err = caught as ProjectError;
  expect(err.exitCode).toBe(2);
  for (const f of fragments) expect(err.message).toContain(f);
  return err;
}

const ALL = [
  'country_codes',
  'stg_orders',
  'stg_customers',
  'orders',
  'customer_ltv',
  'ltv_report',
  'orders_snapshot',
  'not_null_orders_order_id',
  'relationships_orders_customer',
  'assert_ltv_positive',
  'unit_orders',
];

describe('selectNodes: defaults', () => {
  it('selects every node (and no source) when select is undefined or empty', () => {
    expect(names()).toEqual(sorted(...ALL));
    expect(names([])).toEqual(sorted(...ALL));
    expect(names(['  '])).toEqual(sorted(...ALL));
    const all = selectNodes(ctx());
    for (const u of all) expect(u.startsWith('source.')).toBe(false);
  });

  it('returns unique_ids', () => {
    expect(selectNodes(ctx(), ['orders'])).toEqual(new Set([id('orders')]));
  });
});

describe('selectNodes: names and paths', () => {
  it('selects a node by name', () => {
    expect(names(['orders'])).toEqual(['orders']);
    expect(names(['country_codes'])).toEqual(['country_codes']);
    expect(names(['orders_snapshot'])).toEqual(['orders_snapshot']);
    expect(names(['assert_ltv_positive'])).toEqual(['assert_ltv_positive']);
  });

  it('supports * wildcards in names', () => {
    expect(names(['stg_*'])).toEqual(['stg_customers', 'stg_orders']);
    expect(names(['*_report'])).toEqual(['ltv_report']);
    expect(names(['stg_?rders'])).toEqual(['stg_orders']);
  });

  it('matches fqn prefixes (folder names, dotted paths)', () => {
    expect(names(['marts.finance'])).toEqual(['customer_ltv', 'ltv_report']);
    expect(names(['shop.staging.stg_orders'])).toEqual(['stg_orders']);
    expect(names(['fqn:staging'])).toEqual(['stg_customers', 'stg_orders']);
  });

  it('treats a bare value with a slash as a path, and one ending in .sql as a file name', () => {
    expect(names(['models/staging'])).toEqual(['stg_customers', 'stg_orders']);
    expect(names(['customer_ltv.sql'])).toEqual(['customer_ltv']);
  });

  it('path: selects a folder, recursively, or one file', () => {
    expect(names(['path:models/marts/finance'])).toEqual(['customer_ltv', 'ltv_report']);
    expect(names(['path:models/marts/'])).toEqual(
      sorted('orders', 'customer_ltv', 'ltv_report', 'not_null_orders_order_id', 'relationships_orders_customer', 'unit_orders'),
    );
    expect(names(['path:./models/staging/stg_orders.sql'])).toEqual(['stg_orders']);
    expect(names(['path:models/mart'])).toEqual([]); // a prefix of a folder name is not the folder
    expect(names(['path:seeds'])).toEqual(['country_codes']);
    expect(names(['path:models/*/finance'])).toEqual(['customer_ltv', 'ltv_report']);
    expect(names(['path:/proj/models/staging'])).toEqual(['stg_customers', 'stg_orders']);
  });
});

describe('selectNodes: graph operators', () => {
  it('+name selects the node and all its ancestors (sources traversed, not returned)', () => {
    expect(names(['+customer_ltv'])).toEqual(sorted('customer_ltv', 'orders', 'stg_orders', 'stg_customers', 'country_codes'));
  });

  it('name+ selects the node and all its descendants', () => {
    expect(names(['customer_ltv+'])).toEqual(sorted('customer_ltv', 'ltv_report', 'assert_ltv_positive'));
    expect(names(['stg_orders+'])).toEqual(
      sorted(
        'stg_orders',
        'orders',
        'orders_snapshot',
        'customer_ltv',
        'ltv_report',
        'not_null_orders_order_id',
        'relationships_orders_customer',
        'assert_ltv_positive',
        'unit_orders',
      ),
    );
  });

  it('N+name limits the ancestor depth', () => {
    expect(names(['1+customer_ltv'])).toEqual(sorted('customer_ltv', 'orders'));
    expect(names(['2+ltv_report'])).toEqual(sorted('ltv_report', 'customer_ltv', 'orders'));
    expect(names(['0+ltv_report'])).toEqual(['ltv_report']);
  });

  it('name+N limits the descendant depth', () => {
    expect(names(['orders+1'])).toEqual(
      sorted('orders', 'customer_ltv', 'not_null_orders_order_id', 'relationships_orders_customer', 'unit_orders'),
    );
    expect(names(['stg_orders+1'])).toEqual(sorted('stg_orders', 'orders', 'orders_snapshot'));
  });

  it('+name+ selects both directions', () => {
    expect(names(['1+customer_ltv+1'])).toEqual(sorted('orders', 'customer_ltv', 'ltv_report', 'assert_ltv_positive'));
  });

  it('@name selects descendants and all ancestors of those descendants', () => {
    // stg_customers' descendants include the relationships test, whose other parent chain is
    // orders <- stg_orders, country_codes; @ pulls those in too.
    const got = names(['@customer_ltv']);
    expect(got).toEqual(
      sorted('customer_ltv', 'ltv_report', 'assert_ltv_positive', 'orders', 'stg_orders', 'stg_customers', 'country_codes'),
    );
    expect(names(['@stg_orders'])).toContain('stg_customers');
    expect(names(['@stg_orders'])).toContain('country_codes');
  });

  it('rejects "@" combined with a "+" suffix', () => {
    expectProjectError(() => selectNodes(ctx(), ['@orders+']), '"@" and a "+" suffix');
  });

  it('treats a numeric name followed by + as that node and its children', () => {
    const m = manifest([node({ name: '2024' }), node({ name: 'after', deps: [id('2024')] })]);
    expect(names(['2024+'], undefined, ctx(m))).toEqual(['2024', 'after']);
  });
});

describe('selectNodes: methods', () => {
  it('tag: matches node tags, with globs', () => {
    expect(names(['tag:staging'])).toEqual(['stg_customers', 'stg_orders']);
    expect(names(['tag:nightly'])).toEqual(['customer_ltv', 'ltv_report']);
    expect(names(['tag:fin*'])).toEqual(['customer_ltv']);
    expect(names(['tag:missing'])).toEqual([]);
  });

  it('tag: on a source selects nothing by itself but its children with +', () => {
    expect(names(['tag:raw_data'])).toEqual([]);
    expect(names(['tag:raw_data+1'])).toEqual(['stg_customers']);
  });

  it('config.<key>:<value> compares String(value); arrays match any element', () => {
    expect(names(['config.materialized:table'])).toEqual(['customer_ltv', 'orders']);
    expect(names(['config.materialized:view'])).toEqual(['ltv_report', 'stg_customers', 'stg_orders']);
    expect(names(['config.materialized:seed'])).toEqual(['country_codes']);
    expect(names(['config.unique_key:line'])).toEqual(['orders']);
    expect(names(['config.enabled:true'])).toEqual(sorted(...ALL));
    expect(names(['config.retries:0'])).toHaveLength(ALL.length);
    expect(names(['config.tags:finance'])).toEqual(['customer_ltv']);
  });

  it('config.<key> reads nested keys', () => {
    const m = manifest([
      node({ name: 'a', config: { contract: { enforced: true }, meta: { owner: 'ana' } } }),
      node({ name: 'b', config: { contract: { enforced: false } } }),
    ]);
    expect(names(['config.contract.enforced:true'], undefined, ctx(m))).toEqual(['a']);
    expect(names(['config.meta.owner:ana'], undefined, ctx(m))).toEqual(['a']);
  });

  it('config without a key is an error', () => {
    expectProjectError(() => selectNodes(ctx(), ['config:table']), 'needs a config key', 'config.<key>:<value>');
  });

  it('resource_type: selects by kind', () => {
    expect(names(['resource_type:model'])).toEqual(sorted('stg_orders', 'stg_customers', 'orders', 'customer_ltv', 'ltv_report'));
    expect(names(['resource_type:seed'])).toEqual(['country_codes']);
    expect(names(['resource_type:snapshot'])).toEqual(['orders_snapshot']);
    expect(names(['resource_type:test'])).toEqual(
      sorted('not_null_orders_order_id', 'relationships_orders_customer', 'assert_ltv_positive', 'unit_orders'),
    );
    expect(names(['resource_type:source'])).toEqual([]);
    expectProjectError(() => selectNodes(ctx(), ['resource_type:modle']), 'unknown resource_type "modle"', 'did you mean "model"?');
  });

  it('source: selects nothing runnable, but source:x+ selects its descendants', () => {
    expect(names(['source:raw'])).toEqual([]);
    expect(names(['source:raw.orders+1'])).toEqual(['stg_orders']);
    expect(names(['source:raw+1'])).toEqual(['stg_customers', 'stg_orders']);
    expect(names(['source:raw.customers+'])).toEqual(
      sorted('stg_customers', 'orders', 'customer_ltv', 'ltv_report', 'assert_ltv_positive', 'not_null_orders_order_id', 'relationships_orders_customer', 'unit_orders'),
    );
    expect(names(['source:other+'])).toEqual([]);
    expect(names(['source:shop.raw.orders+1'])).toEqual(['stg_orders']);
    expect(names(['source:raw.*+1'])).toEqual(['stg_customers', 'stg_orders']);
  });

  it('warns that a bare source: selector selects only sources', () => {
    const { selected, warnings } = explainSelection(ctx(), ['source:raw']);
    expect(selected.size).toBe(0);
    expect(warnings.join('\n')).toContain('"source:raw+"');
  });

  it('test_type: generic, singular, unit', () => {
    expect(names(['test_type:generic'])).toEqual(['not_null_orders_order_id', 'relationships_orders_customer']);
    expect(names(['test_type:singular'])).toEqual(['assert_ltv_positive']);
    expect(names(['test_type:unit'])).toEqual(['unit_orders']);
    expect(names(['test_type:data'])).toEqual(['assert_ltv_positive']);
    expectProjectError(() => selectNodes(ctx(), ['test_type:generc']), 'did you mean "generic"?');
  });

  it('testTypeOf classifies nodes', () => {
    const m = shop();
    expect(testTypeOf(m.nodes[id('orders')]!)).toBeUndefined();
    expect(testTypeOf(m.nodes[id('not_null_orders_order_id', 'test')]!)).toBe('generic');
    expect(testTypeOf(m.nodes[id('assert_ltv_positive', 'test')]!)).toBe('singular');
    expect(testTypeOf(m.nodes[id('unit_orders', 'test')]!)).toBe('unit');
    expect(testTypeOf(node({ type: 'test', name: 't', extra: { test_type: 'unit' } }))).toBe('unit');
  });

  it('test_name: matches the generic test kind', () => {
    expect(names(['test_name:not_null'])).toEqual(['not_null_orders_order_id']);
  });
});

describe('selectNodes: set operations', () => {
  it('unions space-separated terms, within one arg and across args', () => {
    expect(names(['orders country_codes'])).toEqual(['country_codes', 'orders']);
    expect(names(['orders', 'tag:staging'])).toEqual(sorted('orders', 'stg_orders', 'stg_customers'));
    expect(names(['  orders \t  ltv_report  '])).toEqual(['ltv_report', 'orders']);
  });

  it('intersects comma-separated parts', () => {
    expect(names(['tag:nightly,config.materialized:table'])).toEqual(['customer_ltv']);
    expect(names(['+ltv_report,resource_type:model'])).toEqual(sorted('ltv_report', 'customer_ltv', 'orders', 'stg_orders', 'stg_customers'));
    expect(names(['path:models/marts,resource_type:test,test_type:generic'])).toEqual([
      'not_null_orders_order_id',
      'relationships_orders_customer',
    ]);
    expect(names(['tag:staging,tag:nightly'])).toEqual([]);
  });

  it('combines unions of intersections', () => {
    expect(names(['tag:nightly,config.materialized:view country_codes'])).toEqual(['country_codes', 'ltv_report']);
  });

  it('--exclude removes nodes, with the same grammar', () => {
    expect(names(['+customer_ltv'], ['tag:staging'])).toEqual(sorted('customer_ltv', 'orders', 'country_codes'));
    expect(names(undefined, ['resource_type:test'])).toEqual(
      sorted('country_codes', 'stg_orders', 'stg_customers', 'orders', 'customer_ltv', 'ltv_report', 'orders_snapshot'),
    );
    expect(names(['stg_orders+'], ['orders+'])).toEqual(['orders_snapshot', 'stg_orders']);
    expect(names(['orders'], ['orders'])).toEqual([]);
    expect(names(undefined, ['source:raw+'])).toEqual(['country_codes']);
  });

  it('rejects empty parts between commas', () => {
    expectProjectError(() => selectNodes(ctx(), ['orders,']), 'empty selector');
    expectProjectError(() => selectNodes(ctx(), ['orders, tag:x']), 'empty selector');
    expectProjectError(() => selectNodes(ctx(), ['tag:']), '"tag:" needs a value');
    expectProjectError(() => selectNodes(ctx(), ['+']), 'names nothing to select');
  });
});

describe('selectNodes: indirect test selection (option)', () => {
  it('eager adds tests with any selected parent; cautious only with all parents selected', () => {
    const c = ctx();
    const pick = (mode: 'eager' | 'cautious' | 'buildable' | 'empty', select: string[], exclude?: string[]): string[] =>
      [...selectNodes(c, select, exclude, { indirectSelection: mode })].map((u) => c.manifest.nodes[u]!.name).sort();
    expect(pick('empty', ['orders'])).toEqual(['orders']);
    expect(pick('eager', ['orders'])).toEqual(sorted('orders', 'not_null_orders_order_id', 'relationships_orders_customer', 'unit_orders'));
    expect(pick('cautious', ['orders'])).toEqual(sorted('orders', 'not_null_orders_order_id', 'unit_orders'));
    expect(pick('cautious', ['orders stg_customers'])).toEqual(
      sorted('orders', 'stg_customers', 'not_null_orders_order_id', 'relationships_orders_customer', 'unit_orders'),
    );
    // stg_customers is an ancestor of orders, so the relationships test is buildable.
    expect(pick('buildable', ['orders'])).toEqual(sorted('orders', 'not_null_orders_order_id', 'relationships_orders_customer', 'unit_orders'));
    // An explicitly excluded test is not added back.
    expect(pick('eager', ['orders'], ['test_type:unit'])).toEqual(sorted('orders', 'not_null_orders_order_id', 'relationships_orders_customer'));
  });
});

describe('selectNodes: state and results', () => {
  function stateCtx(): SelectionContext {
    const old = shop();
    const cur = shop();
    // changed SQL
    cur.nodes[id('stg_orders')]!.checksum = { name: 'sha256', checksum: 'changed' };
    // changed config
    cur.nodes[id('customer_ltv')]!.config = { ...cur.nodes[id('customer_ltv')]!.config, materialized: 'incremental' };
    // new node
    const added = node({ name: 'new_model', deps: [id('orders')] });
    cur.nodes[added.unique_id] = added;
    cur.parent_map[added.unique_id] = [id('orders')];
    cur.child_map[added.unique_id] = [];
    cur.child_map[id('orders')]!.push(added.unique_id);
    // config with the same content in another key order is not a change
    const o = old.nodes[id('orders')]!;
    o.config = Object.fromEntries(Object.entries(o.config).reverse()) as NodeConfig;
    return { manifest: cur, stateManifest: old };
  }

  it('state:modified selects nodes with a changed checksum or config, and new nodes', () => {
    expect(names(['state:modified'], undefined, stateCtx())).toEqual(['customer_ltv', 'new_model', 'stg_orders']);
    expect(names(['state:modified.body'], undefined, stateCtx())).toEqual(['stg_orders']);
    expect(names(['state:modified.configs'], undefined, stateCtx())).toEqual(['customer_ltv']);
  });

  it('state:new and state:unmodified', () => {
    expect(names(['state:new'], undefined, stateCtx())).toEqual(['new_model']);
    const unmodified = names(['state:unmodified'], undefined, stateCtx());
    expect(unmodified).toContain('orders');
    expect(unmodified).not.toContain('stg_orders');
    expect(unmodified).not.toContain('customer_ltv');
    expect(unmodified).not.toContain('new_model');
    expect(unmodified).toHaveLength(ALL.length - 2);
  });

  it('state:modified+ selects the modified nodes and their descendants', () => {
    expect(names(['state:modified.configs+'], undefined, stateCtx())).toEqual(sorted('customer_ltv', 'ltv_report', 'assert_ltv_positive'));
  });

  it('state: without --state is an error', () => {
    expectProjectError(() => selectNodes(ctx(), ['state:modified']), 'state: selectors need --state DIR');
    expectProjectError(() => selectNodes(stateCtx(), ['state:modifed']), 'did you mean "modified"?');
  });

  it('result:<status> selects nodes by their status in the previous run', () => {
    const c = ctx(shop(), {
      previousResults: {
        results: [
          { unique_id: id('orders'), status: 'error' },
          { unique_id: id('stg_orders'), status: 'success' },
          { unique_id: id('not_null_orders_order_id', 'test'), status: 'fail' },
          { unique_id: id('customer_ltv'), status: 'skipped' },
          { unique_id: id('gone'), status: 'error' }, // no longer in the project
        ],
      },
    });
    expect(names(['result:error'], undefined, c)).toEqual(['orders']);
    expect(names(['result:fail'], undefined, c)).toEqual(['not_null_orders_order_id']);
    expect(names(['result:error+1'], undefined, c)).toEqual(
      sorted('orders', 'customer_ltv', 'not_null_orders_order_id', 'relationships_orders_customer', 'unit_orders'),
    );
    expect(names(['result:error result:skipped'], undefined, c)).toEqual(['customer_ltv', 'orders']);
    const { warnings } = explainSelection(c, ['result:eror']);
    expect(warnings.join('\n')).toContain('did you mean "result:error"?');
  });

  it('result: without a previous run is an error', () => {
    expectProjectError(() => selectNodes(ctx(), ['result:error']), 'no previous run_results.json');
  });
});

describe('selectNodes: errors and warnings', () => {
  it('an unknown method throws ProjectError with a did-you-mean', () => {
    const err = expectProjectError(() => selectNodes(ctx(), ['tga:x']), 'unknown selector method "tga"', 'did you mean "tag"?');
    expect(err.diagnostics).toHaveLength(1);
    expect(err.diagnostics[0]!.hint).toContain('did you mean');
    expectProjectError(() => selectNodes(ctx(), ['conifg.materialized:table']), 'did you mean "config.materialized"?');
    expectProjectError(() => selectNodes(ctx(), ['resource-type:model']), 'did you mean "resource_type"?');
  });

  it('an unknown method in --exclude is an error too, naming the flag', () => {
    expectProjectError(() => selectNodes(ctx(), undefined, ['pth:models']), '--exclude "pth:models"', 'did you mean "path"?');
  });

  it('reports every bad selector at once', () => {
    const err = expectProjectError(() => selectNodes(ctx(), ['tga:x pth:y']));
    expect(err.diagnostics).toHaveLength(2);
  });

  it('a name that matches nothing selects nothing and warns with the closest node name', () => {
    const { selected, warnings } = explainSelection(ctx(), ['ordres']);
    expect(selected.size).toBe(0);
    expect(warnings).toEqual(['"ordres" matched no node; did you mean "orders"?']);
    expect(names(['ordres', 'orders'])).toEqual(['orders']);
  });

  it('warns with a did-you-mean for tags and paths', () => {
    expect(explainSelection(ctx(), ['tag:nightyl']).warnings).toEqual(['"tag:nightyl" matched no node; did you mean "tag:nightly"?']);
    expect(explainSelection(ctx(), ['path:models/mart']).warnings).toEqual(['"path:models/mart" matched no node; did you mean "path:models/marts"?']);
    expect(explainSelection(ctx(), ['orders']).warnings).toEqual([]);
  });

  it('says when a name matches only a disabled node', () => {
    const m = shop();
    const off = node({ name: 'legacy', config: { enabled: false } });
    m.disabled[off.unique_id] = [off];
    expect(explainSelection(ctx(m), ['legacy']).warnings[0]).toContain('disabled');
  });
});

describe('selectNodes: large graphs', () => {
  it('+last on a 10,000-node chain of diamonds returns every node', () => {
    const N = 10_000;
    const nodes: ManifestNode[] = [];
    for (let i = 0; i < N; i++) {
      // every node depends on the previous one and the one before that: a long chain of diamonds
      const deps = i === 0 ? [srcId('raw', 'orders')] : i === 1 ? [id('m0')] : [id(`m${i - 1}`), id(`m${i - 2}`)];
      nodes.push(node({ name: `m${i}`, deps, tags: i % 2 ? ['odd'] : [] }));
    }
    const m = manifest(nodes, [source('raw', 'orders')]);
    const c = ctx(m);
    const up = selectNodes(c, [`+m${N - 1}`]);
    expect(up.size).toBe(N);
    expect(selectNodes(c, ['source:raw+']).size).toBe(N);
    expect(selectNodes(c, ['m0+']).size).toBe(N);
    expect(selectNodes(c, [`@m${N / 2}`]).size).toBe(N);
    // each step up reaches i-1 and i-2, so three steps reach back six nodes
    expect(selectNodes(c, [`3+m${N - 1}`])).toEqual(new Set([0, 1, 2, 3, 4, 5, 6].map((k) => id(`m${N - 1 - k}`))));
    expect(selectNodes(c, ['+m9999,tag:odd']).size).toBe(N / 2);
    expect(selectNodes(c, [`m${N - 1}+`]).size).toBe(1);
  });

  it('works without child_map entries (derives children from parents)', () => {
    const m = shop();
    m.child_map = {};
    expect(names(['customer_ltv+'], undefined, ctx(m))).toEqual(sorted('customer_ltv', 'ltv_report', 'assert_ltv_positive'));
    expect(names(['source:raw.orders+1'], undefined, ctx(m))).toEqual(['stg_orders']);
  });
});
