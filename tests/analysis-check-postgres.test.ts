// Static analysis on a Postgres target: the shared suite of issue #16
// (tests/analysis/check-suite.ts: the corpus of broken projects fails `etl
// build` before the schema is made, bound types equal the built relations',
// ls/state/incremental predictions, sources, --no-check); SQL that only
// Postgres speaks is bound on the server, inside a transaction that is rolled
// back and leaves nothing another session could see.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compile } from '../core/api.js';
import { ProjectError } from '../core/errors.js';
import { describeCheckOn } from './analysis/check-suite.js';
import { postgresTarget, type CheckTarget } from './analysis/check-targets.js';
import { pollUntil, startCli } from './e2e/helpers.js';

describeCheckOn('postgres', postgresTarget);

let pg: Awaited<ReturnType<typeof postgresTarget>>;
beforeAll(async () => {
  pg = await postgresTarget();
});
afterAll(async () => {
  await pg?.close();
});

/** project-template on Postgres with two models only Postgres binds: to_char and age, and one reading it. */
function pgOnlyProject(): ReturnType<CheckTarget['project']> {
  return pg.project({
    name: 'pg-only',
    edits: {
      'models/marts/order_months.sql': "select order_id, to_char(order_date, 'YYYY-MM') as month, age(order_date::timestamp) as order_age\nfrom {{ref \"stg_orders\"}}\n",
      'models/marts/order_month_counts.sql': 'select month, count(*) as orders\nfrom {{ref "order_months"}}\ngroup by month\n',
    },
  });
}

describe('Postgres target: the server path', () => {
  it('binds a Postgres-only function on the server, with the types Postgres gives, and reports what only Postgres rejects', async () => {
    const p = pgOnlyProject();
    const { check } = await compile({ projectDir: p.dir, check: true });
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
    // Nothing was left on the server: the stand-ins were CTEs, in a transaction rolled back.
    expect(await p.untouched()).toBe(true);

    writeFileSync(path.join(p.dir, 'models/marts/order_months.sql'), "select order_id,\n  to_char(order_date, 'YYYY-MM') + 1 as month\nfrom {{ref \"stg_orders\"}}\n");
    const err = await compile({ projectDir: p.dir, check: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProjectError);
    const d = (err as ProjectError).diagnostics;
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ file: 'models/marts/order_months.sql', line: 2, col: 34, message: expect.stringMatching(/operator does not exist: text \+ integer \(postgres\)/) });
    expect(d[0]!.hint).toMatch(/left unchecked downstream: order_month_counts/);
  });

  it('binds inside one transaction that another session never sees into, and rolls it back', async () => {
    const p = pgOnlyProject();
    const resume = path.join(mkdtempSync(path.join(os.tmpdir(), 'etl-check-resume-')), 'go');
    // Paused once the server has bound the first model, its transaction still open.
    const cli = startCli(['compile', '--check'], { cwd: p.dir, env: { ETL_PAUSE_AFTER_SQL: '^release savepoint etl_check', ETL_RESUME_FILE: resume, ETL_TRACE_SQL: '1' } });
    try {
      await cli.waitForOutput(/\[paused after sql\]/);
      // From a second connection: the check's session is inside a transaction (the one idle there,
      // stopped: other tests' checks on this database pass through that statement without stopping)...
      let sessions: Array<{ pid: number; xact: string }> = [];
      const idle = async () => {
        sessions = (
          await pg.admin.query<{ pid: number; xact: string }>(
            `select pid, (xact_start is not null)::text as xact from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()
               and state = 'idle in transaction' and query like 'release savepoint etl_check%' and state_change < now() - interval '1 second'`,
          )
        ).rows;
        return sessions.length > 0;
      };
      expect(await pollUntil(idle, 30_000)).toBe(true);
      expect(sessions).toHaveLength(1);
      expect(sessions[0]!.xact).toBe('true');
      const pid = sessions[0]!.pid;
      // ...that has created nothing: no schema, no relation, no temporary table.
      expect(await p.untouched()).toBe(true);
      // (The catalog lists every session's temporary tables too: a stand-in would be named etl_check_<n>, as the CTEs are.)
      const made = await pg.admin.query(`select c.relname from pg_class c where c.relname like 'etl\\_check%'`);
      expect(made.rows).toEqual([]);
      // It holds no lock on a relation (a stand-in table would hold one until the rollback).
      const locks = await pg.admin.query(`select l.relation::regclass::text as rel from pg_locks l where l.pid = $1 and l.locktype = 'relation' and l.relation not in (select oid from pg_class where relnamespace = 'pg_catalog'::regnamespace)`, [pid]);
      expect(locks.rows).toEqual([]);
      writeFileSync(resume, '');
      const r = await cli.done;
      expect(r.code, r.output).toBe(0);
      expect(r.stdout).toMatch(/Checked 7 models/);
      // Rolled back: every statement of the check, as traced, reads; the transaction ends with a rollback, never a commit.
      const statements = [...r.stderr.matchAll(/^\[sql [\d.]+ ms\] (.*)$/gm)].map((m) => m[1]!);
      const begin = statements.indexOf('begin');
      expect(begin, r.stderr).toBeGreaterThanOrEqual(0);
      const inside = statements.slice(begin + 1);
      expect(inside.at(-1)).toBe('rollback');
      expect(inside.filter((sql) => !/^(select|with|savepoint|release savepoint|rollback)\b/i.test(sql))).toEqual([]);
      expect(statements.filter((sql) => /^(commit|create|insert|drop|alter)\b/i.test(sql))).toEqual([]);
      expect(await p.untouched()).toBe(true);
      expect(existsSync(path.join(p.dir, 'target/manifest.json'))).toBe(true);
    } finally {
      cli.kill();
      rmSync(path.dirname(resume), { recursive: true, force: true });
    }
  });

  it('a model whose constants Postgres rejects while planning is unchecked, with the reason, not failed', async () => {
    const p = pg.project({ edits: { 'models/marts/bad_constant.sql': "select order_id, cast('not a number' as integer) as n\nfrom {{ref \"stg_orders\"}}\n" } });
    const { check } = await compile({ projectDir: p.dir, check: true });
    expect(check!.errors).toEqual([]);
    expect(check!.unchecked).toEqual([{ unique_id: 'model.shop.bad_constant', reason: expect.stringMatching(/^Postgres rejects a value while planning it: invalid input syntax for type integer/) }]);
    expect(check!.columns.get('model.shop.orders')).toHaveLength(9);
  });
});
