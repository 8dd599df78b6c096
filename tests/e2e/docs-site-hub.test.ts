// The docs site of a project shaped to strain it, in a real Chromium: a seed
// read by 130 models (a hub), a source loaded by a files loader (and stale),
// a failing test, a warning, quarantined rows, and etl.yml `cost:` rates. A hub's lineage graph draws FANOUT children and a "+N more"
// node that draws the rest, then lists them all; a loader sits with its
// source; runs show their cost as `etl report` prices them. No console error
// and no request to another host.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etlYml, killAll, removeTempDirs, runCli, writeProject } from './helpers.js';
import { FANOUT, NEIGHBOURHOOD_CAP } from '../../core/docs/site/graph.js';
import { audit, launchChromium, overflowing, watchedPage } from './browser.js';

const FAN = 130;

let browser: Browser;
let project: string;
let index: string;

beforeAll(async () => {
  const files: Record<string, string> = {
    // 3600 per cpu-hour: a second of a node's time costs 1 EUR.
    'etl.yml': etlYml('hub', 'cost: { per_cpu_hour: 3600, currency: EUR }\n'),
    'seeds/raw_events.csv': 'id,kind\n1,a\n2,b\n',
    'models/sources.yml': 'sources:\n  - name: landing\n    freshness: { error_after: 1d }\n    loaded_at_field: loaded_at\n    tables:\n      - name: visits\n        loader: { type: files, path: "data/*.csv" }\n',
    'data/visits.csv': 'id,page,loaded_at\n1,/,2020-01-01 00:00:00\n2,/about,2020-01-02 00:00:00\n',
    // One row of scored has no score: quarantined. Page /about is not accepted: a warning. dupes has a duplicate: a failure.
    'models/scored.sql': "select id, kind, case when id = 2 then null else id * 10 end as score from (values (1, 'a'), (2, 'b')) as t(id, kind)\n",
    // A table function: its columns' lineage cannot be resolved, and the site says so.
    'models/from_file.sql': "select page, id from read_csv('data/visits.csv')\n",
    'models/dupes.sql': "select 1 as id union all select 1 as id union all select 2\n",
    'models/checks.yml': 'models:\n  - name: scored\n    config: { materialized: table, quarantine: true }\n    columns:\n      - name: score\n        tests: [not_null]\n  - name: visits_by_page\n    columns:\n      - name: page\n        tests: [{ accepted_values: { values: [/], config: { severity: warn } } }]\n  - name: dupes\n    columns:\n      - name: id\n        tests: [unique]\n',
    'models/visits_by_page.sql': "select page, count(*) as n from {{source 'landing' 'visits'}} group by page\n",
  };
  for (let k = 0; k < FAN; k++) files[`models/fan/fan_${String(k).padStart(3, '0')}.sql`] = `select id, kind, ${k} as k from {{ref "raw_events"}}\n`;
  project = writeProject(files);
  const build = await runCli(['build'], { cwd: project, timeoutMs: 180_000 });
  // The unique test on dupes fails the build; everything else succeeds.
  expect(build.code, build.output).toBe(1);
  expect(build.output).toMatch(/unique_dupes_id/);
  const fresh = await runCli(['source', 'freshness'], { cwd: project });
  expect(fresh.output).toMatch(/landing\.visits/);
  const gen = await runCli(['docs', 'generate'], { cwd: project });
  expect(gen.code, gen.output).toBe(0);
  index = pathToFileURL(path.join(project, 'target/docs/index.html')).href;
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await killAll();
  removeTempDirs();
});

async function open(page: Page, hash: string, heading: string): Promise<void> {
  await page.goto(`${index}${hash}`);
  await page.locator('main h1', { hasText: new RegExp(`^\\s*${heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) }).waitFor();
}

const graphLabels = (page: Page) => page.locator('#sec-lineage svg.graph a.gnode text').allTextContents();

describe('docs site of a project with a hub, a loader and cost rates', () => {
  it("draws a hub's children FANOUT at a time, with a +N more node that draws and then lists the rest", async () => {
    const w = await watchedPage(browser, (u) => u.startsWith('file://'));
    const { page } = w;
    try {
      await open(page, '#/n/seed.hub.raw_events', 'raw_events');
      await page.locator('#sec-lineage svg.graph a.gnode').first().waitFor();
      const labels = await graphLabels(page);
      // The seed, FANOUT children, and one node for the rest (the children have no children).
      expect(labels.filter((l) => l.startsWith('fan_'))).toHaveLength(FANOUT);
      expect(labels.filter((l) => /^\+\d+ more$/.test(l))).toEqual([`+${FAN - FANOUT} more`]);
      expect(labels).toHaveLength(FANOUT + 2);
      // Readable: no two nodes overlap, and each label is drawn at a readable size.
      const boxes = await page.locator('#sec-lineage svg.graph a.gnode rect').evaluateAll((rs) => rs.map((r) => r.getBoundingClientRect()).map((b) => ({ x: b.x, y: b.y, w: b.width, h: b.height })));
      for (let a = 0; a < boxes.length; a++) for (let b = a + 1; b < boxes.length; b++) {
        const p = boxes[a]!;
        const q = boxes[b]!;
        expect(p.x + p.w <= q.x || q.x + q.w <= p.x || p.y + p.h <= q.y || q.y + q.h <= p.y, `nodes ${a} and ${b} overlap`).toBe(true);
      }
      expect(boxes[0]!.h).toBeGreaterThanOrEqual(30 * 0.75);
      await w.screenshot('hub-capped');
      // The +N more node draws the rest, up to the graph's cap; it is a labelled link.
      const more = page.locator('#sec-lineage svg.graph a.gnode.more');
      expect(await more.getAttribute('aria-label')).toBe(`${FAN - FANOUT} more directly downstream of raw_events: draw them`);
      await more.click();
      await page.locator('#sec-lineage svg.graph a.gnode.more', { hasText: `+${FAN - (NEIGHBOURHOOD_CAP - 1)} more` }).waitFor();
      expect((await graphLabels(page)).filter((l) => l.startsWith('fan_'))).toHaveLength(NEIGHBOURHOOD_CAP - 1);
      expect(page.url()).toContain('expand=seed.hub.raw_events');
      await w.screenshot('hub-expanded');
      // Then it lists them all (by keyboard: the tall graph has it off screen, centred on the hub).
      const rest = page.locator('#sec-lineage svg.graph a.gnode.more');
      expect(await rest.getAttribute('aria-label')).toBe(`${FAN - (NEIGHBOURHOOD_CAP - 1)} more directly downstream of raw_events: list them all`);
      await rest.focus();
      await page.keyboard.press('Enter');
      await page.locator('main h1', { hasText: 'Downstream of raw_events' }).waitFor();
      expect(await page.locator('main .node-list li').count()).toBe(FAN);
      // The node page's own list names 130 children at once (below the list's cap of 200).
      await open(page, '#/n/seed.hub.raw_events', 'raw_events');
      expect(await page.locator('#sec-lineage h3', { hasText: 'Downstream' }).textContent()).toBe(`Downstream (${FAN})`);
      // A hub's column: FANOUT of the columns derived from it and a +N more node that draws them all.
      await open(page, '#/c/seed.hub.raw_events/id', 'raw_events.id');
      await page.locator('svg.graph a.gnode').first().waitFor();
      const columnLabels = () => page.locator('svg.graph a.gnode text').allTextContents();
      expect((await columnLabels()).filter((l) => /^fan_\d+\.id$/.test(l))).toHaveLength(FANOUT);
      expect((await columnLabels()).filter((l) => l.startsWith('+'))).toEqual([`+${FAN - FANOUT} more`]);
      expect(await page.locator('svg.graph a.gnode.more').getAttribute('aria-label')).toBe(`${FAN - FANOUT} more columns derived from raw_events.id: draw them all`);
      expect(await page.getByRole('region', { name: 'Derivation' }).textContent()).toContain("Data enters the project here (a seed's column): nothing upstream.");
      // The text list below names them all.
      expect(await page.getByRole('region', { name: 'Downstream columns' }).locator('li').count()).toBe(FAN);
      await w.screenshot('hub-column-capped');
      await page.locator('svg.graph a.gnode.more').focus();
      await page.keyboard.press('Enter');
      await page.waitForURL(/all=1/);
      await expect.poll(async () => (await columnLabels()).filter((l) => /^fan_\d+\.id$/.test(l)).length).toBe(FAN);
      expect(await page.locator('svg.graph a.gnode.more').count()).toBe(0);

      // The paths between the hub and a child: the two highlighted, FANOUT of the hub's other children for context.
      await open(page, '#/paths?from=seed.hub.raw_events&to=model.hub.fan_007', 'Paths between raw_events and fan_007');
      expect((await page.locator('svg.graph a.gnode.on-path text').allTextContents()).sort()).toEqual(['fan_007', 'raw_events']);
      expect(await page.locator('svg.graph a.gnode.off-path').count()).toBe(FANOUT);
      // A child's graph shows its one parent and no +N more (a parent's other children are not its lineage).
      await open(page, '#/n/model.hub.fan_007', 'fan_007');
      await page.locator('#sec-lineage svg.graph a.gnode').first().waitFor();
      expect((await graphLabels(page)).sort()).toEqual(['fan_007', 'raw_events']);
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
    } finally {
      await w.context.close();
    }
  });

  it('puts a loader with its source, not under models', async () => {
    const w = await watchedPage(browser, (u) => u.startsWith('file://'));
    const { page } = w;
    try {
      await open(page, '#/n/loader.hub.landing.visits', 'landing.visits');
      expect(await page.locator('main .crumbs').textContent()).toBe('sources/landing');
      expect(await page.locator('main .badges .badge').first().textContent()).toBe('loader');
      await page.locator('main .crumbs a').click();
      await page.locator('main h1', { hasText: 'Folder sources/landing' }).waitFor();
      expect((await page.locator('main .node-list li a').allTextContents()).sort()).toEqual(['landing.visits', 'landing.visits']);
      expect((await page.locator('main .node-list li .kind').allTextContents()).sort()).toEqual(['loader', 'source']);
      await w.screenshot('hub-loader-folder');
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
    } finally {
      await w.context.close();
    }
  });

  it('shows what each run cost, as etl report prices it, on the node page and the home page', async () => {
    const report = await runCli(['report', '--since', '1d', '--output', 'json'], { cwd: project });
    expect(report.code, report.output).toBe(0);
    const groups = (JSON.parse(report.stdout) as { groups: Array<{ group: string; cost: number; runs: number }> }).groups;
    const visits = groups.find((g) => g.group === 'visits_by_page')!;
    expect(visits.runs).toBe(1);
    const w = await watchedPage(browser, (u) => u.startsWith('file://'));
    const { page } = w;
    try {
      await open(page, '#/n/model.hub.visits_by_page', 'visits_by_page');
      const runs = page.locator('#sec-runs table.runs');
      expect(await runs.locator('thead th').allTextContents()).toEqual(['Started', 'Status', 'Duration', 'Rows', 'Cost', 'Message']);
      const cost = (await runs.locator('tbody tr td.cost').allTextContents()).map((t) => t.trim());
      expect(cost).toHaveLength(1);
      // At 1 EUR a second the run's cost is its seconds in EUR, the figure etl report gives.
      expect(cost[0]).toMatch(/^\d+\.\d+ EUR$/);
      expect(parseFloat(cost[0]!)).toBeCloseTo(visits.cost, visits.cost >= 1 ? 2 : 4);
      await w.screenshot('hub-cost-node');
      // Home: the slowest models with their cost.
      await open(page, '#/', 'hub');
      const slowest = page.getByRole('region', { name: 'Slowest in the last run' }).locator('li');
      expect(await slowest.count()).toBeGreaterThan(0);
      for (const text of await slowest.allTextContents()) expect(text).toMatch(/ · \d+\.\d+ EUR$/);
      await w.screenshot('hub-cost-home');
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
    } finally {
      await w.context.close();
    }
  });

  it('fits a laptop and a phone: the source, the loader, the hub and its list, the home with cost', async () => {
    for (const viewport of [{ width: 1280, height: 900, name: 'laptop' }, { width: 390, height: 844, name: 'phone' }]) {
      const w = await watchedPage(browser, (u) => u.startsWith('file://'), viewport);
      const { page } = w;
      try {
        const pages: Array<[string, string, string]> = [
          ['home', '#/', 'hub'],
          ['source', '#/n/source.hub.landing.visits', 'landing.visits'],
          ['loader', '#/n/loader.hub.landing.visits', 'landing.visits'],
          ['hub', '#/n/seed.hub.raw_events', 'raw_events'],
          ['model', '#/n/model.hub.visits_by_page', 'visits_by_page'],
          ['children', '#/list?children=seed.hub.raw_events', 'Downstream of raw_events'],
        ];
        for (const [kind, hash, heading] of pages) {
          await open(page, hash, heading);
          if (hash.startsWith('#/n/')) await page.locator('#sec-lineage svg.graph a.gnode').first().waitFor();
          if (kind === 'hub') {
            // The hub's graph is as wide as the screen allows: every node within the graph's width (it pans up and down).
            const graph = (await page.locator('#sec-lineage svg.graph').boundingBox())!;
            const xs = await page.locator('#sec-lineage svg.graph a.gnode rect').evaluateAll((rs) => rs.map((r) => r.getBoundingClientRect()).map((b) => [b.left, b.right]));
            expect(xs.length).toBe(FANOUT + 2);
            for (const [left, right] of xs) expect(left >= graph.x && right <= graph.x + graph.width, `${left}..${right} in ${graph.x}..${graph.x + graph.width}`).toBe(true);
          }
          expect(await overflowing(page), `${kind} on a ${viewport.name}`).toEqual([]);
          // Labelled for a screen reader, with readable contrast (the +N more node, the cost columns too).
          expect(await audit(page), `${kind} on a ${viewport.name}`).toEqual([]);
          await w.screenshot(`hub-fit-${viewport.name}-${kind}`);
        }
        expect(w.errors).toEqual([]);
        expect(w.outside).toEqual([]);
      } finally {
        await w.context.close();
      }
    }
  });

  it('sums the project up on the home page: counts by type and folder, the last run and its failure, failing and warning tests, quarantined rows, stale sources', async () => {
    const w = await watchedPage(browser, (u) => u.startsWith('file://'));
    const { page } = w;
    try {
      await open(page, '#/', 'hub');
      const stat = async (label: string) => page.locator('.stats li', { hasText: label }).locator('strong').textContent();
      expect([await stat('Models'), await stat('Sources'), await stat('Seeds'), await stat('Loaders')]).toEqual([String(FAN + 4), '1', '1', '1']);
      const folders = await page.locator('table.folders tbody tr').evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent?.trim() ?? '')));
      // Columns: folder, then the types the project has (models, sources, seeds, loaders).
      expect(await page.locator('table.folders thead th').allTextContents()).toEqual(['Folder', 'Models', 'Sources', 'Seeds', 'Loaders']);
      expect(folders).toEqual([['models', '4', '', '', ''], ['models/fan', String(FAN), '', '', ''], ['seeds', '', '', '1', ''], ['sources/landing', '', '1', '', '1']]);
      const region = (name: string) => page.getByRole('region', { name, exact: true });
      const lastRun = region('Last run');
      expect(await lastRun.locator('.badge').first().textContent()).toBe('error');
      expect(await lastRun.locator('ul li').allTextContents()).toEqual(['fail unique_dupes_id on dupes1 failing row']);
      expect(await region('Failing tests').locator('li').allTextContents()).toEqual(['unique_dupes_id on dupes (id) 1 failing row']);
      expect(await region('Warnings').locator('li').allTextContents()).toEqual([expect.stringMatching(/^accepted_values_visits_by_page_page__\S* on visits_by_page \(page\) 1 failing row$/)]);
      expect(await region('Quarantined rows').locator('li').allTextContents()).toEqual(['scored 1 row']);
      expect(await region('Stale sources').locator('li').allTextContents()).toEqual([expect.stringMatching(/^error landing\.visits · \d+(\.\d)? days ago$/)]);
      // Search finds the source and its loader by name (a letter missing), and a column; the arrows pick the source.
      await page.keyboard.press('/');
      await page.keyboard.type('landing.vists');
      const options = page.locator('#search-results [role=option]');
      await options.first().waitFor();
      const found = await options.evaluateAll((os) => os.map((o) => `${o.querySelector('.kind')?.textContent} ${o.querySelector('.label')?.textContent}`));
      expect(found.slice(0, 2).sort()).toEqual(['loader landing.visits', 'source landing.visits']);
      await page.locator('#search').fill('loaded_at');
      await options.filter({ hasText: 'landing.visits.loaded_at' }).first().waitFor();
      await page.locator('#search').fill('');
      await region('Stale sources').getByRole('link', { name: 'landing.visits' }).click();
      await page.locator('main h1', { hasText: 'landing.visits' }).waitFor();
      expect(await page.locator('#sec-freshness').textContent()).toMatch(/error loaded \d+(\.\d)? days ago \(2020-01-02/);
      await w.screenshot('hub-source-stale');
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
    } finally {
      await w.context.close();
    }
  });

  it('says a column whose lineage cannot be resolved is unresolved, and why, rather than guess', async () => {
    const w = await watchedPage(browser, (u) => u.startsWith('file://'));
    const { page } = w;
    try {
      await open(page, '#/n/model.hub.from_file', 'from_file');
      expect(await page.locator('table.columns tr[data-column="page"] td.lin').textContent()).toBe('unresolved');
      await page.getByRole('link', { name: 'Column lineage of page' }).click();
      await page.locator('main h1', { hasText: 'from_file.page' }).waitFor();
      expect(await page.locator('main').textContent()).toMatch(/Could not be resolved: [^.]*table function read_csv/);
      expect(await page.getByRole('region', { name: 'Upstream columns' }).textContent()).toContain('Unresolved.');
      expect(await page.locator('pre.expression').count()).toBe(0);
      await w.screenshot('hub-column-unresolved');
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
    } finally {
      await w.context.close();
    }
  });
});
