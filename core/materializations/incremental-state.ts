// What incremental and microbatch models share: whether this run builds the
// whole table, and the statement that records the model's watermark.

import { watermarkStatement } from '../state/state.js';
import { relationOf, type MaterializationContext } from './materialization.js';

export function wantsFullBuild(ctx: MaterializationContext, existing: 'table' | 'view' | undefined): boolean {
  if (!existing || existing === 'view') return true;
  // full_refresh: false protects a model from --full-refresh, as in dbt.
  if (ctx.node.config.full_refresh === false) return false;
  return ctx.fullRefresh || ctx.node.config.full_refresh === true;
}

export function watermarkFor(ctx: MaterializationContext) {
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
    ),
  ];
}
