// Errors the user can act on. Every problem with the project is a Diagnostic
// naming file:line:col and a hint; problems are collected, not thrown on the
// first, so a user with three broken models sees all three in one run.
// Exit codes: 2 for a bad project or bad usage, 1 for a failed run.

export interface Diagnostic {
  /** Path relative to the project root, when the problem is in a file. */
  file?: string;
  line?: number;
  col?: number;
  message: string;
  /** What to do about it. */
  hint?: string;
}

/** A problem with the project or the command line: exit code 2, nothing is written to the target. */
export class ProjectError extends Error {
  readonly exitCode = 2;
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'ProjectError';
  }
}

/** A failure while running against the target (connection lost, lock held): exit code 1 unless stated. */
export class RunError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = 'RunError';
  }
}

export function formatDiagnostic(d: Diagnostic): string {
  let where = '';
  if (d.file) {
    where = d.file;
    if (d.line !== undefined) where += `:${d.line}`;
    if (d.line !== undefined && d.col !== undefined) where += `:${d.col}`;
    where += ': ';
  }
  return `${where}${d.message}${d.hint ? `\n  hint: ${d.hint}` : ''}`;
}

/** Collects diagnostics from one stage; `throwIfAny` ends the stage with all of them. */
export class Diagnostics {
  readonly list: Diagnostic[] = [];
  add(d: Diagnostic): void {
    this.list.push(d);
  }
  get size(): number {
    return this.list.length;
  }
  throwIfAny(): void {
    if (this.list.length > 0) throw new ProjectError(this.list);
  }
}

/** Levenshtein distance, bounded: returns max+1 as soon as the distance exceeds max. */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      rowMin = Math.min(rowMin, cur[j]!);
    }
    if (rowMin > max) return max + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest candidate to `name`, if one is close enough to be a plausible typo. */
export function closestMatch(name: string, candidates: Iterable<string>): string | undefined {
  const max = Math.max(2, Math.floor(name.length / 3));
  let best: string | undefined;
  let bestDistance = max + 1;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase(), max);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const match = closestMatch(name, candidates);
  return match ? `did you mean "${match}"?` : undefined;
}
