// `etl docs generate` on the real Postgres (127.0.0.1:5432, database test;
// ETL_PG_URL overrides): the catalog (Postgres's own types) and the run
// history read over one connection, column lineage traced with the
// catalog's columns (select * expanded), and the site told to format SQL as
// Postgres's (the data names the formatter's dialect; the page compares no
// engine name). The site then opened in Chromium: Postgres's types on the
// page, the SQL formatted in Postgres's dialect, no console error and no
// request to another host. Its own schema, dropped after.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { formatDialect, postgresql } from 'sql-formatter';
import { describe, expect, it } from 'vitest';
import { launchChromium, watchedPage } from './browser.js';
import { PG_URL, assertCliBuilt, pgTestSchemas, runCli, writeProject } from './helpers.js';

const pg = pgTestSchemas();

describe('etl docs generate on Postgres', () => {
  it('reads the catalog and run history, traces lineage through select *, and names the formatter dialect', async () => {
    assertCliBuilt();
    const schema = pg.schema();
    const dir = writeProject({
      'etl.yml': `name: pgdocs\nversion: 1\ntarget: pg\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 2 }\n`,
      'seeds/raw_people.csv': 'id,name,born\n1,Ada,1815-12-10\n2,Alan,1912-06-23\n',
      'models/people.sql': '{{config materialized="table"}}\nselect * from {{ref "raw_people"}}\n',
      'models/named.sql': "select p.*, upper(p.name) as shout, p.born::text as born_text from {{ref \"people\"}} p where p.name ilike 'a%'\n",
    });
    const build = await runCli(['build'], { cwd: dir });
    expect(build.code, build.output).toBe(0);
    const gen = await runCli(['docs', 'generate'], { cwd: dir });
    expect(gen.code, gen.output).toBe(0);
    expect(gen.stderr).not.toMatch(/could not be read|no run history/);

    const catalog = JSON.parse(readFileSync(path.join(dir, 'target/catalog.json'), 'utf8'));
    const types = Object.fromEntries(Object.values(catalog.nodes['model.pgdocs.named'].columns as Record<string, { name: string; type: string }>).map((c) => [c.name, c.type]));
    expect(types).toEqual({ id: 'integer', name: 'text', born: 'date', shout: 'text', born_text: 'text' });

    const lineage = JSON.parse(readFileSync(path.join(dir, 'target/lineage.json'), 'utf8')).nodes['model.pgdocs.named'].columns;
    expect(Object.keys(lineage)).toEqual(['id', 'name', 'born', 'shout', 'born_text']);
    expect(lineage.born).toEqual({ data_type: 'date', kind: 'passthrough', upstream: [{ node: 'model.pgdocs.people', column: 'born' }] });
    expect(lineage.shout).toMatchObject({ kind: 'transform', expression: 'upper(p.name)', upstream: [{ node: 'model.pgdocs.people', column: 'name' }] });

    const received: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
    vm.runInContext(readFileSync(path.join(dir, 'target/docs/data/index.js'), 'utf8'), vm.createContext({ etlDocs: (k: string, v: unknown) => (received[k] = v) }));
    expect(received.index).toMatchObject({ adapter: 'postgres', sql_dialect: 'postgresql', has_catalog: true });
    expect(received.index.summary.runs[0]).toMatchObject({ command: 'build', status: 'success' });

    const browser = await launchChromium();
    try {
      const w = await watchedPage(browser, (u) => u.startsWith('file://'));
      const { page } = w;
      await page.goto(`${pathToFileURL(path.join(dir, 'target/docs/index.html')).href}#/n/model.pgdocs.named`);
      await page.locator('main h1', { hasText: /^named$/ }).waitFor();
      const typeOf = (c: string) => page.locator(`table.columns tr[data-column="${c}"] td.type`).textContent();
      expect([await typeOf('id'), await typeOf('born'), await typeOf('shout')]).toEqual(['integer', 'date', 'text']);
      const sql = page.locator('#sec-code pre.sql code');
      await sql.locator('.hljs-keyword').first().waitFor();
      const compiled = JSON.parse(readFileSync(path.join(dir, 'target/manifest.json'), 'utf8')).nodes['model.pgdocs.named'].compiled_code as string;
      expect(await sql.textContent()).toBe(formatDialect(compiled, { dialect: postgresql, keywordCase: 'lower' }));
      expect(await sql.textContent()).toContain('p.born::text');
      await w.screenshot('postgres-named');
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
