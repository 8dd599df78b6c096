// `etl init`: copies project-template/ (which ships with the package) into a
// new folder and names the project after it.

import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProjectError } from './errors.js';

/** project-template/ beside dist/ (installed) or beside core/ (source). */
export function templateDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../../project-template', '../project-template']) {
    const dir = path.resolve(here, rel);
    if (existsSync(path.join(dir, 'etl.yml'))) return dir;
  }
  throw new Error('project-template/ is missing from the etl installation');
}

export function initProject(dir: string): { dir: string; name: string } {
  const dest = path.resolve(dir);
  if (existsSync(dest) && readdirSync(dest).length > 0) {
    throw new ProjectError([{ message: `${dest} already exists and is not empty`, hint: 'choose a new folder name, e.g. etl init my_shop' }]);
  }
  const name = path.basename(dest).replace(/[^A-Za-z0-9_]/g, '_').replace(/^([0-9])/, '_$1') || 'my_project';
  const src = templateDir();
  cpSync(src, dest, {
    recursive: true,
    filter: (p) => !/(^|[\\/])target([\\/]|$)/.test(path.relative(src, p)),
  });
  const config = path.join(dest, 'etl.yml');
  writeFileSync(config, readFileSync(config, 'utf8').replace(/^name: .*$/m, `name: ${name}`));
  return { dir: dest, name };
}
