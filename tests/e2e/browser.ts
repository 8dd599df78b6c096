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

/**
 * Checks of the kind axe-core makes, on the page as drawn: every control and
 * link has an accessible name, every form field a label, every graph node a
 * label; ids are unique; one h1 and a main landmark, headings not skipping a
 * level; no positive tabindex; the language set; and text contrast at least
 * WCAG AA (4.5:1, 3:1 for large text) against the colour behind it.
 * Returns the problems found, each naming the element.
 */
export async function audit(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    const describe = (el: Element) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.getAttribute('class') ? `.${String(el.getAttribute('class')).trim().split(/\s+/).join('.')}` : ''} "${(el.textContent ?? '').trim().slice(0, 40)}"`;
    const visible = (el: Element) => {
      const r = el.getBoundingClientRect();
      const s = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
    };
    const name = (el: Element): string => {
      const labelledby = el.getAttribute('aria-labelledby');
      if (labelledby) return labelledby.split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '').join(' ').trim();
      const aria = el.getAttribute('aria-label');
      if (aria?.trim()) return aria.trim();
      if (el.id) {
        const label = document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
        if (label?.textContent?.trim()) return label.textContent.trim();
      }
      const wrapping = el.closest('label');
      if (wrapping?.textContent?.trim()) return wrapping.textContent.trim();
      const text = el instanceof HTMLElement ? el.innerText : el.textContent;
      if (text?.trim()) return text.trim();
      const title = el.querySelector(':scope > title')?.textContent ?? el.getAttribute('title');
      return title?.trim() ?? '';
    };
    if (!document.documentElement.lang) problems.push('html has no lang');
    for (const el of document.querySelectorAll('a[href], button, input, select, textarea, [role=button], [role=link], [role=combobox], [role=option], [role=group], [role=listbox], [role=region], svg a')) {
      if (el.closest('[hidden]') || (el instanceof HTMLInputElement && el.type === 'hidden')) continue;
      if (!name(el)) problems.push(`no accessible name: ${describe(el)}`);
    }
    for (const el of document.querySelectorAll('[tabindex]')) if (Number(el.getAttribute('tabindex')) > 0) problems.push(`positive tabindex: ${describe(el)}`);
    const ids = new Map<string, number>();
    for (const el of document.querySelectorAll('[id]')) ids.set(el.id, (ids.get(el.id) ?? 0) + 1);
    for (const [id, n] of ids) if (n > 1) problems.push(`id ${id} used ${n} times`);
    for (const ref of document.querySelectorAll('[aria-controls], [aria-activedescendant], [aria-labelledby]')) {
      for (const attr of ['aria-controls', 'aria-activedescendant', 'aria-labelledby']) {
        for (const id of (ref.getAttribute(attr) ?? '').split(/\s+/).filter(Boolean)) if (!document.getElementById(id)) problems.push(`${attr} names a missing id ${id}: ${describe(ref)}`);
      }
    }
    if (document.querySelectorAll('main').length !== 1) problems.push(`${document.querySelectorAll('main').length} main landmarks`);
    const h1s = [...document.querySelectorAll('main h1')];
    if (h1s.length !== 1) problems.push(`${h1s.length} h1 in main`);
    let last = 0;
    for (const hd of document.querySelectorAll('main h1, main h2, main h3, main h4, main h5, main h6')) {
      const level = Number(hd.tagName[1]);
      if (last && level > last + 1) problems.push(`heading skips from h${last} to h${level}: ${describe(hd)}`);
      last = level;
    }
    for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push(`img without alt: ${describe(img)}`);
    // Contrast of text against the first opaque background behind it.
    const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
    const lum = ([r, g, b]: number[]) => {
      const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
    };
    const background = (el: Element | null): number[] => {
      for (; el; el = el.parentElement) {
        const c = rgb(getComputedStyle(el).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3]! >= 0.95)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const seen = new Set<Element>();
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const el = t.parentElement;
      if (!el || seen.has(el) || !t.textContent?.trim() || el.closest('svg, [hidden], .sr-only, .skip, pre code') || !visible(el)) continue;
      seen.add(el);
      const s = getComputedStyle(el);
      const fg = rgb(s.color);
      if (fg.length === 4 && fg[3]! < 1) continue;
      const [a, b] = [lum(fg), lum(background(el))].sort((x, y) => y - x);
      const ratio = (a! + 0.05) / (b! + 0.05);
      const size = parseFloat(s.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}: ${describe(el)}`);
    }
    return problems;
  });
}
