// dbt's generic test names and ids (core/data-tests/test-names.ts), checked
// against names and unique_ids that dbt itself wrote (jaffle_shop's
// manifest.json and dbt's test of generic test arguments), and against cases
// worked through dbt's algorithm with Python's own str()/repr()
// (synthesize_generic_test_names and the unique_id hash of
// core/dbt/parser/generic_test_builders.py and schema_generic_tests.py).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compile, selectFromManifest } from '../core/api.js';
import { pyRepr, pyStr, synthesizeTestNames, testIdHash, testModelKwarg } from '../core/data-tests/test-names.js';

/** [test, model, args (column_name included), `<name>.<hash>` as dbt wrote it]. */
const FROM_DBT: Array<[string, string, Record<string, unknown>, string]> = [
  ['not_null', 'stg_customers', { column_name: 'customer_id' }, 'not_null_stg_customers_customer_id.e2cfb1f9aa'],
  ['unique', 'stg_customers', { column_name: 'customer_id' }, 'unique_stg_customers_customer_id.c7614daada'],
  ['accepted_values', 'stg_payments', { column_name: 'payment_method', values: ['credit_card', 'coupon', 'bank_transfer', 'gift_card'] }, 'accepted_values_stg_payments_payment_method__credit_card__coupon__bank_transfer__gift_card.3c3820f278'],
  ['not_null', 'stg_payments', { column_name: 'payment_id' }, 'not_null_stg_payments_payment_id.c19cc50075'],
  ['unique', 'stg_payments', { column_name: 'payment_id' }, 'unique_stg_payments_payment_id.3744510712'],
  ['not_null', 'customers', { column_name: 'customer_id' }, 'not_null_customers_customer_id.5c9bf9911d'],
  ['unique', 'customers', { column_name: 'customer_id' }, 'unique_customers_customer_id.c5af1ff4b1'],
  ['relationships', 'orders', { column_name: 'customer_id', to: "ref('customers')", field: 'customer_id' }, 'relationships_orders_customer_id__customer_id__ref_customers_.c6ec7f58f2'],
  ['accepted_values', 'stg_orders', { column_name: 'status', values: ['placed', 'shipped', 'completed', 'return_pending', 'returned'] }, 'accepted_values_stg_orders_status__placed__shipped__completed__return_pending__returned.080fb20aad'],
  ['not_null', 'stg_orders', { column_name: 'order_id' }, 'not_null_stg_orders_order_id.81cfe2fe64'],
  ['unique', 'stg_orders', { column_name: 'order_id' }, 'unique_stg_orders_order_id.e3b841c71a'],
  ['accepted_values', 'orders', { column_name: 'status', values: ['placed', 'shipped', 'completed', 'return_pending', 'returned'] }, 'accepted_values_orders_status__placed__shipped__completed__return_pending__returned.be6b5b5ec3'],
  ['not_null', 'orders', { column_name: 'amount' }, 'not_null_orders_amount.106140f9fd'],
  ['not_null', 'orders', { column_name: 'bank_transfer_amount' }, 'not_null_orders_bank_transfer_amount.7743500c49'],
  ['not_null', 'orders', { column_name: 'coupon_amount' }, 'not_null_orders_coupon_amount.ab90c90625'],
  ['not_null', 'orders', { column_name: 'credit_card_amount' }, 'not_null_orders_credit_card_amount.d3ca593b59'],
  ['not_null', 'orders', { column_name: 'customer_id' }, 'not_null_orders_customer_id.c5f02694af'],
  ['not_null', 'orders', { column_name: 'gift_card_amount' }, 'not_null_orders_gift_card_amount.413a0d2d7a'],
  ['not_null', 'orders', { column_name: 'order_id' }, 'not_null_orders_order_id.cf6c17daed'],
  ['unique', 'orders', { column_name: 'order_id' }, 'unique_orders_order_id.fed79b3a6e'],
  ['accepted_values', 'orders', { column_name: 'status_block', values: ['placed', 'shipped'] }, 'accepted_values_orders_status_block__placed__shipped.62277f9bb9'],
  // A model-level test without arguments: the name ends in `_`.
  ['unique', 'customers', {}, 'unique_customers_.ccc5343706'],
];

/** [test type, target, args, full name, alias, hash]: lists, mappings, numbers, booleans, null, quotes, nesting, sources, long names. */
const COMPUTED: Array<[string, string, Record<string, unknown>, string, string, string]> = [
  ["expression_is_true", "orders", {"expression": "amount >= 0"}, "expression_is_true_orders_amount_0", "expression_is_true_orders_amount_0", "2c37be40c8"],
  ["expression_is_true", "customers", {"column_name": "lifetime_value", "expression": "< 2000"}, "expression_is_true_customers_lifetime_value___2000", "expression_is_true_customers_lifetime_value___2000", "3097c65c82"],
  ["row_count", "orders", {"min": 1, "max": 1000}, "row_count_orders_1000__1", "row_count_orders_1000__1", "d471b97ead"],
  ["accepted_values", "orders", {"column_name": "is_paid", "values": [true, false], "quote": false}, "accepted_values_orders_is_paid__False__True__False", "accepted_values_orders_is_paid__False__True__False", "e01b16ee37"],
  ["accepted_values", "orders", {"column_name": "tier", "values": [1, 2, 3]}, "accepted_values_orders_tier__1__2__3", "accepted_values_orders_tier__1__2__3", "f8c00c74b9"],
  ["relationships", "payments", {"column_name": "order_id", "to": "ref('orders')", "field": "id"}, "relationships_payments_order_id__id__ref_orders_", "relationships_payments_order_id__id__ref_orders_", "932841244f"],
  ["source_not_null", "shop_raw_raw_orders", {"column_name": "order_id"}, "source_not_null_shop_raw_raw_orders_order_id", "source_not_null_shop_raw_raw_orders_order_id", "92b00d6a3c"],
  ["source_relationships", "shop_raw_raw_orders", {"column_name": "customer_id", "to": "source('shop_raw', 'raw_customers')", "field": "id"}, "source_relationships_shop_raw_raw_orders_customer_id__id__source_shop_raw_raw_customers_", "source_relationships_shop_raw__f4d2c982b07a017e8317d181e820cd91", "bace4cd14d"],
  ["unique", "orders", {"columns": ["order_id", "customer_id"]}, "unique_orders_order_id__customer_id", "unique_orders_order_id__customer_id", "a17859c9cf"],
  ["dict_arg", "orders", {"column_name": "status", "mapping": {"a": "x y", "b": "z"}}, "dict_arg_orders_status__x_y__z", "dict_arg_orders_status__x_y__z", "7aa110dd61"],
  ["is_positive", "orders", {"column_name": "amount", "config_like": null}, "is_positive_orders_amount__None", "is_positive_orders_amount__None", "6cf0268519"],
  ["nested", "orders", {"column_name": "c", "values": [["a", "b"], {"k": "it's"}]}, "nested_orders_c___a_b____k_it_s_", "nested_orders_c___a_b____k_it_s_", "067666a036"],
  ["accepted_values", "a_model_with_a_rather_long_name_for_testing", {"column_name": "status", "values": ["x"]}, "accepted_values_a_model_with_a_rather_long_name_for_testing_status__x", "accepted_values_a_model_with_a_f6dd66cae045d1756b3f92abe9f7187e", "687f675625"],
  ["expression_is_true", "orders", {"expression": "status = 'shipped' and \"amount\" > 0"}, "expression_is_true_orders_status_shipped_and_amount_0", "expression_is_true_orders_status_shipped_and_amount_0", "e15795b601"],
];

function idOf(testType: string, target: string, args: Record<string, unknown>): { name: string; alias: string; hash: string } {
  const names = synthesizeTestNames(testType, target, args);
  const isSource = testType.startsWith('source_');
  const model = isSource ? testModelKwarg({ kind: 'source', source: 'shop_raw', name: 'raw_orders' }) : testModelKwarg({ kind: 'model', name: target });
  const hash = testIdHash(names.name, { name: isSource ? testType.slice('source_'.length) : testType, kwargs: { ...args, model }, namespace: null });
  return { ...names, hash };
}

describe('dbt generic test names and unique_ids', () => {
  it.each(FROM_DBT)('%s on %s %j is %s, as dbt named it', (test, model, args, expected) => {
    const { name, hash } = idOf(test, model, args);
    expect(`${name}.${hash}`).toBe(expected);
  });

  it('a name of 64 characters or more gets dbt\'s hashed alias (the compiled file\'s name)', () => {
    const { name, alias } = idOf('accepted_values', 'orders', { column_name: 'status', values: ['placed', 'shipped', 'completed', 'return_pending', 'returned'] });
    expect(name).toBe('accepted_values_orders_status__placed__shipped__completed__return_pending__returned');
    expect(alias).toBe('accepted_values_orders_1ce6ab157c285f7cd2ac656013faf758');
    // 63 characters: kept whole.
    expect(synthesizeTestNames('not_null', 'm', { column_name: 'c'.repeat(63 - 'not_null_m_'.length) }).alias).toHaveLength(63);
    expect(synthesizeTestNames('not_null', 'm', { column_name: 'c'.repeat(64 - 'not_null_m_'.length) }).alias).toMatch(/^not_null_m_[0-9a-f]{32}$/);
  });

  it.each(COMPUTED)('%s on %s %j', (testType, target, args, name, alias, hash) => {
    expect(idOf(testType, target, args)).toEqual({ name, alias, hash });
  });

  it('reproduces Python\'s str() and repr() of YAML values', () => {
    expect(pyStr(true)).toBe('True');
    expect(pyStr(null)).toBe('None');
    expect(pyStr(1.5)).toBe('1.5');
    expect(pyStr(['a', 1, false, null])).toBe("['a', 1, False, None]");
    expect(pyStr({ k: "it's" })).toBe('{\'k\': "it\'s"}');
    expect(pyRepr('both \' and "')).toBe(`'both \\' and "'`);
    expect(pyRepr('tab\tnew\nline\\')).toBe("'tab\\tnew\\nline\\\\'");
  });
});

describe('generic tests of a compiled project', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-test-names-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const project = path.join(dir, 'everything');
  fs.cpSync(path.join(import.meta.dirname, 'fixtures/everything'), project, { recursive: true });
  const compiled = compile({ projectDir: project, noCache: true });
  const tests = async () => Object.values((await compiled).manifest.nodes).filter((n) => n.resource_type === 'test');
  const select = async (...s: string[]) => [...selectFromManifest((await compiled).manifest, path.join(project, 'target'), { select: s }).selected].map((id) => (id.split('.')[2] ?? id)).sort();

  it('have dbt\'s names, ids, aliases, compiled paths and kwargs', async () => {
    const byName = new Map((await tests()).map((t) => [t.name, t]));
    const accepted = byName.get('accepted_values_stg_orders_status__placed__shipped__completed__returned')!;
    expect(accepted.unique_id).toMatch(/^test\.everything\.accepted_values_stg_orders_status__placed__shipped__completed__returned\.[0-9a-f]{10}$/);
    expect(accepted.alias).toMatch(/^accepted_values_stg_orders_[0-9a-f]{32}$/);
    expect(accepted.compiled_path).toBe(`target/compiled/everything/models/staging/schema.yml/${accepted.alias}.sql`);
    expect(byName.get('relationships_stg_orders_customer_id__customer_id__ref_stg_customers_')!.test_metadata!.kwargs).toEqual({
      column_name: 'customer_id',
      to: "ref('stg_customers')",
      field: 'customer_id',
      model: "{{ get_where_subquery(ref('stg_orders')) }}",
    });
    // A source's test: source_<test>_<source>_<table>_..., about source('shop_raw', 'raw_orders').
    const onSource = byName.get('source_not_null_shop_raw_raw_orders_order_id')!;
    expect(onSource.test_metadata!.kwargs.model).toBe("{{ get_where_subquery(source('shop_raw', 'raw_orders')) }}");
    expect(onSource.attached_node).toBe('source.everything.shop_raw.raw_orders');
  });

  it('inherit the tags of their column and of their model', async () => {
    const byName = new Map((await tests()).map((t) => [t.name, t]));
    // order_id of stg_orders has tags: [keys]; stg_orders is in the staging folder (tags: [staging]).
    expect(byName.get('unique_stg_orders_order_id')!.tags).toEqual(['keys', 'staging']);
    expect(byName.get('accepted_values_stg_orders_status__placed__shipped__completed__returned')!.tags).toEqual(['staging']);
    expect(await select('tag:keys')).toEqual(['not_null_stg_orders_order_id', 'unique_stg_orders_order_id']);
  });

  it('are selected by their full name, their alias, or the name etl gave them before', async () => {
    const full = ['accepted_values_stg_orders_status__placed__shipped__completed__returned'];
    expect(await select(full[0]!)).toEqual(full);
    const alias = (await tests()).find((t) => t.name === full[0])!.alias;
    expect(await select(alias)).toEqual(full);
    expect(await select('accepted_values_stg_orders_status_placed_shipped_com_28bfb1f5b5')).toEqual(full);
    expect(await select('relationships_stg_orders_customer_id_ref_stg_custome_92062f70d9')).toEqual(['relationships_stg_orders_customer_id__customer_id__ref_stg_customers_']);
  });
});
