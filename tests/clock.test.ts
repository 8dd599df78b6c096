// The run clock (core/clock.ts): ETL_NOW or the `now` option pins every "now" of a run.

import { describe, expect, it } from 'vitest';
import { runClock } from '../core/clock.js';
import { ProjectError } from '../core/errors.js';

describe('runClock', () => {
  it('ETL_NOW pins the clock; a time without a zone, or a date, is UTC; an offset is honoured', () => {
    const at = (text: string) => runClock(undefined, { ETL_NOW: text }).now().toISOString();
    expect(at('2024-03-10T12:00:00Z')).toBe('2024-03-10T12:00:00.000Z');
    expect(at('2024-03-10 12:00:00')).toBe('2024-03-10T12:00:00.000Z');
    expect(at('2024-03-10')).toBe('2024-03-10T00:00:00.000Z');
    expect(at('2024-03-10T12:00:00.250+02:00')).toBe('2024-03-10T10:00:00.250Z');
    expect(at('2024-03-10T12:00+0130')).toBe('2024-03-10T10:30:00.000Z');
    const clock = runClock(undefined, { ETL_NOW: '2024-03-10' });
    expect(clock.pinned).toBe(true);
    expect(clock.now().getTime()).toBe(clock.now().getTime());
  });

  it('the option wins over ETL_NOW; without either it is the system clock', () => {
    expect(runClock('2020-01-01', { ETL_NOW: '2024-03-10' }).now().toISOString()).toBe('2020-01-01T00:00:00.000Z');
    expect(runClock(new Date(Date.UTC(2021, 0, 2)), {}).now().toISOString()).toBe('2021-01-02T00:00:00.000Z');
    const system = runClock(undefined, {});
    expect(system.pinned).toBe(false);
    const before = Date.now();
    const t = system.now().getTime();
    expect(t).toBeGreaterThanOrEqual(before);
  });

  it('a value that is not an instant is a usage error naming the variable and an example', () => {
    for (const bad of ['yesterday', '2024-02-30', '2024-13-01', '10/03/2024', '2024-03-10T25:00:00Z']) {
      expect(() => runClock(undefined, { ETL_NOW: bad }), bad).toThrow(ProjectError);
    }
    expect(() => runClock(undefined, { ETL_NOW: 'yesterday' })).toThrow(/ETL_NOW="yesterday" is not a timestamp[\s\S]*ETL_NOW=2024-01-06T01:00:00Z/);
    expect(() => runClock('soon', {})).toThrow(/now="soon" is not a timestamp/);
  });
});
