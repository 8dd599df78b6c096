import type { Materialization } from './materialization.js';
import { selectBody } from '../../adapters/sql-text.js';

/** Diff rows shown for a failing unit test. */
const SAMPLE_ROWS = 20;

/**
 * A unit test: fixtures loaded into a scratch schema of the test's own, the
 * model's SQL (rendered against them) compared with the expected rows in
 * both directions, and the scratch schema dropped whatever happened.
 */
export const unitTest: Materialization = {
  run: async ({ adapter, session, node }) => {
    const plan = node.unit_test!;
    const d = adapter.dialect;
    const schema = d.quoteIdentifier(plan.schema);
    // The schema is taken first (on Postgres, its run lock): a leftover of a
    // crashed run is dropped only once no other run can be using it.
    await adapter.ensureSchema(session, plan.schema);
    await session.execute(`drop schema if exists ${schema} cascade`);
    await adapter.ensureSchema(session, plan.schema);
    try {
      for (const f of plan.fixtures) {
        // Typed like the real input when it exists; from the literals otherwise.
        const real = f.like ? await adapter.listColumns(session, f.like) : [];
        const typeOf = new Map(real.map((c) => [c.name.toLowerCase(), c.type]));
        const select = real.length
          ? `select ${f.columns.map((c) => (typeOf.has(c.toLowerCase()) ? `cast(${d.quoteIdentifier(c)} as ${typeOf.get(c.toLowerCase())}) as ${d.quoteIdentifier(c)}` : d.quoteIdentifier(c))).join(', ')} from (${f.sql}) as etl_given`
          : f.sql;
        await session.execute(`create table ${d.relation(plan.schema, f.name)} as ${select}`);
      }
      const cols = plan.columns.map((c) => d.quoteIdentifier(c)).join(', ');
      const actual = `select ${cols} from (\n${selectBody(node.compiled_code)}\n) as etl_actual`;
      const expected = `select ${cols} from (\n${plan.expectedSql}\n) as etl_expected`;
      const diffSql =
        `select 'extra' as etl_diff, * from (${actual} except all ${expected}) as e\n` +
        `union all\nselect 'missing' as etl_diff, * from (${expected} except all ${actual}) as m`;
      const diff = await session.query(`select count(*) from (${diffSql}) as d`);
      const failures = Number(diff.rows[0]?.[0] ?? 0);
      if (failures === 0) return { message: 'pass', status: 'pass', failures: 0 };
      const sample = await adapter.preview(session, `${diffSql}\norder by 1, 2`, SAMPLE_ROWS);
      return {
        message: `${failures} row${failures === 1 ? ' differs' : 's differ'} from the expected rows (missing: expected but not returned; extra: returned but not expected)`,
        status: 'fail',
        failures,
        sample,
      };
    } finally {
      await session.execute(`drop schema if exists ${schema} cascade`).catch(() => undefined);
    }
  },
};
