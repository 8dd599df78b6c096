// Pretty-printing with sql-formatter. It costs ~0.7 ms a model, so it is off
// the default path and cached by content hash. `formatTemplate` formats a
// model file in place: template tags are passed to sql-formatter as opaque
// parameters, and the result is refused unless every tag survives unchanged.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { format, type FormatOptionsWithLanguage } from 'sql-formatter';
import { writeFileAtomic } from './artifacts.js';
import type { Dialect } from '../../adapters/dialect.js';

type Language = Dialect['formatterLanguage'];

/** A formatter for compiled SQL whose results are cached in target/.etl/format.json. */
export function createSqlFormatter(targetPath: string, language: Language): ((sql: string) => string) & { flush(): void } {
  const cacheFile = path.join(targetPath, '.etl', `format-${language}.json`);
  let cache: Record<string, string> = {};
  if (existsSync(cacheFile)) {
    try {
      cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as Record<string, string>;
    } catch {
      cache = {};
    }
  }
  const used: Record<string, string> = {};
  const fn = (sql: string) => {
    const key = createHash('sha256').update(sql).digest('hex').slice(0, 32);
    let out = cache[key];
    if (out === undefined) {
      try {
        out = format(sql, { language, keywordCase: 'lower' });
      } catch {
        // Some engine-specific syntax defeats the formatter; keep the SQL as written.
        out = sql;
      }
    }
    used[key] = out;
    return out;
  };
  return Object.assign(fn, { flush: () => writeFileAtomic(cacheFile, JSON.stringify(used)) });
}

const TEMPLATE_TAG = /\{\{!--[\s\S]*?--\}\}|\{\{\{[\s\S]*?\}\}\}|\{\{[\s\S]*?\}\}/g;

/** The template tags of a file, in order. */
export function templateTags(text: string): string[] {
  return text.match(TEMPLATE_TAG) ?? [];
}

/**
 * Formats a model file keeping its template tags intact. Returns undefined
 * when formatting would change a tag (the file is then left alone).
 */
export function formatTemplate(text: string, language: Language): string | undefined {
  const tags = templateTags(text);
  // Block tags and comments stand on their own lines; expressions sit inside SQL.
  // Each becomes a unique placeholder the formatter treats as a parameter.
  const placeholders: string[] = [];
  const masked = text.replace(TEMPLATE_TAG, (tag) => {
    placeholders.push(tag);
    return `__etl_tag_${placeholders.length - 1}__`;
  });
  const options: FormatOptionsWithLanguage = {
    language,
    keywordCase: 'lower',
    paramTypes: { custom: [{ regex: '__etl_tag_[0-9]+__' }] },
  };
  let formatted: string;
  try {
    formatted = format(masked, options);
  } catch {
    return undefined;
  }
  const restored = formatted.replace(/__etl_tag_([0-9]+)__/g, (_m, i: string) => placeholders[Number(i)]!);
  const after = templateTags(restored);
  if (after.length !== tags.length || after.some((t, i) => t !== tags[i])) return undefined;
  return restored.endsWith('\n') ? restored : `${restored}\n`;
}
