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
import { readFileSync, rmSync } from 'node:fs';
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

/**
 * @duckdb/node-api's JavaScript (~180 CommonJS files) bundled, in the chunk of the driver module
 * (adapters/duckdb/driver.js, loaded only where DuckDB is used): resolving, reading and wrapping each
 * file cost ~35 ms of every DuckDB command on a quiet machine (60 ms against 25 ms, measured alone)
 * and more under load. Its native part, @duckdb/node-bindings, stays outside (a direct dependency of
 * ours, pinned to the version this JavaScript was written for: checked here, at build time).
 * dist/adapters/duckdb/driver.js (the library API) still require()s the package from node_modules.
 */
const duckdbApiBundled = {
  name: 'duckdb-node-api-bundled',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]adapters[\\/]duckdb[\\/]driver\.js$/ }, () => ({
      loader: 'js',
      contents: "import * as api from '@duckdb/node-api';\nexport const duckdb = api;\n",
      resolveDir: path.join(dist, 'adapters', 'duckdb'),
    }));
  },
};
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const api = JSON.parse(readFileSync(path.join(root, 'node_modules', '@duckdb', 'node-api', 'package.json'), 'utf8'));
const wanted = { '@duckdb/node-api': api.version, '@duckdb/node-bindings': api.dependencies['@duckdb/node-bindings'] };
for (const [name, version] of Object.entries(wanted)) {
  if (pkg.dependencies[name] !== version) {
    throw new Error(`package.json: "${name}" must be "${version}" exactly (the bundle carries @duckdb/node-api ${api.version}'s JavaScript, which needs @duckdb/node-bindings ${wanted['@duckdb/node-bindings']}); it is "${pkg.dependencies[name]}"`);
  }
}

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
  plugins: [pgNodeStreams, duckdbApiBundled],
  // Native code (DuckDB's, under @duckdb/node-api's JavaScript), optional peers of pg, and esbuild (native too; loaded only for .ts macros).
  external: ['@duckdb/node-bindings', 'pg-native', 'pg-cloudflare', 'esbuild'],
  define: { __ETL_BUILD_ID__: JSON.stringify(BUILD_ID) },
  // Bundled CommonJS (pg, commander, ...) calls require() for Node's built-ins.
  banner: { js: "import { createRequire as __etlCreateRequire } from 'node:module'; const require = __etlCreateRequire(import.meta.url);" },
});
