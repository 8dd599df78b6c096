// Builds the docs site's front-end into dist/docs-site/ (run by `npm run
// build`): app.js (the shell, search, pages), page.js (Markdown, SQL
// formatting and highlighting, loaded with the first node page) and graph.js
// (dagre, loaded with the first graph), each a classic script (file:// pages
// cannot load ES modules), plus app.css and index.html. Every library is
// bundled: the site asks no other host for anything.

import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const outdir = path.join(root, 'dist', 'docs-site');

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
await Promise.all(
  [
    ['app', 'main.ts'],
    ['page', 'page-lib.ts'],
    ['graph', 'graph-lib.ts'],
  ].map(([name, entry]) =>
    build({
      entryPoints: [path.join(here, entry)],
      outfile: path.join(outdir, `${name}.js`),
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: ['chrome109', 'firefox115', 'safari16'],
      minify: true,
      legalComments: 'linked',
      logLevel: 'warning',
    }),
  ),
);
copyFileSync(path.join(here, 'app.css'), path.join(outdir, 'app.css'));
copyFileSync(path.join(here, 'index.html'), path.join(outdir, 'index.html'));
