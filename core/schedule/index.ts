// `etl schedule`: the project's jobs run by a long-lived process, one job run
// once for an external scheduler (--once), or the next fire times (--list).
// A job's run is a child process of the same etl (`etl <command> --project-dir
// <root>`, ETL_JOB=<name> in its environment): each run gets a fresh process
// (its own memory, its own lock on the target, its own Ctrl-C handling), and
// a crash in one run cannot take the scheduler down. Stopping the scheduler
// sends the running child one SIGTERM, which cancels its run cleanly (the
// runner's interrupt: nothing half built), and waits for it.
//
// What the scheduler remembers lives in target/: schedule-state.json (the
// last slot of each job, what catch-up compares with), schedule.jsonl
// (every started, finished and skipped run, appended; a skipped one also goes
// to the run history, core/history), and while a job runs,
// schedule-<job>.lock (the pid of the etl running it), so that no two
// processes run one job at once (two schedulers, or an external --once).

import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ProjectError } from '../errors.js';
import { didYouMean } from '../errors.js';
import { writeFileAtomic } from '../compiler/artifacts.js';
import { scanProject, type ProjectScan } from '../project/load.js';
import type { JobConfig } from '../project/orchestration.js';
import { systemSchedulerClock, type SchedulerClock } from './clock.js';
import { Scheduler, nextFireTimes, type JobRunner, type ScheduleEvent, type ScheduleRecord } from './scheduler.js';

export { Scheduler, nextFireTimes, type JobRunner, type ScheduleEvent, type ScheduleRecord } from './scheduler.js';
export { systemSchedulerClock, type SchedulerClock } from './clock.js';

export const SCHEDULE_STATE_FILE = 'schedule-state.json';
export const SCHEDULE_LOG_FILE = 'schedule.jsonl';

export interface ScheduleOptions {
  projectDir: string;
  target?: string;
  /** --vars as given to `etl schedule`, passed on to each run. */
  varsText?: string;
  env?: NodeJS.ProcessEnv;
  /** How to start etl for a run: the node binary and the CLI script (the CLI passes its own). */
  etl: string[];
  /** Passed on to each run that does not set its own. */
  logFormat?: 'text' | 'json';
  onEvent?: (event: ScheduleEvent) => void;
  /** Alerts that could not be delivered. */
  onWarning?: (message: string) => void;
  clock?: SchedulerClock;
}

/** The project's jobs; exit 2 when it has none. */
function projectJobs(options: ScheduleOptions): { scan: ProjectScan; jobs: JobConfig[] } {
  const scan = scanProject(options.projectDir, { target: options.target, env: options.env });
  if (scan.jobs.length === 0) {
    throw new ProjectError([{ file: 'etl.yml', message: 'etl.yml declares no jobs', hint: 'add `jobs: [{ name: nightly, cron: "0 2 * * *", command: "build" }]`' }]);
  }
  return { scan, jobs: scan.jobs };
}

/** A job by name, or exit 2 naming where the jobs are declared. */
function findJob(scan: ProjectScan, name: string): JobConfig {
  const job = scan.jobs.find((j) => j.name === name);
  if (job) return job;
  const names = scan.jobs.map((j) => j.name);
  throw new ProjectError([scan.configYaml.diagnostic(['jobs'], `unknown job "${name}"`, didYouMean(name, names) ?? `the jobs of etl.yml: ${names.join(', ')}`, true)]);
}

/** `etl schedule --list`: each job's next `count` fire times. */
export function listSchedule(options: ScheduleOptions & { count: number }): Array<{ job: JobConfig; next: Date[] }> {
  const { jobs } = projectJobs(options);
  const now = (options.clock ?? systemSchedulerClock).now();
  return jobs.map((job) => ({ job, next: nextFireTimes(job, now, options.count) }));
}

/** `etl schedule`: runs until `signal` aborts, then lets the running runs stop cleanly. */
export async function runSchedule(options: ScheduleOptions & { signal: AbortSignal }): Promise<void> {
  const { scan, jobs } = projectJobs(options);
  const scheduler = createScheduler(scan, jobs, options);
  if (options.signal.aborted) return;
  options.signal.addEventListener('abort', () => scheduler.stop(), { once: true });
  await scheduler.start();
}

/** `etl schedule --once <job>`: runs the job now; resolves with its run's exit code. */
export async function runJobOnce(options: ScheduleOptions & { job: string; signal: AbortSignal }): Promise<number> {
  const { scan } = projectJobs(options);
  const job = findJob(scan, options.job);
  const scheduler = createScheduler(scan, [job], options);
  options.signal.addEventListener('abort', () => scheduler.stop(), { once: true });
  const code = await scheduler.runOnce(job);
  await scheduler.drain();
  return code;
}

function createScheduler(scan: ProjectScan, jobs: JobConfig[], options: ScheduleOptions): Scheduler {
  return new Scheduler({
    jobs,
    clock: options.clock ?? systemSchedulerClock,
    run: childRunner(scan, options),
    lastSlots: readLastSlots(scan.targetPath),
    onEvent: options.onEvent,
    record: async (r) => {
      recordRun(scan.targetPath, r);
      // A skipped run is an invocation of the job too: the run history keeps it (in the
      // target; while a run holds an embedded file, in target/ until the next run writes it).
      if (r.type === 'skipped') {
        const { recordSkippedInvocation } = await import('../history/history.js');
        const job = jobs.find((j) => j.name === r.job)!;
        await recordSkippedInvocation({ projectDir: scan.root, scan, target: options.target, env: options.env, job: r.job, command: job.command, reason: r.reason, at: new Date(r.slot) });
      }
    },
    claim: (job) => claimJob(scan.targetPath, job.name),
    raiseAlert: scan.alerts.length
      ? async (event) => {
          const { raiseAlert } = await import('../alerts/index.js');
          return raiseAlert(scan, event, { onUndelivered: options.onWarning ? (m) => options.onWarning!(m) : undefined });
        }
      : undefined,
  });
}

/** Runs a job as `etl <its command> --project-dir <root>` in a process of its own. */
export function childRunner(scan: ProjectScan, options: Pick<ScheduleOptions, 'etl' | 'target' | 'varsText' | 'env' | 'logFormat'>): JobRunner {
  return (job, { signal }) =>
    new Promise<number>((resolve, reject) => {
      const args = [...job.args];
      const has = (...flags: string[]) => args.some((a) => flags.some((f) => a === f || a.startsWith(`${f}=`)));
      if (!has('--project-dir')) args.push('--project-dir', scan.root);
      if (options.target && !has('-t', '--target')) args.push('--target', options.target);
      if (options.varsText && !has('--vars')) args.push('--vars', options.varsText);
      if (options.logFormat && !has('--log-format')) args.push('--log-format', options.logFormat);
      // Its own process group: a Ctrl-C on the terminal reaches the scheduler only, which passes one SIGTERM on.
      const child = spawn(options.etl[0]!, [...options.etl.slice(1), ...args], { stdio: 'inherit', detached: true, env: { ...(options.env ?? process.env), ETL_JOB: job.name } });
      const stop = () => child.kill('SIGTERM');
      child.on('error', (err) => {
        signal.removeEventListener('abort', stop);
        reject(err);
      });
      child.on('close', (code, sig) => {
        signal.removeEventListener('abort', stop);
        resolve(code ?? (sig === 'SIGTERM' ? 143 : sig === 'SIGINT' ? 130 : 137));
      });
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    });
}

function readLastSlots(targetPath: string): Map<string, Date> {
  try {
    const state = JSON.parse(readFileSync(path.join(targetPath, SCHEDULE_STATE_FILE), 'utf8')) as { jobs?: Record<string, { last_slot?: string }> };
    return new Map(Object.entries(state.jobs ?? {}).flatMap(([name, s]) => (s.last_slot ? [[name, new Date(s.last_slot)] as [string, Date]] : [])));
  } catch {
    return new Map();
  }
}

/** Appends the record to schedule.jsonl; a started run also moves its job's last slot in schedule-state.json. */
export function recordRun(targetPath: string, record: ScheduleRecord): void {
  mkdirSync(targetPath, { recursive: true });
  appendFileSync(path.join(targetPath, SCHEDULE_LOG_FILE), `${JSON.stringify(record)}\n`);
  if (record.type === 'finished') return;
  const slots = readLastSlots(targetPath);
  const previous = slots.get(record.job);
  if (previous && previous.getTime() >= new Date(record.slot).getTime()) return;
  slots.set(record.job, new Date(record.slot));
  const jobs = Object.fromEntries([...slots].map(([name, slot]) => [name, { last_slot: slot.toISOString() }]));
  writeFileAtomic(path.join(targetPath, SCHEDULE_STATE_FILE), `${JSON.stringify({ version: 1, jobs }, null, 2)}\n`);
}

/**
 * Takes target/schedule-<job>.lock for this process, or says which live
 * process holds it. A lock left by a process that is gone is taken over.
 */
export function claimJob(targetPath: string, job: string): { release(): void } | { taken: string } {
  const file = path.join(targetPath, `schedule-${job}.lock`);
  mkdirSync(targetPath, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return { release: () => rmSync(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return { taken: `another etl process (pid ${pid}) is running the job` };
      rmSync(file, { force: true });
    }
  }
  return { taken: `another etl process is taking ${file}` };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
