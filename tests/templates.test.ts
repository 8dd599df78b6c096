import { describe, it, expect } from 'vitest';
import Handlebars from 'handlebars';
import { parseTemplate, type Ast } from '../core/templates/parse.js';
import { analyzeTemplate, type TemplateAnalysis } from '../core/templates/analyze.js';
import { renderTemplate, TemplateRenderError, type HelperFn } from '../core/templates/render.js';
import { builtinHelpers, type HelperScope } from '../core/templates/helpers.js';
import type { Diagnostic } from '../core/errors.js';

function parse(text: string, file = 'models/m.sql'): Ast {
  const r = parseTemplate(file, text);
  if ('error' in r) throw new Error(`unexpected parse error: ${JSON.stringify(r.error)}`);
  return r.ast;
}

function parseError(text: string, file = 'models/m.sql'): Diagnostic {
  const r = parseTemplate(file, text);
  if (!('error' in r)) throw new Error('expected a parse error');
  return r.error;
}

function analyze(text: string): { analysis: TemplateAnalysis; errors: Diagnostic[] } {
  const errors: Diagnostic[] = [];
  const analysis = analyzeTemplate(parse(text), 'models/m.sql', errors);
  return { analysis, errors };
}

interface RenderOptions {
  partials?: Record<string, string>;
  vars?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  extraHelpers?: Record<string, HelperFn>;
  thisRelation?: string;
}

function render(text: string, root: Record<string, unknown> = {}, opts: RenderOptions = {}): string {
  const scope: HelperScope = {
    resolveRef: (name) => `"main"."${name}"`,
    resolveSource: (source, table) => `"${source}"."${table}"`,
    vars: opts.vars ?? {},
    env: opts.env ?? {},
  };
  const helpers = builtinHelpers(scope);
  for (const [name, fn] of Object.entries(opts.extraHelpers ?? {})) helpers.set(name, fn);
  const partials = new Map(Object.entries(opts.partials ?? {}).map(([name, t]) => [name, parse(t, `macros/${name}.hbs`)]));
  return renderTemplate(parse(text), root, {
    file: 'models/m.sql',
    helpers,
    partials,
    thisRelation: opts.thisRelation ?? '"main"."m"',
  });
}

function renderError(text: string, root: Record<string, unknown> = {}, opts: RenderOptions = {}): TemplateRenderError {
  try {
    render(text, root, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(TemplateRenderError);
    return err as TemplateRenderError;
  }
  throw new Error('expected a TemplateRenderError');
}

/** Real Handlebars, as the design says templates behave: noEscape + strict. */
function handlebars(text: string, root: Record<string, unknown>, partials: Record<string, string> = {}): string {
  const hb = Handlebars.create();
  for (const [name, t] of Object.entries(partials)) hb.registerPartial(name, t);
  return hb.compile(text, { noEscape: true, strict: true })(root);
}

describe('parseTemplate', () => {
  it('returns the syntax tree of a valid template', () => {
    const ast = parse('select * from {{ref "a"}}');
    expect(ast.type).toBe('Program');
    expect(ast.body.map((s) => s.type)).toEqual(['ContentStatement', 'MustacheStatement']);
  });

  it('an unclosed {{#if}} names the block and the line it opens on', () => {
    const e = parseError('select 1\nfrom x\n{{#if is_incremental}}\nwhere a > 1\n');
    expect(e.file).toBe('models/m.sql');
    expect(e.message).toBe('template error: a {{#if}} block is never closed');
    expect(e.hint).toBe('add {{/if}} where the block ends');
    expect(e.line).toBe(3);
    expect(e.col).toBe(1);
  });

  it('the unclosed block is the one reported, not the first block in the file', () => {
    const e = parseError('{{#each xs}}{{this}}{{/each}}\nselect 1\n  {{#unless a}}\nx\n');
    expect(e.message).toBe('template error: a {{#unless}} block is never closed');
    expect(e.line).toBe(3);
    expect(e.col).toBe(3);
  });

  it('a mismatched closing tag says which block it closes, with a position', () => {
    const e = parseError('{{#if a}}\n{{#each b}}\nx\n{{/if}}\n');
    expect(e.message).toBe('template error: {{/if}} closes a {{#each}} block');
    expect(e.hint).toBe('close the block with {{/each}}');
    expect(e.line).toBe(2);
  });

  it('a broken mustache is a syntax error on its line with a column', () => {
    const e = parseError('select\n  {{ref "a"}\n');
    expect(e.message).toMatch(/^template syntax error/);
    expect(e.line).toBe(2);
    expect(e.hint).toMatch(/matching }}/);
  });
});

describe('analyzeTemplate', () => {
  it('finds refs everywhere, including inside {{#if}}, {{else}} and subexpressions', () => {
    const { analysis, errors } = analyze(`select * from {{ref "a"}}
{{#if is_incremental}}
  join {{ref "b"}} using (id)
{{else}}
  join {{ref "c"}} using (id)
{{/if}}
{{#each (list (ref "d") "x")}}{{this}}{{/each}}
{{my_helper rel=(ref "e")}}
{{> part rel=(ref "f")}}`);
    expect(errors).toEqual([]);
    expect(analysis.refs.map((r) => r.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(analysis.refs[0]).toEqual({ name: 'a', line: 1, col: 17 });
    expect(analysis.refs[1]).toEqual({ name: 'b', line: 3, col: 10 });
  });

  it('finds a ref inside an {{else if}} chain', () => {
    const { analysis } = analyze('{{#if a}}x{{else if b}}{{ref "deep"}}{{/if}}');
    expect(analysis.refs.map((r) => r.name)).toEqual(['deep']);
  });

  it('finds sources with their two arguments', () => {
    const { analysis, errors } = analyze('select * from {{source "raw" "orders"}}\njoin {{ source "raw" "customers" }}');
    expect(errors).toEqual([]);
    expect(analysis.sources).toEqual([
      { source: 'raw', table: 'orders', line: 1, col: 17 },
      { source: 'raw', table: 'customers', line: 2, col: 9 },
    ]);
  });

  it('a ref whose argument is not a literal is an error at the argument', () => {
    const { analysis, errors } = analyze('select 1\nfrom {{ref model_name}}');
    expect(analysis.refs).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ file: 'models/m.sql', line: 2, col: 12 });
    expect(errors[0]!.message).toBe('ref argument must be a quoted literal, got model_name');
    expect(errors[0]!.hint).toContain('{{ref "model_name"}}');
  });

  it('a ref built by a subexpression is also an error', () => {
    const { errors } = analyze('{{ref (var "m")}}');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ line: 1, col: 7 });
  });

  it('wrong argument counts for ref and source are errors', () => {
    const { errors } = analyze('{{source "raw"}}\n{{ref "a" "b"}}');
    expect(errors.map((e) => [e.line, e.message])).toEqual([
      [1, 'source takes 2 argument(s), got 1'],
      [2, 'ref takes 1 argument(s), got 2'],
    ]);
  });

  it('collects {{config}} hashes in order', () => {
    const { analysis } = analyze('{{config materialized="table" tags=(list "a" "b")}}\n{{config alias="x"}}\nselect 1');
    expect(analysis.configCalls).toHaveLength(2);
    expect(analysis.configCalls[0]!.pairs.map((p) => p.key)).toEqual(['materialized', 'tags']);
    expect(analysis.configCalls[1]!.pairs.map((p) => p.key)).toEqual(['alias']);
  });

  it('separates helpers (called) from bare names (root variables or helpers)', () => {
    const { analysis } = analyze(`{{my_helper "x"}} {{#my_block}}{{/my_block}} {{lookup (other_helper 1) "k"}}
{{bare_root}} {{this}} {{model.name}} {{@index}}
{{#each xs as |item|}}{{item}} {{inner_name}}{{/each}}
{{#if c}}{{inside_if}}{{/if}}
{{> part}}`);
    expect(analysis.helpers.map((h) => h.name)).toEqual(['my_helper', 'my_block', 'lookup', 'other_helper', 'each', 'if']);
    // Inside #each the context is the item, so names there are not root names; #if keeps the root.
    expect(analysis.bareNames.map((h) => h.name)).toEqual(['bare_root', 'inside_if']);
    expect(analysis.bareNames[0]).toEqual({ name: 'bare_root', line: 2, col: 3 });
    expect(analysis.partials).toEqual([{ name: 'part', line: 5, col: 1 }]);
  });
});

describe('renderTemplate: builtin helpers', () => {
  it('ref and source render the relations the scope resolves', () => {
    expect(render('select * from {{ref "orders"}} join {{source "raw" "c"}}')).toBe('select * from "main"."orders" join "raw"."c"');
  });

  it('if / else / unless', () => {
    const t = '{{#if a}}A{{else}}not A{{/if}} {{#unless b}}not B{{else}}B{{/unless}}';
    expect(render(t, { a: true, b: false })).toBe('A not B');
    expect(render(t, { a: '', b: 'x' })).toBe('not A B');
    expect(render(t, { a: [], b: [1] })).toBe('not A B');
    expect(render(t, { a: {}, b: null })).toBe('A not B');
  });

  it('0 is falsy in #if and #unless unless includeZero=true, as in Handlebars', () => {
    expect(render('{{#if n}}y{{else}}n{{/if}}', { n: 0 })).toBe('n');
    expect(render('{{#unless n}}y{{else}}n{{/unless}}', { n: 0 })).toBe('y');
    expect(render('{{#if n includeZero=true}}y{{else}}n{{/if}}', { n: 0 })).toBe('y');
  });

  it('else if chains pick the first true branch', () => {
    const t = '{{#if a}}A{{else if b}}B{{else if c}}C{{else}}D{{/if}}';
    expect(render(t, { a: 1, b: 1, c: 1 })).toBe('A');
    expect(render(t, { a: 0, b: 1, c: 1 })).toBe('B');
    expect(render(t, { a: 0, b: 0, c: 1 })).toBe('C');
    expect(render(t, { a: 0, b: 0, c: 0 })).toBe('D');
  });

  it('each over arrays with @index, @first, @last and {{else}}', () => {
    const t = '{{#each cols}}{{#if @first}}[{{/if}}{{@index}}:{{this}}{{#unless @last}}, {{/unless}}{{#if @last}}]{{/if}}{{else}}none{{/each}}';
    expect(render(t, { cols: ['a', 'b', 'c'] })).toBe('[0:a, 1:b, 2:c]');
    expect(render(t, { cols: [] })).toBe('none');
  });

  it('each over objects with @key, and block params as |x i|', () => {
    expect(render('{{#each m}}{{@key}}={{this}}/{{@index}}{{#if @last}}.{{/if}} {{/each}}', { m: { a: 1, b: 2 } })).toBe('a=1/0 b=2/1. ');
    expect(render('{{#each xs as |x i|}}{{i}}:{{x.name}} {{/each}}', { xs: [{ name: 'p' }, { name: 'q' }] })).toBe('0:p 1:q ');
    expect(render('{{#each m as |v k|}}{{k}}->{{v}};{{/each}}', { m: { a: 1, b: 2 } })).toBe('a->1;b->2;');
  });

  it('nested each reaches the outer loop with ../ and @../index', () => {
    const root = { outer: [{ n: 'x', inner: [1, 2] }, { n: 'y', inner: [3] }] };
    expect(render('{{#each outer}}{{#each inner}}{{../n}}{{@../index}}.{{@index}}={{this}} {{/each}}{{/each}}', root)).toBe(
      'x0.0=1 x0.1=2 y1.0=3 ',
    );
  });

  it('with changes the context; else renders for an empty value', () => {
    expect(render('{{#with m}}{{a}}-{{b}}{{/with}}', { m: { a: 1, b: 2 } })).toBe('1-2');
    expect(render('{{#with m as |z|}}{{z.a}}{{/with}}', { m: { a: 1 } })).toBe('1');
    expect(render('{{#with m}}x{{else}}empty{{/with}}', { m: null })).toBe('empty');
  });

  it('lookup reads a dynamic key', () => {
    expect(render('{{lookup m "k"}} {{lookup xs 1}} {{#each keys}}{{lookup ../m this}}{{/each}}', { m: { k: 'v', j: 'w' }, xs: ['a', 'b'], keys: ['j', 'k'] })).toBe(
      'v b wv',
    );
  });

  it('whitespace control with ~ trims around tags', () => {
    expect(render('select\n  {{~ a ~}}\n  , b\n{{~#if c}} , c {{/if~}}\n from t', { a: ' x', c: true })).toBe('select x, b , c from t');
  });

  it('standalone block tags do not leave blank lines', () => {
    expect(render('select a\n{{#if inc}}\nwhere x\n{{/if}}\nlimit 1\n', { inc: true })).toBe('select a\nwhere x\nlimit 1\n');
    expect(render('select a\n{{#if inc}}\nwhere x\n{{/if}}\nlimit 1\n', { inc: false })).toBe('select a\nlimit 1\n');
  });

  it('partials take hash arguments, see the caller context, and keep indentation', () => {
    const partials = { cents: '({{col}} / 100)::decimal(16, {{scale}})', cols: 'a,\nb_{{suffix}},\nc\n' };
    expect(render('select {{> cents col="amount" scale=2}} as dollars', {}, { partials })).toBe('select (amount / 100)::decimal(16, 2) as dollars');
    expect(render('select\n    {{> cols}}\nfrom t', { suffix: 'x' }, { partials })).toBe('select\n    a,\n    b_x,\n    c\nfrom t');
  });

  it('a partial block renders its body through @partial-block', () => {
    expect(render('{{#> wrap}}inner {{v}}{{/wrap}}', { v: 1 }, { partials: { wrap: '[{{> @partial-block}}]' } })).toBe('[inner 1]');
  });

  it('an error inside a partial names the partial file when partialFiles is given', () => {
    const scope: HelperScope = { resolveRef: (n) => n, resolveSource: (a, b) => `${a}.${b}`, vars: {}, env: {} };
    const partials = new Map([
      ['p', parse('a\n  {{nope}}', 'macros/p.hbs')],
      ['wrap', parse('[{{> @partial-block}}]', 'macros/wrap.hbs')],
    ]);
    const env = { file: 'models/m.sql', helpers: builtinHelpers(scope), partials, partialFiles: new Map([['p', 'macros/p.hbs'], ['wrap', 'macros/wrap.hbs']]), thisRelation: 'R' };
    const fail = (t: string) => {
      try {
        renderTemplate(parse(t), {}, env);
      } catch (e) {
        return e as TemplateRenderError;
      }
      throw new Error('expected an error');
    };
    expect(fail('select\n{{> p}}')).toMatchObject({ file: 'macros/p.hbs', line: 2, col: 5 });
    // The body of a partial block belongs to the file it is written in.
    expect(fail('x\n{{#> wrap}}{{oops}}{{/wrap}}')).toMatchObject({ file: 'models/m.sql', line: 2, col: 14 });
    // After the partial, errors are in the caller again.
    expect(fail('{{> wrap}}\n{{late}}'.replace('{{> wrap}}', '{{#> wrap}}ok{{/wrap}}'))).toMatchObject({ file: 'models/m.sql', line: 2 });
  });

  it('an unknown partial is a TemplateRenderError', () => {
    const e = renderError('select\n{{> nope}}');
    expect(e.message).toBe('unknown partial "nope"');
    expect(e.line).toBe(2);
  });

  it('{{this}} at the top level is the relation being built, inside #each the item', () => {
    expect(render('insert into {{this}}', {}, { thisRelation: '"main"."orders"' })).toBe('insert into "main"."orders"');
    expect(render('{{this}}: {{#each xs}}{{this}} {{/each}}{{#each xs}}{{.}}{{/each}}', { xs: ['a', 'b'] }, { thisRelation: 'R' })).toBe('R: a b ab');
    expect(render('{{#with m}}{{this.a}}{{/with}}', { m: { a: 'in' } })).toBe('in');
  });

  it('a missing variable is a TemplateRenderError with line and column', () => {
    const e = renderError('select 1\nfrom t where x > {{ missing_var }}', { present: 1 });
    expect(e.message).toBe('"missing_var" is not defined');
    expect(e.file).toBe('models/m.sql');
    expect(e.line).toBe(2);
    expect(e.col).toBe(21);
    expect(e.hint).toContain('present');
    expect(e.hint).toContain('{{var "missing_var"}}');
  });

  it('a missing nested property is an error too', () => {
    const e = renderError('{{model.nope}}', { model: { name: 'm' } });
    expect(e.message).toBe('"model.nope" is not defined');
    expect(e.line).toBe(1);
    expect(e.col).toBe(3);
  });

  it('a misspelt root variable in a block condition is an error, not silently false', () => {
    // Stricter than Handlebars' strict mode (which treats a missing helper argument as undefined).
    const e = renderError('select 1\n{{#if is_incremetal}}x{{/if}}', { is_incremental: true });
    expect(e.message).toBe('"is_incremetal" is not defined');
    expect(e.line).toBe(2);
  });

  it('an unknown helper called with arguments is an error', () => {
    const e = renderError('select {{nope "a"}}');
    expect(e.message).toBe('unknown helper "nope"');
    expect(e.col).toBe(10);
  });

  it('var reads project vars, with a default; a missing var is an error', () => {
    expect(render('{{var "start"}} {{var "other" "dflt"}} {{var "n"}}', {}, { vars: { start: '2024-01-01', n: 3 } })).toBe('2024-01-01 dflt 3');
    const e = renderError('\n  {{var "nope"}}');
    expect(e.message).toBe('{{var}}: var "nope" is not set');
    expect(e.line).toBe(2);
    expect(e.col).toBe(3);
    expect(e.hint).toContain('--vars');
  });

  it('env_var reads the environment, with a default; missing without a default is an error', () => {
    expect(render('{{env_var "A"}} {{env_var "B" "dflt"}}', {}, { env: { A: 'a-val' } })).toBe('a-val dflt');
    const e = renderError('{{env_var "NOPE"}}');
    expect(e.message).toBe('{{env_var}}: environment variable NOPE is not set');
    expect(e.hint).toContain('export NOPE=');
  });

  it('env_var refuses ETL_ENV_SECRET_* names, set or not', () => {
    for (const env of [{ ETL_ENV_SECRET_X: 's3cr3t' }, {}]) {
      const e = renderError('select {{env_var "ETL_ENV_SECRET_X" "dflt"}}', {}, { env });
      expect(e.message).toMatch(/^\{\{env_var\}\}: environment variable ETL_ENV_SECRET_X holds a secret/);
      expect(e.message).not.toContain('s3cr3t');
      expect(e.col).toBe(8);
    }
  });

  it('list builds an array usable by each and by other helpers', () => {
    expect(render('{{#each (list "a" "b" 3)}}{{this}};{{/each}}')).toBe('a;b;3;');
    expect(render('{{join (list "x" "y") ", "}}', {}, { extraHelpers: { join: (arr, sep) => (arr as string[]).join(String(sep)) } })).toBe('x, y');
  });

  it('config renders nothing', () => {
    expect(render('{{config materialized="table"}}select 1')).toBe('select 1');
  });

  it('project helpers receive args, hash and this', () => {
    const extraHelpers: Record<string, HelperFn> = {
      cents_to_dollars(col, options) {
        const scale = (options as { hash: { scale?: number } }).hash.scale ?? 2;
        return `(${String(col)} / 100)::decimal(16, ${scale})`;
      },
    };
    expect(render('{{cents_to_dollars "amount"}} {{cents_to_dollars "x" scale=4}}', {}, { extraHelpers })).toBe(
      '(amount / 100)::decimal(16, 2) (x / 100)::decimal(16, 4)',
    );
  });

  it('an error thrown by a helper becomes a TemplateRenderError at the call', () => {
    const e = renderError('select\n  {{boom}}', {}, { extraHelpers: { boom: () => { throw new Error('kaput'); } } });
    expect(e.message).toBe('{{boom}}: kaput');
    expect(e.line).toBe(2);
    expect(e.col).toBe(3);
  });
});

describe('renderTemplate matches Handlebars (noEscape, strict)', () => {
  const cases: Array<{ name: string; template: string; root: Record<string, unknown>; partials?: Record<string, string> }> = [
    {
      name: 'if/else if/unless with falsy values',
      template: '{{#if a}}\n  A\n{{else if b}}\n  B\n{{else}}\n  C\n{{/if}}\n{{#unless z}}no z{{/unless}} {{#if z includeZero=true}}zero{{/if}}\n',
      root: { a: 0, b: 'yes', z: 0 },
    },
    {
      name: 'each over arrays and objects with data variables and block params',
      template:
        '{{#each cols as |c i|}}{{i}}{{c}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}},{{/each}}|{{#each m}}{{@key}}:{{this}}:{{@index}}{{#if @last}}!{{/if}} {{/each}}|{{#each none}}x{{else}}empty{{/each}}',
      root: { cols: ['a', 'b', 'c'], m: { p: 1, q: 2 }, none: [] },
    },
    {
      name: 'nested each with ../ and @../index',
      template: '{{#each outer}}{{#each inner}}{{../n}}{{@../index}}{{@index}}{{this}} {{/each}}{{/each}}',
      root: { outer: [{ n: 'x', inner: [1, 2] }, { n: 'y', inner: [3] }] },
    },
    {
      name: 'with, lookup, @root',
      // (Separators between numbers: compiled Handlebars adds adjacent numeric outputs, 1 then 1 giving "2".)
      template: '{{#with m as |z|}}{{z.a}}-{{a}}-{{@root.top}}{{/with}} {{lookup m "a"}} {{#each ks}}{{lookup ../m this}}-{{/each}}',
      root: { m: { a: 1, b: 2 }, ks: ['b', 'a'], top: 'T' },
    },
    {
      name: 'whitespace control and standalone lines',
      template: 'select\n  {{~ a ~}}\n  , b\n{{#if c}}\n  , c\n{{/if}}\n{{~#each xs}} {{this}} {{~/each}}\nfrom t',
      root: { a: ' x', c: true, xs: [1, 2] },
    },
    {
      name: 'partials with hash args and indentation',
      template: 'select\n    {{> cols suffix="y"}}\n  {{> one}}\nfrom t',
      root: { v: 'V' },
      partials: { cols: 'a,\n\nb_{{suffix}}_{{v}},\nc\n', one: '{{v}}' },
    },
    {
      name: 'scalar rendering: arrays, booleans, 0, null',
      template: '{{xs}} {{t}} {{f}} {{z}} [{{nul}}]',
      root: { xs: [1, 2], t: true, f: false, z: 0, nul: null },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(render(c.template, c.root, { partials: c.partials })).toBe(handlebars(c.template, c.root, c.partials));
    });
  }

  it('both throw on a missing variable', () => {
    expect(() => handlebars('{{nope}}', {})).toThrow(/not defined/);
    expect(() => render('{{nope}}', {})).toThrow(TemplateRenderError);
  });
});
