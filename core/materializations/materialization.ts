// One strategy per materialization, behind one interface. Adding a kind means
// adding a module and a line in the registry, not editing a switch elsewhere.

import type { Adapter, AdapterSession, MaterializeResult, Relation } from '../../adapters/adapter.js';
import type { Clock } from '../clock.js';
import type { Manifest, ManifestNode } from '../compiler/manifest.js';

export interface MaterializationContext {
  node: ManifestNode;
  manifest: Manifest;
  adapter: Adapter;
  session: AdapterSession;
  fullRefresh: boolean;
  /** Identifies this run (quarantined rows, state records). */
  runId: string;
  signal?: AbortSignal;
  /** Microbatch: process exactly this event-time range (--event-time-start/--event-time-end). */
  batchRange?: { start: string; end: string };
  /** Microbatch: rerun exactly these batches (etl retry). */
  retryBatches?: Array<[string, string]>;
  /** etl retry: the run retried; a change it committed is not applied again (IncrementalChange.commitId). */
  retriedRun?: string;
  /** The run's clock (core/clock.ts): microbatch bounds, snapshot versions, quarantine and state times. */
  clock: Clock;
}

export interface Materialization {
  /** Builds the node; must leave the previous relation intact on failure. */
  run(ctx: MaterializationContext): Promise<MaterializeResult>;
}

export function relationOf(node: ManifestNode): Relation {
  return { schema: node.schema, name: node.alias };
}
