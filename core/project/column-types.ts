// Type names a seed's `column_types` may use, per target engine (the
// Dialect's knownTypes). Checked when the project is loaded, so a typo
// (`integr`) is a project error at its yml line before any connection is made
// or any table written, instead of an engine error halfway through a build. A
// user-defined type is written schema-qualified (`public.citext`) and passes
// unchecked: only the engine knows it.

import type { Dialect } from '../../adapters/dialect.js';
import { closestMatch } from '../errors.js';

/** The base of a type name: `numeric(16, 2)` -> numeric, `varchar[]` -> varchar, `TIMESTAMP  WITH TIME ZONE` -> timestamp with time zone. */
function baseName(type: string): string {
  return type
    .toLowerCase()
    .replace(/\[\d*\]/g, '')
    .replace(/\([^)]*\)/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Why `type` is not a type of the dialect's engine, with the closest known one; undefined when it is one. */
export function unknownColumnType(dialect: Dialect, type: string): { message: string; hint: string } | undefined {
  const known = dialect.knownTypes;
  const base = baseName(type);
  if (known.has(base) || base.includes('.') || base.includes('"')) return undefined;
  // Nested types (DuckDB's struct(...), map(...), enum(...)) take any argument list.
  if (dialect.nestedTypes?.test(base)) return undefined;
  const match = closestMatch(base, known);
  return {
    message: `unknown type "${type}"`,
    hint: `${match ? `did you mean "${match}"? ` : ''}a user-defined type is written schema-qualified (e.g. public.citext)`,
  };
}
