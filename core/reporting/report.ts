// `etl report` as text: the period's totals against the one before, the
// budget, and the groups ranked by cost then time.

import type { CostReport } from '../history/report.js';
import { formatBytes } from './history.js';
import { formatTable } from './table.js';

const day = (iso: string) => iso.slice(0, 10);
const pct = (v: number | null) => (v === null ? '' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`);
const rate = (v: number | null) => (v === null ? '' : `${(v * 100).toFixed(1)}%`);
const secs = (v: number | null) => (v === null ? null : Number(v.toFixed(2)));

export function formatReport(r: CostReport, limit = 20): string {
  const money = (v: number) => `${v.toFixed(v >= 1 || v === 0 ? 2 : 4)} ${r.rates.currency}`;
  const duration = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(2)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);
  const c = r.current;
  const lines = [
    `Report ${day(r.since)} to ${day(r.until)} (previous period from ${day(r.previous_since)}), by ${r.by}`,
    `Runs: ${c.runs} (${c.succeeded} succeeded, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''}; success rate ${rate(c.success_rate) || 'n/a'}), previous period ${r.previous.runs}`,
    `Node runs: ${c.node_runs}, ${c.node_failures} failed; time ${duration(c.seconds)} (${pct(r.seconds_trend_pct) || 'no previous'}); cost ${money(c.cost)} (${pct(r.cost_trend_pct) || 'no previous'})`,
  ];
  if (r.budget) {
    const b = r.budget;
    lines.push(`Budget ${b.month}: ${money(b.month_to_date)} of ${money(b.monthly)} (${rate(b.share)}; alert at ${rate(b.alert_at)})${b.over_alert ? ' OVER ALERT THRESHOLD' : ''}`);
  }
  lines.push('');
  const shown = r.groups.slice(0, limit);
  // Loaders among the groups: the rows they loaded and rejected.
  const loads = shown.some((g) => g.rows_loaded !== null);
  const rows = shown.map((g) => [
    g.group,
    g.runs,
    rate(g.success_rate),
    g.failed,
    g.retries,
    secs(g.seconds),
    secs(g.p50_seconds),
    secs(g.p95_seconds),
    g.bytes_written ? formatBytes(g.bytes_written) : '',
    ...(loads ? [g.rows_loaded, g.rows_rejected] : []),
    Number(g.cost.toFixed(4)),
    pct(g.cost_trend_pct),
    pct(g.seconds_trend_pct),
  ]);
  lines.push(formatTable([r.by, 'runs', 'success', 'failed', 'retries', 'seconds', 'p50 s', 'p95 s', 'written', ...(loads ? ['loaded', 'rejected'] : []), `cost (${r.rates.currency})`, 'cost trend', 'time trend'], rows, 50));
  if (r.groups.length > limit) lines.push(`(${r.groups.length - limit} more; --limit 0 for all, or --output json)`);
  return lines.join('\n');
}
