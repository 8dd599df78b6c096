// Bundles the CLI into dist/bin/ with esbuild, after tsc has built dist/.
//
// Why: loading ~250 small ES modules (zod alone is 95 files) cost about
// 70 ms per `etl` process, a large share of a short run (a build of a few
// hundred views, a cached compile). The bundle is a handful of files; lazy
// parts (the compiler, each adapter, the reporter) stay separate chunks, so
// a compile still never loads a database driver.
//
// dist/bin/etl.js is the `etl` command. dist/cli/main.js (tsc's output) still
// runs the same code unbundled; the library API stays dist/core/index.js.

import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dist = path.join(root, 'dist');
const outdir = path.join(dist, 'bin');

// The compile cache is keyed by the build id tsc's output computes from the
// compiler's own files; the bundle carries the same id.
const { BUILD_ID } = await import(path.join(dist, 'core/compiler/version.js'));

/**
 * pg picks its socket implementation by asking whether it runs in Cloudflare
 * Workers, and on Node 20 the question constructs a fetch `Response`, which
 * loads Node's whole fetch implementation: about 20 ms of every run against
 * Postgres. etl runs on Node only, so the bundle gets pg's Node branch as is.
 */
const pgNodeStreams = {
  name: 'pg-node-streams',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]pg[\\/]lib[\\/]stream\.js$/ }, () => ({
      loader: 'js',
      contents: `module.exports = {
  getStream(ssl) { const net = require('net'); return new net.Socket(); },
  getSecureStream(options) { const tls = require('tls'); return tls.connect(options); },
};`,
    }));
  },
};

rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: {
    etl: path.join(dist, 'cli/main.js'),
    // Started by path (new URL('./infer-worker.js', import.meta.url)) beside the chunk that needs it.
    'infer-worker': path.join(dist, 'adapters/postgres/infer-worker.js'),
    // Likewise (new URL('./docs-worker.js', import.meta.url)): docs generate's catalog, lineage and site.
    'docs-worker': path.join(dist, 'core/docs/docs-worker.js'),
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [pgNodeStreams],
  // Native code, optional peers of pg, and esbuild (native too; loaded only for .ts macros).
  external: ['@duckdb/node-api', 'pg-native', 'pg-cloudflare', 'esbuild'],
  define: { __ETL_BUILD_ID__: JSON.stringify(BUILD_ID) },
  // Bundled CommonJS (pg, commander, ...) calls require() for Node's built-ins.
  banner: { js: "import { createRequire as __etlCreateRequire } from 'node:module'; const require = __etlCreateRequire(import.meta.url);" },
});
