// The runner: executes a plan against an adapter. A node starts as soon as
// all of its parents have finished (not level by level), up to `threads` at
// once. A failed node marks its descendants skipped while unrelated branches
// go on, unless failFast. An abort (Ctrl-C) interrupts running statements;
// materializations are atomic, so nothing is left half built.

import type { Adapter } from '../../adapters/adapter.js';
import type { Clock } from '../clock.js';
import type { Manifest, ManifestNode } from '../compiler/manifest.js';
import { materializationFor } from '../materializations/index.js';
import { descendantsInPlan, type Plan } from '../plan/plan.js';
import type { NodeResult, RunEvent } from './events.js';
import { backoffPolicy, CircuitBreaker, RetriesExhausted, withRetry, type Sleeper } from './retry.js';

export interface RunOptions {
  threads: number;
  failFast: boolean;
  fullRefresh: boolean;
  onEvent: (event: RunEvent) => void;
  signal?: AbortSignal;
  /** Identifies this run in quarantine tables and run_results. */
  runId: string;
  /** The run's clock (core/clock.ts): every time the run records or computes with. */
  clock: Clock;
  /** Microbatch backfill range (--event-time-start / --event-time-end). */
  batchRange?: { start: string; end: string };
  /** etl retry: the failed batches of each microbatch model. */
  retryBatches?: Map<string, Array<[string, string]>>;
  /** etl retry: the run retried, whose committed changes are not applied again (IncrementalChange.commitId). */
  retriedRun?: string;
  /** Consecutive transient failures on the target after which no more nodes start (0: never); default 5. */
  circuitBreaker?: number;
  /** Where retry backoff waits (tests pass one that does not sleep). */
  sleeper?: Sleeper;
}

export interface RunOutcome {
  results: NodeResult[];
  elapsedSeconds: number;
  interrupted: boolean;
}

export async function executePlan(manifest: Manifest, plan: Plan, adapter: Adapter, options: RunOptions): Promise<RunOutcome> {
  const started = performance.now();
  const total = plan.ids.length;
  const results = new Map<string, NodeResult>();
  const waitingOn = new Map(plan.ids.map((id) => [id, plan.parents.get(id)!.length]));
  const ready: string[] = plan.ids.filter((id) => waitingOn.get(id) === 0);
  let index = 0;
  let running = 0;
  let stopping = false;
  let interrupted = false;
  let stopReason = 'skipped: run stopped by --fail-fast';
  const breaker = new CircuitBreaker(options.circuitBreaker ?? DEFAULT_CIRCUIT_BREAKER);
  options.onEvent({ type: 'run_started', total, threads: options.threads });

  const schemas = new Set(plan.ids.map((id) => manifest.nodes[id]!).filter((n) => n.relation_name).map((n) => n.schema));
  if (schemas.size) {
    await adapter.withSession(async (session) => {
      for (const schema of schemas) await adapter.ensureSchema(session, schema);
    }, { invocationId: options.runId });
  }

  // An interrupt reaches only statements already running: one that starts a
  // moment later (a node just taking its connection, or between two of its
  // statements) would run to the end. So interrupt again until all have stopped.
  let reinterrupt: ReturnType<typeof setInterval> | undefined;
  const halt = () => {
    stopping = true;
    adapter.interruptAll();
    reinterrupt ??= setInterval(() => adapter.interruptAll(), 100);
  };
  const onAbort = () => {
    interrupted = true;
    stopReason = 'skipped: run interrupted';
    halt();
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const skip = (id: string, message: string) => {
    if (results.has(id)) return;
    const node = manifest.nodes[id]!;
    const result = emptyResult(node, 'skipped', message);
    results.set(id, result);
    options.onEvent({ type: 'node_finished', index: 0, total, node, result });
  };

  await new Promise<void>((resolveAll) => {
    const finish = (id: string, result: NodeResult) => {
      results.set(id, result);
      running--;
      if (result.status === 'error' || result.status === 'fail') {
        const name = manifest.nodes[id]!.name;
        for (const d of descendantsInPlan(plan, id)) skip(d, `skipped: upstream ${name} failed`);
        if (options.failFast) halt();
      } else if (result.status === 'skipped' && !stopping) {
        // A node that skipped itself (a loader whose source host's breaker is open): what reads it would read stale rows.
        const name = manifest.nodes[id]!.name;
        for (const d of descendantsInPlan(plan, id)) skip(d, `skipped: upstream ${name} skipped (${result.message.replace(/^skipped: /, '')})`);
      }
      for (const c of plan.children.get(id)!) {
        const left = waitingOn.get(c)! - 1;
        waitingOn.set(c, left);
        if (left === 0 && !results.has(c)) ready.push(c);
      }
      pump();
    };
    const pump = () => {
      while (!stopping && running < options.threads && ready.length) {
        const id = ready.shift()!;
        if (results.has(id)) continue;
        running++;
        const node = manifest.nodes[id]!;
        const myIndex = ++index;
        options.onEvent({ type: 'node_started', index: myIndex, total, node });
        void runNode(node, manifest, adapter, options, total, myIndex, breaker, () => stopping).then((result) => {
          // A node stopped before it ran, or whose statement --fail-fast cancelled, did not fail.
          if (stopping && result.status === 'error' && (result.message === NOT_STARTED || (!interrupted && /interrupt/i.test(result.message)))) {
            result.status = 'skipped';
            result.message = stopReason;
          }
          // The engine keeps failing: nodes running finish, no more start.
          if (breaker.isOpen && !stopping) {
            stopping = true;
            stopReason = `skipped: ${breaker.reason}`;
          }
          options.onEvent({ type: 'node_finished', index: myIndex, total, node, result });
          finish(id, result);
        });
      }
      if (running === 0 && (stopping || ready.length === 0)) resolveAll();
    };
    pump();
  });
  clearInterval(reinterrupt);
  options.signal?.removeEventListener('abort', onAbort);

  for (const id of plan.ids) {
    if (!results.has(id)) skip(id, stopReason);
  }
  return {
    results: plan.ids.map((id) => results.get(id)!),
    elapsedSeconds: (performance.now() - started) / 1000,
    interrupted,
  };
}

const NOT_STARTED = 'run stopped before the node started';

async function runNode(node: ManifestNode, manifest: Manifest, adapter: Adapter, options: RunOptions, total: number, index: number, breaker: CircuitBreaker, stopping: () => boolean = () => false): Promise<NodeResult> {
  // The node's own work: the clock starts once it has a connection (re-set by the first one it gets).
  let startedAt = options.clock.now();
  let t0 = performance.now();
  let connected = false;
  const strategy = materializationFor(node.config.materialized);
  if (!strategy) {
    return finished(node, options.clock, startedAt, t0, 'error', `materialization "${node.config.materialized}" is not supported yet`);
  }
  const attempt = () =>
    adapter.withSession(async (session) => {
      if (!connected) {
        connected = true;
        startedAt = options.clock.now();
        t0 = performance.now();
      }
      if (stopping()) throw new Error(NOT_STARTED);
      for (const hook of node.config.pre_hook) await session.execute(hook);
      const r = await strategy.run({
        node,
        manifest,
        adapter,
        session,
        fullRefresh: options.fullRefresh,
        runId: options.runId,
        clock: options.clock,
        signal: options.signal,
        batchRange: options.batchRange,
        retryBatches: options.retryBatches?.get(node.unique_id),
        retriedRun: options.retriedRun,
      });
      for (const hook of node.config.post_hook) await session.execute(hook);
      return r;
    }, { invocationId: options.runId, nodeId: node.unique_id });
  try {
    const { value: outcome, attempts } = await withRetry(attempt, {
      maxAttempts: 1 + (node.config.retries ?? 0),
      policy: backoffPolicy(node.config.retry_backoff),
      isTransient: (err) => adapter.isTransient(err),
      sleeper: options.sleeper,
      now: () => options.clock.now(),
      signal: options.signal,
      breaker,
      onRetry: (n, delayMs, err) => options.onEvent({ type: 'node_retry', index, total, node, attempt: n, delayMs, reason: errorMessage(err).split('\n')[0]! }),
    });
    const result = finished(node, options.clock, startedAt, t0, outcome.status ?? 'success', outcome.message);
    result.rows_affected = outcome.rowsAffected ?? null;
    if (outcome.failures !== undefined) result.failures = outcome.failures;
    if (outcome.quarantined !== undefined) result.quarantined = outcome.quarantined;
    if (outcome.batches) result.batch_results = outcome.batches;
    if (outcome.sample) result.failing_rows_sample = { columns: outcome.sample.columns, rows: outcome.sample.rows };
    result.adapter_response = { _message: outcome.message, rows_affected: outcome.rowsAffected, ...(outcome.stats ?? {}) };
    if (outcome.bytesWritten !== undefined) result.adapter_response.bytes_written = outcome.bytesWritten;
    if (outcome.bytesScanned !== undefined) result.adapter_response.bytes_scanned = outcome.bytesScanned;
    if (attempts.length > 1) result.attempts = attempts;
    return result;
  } catch (err) {
    const exhausted = err instanceof RetriesExhausted ? err : undefined;
    const message = errorMessage(exhausted ? exhausted.cause : err);
    const interrupted = options.signal?.aborted && /interrupt/i.test(message);
    const result = finished(node, options.clock, startedAt, t0, 'error', interrupted ? 'interrupted' : message);
    if (exhausted && exhausted.attempts.length > 1) result.attempts = exhausted.attempts;
    return result;
  }
}

const DEFAULT_CIRCUIT_BREAKER = 5;

const errorMessage = (err: unknown): string => (err as Error)?.message ?? String(err);

function finished(node: ManifestNode, clock: Clock, startedAt: Date, t0: number, status: NodeResult['status'], message: string): NodeResult {
  const result = emptyResult(node, status, message);
  const completedAt = clock.now();
  result.timing = [{ name: 'execute', started_at: startedAt.toISOString(), completed_at: completedAt.toISOString() }];
  result.execution_time = (performance.now() - t0) / 1000;
  return result;
}

function emptyResult(node: ManifestNode, status: NodeResult['status'], message: string): NodeResult {
  return {
    unique_id: node.unique_id,
    status,
    timing: [],
    thread_id: 'main',
    execution_time: 0,
    adapter_response: {},
    message,
    failures: null,
    rows_affected: null,
    compiled_path: node.compiled_path,
    relation_name: node.relation_name,
  };
}
