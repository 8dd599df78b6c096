import { testStatus } from '../data-tests/threshold.js';
import { selectBody } from '../../adapters/sql-text.js';
import { relationOf, type Materialization } from './materialization.js';

/** Rows of a failing test shown in the log and JUnit report. */
const SAMPLE_ROWS = 5;

/**
 * A data test: counts the rows its query returns, judges them against
 * warn_if/error_if, keeps a sample of failing rows, and with store_failures
 * keeps all of them in a table of the audit schema.
 */
export const test: Materialization = {
  run: async ({ adapter, session, node, manifest }) => {
    const sql = node.compiled_code;
    const counted = await session.query(`select count(*) as failures from (\n${selectBody(sql)}\n) as etl_test`);
    const failures = Number(counted.rows[0]?.[0] ?? 0);
    const status = testStatus(failures, node.config);
    const sample = failures > 0 ? await adapter.preview(session, sql, SAMPLE_ROWS) : undefined;
    if (node.config.store_failures) {
      // A generic test carries its audit relation; a singular test's
      // ({{config store_failures=true}}) goes to the same audit schema.
      const relation = node.relation_name ? relationOf(node) : { schema: `${manifest.metadata.target_schema}_etl_test__audit`, name: node.alias };
      // (Another test may be creating the schema at the same moment; if it is really
      // missing, the create table below fails with the engine's message.)
      if (!node.relation_name) await adapter.ensureSchema(session, relation.schema).catch(() => undefined);
      await adapter.replaceTable(session, relation, sql);
    }
    const message = failures === 0 ? 'pass' : `${failures} failing row${failures === 1 ? '' : 's'}`;
    return { message, status, failures, sample };
  },
};
