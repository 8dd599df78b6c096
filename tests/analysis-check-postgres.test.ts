// Static analysis on a Postgres target: the corpus of broken projects fails
// `etl build` before anything is written (no schema, no artifacts); SQL that
// only Postgres speaks is bound on the server (inside a transaction that is
// rolled back); bound types equal the built relations' types.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { build, compile } from '../core/api.js';
import { ProjectError } from '../core/errors.js';
import { BROKEN_PROJECTS, brokenProject, expectDiagnostics, removeBrokenProjects } from './analysis/broken-projects.js';
import { dropPgSchema, newPgSchema, PG_URL, pgConnect } from './e2e/helpers.js';

let admin: pg.Client;
const schemas: string[] = [];
beforeAll(async () => {
  admin = await pgConnect();
});
afterAll(async () => {
  removeBrokenProjects();
  for (const s of schemas) await dropPgSchema(admin, s);
  await admin?.end();
});

function pgYml(schema: string): (text: string) => string {
  return (text) => text.replace(/target: dev\ntargets:\n  dev: \{[^\n]*\}/, `target: pg\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 2 }`);
}

function pgProject(c: Parameters<typeof brokenProject>[0]): { dir: string; schema: string } {
  const schema = newPgSchema();
  schemas.push(schema);
  return { dir: brokenProject(c, pgYml(schema)), schema };
}

const schemaExists = async (schema: string) => ((await admin.query('select 1 from pg_namespace where nspname = $1', [schema])).rowCount ?? 0) > 0;

describe('Postgres target: etl build stops at static analysis errors, writing nothing', () => {
  const cases = BROKEN_PROJECTS.filter((x) => x.only !== 'duckdb');
  it('has a corpus of at least 25 broken projects', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });
  for (const c of cases) {
    it(c.name, async () => {
      const { dir, schema } = pgProject(c);
      const err = await build({ projectDir: dir }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, 'build should fail with a project error').toBeInstanceOf(ProjectError);
      expectDiagnostics(c, (err as ProjectError).diagnostics);
      expect(await schemaExists(schema)).toBe(false);
      expect(existsSync(path.join(dir, 'target/manifest.json'))).toBe(false);
    });
  }
});

describe('Postgres target: the server path', () => {
  it('binds a Postgres-only function on the server, with the types Postgres gives, and reports what only Postgres rejects', async () => {
    const { dir, schema } = pgProject({ name: 'pg-only', edits: {}, errors: [] });
    writeFileSync(path.join(dir, 'models/marts/order_months.sql'), "select order_id, to_char(order_date, 'YYYY-MM') as month, age(order_date::timestamp) as order_age\nfrom {{ref \"stg_orders\"}}\n");
    writeFileSync(path.join(dir, 'models/marts/order_month_counts.sql'), 'select month, count(*) as orders\nfrom {{ref "order_months"}}\ngroup by month\n');
    const { check } = await compile({ projectDir: dir, check: true });
    expect(check!.columns.get('model.shop.order_months')).toEqual([
      { name: 'order_id', type: 'integer' },
      { name: 'month', type: 'text' },
      { name: 'order_age', type: 'interval' },
    ]);
    expect(check!.columns.get('model.shop.order_month_counts')).toEqual([
      { name: 'month', type: 'text' },
      { name: 'orders', type: 'bigint' },
    ]);
    expect(check!.unchecked).toEqual([]);
    // Nothing was left on the server: the stand-ins were temporary and rolled back.
    expect(await schemaExists(schema)).toBe(false);

    writeFileSync(path.join(dir, 'models/marts/order_months.sql'), "select order_id,\n  to_char(order_date, 'YYYY-MM') + 1 as month\nfrom {{ref \"stg_orders\"}}\n");
    const err = await compile({ projectDir: dir, check: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProjectError);
    const d = (err as ProjectError).diagnostics;
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ file: 'models/marts/order_months.sql', line: 2, message: expect.stringMatching(/operator does not exist: text \+ integer \(postgres\)/) });
    expect(d[0]!.hint).toMatch(/left unchecked downstream: order_month_counts/);
  });

  it("bound types equal the types of project-template's built relations", async () => {
    const { dir, schema } = pgProject({ name: 'template', edits: {}, errors: [] });
    const summary = await build({ projectDir: dir });
    expect(summary.exitCode).toBe(0);
    const { check, manifest } = await compile({ projectDir: dir, check: true, noCache: true });
    const models = Object.values(manifest.nodes).filter((n) => n.resource_type === 'model' || n.resource_type === 'seed');
    expect(models).toHaveLength(8);
    for (const n of models) {
      const r = await admin.query<{ name: string; type: string }>(
        `select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace s on s.oid = c.relnamespace
          where s.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped order by a.attnum`,
        [schema, n.alias],
      );
      expect(check!.columns.get(n.unique_id), n.name).toEqual(r.rows);
    }
  });
});
