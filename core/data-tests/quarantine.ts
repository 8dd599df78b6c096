// Quarantine: with `quarantine: true`, rows of a model that fail its
// row-level tests (not_null, accepted_values, expression_is_true,
// relationships) move to <model>__quarantine, tagged with the tests they
// failed and the run id, and the rest is published. `quarantine_max` ("5%" or
// a row count) fails the build above that threshold, before anything moves.

import type { Adapter, AdapterSession, StagedTable } from '../../adapters/adapter.js';
import type { Manifest, ManifestNode } from '../compiler/manifest.js';
import { ROW_ALIAS } from './generic.js';

export class QuarantineLimitError extends Error {}

export function quarantineRelationName(node: ManifestNode): string {
  return `${node.alias}__quarantine`;
}

/** The row-level tests attached to a model, with their failing-row predicates. */
export function rowLevelTests(manifest: Manifest, node: ManifestNode): ManifestNode[] {
  return (manifest.child_map[node.unique_id] ?? [])
    .map((id) => manifest.nodes[id]!)
    .filter((t) => t && t.resource_type === 'test' && t.attached_node === node.unique_id && t.row_condition);
}

export async function quarantineRows(
  adapter: Adapter,
  session: AdapterSession,
  manifest: Manifest,
  node: ManifestNode,
  staged: StagedTable,
  runId: string,
): Promise<number> {
  const tests = rowLevelTests(manifest, node);
  if (tests.length === 0) return 0;
  const d = adapter.dialect;
  const rel = d.relation(staged.relation.schema, staged.relation.name);
  const failing = tests.map((t) => `coalesce((${t.row_condition}), false)`);
  const anyFailing = failing.join(' or ');
  const counted = await session.query(`select count(*) from ${rel} as ${ROW_ALIAS} where ${anyFailing}`);
  const bad = Number(counted.rows[0]?.[0] ?? 0);
  if (bad === 0) return 0;
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
  const qrel = d.relation(node.schema, quarantineRelationName(node));
  const labels = tests.map((t, i) => `case when ${failing[i]} then ${d.quoteString(t.test_metadata?.name ? `${t.test_metadata.name}${t.column_name ? `(${t.column_name})` : ''}` : t.name)} end`);
  const select = `select ${ROW_ALIAS}.*, concat_ws(', ', ${labels.join(', ')}) as etl_failed_tests, ${d.quoteString(runId)} as etl_run_id, current_timestamp as etl_quarantined_at from ${rel} as ${ROW_ALIAS} where ${anyFailing}`;
  await session.execute(`create table if not exists ${qrel} as ${select} limit 0`);
  // Moving rows is one transaction: they are in the quarantine table or in the model, never both.
  await session.execute('begin');
  try {
    await session.execute(`insert into ${qrel} ${select}`);
    await session.execute(`delete from ${rel} as ${ROW_ALIAS} where ${anyFailing}`);
    await session.execute('commit');
  } catch (err) {
    await session.execute('rollback').catch(() => undefined);
    throw err;
  }
  return bad;
}
