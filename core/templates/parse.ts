// Parses a Handlebars template into its syntax tree. Parsing is the only part
// of Handlebars we use: rendering walks the tree (render.ts), which avoids
// generating and compiling a JS function per template.
//
// Most templates are SQL with a few plain mustaches ({{ref "orders"}},
// {{var "start"}}, {{this}}-free): those get the very tree Handlebars' parser
// would give, built by a scan of the text (parseSimple), because that parser
// (a generated LALR parser whose lexer tries dozens of regexes per token) was
// a fifth of a cold compile at 10,000 models. Anything else (blocks,
// partials, comments, hashes, subexpressions, escapes, whitespace control,
// paths with dots) goes to Handlebars. tests/templates-parse.test.ts checks
// that both give the same trees.

import Handlebars from 'handlebars';
import type { Diagnostic } from '../errors.js';

export type Ast = hbs.AST.Program;

export function parseTemplate(file: string, text: string): { ast: Ast } | { error: Diagnostic } {
  const simple = parseSimple(text);
  if (simple) return { ast: simple };
  try {
    return { ast: Handlebars.parse(text) };
  } catch (err) {
    return { error: parseErrorToDiagnostic(file, text, err as Error) };
  }
}

function parseErrorToDiagnostic(file: string, text: string, err: Error): Diagnostic {
  const message = err.message ?? String(err);
  // Handlebars' parser: "Parse error on line N:\n<snippet>\n----^\nExpecting ..., got 'X'"
  const m = /^Parse error on line (\d+):\n(.*)\n(-*)\^\n(.*)$/s.exec(message);
  if (m) {
    const line = Number(m[1]);
    const snippet = m[2]!;
    const caret = m[3]!.length;
    const lineText = text.split('\n')[line - 1] ?? '';
    const before = snippet.slice(0, caret).replace(/^\.\.\./, '');
    const idx = lineText.indexOf(before);
    const col = idx >= 0 ? idx + before.length + 1 : undefined;
    const expecting = m[4]!;
    const got = /got '([^']+)'/.exec(expecting)?.[1];
    if (got === 'EOF' && /OPEN_ENDBLOCK/.test(expecting)) {
      // Handlebars reports the end of the file; point at the block left open instead.
      const open = unclosedBlock(text);
      const name = open?.name ?? 'block';
      return {
        file,
        line: open?.line ?? line,
        col: open ? open.col : col,
        message: `template error: a {{#${name}}} block is never closed`,
        hint: `add {{/${name}}} where the block ends`,
      };
    }
    return {
      file,
      line,
      col,
      message: `template syntax error${got ? ` at ${describeToken(got)}` : ''}`,
      hint: 'check that every {{ has a matching }} and that helper arguments are quoted, e.g. {{ref "orders"}}',
    };
  }
  const closeMismatch = /(\S+) doesn't match (\S+)/.exec(message);
  const lineMatch = /line (\d+)/.exec(message);
  // Handlebars' Exception carries the position of the node ("each doesn't match if - 2:3").
  const located = err as Error & { lineNumber?: number; column?: number };
  const line = located.lineNumber ?? (lineMatch ? Number(lineMatch[1]) : undefined);
  const col = located.column !== undefined ? located.column + 1 : undefined;
  if (closeMismatch) {
    return {
      file,
      line,
      col,
      message: `template error: {{/${closeMismatch[2]}}} closes a {{#${closeMismatch[1]}}} block`,
      hint: `close the block with {{/${closeMismatch[1]}}}`,
    };
  }
  return { file, line, col, message: `template error: ${message.split('\n')[0]}` };
}

/** The innermost block tag left open at the end of `text`, found by scanning its tags. */
function unclosedBlock(text: string): { name: string; line: number; col: number } | undefined {
  const stack: Array<{ name: string; index: number }> = [];
  const tags = /\{\{!--[\s\S]*?--\}\}|\{\{![\s\S]*?\}\}|\{\{~?\s*([#^/])\s*[>*]?\s*([^\s}~()]+)/g;
  for (const m of text.matchAll(tags)) {
    if (!m[1]) continue; // a comment
    if (m[1] === '/') {
      const i = stack.map((b) => b.name).lastIndexOf(m[2]!);
      if (i >= 0) stack.length = i;
    } else stack.push({ name: m[2]!, index: m.index! });
  }
  const open = stack[stack.length - 1];
  if (!open) return undefined;
  const before = text.slice(0, open.index).split('\n');
  return { name: open.name, line: before.length, col: before[before.length - 1]!.length + 1 };
}

function describeToken(token: string): string {
  switch (token) {
    case 'EOF':
      return 'end of file';
    case 'INVALID':
      return 'an unexpected character';
    case 'CLOSE':
      return '}}';
    default:
      return token.toLowerCase().replace(/_/g, ' ');
  }
}

/** 1-based line and column of a node, for diagnostics. */
export function nodePosition(node: hbs.AST.Node): { line: number; col: number } {
  return { line: node.loc?.start.line ?? 1, col: (node.loc?.start.column ?? 0) + 1 };
}

interface Position {
  line: number;
  column: number;
}

/** Handlebars' SourceLocation, as its parser makes them (no source name given). */
function loc(start: Position, end: Position): hbs.AST.SourceLocation {
  return { source: undefined, start: { line: start.line, column: start.column }, end: { line: end.line, column: end.column } } as unknown as hbs.AST.SourceLocation;
}

/** Where the parser's lexer is after `text` from `at`: it counts \r\n, \r and \n as line breaks. */
function advance(at: Position, text: string): Position {
  let line = at.line;
  let lastBreak = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) {
      line++;
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      lastBreak = i;
    }
  }
  return lastBreak < 0 ? { line, column: at.column + text.length } : { line, column: text.length - lastBreak - 1 };
}

const SIMPLE_ID = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NUMBER = /^-?[0-9]+(?:\.[0-9]+)?$/;
const KEYWORD_LITERALS = new Set(['true', 'false', 'null', 'undefined', 'this', 'else']);

/**
 * The tree Handlebars.parse gives for a template whose mustaches are all
 * `{{name arg... key=arg...}}` on one line (or `{{> partial ...}}` within a
 * line of other text), each argument a quoted string
 * without backslashes, a number, true, false, null, undefined or a plain
 * name; else undefined (the caller asks Handlebars).
 */
export function parseSimple(text: string): Ast | undefined {
  // Escapes, NUL (the lexer's content rule stops there), and line separators its `.` does not cross.
  if (!text || /\\\{\{|[\0\u2028\u2029]/.test(text)) return undefined;
  const body: hbs.AST.Statement[] = [];
  let at: Position = { line: 1, column: 0 };
  let i = 0;
  const content = (end: number) => {
    if (end <= i) return;
    const value = text.slice(i, end);
    const next = advance(at, value);
    body.push({ type: 'ContentStatement', original: value, value, loc: loc(at, next) } as unknown as hbs.AST.ContentStatement);
    at = next;
    i = end;
  };
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    if (open < 0) {
      content(text.length);
      break;
    }
    content(open);
    const close = text.indexOf('}}', open + 2);
    if (close < 0 || text.charCodeAt(close + 2) === 125 /* } */) return undefined;
    // A partial `{{> name ...}}` is read as a mustache is; whether it stands alone on its line is checked at the end.
    const partial = text[open + 2] === '>';
    const inner = text.slice(open + (partial ? 3 : 2), close);
    if (/[\r\n]/.test(inner)) return undefined;
    // Tokens: `[key=]value`, the value a quoted string (no quote or backslash inside) or a run of other non-space characters.
    const tokens: Array<{ key?: string; start: number; text: string; at: number; quoted: boolean }> = [];
    for (let k = 0; k < inner.length; ) {
      if (inner[k] === ' ' || inner[k] === '\t') {
        k++;
        continue;
      }
      const start = k;
      const key = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(inner.slice(k, k + 64));
      if (key) k += key[0].length;
      const c = inner[k];
      let end: number;
      if (c === '"' || c === "'") {
        end = inner.indexOf(c, k + 1);
        if (end < 0) return undefined;
        end++;
        if (inner.slice(k + 1, end - 1).includes('\\')) return undefined;
      } else {
        end = k;
        while (end < inner.length && inner[end] !== ' ' && inner[end] !== '\t') end++;
      }
      if (end === k || (end < inner.length && inner[end] !== ' ' && inner[end] !== '\t')) return undefined;
      tokens.push({ key: key?.[1], start, text: inner.slice(k, end), at: k, quoted: c === '"' || c === "'" });
      k = end;
    }
    const [head, ...args] = tokens;
    if (!head || head.key || head.quoted || !SIMPLE_ID.test(head.text) || KEYWORD_LITERALS.has(head.text)) return undefined;
    const startCol = at.column; // of `{{`: the content before it is counted
    const line = at.line;
    const innerCol = startCol + (partial ? 3 : 2);
    const span = (from: number, to: number) => loc({ line, column: innerCol + from }, { line, column: innerCol + to });
    const pathOf = (t: { text: string; at: number }) => ({ type: 'PathExpression', data: false, depth: 0, parts: [t.text], original: t.text, loc: span(t.at, t.at + t.text.length) }) as hbs.AST.PathExpression;
    const valueOf = (t: { text: string; at: number; quoted: boolean }): hbs.AST.Expression | undefined => {
      const where = span(t.at, t.at + t.text.length);
      if (t.quoted) {
        const value = t.text.slice(1, -1);
        return { type: 'StringLiteral', value, original: value, loc: where } as hbs.AST.StringLiteral;
      }
      if (NUMBER.test(t.text)) return { type: 'NumberLiteral', value: Number(t.text), original: Number(t.text), loc: where } as unknown as hbs.AST.NumberLiteral;
      if (t.text === 'true' || t.text === 'false') return { type: 'BooleanLiteral', value: t.text === 'true', original: t.text === 'true', loc: where } as unknown as hbs.AST.BooleanLiteral;
      if (t.text === 'null') return { type: 'NullLiteral', original: null, value: null, loc: where } as unknown as hbs.AST.NullLiteral;
      if (t.text === 'undefined') return { type: 'UndefinedLiteral', original: undefined, value: undefined, loc: where } as unknown as hbs.AST.UndefinedLiteral;
      if (SIMPLE_ID.test(t.text) && !KEYWORD_LITERALS.has(t.text)) return pathOf(t);
      return undefined;
    };
    const params: hbs.AST.Expression[] = [];
    const pairs: hbs.AST.HashPair[] = [];
    for (const t of args) {
      const value = valueOf(t);
      // A positional argument after key=value is a syntax error: Handlebars reports it.
      if (!value || (!t.key && pairs.length)) return undefined;
      if (t.key) pairs.push({ type: 'HashPair', key: t.key, value, loc: span(t.start, t.at + t.text.length) } as hbs.AST.HashPair);
      else params.push(value);
    }
    const hash = pairs.length ? ({ type: 'Hash', pairs, loc: loc(pairs[0]!.loc.start, pairs[pairs.length - 1]!.loc.end) } as hbs.AST.Hash) : undefined;
    const end = { line: at.line, column: startCol + close + 2 - open };
    if (partial) {
      if (params.length > 1) return undefined;
      body.push({ type: 'PartialStatement', name: pathOf(head), params, hash, indent: '', strip: { open: false, close: false }, loc: loc(at, end) } as unknown as hbs.AST.PartialStatement);
    } else {
      body.push({ type: 'MustacheStatement', path: pathOf(head), params, hash, escaped: true, strip: { open: false, close: false }, loc: loc(at, end) } as unknown as hbs.AST.MustacheStatement);
    }
    at = end;
    i = close + 2;
  }
  // A partial alone on its line is one Handlebars' whitespace control rewrites (indent, the line's whitespace): its tests, verbatim.
  const original = (st: hbs.AST.Statement | undefined) => (st?.type === 'ContentStatement' ? (st as unknown as { original: string }).original : undefined);
  for (let k = 0; k < body.length; k++) {
    if (body[k]!.type !== 'PartialStatement') continue;
    const prev = original(body[k - 1]);
    const next = original(body[k + 1]);
    const prevWhitespace = k === 0 || (prev !== undefined && (k > 1 ? /\r?\n\s*?$/ : /(^|\r?\n)\s*?$/).test(prev));
    const nextWhitespace = k === body.length - 1 || (next !== undefined && (k + 2 < body.length ? /^\s*?\r?\n/ : /^\s*?(\r?\n|$)/).test(next));
    if (prevWhitespace && nextWhitespace) return undefined;
  }
  const first = body[0]!.loc;
  const last = body[body.length - 1]!.loc;
  return { type: 'Program', body, strip: {}, loc: { source: undefined, start: { line: first.start.line, column: first.start.column }, end: { line: last.end.line, column: last.end.column } } } as unknown as Ast;
}
