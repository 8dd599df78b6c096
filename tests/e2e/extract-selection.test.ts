// Selecting loaders: three loaders (files, so no server is needed) in two
// sources. `etl extract -s source:crm.customers` runs that one loader only,
// `-s source:crm` both of crm's, `-s tag:hourly` the tagged one; `etl build
// -s source:crm.customers+` the loader and the model reading it, not the
// other loaders; `etl run` never a loader. What ran is read from
// run_results.json and from the raw tables present.

import { describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, readJson, runCli, withDb, writeProject } from './helpers.js';

function project(): string {
  return writeProject({
    'etl.yml': etlYml('shop'),
    'data/customers.csv': 'id,name\n1,a\n2,b\n',
    'data/orders.csv': 'id,customer_id\n10,1\n11,2\n12,2\n',
    'data/items.csv': 'sku\nx\ny\n',
    'models/sources.yml': `sources:
  - name: crm
    tables:
      - name: customers
        loader: { type: files, path: "data/customers.csv" }
      - name: orders
        loader: { type: files, path: "data/orders.csv", tags: [hourly] }
  - name: shop
    tables:
      - name: items
        loader: { type: files, path: "data/items.csv" }
`,
    'models/customer_names.sql': "select name from {{source 'crm' 'customers'}}",
  });
}

const ran = (dir: string) =>
  readJson(dir, 'target/run_results.json')
    .results.map((r: { unique_id: string; status: string }) => `${r.unique_id} ${r.status}`)
    .sort();

const tables = (dir: string) => withDb(dbPathOf(dir), async (db) => (await db.rows(`select table_schema || '.' || table_name as t from information_schema.tables where table_schema in ('crm', 'shop', 'main') order by 1`)).map((r) => r.t));

describe('selecting loaders', () => {
  it('extract -s source:<source>.<table>, -s source:<source>, -s tag:; build -s source:...+; run never loads', async () => {
    const dir = project();
    const one = await runCli(['extract', '-s', 'source:crm.customers'], { cwd: dir });
    expect(one.code, one.output).toBe(0);
    expect(ran(dir)).toEqual(['loader.shop.crm.customers success']);
    expect(await tables(dir)).toEqual(['crm.customers']);

    const tagged = await runCli(['extract', '-s', 'tag:hourly'], { cwd: dir });
    expect(tagged.code, tagged.output).toBe(0);
    expect(ran(dir)).toEqual(['loader.shop.crm.orders success']);

    const source = await runCli(['extract', '-s', 'source:crm'], { cwd: dir });
    expect(source.code, source.output).toBe(0);
    expect(ran(dir)).toEqual(['loader.shop.crm.customers success', 'loader.shop.crm.orders success']);
    expect(await tables(dir)).toEqual(['crm.customers', 'crm.orders']);

    const run = await runCli(['run'], { cwd: dir });
    expect(run.code, run.output).toBe(0);
    expect(ran(dir)).toEqual(['model.shop.customer_names success']);

    const build = await runCli(['build', '-s', 'source:crm.customers+'], { cwd: dir });
    expect(build.code, build.output).toBe(0);
    expect(ran(dir)).toEqual(['loader.shop.crm.customers success', 'model.shop.customer_names success']);
    // shop.items was never selected: never loaded.
    expect(await tables(dir)).toEqual(['crm.customers', 'crm.orders', 'main.customer_names']);

    const all = await runCli(['extract'], { cwd: dir });
    expect(all.code, all.output).toBe(0);
    expect(ran(dir)).toEqual(['loader.shop.crm.customers success', 'loader.shop.crm.orders success', 'loader.shop.shop.items success']);
    expect(await withDb(dbPathOf(dir), (db) => db.rows('select count(*)::int as n from shop.items'))).toEqual([{ n: 2 }]);
  });
});
