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
      if (err.code === 'DUPLICATE_KEY') {
        const dup = findDuplicateKey(text);
        if (dup) {
          return {
            file,
            line: dup.second.line,
            col: dup.second.col,
            message: `duplicate key "${dup.key}": set on line ${dup.first.line} and again on line ${dup.second.line}`,
            hint: 'a key may appear once in a mapping; remove one of the two',
          };
        }
      }
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

/** The first key set twice in one mapping, with both positions. */
function findDuplicateKey(text: string): { key: string; first: Position; second: Position } | undefined {
  const { LineCounter, parseDocument, visit, isScalar } = yamlLib();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false });
  let found: { key: string; first: Position; second: Position } | undefined;
  visit(doc, {
    Map(_key, map) {
      const seen = new Map<unknown, number>();
      for (const pair of map.items) {
        const k = isScalar(pair.key) ? pair.key.value : pair.key;
        const at = (pair.key as { range?: [number, number, number] } | null)?.range?.[0];
        if (at === undefined) continue;
        const first = seen.get(k);
        if (first !== undefined) {
          found = { key: String(k), first: lines.linePos(first), second: lines.linePos(at) };
          return visit.BREAK;
        }
        seen.set(k, at);
      }
      return undefined;
    },
  });
  return found;
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
    const relative = issue.path as Array<string | number>;
    out.push(issueToDiagnostic(issue, yaml, [...basePath, ...relative], what, relative));
  }
  return undefined;
}

function describePath(path: YamlPath): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[');
}

function issueToDiagnostic(issue: z.core.$ZodIssue, yaml: YamlFile, path: YamlPath, what: string, relative: YamlPath): Diagnostic {
  const at = describePath(relative) || 'the top level';
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const known = knownKeys(issue);
    const match = closestMatch(key, known);
    return yaml.diagnostic(
      [...path, key],
      `unknown key "${key}" in ${what}${relative.length ? ` at ${at}` : ''}`,
      match ? `did you mean "${match}"?` : known.length ? `expected one of: ${known.join(', ')}` : undefined,
      true,
    );
  }
  const got = getIn(yaml.data, path);
  if (issue.code === 'invalid_type' && got === undefined) {
    return yaml.diagnostic(path, `missing required key "${path[path.length - 1]}" in ${what}`, `add ${at}: <${issue.expected}>`);
  }
  if (issue.code === 'invalid_type') {
    return yaml.diagnostic(path, `${at} in ${what} should be ${article(typeName(issue.expected))}, got ${shownValue(got)}`);
  }
  const { message, hint } = describeValueIssue(issue, got, at, what);
  return yaml.diagnostic(path, message, hint);
}

/**
 * "invalid materialized "tabel" for model "a"", with "did you mean" when the
 * value is a near miss of an allowed one: the one wording for a bad value,
 * wherever it was set (a yml file, a {{config}} call, an etl.yml default).
 */
export function describeValueIssue(issue: z.core.$ZodIssue, got: unknown, key: string, owner: string): { message: string; hint?: string } {
  const message = `invalid ${key} ${shownValue(got)} for ${owner}`;
  const values = allowedValues(issue);
  if (values) {
    const match = typeof got === 'string' ? closestMatch(got, values) : undefined;
    const list = `one of: ${values.join(', ')}`;
    return { message, hint: match ? `did you mean "${match}"? (${list})` : `expected ${list}` };
  }
  if (issue.code === 'invalid_type') return { message: `${message}: expected ${article(typeName(issue.expected))}` };
  if (issue.code === 'invalid_union') {
    const types = [...new Set(issue.errors.flat().flatMap((e) => (e.code === 'invalid_type' ? [article(typeName(e.expected))] : [])))];
    if (types.length) return { message: `${message}: expected ${types.join(' or ')}` };
  }
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    const bound = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
    return { message: `${message}: expected a ${issue.origin} ${bound} ${String(issue.code === 'too_small' ? issue.minimum : issue.maximum)}` };
  }
  return { message: `${message}: ${issue.message.charAt(0).toLowerCase()}${issue.message.slice(1)}` };
}

/** The values an enum or literal issue allows; a union of literals (e.g. `check_cols: all | [..]`) gives its literals. */
function allowedValues(issue: z.core.$ZodIssue): string[] | undefined {
  if (issue.code === 'invalid_value') return issue.values.map(String);
  if (issue.code === 'invalid_union') {
    const note = (issue as { note?: string }).note;
    const options = (issue as { options?: unknown[] }).options;
    if (note === 'No matching discriminator' && Array.isArray(options)) return options.map(String);
    const literals = issue.errors.flat().flatMap((e) => (e.code === 'invalid_value' ? e.values.map(String) : []));
    if (literals.length) return literals;
  }
  return undefined;
}

function shownValue(got: unknown): string {
  const text = JSON.stringify(got instanceof Date ? got.toISOString() : got) ?? String(got);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** zod's name of a type, as a YAML user knows it. */
function typeName(expected: string): string {
  return expected === 'record' || expected === 'object' ? 'mapping' : expected === 'array' ? 'list' : expected;
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
