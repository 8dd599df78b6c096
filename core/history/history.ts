// `etl history` and `etl history prune`: the run history and audit trail
// each run keeps in its target (core/state: etl_meta on SQL engines, Delta
// tables under the lake), read and pruned through the state API. Also the
// record of an invocation that never ran (a scheduled job skipped because
// its previous run was still going), for `etl schedule`.

import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createAdapter } from '../../adapters/index.js';
import type { Adapter } from '../../adapters/adapter.js';
import type { ProjectOptions } from '../api.js';
import { ETL_VERSION } from '../compiler/version.js';
import { ProjectError } from '../errors.js';
import { scanProject, type ProjectScan } from '../project/load.js';
import { migrateState, recordRunStart, type HistoryRows, type RunRecord } from '../state/state.js';
import { invocationFacts, PENDING_HISTORY_FILE } from './invocation.js';

/** "7d", "12h", "30m", "2w" (back from now), or a date/timestamp; returns an ISO instant. */
export function parseSince(text: string, flag: string, now = new Date()): string {
  const m = /^\s*(\d+)\s*(m|h|d|w)\s*$/.exec(text);
  if (m) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
    return new Date(now.getTime() - Number(m[1]) * unit).toISOString();
  }
  const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(text.trim()) ? `${text.trim()}T00:00:00Z` : text);
  if (Number.isNaN(d.getTime())) throw new ProjectError([{ message: `${flag} "${text}" is not a duration or a date`, hint: `write ${flag} 7d (also 12h, 30m, 2w) or ${flag} 2024-01-01` }]);
  return d.toISOString();
}

export interface HistoryOptions extends ProjectOptions {
  select?: string[];
  exclude?: string[];
  /** ISO instant (see parseSince). */
  since?: string;
  limit?: number;
}

async function withTarget<T>(scan: ProjectScan, readOnly: boolean, fn: (adapter: Adapter) => Promise<T>): Promise<T> {
  const adapter = await createAdapter(scan.target, scan.root, { readOnly });
  await adapter.open();
  try {
    return await fn(adapter);
  } finally {
    await adapter.close();
  }
}

/** The runs (newest first) and their node attempts; with a selection, only the runs that ran those nodes, and only their rows. */
export async function readHistory(options: HistoryOptions): Promise<HistoryRows> {
  const scan = options.scan ?? scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env ?? process.env });
  let uniqueIds: string[] | undefined;
  if (options.select?.length || options.exclude?.length) {
    // Only a selection needs the project compiled; `etl history` without one loads neither the compiler nor the runner.
    const { compile, selectFromManifest } = await import('../api.js');
    const { project, manifest } = await compile({ ...options, scan });
    const selected = [...selectFromManifest(manifest, project.targetPath, { select: options.select, exclude: options.exclude }).selected];
    // -s orders means the model, not the tests a build would run with it (unless only tests were selected).
    const notTests = selected.filter((id) => manifest.nodes[id]?.resource_type !== 'test');
    uniqueIds = notTests.length ? notTests : selected;
    if (uniqueIds.length === 0) throw new ProjectError([{ message: 'etl history: the selection matched no node', hint: 'e.g. etl history -s orders' }]);
  }
  // Read only: no run lock, and the store is read, never created or migrated.
  return withTarget(scan, true, (adapter) => adapter.withSession((s) => adapter.state.historyRows(s, { since: options.since, uniqueIds, limit: options.limit })));
}

/** Deletes the runs that started before `before` (ISO) and their node attempts. */
export async function pruneHistory(options: ProjectOptions & { before: string }): Promise<{ runs: number; node_runs: number }> {
  const scan = options.scan ?? scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env ?? process.env });
  return withTarget(scan, false, (adapter) => adapter.withSession((s) => adapter.state.pruneHistory(s, options.before)));
}

export interface SkippedInvocation extends ProjectOptions {
  job: string;
  /** The command the job would have run, e.g. "build -s tag:daily". */
  command: string;
  /** Why it did not run, e.g. "previous run still running (run id ...)". */
  reason: string;
  /** When it was due; default now. */
  at?: Date;
}

/**
 * Records a job invocation that never ran (status `skipped`), with the
 * run's audit facts. When the target cannot be written now (an embedded
 * file another run holds), the record waits in target/history-pending.jsonl
 * and the next run that builds writes it. Returns where it went.
 */
export async function recordSkippedInvocation(options: SkippedInvocation): Promise<{ runId: string; written: 'target' | 'pending' }> {
  const scan = options.scan ?? scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env ?? process.env });
  const facts = await invocationFacts(scan.root);
  const at = (options.at ?? new Date()).toISOString();
  const { randomUUID } = await import('node:crypto');
  const record: RunRecord = {
    runId: randomUUID(),
    command: options.command,
    target: scan.targetName,
    version: ETL_VERSION,
    job: options.job,
    gitCommit: facts.gitCommit,
    gitDirty: facts.gitDirty,
    user: facts.user,
    host: facts.host,
    status: 'skipped',
    startedAt: at,
    finishedAt: at,
    message: options.reason,
  };
  try {
    await withTarget(scan, false, (adapter) =>
      adapter.withSession(async (s) => {
        await migrateState(adapter, s);
        await recordRunStart(adapter, s, record);
      }),
    );
    return { runId: record.runId, written: 'target' };
  } catch {
    mkdirSync(scan.targetPath, { recursive: true });
    appendFileSync(path.join(scan.targetPath, PENDING_HISTORY_FILE), `${JSON.stringify(record)}\n`);
    return { runId: record.runId, written: 'pending' };
  }
}

