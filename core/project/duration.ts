// Durations as etl.yml writes them: "30s", "30m", "12h", "2d". One home for
// the pattern and its parsing: source freshness, SLAs, alert timeouts and
// the history commands' --since read the same text.

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** The text of a duration: a number and a unit (s, m, h or d). */
export const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$/;

export const DURATION_HINT = 'expected a duration like "30m", "12h" or "2d"';

/** "12h" -> 43200 seconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_PATTERN.exec(text);
  return m ? Number(m[1]) * UNITS[m[2]!]! : undefined;
}

/**
 * A short wait (retry backoff): "250ms", "2s", "5m", "1h", or a bare number of
 * seconds. Written separately from DURATION_PATTERN because waits go below a
 * second and SLAs and freshness go up to days.
 */
export const WAIT_DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/;

const WAIT_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A wait in milliseconds: a number of seconds or WAIT_DURATION_PATTERN's text; undefined when malformed. */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return value >= 0 && Number.isFinite(value) ? value * 1000 : undefined;
  const m = WAIT_DURATION_PATTERN.exec(value);
  return m ? Number(m[1]) * WAIT_UNITS_MS[m[2] ?? 's']! : undefined;
}
