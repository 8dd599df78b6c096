// Quarantine: with `quarantine: true`, rows of a model that fail its
// row-level tests (not_null, accepted_values, expression_is_true,
// relationships) move to <model>__quarantine, tagged with the tests they
// failed and the run id, and the rest is published. `quarantine_max` ("5%" or
// a row count) fails the build above that threshold, before anything moves.
// The move itself is done by the adapter in the publish's own transaction
// (a RowMove): a failed publish moves nothing, so a rerun quarantines once.

import type { Adapter, AdapterSession, RowMove, StagedTable } from '../../../adapters/adapter.js';
import type { Manifest, ManifestNode } from '../../compiler/manifest.js';
import { graphOfManifest } from '../../graph/graph.js';
import { ROW_ALIAS } from '../generic.js';

export class QuarantineLimitError extends Error {}

export function quarantineRelationName(node: ManifestNode): string {
  return `${node.alias}__quarantine`;
}

/** The row-level tests attached to a model, with their failing-row predicates. */
export function rowLevelTests(manifest: Manifest, node: ManifestNode): ManifestNode[] {
  return (graphOfManifest(manifest).children.get(node.unique_id) ?? [])
    .map((id) => manifest.nodes[id]!)
    .filter((t) => t && t.resource_type === 'test' && t.attached_node === node.unique_id && t.row_condition);
}

export interface QuarantinePlan {
  /** Rows that fail a row-level test. */
  count: number;
  /** The move to hand to publishTable / applyIncremental; none when no row fails. */
  move?: RowMove;
}

/** Counts the staged rows that fail row-level tests and checks quarantine_max; moves nothing. */
export async function planQuarantine(adapter: Adapter, session: AdapterSession, manifest: Manifest, node: ManifestNode, staged: StagedTable, runId: string, at: Date): Promise<QuarantinePlan> {
  const tests = rowLevelTests(manifest, node);
  if (tests.length === 0) return { count: 0 };
  const d = adapter.dialect;
  const rel = d.relation(staged.relation.schema, staged.relation.name);
  const failing = tests.map((t) => `coalesce((${t.row_condition}), false)`);
  const anyFailing = failing.join(' or ');
  const counted = await session.query(`select count(*) from ${rel} as ${ROW_ALIAS} where ${anyFailing}`);
  const bad = Number(counted.rows[0]?.[0] ?? 0);
  if (bad === 0) return { count: 0 };
  const total = staged.rows ?? Number((await session.query(`select count(*) from ${rel}`)).rows[0]?.[0] ?? 0);
  const limit = node.config.quarantine_max;
  if (limit !== undefined) {
    const text = String(limit).trim();
    const max = text.endsWith('%') ? (Number(text.slice(0, -1)) / 100) * total : Number(text);
    if (bad > max) {
      throw new QuarantineLimitError(
        `${bad} of ${total} rows of ${node.name} fail row-level tests, above quarantine_max ${text}; nothing was published and the previous version is kept`,
      );
    }
  }
  const labels = tests.map((t, i) => `case when ${failing[i]} then ${d.quoteString(t.test_metadata?.name ? `${t.test_metadata.name}${t.column_name ? `(${t.column_name})` : ''}` : t.name)} end`);
  return {
    count: bad,
    move: {
      into: { schema: node.schema, name: quarantineRelationName(node) },
      alias: ROW_ALIAS,
      columns: `${ROW_ALIAS}.*, concat_ws(', ', ${labels.join(', ')}) as etl_failed_tests, ${d.quoteString(runId)} as etl_run_id, cast(${d.quoteString(at.toISOString())} as timestamp with time zone) as etl_quarantined_at`,
      where: anyFailing,
    },
  };
}
