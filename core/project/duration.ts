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
