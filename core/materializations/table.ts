import type { MaterializeResult } from '../../adapters/adapter.js';
import { enforceContract } from '../data-tests/engine/contract.js';
import { planQuarantine } from '../data-tests/engine/quarantine.js';
import type { StateRecord } from '../state/state.js';
import { asList } from '../project/load.js';
import { relationOf, type Materialization, type MaterializationContext } from './materialization.js';

/**
 * Staged under a temporary name, checked (contract), then swapped in with its
 * quarantined rows moved out in the same transaction: readers never see a
 * half-built or unchecked table. `state` commits with the swap (incremental
 * models' watermark).
 */
export async function buildTable(ctx: MaterializationContext, state: StateRecord[] = []): Promise<MaterializeResult> {
  const { adapter, session, node, manifest, runId } = ctx;
  const relation = relationOf(node);
  const staged = await adapter.stageTable(session, relation, node.compiled_code);
  let quarantined = 0;
  let published;
  try {
    if (node.config.contract?.enforced) await enforceContract(adapter, session, node, staged.relation);
    const quarantine = node.config.quarantine ? await planQuarantine(adapter, session, manifest, node, staged, runId, ctx.clock.now()) : undefined;
    quarantined = quarantine?.count ?? 0;
    published = await adapter.publishTable(session, staged, relation, { state, moveRows: quarantine?.move, partitionBy: node.config.partition_by === undefined ? undefined : asList(node.config.partition_by), deletionVectors: node.config.deletion_vectors });
  } catch (err) {
    await adapter.discardStaged(session, staged);
    throw err;
  }
  const rows = staged.rows === undefined ? undefined : staged.rows - quarantined;
  return {
    rowsAffected: rows,
    bytesWritten: published?.bytesWritten,
    quarantined: node.config.quarantine ? quarantined : undefined,
    message: `CREATE TABLE (${rows ?? '?'} rows${node.config.quarantine ? `, ${quarantined} quarantined` : ''})`,
  };
}

export const table: Materialization = { run: (ctx) => buildTable(ctx) };
