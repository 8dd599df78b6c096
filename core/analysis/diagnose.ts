// Turns a binder's message about compiled SQL into a compile error about the
// template: the position mapped back to the model file, the message said in
// terms of the project (which upstream model lacks the column, and the
// closest name it has), the engine's wording kept where it is already clear.

import { closestMatch, type Diagnostic } from '../errors.js';
import type { BoundColumn } from './binder.js';
import { offsetOf, templatePosition } from './template-position.js';

/** An input of the model being bound, as the compiled SQL names it. */
export interface BindInput {
  /** What a user calls it: the model or seed name, or source.table. */
  label: string;
  /** The quoted relation as it appears in the compiled SQL. */
  relation: string;
  columns: BoundColumn[];
}

export interface BindFailure {
  file: string;
  template: string;
  compiled: string;
  message: string;
  inputs: BindInput[];
  /** The check's own finding (not DuckDB's message): its hint and offset in `compiled`. */
  hint?: string;
  offset?: number;
}

/** Offset in the compiled SQL that DuckDB's "LINE n: ... ^" excerpt points at. */
export function errorOffset(message: string, compiled: string): number | undefined {
  const m = /\nLINE (\d+): (.*)\n( *)\^/.exec(message);
  if (!m) return undefined;
  const line = Number(m[1]);
  const prefix = `LINE ${m[1]}: `.length;
  let excerpt = m[2]!;
  let caret = m[3]!.length - prefix;
  // Long lines are cut to a window around the error, marked with "...".
  const lineText = compiled.split('\n')[line - 1] ?? '';
  if (excerpt.startsWith('...')) {
    excerpt = excerpt.slice(3);
    caret -= 3;
  }
  if (excerpt.endsWith('...')) excerpt = excerpt.slice(0, -3);
  const at = lineText.indexOf(excerpt.slice(0, Math.max(0, Math.min(excerpt.length, 40))));
  const col = (at === -1 ? 0 : at) + caret;
  return offsetOf(compiled, line, Math.max(1, col + 1));
}

/** The diagnostic for a model whose SQL does not bind. */
export function bindDiagnostic(f: BindFailure): Diagnostic {
  const offset = f.offset ?? errorOffset(f.message, f.compiled);
  const pos = offset === undefined ? undefined : templatePosition(f.template, f.compiled, offset);
  const { message, hint } = f.hint !== undefined ? { message: f.message, hint: f.hint } : explain(f);
  return { file: f.file, line: pos?.line ?? 1, col: pos?.col, message, hint };
}

function explain(f: BindFailure): { message: string; hint?: string } {
  const text = f.message.replace(/\n\nLINE \d+:[\s\S]*$/, '');
  const [first = '', ...rest] = text.replace(/^[A-Za-z ]+ Error: /, '').split('\n');
  let m = /^Referenced column "(.+?)" not found in FROM clause!/.exec(first);
  if (m) {
    const column = m[1]!;
    const candidates = [...text.matchAll(/"([^"]+)"/g)].slice(1).map((c) => c[1]!);
    return missingColumn(column, f.inputs, candidates);
  }
  m = /^(?:Table|Values list) "(.+?)" does not have a column named "(.+?)"/.exec(first);
  if (m) {
    const input = inputForAlias(m[1]!, f.compiled, f.inputs);
    if (input) return missingColumn(m[2]!, [input], []);
    // An alias of a CTE or subquery: name the CTE when the SQL says which.
    const cte = cteForAlias(m[1]!, f.compiled);
    const candidates = [...text.matchAll(/"([^"]+)"/g)].slice(2).map((c) => c[1]!);
    const near = suggest(m[2]!, candidates);
    return { message: `column "${m[2]}" not found in ${cte ?? m[1]}${near ? ` (did you mean "${near}"?)` : ''}`, hint: candidatesHint(text) };
  }
  m = /^Ambiguous reference to column name "(.+?)" \(use: (.+)\)/.exec(first);
  if (m) return { message: `column "${m[1]}" is ambiguous: more than one input has it`, hint: `qualify it: ${m[2]!.replace(/"/g, '')}` };
  const detail = rest.filter((l) => l.trim() && !/^Candidate/.test(l.trim())).slice(0, 1).join(' ').trim();
  return { message: first.replace(/!$/, ''), hint: candidatesHint(text) ?? (detail || undefined) };
}

function candidatesHint(text: string): string | undefined {
  const fns = /Candidate functions:\n((?:\t.*\n?)+)/.exec(text);
  if (fns) {
    const list = fns[1]!.split('\n').map((l) => l.trim()).filter(Boolean);
    return `candidates: ${list.slice(0, 4).join('; ')}${list.length > 4 ? '; ...' : ''}`;
  }
  const bindings = /Candidate bindings: (.*)/.exec(text);
  return bindings ? `columns in scope: ${bindings[1]}` : undefined;
}

function missingColumn(column: string, inputs: BindInput[], candidates: string[]): { message: string; hint?: string } {
  // The input that has the closest name is the one the user meant; otherwise all of them lack it.
  // DuckDB's candidates are the columns in scope: the inputs that have them are the ones in scope.
  const inScope = candidates.length ? inputs.filter((i) => i.columns.some((c) => candidates.includes(c.name))) : [];
  if (inScope.length) inputs = inScope;
  let owner: BindInput | undefined;
  let suggestion: string | undefined;
  for (const input of inputs) {
    const near = suggest(column, input.columns.map((c) => c.name));
    if (near && (!suggestion || candidates.includes(near))) {
      owner = input;
      suggestion = near;
    }
  }
  if (!owner && inputs.length === 1) owner = inputs[0];
  if (!suggestion && candidates.length) suggestion = suggest(column, candidates);
  const where = owner ? owner.label : inputs.length ? inputs.map((i) => i.label).join(', ') : 'the FROM clause';
  const message = `column "${column}" not found in ${where}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
  const lister = owner ?? (inputs.length === 1 ? inputs[0] : undefined);
  const hint = lister ? `${lister.label} has: ${lister.columns.map((c) => c.name).slice(0, 12).join(', ')}${lister.columns.length > 12 ? ', ...' : ''}` : undefined;
  return { message, hint };
}

/** A close name (edit distance), or one that contains the name (amount -> amount_usd). */
function suggest(name: string, candidates: string[]): string | undefined {
  const lower = name.toLowerCase();
  return closestMatch(name, candidates) ?? candidates.find((c) => c.toLowerCase().includes(lower) || (lower.includes(c.toLowerCase()) && c.length > 2));
}

/** The CTE (or table) an alias stands for: `from order_payments as p`. */
function cteForAlias(alias: string, compiled: string): string | undefined {
  const escaped = alias.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`\\b(?:from|join)\\s+("[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)\\s+(?:as\\s+)?"?${escaped}"?(?![A-Za-z0-9_$])`, 'i').exec(compiled);
  return m ? m[1]!.replace(/^"|"$/g, '').replace(/^__etl_ephemeral__/, '') : undefined;
}

/** Which input a table alias of the compiled SQL stands for (`"main"."stg_orders" as o`). */
function inputForAlias(alias: string, compiled: string, inputs: BindInput[]): BindInput | undefined {
  const lower = alias.toLowerCase();
  for (const input of inputs) {
    let at = compiled.indexOf(input.relation);
    while (at !== -1) {
      const after = compiled.slice(at + input.relation.length, at + input.relation.length + alias.length + 12);
      const m = /^\s+(?:as\s+)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)/i.exec(after);
      const name = m ? m[1]!.replace(/^"|"$/g, '').replace(/""/g, '"') : undefined;
      if (name?.toLowerCase() === lower) return input;
      at = compiled.indexOf(input.relation, at + 1);
    }
    const bare = input.relation.split('.').pop()!.replace(/^"|"$/g, '');
    if (bare.toLowerCase() === lower) return input;
  }
  return undefined;
}
