// The running etl version, from package.json.
import { createRequire } from 'node:module';

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
