// Reads what the target knows for the docs site, over one read-only
// connection: the catalog of what the project builds (core/artifacts/
// catalog.ts, which build.ts writes to target/catalog.json) and the run history of the
// adapter's state store (core/state/state.ts): the last runs of the project
// and of each node. A target not built yet, locked by a running build,
// unreachable, or whose engine keeps no history gives what it can and a
// warning, never a failed generate.

import { buildCatalog, type CatalogJson } from '../artifacts/catalog.js';
import type { Manifest } from '../compiler/manifest.js';
import type { ProjectScan } from '../project/load.js';
import type { RunHistory } from '../state/state.js';

const RUNS = 20;
const RUNS_PER_NODE = 10;

export interface TargetDocs {
  /** What target/catalog.json gets. */
  catalog?: CatalogJson;
  history?: RunHistory;
  warnings: string[];
}

export async function readTarget(project: Pick<ProjectScan, 'root' | 'target' | 'targetName'>, manifest: Manifest, invocationId: string, options: { history: boolean }): Promise<TargetDocs> {
  const { createAdapter } = await import('../../adapters/index.js');
  const out: TargetDocs = { warnings: [] };
  const first = (err: unknown) => (err as Error).message.split('\n')[0];
  let adapter;
  try {
    adapter = await createAdapter(project.target, project.root, { readOnly: true });
    await adapter.open();
  } catch (err) {
    out.warnings.push(`catalog.json not written and no run history: the target ${project.targetName} could not be read (${first(err)}); build the project first`);
    await adapter?.close().catch(() => undefined);
    return out;
  }
  const a = adapter;
  try {
    await a.withSession(async (session) => {
      try {
        out.catalog = await buildCatalog(a, session, manifest, invocationId);
      } catch (err) {
        out.warnings.push(`catalog.json not written: the target ${project.targetName} could not be read (${first(err)})`);
      }
      if (!options.history || !a.state.history) return;
      try {
        out.history = await a.state.history(session, { runs: RUNS, perNode: RUNS_PER_NODE });
      } catch (err) {
        out.warnings.push(`no run history: ${first(err)}`);
      }
    });
  } catch (err) {
    out.warnings.push(`catalog.json not written and no run history: ${first(err)}`);
  } finally {
    await a.close().catch(() => undefined);
  }
  return out;
}
