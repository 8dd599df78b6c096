// Ephemeral models are not built; their SQL is inlined as CTEs into every
// consumer. A model whose SQL already starts with WITH gets the ephemeral CTEs
// added to its own WITH list, so the result stays one valid statement.

/** The CTE name an ephemeral model renders to inside its consumers. */
export function ephemeralCteName(model: string): string {
  return `__etl_ephemeral__${model}`;
}

/**
 * Prepends `ctes` (name -> SQL, in dependency order) to `sql`.
 * Leading comments and whitespace are kept in front.
 */
export function injectCtes(sql: string, ctes: Array<{ name: string; sql: string }>): string {
  if (ctes.length === 0) return sql;
  const definitions = ctes.map((c) => `${c.name} as (\n${stripTrailingSemicolon(c.sql)}\n)`).join(',\n');
  const start = skipLeadingTrivia(sql);
  const head = sql.slice(0, start);
  const body = sql.slice(start);
  const withMatch = /^with(\s+recursive)?\b/i.exec(body);
  if (withMatch) {
    return `${head}${withMatch[0]} ${definitions},\n${body.slice(withMatch[0].length).trimStart()}`;
  }
  return `${head}with ${definitions}\n${body}`;
}

function stripTrailingSemicolon(sql: string): string {
  return sql.replace(/;\s*$/, '');
}

/** Index of the first character that is not whitespace or a SQL comment. */
export function skipLeadingTrivia(sql: string): number {
  let i = 0;
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
