import { enforceContract } from '../data-tests/contract.js';
import { quarantineRows } from '../data-tests/quarantine.js';
import { relationOf, type Materialization } from './materialization.js';

/**
 * Staged under a temporary name, checked (contract), filtered (quarantine),
 * then swapped in: readers never see a half-built or unchecked table.
 */
export const table: Materialization = {
  run: async ({ adapter, session, node, manifest, runId }) => {
    const relation = relationOf(node);
    const staged = await adapter.stageTable(session, relation, node.compiled_code);
    let quarantined = 0;
    try {
      if (node.config.contract?.enforced) await enforceContract(adapter, session, node, staged.relation);
      if (node.config.quarantine) quarantined = await quarantineRows(adapter, session, manifest, node, staged, runId);
      await adapter.publishTable(session, staged, relation);
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
  },
};
