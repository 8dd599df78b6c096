// The running etl version, from package.json.
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// Built: dist/core/compiler/version.js (three levels down); from source under vitest: two.
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
 * (a new version, or a local rebuild during development) is never reused.
 */
export const BUILD_ID: string = (() => {
  try {
    const dir = path.dirname(fileURLToPath(import.meta.url));
    const stamps = ['compile', 'config', 'ephemeral'].map((f) => {
      const file = [path.join(dir, `${f}.js`), path.join(dir, `${f}.ts`)].find((p) => existsSync(p));
      return file ? statSync(file).mtimeMs : 0;
    });
    return `${ETL_VERSION}+${stamps.join('.')}`;
  } catch {
    return ETL_VERSION;
  }
})();
