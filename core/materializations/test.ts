import { testStatus } from '../data-tests/threshold.js';
import { relationOf, type Materialization } from './materialization.js';

/** Rows of a failing test shown in the log and JUnit report. */
const SAMPLE_ROWS = 5;

/**
 * A data test: counts the rows its query returns, judges them against
 * warn_if/error_if, keeps a sample of failing rows, and with store_failures
 * keeps all of them in a table of the audit schema.
 */
export const test: Materialization = {
  run: async ({ adapter, session, node }) => {
    const sql = node.compiled_code;
    const counted = await session.query(`select count(*) as failures from (\n${sql}\n) as etl_test`);
    const failures = Number(counted.rows[0]?.[0] ?? 0);
    const status = testStatus(failures, node.config);
    const sample = failures > 0 ? await adapter.preview(session, sql, SAMPLE_ROWS) : undefined;
    if (node.config.store_failures && node.relation_name) {
      await adapter.replaceTable(session, relationOf(node), sql);
    }
    const message = failures === 0 ? 'pass' : `${failures} failing row${failures === 1 ? '' : 's'}`;
    return { message, status, failures, sample };
  },
};
