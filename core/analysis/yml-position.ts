// Where an entry of a properties yml is: the line of `name: <x>` for each
// step of a path such as ['models', 'orders', 'amount'], found in order in
// the file's text. Diagnostics about declared things (a contract's column, a
// source) point there rather than at line 1.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { lineColOf } from './template-position.js';

export function ymlPosition(root: string, file: string, steps: string[]): { line: number; col?: number } {
  let text = '';
  try {
    text = readFileSync(path.join(root, file), 'utf8');
  } catch {
    // A file gone since compile: line 1 will do.
  }
  let at = 0;
  let found = -1;
  for (const step of steps) {
    const escaped = step.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const re = new RegExp(`(^|[\\s{,-])(name:\\s*["']?${escaped}["']?\\s*($|[,}\\n#])|${escaped}:)`, 'mg');
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) break;
    found = m.index + m[1]!.length;
    at = found + 1;
  }
  return found === -1 ? { line: 1 } : lineColOf(text, found);
}
