// What incremental and microbatch models share: whether this run builds the
// whole table, and the state record of the model's watermark.

import type { StateRecord } from '../state/state.js';
import { relationOf, type MaterializationContext } from './materialization.js';
import type { Relation } from '../../adapters/adapter.js';

export function wantsFullBuild(ctx: MaterializationContext, existing: 'table' | 'view' | undefined): boolean {
  if (!existing || existing === 'view') return true;
  // full_refresh: false protects a model from --full-refresh, as in dbt.
  if (ctx.node.config.full_refresh === false) return false;
  return ctx.fullRefresh || ctx.node.config.full_refresh === true;
}

/** The model's watermark record, if it has an event_time; `newRows`: the staged rows an incremental run applies. */
export function watermarkFor(ctx: MaterializationContext, newRows?: Relation): StateRecord[] {
  const { node } = ctx;
  if (!node.config.event_time) return [];
  return [{ kind: 'watermark', relation: relationOf(node), uniqueId: node.unique_id, eventTimeColumn: node.config.event_time, runId: ctx.runId, at: ctx.clock.now().toISOString(), newRows }];
}
