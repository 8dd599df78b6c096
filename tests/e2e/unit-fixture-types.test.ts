// Unit-test fixtures take the column types of the real inputs when those
// exist: a column that is null in every given row is still an integer, so a
// join on it works on Postgres (which has no implicit text = integer).

import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, assertCliBuilt, dropPgSchema, killAll, newPgSchema, pgConnect, removeTempDirs, runCli, writeProject } from './helpers.js';

assertCliBuilt();

afterEach(killAll);
afterAll(removeTempDirs);

function project(target: string): string {
  return writeProject({
    'etl.yml': `name: fixture_types\ntarget: t\ntargets:\n  t: ${target}\n`,
    'seeds/o.csv': 'id,cid\n1,1\n2,2\n',
    'seeds/c.csv': 'id,name\n1,a\n2,b\n',
    'models/m.sql': 'select o.id, c.name from {{ref "o"}} as o left join {{ref "c"}} as c on c.id = o.cid\n',
    'models/unit.yml': `unit_tests:
  - name: m_keeps_orders_without_customer
    model: m
    given:
      - input: ref('o')
        rows: [{ id: 1, cid: null }, { id: 3, cid: null }]
      - input: ref('c')
        rows: [{ id: 2, name: b }]
    expect:
      rows: [{ id: 1, name: null }, { id: 3, name: null }]
`,
  });
}

function expectUnitTestPasses(target: string): () => Promise<void> {
  return async () => {
    const dir = project(target);
    const built = await runCli(['build'], { cwd: dir });
    expect(built.code, built.output).toBe(0);
    const unit = await runCli(['test', '-s', 'test_type:unit'], { cwd: dir });
    expect(unit.code, unit.output).toBe(0);
    expect(unit.stdout).toMatch(/PASS\s+test m_keeps_orders_without_customer/);
  };
}

const TEST = 'a fixture column that is null in every row still joins, typed like the built input';

describe('on duckdb', () => {
  it(TEST, expectUnitTestPasses('{ type: duckdb, path: target/dev.duckdb, schema: main, threads: 2 }'));
});

describe('on postgres', () => {
  const schema = newPgSchema();
  let admin: pg.Client | undefined;
  beforeAll(async () => {
    admin = await pgConnect();
  });
  afterAll(async () => {
    if (!admin) return;
    await dropPgSchema(admin, schema);
    await admin.end();
  });
  it(TEST, expectUnitTestPasses(`{ type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 2 }`));
});
