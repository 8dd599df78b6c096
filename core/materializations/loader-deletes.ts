// Hard deletes without CDC (`incremental: { cursor, primary_key, deletes: detect }`
// on a Postgres source): a cursor sees inserts and updates, never a row that
// is gone. So each incremental run also reads every key at the source (the
// primary-key columns only, in the same snapshot as the changed rows, streamed
// into a table staged on the target), and the engine finds the raw table's
// rows whose key is not among them (an anti join). Those keys join the changed
// rows as deletions (a flag), and the whole is applied as one delete+insert by
// key with the watermark: one transaction (Delta: one commit), so the rows
// that left and the rows that changed are published together or not at all.
// What it costs: the keys cross the wire every run (a key column is a small
// share of a row), and the target's key column is scanned once.

import type { Relation, StagedTable } from '../../adapters/adapter.js';
import { internalName } from '../../adapters/dialect.js';
import { countedSource, type Extractor, type SourceColumn } from '../extract/extractor.js';
import type { MaterializationContext } from './materialization.js';

/** The column of the staged rows that says the row's key is gone at the source. */
export const GONE = 'etl_key_gone';

/** Every key at the source, staged on the target (transient): read in the extractor's snapshot, counted into `bytes`. */
export async function stageSourceKeys(ctx: MaterializationContext, extractor: Extractor, relation: Relation, columns: SourceColumn[], key: string[], count: (bytes: number) => void): Promise<StagedTable> {
  const { adapter, session } = ctx;
  const keyColumns = key.map((k) => columns.find((c) => c.name === k)!);
  const counted = countedSource(extractor.extract({ columns: keyColumns }), count);
  const into = { schema: relation.schema, name: internalName(adapter.dialect, relation.name, '__etl_keys') };
  return adapter.stageCsv(session, into, keyColumns.map((c) => ({ name: c.name, type: adapter.dialect.typeFromPostgres(c.type) })), counted, { transient: true });
}

/**
 * The changed rows (staged) and, flagged GONE, the keys of the raw table's
 * rows that are not among the source's keys; `deleted`: how many those are.
 * A row whose key is NULL is never taken for deleted (NULL matches nothing).
 */
export async function stageWithDeletes(ctx: MaterializationContext, relation: Relation, changed: StagedTable, keys: StagedTable, columns: SourceColumn[], key: string[]): Promise<{ staged: StagedTable; deleted: number }> {
  const { adapter, session } = ctx;
  const d = adapter.dialect;
  const q = d.quoteIdentifier;
  const rel = (r: Relation) => d.relation(r.schema, r.name);
  const sql =
    `select ${columns.map((c) => q(c.name)).join(', ')}, false as ${q(GONE)} from ${rel(changed.relation)}\n` +
    // Typed NULLs: a union with an untyped NULL loses a type's modifier on Postgres (numeric(12,2) becomes numeric).
    `union all\n` +
    `select ${columns.map((c) => (key.includes(c.name) ? `etl_target.${q(c.name)}` : `cast(null as ${d.typeFromPostgres(c.type)}) as ${q(c.name)}`)).join(', ')}, true as ${q(GONE)} from ${rel(relation)} as etl_target\n` +
    // The anti join as a left join keeping the unmatched (DuckDB runs it 2-3x faster than NOT EXISTS; Postgres plans both as a hash anti join).
    ` left join ${rel(keys.relation)} as etl_source_keys on ${key.map((k) => `etl_source_keys.${q(k)} = etl_target.${q(k)}`).join(' and ')}\n` +
    ` where etl_source_keys.${q(key[0]!)} is null and ${key.map((k) => `etl_target.${q(k)} is not null`).join(' and ')}`;
  const staged = await adapter.stageTable(session, { schema: relation.schema, name: internalName(d, relation.name, '__etl_deletes') }, sql, { transient: true });
  return { staged, deleted: (staged.rows ?? 0) - (changed.rows ?? 0) };
}
