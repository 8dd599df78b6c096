import { relationOf, type Materialization } from './materialization.js';

/** Built under a temporary name and swapped in: readers never see a half-built table. */
export const table: Materialization = {
  run: ({ adapter, session, node }) => adapter.replaceTable(session, relationOf(node), node.compiled_code),
};
