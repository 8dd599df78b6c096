// The running etl version, from package.json.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
declare const __ETL_BUILD_ID__: string | undefined;
// Built: dist/core/compiler/version.js (three levels down); bundled (dist/bin/) or from source under vitest: two.
export const ETL_VERSION: string = (() => {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = require(rel) as { name?: string; version: string };
      if (pkg.name === 'etl') return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
})();

/**
 * Identifies this build of etl, so a compile cache written by another build
 * (a new version, or a local rebuild during development) is never reused:
 * a hash of the code that decides what a compile produces.
 */
export const BUILD_ID: string = (() => {
  // The bundle (dist/bin/, scripts/bundle.mjs) has it built in: its files are not laid out as below.
  if (typeof __ETL_BUILD_ID__ === 'string') return __ETL_BUILD_ID__;
  try {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const hash = createHash('sha256').update(ETL_VERSION);
    for (const dir of ['.', '../templates', '../data-tests', '../project']) {
      const abs = path.join(here, dir);
      for (const f of readdirSync(abs).sort()) {
        if (/\.(js|ts)$/.test(f) && !f.endsWith('.d.ts')) hash.update(f).update(readFileSync(path.join(abs, f)));
      }
    }
    return `${ETL_VERSION}+${hash.digest('hex').slice(0, 16)}`;
  } catch {
    return ETL_VERSION;
  }
})();
