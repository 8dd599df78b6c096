// Unit-test fixtures take the column types of the real inputs when those
// exist: a column that is null in every given row is still an integer, so a
// join on it works on Postgres (which has no implicit text = integer).

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PG_URL, assertCliBuilt, dropPgSchema, killAll, newPgSchema, pgConnect, removeTempDirs, runCli, writeProject } from './helpers.js';

assertCliBuilt();

const schemas: string[] = [];
afterEach(killAll);
afterAll(async () => {
  removeTempDirs();
  const client = await pgConnect();
  try {
    for (const s of schemas) await dropPgSchema(client, s);
  } finally {
    await client.end();
  }
});

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

describe.each([
  ['duckdb', () => '{ type: duckdb, path: target/dev.duckdb, schema: main, threads: 2 }'],
  [
    'postgres',
    () => {
      const s = newPgSchema();
      schemas.push(s);
      return `{ type: postgres, url: "${PG_URL}", schema: ${s}, threads: 2 }`;
    },
  ],
])('on %s', (_engine, target) => {
  it('a fixture column that is null in every row still joins, typed like the built input', async () => {
    const dir = project(target());
    const built = await runCli(['build'], { cwd: dir });
    expect(built.code, built.output).toBe(0);
    const unit = await runCli(['test', '-s', 'test_type:unit'], { cwd: dir });
    expect(unit.code, unit.output).toBe(0);
    expect(unit.stdout).toMatch(/PASS\s+test m_keeps_orders_without_customer/);
  });
});
