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
      const open = /\{\{#\s*([\w.-]+)/.exec(text)?.[1] ?? 'block';
      return { file, line, col, message: `template error: a {{#${open}}} block is never closed`, hint: `add {{/${open}}} where the block ends` };
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
  const line = lineMatch ? Number(lineMatch[1]) : undefined;
  if (closeMismatch) {
    return {
      file,
      line,
      message: `template error: {{/${closeMismatch[2]}}} closes a {{#${closeMismatch[1]}}} block`,
      hint: `close the block with {{/${closeMismatch[1]}}}`,
    };
  }
  return { file, line, message: `template error: ${message.split('\n')[0]}` };
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
