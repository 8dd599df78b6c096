// `etl debug` (what etl sees: versions, project, target, a test query) and
// `etl clean` (remove generated artifacts, keeping database files).

import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createAdapter } from '../adapters/index.js';
import { ETL_VERSION } from './compiler/version.js';
import { scanProject } from './project/load.js';
import type { Secrets } from './project/secrets.js';

export async function debugProject(options: { projectDir: string; target?: string; vars?: Record<string, unknown> }): Promise<{ lines: string[]; ok: boolean; secrets: Secrets }> {
  const project = scanProject(options.projectDir, options);
  const lines = [
    `etl ${ETL_VERSION}, node ${process.version}`,
    `project: ${project.name} (${project.root})`,
    `target: ${project.targetName} (${project.target.type}, schema ${project.target.schema}, ${project.target.threads} threads)`,
    `models: ${project.files.models.length}, seeds: ${project.files.seeds.length}, snapshots: ${project.files.snapshots.length}, tests: ${project.files.singularTests.length}, macros: ${project.files.partials.length + project.files.helperModules.length}`,
  ];
  let ok = true;
  try {
    const adapter = await createAdapter(project.target, project.root, { readOnly: true });
    await adapter.open();
    try {
      const r = await adapter.withSession((s) => s.query('select 1 as ok'));
      lines.push(`connection: OK (${r.rows.length === 1 ? 'select 1 returned a row' : 'unexpected result'})`);
    } finally {
      await adapter.close();
    }
  } catch (err) {
    ok = false;
    lines.push(`connection: FAILED: ${(err as Error).message}`);
  }
  return { lines, ok, secrets: project.secrets };
}

/** Removes everything in target/ except database files (*.duckdb and their WAL). */
export function cleanProject(projectDir: string): string[] {
  const project = scanProject(projectDir);
  const target = project.targetPath;
  if (!existsSync(target)) return [];
  const removed: string[] = [];
  for (const entry of readdirSync(target)) {
    if (/\.duckdb(\.wal)?$/.test(entry) || entry === 'lake') continue;
    rmSync(path.join(target, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}
