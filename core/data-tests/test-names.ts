// dbt's names for generic tests, so that a test has the same name and
// unique_id in etl as in dbt (selectors, CI reports and catalog tools that
// key on them keep working across the two):
//
// - the name: `<test>_<model>_<args>`, args flattened in sorted key order
//   (a list's items, a mapping's values, Python's str() of each), every run of
//   characters other than [0-9a-zA-Z_] made `_`, joined by `__`; a source's
//   test is `source_<test>_<source>_<table>_<args>`;
// - at 64 characters or more, the alias (file name, audit table) becomes the
//   first 30 characters of `<test>_<model>` + `_` + the md5 of the full name;
// - the unique_id: `test.<project>.<name>.<hash>`, hash the last 10 hex digits
//   of md5(name + Python's repr() of the test metadata with every leaf made a
//   string and every mapping's keys sorted).
//
// Python's str()/repr() are reproduced here for the values YAML gives (strings,
// numbers, booleans, null, lists, mappings). One known gap: YAML `1.0` reads as
// the number 1 in JavaScript, which Python would print as `1.0`.

import { hash } from 'node:crypto';

// crypto.hash: one call, no Hash object (Node 20.12+); tens of thousands per compile.
const md5 = (text: string) => hash('md5', text, 'hex');

/** Python's repr() of a str. */
export function pyReprString(s: string): string {
  // Most strings have nothing to escape.
  if (!/['\\\x00-\x1f\x7f-\x9f]/.test(s)) return `'${s}'`;
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || (code >= 0x7f && code < 0xa0)) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** Python's repr() of a value parsed from YAML. */
export function pyRepr(v: unknown): string {
  if (typeof v === 'string') return pyReprString(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${pyReprString(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return pyStr(v);
}

/** Python's str() of a value parsed from YAML. */
export function pyStr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? 'inf' : v < 0 ? '-inf' : 'nan';
  return pyRepr(v);
}

export interface TestNames {
  /** The full name: the node's name and the middle of its unique_id. */
  name: string;
  /** The short name (hashed when the full one is 64 characters or more): file name and alias. */
  alias: string;
}

/**
 * dbt's synthesize_generic_test_names. `testType` is the test's name
 * (`source_<name>` for a source's test), `target` the model's name (or
 * `<source>_<table>`), `args` the test's arguments including column_name.
 */
export function synthesizeTestNames(testType: string, target: string, args: Record<string, unknown>): TestNames {
  const flat: string[] = [];
  for (const key of Object.keys(args).sort()) {
    if (key === 'model') continue;
    const value = args[key];
    const parts = Array.isArray(value) ? value : value && typeof value === 'object' ? Object.values(value) : [value];
    for (const p of parts) flat.push(pyStr(p).replace(/[^0-9a-zA-Z_]+/g, '_'));
  }
  const identifier = `${testType}_${target}`;
  const name = `${identifier}_${flat.join('__')}`;
  return { name, alias: name.length >= 64 ? `${identifier.slice(0, 30)}_${md5(name)}` : name };
}

/** repr() of dbt's get_hashable_md(v): leaves made strings, mappings' keys sorted; written directly. */
function hashableRepr(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(hashableRepr).join(', ')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${pyReprString(k)}: ${hashableRepr(o[k])}`).join(', ')}}`;
  }
  return pyReprString(pyStr(v));
}

/** The 10 hex digits that end a generic test's unique_id. */
export function testIdHash(name: string, metadata: { name: string; kwargs: Record<string, unknown>; namespace: string | null }): string {
  return md5(name + hashableRepr(metadata)).slice(-10);
}

/** dbt's `model` kwarg of a generic test: the relation it tests, as dbt writes it. */
export function testModelKwarg(subject: { kind: 'model' | 'seed' | 'snapshot' | 'source'; name: string; source?: string }): string {
  const target = subject.kind === 'source' ? `source('${subject.source}', '${subject.name}')` : `ref('${subject.name}')`;
  return `{{ get_where_subquery(${target}) }}`;
}
