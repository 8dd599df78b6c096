// Snapshots: SCD type-2 history of a query. Each row version carries
// etl_scd_id, etl_updated_at, etl_valid_from and etl_valid_to (null while
// current). `strategy: timestamp` detects a change by a newer updated_at;
// `strategy: check` by a difference in check_cols. hard_deletes decides what a
// row that vanished from the source becomes: ignored, closed (invalidate), or
// closed plus a deletion record (new_record, with etl_is_deleted). The
// adapter applies a run in one atomic unit with its snapshot-run record
// (adapters/sql-snapshot.ts on SQL engines); a run with no source change adds
// nothing.

import type { MaterializeResult } from '../../adapters/adapter.js';
import { asList } from '../project/load.js';
import { relationOf, type Materialization } from './materialization.js';

export const snapshot: Materialization = {
  run: async ({ adapter, session, node, runId, clock }): Promise<MaterializeResult> => {
    const relation = relationOf(node);
    const now = clock.now();
    const r = await adapter.applySnapshot(session, {
      target: relation,
      sql: node.compiled_code,
      uniqueKey: asList(node.config.unique_key),
      strategy: node.config.strategy === 'timestamp' ? 'timestamp' : 'check',
      updatedAt: node.config.updated_at,
      checkCols: node.config.check_cols ?? [],
      hardDeletes: node.config.hard_deletes ?? 'ignore',
      now,
      state: [{ kind: 'snapshot_run', relation, uniqueId: node.unique_id, runId, at: now.toISOString() }],
    });
    return r.firstRun
      ? { rowsAffected: r.inserted, message: `SNAPSHOT (${r.inserted} rows, first run)` }
      : { rowsAffected: r.inserted, message: `SNAPSHOT (${r.inserted} new versions)` };
  },
};
