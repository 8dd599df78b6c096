// Ephemeral models are not built; their SQL is inlined as CTEs into every
// consumer. A model whose SQL already starts with WITH gets the ephemeral CTEs
// added to its own WITH list, so the result stays one valid statement.

import { selectBody, skipTrivia } from '../../adapters/sql-text.js';

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
  const definitions = ctes.map((c) => `${c.name} as (\n${selectBody(c.sql)}\n)`).join(',\n');
  const start = skipTrivia(sql);
  const head = sql.slice(0, start);
  const body = sql.slice(start);
  const withMatch = /^with(\s+recursive)?\b/i.exec(body);
  if (withMatch) {
    return `${head}${withMatch[0]} ${definitions},\n${body.slice(withMatch[0].length).trimStart()}`;
  }
  return `${head}with ${definitions}\n${body}`;
}
