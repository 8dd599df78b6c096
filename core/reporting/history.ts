// `etl history` as text: one line per run (what ran, by whom, from which
// commit, how it ended), or with a selection one line per node attempt (with
// loaders among them, rows read, loaded, rejected, deleted and rows/s).

import type { HistoryRows } from '../state/state.js';
import { formatTable } from './table.js';

const shortTime = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');
const seconds = (from: string | null, to: string | null) => (from && to ? Number(((Date.parse(to) - Date.parse(from)) / 1000).toFixed(2)) : null);

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

/** Runs, newest first, with their nodes' outcomes counted. */
export function formatRuns(h: HistoryRows): string {
  const counts = new Map<string, Record<string, number>>();
  for (const n of h.node_runs) {
    // A node's outcome is its last attempt; earlier ones are retries.
    const c = counts.get(n.run_id) ?? {};
    counts.set(n.run_id, c);
    c[n.status] = (c[n.status] ?? 0) + (n.status === 'error' && h.node_runs.some((m) => m.run_id === n.run_id && m.unique_id === n.unique_id && m.attempt > n.attempt) ? 0 : 1);
  }
  const rows = h.runs.map((r) => {
    const c = counts.get(r.run_id) ?? {};
    const ok = (c.success ?? 0) + (c.pass ?? 0);
    const bad = (c.error ?? 0) + (c.fail ?? 0);
    const nodes = r.status === 'skipped' ? '' : `${ok} ok${bad ? `, ${bad} failed` : ''}${c.skipped ? `, ${c.skipped} skipped` : ''}`;
    const commit = r.git_commit ? `${r.git_commit.slice(0, 8)}${r.git_dirty ? '+dirty' : ''}` : '';
    return [shortTime(r.started_at), r.run_id.slice(0, 8), [r.command, r.selection].filter(Boolean).join(' '), r.job ?? '', r.status, nodes, seconds(r.started_at, r.finished_at), [r.user, r.host].filter(Boolean).join('@'), commit, r.message ?? ''];
  });
  return formatTable(['started (UTC)', 'run', 'command', 'job', 'status', 'nodes', 'seconds', 'by', 'commit', 'message'], rows, 60);
}

/** Node attempts, newest first; with loaders among them, what each load moved. */
export function formatNodeRuns(h: HistoryRows): string {
  const loads = h.node_runs.some((n) => n.rows_read !== null);
  const rows = h.node_runs.map((n) => [
    shortTime(n.started_at),
    n.run_id.slice(0, 8),
    n.unique_id.split('.').slice(2).join('.'),
    n.attempt,
    n.status,
    n.rows_affected,
    ...(loads ? [n.rows_read, n.rows_loaded, n.rows_rejected, n.rows_deleted, n.rows_per_second] : []),
    formatBytes(n.bytes_written),
    n.execution_time === null ? null : Number(n.execution_time.toFixed(2)),
    n.upstream
      .map((u) => {
        const facts = [u.rows !== undefined && u.rows !== null ? `${u.rows} rows` : '', u.version !== undefined && u.version !== null ? `v${u.version}` : ''].filter(Boolean);
        return `${u.relation}${facts.length ? ` (${facts.join(', ')})` : ''}`;
      })
      .join(', '),
    n.status === 'success' || n.status === 'pass' ? '' : n.message.split('\n')[0]!,
  ]);
  const loadHeads = loads ? ['rows read', 'loaded', 'rejected', 'deleted', 'rows/s'] : [];
  return formatTable(['started (UTC)', 'run', 'node', 'attempt', 'status', 'rows', ...loadHeads, 'written', 'seconds', 'read', 'message'], rows, 60);
}
