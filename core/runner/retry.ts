// Retries with backoff, and a circuit breaker: the policy of trying again
// after a failure the engine calls transient (a dropped connection, a
// serialization failure, a lock timeout, a Delta commit conflict), and of
// giving up on an engine that keeps failing. Nothing here knows about nodes
// or engines: the runner retries a node with it, and a source reader (HTTP,
// Postgres) can retry a request with it the same way. Waits go through a
// Sleeper, so a test can run the policy without sleeping.

import { parseDurationMs } from '../project/duration.js';

/** How long to wait before attempt n+1. */
export interface BackoffPolicy {
  /** exponential: base·2^(n-1); constant: base each time; none: no wait. */
  strategy: 'exponential' | 'constant' | 'none';
  baseMs: number;
  /** The longest wait, before jitter. */
  maxMs: number;
  /** 0..1: the share of each wait that is random (0.5: between half and all of it). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { strategy: 'exponential', baseMs: 1000, maxMs: 60_000, jitter: 0.5 };

/** The `retry_backoff` config as a project may write it (see core/project/schema.ts). */
export type RetryBackoffConfig = BackoffPolicy['strategy'] | { strategy?: BackoffPolicy['strategy']; base?: string | number; max?: string | number; jitter?: boolean | number };

/** The policy a node's `retry_backoff` config describes (validated already: bad durations fall back to the default). */
export function backoffPolicy(config: RetryBackoffConfig | undefined): BackoffPolicy {
  if (config === undefined) return DEFAULT_BACKOFF;
  if (typeof config === 'string') return { ...DEFAULT_BACKOFF, strategy: config };
  const baseMs = config.base === undefined ? DEFAULT_BACKOFF.baseMs : (parseDurationMs(config.base) ?? DEFAULT_BACKOFF.baseMs);
  const maxMs = config.max === undefined ? Math.max(baseMs, DEFAULT_BACKOFF.maxMs) : (parseDurationMs(config.max) ?? DEFAULT_BACKOFF.maxMs);
  const jitter = config.jitter === undefined ? DEFAULT_BACKOFF.jitter : config.jitter === true ? DEFAULT_BACKOFF.jitter : config.jitter === false ? 0 : config.jitter;
  return { strategy: config.strategy ?? DEFAULT_BACKOFF.strategy, baseMs, maxMs, jitter };
}

/** The wait before attempt `failedAttempt + 1`, in ms. `random` in [0, 1). */
export function backoffDelay(policy: BackoffPolicy, failedAttempt: number, random: () => number = Math.random): number {
  if (policy.strategy === 'none') return 0;
  const full = Math.min(policy.maxMs, policy.strategy === 'constant' ? policy.baseMs : policy.baseMs * 2 ** Math.max(0, failedAttempt - 1));
  return Math.round(full * (1 - policy.jitter * random()));
}

/** Waits; resolves early (without throwing) when `signal` aborts. */
export interface Sleeper {
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realSleeper: Sleeper = {
  sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted || ms <= 0) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    });
  },
};

/**
 * Stops calls to an engine after `threshold` consecutive transient failures:
 * an engine that keeps dropping connections is down, and calling it for every
 * remaining node only delays the failure. One breaker per target per run;
 * a success closes the count again. threshold 0: never opens.
 *
 * With a cool-down (a source host's breaker, kept for the life of the
 * process), an open breaker lets one call through once the cool-down has
 * passed on `now` (the run clock): its success closes the breaker, a transient
 * failure opens it for another cool-down. Without one it stays open.
 */
export class CircuitBreaker {
  private consecutive = 0;
  private lastError = '';
  private openedAt?: number;

  constructor(
    readonly threshold: number,
    private readonly coolDown?: { ms: number; now: () => number },
  ) {}

  /** Open, and not yet cooled down: do not call. */
  get isOpen(): boolean {
    if (this.openedAt === undefined) return false;
    return !this.coolDown || this.coolDown.now() < this.openedAt + this.coolDown.ms;
  }

  /** When an open breaker lets a call through again (undefined: not open, or never). */
  get openUntil(): Date | undefined {
    return this.openedAt !== undefined && this.coolDown ? new Date(this.openedAt + this.coolDown.ms) : undefined;
  }

  /** Why it is open, for the skipped nodes' message. */
  get reason(): string {
    const until = this.openUntil;
    return `circuit breaker open after ${this.consecutive} consecutive transient failures (last: ${this.lastError})${until ? `; calling again after ${until.toISOString()}` : ''}`;
  }

  success(): void {
    // A call let through after the cool-down succeeded: closed again.
    if (this.openedAt !== undefined && this.coolDown && !this.isOpen) this.openedAt = undefined;
    if (this.openedAt === undefined) this.consecutive = 0;
  }

  /** Counts a transient failure; returns whether the breaker is open now. */
  transientFailure(message: string): boolean {
    this.consecutive++;
    this.lastError = message.split('\n')[0]!.slice(0, 200);
    const cooledDown = this.openedAt !== undefined && !this.isOpen;
    if (cooledDown || (this.threshold > 0 && this.openedAt === undefined && this.consecutive >= this.threshold)) this.openedAt = this.coolDown ? this.coolDown.now() : 0;
    return this.isOpen;
  }

  /** Any other failure: the engine answered, so the streak of transient ones ends. */
  permanentFailure(): void {
    if (this.openedAt !== undefined && this.coolDown && !this.isOpen) this.openedAt = undefined;
    if (this.openedAt === undefined) this.consecutive = 0;
  }
}

/** A call not made: the breaker of where it goes is open. */
export class CircuitOpenError extends Error {
  constructor(
    readonly target: string,
    readonly breaker: CircuitBreaker,
  ) {
    super(`not calling ${target}: ${breaker.reason}`);
  }
}

/** One try of a retried call, as run_results and the history record it. */
export interface AttemptRecord {
  attempt: number;
  status: 'success' | 'error';
  started_at: string;
  completed_at: string;
  execution_time: number;
  /** Failed attempts: the error, and whether it was transient (retried). */
  message?: string;
  transient?: boolean;
  /** The wait before the next attempt. */
  delay_ms?: number;
}

export interface RetryOptions {
  /** Attempts in all (1 + retries). */
  maxAttempts: number;
  policy: BackoffPolicy;
  isTransient(err: unknown): boolean;
  sleeper?: Sleeper;
  signal?: AbortSignal;
  breaker?: CircuitBreaker;
  random?: () => number;
  /** The run's clock, for the attempts' times (core/clock.ts); the system clock when left out. */
  now?: () => Date;
  /** Before each wait: the failed attempt, the wait, the error. */
  onRetry?(attempt: number, delayMs: number, err: unknown): void;
}

export class RetriesExhausted extends Error {
  constructor(
    override readonly cause: unknown,
    readonly attempts: AttemptRecord[],
  ) {
    super((cause as Error)?.message ?? String(cause));
  }
}

/**
 * Calls `fn` until it succeeds, its error is not transient, the attempts run
 * out, the signal aborts or the breaker opens. Returns the value and every
 * attempt; throws RetriesExhausted (with the last error and the attempts).
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<{ value: T; attempts: AttemptRecord[] }> {
  const sleeper = options.sleeper ?? realSleeper;
  const attempts: AttemptRecord[] = [];
  const now = options.now ?? (() => new Date());
  for (let attempt = 1; ; attempt++) {
    const startedAt = now();
    const t0 = performance.now();
    const record = (status: AttemptRecord['status']): AttemptRecord => ({
      attempt,
      status,
      started_at: startedAt.toISOString(),
      completed_at: now().toISOString(),
      execution_time: (performance.now() - t0) / 1000,
    });
    try {
      const value = await fn(attempt);
      attempts.push(record('success'));
      options.breaker?.success();
      return { value, attempts };
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      const transient = !options.signal?.aborted && options.isTransient(err);
      const a = { ...record('error'), message: message.split('\n')[0]!, transient };
      attempts.push(a);
      const open = transient ? (options.breaker?.transientFailure(message) ?? false) : (options.breaker?.permanentFailure(), false);
      if (!transient || open || attempt >= options.maxAttempts || options.signal?.aborted) throw new RetriesExhausted(err, attempts);
      // A server that says when to come back (HTTP Retry-After) is waited for at least that long.
      const asked = (err as { retryAfterMs?: unknown })?.retryAfterMs;
      a.delay_ms = Math.max(backoffDelay(options.policy, attempt, options.random), typeof asked === 'number' ? asked : 0);
      options.onRetry?.(attempt, a.delay_ms, err);
      await sleeper.sleep(a.delay_ms, options.signal);
      if (options.signal?.aborted) throw new RetriesExhausted(err, attempts);
    }
  }
}
