// The corpus of broken projects (tests/fixtures/broken/<case>/): each is
// built with the real CLI on a DuckDB target (one case: a Postgres one) in a
// temporary copy, and must exit with the code of its expect.yml, name the
// file:line it gives, contain each of its words, and write nothing: no
// target/ folder, so no database file and no table in one.

import path from 'node:path';
import { cpSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { killAll, listFiles, makeTempDir, REPO_ROOT, removeTempDirs, runCli } from './helpers.js';

const CORPUS = path.join(REPO_ROOT, 'tests/fixtures/broken');

interface Expectation {
  exit: number;
  /** file, file:line or file:line:col the message must name ('' when the problem is in the command line). */
  at: string;
  contains: string[];
  args?: string[];
  env?: Record<string, string>;
}

const cases = readdirSync(CORPUS, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

describe.concurrent('broken projects', () => {
  it('has at least 80 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(80);
  });

  it.each(cases)('%s', async (name) => {
    const expected = parse(readFileSync(path.join(CORPUS, name, 'expect.yml'), 'utf8')) as Expectation;
    const dir = path.join(makeTempDir('etl-broken-'), name);
    cpSync(path.join(CORPUS, name), dir, { recursive: true, filter: (p) => path.basename(p) !== 'expect.yml' });
    const r = await runCli(expected.args ?? ['build'], { cwd: dir, env: expected.env });
    expect(r.code, r.output).toBe(expected.exit);
    if (expected.at) {
      // "file:line" is followed by ":" (a column or the message), never by another digit.
      const at = expected.at.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      expect(r.stderr).toMatch(new RegExp(`(^|\\s)${at}${/:\d+$/.test(expected.at) ? '(:|$)' : ''}`, 'm'));
    }
    for (const word of expected.contains) expect(r.stderr).toContain(word);
    expect(r.stdout, 'nothing ran').not.toMatch(/Running \d+ node/);
    expect(existsSync(path.join(dir, 'target')), `target/ was written: ${listFiles(path.join(dir, 'target')).join(', ')}`).toBe(false);
  });
});
