// Chromium for the docs site's tests: Debian's /usr/bin/chromium driven by
// playwright-core, launched so that nothing leaves the machine (see
// DEVELOPERS.md), with every request and console message of a page recorded
// so a test can fail on any request to another host or any console error.

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from './helpers.js';

export const CHROMIUM = process.env.ETL_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'];
export const SCREENSHOTS = path.join(REPO_ROOT, 'target', 'screenshots');

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does), or set ETL_CHROMIUM`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Requests to anything but `allowed` (aborted). */
  outside: string[];
  /** Console errors and uncaught exceptions. */
  errors: string[];
  /** Every URL requested. */
  requests: string[];
  screenshot(name: string): Promise<string>;
}

/** A page whose requests are checked against `allowed` (a URL prefix): anything else is recorded and aborted. */
export async function watchedPage(browser: Browser, allowed: (url: string) => boolean, viewport = { width: 1280, height: 900 }): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport });
  const w: WatchedPage = {
    context,
    page: undefined as unknown as Page,
    outside: [],
    errors: [],
    requests: [],
    screenshot: async (name) => {
      mkdirSync(SCREENSHOTS, { recursive: true });
      const file = path.join(SCREENSHOTS, `${name}.png`);
      await w.page.screenshot({ path: file, fullPage: true });
      return file;
    },
  };
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    w.requests.push(url);
    if (allowed(url)) await route.continue();
    else {
      w.outside.push(url);
      await route.abort();
    }
  });
  w.page = await context.newPage();
  w.page.on('console', (m) => {
    if (m.type() === 'error') w.errors.push(m.text());
  });
  w.page.on('pageerror', (e) => w.errors.push(`uncaught: ${e.message}`));
  return w;
}

/**
 * What does not fit the screen on the page as drawn: the page itself wider
 * than the viewport, or a box whose content is wider than the box (a table
 * scrolling sideways in its wrapper). SQL (pre) and graphs pan by design and
 * are left out. Each entry names the element.
 */
export async function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const root = document.documentElement;
    if (root.scrollWidth > root.clientWidth) out.push(`page ${root.scrollWidth}px wide in ${root.clientWidth}px`);
    for (const el of document.querySelectorAll('main *')) {
      if (el.closest('pre, svg, .graph-wrap, .sr-only')) continue;
      const s = getComputedStyle(el);
      if (!['auto', 'scroll', 'hidden'].includes(s.overflowX) || el.scrollWidth <= el.clientWidth + 1) continue;
      // Text cut with an ellipsis on purpose is not an overflow.
      if (s.textOverflow === 'ellipsis') continue;
      out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} ${el.scrollWidth}px wide in ${el.clientWidth}px: "${(el.textContent ?? '').trim().slice(0, 40)}"`);
    }
    return out;
  });
}
