// Creates the adapter for a target. Engine modules are imported lazily, so a
// compile never loads a database driver.

import type { TargetConfig } from '../core/project/load.js';
import { RunError } from '../core/errors.js';
import type { Adapter } from './adapter.js';
import { dialectFor } from './dialect.js';

export interface AdapterOptions {
  /** Only reads (show, debug): an embedded database is neither created nor locked for writing. */
  readOnly?: boolean;
}

export async function createAdapter(target: TargetConfig, projectRoot: string, options: AdapterOptions = {}): Promise<Adapter> {
  switch (target.type) {
    case 'duckdb': {
      const { DuckDbAdapter } = await import('./duckdb/adapter.js');
      return new DuckDbAdapter(target, projectRoot, options);
    }
    case 'postgres': {
      const { PostgresAdapter } = await import('./postgres/adapter.js');
      return new PostgresAdapter(target, projectRoot, { lockTargetSchema: !options.readOnly });
    }
    case 'delta': {
      const { DeltaAdapter } = await import('./delta/adapter.js');
      return new DeltaAdapter(target, projectRoot, options);
    }
    default: {
      const unknown = target as { name: string; type: string };
      throw new RunError(`target ${unknown.name}: the ${unknown.type} adapter is not available yet`, 2);
    }
  }
}

/** Whether open() creates nothing (see Dialect.opensWithoutWriting). */
export function opensWithoutWriting(target: TargetConfig): boolean {
  return dialectFor(target.type).opensWithoutWriting;
}

export type { Adapter } from './adapter.js';
