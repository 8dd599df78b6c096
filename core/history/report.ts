// `etl report`: cost and time from the run history. For each model (or tag,
// folder, job): runs, success rate, failures, retries, p50/p95 duration,
// time, bytes, rows loaded and rejected (loaders) and cost in the period, and the trend against the period
// before it. Cost is computed from the history's durations and bytes with
// the rates of etl.yml `cost:` as they are now. The engine aggregates
// (the state API's historyReport); this module only ranks and compares.
// Also the budget check after a run (`budget: { monthly, alert_at }`).

import path from 'node:path';
import { createAdapter } from '../../adapters/index.js';
import type { Adapter, AdapterSession } from '../../adapters/adapter.js';
import type { ProjectOptions } from '../api.js';
import { runClock } from '../clock.js';
import type { Manifest } from '../compiler/manifest.js';
import { scanProject, type ProjectScan } from '../project/load.js';
import type { CostRates, ReportGroupRow, ReportQuery, ReportRows } from '../state/state.js';
import { costConfig, type CostConfig } from './cost.js';

// Pricing lives in cost.ts (the docs site prices runs too, without loading this module's adapters).
export { costConfig, costOf, type CostConfig } from './cost.js';

export type ReportBy = 'model' | 'tag' | 'folder' | 'job';

export interface BudgetConfig {
  monthly: number;
  alert_at: number;
}

/** etl.yml `budget:` with its default alert_at (0.8). */
export function budgetConfig(file: { budget?: { monthly: number; alert_at?: number } }): BudgetConfig | undefined {
  return file.budget ? { monthly: file.budget.monthly, alert_at: file.budget.alert_at ?? 0.8 } : undefined;
}

export interface GroupReport {
  group: string;
  /** Node runs (a node's last attempt in a run). */
  runs: number;
  succeeded: number;
  failed: number;
  /** succeeded / runs; null with no runs. */
  success_rate: number | null;
  /** Attempts after the first. */
  retries: number;
  seconds: number;
  p50_seconds: number | null;
  p95_seconds: number | null;
  bytes_written: number;
  bytes_scanned: number;
  /** Loaders: rows loaded and rejected in the period (null for groups without a recorded load). */
  rows_loaded: number | null;
  rows_rejected: number | null;
  cost: number;
  previous: { runs: number; failed: number; seconds: number; cost: number } | null;
  /** Change against the previous period, in %; null when it had none. */
  cost_trend_pct: number | null;
  seconds_trend_pct: number | null;
}

export interface PeriodTotals {
  runs: number;
  succeeded: number;
  failed: number;
  skipped: number;
  success_rate: number | null;
  node_runs: number;
  node_failures: number;
  seconds: number;
  cost: number;
}

export interface CostReport {
  since: string;
  until: string;
  previous_since: string;
  by: ReportBy;
  rates: CostConfig;
  current: PeriodTotals;
  previous: PeriodTotals;
  cost_trend_pct: number | null;
  seconds_trend_pct: number | null;
  /** Every group with node runs in the period, by cost then time, most first. */
  groups: GroupReport[];
  budget?: BudgetStatus;
}

export interface BudgetStatus {
  month: string;
  month_to_date: number;
  monthly: number;
  alert_at: number;
  /** month_to_date / monthly. */
  share: number;
  over_alert: boolean;
}

const trend = (now: number, before: number | undefined): number | null => (before === undefined || before === 0 ? null : ((now - before) / before) * 100);

function totals(rows: ReportGroupRow[], runs: ReportRows['runs'], period: 'current' | 'previous'): PeriodTotals {
  const mine = rows.filter((r) => r.period === period);
  const r = runs.find((x) => x.period === period);
  const sum = (k: 'nodes' | 'failed' | 'seconds' | 'cost') => mine.reduce((n, x) => n + x[k], 0);
  const done = r ? r.succeeded + r.failed : 0;
  return {
    runs: r?.runs ?? 0,
    succeeded: r?.succeeded ?? 0,
    failed: r?.failed ?? 0,
    skipped: r?.skipped ?? 0,
    success_rate: done ? r!.succeeded / done : null,
    node_runs: sum('nodes'),
    node_failures: sum('failed'),
    seconds: sum('seconds'),
    cost: sum('cost'),
  };
}

/** Groups of each node for --by tag and --by folder (a node with two tags counts in both). */
export function nodeGroups(manifest: Manifest, by: 'tag' | 'folder'): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const node of Object.values(manifest.nodes)) {
    if (by === 'folder') out.push([node.unique_id, path.posix.dirname(node.original_file_path)]);
    else for (const tag of node.tags.length ? node.tags : ['(untagged)']) out.push([node.unique_id, tag]);
  }
  return out;
}

/** The report's figures from the engine's aggregates. */
export function buildReport(rows: ReportRows, meta: { since: string; until: string; previousSince: string; by: ReportBy; rates: CostConfig; names?: (group: string) => string }): CostReport {
  const previous = new Map(rows.groups.filter((g) => g.period === 'previous').map((g) => [g.group, g]));
  const groups: GroupReport[] = rows.groups
    .filter((g) => g.period === 'current')
    .map((g) => {
      const p = previous.get(g.group);
      return {
        group: meta.names ? meta.names(g.group) : g.group,
        runs: g.nodes,
        succeeded: g.succeeded,
        failed: g.failed,
        success_rate: g.nodes ? g.succeeded / g.nodes : null,
        retries: g.retries,
        seconds: g.seconds,
        p50_seconds: g.p50,
        p95_seconds: g.p95,
        bytes_written: g.bytes_written,
        bytes_scanned: g.bytes_scanned,
        rows_loaded: g.rows_loaded,
        rows_rejected: g.rows_rejected,
        cost: g.cost,
        previous: p ? { runs: p.nodes, failed: p.failed, seconds: p.seconds, cost: p.cost } : null,
        cost_trend_pct: trend(g.cost, p?.cost),
        seconds_trend_pct: trend(g.seconds, p?.seconds),
      };
    })
    .sort((a, b) => b.cost - a.cost || b.seconds - a.seconds || a.group.localeCompare(b.group));
  const current = totals(rows.groups, rows.runs, 'current');
  const before = totals(rows.groups, rows.runs, 'previous');
  return {
    since: meta.since,
    until: meta.until,
    previous_since: meta.previousSince,
    by: meta.by,
    rates: meta.rates,
    current,
    previous: before,
    cost_trend_pct: trend(current.cost, before.cost),
    seconds_trend_pct: trend(current.seconds, before.seconds),
    groups,
  };
}

/** The first instant of the month (UTC) of `now`. */
export function monthStart(now: Date): string {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
}

/** Spend this month so far against the budget. */
export async function budgetStatus(adapter: Adapter, session: AdapterSession, budget: BudgetConfig, rates: CostRates, now = new Date()): Promise<BudgetStatus> {
  const since = monthStart(now);
  const rows = await adapter.state.historyReport(session, { since, rates, by: 'total', monthSince: since });
  return budgetOf(budget, since, rows.month_cost ?? 0);
}

function budgetOf(budget: BudgetConfig, month: string, spent: number): BudgetStatus {
  const share = budget.monthly > 0 ? spent / budget.monthly : 0;
  return { month: month.slice(0, 7), month_to_date: spent, monthly: budget.monthly, alert_at: budget.alert_at, share, over_alert: share >= budget.alert_at };
}

export interface ReportOptions extends ProjectOptions {
  /** ISO start of the period (default 30 days back); the previous period is as long, just before it. */
  since?: string;
  by?: ReportBy;
  now?: Date;
}

export async function costReport(options: ReportOptions): Promise<CostReport> {
  const scan: ProjectScan = options.scan ?? scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env ?? process.env });
  const now = options.now ?? runClock(undefined, options.env ?? process.env).now();
  const since = options.since ?? new Date(now.getTime() - 30 * 86_400_000).toISOString();
  const previousSince = new Date(2 * Date.parse(since) - now.getTime()).toISOString();
  const by = options.by ?? 'model';
  const rates = costConfig(scan.file);
  let query: ReportQuery['by'] = by === 'tag' || by === 'folder' ? { groups: [] } : by;
  let manifest: Manifest | undefined;
  if (by === 'tag' || by === 'folder') {
    // Only tags and folders need the project compiled: the other groupings read the history alone, and
    // `etl report` then loads neither the compiler nor the runner.
    const { compile } = await import('../api.js');
    manifest = (await compile({ ...options, scan })).manifest;
    query = { groups: nodeGroups(manifest, by) };
  }
  const budget = budgetConfig(scan.file);
  const adapter = await createAdapter(scan.target, scan.root, { readOnly: true });
  await adapter.open();
  try {
    return await adapter.withSession(async (session) => {
      // One pass over the history: the budget's month-to-date comes with the periods' figures.
      const month = budget ? monthStart(now) : undefined;
      const rows = await adapter.state.historyReport(session, { since, previousSince, rates, by: query, monthSince: month });
      const report = buildReport(rows, { since, until: now.toISOString(), previousSince, by, rates, names: by === 'model' ? (id) => id.split('.').slice(2).join('.') || id : undefined });
      if (budget) report.budget = budgetOf(budget, month!, rows.month_cost ?? 0);
      return report;
    });
  } finally {
    await adapter.close();
  }
}

/** A budget alert (etl.yml alerts: on cost_spike), shaped as core/alerts' cost_spike event. */
export interface BudgetAlertEvent {
  event: 'cost_spike';
  message: string;
  run_id: string;
  job: string | null;
  /** The month (UTC), e.g. 2026-12. */
  period: string;
  /** Spent this month so far, this run included. */
  cost: number;
  budget: number;
  alert_at: number;
  currency: string;
  run_cost: number;
}

/**
 * The alert of the run whose cost took the month's spend across `alert_at`
 * of the budget (once a month: the runs after it are over already), or
 * undefined. Read after the run's history is recorded.
 */
export async function budgetCheck(adapter: Adapter, session: AdapterSession, run: { runId: string; job?: string | null; cost: number }, budget: BudgetConfig, rates: CostConfig, now = new Date()): Promise<BudgetAlertEvent | undefined> {
  const status = await budgetStatus(adapter, session, budget, rates, now);
  const threshold = budget.alert_at * budget.monthly;
  const before = status.month_to_date - run.cost;
  if (!(before < threshold && status.month_to_date >= threshold)) return undefined;
  const money = (v: number) => `${v.toFixed(v >= 1 || v === 0 ? 2 : 4)} ${rates.currency}`;
  return {
    event: 'cost_spike',
    message: `budget: ${money(status.month_to_date)} spent in ${status.month}, ${(status.share * 100).toFixed(1)}% of the monthly ${money(budget.monthly)} (alert at ${(budget.alert_at * 100).toFixed(0)}%); this run cost ${money(run.cost)}`,
    run_id: run.runId,
    job: run.job ?? null,
    period: status.month,
    cost: status.month_to_date,
    budget: budget.monthly,
    alert_at: budget.alert_at,
    currency: rates.currency,
    run_cost: run.cost,
  };
}
