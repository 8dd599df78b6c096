// Loader nodes: extract from a source system and load the source's raw table.
// The rows stream from the source (core/extract/) into a table staged on the
// target (adapter.stageCsv), which is then checked and published in one
// atomic step: a full load swaps it in (publishTable), an incremental one
// merges it by the primary key (applyIncremental); the watermark (max of the
// cursor) commits with the data. A failure leaves the previous table as it
// was. Deletes at the source are seen by a full load only.

import { Transform } from 'node:stream';
import type { AdapterSession, MaterializeResult } from '../../adapters/adapter.js';
import type { LoaderSpec, ManifestNode } from '../compiler/manifest.js';
import { RunError } from '../errors.js';
import { extractorFor, lookbackAmount, type SourceColumn } from '../extract/extractor.js';
import { storedWatermark, type StateRecord } from '../state/state.js';
import { formatBytes } from '../reporting/bytes.js';
import { relationOf, type Materialization, type MaterializationContext } from './materialization.js';
import { explainSchemaChangeFailure, planSchemaChange } from './schema-change.js';

/** What one load moved, for the run output, run_results and history. */
export interface LoadStats {
  rows_read: number;
  rows_loaded: number;
  rows_rejected: number;
  bytes: number;
  seconds: number;
  rows_per_second: number;
}

export const loader: Materialization = {
  run: async (ctx): Promise<MaterializeResult> => {
    const { adapter, session, node } = ctx;
    const spec = node.config.loader!;
    const relation = relationOf(node);
    const t0 = performance.now();
    // The source's connection and description are made while the target is asked what it holds.
    const extractor = extractorFor(spec, ctx.manifest.metadata.project_root, process.env);
    const described = extractor.open().then(() => extractor.columns());
    described.catch(() => undefined);
    const incremental = spec.incremental;
    const refresh = node.config.full_refresh === false ? false : ctx.fullRefresh || node.config.full_refresh === true;
    let existing;
    let since: { cursor: string; value: string; lookback: number } | undefined;
    let bytes = 0;
    let staged;
    try {
      existing = await adapter.relationKind(session, relation);
      const stored = incremental && existing === 'table' && !refresh ? await storedWatermark(adapter, session, relation) : undefined;
      since = incremental && stored?.value != null && stored.column === incremental.cursor ? { cursor: incremental.cursor, value: stored.value, lookback: lookbackAmount(incremental.lookback) } : undefined;
      const columns = await described;
      checkColumns(spec, columns);
      const counted = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          done(null, chunk);
        },
      });
      const rows = extractor.extract({ columns, since });
      rows.on('error', (err) => counted.destroy(err));
      const targetColumns = columns.map((c) => ({ name: c.name, type: adapter.dialect.typeFromPostgres(c.type) }));
      staged = await adapter.stageCsv(session, relation, targetColumns, rows.pipe(counted), { transient: since !== undefined });
    } finally {
      await described.catch(() => undefined);
      await extractor.close();
    }
    const merging = since !== undefined;

    let loaded: number;
    let changes = 0;
    try {
      if (incremental) await checkUniqueKey(session, adapter.dialect.quoteIdentifier, adapter.dialect.relation(staged.relation.schema, staged.relation.name), spec, incremental.primary_key);
      const state: StateRecord[] = incremental ? [{ kind: 'watermark', relation, uniqueId: node.unique_id, eventTimeColumn: incremental.cursor, runId: ctx.runId, newRows: merging ? staged.relation : undefined }] : [];
      if (!merging) {
        await adapter.publishTable(session, staged, relation, { state });
        loaded = staged.rows ?? 0;
      } else {
        const plan = await planSchemaChange(adapter, session, loaderSchemaNode(node), relation, staged.relation);
        changes = plan.changes.length;
        try {
          const applied = await adapter.applyIncremental(session, { strategy: 'merge', target: relation, staged: staged.relation, columns: plan.columns, uniqueKey: incremental!.primary_key, columnChanges: plan.changes, state });
          loaded = applied.rowsAffected;
        } catch (err) {
          throw explainSchemaChangeFailure(node, plan, err);
        }
        await adapter.discardStaged(session, staged);
      }
    } catch (err) {
      await adapter.discardStaged(session, staged);
      throw err;
    }
    const seconds = (performance.now() - t0) / 1000;
    const read = staged.rows ?? loaded;
    const stats: LoadStats = { rows_read: read, rows_loaded: loaded, rows_rejected: 0, bytes, seconds: round(seconds, 3), rows_per_second: Math.round(read / Math.max(seconds, 1e-3)) };
    const how = merging ? `MERGE since ${since!.value}` : existing ? (incremental && refresh ? 'FULL REFRESH' : 'FULL LOAD') : 'CREATE TABLE';
    return {
      rowsAffected: loaded,
      message: `${how} (${read} rows read, ${loaded} loaded, ${formatBytes(bytes)}, ${stats.rows_per_second} rows/s${changes ? `, ${changes} column change${changes === 1 ? '' : 's'}` : ''})`,
      stats: { ...stats },
    };
  },
};

/** The cursor and the primary key must be columns at the source: an error names the source and its yml line. */
function checkColumns(spec: LoaderSpec, columns: SourceColumn[]): void {
  if (!spec.incremental) return;
  const names = columns.map((c) => c.name);
  const wanted = [['cursor', [spec.incremental.cursor]] as const, ['primary_key', spec.incremental.primary_key] as const];
  for (const [key, list] of wanted) {
    const missing = list.filter((c) => !names.includes(c));
    if (missing.length) {
      throw new RunError(
        `loader of source ${spec.source} (${spec.declared_at}): incremental.${key} ${missing.map((m) => `"${m}"`).join(', ')} is not a column at the source; its columns: ${names.join(', ')}\n  hint: name one of its columns, or add the column to ${spec.query !== undefined ? 'the query' : `table ${spec.table}`}; the raw table is unchanged`,
      );
    }
  }
}

/** A primary key that is not unique in the extracted rows would merge arbitrarily: refused, naming the keys. */
async function checkUniqueKey(session: AdapterSession, quote: (s: string) => string, staged: string, spec: LoaderSpec, key: string[]): Promise<void> {
  const cols = key.map(quote).join(', ');
  const dup = await session.query(`select ${cols}, count(*) as n from ${staged} group by ${cols} having count(*) > 1 order by count(*) desc limit 5`);
  if (dup.rows.length === 0) return;
  const shown = dup.rows.map((r) => `${key.length > 1 ? `(${r.slice(0, key.length).map(String).join(', ')})` : String(r[0])} x${String(r[key.length])}`).join(', ');
  throw new RunError(
    `loader of source ${spec.source} (${spec.declared_at}): primary_key ${key.join(', ')} is not unique in the extracted rows: ${shown}${dup.rows.length === 5 ? ', ...' : ''}\n  hint: fix the key at the source or name the columns that identify a row; the raw table is unchanged`,
  );
}

/** on_schema_change of a loader: new columns are added by default (core/materializations/schema-change.ts decides). */
function loaderSchemaNode(node: ManifestNode): ManifestNode {
  return { ...node, config: { ...node.config, on_schema_change: node.config.on_schema_change ?? 'append_new_columns' } };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
