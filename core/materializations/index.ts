// The registry of materialization strategies, by `materialized`.

import type { Materialization } from './materialization.js';
import { seed } from './seed.js';
import { table } from './table.js';
import { test } from './test.js';
import { unitTest } from './unit-test.js';
import { incremental } from './incremental.js';
import { snapshot } from './snapshot.js';
import { view } from './view.js';
import { loader } from './loader.js';
import { loaderCdc } from './loader-cdc.js';

const STRATEGIES: Record<string, Materialization> = { view, table, incremental, seed, snapshot, test, unit_test: unitTest,
  // A loader in CDC mode reads a change stream; every other loader, rows (loader.ts).
  loader: { run: (ctx) => (ctx.node.config.loader?.cdc ? loaderCdc.run(ctx) : loader.run(ctx)) },
};

export function materializationFor(materialized: string): Materialization | undefined {
  return STRATEGIES[materialized];
}

export type { Materialization, MaterializationContext } from './materialization.js';
