// The registry of materialization strategies, by `materialized`.

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

export function materializationFor(materialized: string): Materialization | undefined {
  return STRATEGIES[materialized];
}

export type { Materialization, MaterializationContext } from './materialization.js';
