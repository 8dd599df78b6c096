// `etl docs serve`: serves target/docs on 127.0.0.1 with node:http and
// generates the site again when a project file changes (models, seeds,
// snapshots, tests, macros, yml) or a run leaves new results in target/.
// Files are read from disk per request, so a regenerated site is what the next
// request sees; nothing is cached by the browser across generations.

import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { generateDocs, type DocsGenerateOptions, type DocsGenerateResult } from './generate.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Target files whose change means the site is out of date. */
const TARGET_INPUTS = new Set(['run_results.json', 'catalog.json', 'lineage.json', 'sources.json']);

export interface DocsServer {
  url: string;
  server: Server;
  /** Resolves after the next regeneration (for tests and the CLI's log). */
  regenerated(): Promise<DocsGenerateResult>;
  close(): Promise<void>;
}

export interface DocsServeOptions extends DocsGenerateOptions {
  port: number;
  host?: string;
  onGenerate?: (r: DocsGenerateResult | Error) => void;
}

function staticHandler(root: string) {
  return (url: string | undefined): { status: number; type: string; body: Buffer | string } => {
    let rel: string;
    try {
      rel = decodeURIComponent(new URL(url ?? '/', 'http://x').pathname);
    } catch {
      return { status: 400, type: TYPES['.txt']!, body: 'bad request' };
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.join(root, path.normalize(rel));
    if (file !== root && !file.startsWith(root + path.sep)) return { status: 403, type: TYPES['.txt']!, body: 'forbidden' };
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
      return { status: 200, type: TYPES[path.extname(file)] ?? 'application/octet-stream', body: readFileSync(file) };
    } catch {
      return { status: 404, type: TYPES['.txt']!, body: 'not found' };
    }
  };
}

export async function serveDocs(options: DocsServeOptions): Promise<DocsServer> {
  let result = await generateDocs(options);
  let generation = 1;
  options.onGenerate?.(result);
  const root = result.dir;
  const projectRoot = path.dirname(path.dirname(root));
  const handle = staticHandler(root);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    // The page served by `docs serve` asks this every few seconds and reloads when the site was generated again.
    if (req.url === '/__etl/generation') {
      res.writeHead(200, { 'content-type': TYPES['.txt']!, 'cache-control': 'no-store' });
      res.end(String(generation));
      return;
    }
    const out = handle(req.url);
    const body = out.status === 200 && /^\/(index\.html)?(\?|$)/.test(req.url ?? '/') ? String(out.body).replace('<html lang="en">', '<html lang="en" data-live-reload="/__etl/generation">') : out.body;
    res.writeHead(out.status, { 'content-type': out.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  // Regenerate on change, at most one at a time, coalescing bursts of events.
  let waiters: Array<{ resolve: (r: DocsGenerateResult) => void; reject: (e: Error) => void }> = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const regenerate = () => {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        const current = waiters;
        waiters = [];
        try {
          result = await generateDocs(options);
          generation++;
          options.onGenerate?.(result);
          for (const w of current) w.resolve(result);
        } catch (err) {
          options.onGenerate?.(err as Error);
          for (const w of current) w.reject(err as Error);
        }
      } while (again);
      running = undefined;
    })();
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(regenerate, 150);
  };
  const watchers: FSWatcher[] = [];
  const targetDir = path.dirname(root);
  for (const entry of ['models', 'seeds', 'snapshots', 'tests', 'macros', 'analyses']) {
    const dir = path.join(projectRoot, entry);
    if (existsSync(dir)) watchers.push(watch(dir, { recursive: true }, schedule));
  }
  watchers.push(
    watch(projectRoot, (_event, name) => {
      if (name && /^etl\.ya?ml$/.test(String(name))) schedule();
    }),
  );
  if (existsSync(targetDir)) {
    watchers.push(
      watch(targetDir, (_event, name) => {
        if (name && TARGET_INPUTS.has(String(name))) schedule();
      }),
    );
  }
  return {
    url: `http://${host}:${port}/`,
    server,
    regenerated: () => new Promise((resolve, reject) => waiters.push({ resolve, reject })),
    close: async () => {
      clearTimeout(timer);
      for (const w of watchers) w.close();
      await running;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
