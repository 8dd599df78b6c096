// Test thresholds: `warn_if` / `error_if` as in dbt, e.g. ">10", ">=5", "!=0".
// A test's status comes from its failure count: error if error_if holds
// (and severity is error), else warn if warn_if holds, else pass.

export interface Threshold {
  op: '>' | '>=' | '<' | '<=' | '=' | '==' | '!=' | '<>';
  value: number;
  text: string;
}

const PATTERN = /^\s*(>=|<=|!=|<>|==|>|<|=)\s*(\d+(?:\.\d+)?)\s*$/;

/** Parses a threshold; returns undefined when malformed. */
export function parseThreshold(text: string): Threshold | undefined {
  const m = PATTERN.exec(text);
  if (!m) return undefined;
  return { op: m[1] as Threshold['op'], value: Number(m[2]), text: text.trim() };
}

export function holds(t: Threshold, failures: number): boolean {
  switch (t.op) {
    case '>':
      return failures > t.value;
    case '>=':
      return failures >= t.value;
    case '<':
      return failures < t.value;
    case '<=':
      return failures <= t.value;
    case '=':
    case '==':
      return failures === t.value;
    case '!=':
    case '<>':
      return failures !== t.value;
  }
}

export type TestStatus = 'pass' | 'warn' | 'fail';

export function testStatus(failures: number, config: { severity?: 'error' | 'warn'; warn_if?: string; error_if?: string }): TestStatus {
  const errorIf = requireThreshold('error_if', config.error_if);
  const warnIf = requireThreshold('warn_if', config.warn_if);
  if ((config.severity ?? 'error') === 'error' && holds(errorIf, failures)) return 'fail';
  if (holds(warnIf, failures)) return 'warn';
  return 'pass';
}

// Generic tests have their thresholds checked at compile time; a singular
// test's {{config warn_if=...}} is not, so a malformed one must fail here
// with a clear message rather than be ignored or crash on `undefined`.
function requireThreshold(key: 'warn_if' | 'error_if', text: string | undefined): Threshold {
  const t = parseThreshold(text ?? '!=0');
  if (!t) throw new Error(`malformed threshold ${key}: ${JSON.stringify(text)}; write a comparison with a number, e.g. ">10", ">=5", "!=0"`);
  return t;
}
