// The programmatic API: what the CLI calls, and what a user embedding etl
// calls. compile() produces the manifest; build()/run()/seed() plan and
// execute it. Nothing here parses argv or prints.

import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createAdapter } from '../adapters/index.js';
import type { Adapter, QueryResult } from '../adapters/adapter.js';
import { ProjectError, RunError } from './errors.js';
import { readCachedManifest, readJsonIfExists, writeCompileCache, writeCompiledFiles, writeFileAtomic, writeManifest } from './compiler/artifacts.js';
import { compileProject } from './compiler/compile.js';
import type { Manifest, ResourceType } from './compiler/manifest.js';
import { ETL_VERSION } from './compiler/version.js';
import { explainSelection } from './graph/select.js';
import { planRun, type Plan } from './plan/plan.js';
import { loadProject, type Project } from './project/load.js';
import { executePlan } from './runner/runner.js';
import type { NodeResult, RunEvent } from './runner/events.js';

export interface ProjectOptions {
  projectDir: string;
  target?: string;
  vars?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

export interface CompileOptions extends ProjectOptions {
  /** Pretty-print target/compiled/**.sql with sql-formatter. */
  format?: boolean;
  /** Ignore the compile cache. */
  noCache?: boolean;
}

export interface CompileResult {
  project: Project;
  manifest: Manifest;
  /** True when the manifest came from the compile cache. */
  cached: boolean;
}

/** Loads and compiles a project, writing manifest.json and compiled/**.sql. */
export async function compile(options: CompileOptions): Promise<CompileResult> {
  const env = options.env ?? process.env;
  const project = loadProject(options.projectDir, { target: options.target, vars: options.vars, env });
  const format = options.format ?? false;
  if (!options.noCache) {
    const cachedManifest = readCachedManifest(project.targetPath, project.fingerprint, env, format);
    // The cache stands for the manifest *and* compiled/**.sql: if those files were deleted, compile again.
    const compiledPresent = (m: Manifest) => Object.values(m.nodes).every((n) => !n.compiled_path || existsSync(path.join(project.root, n.compiled_path)));
    if (cachedManifest && compiledPresent(cachedManifest)) return { project, manifest: cachedManifest, cached: true };
  }
  const { manifest, envRead } = await compileProject(project, env);
  let transform: ((sql: string) => string) | undefined;
  if (format) {
    const { createSqlFormatter } = await import('./compiler/format.js');
    transform = createSqlFormatter(project.targetPath, project.target.type === 'postgres' ? 'postgresql' : 'duckdb');
  }
  writeCompiledFiles(project.root, manifest, transform);
  (transform as { flush?: () => void } | undefined)?.flush?.();
  writeManifest(project.targetPath, manifest);
  writeCompileCache(project.targetPath, project.fingerprint, envRead, env, format);
  return { project, manifest, cached: false };
}

export interface SelectOptions {
  select?: string[];
  exclude?: string[];
  /** Folder holding a previous manifest.json, for state: selectors. */
  state?: string;
}

export interface RunCommandOptions extends CompileOptions, SelectOptions {
  threads?: number;
  fullRefresh?: boolean;
  failFast?: boolean;
  onEvent?: (event: RunEvent) => void;
  signal?: AbortSignal;
}

export interface RunSummary {
  manifest: Manifest;
  results: NodeResult[];
  elapsedSeconds: number;
  interrupted: boolean;
  warnings: string[];
  /** 0 all passed, 1 something failed. */
  exitCode: 0 | 1;
}

/** Resolves --select/--exclude against a manifest; returns selected ids and warnings. */
export function selectFromManifest(manifest: Manifest, targetPath: string, options: SelectOptions): { selected: Set<string>; warnings: string[] } {
  const stateManifest = options.state ? readJsonIfExists<Manifest>(path.join(options.state, 'manifest.json')) : undefined;
  if (options.state && !stateManifest) {
    throw new ProjectError([{ message: `--state ${options.state}: no manifest.json there`, hint: 'point --state at the target/ folder of a previous run' }]);
  }
  const previousResults = readJsonIfExists<{ results: Array<{ unique_id: string; status: string }> }>(path.join(targetPath, 'run_results.json'));
  // As in dbt's build and test: selecting a model selects the tests on it.
  return explainSelection({ manifest, stateManifest, previousResults }, options.select, options.exclude, { indirectSelection: 'eager' });
}

async function execute(options: RunCommandOptions, resourceTypes: ResourceType[]): Promise<RunSummary> {
  const { project, manifest } = await compile(options);
  const { selected, warnings } = selectFromManifest(manifest, project.targetPath, options);
  const plan = planRun(manifest, selected, new Set(resourceTypes));
  const threads = options.threads ?? project.target.threads;
  const adapter = await createAdapter(project.target, project.root);
  const onEvent = options.onEvent ?? (() => undefined);
  let outcome;
  const runId = randomUUID();
  await adapter.open();
  try {
    outcome = await executePlan(manifest, plan, adapter, {
      threads,
      failFast: options.failFast ?? false,
      fullRefresh: options.fullRefresh ?? false,
      onEvent,
      signal: options.signal,
      runId,
    });
  } finally {
    await adapter.close();
  }
  writeRunResults(project.targetPath, manifest, outcome.results, outcome.elapsedSeconds, resourceTypes, runId);
  const failed = outcome.interrupted || outcome.results.some((r) => r.status === 'error' || r.status === 'fail');
  return { manifest, results: outcome.results, elapsedSeconds: outcome.elapsedSeconds, interrupted: outcome.interrupted, warnings, exitCode: failed ? 1 : 0 };
}

/** Seeds, models and tests in graph order; a failing test skips its model's children. */
export function build(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['seed', 'model', 'test']);
}

/** Data tests only, against what is already built. */
export function test(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['test']);
}

/** Models only. */
export function run(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['model']);
}

/** Seeds only. */
export function seed(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['seed']);
}

export function writeRunResults(targetPath: string, manifest: Manifest, results: NodeResult[], elapsed: number, resourceTypes: ResourceType[], runId: string): void {
  writeFileAtomic(
    path.join(targetPath, 'run_results.json'),
    JSON.stringify(
      {
        metadata: {
          dbt_schema_version: 'https://schemas.getdbt.com/dbt/run-results/v6.json',
          etl_version: ETL_VERSION,
          generated_at: new Date().toISOString(),
          invocation_id: runId,
        },
        results,
        elapsed_time: elapsed,
        args: { resource_types: resourceTypes, target: manifest.metadata.target_name },
      },
      null,
      2,
    ),
  );
}

/** Lists the selected nodes (what `etl ls` prints). */
export async function list(options: CompileOptions & SelectOptions & { resourceTypes?: ResourceType[] }): Promise<{ manifest: Manifest; ids: string[]; warnings: string[] }> {
  const { project, manifest } = await compile(options);
  const { selected, warnings } = selectFromManifest(manifest, project.targetPath, options);
  const types = options.resourceTypes ? new Set(options.resourceTypes) : undefined;
  const ids = Object.keys(manifest.nodes).filter((id) => selected.has(id) && (!types || types.has(manifest.nodes[id]!.resource_type)));
  return { manifest, ids, warnings };
}

/** Runs a node's compiled SQL (or inline SQL) and returns the first `limit` rows. */
export async function show(options: CompileOptions & SelectOptions & { inline?: string; limit: number }): Promise<QueryResult & { node?: string }> {
  const { project, manifest } = await compile(options);
  let sql: string;
  let nodeId: string | undefined;
  if (options.inline) {
    sql = options.inline;
  } else {
    const { selected } = selectFromManifest(manifest, project.targetPath, options);
    const ids = [...selected].filter((id) => manifest.nodes[id]!.resource_type !== 'test');
    if (ids.length !== 1) {
      throw new ProjectError([
        {
          message: ids.length === 0 ? 'show: the selection matched no model or seed' : `show: the selection matched ${ids.length} nodes (${ids.slice(0, 5).map((id) => manifest.nodes[id]!.name).join(', ')}${ids.length > 5 ? ', ...' : ''})`,
          hint: 'select exactly one, e.g. etl show -s orders',
        },
      ]);
    }
    nodeId = ids[0]!;
    const node = manifest.nodes[nodeId]!;
    sql = node.resource_type === 'seed' ? `select * from ${node.relation_name}` : node.compiled_code;
  }
  const adapter: Adapter = await createAdapter(project.target, project.root);
  await adapter.open();
  try {
    const result = await adapter.withSession((s) => adapter.preview(s, sql, options.limit));
    return { ...result, node: nodeId };
  } catch (err) {
    throw new RunError(`show failed${nodeId ? ` for ${manifest.nodes[nodeId]!.name}` : ''}: ${(err as Error).message}`);
  } finally {
    await adapter.close();
  }
}

export interface FreshnessSummary {
  results: import('./data-tests/freshness.js').FreshnessResult[];
  exitCode: 0 | 1;
}

/** `etl source freshness`: checks each source with freshness config; writes target/sources.json. */
export async function sourceFreshness(options: CompileOptions & { select?: string[] }): Promise<FreshnessSummary> {
  const { checkFreshness, freshnessSources } = await import('./data-tests/freshness.js');
  const { project, manifest } = await compile(options);
  const wanted = (options.select ?? []).flatMap((s) => s.split(/\s+/)).filter(Boolean).map((s) => s.replace(/^source:/, ''));
  const sources = freshnessSources(manifest).filter(
    (s) => wanted.length === 0 || wanted.some((w) => w === s.source_name || w === `${s.source_name}.${s.name}`),
  );
  const adapter = await createAdapter(project.target, project.root);
  await adapter.open();
  const started = performance.now();
  let results;
  try {
    results = await checkFreshness(adapter, sources);
  } finally {
    await adapter.close();
  }
  writeFileAtomic(
    path.join(project.targetPath, 'sources.json'),
    JSON.stringify(
      {
        metadata: { dbt_schema_version: 'https://schemas.getdbt.com/dbt/sources/v3.json', etl_version: ETL_VERSION, generated_at: new Date().toISOString(), invocation_id: randomUUID() },
        results,
        elapsed_time: (performance.now() - started) / 1000,
      },
      null,
      2,
    ),
  );
  const failed = results.some((r) => r.status === 'error' || r.status === 'runtime error');
  return { results, exitCode: failed ? 1 : 0 };
}

export type { Plan };
