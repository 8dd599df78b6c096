// The scheduler: fires each job of etl.yml `jobs:` at the times its cron
// expression gives in its time zone (croner reads the expression and walks
// daylight-saving changes: a slot in the spring gap runs when the gap ends, a
// slot in the autumn overlap runs once). It never runs two runs of one job at
// once: a slot that comes while the job still runs is skipped and recorded.
// With `catchup: true`, the latest slot missed while the scheduler was down
// runs once at start. A job's `sla:` is watched while it runs. stop() ends
// the waiting and hands the stop to the running runs (their runner cancels
// them cleanly), then resolves once they have finished.
//
// It knows nothing of processes or files: time is a Clock, a run is a
// JobRunner, what happens goes to onEvent and record, alerts to raiseAlert.

import { Cron } from 'croner';
import type { JobConfig } from '../project/orchestration.js';
import type { AlertEvent } from '../alerts/events.js';
import type { SchedulerClock } from './clock.js';

/** Runs one job's command; resolves with its exit code. `signal` aborts when the scheduler stops. */
export type JobRunner = (job: JobConfig, run: { slot: Date; signal: AbortSignal }) => Promise<number>;

/** What the scheduler remembers of each run, in order: a started run, its end, or a skipped slot. */
export type ScheduleRecord =
  | { type: 'started'; job: string; slot: string; at: string; catchup: boolean }
  | { type: 'finished'; job: string; slot: string; at: string; exit_code: number; seconds: number }
  | { type: 'skipped'; job: string; slot: string; at: string; reason: string };

export type ScheduleEvent = ScheduleRecord | { type: 'next'; job: string; at: string } | { type: 'stopping'; running: string[] };

export interface SchedulerOptions {
  jobs: JobConfig[];
  clock: SchedulerClock;
  run: JobRunner;
  /** The last slot each job ran for (from the previous process): what catch-up compares with. */
  lastSlots?: Map<string, Date>;
  onEvent?: (event: ScheduleEvent) => void;
  /** Called for every started, finished and skipped run (the caller persists them). */
  record?: (record: ScheduleRecord) => void | Promise<void>;
  /** Job-level alerts: sla_breach (deadline, duration) and failure (a run that failed on its own). */
  raiseAlert?: (event: AlertEvent) => Promise<unknown>;
  /** Claims a job for a run across processes (another `etl schedule`, an external --once): a release, or why it is taken. */
  claim?: (job: JobConfig) => { release(): void } | { taken: string };
}

/** The next `count` fire times of a job after `from`. */
export function nextFireTimes(job: Pick<JobConfig, 'cron' | 'timezone'>, from: Date, count: number): Date[] {
  return new Cron(job.cron, { timezone: job.timezone, paused: true }).nextRuns(count, from);
}

/** Exit codes a run reports its own failures with (its nodes raise their alerts): 1 failed, 130 interrupted. */
const REPORTED_BY_THE_RUN = new Set([0, 1, 130]);

export class Scheduler {
  private readonly stopController = new AbortController();
  private readonly running = new Map<string, Promise<number>>();
  private readonly lastSlots: Map<string, Date>;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly options: SchedulerOptions) {
    this.lastSlots = new Map(options.lastSlots);
  }

  /** Runs until stop(); resolves once every loop has ended and every run has finished. */
  async start(): Promise<void> {
    await Promise.all(this.options.jobs.map((job) => this.loop(job)));
    await this.drain();
  }

  /** Resolves once every run has finished and every record and alert has been written. */
  async drain(): Promise<void> {
    while (this.running.size || this.pending.size) await Promise.allSettled([...this.running.values(), ...this.pending]);
  }

  stop(): void {
    if (this.stopController.signal.aborted) return;
    this.options.onEvent?.({ type: 'stopping', running: [...this.running.keys()] });
    this.stopController.abort();
  }

  get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  /** Runs one job now (`etl schedule --once`), with its SLA watched; resolves with its exit code (0 when it was skipped). */
  runOnce(job: JobConfig): Promise<number> {
    const slot = this.options.clock.now();
    return this.fire(job, slot, false) ?? Promise.resolve(0);
  }

  private async loop(job: JobConfig): Promise<void> {
    const { clock } = this.options;
    const cron = new Cron(job.cron, { timezone: job.timezone, paused: true });
    const signal = this.stopController.signal;
    const last = this.lastSlots.get(job.name);
    if (job.catchup && last && !signal.aborted) {
      const missed = cron.previousRuns(1, clock.now())[0];
      if (missed && missed.getTime() > last.getTime()) this.fire(job, missed, true);
    }
    while (!signal.aborted) {
      // From the later of now and the slot just fired: a timer that wakes a moment early must not fire a slot twice.
      const now = clock.now();
      const fired = this.lastSlots.get(job.name);
      const from = fired && fired.getTime() > now.getTime() ? fired : now;
      const next = cron.nextRun(from);
      if (!next) return;
      this.options.onEvent?.({ type: 'next', job: job.name, at: next.toISOString() });
      await clock.sleepUntil(next, signal);
      if (signal.aborted) return;
      this.fire(job, next, false);
    }
  }

  /** Starts a run for `slot`, or records the slot skipped when the job is still running. */
  private fire(job: JobConfig, slot: Date, catchup: boolean): Promise<number> | undefined {
    const { clock } = this.options;
    this.lastSlots.set(job.name, slot);
    const at = clock.now().toISOString();
    if (this.running.has(job.name)) {
      this.emit({ type: 'skipped', job: job.name, slot: slot.toISOString(), at, reason: 'the previous run of the job is still running' });
      return undefined;
    }
    const claim = this.options.claim?.(job);
    if (claim && 'taken' in claim) {
      this.emit({ type: 'skipped', job: job.name, slot: slot.toISOString(), at, reason: claim.taken });
      return undefined;
    }
    this.emit({ type: 'started', job: job.name, slot: slot.toISOString(), at, catchup });
    const run = this.runWatched(job, slot);
    this.running.set(job.name, run);
    void run.finally(() => {
      this.running.delete(job.name);
      claim?.release();
    });
    return run;
  }

  private async runWatched(job: JobConfig, slot: Date): Promise<number> {
    const { clock } = this.options;
    const started = clock.now();
    const finished = new AbortController();
    let breached = false;
    if (job.slaSeconds !== undefined && this.options.raiseAlert) {
      const deadline = new Date(started.getTime() + job.slaSeconds * 1000);
      void clock.sleepUntil(deadline, finished.signal).then(() => {
        if (finished.signal.aborted) return;
        breached = true;
        this.alert({ event: 'sla_breach', job: job.name, kind: 'deadline', sla: job.sla!, sla_seconds: job.slaSeconds!, observed_seconds: job.slaSeconds!, message: `job ${job.name} has run for ${job.sla} (its SLA) and has not finished` });
      });
    }
    let exitCode: number;
    try {
      exitCode = await this.options.run(job, { slot, signal: this.stopController.signal });
    } catch (err) {
      exitCode = 1;
      this.alert({ event: 'failure', job: job.name, status: 'error', exit_code: null, message: `job ${job.name} could not start: ${(err as Error).message}` });
    }
    finished.abort();
    const seconds = (clock.now().getTime() - started.getTime()) / 1000;
    if (!breached && job.slaSeconds !== undefined && seconds > job.slaSeconds) {
      this.alert({ event: 'sla_breach', job: job.name, kind: 'duration', sla: job.sla!, sla_seconds: job.slaSeconds, observed_seconds: seconds, message: `job ${job.name} took ${Math.round(seconds)}s, over its SLA of ${job.sla}` });
    }
    if (!REPORTED_BY_THE_RUN.has(exitCode)) {
      this.alert({ event: 'failure', job: job.name, status: 'error', exit_code: exitCode, message: `job ${job.name} (${job.command}) exited with ${exitCode}` });
    }
    this.emit({ type: 'finished', job: job.name, slot: slot.toISOString(), at: clock.now().toISOString(), exit_code: exitCode, seconds });
    return exitCode;
  }

  private alert(event: AlertEvent): void {
    if (!this.options.raiseAlert) return;
    const p = this.options.raiseAlert(event).catch(() => undefined);
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private emit(record: ScheduleRecord): void {
    this.options.onEvent?.(record);
    const p = Promise.resolve(this.options.record?.(record)).catch(() => undefined);
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }
}
