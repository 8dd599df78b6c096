// What incremental and microbatch models share: whether this run builds the
// whole table, and the statement that records the model's watermark.

import { watermarkStatement } from '../state/state.js';
import { relationOf, type MaterializationContext } from './materialization.js';
import type { Relation } from '../../adapters/adapter.js';

export function wantsFullBuild(ctx: MaterializationContext, existing: 'table' | 'view' | undefined): boolean {
  if (!existing || existing === 'view') return true;
  // full_refresh: false protects a model from --full-refresh, as in dbt.
  if (ctx.node.config.full_refresh === false) return false;
  return ctx.fullRefresh || ctx.node.config.full_refresh === true;
}

/** The statement recording the model's watermark; `newRows`: the staged rows an incremental run applies (see watermarkStatement). */
export function watermarkFor(ctx: MaterializationContext, newRows?: Relation) {
  const { node, adapter } = ctx;
  if (!node.config.event_time) return [];
  const relation = relationOf(node);
  return [
    watermarkStatement(
      adapter.dialect.relation(relation.schema, relation.name),
      `${relation.schema}.${relation.name}`,
      node.unique_id,
      adapter.dialect.quoteIdentifier(node.config.event_time),
      node.config.event_time,
      ctx.runId,
      newRows && adapter.dialect.relation(newRows.schema, newRows.name),
    ),
  ];
}
