// @duckdb/node-api, loaded with require() rather than `import`. The package is
// CommonJS: importing it from ESM makes Node parse each of its ~100 files
// with the CommonJS export lexer before running them, which cost about 130 ms
// of CPU (and on a loaded machine half a second) of every process that
// touches DuckDB; require() just runs them. The types are the package's own.
// The CLI's bundle replaces this module with the package's JavaScript bundled
// (scripts/bundle.mjs): only its native part is then loaded from node_modules.

import { createRequire } from 'node:module';

export type * from '@duckdb/node-api';

export const duckdb: typeof import('@duckdb/node-api') = createRequire(import.meta.url)('@duckdb/node-api');
