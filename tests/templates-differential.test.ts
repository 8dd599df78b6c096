// The template renderer (core/templates/render.ts walks the syntax tree
// instead of compiling it) against Handlebars.compile itself, with noEscape
// and strict as etl uses it: a corpus of tricky templates, then a few hundred
// generated ones. Same output, or both throw.

import Handlebars from 'handlebars';
import { describe, expect, it } from 'vitest';
import { parseTemplate, type Ast } from '../core/templates/parse.js';
import { renderTemplate, type HelperFn } from '../core/templates/render.js';
import { builtinHelpers } from '../core/templates/helpers.js';

/** Helpers both renderers get: they see (args..., options) either way. */
const EXTRA_HELPERS: Record<string, HelperFn> = {
  upper: (s) => String(s).toUpperCase(),
  concat: (...args) => args.slice(0, -1).map(String).join(''),
  list: (...args) => args.slice(0, -1),
  pick: (...args) => (args.at(-1) as { hash: Record<string, unknown> }).hash.which,
  wrap: function (this: unknown, ...args) {
    const options = args.at(-1) as { fn: (ctx: unknown) => string; hash: Record<string, unknown> };
    return `<${String(options.hash.tag ?? 'b')}>${options.fn(this)}</${String(options.hash.tag ?? 'b')}>`;
  },
};

function parse(text: string, file: string): Ast {
  const r = parseTemplate(file, text);
  if ('error' in r) throw new Error(r.error.message);
  return r.ast;
}

function ours(template: string, root: Record<string, unknown>, partials: Record<string, string>): string {
  const helpers = builtinHelpers({ resolveRef: (n) => `"main"."${n}"`, resolveSource: (s, t) => `"${s}"."${t}"`, vars: {}, env: {} });
  for (const [name, fn] of Object.entries(EXTRA_HELPERS)) helpers.set(name, fn);
  const parsedPartials = new Map(Object.entries(partials).map(([name, t]) => [name, parse(t, `macros/${name}.hbs`)]));
  return renderTemplate(parse(template, 'models/m.sql'), root, { file: 'models/m.sql', helpers, partials: parsedPartials, thisRelation: '"main"."m"' });
}

function theirs(template: string, root: Record<string, unknown>, partials: Record<string, string>): string {
  const hb = Handlebars.create();
  for (const [name, fn] of Object.entries(EXTRA_HELPERS)) hb.registerHelper(name, fn as Handlebars.HelperDelegate);
  for (const [name, t] of Object.entries(partials)) hb.registerPartial(name, t);
  return hb.compile(template, { noEscape: true, strict: true })(root);
}

type Outcome = { ok: string } | { threw: true };
const outcome = (f: () => string): Outcome => {
  try {
    return { ok: f() };
  } catch {
    return { threw: true };
  }
};

/** Asserts both renderers agree; returns whether they rendered (rather than both threw). */
function expectSame(template: string, root: Record<string, unknown>, partials: Record<string, string> = {}): boolean {
  const expected = outcome(() => theirs(template, root, partials));
  expect(outcome(() => ours(template, root, partials)), JSON.stringify(template)).toEqual(expected);
  return 'ok' in expected;
}

const ROOT = {
  a: 'A',
  b: 'B',
  n: 3,
  zero: 0,
  empty: '',
  nul: null,
  t: true,
  f: false,
  xs: ['x1', 'x2', 'x3'],
  none: [],
  m: { k1: 'v1', k2: 'v2' },
  rows: [
    { name: 'r1', ok: true, tags: ['p', 'q'] },
    { name: 'r2', ok: false, tags: [] },
  ],
  deep: { inner: { leaf: 'L', list: [1, 2] } },
  'odd key': 'ODD',
};

const PARTIALS = {
  cols: 'a,\n  b_{{suffix}},\n  c\n',
  row: '{{name}}{{#if ok}}+{{/if}}',
  nested: '[{{> row}}]',
  crlf: 'one\r\n{{#if @root.t}}\r\ntwo\r\n{{/if}}\r\n',
};

const CORPUS: Array<[string, string]> = [
  ['nested blocks with else at each level', '{{#each rows}}{{#with this}}{{#if ok}}{{name}}{{else}}({{name}}){{/if}}{{#each tags}}{{this}}{{else}}-{{/each}}{{/with}}{{else}}none{{/each}}'],
  ['each/with/else on empty and missing-ish values', '{{#each none}}x{{else}}E{{/each}}|{{#with nul}}w{{else}}W{{/with}}|{{#with empty}}e{{else}}E2{{/with}}|{{#each m}}{{@key}}={{this}};{{/each}}'],
  ['else chains', '{{#if f}}1{{else if zero}}2{{else unless t}}3{{else}}4{{/if}}|{{#unless t}}u{{else if a}}{{a}}{{/unless}}'],
  ['data variables in nested each', '{{#each rows}}{{@index}}:{{#each tags}}{{@../index}}.{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}} {{/each}}{{/each}}'],
  ['block params', '{{#each xs as |x i|}}{{i}}={{x}}{{#with ../m as |mm|}}{{mm.k1}}{{/with}},{{/each}}'],
  ['paths: dots, this, ./, segment literals, @root, ../', '{{deep.inner.leaf}} {{this.a}} {{./b}} {{[odd key]}} {{deep.inner.list.[1]}} {{#with deep}}{{inner.leaf}}{{@root.a}}{{../b}}{{/with}}'],
  ['whitespace control ~ on both sides of tags and blocks', 'select\n  {{~ a ~}}\n  , x\n  {{~#if t~}}\n    , y\n  {{~else~}}\n    , z\n  {{~/if~}}\nfrom {{~ " t" }}'],
  ['standalone block lines are removed, inline ones are not', 'a\n{{#if t}}\nb\n{{/if}}\nc {{#if t}}d{{/if}}\n  {{#each xs}}\n  - {{this}}\n  {{/each}}\nend'],
  ['CRLF line ends around standalone blocks', 'select\r\n{{#if t}}\r\n  x\r\n{{else}}\r\n  y\r\n{{/if}}\r\nfrom t\r\n'],
  ['partials: plain, with hash, with context, nested, standalone indentation', 'select\n    {{> cols suffix="s"}}\n{{#each rows}}{{> row}} {{> row ../rows.[0]}} {{> nested}}\n{{/each}}'],
  ['a partial with CRLF lines', 'x\r\n  {{> crlf}}\r\ny'],
  ['subexpressions, nested, in hashes and in block params', '{{concat (upper a) "-" (concat b (upper "x")) n}} {{pick which=(upper b)}} {{#each (list a b "c")}}{{this}}{{/each}} {{#if (list)}}nonempty{{else}}empty-list{{/if}}'],
  ['block helper with hash and subexpression argument', '{{#wrap tag="i"}}{{a}}{{/wrap}}{{#wrap tag=(concat "e" "m")}}{{#wrap}}{{b}}{{/wrap}}{{/wrap}}'],
  ['escaped mustaches', '\\{{a}} and \\\\{{a}} and \\{{#if t}}x\\{{/if}} {{a}}'],
  ['comments, standalone and inline', 'a\n{{! a comment }}\nb {{!-- with }} inside --}} c\n  {{!-- standalone --}}\nd'],
  ['triple-stash and literals', '{{{a}}} {{"lit"}} {{concat 1 true null "s"}}'],
  ['scalars: numbers, booleans, zero, null, empty, arrays', '[{{n}}][{{zero}}][{{t}}][{{f}}][{{nul}}][{{empty}}][{{xs}}]'],
  ['lookup with strings, numbers and paths', '{{lookup m "k2"}} {{lookup xs 1}} {{#each rows}}{{lookup this "name"}}{{/each}} {{lookup deep.inner "leaf"}}'],
  ['includeZero', '{{#if zero}}no{{else}}zero is falsy{{/if}} {{#if zero includeZero=true}}zero counts{{/if}}'],
  ['text that looks like tags', 'a } b }} c { d {{a}}}} e'],
  ['unicode and SQL', "select '{{a}}' as \"ünï\", '✓' from t where x = '{{#each xs}}{{this}}{{#unless @last}}','{{/unless}}{{/each}}'"],
  ['strict: a missing variable throws', '{{nope}}'],
  ['strict: a missing nested path throws', '{{deep.nope.x}}'],
  ['a missing partial throws', '{{> nope}}'],
];

describe('renderTemplate against Handlebars.compile (noEscape, strict)', () => {
  it.each(CORPUS)('%s', (_name, template) => {
    expectSame(template, ROOT, PARTIALS);
  });

  it('agrees on 400 generated templates', () => {
    // A small seeded generator (mulberry32): the same templates on every run.
    let seed = 0x9e3779b9;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const values = ['a', 'b', 'n', 'zero', 'empty', 't', 'f', 'nul', 'xs', 'm.k1', 'deep.inner.leaf', '@root.a', 'this.a', '(upper a)', '(concat a n)', '"lit"', '1'];
    // Conditions resolve in every context (@root): a missing helper argument is the one place
    // etl is stricter than Handlebars on purpose (see the last test).
    const conds = ['@root.a', '@root.f', '@root.zero', '@root.empty', '@root.nul', '@root.none', '@root.xs', '@root.m', '(list)', '(list @root.a)'];
    const texts = ['x', ' ', '\n', '\r\n', '  \n', ',', "'q'", '}', '{', '\\{{a}}'];
    const tilde = () => (rand() < 0.2 ? '~' : '');
    const gen = (depth: number): string => {
      let out = '';
      const parts = 1 + Math.floor(rand() * 4);
      for (let i = 0; i < parts; i++) {
        const r = rand();
        if (r < 0.3) out += pick(texts);
        // (A separator after each value: compiled Handlebars adds adjacent numbers and booleans, 3 then true giving "4".)
        else if (r < 0.55) out += `{{${tilde()}${pick(values)}${tilde()}}}|`;
        else if (depth > 2) out += pick(texts);
        else if (r < 0.7) out += `{{${tilde()}#if ${pick(conds)}${tilde()}}}${gen(depth + 1)}${rand() < 0.5 ? `{{${tilde()}else${tilde()}}}${gen(depth + 1)}` : ''}{{${tilde()}/if${tilde()}}}`;
        else if (r < 0.8) out += `{{#each ${pick(['@root.xs', '@root.none', '@root.m', '@root.rows', '(list @root.a @root.b)'])}}}${pick(['{{this}}', '{{@index}}', '{{@key}}', '{{@first}}', '{{../a}}', ''])}${gen(depth + 1)}${rand() < 0.4 ? `{{else}}${gen(depth + 1)}` : ''}{{/each}}`;
        else if (r < 0.88) out += `{{#with ${pick(['@root.m', '@root.deep', '@root.nul', '@root.deep.inner'])}}}${pick(['{{k1}}', '{{inner.leaf}}', '{{leaf}}', '{{@root.b}}', ''])}${rand() < 0.4 ? `{{else}}${gen(depth + 1)}` : ''}{{/with}}`;
        else if (r < 0.94) out += `${pick(['', '\n', '  '])}{{> ${pick(['cols suffix=a', 'row', 'nested', 'crlf'])}}}`;
        else out += `{{#unless ${pick(conds)}}}${gen(depth + 1)}{{/unless}}`;
      }
      return out;
    };
    const rootWithRow = { ...ROOT, name: 'top', ok: true };
    let rendered = 0;
    for (let i = 0; i < 400; i++) if (expectSame(gen(0), rootWithRow, PARTIALS)) rendered++;
    // The rest throw in both (strict: a value missing in its context); most must render.
    expect(rendered).toBeGreaterThan(150);
  });

  it('is stricter in one place: a missing helper argument throws, where Handlebars passes undefined', () => {
    expect(theirs('{{#if nope}}x{{else}}y{{/if}}', {}, {})).toBe('y');
    expect(() => ours('{{#if nope}}x{{else}}y{{/if}}', {}, {})).toThrow(/"nope" is not defined/);
  });
});
