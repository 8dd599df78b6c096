// Reads the run history the target keeps (the adapter's state store, see
// core/state/state.ts) for the docs site: the last runs of the project and of
// each node. Read only; a target not built yet, locked by a running build,
// unreachable, or whose engine keeps no history gives no history and a
// warning, never a failed generate.

import type { ProjectScan } from '../project/load.js';
import type { RunHistory } from '../state/state.js';

const RUNS = 20;
const RUNS_PER_NODE = 10;

export async function readRunHistory(project: ProjectScan): Promise<{ history?: RunHistory; warning?: string }> {
  const { createAdapter } = await import('../../adapters/index.js');
  let adapter;
  try {
    adapter = await createAdapter(project.target, project.root, { readOnly: true });
    if (!adapter.state.history) return {};
    await adapter.open();
  } catch (err) {
    return { warning: `no run history: ${(err as Error).message.split('\n')[0]}` };
  }
  try {
    const history = await adapter.withSession((session) => adapter.state.history!(session, { runs: RUNS, perNode: RUNS_PER_NODE }));
    return { history };
  } catch (err) {
    return { warning: `no run history: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    await adapter.close();
  }
}
