// SQL text as every engine needs it, before any engine sees it: a model's or
// a test's query is often wrapped as a subquery (a preview, a count of
// failing rows, a batch, an inlined ephemeral), where a trailing `;` that is
// harmless at the end of a statement becomes a parser error.

/** Index of the first character at or after `from` that is not whitespace or a SQL comment. */
export function skipTrivia(sql: string, from = 0): number {
  let i = from;
  for (;;) {
    while (i < sql.length && /\s/.test(sql[i]!)) i++;
    if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? sql.length : nl + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
    } else return i;
  }
}

/**
 * The query without the semicolons that end it (`select 1;`, `select 1; -- done`),
 * so that it can be wrapped as a subquery. Only semicolons followed by nothing
 * but whitespace and comments are removed; the comments stay, and the caller
 * wraps the result on lines of its own so a trailing `--` comment ends there.
 */
export function selectBody(sql: string): string {
  let body = sql;
  for (let end = body.lastIndexOf(';'); end >= 0; end = body.lastIndexOf(';')) {
    if (skipTrivia(body, end + 1) !== body.length) break;
    body = body.slice(0, end) + body.slice(end + 1);
  }
  return body;
}
