// Benchmark of the docs site (issue 13) on a generated project of 10,000
// models with column descriptions (bench/gen.mjs, 'compile' shape: 3 columns
// and 3 tests per model), plus a synthetic catalog.json (so node pages show
// engine types, as a built project's would: the project is not built, so
// docs generate keeps the catalog.json it finds). Column lineage is traced by
// docs generate itself. Run through `npm run bench`, which builds dist/ first.
//
//   node bench/docs.mjs [--models 10000] [--reps 3]
//
// 1. `etl docs generate`, cold (no compile cache, no target/docs) and warm
//    (compile cache hit): wall time of the whole process and its peak RSS.
//    Baseline, interleaved in the same run: `etl compile` cold, which
//    generate does first; the difference is what the docs themselves cost.
// 2. In Debian's Chromium (playwright-core, launched as the browser tests
//    are), opening target/docs/index.html from file://:
//    - first meaningful render: navigation start to the frame after the home
//      page is drawn (median of reps, each in a fresh browser context);
//    - bytes the browser reads for the home page (and gzip-compressed, as a
//      static host serves them), and with the search index that follows;
//    - search: each keystroke of a few queries, from the input event to the
//      results laid out (median and worst);
//    - lineage click: a real mouse click on a node of a lineage graph to the
//      frame after its page (data file loaded, graph laid out) is drawn;
//    - project graph: its first drawing, then a click opening a folder's box
//      (into bands), and a band (into its nodes), to the frame after;
//    - memory: the renderer's resident memory and the JS heap after all that.
//    Baseline in the same browser: a page that loads manifest.json and
//    catalog.json up front, as dbt's docs site does: its load time and heap.
// Results are printed and written to bench/.work/docs-results.json.

import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { generateProject } from './gen.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(BENCH);
const WORK = path.join(BENCH, '.work');
const CLI = path.join(ROOT, 'dist', 'bin', 'etl.js');
const argv = process.argv.slice(2);
const value = (name, d) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : d;
};
const MODELS = Number(value('--models', 10000));
/** Reuse the project and site a previous run generated (measure the browser part only). */
const BROWSER_ONLY = argv.includes('--browser-only');
const REPS = Number(value('--reps', 3));
const CHROMIUM = process.env.ETL_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'];

if (!existsSync(CLI)) {
  console.error('dist/bin/etl.js is missing: run `npm run build` first');
  process.exit(2);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

// ---- the project -----------------------------------------------------------

const dir = path.join(WORK, `docs-${MODELS}`);
let shape;
if (BROWSER_ONLY && existsSync(path.join(dir, 'target', 'docs', 'index.html'))) {
  shape = { models: MODELS, reused: true };
} else {
  console.log(`Generating a project of ${MODELS} models in ${path.relative(ROOT, dir)}`);
  shape = generateProject(dir, { models: MODELS, kind: 'compile' });
}

function etl(args, env = {}) {
  const rssFile = path.join(WORK, 'docs-rss.txt');
  rmSync(rssFile, { force: true });
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(BENCH, 'maxrss-preload.mjs')).href, CLI, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', BENCH_RSS_FILE: rssFile, ...env },
    maxBuffer: 1 << 26,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`etl ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const [rssKiB] = existsSync(rssFile) ? readFileSync(rssFile, 'utf8').split(' ').map(Number) : [NaN];
  return { seconds, rssMiB: rssKiB / 1024, stdout: r.stdout };
}

if (!shape.reused) etl(['compile']);
const target = path.join(dir, 'target');
const manifest = JSON.parse(readFileSync(path.join(target, 'manifest.json'), 'utf8'));
if (!shape.reused) {
  // Types as the engine would give them (the models' columns: id, category, amount, created_at).
  const catalog = { metadata: {}, nodes: {}, sources: {} };
  for (const n of Object.values(manifest.nodes)) {
    if (n.resource_type === 'test') continue;
    const cols = ['id', 'category', 'amount', 'created_at'];
    catalog.nodes[n.unique_id] = { columns: Object.fromEntries(cols.map((c, i) => [c, { type: ['INTEGER', 'VARCHAR', 'BIGINT', 'DATE'][i], index: i + 1, name: c, comment: null }])) };
  }
  writeFileSync(path.join(target, 'catalog.json'), JSON.stringify(catalog));
}

// ---- etl docs generate -----------------------------------------------------

const cold = [];
const warm = [];
const compileCold = [];
const clean = () => {
  for (const p of ['.etl', 'manifest.json', 'compiled', 'docs', 'lineage.json']) rmSync(path.join(target, p), { recursive: true, force: true });
};
const load0 = os.loadavg()[0];
for (let r = 0; r < (shape.reused ? 0 : REPS); r++) {
  clean();
  compileCold.push(etl(['compile']));
  clean();
  cold.push(etl(['docs', 'generate']));
  warm.push(etl(['docs', 'generate']));
}
const docsDir = path.join(target, 'docs');
const nodeFiles = readdirSync(path.join(docsDir, 'data', 'nodes'));
const nodeBytes = nodeFiles.map((f) => statSync(path.join(docsDir, 'data', 'nodes', f)).size);
const generate = {
  cold_s: round(median(cold.map((x) => x.seconds)), 2),
  cold_runs_s: cold.map((x) => round(x.seconds, 2)),
  cold_rss_mib: round(median(cold.map((x) => x.rssMiB)), 0),
  compile_cold_s: round(median(compileCold.map((x) => x.seconds)), 2),
  compile_cold_runs_s: compileCold.map((x) => round(x.seconds, 2)),
  docs_over_compile_s: round(median(cold.map((x, k) => x.seconds - compileCold[k].seconds)), 2),
  docs_over_compile_ratio: round(median(cold.map((x, k) => x.seconds / compileCold[k].seconds)), 2),
  lineage_columns: Object.values(JSON.parse(readFileSync(path.join(target, 'lineage.json'), 'utf8')).nodes).reduce((n, x) => n + Object.keys(x.columns).length, 0),
  load_average_1m: [round(load0, 1), round(os.loadavg()[0], 1)],
  warm_s: round(median(warm.map((x) => x.seconds)), 2),
  warm_runs_s: warm.map((x) => round(x.seconds, 2)),
  node_files: nodeFiles.length,
  node_file_median_bytes: median(nodeBytes),
  node_file_max_bytes: Math.max(...nodeBytes),
  manifest_mib: round(statSync(path.join(target, 'manifest.json')).size / 2 ** 20, 1),
};
console.log('etl docs generate', generate);

// ---- the browser -----------------------------------------------------------

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
const siteUrl = pathToFileURL(path.join(docsDir, 'index.html')).href;
const INSTRUMENT = () => {
  window.__bench = { rendered: [], clicks: [] };
  document.addEventListener('etl:rendered', (e) => {
    const drawn = performance.now();
    requestAnimationFrame(() => window.__bench.rendered.push({ hash: e.detail.hash, drawn, frame: performance.now() }));
  });
  document.addEventListener('click', (e) => window.__bench.clicks.push(e.timeStamp), true);
};

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const requests = [];
  const outside = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (!url.startsWith('file://')) {
      outside.push(url);
      return route.abort();
    }
    requests.push(url);
    return route.continue();
  });
  await context.addInitScript(INSTRUMENT);
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  return { context, page, requests, outside, errors };
}

function bytesOf(urls) {
  let raw = 0;
  let gz = 0;
  for (const u of new Set(urls.map((x) => x.split('?')[0]))) {
    const buf = readFileSync(fileURLToPath(u));
    raw += buf.length;
    gz += gzipSync(buf).length;
  }
  return { kib: round(raw / 1024, 0), gzip_kib: round(gz / 1024, 0) };
}

const waitRendered = (page, n) => page.waitForFunction((k) => window.__bench.rendered.length >= k, n);

// First meaningful render, cold, REPS times.
const firstRender = [];
let homeBytes;
let withSearchBytes;
for (let r = 0; r < REPS; r++) {
  const p = await newPage();
  await p.page.goto(siteUrl);
  await waitRendered(p.page, 1);
  firstRender.push(await p.page.evaluate(() => window.__bench.rendered[0].frame));
  if (r === 0) {
    // What the home page needs; the search index is fetched once it is drawn (below).
    homeBytes = bytesOf(p.requests.filter((u) => !u.includes('data/search.js')));
    // The search index follows once the page is idle.
    await p.page.waitForFunction(() => performance.getEntriesByType('resource').some((e) => e.name.includes('data/search.js')) || document.querySelector('script[src*="data/search.js"]'));
    await p.page.focus('#search');
    await p.page.keyboard.type('amount');
    await p.page.locator('#search-results .kind-column').first().waitFor();
    withSearchBytes = bytesOf(p.requests);
  }
  await p.context.close();
}

// Search latency and lineage clicks in one page, then its memory.
const p = await newPage();
await p.page.goto(siteUrl);
await waitRendered(p.page, 1);
await p.page.focus('#search');
await p.page.keyboard.type('amount');
await p.page.locator('#search-results .kind-column').first().waitFor();
const queries = ['finance orders 4', 'mrketing custmers', 'amount', 'combines raw', 'growth_plans_09'];
const keystrokes = await p.page.evaluate(async (qs) => {
  const input = document.getElementById('search');
  const list = document.getElementById('search-results');
  const times = [];
  const counts = [];
  for (const q of qs) {
    for (let k = 1; k <= q.length; k++) {
      input.value = q.slice(0, k);
      const t0 = performance.now();
      input.dispatchEvent(new Event('input', { bubbles: true }));
      list.getBoundingClientRect(); // style and layout of the results included
      times.push(performance.now() - t0);
      counts.push(list.children.length);
      await new Promise((r) => requestAnimationFrame(() => r()));
    }
  }
  input.value = '';
  input.dispatchEvent(new Event('input', { bubbles: true }));
  return { times, counts };
}, queries);
// Real keystrokes too (the browser's input pipeline included): key down to the frame after the results.
const realKeys = [];
await p.page.evaluate(() => {
  const list = document.getElementById('search-results');
  window.__bench.keys = [];
  let last = 0;
  document.addEventListener('keydown', (e) => (last = e.timeStamp), true);
  new MutationObserver(() => requestAnimationFrame(() => window.__bench.keys.push(performance.now() - last))).observe(list, { childList: true });
});
await p.page.keyboard.press('Escape');
for (const ch of 'sales leads 7') {
  const before = await p.page.evaluate(() => window.__bench.keys.length);
  await p.page.keyboard.press(ch === ' ' ? 'Space' : ch);
  await p.page.waitForFunction((b) => window.__bench.keys.length > b, before);
  realKeys.push(await p.page.evaluate(() => window.__bench.keys.at(-1)));
}
await p.page.keyboard.press('Escape');

// Lineage clicks: open a well-connected model, then click through graph nodes.
const centre = Object.values(manifest.nodes)
  .filter((n) => n.resource_type === 'model')
  .map((n) => ({ id: n.unique_id, degree: (manifest.child_map[n.unique_id] ?? []).filter((c) => manifest.nodes[c]?.resource_type === 'model').length }))
  .sort((a, b) => b.degree - a.degree)[Math.floor(MODELS / 200)];
let rendered = await p.page.evaluate(() => window.__bench.rendered.length);
const firstOpen0 = await p.page.evaluate(() => performance.now());
await p.page.evaluate((id) => (location.hash = `/n/${encodeURIComponent(id)}`), centre.id);
await waitRendered(p.page, ++rendered);
const firstNodePage = (await p.page.evaluate(() => window.__bench.rendered.at(-1).frame)) - firstOpen0;
const graphSizes = [];
const clicks = [];
const skipped = [];
const centres = Object.values(manifest.nodes).filter((n) => n.resource_type === 'model').slice(100, 120).map((n) => ({ id: n.unique_id }));
const visited = new Set([centre.id]);
for (let k = 0; clicks.length < 12 && k < 40; k++) {
  // Nodes the fitted view shows (a large neighbourhood is drawn small; a click lands on what is on screen).
  const candidates = await p.page.evaluate(() => {
    document.querySelector('#sec-lineage svg.graph').scrollIntoView({ block: 'center' });
    const box = document.querySelector('#sec-lineage svg.graph').getBoundingClientRect();
    return [...document.querySelectorAll('#sec-lineage a.gnode:not(.center)')]
      .filter((a) => {
        const r = a.getBoundingClientRect();
        if (!(r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom && r.width > 8)) return false;
        // Not under the zoom buttons or anything else.
        return a.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2));
      })
      .map((a) => a.getAttribute('href'));
  });
  graphSizes.push(await p.page.evaluate(() => document.querySelectorAll('#sec-lineage a.gnode').length));
  const next = candidates.find((h) => !visited.has(h)) ?? candidates[0];
  if (!next) {
    // A node with hundreds of neighbours shows none of them beside it at a readable scale: go on from another model (not timed).
    skipped.push(await p.page.evaluate(() => location.hash));
    await p.page.evaluate((id) => (location.hash = `/n/${encodeURIComponent(id)}`), centres[k % centres.length].id);
    await waitRendered(p.page, ++rendered);
    continue;
  }
  visited.add(next);
  await p.page.locator(`#sec-lineage a.gnode[href="${next}"]`).click();
  await waitRendered(p.page, ++rendered);
  clicks.push(await p.page.evaluate(() => window.__bench.rendered.at(-1).frame - window.__bench.clicks.at(-1)));
}
// Whole-project view.
const proj0 = await p.page.evaluate(() => performance.now());
await p.page.evaluate(() => (location.hash = '/graph'));
await waitRendered(p.page, ++rendered);
const projectGraph = (await p.page.evaluate(() => window.__bench.rendered.at(-1).frame)) - proj0;
/** A real click on the first box of the project graph on screen (and not under its buttons) whose label matches. */
async function clickBox(selector, pattern) {
  const href = await p.page.evaluate(([selector, source]) => {
    document.querySelector('svg.graph').scrollIntoView({ block: 'center' });
    const re = new RegExp(source);
    const box = document.querySelector('svg.graph').getBoundingClientRect();
    return [...document.querySelectorAll(selector)]
      .filter((a) => {
        const r = a.getBoundingClientRect();
        return r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom && a.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)) && re.test(a.textContent);
      })
      .map((a) => a.getAttribute('href'))[0];
  }, [selector, pattern.source]);
  await p.page.locator(`svg.graph a.gnode[href="${href}"]`).click();
  await waitRendered(p.page, ++rendered);
  return {
    ms: round(await p.page.evaluate(() => window.__bench.rendered.at(-1).frame - window.__bench.clicks.at(-1)), 0),
    drawn: await p.page.locator('svg.graph a.gnode').count(),
  };
}
const openFolder = await clickBox('svg.graph a.gnode.cluster.has-bands', /./);
const openBand = await clickBox('svg.graph a.gnode.cluster', / 1\/\d+ · depth/);

const cdp = await p.context.newCDPSession(p.page);
await cdp.send('HeapProfiler.collectGarbage');
await cdp.send('Performance.enable');
const metrics = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
function descendants(pid) {
  const out = [];
  const all = execFileSync('ps', ['-eo', 'pid=,ppid=,rss=,args='], { encoding: 'utf8' }).trim().split('\n').map((l) => l.trim().split(/\s+/));
  const stack = [String(pid)];
  while (stack.length) {
    const cur = stack.pop();
    for (const [cpid, ppid, rss, ...args] of all) if (ppid === cur) (out.push({ pid: cpid, rss: Number(rss), args: args.join(' ') }), stack.push(cpid));
  }
  return out;
}
// The page's renderer is the largest renderer process; PSS counts shared libraries by share, not whole.
const renderers = descendants(browser.process?.()?.pid ?? 0).filter((x) => x.args.includes('--type=renderer'));
const pageRenderer = renderers.sort((a, b) => b.rss - a.rss)[0];
const pssKiB = (pid) => {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
};
const rendererMiB = round((pageRenderer?.rss ?? NaN) / 1024, 0);
const rendererPssMiB = round(pssKiB(pageRenderer?.pid) / 1024, 0);
const errors = [...p.errors];
const outside = [...p.outside];
await p.context.close();

// Baseline: one page that loads manifest.json + catalog.json up front, as dbt's site does.
const baseDir = path.join(WORK, 'docs-baseline');
mkdirSync(baseDir, { recursive: true });
writeFileSync(path.join(baseDir, 'manifest.js'), `window.__manifest=${readFileSync(path.join(target, 'manifest.json'), 'utf8')};`);
writeFileSync(path.join(baseDir, 'catalog.js'), `window.__catalog=${readFileSync(path.join(target, 'catalog.json'), 'utf8')};`);
writeFileSync(path.join(baseDir, 'index.html'), '<!doctype html><title>baseline</title><script src="manifest.js"></script><script src="catalog.js"></script><script>window.__loaded = performance.now(); document.title = Object.keys(window.__manifest.nodes).length;</script>');
const b = await newPage();
await b.page.goto(pathToFileURL(path.join(baseDir, 'index.html')).href);
await b.page.waitForFunction(() => window.__loaded);
const baselineLoad = await b.page.evaluate(() => window.__loaded);
const bcdp = await b.context.newCDPSession(b.page);
await bcdp.send('HeapProfiler.collectGarbage');
await bcdp.send('Performance.enable');
const bmetrics = Object.fromEntries((await bcdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
const baselineBytes = bytesOf(b.requests);
await b.context.close();
await browser.close();

const results = {
  project: { models: MODELS, ...shape, tests: Object.values(manifest.nodes).filter((n) => n.resource_type === 'test').length },
  generate,
  browser: {
    first_render_ms: round(median(firstRender), 0),
    first_render_runs_ms: firstRender.map((x) => round(x, 0)),
    home_download: homeBytes,
    home_plus_search_index: withSearchBytes,
    search_keystroke_ms: { median: round(median(keystrokes.times), 1), max: round(Math.max(...keystrokes.times), 1), keystrokes: keystrokes.times.length, results_median: median(keystrokes.counts) },
    search_real_key_to_frame_ms: { median: round(median(realKeys), 1), max: round(Math.max(...realKeys), 1) },
    first_node_page_ms: round(firstNodePage, 0),
    lineage_click_ms: { median: round(median(clicks), 0), max: round(Math.max(...clicks), 0), all: clicks.map((c) => round(c, 0)), clicks: clicks.length, graph_nodes: graphSizes, pages_without_a_node_on_screen: skipped },
    project_graph_ms: round(projectGraph, 0),
    project_graph_open_folder: openFolder,
    project_graph_open_band: openBand,
    renderer_rss_mib: rendererMiB,
    renderer_pss_mib: rendererPssMiB,
    js_heap_used_mib: round(metrics.JSHeapUsedSize / 2 ** 20, 1),
    js_heap_total_mib: round(metrics.JSHeapTotalSize / 2 ** 20, 1),
    dom_nodes: metrics.Nodes,
    console_errors: errors,
    requests_to_other_hosts: outside,
  },
  baseline_manifest_up_front: {
    load_ms: round(baselineLoad, 0),
    download: baselineBytes,
    js_heap_used_mib: round(bmetrics.JSHeapUsedSize / 2 ** 20, 1),
  },
};
results.load_average_1m_end = round(os.loadavg()[0], 1);
console.log(JSON.stringify(results, null, 2));
writeFileSync(path.join(WORK, 'docs-results.json'), `${JSON.stringify(results, null, 2)}\n`);
if (errors.length || outside.length) process.exitCode = 1;
