// `etl delta history | vacuum | optimize`: maintenance of the Delta tables of
// a delta target. The selection names models (as everywhere); without one,
// vacuum and optimize visit every table of the lake.

import type { Relation } from '../adapters/adapter.js';
import { deltaLakeRoot } from '../adapters/index.js';
import { compile, selectFromManifest, type ProjectOptions } from './api.js';
import { ProjectError } from './errors.js';
import { scanProject } from './project/load.js';

export interface DeltaCommandOptions extends ProjectOptions {
  select?: string[];
  exclude?: string[];
}

async function resolve(options: DeltaCommandOptions, command: string, selectionRequired: boolean): Promise<{ lakeRoot: string; relations?: Relation[] }> {
  const scan = options.scan ?? scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env ?? process.env });
  const lakeRoot = deltaLakeRoot(scan.target, scan.root);
  if (!lakeRoot) {
    throw new ProjectError([{ message: `etl delta ${command} works on a delta target; target ${scan.target.name} is ${scan.target.type}`, hint: 'pick one with --target, e.g. targets: { lake: { type: delta, path: ./lake } }' }]);
  }
  if (!options.select?.length) {
    if (selectionRequired) throw new ProjectError([{ message: `etl delta ${command} needs a model: -s <name>`, hint: `e.g. etl delta ${command} -s orders` }]);
    return { lakeRoot };
  }
  const { project, manifest } = await compile({ ...options, scan });
  const { selected } = selectFromManifest(manifest, project.targetPath, { select: options.select, exclude: options.exclude });
  const relations = [...selected]
    .map((id) => manifest.nodes[id]!)
    .filter((n) => (n.resource_type === 'model' || n.resource_type === 'seed' || n.resource_type === 'snapshot') && n.config.materialized !== 'ephemeral')
    .map((n) => ({ schema: n.schema, name: n.alias }));
  if (relations.length === 0) throw new ProjectError([{ message: `etl delta ${command}: the selection matched no model, seed or snapshot`, hint: 'e.g. -s orders' }]);
  return { lakeRoot, relations };
}

export async function deltaHistory(options: DeltaCommandOptions & { limit?: number }) {
  const { lakeRoot, relations } = await resolve(options, 'history', true);
  const { historyOf } = await import('../adapters/delta/maintenance.js');
  return historyOf(lakeRoot, relations!, options.limit);
}

/** "168h", "7d" or a number of hours. */
export function parseRetention(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([hd]?)\s*$/i.exec(text);
  if (!m) throw new ProjectError([{ message: `--retain ${text}: not a duration`, hint: 'hours or days, e.g. --retain 168h or --retain 7d' }]);
  return Number(m[1]) * (m[2]?.toLowerCase() === 'd' ? 24 : 1);
}

export async function deltaVacuum(options: DeltaCommandOptions & { retain?: string; force?: boolean; dryRun?: boolean }) {
  const { lakeRoot, relations } = await resolve(options, 'vacuum', false);
  const { vacuumLake } = await import('../adapters/delta/maintenance.js');
  return vacuumLake(lakeRoot, relations, { retentionHours: options.retain === undefined ? undefined : parseRetention(options.retain), force: options.force, dryRun: options.dryRun });
}

export async function deltaOptimize(options: DeltaCommandOptions & { targetFileSize?: number }) {
  const { lakeRoot, relations } = await resolve(options, 'optimize', false);
  const { optimizeLake } = await import('../adapters/delta/maintenance.js');
  return optimizeLake(lakeRoot, relations, { targetFileSize: options.targetFileSize });
}
