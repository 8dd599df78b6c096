// Parses a Handlebars template into its syntax tree. Parsing is the only part
// of Handlebars we use: rendering walks the tree (render.ts), which avoids
// generating and compiling a JS function per template.

import Handlebars from 'handlebars';
import type { Diagnostic } from '../errors.js';

export type Ast = hbs.AST.Program;

export function parseTemplate(file: string, text: string): { ast: Ast } | { error: Diagnostic } {
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
