// Maps a position in a model's compiled SQL back to its template file, so a
// binder error is reported at the line the user wrote. The renderer keeps no
// source map; instead the template's literal text (everything outside
// {{...}} tags) is found again in the compiled SQL. Matching runs from the
// end because the compiler only ever prepends (ephemeral CTEs), and pieces
// that are absent (a false {{#if}} branch) are skipped.

interface Piece {
  text: string;
  templateOffset: number;
  compiledOffset?: number;
}

const TAG = /\{\{\{?[\s\S]*?\}?\}\}/g;

/** Literal pieces of a template: the text between tags, one per line, trimmed. */
function literalPieces(template: string): Piece[] {
  const pieces: Piece[] = [];
  const addSpan = (start: number, end: number) => {
    let lineStart = start;
    while (lineStart < end) {
      const nl = template.indexOf('\n', lineStart);
      const lineEnd = nl === -1 || nl >= end ? end : nl;
      const raw = template.slice(lineStart, lineEnd);
      const lead = raw.length - raw.trimStart().length;
      const text = raw.trim();
      if (text) pieces.push({ text, templateOffset: lineStart + lead });
      lineStart = lineEnd + 1;
    }
  };
  let last = 0;
  for (const m of template.matchAll(TAG)) {
    addSpan(last, m.index);
    last = m.index + m[0].length;
  }
  addSpan(last, template.length);
  return pieces;
}

/** 1-based line and column of `offset` in `text`. */
export function lineColOf(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, col: offset - lineStart + 1 };
}

/** Offset in `text` of a 1-based line and column. */
export function offsetOf(text: string, line: number, col: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', offset);
    if (nl === -1) return text.length;
    offset = nl + 1;
  }
  return Math.min(text.length, offset + col - 1);
}

/** The template position (1-based line:col) that produced `compiledOffset` of `compiled`. */
export function templatePosition(template: string, compiled: string, compiledOffset: number): { line: number; col: number } {
  const pieces = literalPieces(template);
  let cursor = compiled.length;
  for (let i = pieces.length - 1; i >= 0; i--) {
    const p = pieces[i]!;
    const at = compiled.lastIndexOf(p.text, cursor - p.text.length);
    if (at === -1) continue;
    p.compiledOffset = at;
    cursor = at;
  }
  let before: Piece | undefined;
  let after: Piece | undefined;
  for (const p of pieces) {
    if (p.compiledOffset === undefined) continue;
    if (compiledOffset >= p.compiledOffset && compiledOffset < p.compiledOffset + p.text.length) {
      return lineColOf(template, p.templateOffset + (compiledOffset - p.compiledOffset));
    }
    if (p.compiledOffset + p.text.length <= compiledOffset) before = p;
    else if (!after) after = p;
  }
  // Inside something a tag rendered: point at the tag between the literals around it.
  const from = before ? before.templateOffset + before.text.length : 0;
  const tag = template.indexOf('{{', from);
  if (tag !== -1 && (!after || tag < after.templateOffset)) return lineColOf(template, tag);
  return lineColOf(template, from);
}
