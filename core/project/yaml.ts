// Reads YAML files and validates them with zod, mapping every problem back to
// file:line:col. The fast path uses `yaml.parse`; the position-keeping
// document is built only when a location is asked for (an error), so a project
// of 10,000 yml files pays for positions only when something is wrong.

import { createRequire } from 'node:module';
import type { Document, LineCounter } from 'yaml';
import jsyaml from 'js-yaml';
import * as zod from 'zod';
import type * as z from 'zod';
import { closestMatch, type Diagnostic } from '../errors.js';

export type YamlPath = ReadonlyArray<string | number>;

// `yaml` is loaded on first use: it is needed only to locate a problem.
const requireModule = createRequire(import.meta.url);
let yamlModule: typeof import('yaml') | undefined;
const yamlLib = (): typeof import('yaml') => (yamlModule ??= requireModule('yaml') as typeof import('yaml'));

/** YAML 1.2's core schema (no timestamps: `2024-01-01` stays a string) plus merge keys. */
const FAST_SCHEMA = jsyaml.CORE_SCHEMA.extend({ implicit: [(jsyaml as unknown as { types: { merge: jsyaml.Type } }).types.merge] });

export interface Position {
  line: number;
  col: number;
}

/** A parsed YAML file that can tell where a value sits. */
export class YamlFile {
  private doc?: Document.Parsed;
  private lines?: LineCounter;

  constructor(
    readonly file: string,
    readonly text: string,
    readonly data: unknown,
  ) {}

  /** Line and column of the value at `path`, or of its nearest existing parent. */
  locate(path: YamlPath, key = false): Position {
    if (!this.doc) {
      const { LineCounter, parseDocument } = yamlLib();
      this.lines = new LineCounter();
      this.doc = parseDocument(this.text, { lineCounter: this.lines, merge: true });
    }
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      if (key && n === path.length && n > 0) {
        const parent = sub.length > 1 ? this.doc.getIn(sub.slice(0, -1), true) : this.doc.contents;
        const pair = findPair(parent, sub[sub.length - 1]!);
        if (pair) return this.lines!.linePos(pair);
      }
      const node = sub.length === 0 ? this.doc.contents : this.doc.getIn(sub, true);
      if (yamlLib().isNode(node) && node.range) return this.lines!.linePos(node.range[0]);
    }
    return { line: 1, col: 1 };
  }

  /** A position computed only when read: locating builds the slow, position-keeping document. */
  lazyPosition(path: YamlPath): { file: string; line: number; col: number } {
    const self = this;
    let pos: Position | undefined;
    return {
      file: this.file,
      get line() {
        return (pos ??= self.locate(path)).line;
      },
      get col() {
        return (pos ??= self.locate(path)).col;
      },
    };
  }

  diagnostic(path: YamlPath, message: string, hint?: string, key = false): Diagnostic {
    const pos = this.locate(path, key);
    return { file: this.file, line: pos.line, col: pos.col, message, hint };
  }
}

function findPair(parent: unknown, key: string | number): number | undefined {
  const items = (parent as { items?: Array<{ key?: { value?: unknown; range?: [number, number, number] } }> })?.items;
  if (!Array.isArray(items)) return undefined;
  for (const item of items) {
    if (item?.key && item.key.value === key && item.key.range) return item.key.range[0];
  }
  return undefined;
}

/** Parses YAML text; a syntax error becomes a Diagnostic with the parser's position. */
/** Parses one YAML (or JSON) value, as `yaml.parse` does; throws its error. */
export function parseYamlValue(text: string): unknown {
  return yamlLib().parse(text);
}

export function readYaml(file: string, text: string): YamlFile | Diagnostic {
  // js-yaml reads about 10x faster than `yaml`; `yaml` is kept for positions
  // and for the wording of syntax errors, both needed only when something is wrong.
  try {
    return new YamlFile(file, text, jsyaml.load(text, { schema: FAST_SCHEMA, filename: file }) ?? {});
  } catch {
    // fall through to the precise parser
  }
  try {
    return new YamlFile(file, text, yamlLib().parse(text, { prettyErrors: true, uniqueKeys: true, merge: true }) ?? {});
  } catch (err) {
    if (err instanceof yamlLib().YAMLParseError) {
      const pos = err.linePos?.[0];
      const message = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      return {
        file,
        line: pos?.line,
        col: pos?.col,
        message: `invalid YAML: ${message}`,
        hint: 'check indentation, and quote values that contain ":" or start with "{", "[" or "*"',
      };
    }
    throw err;
  }
}

/**
 * Validates `value` (found at `basePath` in `yaml`) against a zod schema.
 * Returns the parsed value, or pushes one diagnostic per issue and returns undefined.
 */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  yaml: YamlFile,
  basePath: YamlPath,
  out: Diagnostic[],
  what: string,
): z.output<S> | undefined {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const path = [...basePath, ...(issue.path as Array<string | number>)];
    out.push(issueToDiagnostic(issue, yaml, path, what));
  }
  return undefined;
}

function describePath(path: YamlPath): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[');
}

function issueToDiagnostic(issue: z.core.$ZodIssue, yaml: YamlFile, path: YamlPath, what: string): Diagnostic {
  const at = describePath(path) || 'the top level';
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const known = knownKeys(issue);
    const match = closestMatch(key, known);
    return yaml.diagnostic(
      [...path, key],
      `unknown key "${key}" in ${what}${path.length ? ` at ${at}` : ''}`,
      match ? `did you mean "${match}"?` : known.length ? `expected one of: ${known.join(', ')}` : undefined,
      true,
    );
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    const got = getIn(yaml.data, path);
    const values = (issue.values as unknown[]).map(String);
    const match = typeof got === 'string' ? closestMatch(got, values) : undefined;
    return yaml.diagnostic(
      path,
      `invalid value ${JSON.stringify(got)} for ${at} in ${what}`,
      match ? `did you mean "${match}"? (expected one of: ${values.join(', ')})` : `expected one of: ${values.join(', ')}`,
    );
  }
  if (issue.code === 'invalid_type') {
    const got = getIn(yaml.data, path);
    if (got === undefined) {
      return yaml.diagnostic(path, `missing required key "${path[path.length - 1]}" in ${what}`, `add ${at}: <${issue.expected}>`);
    }
    return yaml.diagnostic(path, `${at} in ${what} should be ${article(issue.expected)}, got ${JSON.stringify(got)}`);
  }
  return yaml.diagnostic(path, `${at} in ${what}: ${issue.message}`);
}

function article(t: string): string {
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

const KNOWN_PREFIX = 'known keys:';

/** z.strictObject whose unknown-key issue carries the known keys, for "did you mean". */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T) {
  const keys = Object.keys(shape);
  return zod.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `${KNOWN_PREFIX}${keys.join(',')}` : undefined),
  });
}

function knownKeys(issue: z.core.$ZodIssue): string[] {
  return issue.message.startsWith(KNOWN_PREFIX) ? issue.message.slice(KNOWN_PREFIX.length).split(',') : [];
}

function getIn(data: unknown, path: YamlPath): unknown {
  let cur: unknown = data;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}
