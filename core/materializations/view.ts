import { relationOf, type Materialization } from './materialization.js';

/** `create or replace view`, atomic in every engine we support. */
export const view: Materialization = {
  run: ({ adapter, session, node }) => adapter.replaceView(session, relationOf(node), node.compiled_code),
};
