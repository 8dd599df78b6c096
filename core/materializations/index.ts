// The registry of materialization strategies, by `materialized`.

import type { ManifestNode } from '../compiler/manifest.js';
import type { Materialization } from './materialization.js';
import { seed } from './seed.js';
import { table } from './table.js';
import { test } from './test.js';
import { unitTest } from './unit-test.js';
import { incremental } from './incremental.js';
import { snapshot } from './snapshot.js';
import { view } from './view.js';

const STRATEGIES: Record<string, Materialization> = { view, table, incremental, seed, snapshot, test, unit_test: unitTest,
  // A loader in CDC mode reads a change stream; every other loader, rows (loader.ts).
  // Loaded when a loader runs: they bring the source systems' drivers (pg,
  // DuckDB for files), which a compile or a run without loaders never needs.
  loader: { run: async (ctx) => (ctx.node.config.loader?.cdc ? (await import('./loader-cdc.js')).loaderCdc.run(ctx) : (await import('./loader.js')).loader.run(ctx)) },
};

/**
 * Starts loading the modules the loaders among `nodes` run with (their source
 * systems' drivers), as the run starts: compiled while the target opens and
 * records the run's start, rather than once the first loader runs. Nothing
 * else is done; an error is left to the loader's own import to report.
 */
export function preloadFor(nodes: Iterable<ManifestNode | undefined>): void {
  for (const node of nodes) {
    if (node?.config.materialized !== 'loader') continue;
    (node.config.loader?.cdc ? import('./loader-cdc.js') : import('./loader.js')).catch(() => undefined);
  }
}

export function materializationFor(materialized: string): Materialization | undefined {
  return STRATEGIES[materialized];
}

export type { Materialization, MaterializationContext } from './materialization.js';
