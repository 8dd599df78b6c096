import type { MaterializeResult, StateStatement } from '../../adapters/adapter.js';
import { enforceContract } from '../data-tests/contract.js';
import { quarantineRows } from '../data-tests/quarantine.js';
import { relationOf, type Materialization, type MaterializationContext } from './materialization.js';

/**
 * Staged under a temporary name, checked (contract), filtered (quarantine),
 * then swapped in: readers never see a half-built or unchecked table.
 * `stateStatements` commit with the swap (incremental models' watermark).
 */
export async function buildTable(ctx: MaterializationContext, stateStatements: StateStatement[] = []): Promise<MaterializeResult> {
  const { adapter, session, node, manifest, runId } = ctx;
  const relation = relationOf(node);
  const staged = await adapter.stageTable(session, relation, node.compiled_code);
  let quarantined = 0;
  try {
    if (node.config.contract?.enforced) await enforceContract(adapter, session, node, staged.relation);
    if (node.config.quarantine) quarantined = await quarantineRows(adapter, session, manifest, node, staged, runId);
    await adapter.publishTable(session, staged, relation, stateStatements);
  } catch (err) {
    await adapter.discardStaged(session, staged);
    throw err;
  }
  const rows = staged.rows === undefined ? undefined : staged.rows - quarantined;
  return {
    rowsAffected: rows,
    quarantined: node.config.quarantine ? quarantined : undefined,
    message: `CREATE TABLE (${rows ?? '?'} rows${node.config.quarantine ? `, ${quarantined} quarantined` : ''})`,
  };
}

export const table: Materialization = { run: (ctx) => buildTable(ctx) };
