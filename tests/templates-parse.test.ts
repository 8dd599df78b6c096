// core/templates/parse.ts builds the syntax tree of plain templates itself
// (parseSimple) instead of running Handlebars' parser: the tree must be the
// very one Handlebars gives, key for key (undefined values and positions
// included), and every other template must be left to Handlebars.

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Handlebars from 'handlebars';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSimple, parseTemplate } from '../core/templates/parse.js';
// @ts-expect-error: a plain .mjs script of the benchmarks, without types
import { generateProject } from '../bench/gen.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const temp = mkdtempSync(path.join(os.tmpdir(), 'etl-parse-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** The tree as plain data, undefined values kept (as a marker), so that a missing key differs from an undefined one. */
const plain = (x: unknown) => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (v === undefined ? '<undefined>' : v))) as unknown;

function sqlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? sqlFiles(p) : f.endsWith('.sql') || f.endsWith('.hbs') ? [p] : [];
  });
}

const SAME = [
  'select 1',
  '{{x}}',
  '{{x}}{{y}}',
  'select * from {{ref "orders"}}',
  "select * from {{ref 'orders'}} where d >= '{{var \"start\"}}'\n",
  '-- a comment {\n\tselect a }} b from {{ source "raw" "orders" }}\n\n',
  'a\r\nb {{x}}\r c\r\n{{y 1}}',
  '{{n 12 -3 1.5 true false null undefined name}} tail',
  '{{ref "a b c"}}   {{ref "é ✓ 😀"}}\n{{env_var "HOME"}}',
  '  {{x}}  \n  {{y}}  \n',
  '{{config materialized="table" n=3 tags="a b" flag=true x=null y=name}}\nselect 1',
  '{{ref "orders" version=12}} {{ source "s" "t" }}',
  '{{config materialized="table"}}',
  'select a,\n    {{> cents_to_dollars column="r0.amount"}} as usd\nfrom x',
  'a {{> x}} b {{>y ctx}} c',
  'x {{> p}}\n{{> q}} y',
];

const HANDLEBARS_ONLY = [
  '',
  '{{#if is_incremental}}where 1{{/if}}',
  '{{> partial}}',
  'a\n  {{> partial}}\nb',
  'a\n{{> partial x=1}}  ',
  '{{> p}} \n x',
  'a {{> p a b}}',
  '{{! comment }}',
  '{{!-- comment --}}',
  '{{ref (concat "a" "b")}}',
  '{{{raw}}}',
  '{{x}}}',
  '\\{{escaped}}',
  '{{~x~}}',
  '{{this}}',
  '{{a.b}}',
  '{{@index}}',
  '{{x\n"y"}}',
  '{{ref "a\\"b"}}',
  '{{ref "a"b}}',
  '{{else}}',
  '{{true}}',
  '{{&x}}',
  'a\u2028b {{x}}',
  '{{ref "unclosed}}',
  '{{x a=1 "b"}}',
  '{{x a = 1}}',
  '{{x a=}}',
  '{{x "a" =1}}',
];

describe('parseSimple', () => {
  it.each(SAME)('gives the tree Handlebars gives for %j', (text) => {
    const simple = parseSimple(text);
    expect(simple).toBeDefined();
    expect(plain(simple)).toEqual(plain(Handlebars.parse(text)));
  });

  it.each(HANDLEBARS_ONLY)('leaves %j to Handlebars', (text) => {
    expect(parseSimple(text)).toBeUndefined();
  });

  it('gives the same trees as Handlebars for every model of project-template and of a generated project, and takes most of them', () => {
    generateProject(path.join(temp, 'gen'), { models: 400, kind: 'compile' });
    const files = [...sqlFiles(path.join(ROOT, 'project-template')), ...sqlFiles(path.join(temp, 'gen'))];
    let simple = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const expected = plain(Handlebars.parse(text));
      const fast = parseSimple(text);
      if (fast) simple++;
      expect(plain(fast ?? Handlebars.parse(text)), file).toEqual(expected);
      const viaTemplate = parseTemplate(file, text);
      expect('ast' in viaTemplate && plain(viaTemplate.ast), file).toEqual(expected);
    }
    expect(files.length).toBeGreaterThan(400);
    expect(simple / files.length).toBeGreaterThan(0.6);
  });
});
