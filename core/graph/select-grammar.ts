// Selection, part 1: the grammar of --select / --exclude, as dbt's.
//
//   select  = arg*            each CLI arg is split on whitespace into terms
//   term    = part (',' part)*            terms are unioned, parts intersected
//   part    = '@'? (N? '+')? (method ':')? value ('+' N?)?
//
// `+x` adds ancestors, `x+` descendants (N limits the depth), `@x` adds x's
// descendants and every ancestor of those. Parsing knows methods and their
// allowed values, never the manifest: what a part matches is select-match.ts's,
// what the graph operators add is select.ts's.

import { type Diagnostic, closestMatch, didYouMean } from '../errors.js';

export const SELECTOR_METHODS = [
  'fqn',
  'tag',
  'path',
  'file',
  'config',
  'resource_type',
  'source',
  'state',
  'result',
  'test_type',
  'test_name',
  'package',
] as const;
export type SelectorMethod = (typeof SELECTOR_METHODS)[number];

const RESOURCE_TYPES = ['model', 'seed', 'snapshot', 'test', 'source', 'unit_test', 'loader'] as const;
const TEST_TYPES = ['generic', 'singular', 'unit', 'data', 'schema'] as const;
const STATE_VALUES = ['modified', 'modified.body', 'modified.configs', 'new', 'old', 'unmodified'] as const;

/** What the selection can be evaluated against: state: and result: parts need these. */
export interface SelectionInputs {
  /** A previous manifest was given (--state DIR). */
  state: boolean;
  /** A previous run_results.json exists. */
  results: boolean;
}

export interface Part {
  /** The part as written, with its graph operators. */
  raw: string;
  /** method:value without graph operators, as the user wrote it (for messages). */
  text: string;
  method: SelectorMethod;
  /** Bare value: no method was written. */
  implicit: boolean;
  /** For config.<key>: the key path. */
  configKey?: string[];
  value: string;
  childrensParents: boolean;
  parents: boolean;
  parentsDepth?: number;
  children: boolean;
  childrenDepth?: number;
}

export type Term = Part[];

// @? (N? +)? (method :)? value (+ N?)?
const PART_RE = /^(@)?(?:(\d*)\+)?(?:([^:/\\@+]+):)?(.*?)(?:\+(\d*))?$/s;

/** The terms of every arg; problems go to `diagnostics` (a bad term is left out). */
export function parseSelection(inputs: SelectionInputs, args: string[], flag: string, diagnostics: Diagnostic[]): Term[] {
  const terms: Term[] = [];
  for (const arg of args) {
    for (const termText of arg.split(/\s+/)) {
      if (termText === '') continue;
      const parts: Part[] = [];
      let ok = true;
      for (const partText of termText.split(',')) {
        const part = parsePart(inputs, partText, termText, flag, diagnostics);
        if (part) parts.push(part);
        else ok = false;
      }
      if (ok) terms.push(parts);
    }
  }
  return terms;
}

function parsePart(inputs: SelectionInputs, raw: string, term: string, flag: string, diagnostics: Diagnostic[]): Part | undefined {
  const fail = (message: string, hint?: string): undefined => {
    diagnostics.push({ message: `${flag} "${term}": ${message}`, ...(hint ? { hint } : {}) });
    return undefined;
  };
  if (raw === '') {
    return fail(
      'empty selector between commas',
      'a comma intersects two selectors and takes no spaces around it, e.g. "tag:nightly,path:models/marts"',
    );
  }
  const m = PART_RE.exec(raw);
  if (!m) return fail(`cannot parse "${raw}"`, 'selectors look like name, +name, name+, 2+name, @name, tag:x, path:dir');
  const at: string | undefined = m[1];
  let parentsDigits: string | undefined = m[2];
  const method: string | undefined = m[3];
  let value: string = m[4] ?? '';
  let childrenDigits: string | undefined = m[5];
  // "2024+" is the model 2024 and its children, not an empty value with a depth.
  if (value === '' && !method && parentsDigits && childrenDigits === undefined) {
    value = parentsDigits;
    parentsDigits = undefined;
    childrenDigits = '';
  }
  const parents = parentsDigits !== undefined;
  const children = childrenDigits !== undefined;
  const text = method !== undefined ? `${method}:${value}` : value;
  if (value === '') {
    return fail(
      method ? `"${method}:" needs a value` : `"${raw}" names nothing to select`,
      'write a node name or method:value, e.g. orders, tag:nightly, path:models/marts',
    );
  }
  if (at && children) {
    return fail(`"@" and a "+" suffix cannot be combined in "${raw}"`, `"@${value}" already selects ${value}'s descendants and their ancestors`);
  }
  const part: Part = {
    raw,
    text,
    method: 'fqn',
    implicit: method === undefined,
    value,
    childrensParents: !!at,
    parents,
    children,
    ...(parentsDigits ? { parentsDepth: Number(parentsDigits) } : {}),
    ...(childrenDigits ? { childrenDepth: Number(childrenDigits) } : {}),
  };

  if (method === undefined) {
    // dbt's default method: a path if it looks like one, a file name if it has
    // a file extension, else a name / fqn.
    if (value.includes('/') || value.includes('\\')) part.method = 'path';
    else if (/\.(sql|csv|py)$/i.test(value)) part.method = 'file';
    return part;
  }

  const [head = '', ...keyPath] = method.split('.');
  if (head === 'config') {
    if (keyPath.length === 0 || keyPath.some((k) => k === '')) {
      return fail(`"${method}:" needs a config key`, `write config.<key>:<value>, e.g. config.materialized:table`);
    }
    part.method = 'config';
    part.configKey = keyPath;
  } else if ((SELECTOR_METHODS as readonly string[]).includes(method)) {
    part.method = method as SelectorMethod;
  } else {
    let suggestion = closestMatch(method, SELECTOR_METHODS);
    if (!suggestion && keyPath.length && closestMatch(head, ['config'])) suggestion = ['config', ...keyPath].join('.');
    return fail(
      `unknown selector method "${method}"`,
      `${suggestion ? `did you mean "${suggestion}"? ` : ''}methods: ${SELECTOR_METHODS.map((x) => (x === 'config' ? 'config.<key>' : x)).join(', ')}`,
    );
  }

  const oneOf = (allowed: readonly string[], what: string): Part | undefined => {
    if (allowed.includes(value)) return part;
    const dym = didYouMean(value, allowed);
    return fail(`unknown ${what} "${value}"`, `${dym ? `${dym} ` : ''}expected one of: ${allowed.join(', ')}`);
  };
  switch (part.method) {
    case 'resource_type':
      return oneOf(RESOURCE_TYPES, 'resource_type');
    case 'test_type':
      return oneOf(TEST_TYPES, 'test_type');
    case 'state':
      if (!inputs.state) {
        return fail('state: selectors need --state DIR', 'pass --state with the target/ directory of an earlier run (it holds that run\'s manifest.json)');
      }
      return oneOf(STATE_VALUES, 'state');
    case 'result':
      if (!inputs.results) {
        return fail(
          'no previous run_results.json for result: selectors',
          'result: reads run_results.json of the last run (target/, or the --state DIR); run a command first',
        );
      }
      return part;
    default:
      return part;
  }
}
