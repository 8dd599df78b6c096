// `etl format`: formats model and snapshot files in place with sql-formatter,
// keeping every template tag intact (a file whose tags would change is skipped).

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { dialectFor } from '../adapters/dialect.js';
import { formatTemplate } from './compiler/format.js';
import { loadProject } from './project/load.js';

export interface FormatReport {
  total: number;
  changed: string[];
  skipped: Array<{ path: string; reason: string }>;
}

export function formatProjectFiles(projectDir: string, options: { files?: string[]; check: boolean; target?: string }): FormatReport {
  const project = loadProject(projectDir, { target: options.target });
  const language = dialectFor(project.target.type).formatterLanguage;
  const files = options.files?.length
    ? options.files.map((f) => path.resolve(f))
    : [...project.models, ...project.snapshots].map((f) => f.absPath);
  const report: FormatReport = { total: files.length, changed: [], skipped: [] };
  for (const file of files) {
    const rel = path.relative(project.root, file).split(path.sep).join('/');
    const text = readFileSync(file, 'utf8');
    const formatted = formatTemplate(text, language);
    if (formatted === undefined) {
      report.skipped.push({ path: rel, reason: 'formatting would change a template tag' });
      continue;
    }
    if (formatted === text) continue;
    report.changed.push(rel);
    if (!options.check) writeFileSync(file, formatted);
  }
  return report;
}

