// The docs site of project-template in a real Chromium, opened from file://
// and from `etl docs serve`: search a model, open it, read its columns, types
// and tests, its lineage graph, click an upstream node, open a column's
// lineage; no console error and no request to another host, ever. Engine
// types come from the catalog.json that etl docs generate writes.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyTemplate, killAll, removeTempDirs, runCli, startCli } from './helpers.js';
import { formatDialect, duckdb } from 'sql-formatter';
import { SCREENSHOTS, audit, launchChromium, overflowing, watchedPage, type WatchedPage } from './browser.js';

let browser: Browser;
let project: string;
/** Engine types of the built project, by "table.column". */
const engineTypes = new Map<string, string>();
/** The SQL of orders as target/manifest.json has it. */
let ordersSql: { raw: string; compiled: string };

beforeAll(async () => {
  project = copyTemplate();
  // customers.first_name loses its description (the lineage says where to inherit it from),
  // and orders' description tries to run script: neither may work.
  const marts = path.join(project, 'models/marts/schema.yml');
  let yml = readFileSync(marts, 'utf8');
  yml = yml.replace("      - name: first_name\n        description: Customer's first name.\n", '      - name: first_name\n');
  yml = yml.replace(
    'description: One row per order, with the amount paid by each payment method.',
    'description: "One row per order, with the **amount** paid by each payment method. <script>window.__pwned = 1</script><img src=\\"https://tracker.example/pixel.png\\" alt=\\"pixel\\" onerror=\\"window.__pwned = 2\\"><a href=\\"javascript:window.__pwned=3\\">link</a><details open ontoggle=\\"window.__pwned=4\\"><summary>more</summary>hidden</details>"',
  );
  writeFileSync(marts, yml);
  const build = await runCli(['build'], { cwd: project });
  expect(build.code, build.output).toBe(0);
  // docs generate computes the column lineage (core/analysis) and writes target/lineage.json itself.
  const gen = await runCli(['docs', 'generate'], { cwd: project });
  expect(gen.code, gen.output).toBe(0);
  expect(gen.stdout).toMatch(/Wrote the docs of 8 nodes/);
  // The engine's types, as etl docs generate read them into catalog.json.
  const catalog = JSON.parse(readFileSync(path.join(project, 'target/catalog.json'), 'utf8')) as { nodes: Record<string, { columns: Record<string, { type: string }> }> };
  for (const [id, n] of Object.entries(catalog.nodes)) for (const [c, col] of Object.entries(n.columns)) engineTypes.set(`${id.split('.').at(-1)}.${c}`, col.type);
  expect(engineTypes.get('orders.order_id')).toMatch(/INT/);
  const orders = JSON.parse(readFileSync(path.join(project, 'target/manifest.json'), 'utf8')).nodes['model.shop.orders'];
  ordersSql = { raw: orders.raw_code, compiled: orders.compiled_code };
  expect(ordersSql.compiled).not.toContain('{{');
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await killAll();
  removeTempDirs();
});

async function heading(page: Page): Promise<string> {
  return (await page.locator('main h1').first().textContent())?.trim() ?? '';
}

/** Waits until the page's h1 reads `text`. */
async function waitForHeading(page: Page, text: string): Promise<void> {
  // hasText with a string matches a substring ('orders' in 'stg_orders'): wait for the exact heading.
  const exact = new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  await page.locator('main h1', { hasText: exact }).first().waitFor();
  expect(await heading(page)).toBe(text);
}

/** The element that has the keyboard focus, described by its accessible name. */
async function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return '(body)';
    // What a screen reader says: the label, or the text without what is hidden from it.
    const copy = el.cloneNode(true) as Element;
    for (const hidden of copy.querySelectorAll('[aria-hidden=true]')) hidden.remove();
    return `${el.tagName.toLowerCase()}: ${(el.getAttribute('aria-label') ?? copy.textContent ?? '').trim().replace(/\s+/g, ' ').slice(0, 60)}`;
  });
}

/** Presses Tab until the focused element's description matches, at most `max` times; returns the stops. */
async function tabTo(page: Page, match: RegExp, max = 80): Promise<string[]> {
  const stops: string[] = [];
  for (let k = 0; k < max; k++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    stops.push(f);
    if (match.test(f)) return stops;
  }
  throw new Error(`Tab never reached ${match}: ${stops.join(' | ')}`);
}

/** The walk every mode of the site must pass; `name` prefixes the screenshots. */
async function walkSite(w: WatchedPage, url: string, name: string): Promise<void> {
  const { page } = w;
  await page.goto(url);
  await waitForHeading(page, 'shop');
  expect(await page.locator('.stats li', { hasText: 'Models' }).locator('strong').textContent()).toBe('5');
  expect(await page.getByRole('region', { name: 'Last run', exact: true }).textContent()).toMatch(/No failures/);
  // The run history the target keeps: the build of beforeAll.
  expect(await page.getByRole('region', { name: 'Run history' }).locator('tbody tr').first().textContent()).toMatch(/build\s*success/);
  await w.screenshot(`${name}-home`);

  // Search, fuzzy (a letter missing), by keyboard.
  await page.keyboard.press('/');
  await page.keyboard.type('ordrs');
  const options = page.locator('#search-results [role=option]');
  await options.first().waitFor();
  const labels = await options.locator('.label').allTextContents();
  expect(labels).toContain('orders');
  await w.screenshot(`${name}-search`);
  const target = labels.indexOf('orders');
  for (let k = 0; k < target; k++) await page.keyboard.press('ArrowDown');
  expect(await page.locator('#search').getAttribute('aria-activedescendant')).toBe(await options.nth(target).getAttribute('id'));
  await page.keyboard.press('Enter');
  await waitForHeading(page, 'orders');

  // Markdown rendered, script not run.
  const description = page.locator('main .markdown').first();
  expect(await description.locator('strong').textContent()).toBe('amount');
  expect(await description.locator('script, img, a[href^="javascript"]').count()).toBe(0);
  expect(await description.textContent()).toContain('pixel');
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();

  // Columns with engine types and tests.
  const row = (column: string) => page.locator(`table.columns tr[data-column="${column}"]`);
  expect(await page.locator('table.columns tbody tr').count()).toBe(9);
  expect(await row('order_id').locator('td.type').textContent()).toBe(engineTypes.get('orders.order_id'));
  expect(await row('amount').locator('td.type').textContent()).toBe(engineTypes.get('orders.amount'));
  expect(await row('order_id').locator('.badge.test').allTextContents()).toEqual(['unique', 'not_null']);
  expect(await row('customer_id').locator('.badge.test').allTextContents()).toEqual(['not_null', 'relationships']);
  expect((await row('amount').locator('td.desc').textContent())?.trim()).toBe('Total amount paid for the order, all methods together.');
  expect(await page.locator('#sec-tests tbody tr').count()).toBe(11);

  // SQL: the compiled query formatted by sql-formatter (in the target's dialect) and highlighted;
  // the source template as written, highlighted; unformatted, the compiled query as compiled.
  const sql = page.locator('#sec-code pre.sql code');
  await sql.locator('.hljs-keyword').first().waitFor();
  const formatted = formatDialect(ordersSql.compiled, { dialect: duckdb, keywordCase: 'lower' });
  expect(formatted).not.toBe(ordersSql.compiled);
  expect(await sql.textContent()).toBe(formatted);
  expect(await sql.locator('.hljs-keyword', { hasText: /^select$/ }).count()).toBeGreaterThan(1);
  expect(await sql.locator('.hljs-string', { hasText: "'credit_card'" }).count()).toBe(1);
  await page.getByRole('toolbar', { name: 'SQL view' }).getByRole('button', { name: 'Formatted' }).click();
  await expect.poll(() => sql.textContent()).toBe(ordersSql.compiled);
  expect(await sql.locator('.hljs-keyword').count()).toBeGreaterThan(0);
  await page.getByRole('toolbar', { name: 'SQL view' }).getByRole('button', { name: 'Source' }).click();
  await expect.poll(() => sql.textContent()).toBe(ordersSql.raw);
  expect(ordersSql.raw).toContain('{{');
  expect(await sql.locator('.hljs-keyword').count()).toBeGreaterThan(0);
  await page.getByRole('toolbar', { name: 'SQL view' }).getByRole('button', { name: 'Compiled' }).click();
  await page.getByRole('toolbar', { name: 'SQL view' }).getByRole('button', { name: 'Formatted' }).click();
  await expect.poll(() => sql.textContent()).toBe(formatted);
  await page.locator('#sec-code').screenshot({ path: path.join(SCREENSHOTS, `${name}-orders-sql.png`) });

  // Its lineage graph: two levels up, nothing downstream.
  const graphNodes = page.locator('#sec-lineage svg.graph a.gnode');
  await graphNodes.first().waitFor();
  expect((await graphNodes.locator('text').allTextContents()).sort()).toEqual(['orders', 'raw_orders', 'raw_payments', 'stg_orders', 'stg_payments']);
  expect(await page.locator('#sec-lineage svg.graph a.gnode.center text').textContent()).toBe('orders');
  expect(await page.locator('#sec-lineage svg.graph path.edge').count()).toBe(4);
  // One level up leaves out the seeds.
  await page.selectOption('#lvl-levels-up', '1');
  await page.locator('#sec-lineage svg.graph a.gnode', { hasText: 'raw_orders' }).waitFor({ state: 'detached' });
  expect((await page.locator('#sec-lineage svg.graph a.gnode text').allTextContents()).sort()).toEqual(['orders', 'stg_orders', 'stg_payments']);
  await w.screenshot(`${name}-orders`);

  // Pan by dragging and by the arrows, zoom by the buttons and the wheel; Fit shows it whole again.
  const viewport = page.locator('#sec-lineage svg.graph g.viewport');
  const view = async () => {
    const m = /translate\(([-\d.]+),([-\d.]+)\) scale\(([-\d.]+)\)/.exec((await viewport.getAttribute('transform')) ?? '')!;
    return { x: Number(m[1]), y: Number(m[2]), k: Number(m[3]) };
  };
  const before = await view();
  await page.locator('#sec-lineage svg.graph').scrollIntoViewIfNeeded();
  const box = (await page.locator('#sec-lineage svg.graph').boundingBox())!;
  await page.mouse.move(box.x + 20, box.y + box.height - 20);
  await page.mouse.down();
  await page.mouse.move(box.x + 80, box.y + box.height - 40, { steps: 5 });
  await page.mouse.up();
  const dragged = await view();
  expect(dragged.x).toBeCloseTo(before.x + 60, 1);
  expect(dragged.y).toBeCloseTo(before.y - 20, 1);
  expect(dragged.k).toBe(before.k);
  await page.getByRole('button', { name: 'Zoom in' }).click();
  expect((await view()).k).toBeCloseTo(before.k * 1.25, 3);
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, 200);
  expect((await view()).k).toBeLessThan(before.k * 1.25);
  await page.locator('#sec-lineage svg.graph').focus();
  const beforeKeys = await view();
  await page.keyboard.press('ArrowRight');
  expect((await view()).x).toBeCloseTo(beforeKeys.x - 60, 3);
  await page.getByRole('button', { name: 'Fit the whole graph in the view' }).click();
  expect(await view()).toEqual(before);

  // The paths to another node, picked in "Paths to…".
  await page.getByRole('combobox', { name: 'Highlight the paths from this node to another node' }).fill('raw_payments');
  await page.locator('#path-to-results [role=option]').first().waitFor();
  await page.keyboard.press('Enter');
  await waitForHeading(page, 'Paths between orders and raw_payments');
  expect((await page.locator('svg.graph a.gnode.on-path text').allTextContents()).sort()).toEqual(['orders', 'raw_payments', 'stg_payments']);
  await page.goBack();
  await waitForHeading(page, 'orders');
  await page.locator('#sec-lineage svg.graph a.gnode', { hasText: 'stg_orders' }).waitFor();

  // Click an upstream node in the graph.
  await page.locator('#sec-lineage svg.graph a.gnode', { hasText: 'stg_orders' }).click();
  await waitForHeading(page, 'stg_orders');
  expect((await page.locator('#sec-lineage svg.graph a.gnode text').allTextContents()).sort()).toEqual(['customers', 'orders', 'raw_orders', 'stg_orders']);

  // A column's lineage: its upstream and downstream columns, the transformation shown.
  await page.getByRole('link', { name: 'Column lineage of order_date' }).click();
  await waitForHeading(page, 'stg_orders.order_date');
  expect(await page.locator('main').textContent()).toContain('Computed from its upstream columns');
  expect(await page.locator('pre.expression').textContent()).toBe('cast(order_date as date)');
  const colNodes = (await page.locator('svg.graph a.gnode text').allTextContents()).sort();
  expect(colNodes).toEqual(['customers.first_order', 'customers.most_recent_order', 'orders.order_date', 'raw_orders.order_date', 'stg_orders.order_date']);
  await w.screenshot(`${name}-column`);

  // A pass-through says so, without an expression; its edge is drawn solid, a transformation's dashed.
  await page.goto(`${url}#/c/model.shop.orders/order_id`);
  await waitForHeading(page, 'orders.order_id');
  expect(await page.locator('main').textContent()).toContain('Passed through unchanged from its upstream column.');
  expect(await page.locator('pre.expression').count()).toBe(0);
  await page.locator('svg.graph path.edge').first().waitFor({ state: 'attached' });
  const into = await page.locator('svg.graph path.edge').evaluateAll((es) => es.filter((e) => e.getAttribute('data-to') === 'model.shop.orders\u0000order_id').map((e) => e.getAttribute('class')));
  expect(into).toEqual([expect.stringContaining('lineage-passthrough')]);
  await page.goto(`${url}#/c/model.shop.orders/amount`);
  await waitForHeading(page, 'orders.amount');
  await page.locator('svg.graph path.edge').first().waitFor({ state: 'attached' });
  expect(await page.locator('svg.graph path.edge.lineage-transform').count()).toBeGreaterThan(0);

  // Inherited description, and where it came from.
  await page.goto(`${url}#/n/model.shop.customers`);
  await waitForHeading(page, 'customers');
  const firstName = page.locator('table.columns tr[data-column="first_name"] td.desc');
  expect((await firstName.innerText()).replace(/\s+/g, ' ').trim()).toBe("Customer's first name. Inherited from stg_customers.first_name");
  await page.goto(`${url}#/c/model.shop.customers/number_of_orders`);
  await waitForHeading(page, 'customers.number_of_orders');
  // count(*) reads no column: a transformation without upstream columns (unresolved columns are tested with a fixture in docs.test.ts).
  expect(await page.locator('pre.expression').textContent()).toBe('coalesce(co.number_of_orders, 0)');

  // Paths between two nodes, and the whole project by folder.
  await page.goto(`${url}#/paths?from=seed.shop.raw_payments&to=model.shop.customers`);
  await waitForHeading(page, 'Paths between raw_payments and customers');
  expect((await page.locator('svg.graph a.gnode.on-path text').allTextContents()).sort()).toEqual(['customers', 'raw_payments', 'stg_payments']);
  await page.goto(`${url}#/graph`);
  await waitForHeading(page, 'Project graph by folder');
  expect((await page.locator('svg.graph a.gnode text').allTextContents()).sort()).toEqual(['models/marts (2)', 'models/staging (3)', 'seeds (3)']);
  // A box opens in place: its nodes drawn, linked to the other boxes; a node opens its page.
  await page.locator('svg.graph a.gnode', { hasText: 'models/staging (3)' }).click();
  await page.locator('svg.graph a.gnode.member').first().waitFor();
  expect((await page.locator('svg.graph a.gnode text').allTextContents()).sort()).toEqual(['models/marts (2)', 'seeds (3)', 'stg_customers', 'stg_orders', 'stg_payments']);
  // seeds -> each staging model, and each staging model -> marts.
  expect(await page.locator('svg.graph path.edge').count()).toBe(6);
  await w.screenshot(`${name}-project-graph`);
  // By tag: seeds have none; staging and marts are the folders' tags.
  await page.getByRole('link', { name: 'tag', exact: true }).click();
  await waitForHeading(page, 'Project graph by tag');
  expect((await page.locator('svg.graph a.gnode text').allTextContents()).sort()).toEqual(['(no tag) (3)', 'marts (2)', 'staging (3)']);
  expect(await page.locator('svg.graph path.edge').count()).toBe(2);
  await page.locator('svg.graph a.gnode', { hasText: 'marts (2)' }).click();
  await page.locator('svg.graph a.gnode.member').first().waitFor();
  expect((await page.locator('svg.graph a.gnode.member text').allTextContents()).sort()).toEqual(['customers', 'orders']);
  // staging -> customers and -> orders; seeds -> staging.
  expect(await page.locator('svg.graph path.edge').count()).toBe(3);
  await w.screenshot(`${name}-project-graph-by-tag`);
  await page.goBack();
  await page.goBack();
  await waitForHeading(page, 'Project graph by folder');
  await page.locator('svg.graph a.gnode.member').first().waitFor();
  await page.getByRole('link', { name: 'Close models/staging (3)' }).click();
  await page.locator('svg.graph a.gnode', { hasText: 'models/staging (3)' }).waitFor();
  await page.locator('svg.graph a.gnode', { hasText: 'models/marts (2)' }).click();
  await page.locator('svg.graph a.gnode.member', { hasText: 'orders' }).click();
  await waitForHeading(page, 'orders');

  expect(w.errors).toEqual([]);
  expect(w.outside).toEqual([]);
}

describe('docs site of project-template', () => {
  it('works from file://', async () => {
    const index = path.join(project, 'target/docs/index.html');
    const w = await watchedPage(browser, (u) => u.startsWith('file://'));
    try {
      await walkSite(w, pathToFileURL(index).href, 'file');
      // Only the site's own files were read, each node's data file on its own.
      expect(w.requests.every((u) => u.startsWith(pathToFileURL(path.join(project, 'target/docs')).href))).toBe(true);
      expect(w.requests.some((u) => /data\/nodes\/\d+\.js/.test(u))).toBe(true);
    } finally {
      await w.context.close();
    }
  });

  it('works from etl docs serve, which regenerates when a project file changes', async () => {
    const server = startCli(['docs', 'serve', '--port', '0'], { cwd: project });
    await server.waitForOutput(/Serving the docs at (http:\/\/127\.0\.0\.1:\d+\/)/);
    const url = /Serving the docs at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(server.stdout)![1]!;
    const w = await watchedPage(browser, (u) => u.startsWith(url));
    try {
      await walkSite(w, url, 'serve');
      // A description changes: the open page reloads itself with the new text.
      await w.page.goto(`${url}#/n/model.shop.stg_orders`);
      await waitForHeading(w.page, 'stg_orders');
      const staging = path.join(project, 'models/staging/schema.yml');
      writeFileSync(staging, readFileSync(staging, 'utf8').replace('One row per order placed on or after the start_date var.', 'Orders since start_date, regenerated.'));
      await w.page.locator('main .markdown', { hasText: 'Orders since start_date, regenerated.' }).waitFor({ timeout: 30_000 });
      expect(await heading(w.page)).toBe('stg_orders');
      // Phone width: readable, nothing wider than the screen but scrollable tables and the graph.
      await w.page.setViewportSize({ width: 390, height: 844 });
      await w.page.goto(`${url}#/n/model.shop.customers`);
      await waitForHeading(w.page, 'customers');
      expect(await w.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await w.screenshot('serve-phone-customers');
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
    } finally {
      await w.context.close();
      if (process.env.DEBUG_DOCS) console.log(server.stdout, server.stderr);
      server.kill();
    }
  });

  it('is usable by keyboard alone and labelled for a screen reader, on a laptop and a phone', async () => {
    const index = pathToFileURL(path.join(project, 'target/docs/index.html')).href;
    for (const viewport of [{ width: 1280, height: 900, name: 'laptop' }, { width: 390, height: 844, name: 'phone' }]) {
      const w = await watchedPage(browser, (u) => u.startsWith('file://'), viewport);
      const { page } = w;
      try {
        await page.goto(index);
        await waitForHeading(page, 'shop');
        expect(await audit(page)).toEqual([]);
        // The first stops: skip link, brand, site navigation, search.
        const first = await tabTo(page, /^input: Search models/);
        expect(first).toEqual(['a: Skip to content', 'a: shop', 'a: Home', 'a: Graph', 'input: Search models, sources, columns, tags and descriptions']);
        // Search, pick with the arrows, open with Enter: the page's heading takes the focus.
        await page.keyboard.type('stg_orders');
        await page.locator('#search-results [role=option]').first().waitFor();
        expect(await audit(page)).toEqual([]);
        await page.keyboard.press('Enter');
        await waitForHeading(page, 'stg_orders');
        expect(await focused(page)).toBe('h1: stg_orders');
        await page.locator('#sec-lineage svg.graph a.gnode').first().waitFor();
        expect(await audit(page)).toEqual([]);
        await w.screenshot(`a11y-${viewport.name}-stg_orders`);
        // Tab to the lineage graph (a labelled group that pans by arrows), then to a node in it, and open it.
        await tabTo(page, /^svg: Lineage of stg_orders/);
        await page.keyboard.press('ArrowLeft');
        await tabTo(page, /^a: model orders/);
        await page.keyboard.press('Enter');
        await waitForHeading(page, 'orders');
        // A column's lineage, by keyboard.
        await tabTo(page, /^a: Column lineage of amount/, 200);
        await page.keyboard.press('Enter');
        await waitForHeading(page, 'orders.amount');
        expect(await audit(page)).toEqual([]);
        await w.screenshot(`a11y-${viewport.name}-column`);
        // The project graph: a box opens by keyboard, and its nodes are links.
        await page.goto(`${index}#/graph`);
        await waitForHeading(page, 'Project graph by folder');
        await tabTo(page, /^a: folder models\/staging \(3\): open it/);
        await page.keyboard.press('Enter');
        await page.locator('svg.graph a.gnode.member').first().waitFor();
        expect(await audit(page)).toEqual([]);
        await w.screenshot(`a11y-${viewport.name}-project-graph`);
        // Every kind of page fits the screen: nothing wider than it, no table scrolling sideways
        // (SQL and graphs pan by design).
        const pages: Array<[string, string]> = [
          ['home', '#/'],
          ['model', '#/n/model.shop.orders'],
          ['seed', '#/n/seed.shop.raw_orders'],
          ['column', '#/c/model.shop.orders/amount'],
          ['graph', '#/graph?by=folder&open=models%2Fstaging'],
          ['graph-by-tag', '#/graph?by=tag&open=marts'],
          ['paths', '#/paths?from=seed.shop.raw_payments&to=model.shop.customers'],
          ['list', '#/list?folder=models%2Fstaging'],
        ];
        for (const [kind, hash] of pages) {
          await page.goto(`${index}${hash}`);
          await page.locator('main h1').first().waitFor();
          if (hash.startsWith('#/graph') || hash.startsWith('#/paths') || hash.startsWith('#/c/')) await page.locator('svg.graph a.gnode').first().waitFor();
          if (kind === 'model') await page.locator('#sec-code .hljs-keyword').first().waitFor();
          expect(await overflowing(page), `${kind} on a ${viewport.name}`).toEqual([]);
          await w.screenshot(`fit-${viewport.name}-${kind}`);
        }
        // Search results open over the page.
        await page.locator('#search').fill('order');
        await page.locator('#search-results [role=option]').first().waitFor();
        expect(await overflowing(page), `search on a ${viewport.name}`).toEqual([]);
        const results = await page.locator('#search-results').boundingBox();
        expect(results!.x).toBeGreaterThanOrEqual(0);
        expect(results!.x + results!.width).toBeLessThanOrEqual(viewport.width);
        await w.screenshot(`fit-${viewport.name}-search`);
        // The audit finds what it looks for: a link without a name and pale text.
        await page.evaluate(() => document.querySelector('main')!.insertAdjacentHTML('beforeend', '<a href="#/"></a><p style="color:#ccc">pale</p>'));
        expect(await audit(page)).toEqual(['no accessible name: a ""', expect.stringMatching(/^contrast 1\.\d+: p "pale"$/)]);
        expect(w.errors).toEqual([]);
        expect(w.outside).toEqual([]);
      } finally {
        await w.context.close();
      }
    }
  });
});
