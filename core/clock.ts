// The run clock: where every "now" of an invocation comes from (microbatch
// batch bounds, snapshot versions, quarantine times, source freshness, the
// run's records in the state and in run_results.json). Read once per
// invocation: ETL_NOW (or the API's `now` option) pins it to one instant for
// the whole run, so a run is reproducible whatever the wall clock says (tests,
// replaying a day's run); without it, the system clock. Durations
// (execution_time, elapsed seconds) are measured, not read from this clock.

import { ProjectError } from './errors.js';

export interface Clock {
  now(): Date;
  /** True when ETL_NOW (or the `now` option) fixed the time. */
  readonly pinned: boolean;
}

export const systemClock: Clock = { now: () => new Date(), pinned: false };

export function pinnedClock(at: Date): Clock {
  const t = at.getTime();
  return { now: () => new Date(t), pinned: true };
}

/** The clock of one invocation: `now` (the API option) or ETL_NOW, else the system clock. */
export function runClock(now: Date | string | undefined, env: NodeJS.ProcessEnv = process.env): Clock {
  if (now instanceof Date) return pinnedClock(now);
  const text = now ?? env.ETL_NOW;
  if (text === undefined || text.trim() === '') return systemClock;
  const at = parseInstant(text);
  if (!at) {
    throw new ProjectError([{ message: `${now === undefined ? 'ETL_NOW' : 'now'}=${JSON.stringify(text)} is not a timestamp`, hint: 'give an ISO 8601 instant, e.g. ETL_NOW=2024-01-06T01:00:00Z (no zone means UTC)' }]);
  }
  return pinnedClock(at);
}

/** An ISO 8601 date or timestamp; without a zone it is UTC. */
function parseInstant(text: string): Date | undefined {
  const s = text.trim();
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i.exec(s);
  if (!m) return undefined;
  const [y, mo, da] = m[1]!.split('-').map(Number) as [number, number, number];
  if (new Date(Date.UTC(y, mo - 1, da)).getUTCDate() !== da) return undefined; // 2024-02-30
  const zone = m[3] ? m[3].toUpperCase().replace(/^([+-]\d{2})$/, '$1:00').replace(/^([+-]\d{2})(\d{2})$/, '$1:$2') : 'Z';
  const d = new Date(`${m[1]}T${m[2] ?? '00:00:00'}${zone}`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
