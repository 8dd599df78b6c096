// core/schedule/scheduler.ts with a clock the test moves: fire times across
// daylight-saving changes, no overlap, catch-up, SLAs and stopping. No test
// here sleeps: time passes only when the test advances the clock.

import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AlertEvent } from '../core/alerts/events.js';
import type { JobConfig } from '../core/project/orchestration.js';
import { Scheduler, type ScheduleRecord } from '../core/schedule/scheduler.js';
import { recordRun, SCHEDULE_LOG_FILE, SCHEDULE_STATE_FILE } from '../core/schedule/index.js';
import type { SchedulerClock } from '../core/schedule/clock.js';

/** A clock that stands still until advance() moves it, waking each sleeper at its time, in order. */
class TestClock implements SchedulerClock {
  private sleepers: Array<{ at: number; wake: () => void }> = [];
  constructor(private t: number) {}
  now(): Date {
    return new Date(this.t);
  }
  sleepUntil(at: Date, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (at.getTime() <= this.t || signal.aborted) return resolve();
      const sleeper = { at: at.getTime(), wake: () => resolve() };
      this.sleepers.push(sleeper);
      signal.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        resolve();
      }, { once: true });
    });
  }
  /** Moves time to `to`, waking the sleepers due on the way one at a time (letting what they start settle). */
  async advanceTo(to: string | Date): Promise<void> {
    const target = new Date(to).getTime();
    for (;;) {
      await settle();
      const due = this.sleepers.filter((s) => s.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.sleepers = this.sleepers.filter((s) => s !== due);
      this.t = due.at;
      due.wake();
    }
    this.t = target;
    await settle();
  }
}

/** Lets promise chains and the tasks they queue run (no time passes on the test clock). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

function job(over: Partial<JobConfig> = {}): JobConfig {
  return { name: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Berlin', command: 'build', args: ['build'], catchup: false, line: 1, ...over };
}

/** A scheduler whose runs finish at once with `exitCode`, recording what it does. */
function harness(jobs: JobConfig[], start: string, options: { exitCode?: number; lastSlots?: Map<string, Date>; run?: ConstructorParameters<typeof Scheduler>[0]['run'] } = {}) {
  const clock = new TestClock(new Date(start).getTime());
  const records: ScheduleRecord[] = [];
  const alerts: AlertEvent[] = [];
  const scheduler = new Scheduler({
    jobs,
    clock,
    run: options.run ?? (async () => options.exitCode ?? 0),
    lastSlots: options.lastSlots,
    record: (r) => void records.push(r),
    raiseAlert: async (e) => void alerts.push(e),
  });
  const done = scheduler.start();
  const started = (name?: string) => records.filter((r) => r.type === 'started' && (!name || r.job === name)).map((r) => r.slot);
  return { clock, records, alerts, scheduler, done, started };
}

describe('fire times across daylight-saving changes (Europe/Berlin)', () => {
  it('spring: a slot in the skipped hour runs when the hour ends, the others at 02:30 local', async () => {
    const h = harness([job({ cron: '30 2 * * *' })], '2024-03-29T12:00:00Z');
    await h.clock.advanceTo('2024-04-02T12:00:00Z');
    // 02:30 CET (UTC+1); 31 March has no 02:30, so 03:00 CEST; then 02:30 CEST (UTC+2).
    expect(h.started()).toEqual(['2024-03-30T01:30:00.000Z', '2024-03-31T01:00:00.000Z', '2024-04-01T00:30:00.000Z', '2024-04-02T00:30:00.000Z']);
    h.scheduler.stop();
    await h.done;
  });

  it('autumn: a slot in the repeated hour runs once', async () => {
    const h = harness([job({ cron: '30 2 * * *' })], '2024-10-25T12:00:00Z');
    await h.clock.advanceTo('2024-10-29T12:00:00Z');
    expect(h.started()).toEqual(['2024-10-26T00:30:00.000Z', '2024-10-27T00:30:00.000Z', '2024-10-28T01:30:00.000Z', '2024-10-29T01:30:00.000Z']);
    h.scheduler.stop();
    await h.done;
  });

  it('an hourly job runs 23 times on the spring day and 25 on the autumn day, an hour apart each time', async () => {
    for (const [from, to, runs] of [
      ['2024-03-30T23:00:00Z', '2024-03-31T22:00:00Z', 23],
      ['2024-10-26T22:00:00Z', '2024-10-27T23:00:00Z', 25],
    ] as const) {
      // Local midnight to midnight, the start excluded.
      const h = harness([job({ name: 'hourly', cron: '0 * * * *' })], new Date(new Date(from).getTime() - 1).toISOString());
      await h.clock.advanceTo(new Date(new Date(to).getTime() - 1));
      const slots = h.started().map((s) => new Date(s).getTime());
      expect(slots).toHaveLength(runs);
      expect(slots[0]).toBe(new Date(from).getTime());
      for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBe(3_600_000);
      h.scheduler.stop();
      await h.done;
    }
  });
});

describe('no overlap', () => {
  it('a slot that comes while the job still runs is skipped and recorded; the next one after it ends runs', async () => {
    let finish!: (code: number) => void;
    let runs = 0;
    const h = harness([job({ name: 'often', cron: '*/10 * * * *', timezone: 'UTC' })], '2024-05-01T00:05:00Z', {
      run: () => {
        runs++;
        return new Promise<number>((r) => (finish = r));
      },
    });
    await h.clock.advanceTo('2024-05-01T00:35:00Z');
    expect(runs).toBe(1);
    expect(h.records.map((r) => `${r.type} ${r.slot.slice(11, 16)}`)).toEqual(['started 00:10', 'skipped 00:20', 'skipped 00:30']);
    expect(h.records[1]).toMatchObject({ type: 'skipped', job: 'often', at: '2024-05-01T00:20:00.000Z', reason: 'the previous run of the job is still running' });
    finish(0);
    await h.clock.advanceTo('2024-05-01T00:40:00Z');
    expect(h.records.map((r) => `${r.type} ${r.slot.slice(11, 16)}`)).toEqual(['started 00:10', 'skipped 00:20', 'skipped 00:30', 'finished 00:10', 'started 00:40']);
    expect(h.records[3]).toMatchObject({ exit_code: 0, seconds: 25 * 60 });
    finish(0);
    h.scheduler.stop();
    await h.done;
  });

  it('two jobs run side by side: no overlap is per job', async () => {
    const pending: Array<(c: number) => void> = [];
    const h = harness([job({ name: 'a', cron: '0 * * * *', timezone: 'UTC' }), job({ name: 'b', cron: '0 * * * *', timezone: 'UTC' })], '2024-05-01T00:30:00Z', {
      run: () => new Promise<number>((r) => pending.push(r)),
    });
    await h.clock.advanceTo('2024-05-01T01:00:00Z');
    expect(h.started('a')).toEqual(['2024-05-01T01:00:00.000Z']);
    expect(h.started('b')).toEqual(['2024-05-01T01:00:00.000Z']);
    for (const p of pending) p(0);
    h.scheduler.stop();
    await h.done;
  });
});

describe('a job another process holds', () => {
  it('is skipped with the reason the claim gives; a claimed run releases its claim when it ends', async () => {
    const clock = new TestClock(new Date('2024-05-01T00:30:00Z').getTime());
    const records: ScheduleRecord[] = [];
    let holder: string | undefined = 'another etl process (pid 7) is running the job';
    const released: string[] = [];
    const scheduler = new Scheduler({
      jobs: [job({ cron: '0 * * * *', timezone: 'UTC' })],
      clock,
      run: async () => 0,
      record: (r) => void records.push(r),
      claim: (j) => (holder ? { taken: holder } : { release: () => void released.push(j.name) }),
    });
    const done = scheduler.start();
    await clock.advanceTo('2024-05-01T01:00:00Z');
    holder = undefined;
    await clock.advanceTo('2024-05-01T02:00:00Z');
    expect(records.map((r) => `${r.type} ${r.slot.slice(11, 16)}`)).toEqual(['skipped 01:00', 'started 02:00', 'finished 02:00']);
    expect(records[0]).toMatchObject({ reason: 'another etl process (pid 7) is running the job' });
    expect(released).toEqual(['nightly']);
    scheduler.stop();
    await done;
  });
});

describe('catch-up', () => {
  const lastSlots = new Map([['nightly', new Date('2024-03-01T01:00:00Z')]]);

  it('with catchup: true, the latest slot missed while down runs once at start, then the schedule goes on', async () => {
    const h = harness([job({ catchup: true })], '2024-03-04T10:00:00Z', { lastSlots });
    await h.clock.advanceTo('2024-03-04T10:00:00Z');
    expect(h.records.filter((r) => r.type === 'started')).toEqual([{ type: 'started', job: 'nightly', slot: '2024-03-04T01:00:00.000Z', at: '2024-03-04T10:00:00.000Z', catchup: true }]);
    await h.clock.advanceTo('2024-03-05T12:00:00Z');
    expect(h.started()).toEqual(['2024-03-04T01:00:00.000Z', '2024-03-05T01:00:00.000Z']);
    h.scheduler.stop();
    await h.done;
  });

  it('without catchup, or with no earlier run to catch up from, nothing runs until the next slot', async () => {
    for (const [catchup, slots] of [[false, lastSlots], [true, new Map<string, Date>()]] as const) {
      const h = harness([job({ catchup })], '2024-03-04T10:00:00Z', { lastSlots: slots });
      await h.clock.advanceTo('2024-03-05T00:59:00Z');
      expect(h.started()).toEqual([]);
      await h.clock.advanceTo('2024-03-05T01:00:00Z');
      expect(h.started()).toEqual(['2024-03-05T01:00:00.000Z']);
      h.scheduler.stop();
      await h.done;
    }
  });

  it('a job whose last slot is the latest one has nothing to catch up', async () => {
    const h = harness([job({ catchup: true })], '2024-03-04T10:00:00Z', { lastSlots: new Map([['nightly', new Date('2024-03-04T01:00:00Z')]]) });
    await h.clock.advanceTo('2024-03-04T23:00:00Z');
    expect(h.started()).toEqual([]);
    h.scheduler.stop();
    await h.done;
  });
});

describe('job SLA and failures', () => {
  it('a run still going when its SLA runs out raises sla_breach (deadline) then, and only once', async () => {
    let finish!: (code: number) => void;
    const h = harness([job({ sla: '30m', slaSeconds: 1800 })], '2024-04-30T23:00:00Z', { run: () => new Promise<number>((r) => (finish = r)) });
    await h.clock.advanceTo('2024-05-01T00:29:59Z');
    expect(h.started()).toEqual(['2024-05-01T00:00:00.000Z']);
    expect(h.alerts).toEqual([]);
    await h.clock.advanceTo('2024-05-01T00:30:00Z');
    expect(h.alerts).toEqual([{ event: 'sla_breach', job: 'nightly', kind: 'deadline', sla: '30m', sla_seconds: 1800, observed_seconds: 1800, message: 'job nightly has run for 30m (its SLA) and has not finished' }]);
    await h.clock.advanceTo('2024-05-01T00:45:00Z');
    finish(0);
    await h.clock.advanceTo('2024-05-01T00:46:00Z');
    expect(h.alerts).toHaveLength(1);
    h.scheduler.stop();
    await h.done;
  });

  it('a run that finishes within its SLA raises nothing', async () => {
    let finish!: (code: number) => void;
    const h = harness([job({ sla: '30m', slaSeconds: 1800 })], '2024-04-30T23:00:00Z', { run: () => new Promise<number>((r) => (finish = r)) });
    await h.clock.advanceTo('2024-05-01T00:29:00Z');
    finish(0);
    await h.clock.advanceTo('2024-05-01T12:00:00Z');
    expect(h.alerts).toEqual([]);
    h.scheduler.stop();
    await h.done;
  });

  it('a run that exits with an error of its own (2: a bad project) raises failure; one whose nodes failed (1) does not', async () => {
    for (const [code, alerts] of [[2, 1], [1, 0]] as const) {
      const h = harness([job()], '2024-05-01T00:30:00Z', { exitCode: code });
      await h.clock.advanceTo('2024-05-02T00:30:00Z');
      expect(h.alerts, `exit ${code}`).toHaveLength(alerts);
      if (alerts) expect(h.alerts[0]).toEqual({ event: 'failure', job: 'nightly', status: 'error', exit_code: 2, message: 'job nightly (build) exited with 2' });
      h.scheduler.stop();
      await h.done;
    }
  });
});

describe('stopping', () => {
  it('stop() aborts the running run\'s signal and resolves once it has finished; no slot fires after', async () => {
    let signal!: AbortSignal;
    let finish!: (code: number) => void;
    const h = harness([job({ cron: '0 * * * *', timezone: 'UTC' })], '2024-05-01T00:30:00Z', {
      run: (_job, run) => {
        signal = run.signal;
        return new Promise<number>((r) => (finish = r));
      },
    });
    await h.clock.advanceTo('2024-05-01T01:00:00Z');
    expect(signal.aborted).toBe(false);
    h.scheduler.stop();
    expect(signal.aborted).toBe(true);
    let resolved = false;
    void h.done.then(() => (resolved = true));
    await h.clock.advanceTo('2024-05-01T03:00:00Z');
    expect(resolved).toBe(false);
    finish(130);
    await h.done;
    expect(h.records.map((r) => r.type)).toEqual(['started', 'finished']);
    expect(h.records[1]).toMatchObject({ exit_code: 130 });
  });
});

describe('what is recorded in target/', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('schedule.jsonl gets every record; schedule-state.json the latest slot of each job', () => {
    const target = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-sched-'));
    dirs.push(target);
    recordRun(target, { type: 'started', job: 'a', slot: '2024-05-01T01:00:00.000Z', at: '2024-05-01T01:00:00.000Z', catchup: false });
    recordRun(target, { type: 'skipped', job: 'a', slot: '2024-05-01T02:00:00.000Z', at: '2024-05-01T02:00:00.000Z', reason: 'x' });
    recordRun(target, { type: 'finished', job: 'a', slot: '2024-05-01T01:00:00.000Z', at: '2024-05-01T02:10:00.000Z', exit_code: 0, seconds: 4200 });
    recordRun(target, { type: 'started', job: 'b', slot: '2024-05-01T01:30:00.000Z', at: '2024-05-01T01:30:00.000Z', catchup: true });
    const lines = fs.readFileSync(path.join(target, SCHEDULE_LOG_FILE), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => `${l.type}:${l.job}`)).toEqual(['started:a', 'skipped:a', 'finished:a', 'started:b']);
    expect(JSON.parse(fs.readFileSync(path.join(target, SCHEDULE_STATE_FILE), 'utf8'))).toEqual({ version: 1, jobs: { a: { last_slot: '2024-05-01T02:00:00.000Z' }, b: { last_slot: '2024-05-01T01:30:00.000Z' } } });
  });
});
