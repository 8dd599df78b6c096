// Time as the scheduler sees it: the run clock's now() (core/clock.ts) and a
// way to wait for an instant. The system clock sleeps with timers, in slices
// of at most a minute so a machine that was suspended (or whose clock was
// set) wakes on time; a test's clock moves only when the test says so, so
// scheduler tests never sleep.

import { systemClock as runSystemClock, type Clock as RunClock } from '../clock.js';

export interface SchedulerClock extends Pick<RunClock, 'now'> {
  /** Resolves once `at` is reached (at once when it has passed), or when `signal` aborts. */
  sleepUntil(at: Date, signal: AbortSignal): Promise<void>;
}

const SLICE_MS = 60_000;

export const systemSchedulerClock: SchedulerClock = {
  now: runSystemClock.now,
  sleepUntil(at, signal) {
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const wait = () => {
        const left = at.getTime() - Date.now();
        if (left <= 0 || signal.aborted) return done();
        timer = setTimeout(wait, Math.min(left, SLICE_MS));
      };
      signal.addEventListener('abort', done, { once: true });
      wait();
    });
  },
};
