// etl.yml jobs: and alerts: (core/project/orchestration.ts), read by the real loader.

import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scanProject } from '../core/project/load.js';
import { splitCommand } from '../core/project/orchestration.js';
import { ProjectError, formatDiagnostic } from '../core/errors.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const HEAD = 'name: shop\nversion: 1\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb }\n';

function scan(extra: string, env: NodeJS.ProcessEnv = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-orch-test-'));
  dirs.push(root);
  fs.writeFileSync(path.join(root, 'etl.yml'), HEAD + extra);
  return scanProject(root, { env });
}

function errorsOf(extra: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    scan(extra, env);
  } catch (err) {
    if (err instanceof ProjectError) return err.diagnostics.map(formatDiagnostic);
    throw err;
  }
  throw new Error('expected the project to be refused');
}

describe('jobs:', () => {
  it('reads a job with its defaults and its command split into arguments', () => {
    const p = scan('jobs:\n  - { name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin, command: "build -s tag:daily --vars \'{a: 1}\'", sla: 30m }\n  - { name: hourly, cron: "0 * * * *" }\n');
    expect(p.jobs).toEqual([
      { name: 'nightly', cron: '0 2 * * *', timezone: 'Europe/Berlin', command: "build -s tag:daily --vars '{a: 1}'", args: ['build', '-s', 'tag:daily', '--vars', '{a: 1}'], sla: '30m', slaSeconds: 1800, catchup: false, line: 6 },
      { name: 'hourly', cron: '0 * * * *', timezone: undefined, command: 'build', args: ['build'], sla: undefined, slaSeconds: undefined, catchup: false, line: 7 },
    ]);
  });

  it.each([
    ['an invalid cron expression', 'jobs:\n  - { name: n, cron: "61 2 * * *" }\n', 'etl.yml:6:', 'invalid cron expression "61 2 * * *" for job "n"'],
    ['an unknown time zone', 'jobs:\n  - name: n\n    cron: "0 2 * * *"\n    timezone: Europe/Berlinn\n', 'etl.yml:8:', 'unknown time zone "Europe/Berlinn" for job "n"'],
    ['a command that is not an etl command', 'jobs:\n  - { name: n, cron: "0 2 * * *", command: "buidl" }\n', 'etl.yml:6:', 'did you mean "build"?'],
    ['a job declared twice', 'jobs:\n  - { name: n, cron: "0 2 * * *" }\n  - { name: n, cron: "0 3 * * *" }\n', 'etl.yml:7:', 'job "n" is declared twice'],
    ['a malformed sla', 'jobs:\n  - { name: n, cron: "0 2 * * *", sla: soon }\n', 'etl.yml:6:', 'expected a duration'],
    ['a missing cron', 'jobs:\n  - { name: n }\n', 'etl.yml:6:', 'missing required key "cron"'],
  ])('refuses %s with file:line', (_what, extra, at, words) => {
    const errors = errorsOf(extra);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(at);
    expect(errors[0]).toContain(words);
  });

  it('names the closest time zone', () => {
    expect(errorsOf('jobs:\n  - { name: n, cron: "0 2 * * *", timezone: Europe/Berlinn }\n')[0]).toContain('did you mean "Europe/Berlin"?');
  });
});

describe('alerts:', () => {
  it('renders env_var in URLs and headers; a secret header is remembered as a secret', () => {
    const p = scan("alerts:\n  - name: ops\n    on: [failure, sla_breach]\n    webhook: { url: \"{{env_var 'HOOK'}}\", headers: { Authorization: \"Bearer {{env_var 'ETL_ENV_SECRET_T'}}\" }, format: slack }\n  - { on: [test_fail], command: ./page.sh, timeout: 30s, retries: 0 }\n", { HOOK: 'https://hooks.example.com/x', ETL_ENV_SECRET_T: 'abc123' });
    expect(p.alerts).toEqual([
      { name: 'ops', on: ['failure', 'sla_breach'], timeoutSeconds: 10, retries: 3, webhook: { url: 'https://hooks.example.com/x', headers: { Authorization: 'Bearer abc123' }, format: 'slack' } },
      { name: 'alerts[1]', on: ['test_fail'], timeoutSeconds: 30, retries: 0, command: './page.sh' },
    ]);
    expect(p.secrets.values.has('abc123')).toBe(true);
  });

  it.each([
    ['an alert without a sink', 'alerts:\n  - name: x\n    on: [failure]\n', 'etl.yml:6:', 'alert "x" has no sink'],
    ['an alert with two sinks', 'alerts:\n  - { on: [failure], command: a, webhook: { url: "https://h/x" } }\n', 'etl.yml:6:', 'has both a webhook and a command'],
    ['an unknown event name', 'alerts:\n  - on: [failure, test_fial]\n    command: a\n', 'etl.yml:6:', 'did you mean "test_fail"?'],
    ['a webhook URL that is not http(s)', 'alerts:\n  - on: [failure]\n    webhook: { url: "ftp://h/x" }\n', 'etl.yml:7:', 'is not an http(s) URL'],
    ['a webhook URL that is no URL', 'alerts:\n  - on: [failure]\n    webhook: { url: "hooks.slack.com/x" }\n', 'etl.yml:7:', 'is not an http(s) URL'],
    ['an unknown format', 'alerts:\n  - on: [failure]\n    webhook: { url: "https://h/x", format: slak }\n', 'etl.yml:7:', 'did you mean "slack"?'],
    ['an empty on:', 'alerts:\n  - { on: [], command: a }\n', 'etl.yml:6:', 'on'],
    ['an unknown key', 'alerts:\n  - { on: [failure], command: a, retires: 2 }\n', 'etl.yml:6:', 'did you mean "retries"?'],
    ['an env var that is not set', "alerts:\n  - on: [failure]\n    webhook: { url: \"{{env_var 'NOPE_URL'}}\" }\n", 'etl.yml:7:', 'NOPE_URL is not set'],
  ])('refuses %s with file:line', (_what, extra, at, words) => {
    const errors = errorsOf(extra);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(at);
    expect(errors[0]).toContain(words);
  });

  it('the refused URL is the one written, never the rendered one (which may hold a secret)', () => {
    const errors = errorsOf("alerts:\n  - on: [failure]\n    webhook: { url: \"{{env_var 'ETL_ENV_SECRET_URL'}}\" }\n", { ETL_ENV_SECRET_URL: 'ftp://user:pw@host/secret-path' });
    expect(errors[0]).toContain("{{env_var 'ETL_ENV_SECRET_URL'}}");
    expect(errors[0]).not.toContain('secret-path');
  });
});

describe('splitCommand', () => {
  it.each([
    ['build -s tag:daily', ['build', '-s', 'tag:daily']],
    [`run --vars '{"a": 1}'`, ['run', '--vars', '{"a": 1}']],
    ['build -s "a b"  c\\ d', ['build', '-s', 'a b', 'c d']],
    ["seed ''", ['seed', '']],
  ])('%s', (text, argv) => {
    expect(splitCommand(text)).toEqual({ argv });
  });
  it('refuses an unclosed quote', () => {
    expect(splitCommand('build -s "a')).toEqual({ error: 'the command has an unclosed "' });
  });
});
