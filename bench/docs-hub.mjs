// The docs site on a hub (issue 13): a seed read by --children models. Its
// node page draws FANOUT children and a "+N more" node (the default since
// session 5); expanded (?expand=), it draws the 100 nearest nodes, what the
// page drew by default before. In Debian's Chromium from file:// (launched as
// the browser tests are), the time from the hash change to the page drawn
// (etl:rendered: node file read, graph laid out and drawn), capped and
// expanded interleaved round by round, medians and their ratio. Needs dist/
// (npm run build).
//
//   node bench/docs-hub.mjs [--children 400] [--rounds 10]

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const k = process.argv.indexOf(`--${name}`);
  return k > 0 ? Number(process.argv[k + 1]) : fallback;
};
const CHILDREN = arg('children', 400);
const ROUNDS = arg('rounds', 10);
const CHROMIUM = process.env.ETL_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'];

const dir = mkdtempSync(path.join(os.tmpdir(), 'etl-bench-hub-'));
try {
  mkdirSync(path.join(dir, 'seeds'));
  mkdirSync(path.join(dir, 'models', 'fan'), { recursive: true });
  writeFileSync(path.join(dir, 'etl.yml'), 'name: hub\nversion: 1\ntarget: dev\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb, schema: main, threads: 4 }\n');
  writeFileSync(path.join(dir, 'seeds', 'raw_events.csv'), 'id,kind\n1,a\n2,b\n');
  for (let k = 0; k < CHILDREN; k++) writeFileSync(path.join(dir, 'models', 'fan', `fan_${String(k).padStart(4, '0')}.sql`), `select id, kind, ${k} as k from {{ref "raw_events"}}\n`);
  const etl = (...args) => execFileSync(process.execPath, [path.join(ROOT, 'dist', 'bin', 'etl.js'), ...args], { cwd: dir, stdio: 'pipe' });
  etl('build');
  etl('docs', 'generate');

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(pathToFileURL(path.join(dir, 'target', 'docs', 'index.html')).href);
  await page.locator('main h1').first().waitFor();
  const time = (hash) =>
    page.evaluate(
      (h) =>
        new Promise((resolve) => {
          const t0 = performance.now();
          document.addEventListener('etl:rendered', () => resolve(performance.now() - t0), { once: true });
          location.hash = h;
        }),
      hash,
    );
  const CAPPED = '#/n/seed.hub.raw_events';
  const EXPANDED = '#/n/seed.hub.raw_events?expand=seed.hub.raw_events';
  const drawn = async (hash) => (await time(hash), page.locator('#sec-lineage svg.graph a.gnode').count());
  // Warm: the graph library and the node's data file loaded once.
  const nodes = { capped: await drawn(CAPPED), expanded: await drawn(EXPANDED) };
  await time('#/');
  const capped = [];
  const expanded = [];
  for (let r = 0; r < ROUNDS; r++) {
    capped.push(await time(CAPPED));
    await time('#/');
    expanded.push(await time(EXPANDED));
    await time('#/');
  }
  await browser.close();
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(
    JSON.stringify(
      { children: CHILDREN, rounds: ROUNDS, nodes_drawn: nodes, capped_ms: +median(capped).toFixed(1), expanded_ms: +median(expanded).toFixed(1), expanded_over_capped: +(median(expanded) / median(capped)).toFixed(2), load: os.loadavg().map((l) => +l.toFixed(2)) },
      null,
      2,
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
