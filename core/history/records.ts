// A run's results as the audit trail's rows: one per node and attempt, with
// its duration, the rows and bytes the engine reported, what a loader moved
// (rows read, loaded, rejected, deleted, rows/s), and the relations it read
// (with their rows when this run built them).

import type { Relation } from '../../adapters/adapter.js';
import type { Manifest } from '../compiler/manifest.js';
import type { NodeResult } from '../runner/events.js';
import { LOAD_COLUMNS, type NodeRunRecord, type UpstreamRead } from '../state/state.js';

/** The relations the nodes of `results` read (their parents and sources), once each, keyed by relation_name. */
export function upstreamRelations(manifest: Manifest, results: NodeResult[]): Map<string, Relation> {
  const out = new Map<string, Relation>();
  for (const r of results) {
    for (const parent of manifest.nodes[r.unique_id]?.depends_on.nodes ?? []) {
      const n = manifest.nodes[parent];
      const s = manifest.sources[parent];
      if (n?.relation_name) out.set(n.relation_name, { schema: n.schema, name: n.alias });
      else if (s?.relation_name) out.set(s.relation_name, { schema: s.schema, name: s.identifier });
    }
  }
  return out;
}

function upstreamOf(manifest: Manifest, id: string, byId: Map<string, NodeResult>, versions?: Map<string, number>): UpstreamRead[] {
  const node = manifest.nodes[id];
  if (!node) return [];
  // One read per relation: a loaded source is two parents (the source and its loader) of one table.
  const out = new Map<string, UpstreamRead>();
  for (const parent of node.depends_on.nodes) {
    const p = manifest.nodes[parent] ?? manifest.sources[parent];
    if (!p?.relation_name) continue;
    const built = byId.get(parent);
    const read: UpstreamRead = built && built.status === 'success' ? { relation: p.relation_name, rows: built.rows_affected } : { relation: p.relation_name };
    const version = versions?.get(p.relation_name);
    if (version !== undefined) read.version = version;
    if (!out.has(p.relation_name) || read.rows !== undefined) out.set(p.relation_name, read);
  }
  return [...out.values()];
}

type LoadCounts = Pick<NodeRunRecord, (typeof LOAD_COLUMNS)[number]>;
const NO_LOAD = Object.fromEntries(LOAD_COLUMNS.map((c) => [c, null])) as LoadCounts;

/** What a loader moved, as its run_results entry reports it (null for every other node). */
function loadCounts(r: NodeResult): LoadCounts {
  const a = r.adapter_response;
  return Object.fromEntries(LOAD_COLUMNS.map((c) => [c, a[c] ?? null])) as LoadCounts;
}

/** `versions`: the table version of each upstream relation, by relation_name, where the engine versions tables (Delta). */
export function nodeRunRecords(manifest: Manifest, results: NodeResult[], versions?: Map<string, number>): NodeRunRecord[] {
  const byId = new Map(results.map((r) => [r.unique_id, r]));
  const out: NodeRunRecord[] = [];
  for (const r of results) {
    const upstream = upstreamOf(manifest, r.unique_id, byId, versions);
    const last: NodeRunRecord = {
      unique_id: r.unique_id,
      relation: r.relation_name,
      status: r.status,
      started_at: r.timing[0]?.started_at ?? null,
      finished_at: r.timing[0]?.completed_at ?? null,
      rows_affected: r.rows_affected,
      message: r.message,
      attempt: 1,
      execution_time: r.status === 'skipped' ? null : r.execution_time,
      bytes_written: r.adapter_response.bytes_written ?? null,
      bytes_scanned: r.adapter_response.bytes_scanned ?? null,
      ...loadCounts(r),
      upstream,
    };
    if (!r.attempts?.length) {
      out.push(last);
      continue;
    }
    // Every attempt but the last failed; the last is the node's outcome.
    for (const a of r.attempts.slice(0, -1)) {
      out.push({ ...last, ...NO_LOAD, status: a.status, started_at: a.started_at, finished_at: a.completed_at, rows_affected: null, message: a.message ?? '', attempt: a.attempt, execution_time: a.execution_time, bytes_written: null, bytes_scanned: null });
    }
    const final = r.attempts.at(-1)!;
    out.push({ ...last, started_at: final.started_at, finished_at: final.completed_at, attempt: final.attempt, execution_time: final.execution_time });
  }
  return out;
}
