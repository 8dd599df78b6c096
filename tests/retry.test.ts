// The retry policy (core/runner/retry.ts) on its own: the waits it asks for,
// which errors it retries, and the circuit breaker. A recording sleeper
// stands in for the clock, so nothing here sleeps.

import { describe, expect, it } from 'vitest';
import { backoffDelay, backoffPolicy, CircuitBreaker, RetriesExhausted, withRetry, type Sleeper } from '../core/runner/retry.js';
import { parseDurationMs } from '../core/project/duration.js';

class TransientError extends Error {
  readonly transient = true;
}

function recordingSleeper(): Sleeper & { waits: number[] } {
  const waits: number[] = [];
  return { waits, sleep: async (ms) => void waits.push(ms) };
}

const isTransient = (err: unknown) => err instanceof TransientError;

describe('backoff', () => {
  it('exponential: base, doubled each attempt, capped at max; no jitter with random 0', () => {
    const policy = backoffPolicy({ strategy: 'exponential', base: '100ms', max: '1s', jitter: 0.5 });
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n, () => 0))).toEqual([100, 200, 400, 800, 1000]);
  });

  it('jitter takes off up to its share of the wait', () => {
    const policy = backoffPolicy({ base: 2, jitter: 0.5 });
    expect(backoffDelay(policy, 1, () => 0.999999)).toBe(1000);
    expect(backoffDelay(policy, 1, () => 0.5)).toBe(1500);
    expect(backoffDelay(backoffPolicy({ base: 2, jitter: false }), 1, () => 0.9)).toBe(2000);
  });

  it('constant and none', () => {
    expect(backoffDelay(backoffPolicy({ strategy: 'constant', base: '3s', jitter: 0 }), 4)).toBe(3000);
    expect(backoffDelay(backoffPolicy('none'), 4)).toBe(0);
  });

  it('durations: seconds as numbers, ms, s, m, h', () => {
    expect([parseDurationMs(1.5), parseDurationMs('250ms'), parseDurationMs('2s'), parseDurationMs('5m'), parseDurationMs('1h'), parseDurationMs('3')]).toEqual([1500, 250, 2000, 300_000, 3_600_000, 3000]);
    expect(parseDurationMs('soon')).toBeUndefined();
  });
});

describe('withRetry', () => {
  it('retries a transient error and succeeds on attempt 2, recording both attempts and the wait', async () => {
    const sleeper = recordingSleeper();
    let calls = 0;
    const { value, attempts } = await withRetry(
      async (n) => {
        calls++;
        if (n === 1) throw new TransientError('connection reset');
        return 'built';
      },
      { maxAttempts: 3, policy: backoffPolicy({ base: '100ms', jitter: 0 }), isTransient, sleeper },
    );
    expect(value).toBe('built');
    expect(calls).toBe(2);
    expect(sleeper.waits).toEqual([100]);
    expect(attempts.map((a) => [a.attempt, a.status, a.transient, a.message, a.delay_ms])).toEqual([
      [1, 'error', true, 'connection reset', 100],
      [2, 'success', undefined, undefined, undefined],
    ]);
  });

  it('a permanent error is not retried', async () => {
    const sleeper = recordingSleeper();
    let calls = 0;
    const failing = withRetry(
      async () => {
        calls++;
        throw new Error('division by zero');
      },
      { maxAttempts: 4, policy: backoffPolicy(undefined), isTransient, sleeper },
    );
    const err = await failing.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetriesExhausted);
    expect((err as RetriesExhausted).attempts.map((a) => [a.attempt, a.transient])).toEqual([[1, false]]);
    expect(calls).toBe(1);
    expect(sleeper.waits).toEqual([]);
  });

  it('gives up after maxAttempts, with every attempt recorded', async () => {
    const sleeper = recordingSleeper();
    const err = (await withRetry(
      async () => {
        throw new TransientError('deadlock detected');
      },
      { maxAttempts: 3, policy: backoffPolicy({ base: '10ms', jitter: 0 }), isTransient, sleeper },
    ).catch((e: unknown) => e)) as RetriesExhausted;
    expect(err.attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(sleeper.waits).toEqual([10, 20]);
    expect(err.message).toBe('deadlock detected');
  });

  it('stops waiting when the signal aborts', async () => {
    const controller = new AbortController();
    const sleeper: Sleeper = { sleep: async () => controller.abort() };
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new TransientError('x');
      },
      { maxAttempts: 5, policy: backoffPolicy(undefined), isTransient, sleeper, signal: controller.signal },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetriesExhausted);
    expect(calls).toBe(1);
  });
});

describe('circuit breaker', () => {
  it('opens after N consecutive transient failures; a success or a permanent failure resets the count', () => {
    const b = new CircuitBreaker(3);
    expect(b.transientFailure('a')).toBe(false);
    expect(b.transientFailure('b')).toBe(false);
    b.success();
    expect(b.transientFailure('c')).toBe(false);
    b.permanentFailure();
    expect(b.transientFailure('d')).toBe(false);
    expect(b.transientFailure('e')).toBe(false);
    expect(b.transientFailure('f\nmore')).toBe(true);
    expect(b.isOpen).toBe(true);
    expect(b.reason).toBe('circuit breaker open after 3 consecutive transient failures (last: f)');
  });

  it('an open breaker stops retries at once', async () => {
    const sleeper = recordingSleeper();
    const breaker = new CircuitBreaker(2);
    breaker.transientFailure('earlier');
    const err = (await withRetry(
      async () => {
        throw new TransientError('again');
      },
      { maxAttempts: 5, policy: backoffPolicy(undefined), isTransient, sleeper, breaker },
    ).catch((e: unknown) => e)) as RetriesExhausted;
    expect(err.attempts).toHaveLength(1);
    expect(breaker.isOpen).toBe(true);
    expect(sleeper.waits).toEqual([]);
  });

  it('threshold 0 never opens', () => {
    const b = new CircuitBreaker(0);
    for (let i = 0; i < 100; i++) b.transientFailure('x');
    expect(b.isOpen).toBe(false);
  });

  it('with a cool-down: open until it has passed on the given clock, then one call through; a success closes it, a failure opens it again', () => {
    let now = Date.parse('2024-05-01T10:00:00Z');
    const b = new CircuitBreaker(2, { ms: 60_000, now: () => now });
    b.transientFailure('HTTP 503');
    expect(b.transientFailure('HTTP 503')).toBe(true);
    expect(b.reason).toBe('circuit breaker open after 2 consecutive transient failures (last: HTTP 503); calling again after 2024-05-01T10:01:00.000Z');
    now += 59_999;
    expect(b.isOpen).toBe(true);
    now += 1;
    expect(b.isOpen).toBe(false);
    // The call let through fails: open for another minute at once (no new streak of 2 needed).
    expect(b.transientFailure('HTTP 502')).toBe(true);
    expect(b.openUntil?.toISOString()).toBe('2024-05-01T10:02:00.000Z');
    now += 60_000;
    expect(b.isOpen).toBe(false);
    b.success();
    expect(b.isOpen).toBe(false);
    expect(b.openUntil).toBeUndefined();
    // Closed: a new streak is needed to open it.
    expect(b.transientFailure('x')).toBe(false);
    expect(b.transientFailure('x')).toBe(true);
  });
});
