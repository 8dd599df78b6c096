// Bad input: exit code 2, a message naming file:line, and nothing written to
// the target, neither on a project never built (no target/ appears) nor on one
// built before (target/, its .duckdb file included, stays byte-for-byte the same).

import path from 'node:path';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyTemplate, killAll, listFiles, read, removeTempDirs, runCli, snapshotDir, writeFiles, type CliResult } from './helpers.js';

interface BadCase {
  name: string;
  /** Breaks the project (files are restored afterwards). */
  apply?: (dir: string) => void;
  args?: string[];
  /** Every pattern must appear in stderr. */
  expect: Array<RegExp | ((dir: string) => RegExp)>;
}

function edit(dir: string, rel: string, from: string | RegExp, to: string): void {
  const file = path.join(dir, rel);
  const text = readFileSync(file, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`edit of ${rel} changed nothing`);
  writeFileSync(file, next);
}

/** 1-based line of the first line of `rel` containing `needle`. */
function lineOf(dir: string, rel: string, needle: string): number {
  const i = read(dir, rel).split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${needle} not in ${rel}`);
  return i + 1;
}

const CASES: BadCase[] = [
  {
    name: 'invalid YAML in a models .yml',
    apply: (dir) => writeFiles(dir, { 'models/staging/extra.yml': 'models:\n  - name: stg_orders\n    description: [unclosed\n' }),
    expect: [/models\/staging\/extra\.yml:\d+:\d+: invalid YAML/],
  },
  {
    name: 'an unknown top-level key in etl.yml',
    apply: (dir) => edit(dir, 'etl.yml', /^version: 1$/m, 'version: 1\nmodles: {}'),
    expect: [(dir) => new RegExp(`etl\\.yml:${lineOf(dir, 'etl.yml', 'modles')}:\\d+: unknown key "modles"`), /did you mean "models"\?/],
  },
  {
    name: 'an unknown key in a target of etl.yml',
    apply: (dir) => edit(dir, 'etl.yml', 'threads: 4', 'thraeds: 4'),
    expect: [(dir) => new RegExp(`etl\\.yml:${lineOf(dir, 'etl.yml', 'thraeds')}:\\d+: unknown key "thraeds"`), /did you mean "threads"\?/],
  },
  {
    name: 'an unknown ref',
    apply: (dir) => edit(dir, 'models/marts/orders.sql', '{{ref "stg_orders"}}', '{{ref "stg_ordrs"}}'),
    expect: [
      (dir) => new RegExp(`models/marts/orders\\.sql:${lineOf(dir, 'models/marts/orders.sql', 'stg_ordrs')}:\\d+: unknown ref "stg_ordrs"`),
      /did you mean "stg_orders"\?/,
    ],
  },
  {
    name: 'a ref whose argument is not a literal',
    apply: (dir) => writeFiles(dir, { 'models/bad_ref.sql': '-- a model\nselect * from {{ref some_var}}\n' }),
    expect: [/models\/bad_ref\.sql:2:\d+: ref argument must be a quoted literal/, /some_var/],
  },
  {
    name: 'an unknown helper',
    apply: (dir) => writeFiles(dir, { 'models/bad_helper.sql': 'select\n  {{nope_helper "x"}} as x\n' }),
    expect: [/models\/bad_helper\.sql:2:\d+: unknown helper "nope_helper"/],
  },
  {
    name: 'a dependency cycle',
    apply: (dir) =>
      writeFiles(dir, {
        'models/cyc_a.sql': 'select * from {{ref "cyc_b"}}\n',
        'models/cyc_b.sql': 'select * from {{ref "cyc_c"}}\n',
        'models/cyc_c.sql': 'select * from {{ref "cyc_a"}}\n',
      }),
    // All members, in order (starting anywhere on the cycle).
    expect: [/models\/cyc_[abc]\.sql:1:\d+: dependency cycle: (cyc_a -> cyc_b -> cyc_c -> cyc_a|cyc_b -> cyc_c -> cyc_a -> cyc_b|cyc_c -> cyc_a -> cyc_b -> cyc_c)/],
  },
  {
    name: 'two models with one name',
    apply: (dir) => writeFiles(dir, { 'models/marts/dup.sql': 'select 1 as x\n', 'models/staging/dup.sql': 'select 2 as x\n' }),
    expect: [/models\/(marts|staging)\/dup\.sql:\d+: two models are named "dup"/, /models\/marts\/dup\.sql/, /models\/staging\/dup\.sql/],
  },
  {
    name: 'an unknown target',
    args: ['--target', 'nope'],
    expect: [/etl\.yml:\d+(:\d+)?: unknown target "nope"/, /dev/],
  },
  {
    name: '--vars that are not YAML or JSON',
    args: ['--vars', '{start_date: [2024'],
    expect: [/--vars is not valid YAML or JSON/],
  },
  {
    name: '--vars that are not a mapping',
    args: ['--vars', '[1, 2]'],
    expect: [/--vars must be a mapping/],
  },
  {
    name: 'an unknown command option',
    args: ['--bogus'],
    expect: [/unknown option '--bogus'/],
  },
];

/** The project's own files (not target/), to undo a case's edits. */
function sourceFiles(dir: string): Map<string, Buffer> {
  return new Map(listFiles(dir).filter((f) => !f.startsWith('target/')).map((f) => [f, readFileSync(path.join(dir, f))]));
}

function restoreSources(dir: string, saved: Map<string, Buffer>): void {
  for (const f of listFiles(dir)) if (!f.startsWith('target/') && !saved.has(f)) rmSync(path.join(dir, f));
  for (const [f, content] of saved) writeFileSync(path.join(dir, f), content);
}

function expectMessages(c: BadCase, dir: string, r: CliResult): void {
  for (const e of c.expect) {
    const re = typeof e === 'function' ? e(dir) : e;
    expect(r.stderr, `${c.name}: stderr should match ${re}`).toMatch(re);
  }
  // Nothing ran.
  expect(r.stdout).not.toMatch(/Running \d+ node/);
}

afterAll(killAll);

// Each case has its own copy here, so they can run side by side.
describe.concurrent('bad input on a project never built', () => {
  afterAll(removeTempDirs);

  it.each(CASES.map((c) => [c.name, c] as const))('%s: exit 2, file:line, no target/ created', async (_name, c) => {
    const dir = copyTemplate();
    c.apply?.(dir);
    const r = await runCli(['build', ...(c.args ?? [])], { cwd: dir });
    expect(r.code, r.output).toBe(2);
    expectMessages(c, dir, r);
    expect(existsSync(path.join(dir, 'target')), `${c.name}: target/ was created`).toBe(false);
  });
});

describe('bad input on a project built before', () => {
  let dir: string;
  let saved: Map<string, Buffer>;
  let before: Record<string, string>;

  beforeAll(async () => {
    dir = copyTemplate();
    const r = await runCli(['build'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    saved = sourceFiles(dir);
    before = snapshotDir(path.join(dir, 'target'));
    expect(Object.keys(before)).toContain('dev.duckdb');
  });
  afterAll(removeTempDirs);

  it.each(CASES.map((c) => [c.name, c] as const))('%s: exit 2, target/ unchanged', async (_name, c) => {
    try {
      c.apply?.(dir);
      const r = await runCli(['build', ...(c.args ?? [])], { cwd: dir });
      expect(r.code, r.output).toBe(2);
      expectMessages(c, dir, r);
      expect(snapshotDir(path.join(dir, 'target')), `${c.name}: target/ changed`).toEqual(before);
    } finally {
      restoreSources(dir, saved);
    }
  });

  it('reports every broken model of a run at once', async () => {
    try {
      writeFiles(dir, {
        'models/broken_one.sql': 'select * from {{ref "nope_one"}}\n',
        'models/broken_two.sql': 'select\n  {{unknown_helper_two}} as x\n',
      });
      const r = await runCli(['compile'], { cwd: dir });
      expect(r.code, r.output).toBe(2);
      expect(r.stderr).toMatch(/models\/broken_one\.sql:1:\d+: unknown ref "nope_one"/);
      expect(r.stderr).toMatch(/models\/broken_two\.sql:2:\d+: unknown helper or variable "unknown_helper_two"/);
      expect(snapshotDir(path.join(dir, 'target'))).toEqual(before);
    } finally {
      restoreSources(dir, saved);
    }
  });

  it('the project builds again once fixed', async () => {
    const r = await runCli(['build'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
  });
});
