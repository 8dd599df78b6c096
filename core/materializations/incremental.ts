// Incremental models: append, merge, delete+insert (microbatch has its own
// module). The first build, or --full-refresh, builds the whole table like a
// table model. Later builds stage the new rows (the SQL rendered with
// is_incremental = true), adapt the columns (on_schema_change), and apply the
// rows and the model's watermark in one transaction: a crash leaves the table
// and its state as they were before the run.

import type { MaterializeResult } from '../../adapters/adapter.js';
import { enforceContract } from '../data-tests/engine/contract.js';
import { planQuarantine } from '../data-tests/engine/quarantine.js';
import { asList } from '../project/load.js';
import { relationOf, type Materialization } from './materialization.js';
import { wantsFullBuild, watermarkFor } from './incremental-state.js';
import { explainSchemaChangeFailure, planSchemaChange } from './schema-change.js';
import { buildTable } from './table.js';
import { runMicrobatch } from './microbatch.js';

export const incremental: Materialization = {
  run: async (ctx): Promise<MaterializeResult> => {
    const { adapter, session, node, manifest, runId } = ctx;
    if (node.config.incremental_strategy === 'microbatch') return runMicrobatch(ctx);
    const relation = relationOf(node);
    const existing = await adapter.relationKind(session, relation);
    if (wantsFullBuild(ctx, existing)) {
      const result = await buildTable(ctx, watermarkFor(ctx));
      return { ...result, message: result.message.replace('CREATE TABLE', ctx.fullRefresh && existing ? 'FULL REFRESH' : 'CREATE TABLE') };
    }
    const sql = node.compiled_incremental_code ?? node.compiled_code;
    const staged = await adapter.stageTable(session, relation, sql, { transient: true });
    try {
      if (node.config.contract?.enforced) await enforceContract(adapter, session, node, staged.relation);
      const quarantine = node.config.quarantine ? await planQuarantine(adapter, session, manifest, node, staged, runId, ctx.clock.now()) : undefined;
      const plan = await planSchemaChange(adapter, session, node, relation, staged.relation);
      // An empty unique_key (`unique_key=(list)`, as dbt allows) means no key: rows are appended.
      const uniqueKey = asList(node.config.unique_key).filter((k) => k !== '');
      const configured = node.config.incremental_strategy ?? 'append';
      const strategy = uniqueKey.length === 0 && (configured === 'merge' || configured === 'delete+insert') ? 'append' : configured;
      try {
        const { rowsAffected, bytesWritten, alreadyApplied } = await adapter.applyIncremental(session, {
          strategy,
          target: relation,
          staged: staged.relation,
          sql,
          columns: plan.columns,
          uniqueKey,
          partitionBy: asList(node.config.partition_by),
          columnChanges: plan.changes,
          state: watermarkFor(ctx, staged.relation),
          moveRows: quarantine?.move,
          deletionVectors: node.config.deletion_vectors,
          // One change per model per run: retried (by the runner, or by etl retry for the run it retries) it is applied once.
          commitId: { run: ctx.retriedRun ?? runId, seq: 0 },
        });
        if (alreadyApplied) return { rowsAffected: 0, message: `${strategy.toUpperCase()} (already applied by run ${ctx.retriedRun ?? runId})` };
        // Counted after the quarantined rows left the staged table.
        const rows = rowsAffected;
        return {
          rowsAffected: rows,
          bytesWritten,
          quarantined: quarantine?.count,
          message: `${strategy.toUpperCase()} (${rows} rows${plan.changes.length ? `, ${plan.changes.length} column change${plan.changes.length === 1 ? '' : 's'}` : ''})`,
        };
      } catch (err) {
        throw explainSchemaChangeFailure(node, plan, err);
      }
    } finally {
      await adapter.discardStaged(session, staged);
    }
  },
};
