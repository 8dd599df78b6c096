// Which database drivers a command loads: `etl compile` needs none (not
// DuckDB's, not pg), even for a project whose loaders read Postgres and
// files; they are loaded when something binds or runs. Seen through the
// CommonJS module cache of the process at exit (both drivers are CommonJS):
// the bundled CLI carries @duckdb/node-api's JavaScript but require()s its
// native part, @duckdb/node-bindings, from node_modules; the library API
// (dist/core) loads both packages, and pg, from node_modules.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { assertCliBuilt, CLI, etlYml, makeTempDir, REPO_ROOT, removeTempDirs, writeProject } from './helpers.js';

afterAll(() => removeTempDirs());

/** A preload that prints, at exit, the packages whose CommonJS modules were loaded. */
function preload(): string {
  const file = path.join(makeTempDir(), 'loaded-packages.cjs');
  writeFileSync(
    file,
    `process.on('exit', () => {
  const packages = new Set(Object.keys(require.cache).map((f) => (/node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(f) || [])[1]).filter(Boolean).map((p) => p.replace(/\\\\/g, '/')));
  process.stderr.write('LOADED ' + JSON.stringify([...packages]) + '\\n');
});
`,
  );
  return file;
}

function loadedBy(argv: string[], cwd: string): string[] {
  const r = spawnSync(process.execPath, ['-r', preload(), ...argv], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  expect(r.status, r.stderr).toBe(0);
  const line = r.stderr.split('\n').find((l) => l.startsWith('LOADED '));
  return JSON.parse(line!.slice('LOADED '.length)) as string[];
}

function loaderProject(): string {
  return writeProject({
    'etl.yml': etlYml('shop'),
    'models/sources.yml': `sources:
  - name: crm
    tables:
      - name: customers
        loader: { type: postgres, url: "postgres://nobody@127.0.0.1:1/none", table: public.customers }
        columns:
          - { name: id, data_type: integer }
  - name: files
    tables:
      - name: orders
        loader: { type: files, path: "data/*.csv" }
        columns:
          - { name: id, data_type: integer }
`,
    'models/customers.sql': "select id from {{source 'crm' 'customers'}}",
    'models/orders.sql': "select o.id from {{source 'files' 'orders'}} as o join {{ref 'customers'}} as c on c.id = o.id",
  });
}

describe('database drivers are loaded only when needed', () => {
  it('etl compile loads no driver; compile --check loads DuckDB to bind', () => {
    assertCliBuilt();
    const dir = loaderProject();
    const compiled = loadedBy([CLI, 'compile', '--project-dir', dir], dir);
    expect(compiled).not.toContain('@duckdb/node-bindings');
    expect(compiled).not.toContain('@duckdb/node-api');
    expect(compiled).not.toContain('pg');
    // The same process does load DuckDB once it binds: the cache above is the one drivers land in.
    const checked = loadedBy([CLI, 'compile', '--check', '--no-check-sources', '--project-dir', dir], dir);
    expect(checked).toContain('@duckdb/node-bindings');
    // The CLI's bundle carries the API's JavaScript itself (scripts/bundle.mjs): none of its ~180 files is read.
    expect(checked).not.toContain('@duckdb/node-api');
  });

  it('the library API compiles without loading pg or DuckDB', () => {
    const dir = loaderProject();
    const api = pathToFileURL(path.join(REPO_ROOT, 'dist/core/api.js')).href;
    const script = `const { compile } = await import(${JSON.stringify(api)}); const r = await compile({ projectDir: ${JSON.stringify(dir)} }); if (r.nodeCount < 4) throw new Error('compiled ' + r.nodeCount + ' nodes');`;
    const loaded = loadedBy(['--input-type=module', '-e', script], dir);
    expect(loaded).not.toContain('pg');
    expect(loaded).not.toContain('@duckdb/node-api');
    expect(loaded).not.toContain('@duckdb/node-bindings');
  });
});
