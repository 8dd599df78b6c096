// The programmatic API: what the CLI calls, and what a user embedding etl
// calls. compile() produces the manifest; build()/run()/seed() plan and
// execute it. Nothing here parses argv or prints.

import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createAdapter, opensEarly, opensWithoutWriting } from '../adapters/index.js';
import { dialectFor } from '../adapters/dialect.js';
import type { Adapter, QueryResult } from '../adapters/adapter.js';
import { ProjectError, RunError } from './errors.js';
import { runClock } from './clock.js';
import { readCachedManifest, readJsonIfExists, readManifestJson, stampManifest, writeCompileCache, writeCompiledFiles, writeFileAtomic, writeManifest } from './compiler/artifacts.js';
import { clearRunStarted, readRunStarted, writeRunResults, writeRunStarted, writeSourcesJson } from './artifacts/run-results.js';
import type { Manifest, ResourceType } from './compiler/manifest.js';
import { ETL_VERSION } from './compiler/version.js';
import { explainSelection } from './graph/select.js';
import { planRun, type Plan } from './plan/plan.js';
import { parseProject, scanProject, type ProjectScan } from './project/load.js';
import { STAMPS_FILE } from './project/files.js';
import { redact, type Secrets } from './project/secrets.js';
import { unitTestFixtureFiles } from './data-tests/unit-tests.js';
import { flushPendingInvocations, invocationFacts, selectionText } from './history/invocation.js';
import { nodeRunRecords, upstreamRelations } from './history/records.js';
import { migrateState, readState, recordRunEnd, recordRunStart } from './state/state.js';
import type { NodeResult, RunEvent } from './runner/events.js';

export interface ProjectOptions {
  projectDir: string;
  target?: string;
  vars?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** The project as scanProject read it with these same options, if the caller already did (the CLI does, to know the secrets to mask). */
  scan?: ProjectScan;
}

export interface CompileOptions extends ProjectOptions {
  /** Pretty-print target/compiled/**.sql with sql-formatter. */
  format?: boolean;
  /** Ignore the compile cache. */
  noCache?: boolean;
  /** Bind every model's SQL against its inputs' schemas (core/analysis); compile() only when true, runs unless false. */
  check?: boolean;
  /** A source missing from the target's catalog is a warning, not an error. */
  noCheckSources?: boolean;
  /** This invocation's id (run id), when the caller made it first (the CLI: its JSON log events carry it from the start); default a new UUID. */
  invocationId?: string;
}

export interface CompileResult {
  /** The project as read; fully parsed only when the manifest was compiled anew. */
  project: ProjectScan;
  manifest: Manifest;
  /** True when the manifest came from the compile cache. */
  cached: boolean;
  nodeCount: number;
  /** This invocation's id: manifest.json's metadata.invocation_id, and run_results.json's. */
  invocationId: string;
  /** With check: the bound schemas, unchecked models and predicted schema changes. */
  check?: import('./analysis/index.js').CheckResult;
}

/** Loads and compiles a project, writing manifest.json and compiled/**.sql. */
export async function compile(options: CompileOptions): Promise<CompileResult> {
  const result = await compileUnwritten(options);
  let lineage: { module: typeof import('./analysis/column-lineage.js'); prefetched: import('./analysis/column-lineage.js').LineagePrefetch } | undefined;
  if (options.check) {
    result.check = await staticCheck(result, options);
    // DuckDB parses the models for lineage.json on its own thread while the artifacts are written.
    const module = await import('./analysis/column-lineage.js');
    lineage = { module, prefetched: module.prefetchLineage(result.manifest, result.project.targetPath) };
    if (result.cached && result.check.manifestChanged) await writeManifest(result.project.targetPath, result.manifest);
  }
  await result.writeArtifacts();
  if (result.check && lineage) {
    const { projectLineage, writeLineageArtifact } = lineage.module;
    writeLineageArtifact(result.project.targetPath, await projectLineage(result.manifest, result.check.columns, result.project.targetPath, { prefetched: lineage.prefetched }));
  }
  return result;
}

/**
 * Column lineage of the project, written to target/lineage.json (what `etl
 * docs generate` and `etl lineage` read). Unlike compile --check, models
 * that do not bind are not an error here: their columns are left out.
 */
export async function columnLineage(options: CompileOptions): Promise<CompileResult & { lineage: import('./analysis/column-lineage.js').LineageArtifact }> {
  const result = await compileUnwritten(options);
  const [{ checkProject }, { projectLineage, writeLineageArtifact }] = await Promise.all([import('./analysis/index.js'), import('./analysis/column-lineage.js')]);
  result.check = await checkProject(result.manifest, { target: result.project.target, projectRoot: result.project.root, targetPath: result.project.targetPath, allowMissingSources: true });
  if (result.cached && result.check.manifestChanged) await writeManifest(result.project.targetPath, result.manifest);
  await result.writeArtifacts();
  const lineage = await projectLineage(result.manifest, result.check.columns, result.project.targetPath);
  writeLineageArtifact(result.project.targetPath, lineage);
  return { ...result, lineage };
}

/** The check stage (core/analysis) on a compiled project; its errors are the project's (exit 2, nothing written). */
async function staticCheck(compiled: CompileResult, options: CompileOptions, run?: { selected: Iterable<string>; adapter?: Adapter }) {
  const { checkProject } = await import('./analysis/index.js');
  const result = await checkProject(compiled.manifest, {
    target: compiled.project.target,
    projectRoot: compiled.project.root,
    targetPath: compiled.project.targetPath,
    selected: run?.selected,
    adapter: run?.adapter,
    allowMissingSources: options.noCheckSources,
  });
  if (result.errors.length) throw new ProjectError(result.errors);
  return result;
}

/**
 * Compiles without writing anything yet: a run first takes the target's lock,
 * so a second process that is refused changes nothing in target/ either
 * (`etl docs generate` writes while it reads the target).
 */
export async function compileUnwritten(options: CompileOptions, hooks?: import('./compiler/compile.js').CompileHooks): Promise<CompileResult & { writeArtifacts(): Promise<void> }> {
  const env = options.env ?? process.env;
  const scan = options.scan ?? scanProject(options.projectDir, { target: options.target, vars: options.vars, env });
  const format = options.format ?? false;
  if (!options.noCache) {
    const cached = readCachedManifest(scan.targetPath, path.join(scan.root, scan.compiledDir), scan.fingerprint, env, format);
    if (cached) {
      const invocationId = options.invocationId ?? randomUUID();
      const generatedAt = new Date().toISOString();
      return {
        project: scan,
        get manifest() {
          const m = cached.load();
          m.metadata.invocation_id = invocationId;
          m.metadata.generated_at = generatedAt;
          return m;
        },
        nodeCount: cached.nodeCount,
        cached: true,
        invocationId,
        writeArtifacts: async () => {
          stampManifest(scan.targetPath, invocationId, generatedAt);
          writeFileStamps(scan);
        },
      };
    }
  }
  const project = parseProject(scan);
  // The compiler (Handlebars and all) is loaded only when there is something to compile.
  const { compileProject } = await import('./compiler/compile.js');
  const { manifest, envRead } = await compileProject(project, env, hooks);
  if (options.invocationId) manifest.metadata.invocation_id = options.invocationId;
  const writeArtifacts = async () => {
    let transform: ((sql: string) => string) | undefined;
    if (format) {
      const { createSqlFormatter } = await import('./compiler/format.js');
      transform = createSqlFormatter(project.targetPath, dialectFor(project.target.type).formatterLanguage);
    }
    // Tests' SQL (often most of the nodes) is written when they run: see execute().
    // The compile cache wants the compiled folder there, also for a project with nothing compiled (loaders only).
    mkdirSync(path.join(project.root, project.compiledDir), { recursive: true });
    const compiledWritten = writeCompiledFiles(project.root, project.targetPath, manifest, transform, (n) => n.resource_type !== 'test');
    (transform as { flush?: () => void } | undefined)?.flush?.();
    await Promise.all([writeManifest(project.targetPath, manifest), compiledWritten]);
    writeCompileCache(project.targetPath, project.fingerprint, envRead, env, format, Object.keys(manifest.nodes).length, unitTestFixtureFiles(project));
    writeFileStamps(project);
  };
  return { project, manifest, nodeCount: Object.keys(manifest.nodes).length, cached: false, invocationId: manifest.metadata.invocation_id, writeArtifacts };
}

function writeFileStamps(scan: ProjectScan): void {
  if (scan.fileStamps) writeFileAtomic(path.join(scan.targetPath, STAMPS_FILE), JSON.stringify(scan.fileStamps));
}

export interface SelectOptions {
  select?: string[];
  exclude?: string[];
  /** Folder holding a previous manifest.json, for state: selectors. */
  state?: string;
}

export interface RunCommandOptions extends CompileOptions, SelectOptions {
  /** dbt's --defer: refs to unselected nodes this target lacks read the --state manifest's relations. */
  defer?: boolean;
  /** dbt's --favor-state: refs to unselected nodes read the --state manifest's relations even when this target has them. */
  favorState?: boolean;
  threads?: number;
  fullRefresh?: boolean;
  failFast?: boolean;
  /** Microbatch backfill: process only this event-time range. */
  eventTimeStart?: string;
  eventTimeEnd?: string;
  /** Pins the run's clock (core/clock.ts) to this instant; the environment's ETL_NOW when left out, else the system clock. */
  now?: Date | string;
  onEvent?: (event: RunEvent) => void;
  signal?: AbortSignal;
  /** The scheduled job (etl.yml jobs:) this run is, kept in the run history and named in its alerts; `etl schedule` sets ETL_JOB for the runs it starts. */
  job?: string;
}

export interface RunSummary {
  manifest: Manifest;
  results: NodeResult[];
  elapsedSeconds: number;
  interrupted: boolean;
  warnings: string[];
  /** 0 all passed, 1 something failed. */
  exitCode: 0 | 1;
  /** The alerts the run raised (etl.yml alerts:), delivered or not: a failed delivery never fails the run. */
  alerts: import('./alerts/index.js').AlertDelivery[];
  /** The budget alert this run raised (etl.yml budget:), if its cost crossed alert_at of the month's budget. */
  costAlerts?: import('./history/report.js').BudgetAlertEvent[];
}

/** Resolves --select/--exclude against a manifest; returns selected ids and warnings. */
export function selectFromManifest(manifest: Manifest, targetPath: string, options: SelectOptions): { selected: Set<string>; warnings: string[] } {
  const stateManifest = options.state ? readStateManifest(options.state, manifest) : undefined;
  const previousResults = readJsonIfExists<{ results: Array<{ unique_id: string; status: string }> }>(path.join(targetPath, 'run_results.json'));
  // As in dbt's build and test: selecting a model selects the tests on it.
  return explainSelection({ manifest, stateManifest, previousResults }, options.select, options.exclude, { indirectSelection: 'eager' });
}

/** The manifest.json of --state DIR: present, written by this etl's layout, of this project; else exit 2. */
export function readStateManifest(dir: string, current: Manifest): Manifest {
  let state: Manifest | undefined;
  try {
    state = readManifestJson(path.join(dir, 'manifest.json'));
  } catch (err) {
    throw new ProjectError([{ message: `--state ${dir}: ${(err as Error).message}`, hint: 'rebuild the state with this etl (etl compile in the state\'s checkout writes target/manifest.json), or upgrade the etl that reads it' }]);
  }
  if (!state) throw new ProjectError([{ message: `--state ${dir}: no manifest.json there`, hint: 'point --state at the target/ folder of a previous run' }]);
  if (state.metadata.project_name !== current.metadata.project_name) {
    throw new ProjectError([{ message: `--state ${dir}: its manifest.json is of project "${state.metadata.project_name}", not "${current.metadata.project_name}"`, hint: 'point --state at the target/ folder of a run of this project' }]);
  }
  return state;
}

interface ExecuteOptions {
  command: string;
  /** etl retry: run exactly these nodes instead of a selection. */
  ids?: Set<string>;
  retryBatches?: Map<string, Array<[string, string]>>;
  /** etl retry: the run retried, whose committed changes are not applied again. */
  retriedRun?: string;
}

/** Sources with `location:` become readable under their relation (before any node reads them). */
async function attachExternalSources(adapter: Adapter, manifest: Manifest, project: ProjectScan): Promise<void> {
  const tables = Object.values(manifest.sources)
    .filter((s) => s.external?.location)
    .map((s) => ({ relation: { schema: s.schema, name: s.identifier }, location: path.resolve(project.root, s.external!.location), source: `${s.source_name}.${s.name}` }));
  if (tables.length === 0) return;
  if (!adapter.attachExternal) {
    const first = Object.values(manifest.sources).find((s) => s.external)!;
    throw new ProjectError([{ file: first.original_file_path, message: `source ${tables[0]!.source} has a location, which target ${project.targetName} (${project.target.type}) cannot read`, hint: 'read tables by path on a delta target' }]);
  }
  await adapter.withSession((session) => adapter.attachExternal!(session, tables));
}

async function openAdapter(project: ProjectScan): Promise<Adapter> {
  const adapter = await createAdapter(project.target, project.root);
  await adapter.open();
  return adapter;
}

async function execute(options: RunCommandOptions, resourceTypes: ResourceType[], how: ExecuteOptions): Promise<RunSummary> {
  const clock = runClock(options.now, options.env ?? process.env);
  const scan = options.scan ?? scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env ?? process.env });
  // git status runs while the project compiles: the audit trail's commit and dirty flag.
  const facts = resourceTypes.some((t) => t !== 'test') ? invocationFacts(scan.root) : undefined;
  const batchRange = options.eventTimeStart || options.eventTimeEnd ? eventTimeRange(options) : undefined;
  // A server target's connections (TCP, TLS, auth, the schema lock) are made
  // while the project compiles, and so is a DuckDB file that is already there
  // opened (opensEarly). An embedded file not there yet is made only once the
  // project is known to be good: opening it creates it.
  // The pool follows the effective thread count: --threads above the target's would otherwise wait for connections.
  const runTarget = options.threads ? { ...scan.target, threads: options.threads } : scan.target;
  const early = opensEarly(scan.target, scan.root) ? createAdapter(runTarget, scan.root) : undefined;
  const connecting = early?.then(async (a) => {
    await a.open();
    return a;
  });
  connecting?.catch(() => undefined); // awaited below; a compile error must not leave it unhandled
  let prepared;
  try {
    const compiled = await compileUnwritten({ ...options, scan });
    const { selected, warnings } = how.ids ? { selected: how.ids, warnings: [] } : selectFromManifest(compiled.manifest, compiled.project.targetPath, options);
    const plan = planRun(compiled.manifest, selected, new Set(resourceTypes));
    if ((options.defer || options.favorState) && !options.state) {
      throw new ProjectError([{ message: `--${options.defer ? 'defer' : 'favor-state'} needs --state DIR`, hint: 'point --state at the target/ folder of the run to defer to, e.g. --defer --state prod-target/' }]);
    }
    const deferTo = options.defer || options.favorState ? readStateManifest(options.state!, compiled.manifest) : undefined;
    if (options.check !== false && resourceTypes.includes('model')) {
      // A server's failure to connect ends the run here; a DuckDB file another process holds is reported once the
      // project is known to be good (the check reads what it can without it), as when it was opened after the check.
      const server = opensWithoutWriting(scan.target);
      const checkAdapter = connecting ? await (server ? connecting : connecting.catch(() => undefined)) : undefined;
      const check = await staticCheck(compiled, options, { selected: plan.ids, adapter: checkAdapter });
      warnings.push(...check.warnings);
    }
    prepared = { ...compiled, warnings, plan, deferTo };
    // The loaders' modules (their sources' drivers) load while the target opens and the run's start is recorded.
    const manifest = compiled.manifest;
    if (plan.ids.some((id) => manifest.nodes[id]?.config.materialized === 'loader')) {
      import('./materializations/index.js').then((m) => m.preloadFor(plan.ids.map((id) => manifest.nodes[id])), () => undefined);
    }
  } catch (err) {
    // A bad project is reported as such, whatever the connection did; one
    // still being made is cut short (close() during open()).
    await early?.then((a) => a.close(), () => undefined);
    throw err;
  }
  const { project, writeArtifacts, warnings, plan, invocationId, deferTo } = prepared;
  let manifest = prepared.manifest;
  const startedAt = clock.now().toISOString();
  const threads = options.threads ?? project.target.threads;
  const adapter = await (connecting ?? openAdapter({ ...project, target: runTarget }));
  try {
    await attachExternalSources(adapter, manifest, project);
  } catch (err) {
    await adapter.close();
    throw err;
  }
  const env = options.env ?? process.env;
  // With OTEL_EXPORTER_OTLP_ENDPOINT set, a trace of the run (core/reporting/tracing.ts); the SDK is loaded only then.
  let tracing: import('./reporting/tracing.js').RunTracing | undefined;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    try {
      tracing = await (await import('./reporting/tracing.js')).startRunTracing({ runId: invocationId, command: how.command, project: project.name, target: project.targetName, version: ETL_VERSION, job: options.job, env });
    } catch (err) {
      // Tracing is an observer: a run never fails for it.
      warnings.push(`OpenTelemetry tracing is off for this run: ${(err as Error).message}`);
    }
  }
  const onEvent = tracing
    ? (e: RunEvent) => {
        options.onEvent?.(e);
        tracing.onEvent(e);
      }
    : (options.onEvent ?? (() => undefined));
  let outcome;
  let recordFailed: unknown;
  let alertEvents: import('./alerts/index.js').AlertEvent[] = [];
  const budgetEvents: import('./history/report.js').BudgetAlertEvent[] = [];
  // One id for this invocation: manifest.json, run_results.json and etl_meta's run record.
  const runId = invocationId;
  // Runs that build something keep their history and state in the target (etl_meta).
  const keepsState = resourceTypes.some((t) => t !== 'test');
  try {
    await writeArtifacts();
    if (keepsState) writeRunStarted(project.targetPath, { invocation_id: runId, changes_of: how.retriedRun ?? runId, command: how.command, resource_types: resourceTypes, nodes: plan.ids });
    const planned = new Set(plan.ids);
    await writeCompiledFiles(project.root, project.targetPath, manifest, undefined, (n) => n.resource_type === 'test' && planned.has(n.unique_id));
    if (keepsState) {
      await adapter.withSession(async (session) => {
        await migrateState(adapter, session);
        const f = await facts!;
        await recordRunStart(adapter, session, {
          runId,
          command: how.command,
          target: project.targetName,
          version: ETL_VERSION,
          startedAt,
          selection: selectionText(options.select, options.exclude),
          job: options.job ?? null,
          gitCommit: f.gitCommit,
          gitDirty: f.gitDirty,
          user: f.user,
          host: f.host,
        });
        await flushPendingInvocations(project.targetPath, async (records) => {
          for (const r of records) await recordRunStart(adapter, session, r);
        });
      }, { invocationId: runId });
    }
    if (deferTo) {
      // Only this run's SQL reads the state's relations (core/artifacts/defer.ts); manifest.json and the compile cache keep the project's own.
      const { deferToState } = await import('./artifacts/defer.js');
      const exists = (n: { schema: string; alias: string }) => adapter.withSession(async (s) => (await adapter.relationKind(s, { schema: n.schema, name: n.alias })) !== undefined);
      const deferral = await deferToState(manifest, plan.ids, { state: deferTo, favorState: options.favorState ?? false, exists });
      manifest = deferral.manifest;
      if (deferral.deferred.size) warnings.push(`deferred to --state ${options.state}: ${[...deferral.deferred].map(([id, rel]) => `${manifest.nodes[id]!.name} -> ${rel}`).join(', ')}`);
    }
    // The runner (and the materializations behind it) only when something runs: a compile never loads them.
    const { executePlan } = await import('./runner/runner.js');
    outcome = await executePlan(manifest, plan, adapter, {
      threads,
      failFast: options.failFast ?? false,
      fullRefresh: options.fullRefresh ?? false,
      onEvent,
      signal: options.signal,
      runId,
      clock,
      batchRange,
      retryBatches: how.retryBatches,
      retriedRun: how.retriedRun,
      circuitBreaker: project.target.circuit_breaker,
    });
    // An engine's message may echo a secret (DuckDB's errors are not scrubbed by
    // its driver): scrubbed once here for every record and artifact after.
    outcome.results = scrubbed(outcome.results, project.secrets);
    if (keepsState) {
      const failed = outcome.interrupted || outcome.results.some((r) => r.status === 'error' || r.status === 'fail');
      let versions: Map<string, number> | undefined;
      if (adapter.relationVersions) {
        const upstream = [...upstreamRelations(manifest, outcome.results)];
        const found = await adapter.withSession((session) => adapter.relationVersions!(session, upstream.map(([, r]) => r))).catch(() => []);
        versions = new Map(upstream.flatMap(([name], i) => (found[i] === undefined ? [] : [[name, found[i]!] as [string, number]])));
      }
      const records = nodeRunRecords(manifest, outcome.results, versions);
      try {
        await adapter.withSession((session) => recordRunEnd(adapter, session, { runId, status: outcome!.interrupted ? 'interrupted' : failed ? 'error' : 'success', finishedAt: clock.now().toISOString() }, records), { invocationId: runId });
        if (project.file.budget) {
          // The run that takes the month's spend across the budget's alert_at raises the alert.
          const { budgetCheck, budgetConfig, costConfig, costOf } = await import('./history/report.js');
          const rates = costConfig(project.file);
          const event = await adapter.withSession((session) => budgetCheck(adapter, session, { runId, job: options.job, cost: costOf(records, rates) }, budgetConfig(project.file)!, rates, clock.now()));
          if (event) budgetEvents.push(event);
        }
      } catch (err) {
        // The target refused the run's record (a lost schema lock, a lost connection):
        // run_results.json still says what ran, so `etl retry` knows what to rerun.
        recordFailed = err;
      }
    }
    // The alerts code is loaded only when a result could raise one: a clean run without SLAs pays nothing.
    const mayAlert = project.alerts.length > 0 && outcome.results.some((r) => r.status === 'error' || r.status === 'fail' || r.status === 'warn' || r.adapter_response.schema_changes !== undefined || manifest.nodes[r.unique_id]?.config.sla !== undefined);
    if (mayAlert) alertEvents = await runAlerts(project, manifest, outcome.results, adapter, { runId, job: options.job, now: clock.now() });
  } finally {
    await adapter.close();
    await tracing?.finish(!outcome ? 'error' : outcome.interrupted ? 'interrupted' : outcome.results.some((r) => r.status === 'error' || r.status === 'fail') ? 'error' : 'success');
  }
  writeRunResults(project.targetPath, manifest, outcome.results, outcome.elapsedSeconds, { command: how.command, resource_types: resourceTypes, select: options.select, exclude: options.exclude, state: options.state, defer: options.defer, favor_state: options.favorState, ...(how.retriedRun ? { changes_of: how.retriedRun } : {}) }, runId, startedAt);
  clearRunStarted(project.targetPath);
  // A budget crossed is a cost_spike alert too (the BudgetAlertEvent is one), for the alerts that listen for it.
  const costSpikes = budgetEvents.filter(() => project.alerts.some((a) => a.on.includes('cost_spike')));
  const alerts = alertEvents.length || costSpikes.length ? await (await import('./alerts/index.js')).raiseAlerts(project, [...alertEvents, ...costSpikes]) : [];
  if (recordFailed !== undefined) throw recordFailed;
  const failed = outcome.interrupted || outcome.results.some((r) => r.status === 'error' || r.status === 'fail');
  for (const e of budgetEvents) warnings.push(e.message);
  return { manifest, results: outcome.results, elapsedSeconds: outcome.elapsedSeconds, interrupted: outcome.interrupted, warnings, exitCode: failed ? 1 : 0, alerts, costAlerts: budgetEvents };
}

/**
 * The alert events of a finished run (core/alerts/run-alerts.ts). The run
 * history is read only when a model with an SLA was not built by this run:
 * its last success in the history decides whether the SLA still holds.
 */
async function runAlerts(project: ProjectScan, manifest: Manifest, results: NodeResult[], adapter: Adapter, run: { runId: string; job?: string; now: Date }): Promise<import('./alerts/index.js').AlertEvent[]> {
  const [{ runAlertEvents, staleCandidates, staleSlaEvents }, { wantsAlert }] = await Promise.all([import('./alerts/run-alerts.js'), import('./alerts/index.js')]);
  const events = runAlertEvents(manifest, results, run);
  const stale = wantsAlert(project, 'sla_breach') ? staleCandidates(manifest, results) : [];
  if (stale.length) {
    try {
      // Each candidate's last success however long ago (one aggregate query), not just among the recent runs.
      const found = await adapter.withSession((s) => adapter.state.lastSuccesses(s, stale));
      const last = new Map<string, string | null>(stale.map((id) => [id, found.get(id) ?? null]));
      events.push(...staleSlaEvents(manifest, stale, last, run, run.now));
    } catch {
      // No history to read (a target that never ran): nothing to compare against.
    }
  }
  return events.filter((e) => wantsAlert(project, e.event));
}

/** `value` with every secret masked, wherever in it a string holds one. */
function scrubbed<T>(value: T, secrets: Secrets): T {
  return secrets.values.size ? (JSON.parse(redact(JSON.stringify(value), secrets)) as T) : value;
}

function eventTimeRange(options: RunCommandOptions): { start: string; end: string } {
  if (!options.eventTimeStart || !options.eventTimeEnd) {
    throw new ProjectError([{ message: '--event-time-start and --event-time-end go together', hint: 'e.g. --event-time-start 2024-01-01 --event-time-end 2024-02-01' }]);
  }
  for (const v of [options.eventTimeStart, options.eventTimeEnd]) {
    if (Number.isNaN(new Date(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v).getTime())) {
      throw new ProjectError([{ message: `--event-time: "${v}" is not a date or timestamp`, hint: 'write 2024-01-01 or 2024-01-01T06:00:00' }]);
    }
  }
  return { start: options.eventTimeStart, end: options.eventTimeEnd };
}

/** Reruns what failed or was skipped in the last run; microbatch models rerun only their failed batches. */
export async function retry(options: RunCommandOptions): Promise<RunSummary> {
  const project = scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env });
  const died = readRunStarted(project.targetPath);
  if (died) {
    // The last run died before its run_results.json: which of its nodes finished is unknown, so all of them run again.
    const summary = await execute(options, died.resource_types, { command: 'retry', ids: new Set(died.nodes), retriedRun: died.changes_of });
    summary.warnings.unshift(`the last run (${died.invocation_id}) did not finish: its ${died.nodes.length} node${died.nodes.length === 1 ? '' : 's'} ran again; changes it had committed to a Delta target were not applied twice`);
    return summary;
  }
  const last = readJsonIfExists<{ metadata?: { invocation_id?: string }; results: NodeResult[]; args?: { resource_types?: ResourceType[]; changes_of?: string } }>(path.join(project.targetPath, 'run_results.json'));
  if (!last) throw new ProjectError([{ message: 'etl retry: no previous run_results.json in target/', hint: 'retry reruns the failures of the last build, run, seed or test' }]);
  const ids = new Set<string>();
  const retryBatches = new Map<string, Array<[string, string]>>();
  for (const r of last.results) {
    if (r.status !== 'error' && r.status !== 'fail' && r.status !== 'skipped') continue;
    ids.add(r.unique_id);
    if (r.batch_results?.failed.length) retryBatches.set(r.unique_id, r.batch_results.failed);
  }
  const types = last.args?.resource_types ?? ['loader', 'seed', 'model', 'snapshot', 'test'];
  if (ids.size === 0) {
    return { manifest: (await compile(options)).manifest, results: [], elapsedSeconds: 0, interrupted: false, warnings: ['the last run had no failures; nothing to retry'], exitCode: 0, alerts: [] };
  }
  return execute(options, types, { command: 'retry', ids, retryBatches, retriedRun: last.args?.changes_of ?? last.metadata?.invocation_id });
}

/** Loaders, seeds, models, snapshots and tests in graph order; a failing test skips its model's children. */
export function build(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['loader', 'seed', 'model', 'snapshot', 'test'], { command: 'build' });
}

/** Loaders only: extract from the sources' systems and load their raw tables. */
export function extract(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['loader'], { command: 'extract' });
}

/** Snapshots only. */
export function snapshot(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['snapshot'], { command: 'snapshot' });
}

/** Data tests only, against what is already built. */
export function test(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['test'], { command: 'test' });
}

/** Models only. */
export function run(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['model'], { command: 'run' });
}

/** Seeds only. */
export function seed(options: RunCommandOptions): Promise<RunSummary> {
  return execute(options, ['seed'], { command: 'seed' });
}

/** Lists the selected nodes (what `etl ls` prints). */
export async function list(
  options: CompileOptions & SelectOptions & { resourceTypes?: ResourceType[]; breaking?: boolean; columns?: boolean },
): Promise<{ manifest: Manifest; ids: string[]; warnings: string[]; breaking?: Map<string, boolean> }> {
  const { project, manifest } = await compile(options);
  const { selected, warnings } = selectFromManifest(manifest, project.targetPath, options);
  const types = options.resourceTypes ? new Set(options.resourceTypes) : undefined;
  const ids = Object.keys(manifest.nodes).filter((id) => selected.has(id) && (!types || types.has(manifest.nodes[id]!.resource_type)));
  const breaking = options.breaking && !!options.state;
  if (!breaking && !options.columns) return { manifest, ids, warnings };
  // The bound schemas (core/analysis; cached in target/.etl) fill the manifest's columns;
  // models that do not bind are listed with the columns their yml declares.
  const models = ids.filter((id) => ['model', 'snapshot'].includes(manifest.nodes[id]!.resource_type));
  const [{ checkProject }, { breakingChanges }] = await Promise.all([import('./analysis/index.js'), import('./analysis/breaking.js')]);
  const check = await checkProject(manifest, { target: project.target, projectRoot: project.root, targetPath: project.targetPath, selected: options.columns ? undefined : models, allowMissingSources: true });
  if (!breaking) return { manifest, ids, warnings };
  // Against --state: whether each listed model's bound columns changed (core/analysis/breaking.ts).
  const state = readJsonIfExists<Manifest>(path.join(options.state!, 'manifest.json'))!;
  return { manifest, ids, warnings, breaking: breakingChanges(models, check.columns, state, dialectFor(project.target.type).canonicalType) };
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
  const adapter: Adapter = await createAdapter(project.target, project.root, { readOnly: true });
  await adapter.open();
  try {
    await attachExternalSources(adapter, manifest, project);
    const result = await adapter.withSession((s) => adapter.preview(s, sql, options.limit));
    return { ...result, node: nodeId };
  } catch (err) {
    throw new RunError(`show failed${nodeId ? ` for ${manifest.nodes[nodeId]!.name}` : ''}: ${(err as Error).message}`);
  } finally {
    await adapter.close();
  }
}

export interface FreshnessSummary {
  results: import('./data-tests/engine/freshness.js').FreshnessResult[];
  exitCode: 0 | 1;
  /** freshness_error alerts raised (etl.yml alerts:), delivered or not. */
  alerts: import('./alerts/index.js').AlertDelivery[];
}

/** `etl source freshness`: checks each source with freshness config; writes target/sources.json. */
export async function sourceFreshness(options: CompileOptions & { select?: string[]; now?: Date | string; job?: string }): Promise<FreshnessSummary> {
  const clock = runClock(options.now, options.env ?? process.env);
  const { checkFreshness, freshnessSources } = await import('./data-tests/engine/freshness.js');
  const { project, manifest, invocationId } = await compile(options);
  const wanted = (options.select ?? []).flatMap((s) => s.split(/\s+/)).filter(Boolean).map((s) => s.replace(/^source:/, ''));
  const sources = freshnessSources(manifest).filter(
    (s) => wanted.length === 0 || wanted.some((w) => w === s.source_name || w === `${s.source_name}.${s.name}`),
  );
  // Read only: no run lock (a build may be running) and nothing written to the target.
  const adapter = await createAdapter(project.target, project.root, { readOnly: true });
  await adapter.open();
  const started = performance.now();
  let results;
  try {
    results = await checkFreshness(adapter, sources, () => clock.now());
  } finally {
    await adapter.close();
  }
  results = scrubbed(results, project.secrets);
  writeSourcesJson(project.targetPath, results, (performance.now() - started) / 1000, invocationId);
  const failed = results.filter((r) => r.status === 'error' || r.status === 'runtime error');
  let alerts: FreshnessSummary['alerts'] = [];
  if (failed.length && project.alerts.some((a) => a.on.includes('freshness_error'))) {
    const [{ raiseAlerts }, { subjectOf }] = await Promise.all([import('./alerts/index.js'), import('./alerts/run-alerts.js')]);
    alerts = await raiseAlerts(
      project,
      failed.map((r) => {
        const source = manifest.sources[r.unique_id]!;
        const name = `${source.source_name}.${source.name}`;
        return {
          event: 'freshness_error' as const,
          run_id: invocationId,
          job: options.job ?? null,
          node: subjectOf({ ...source, name }),
          max_loaded_at: r.max_loaded_at,
          age_seconds: r.max_loaded_at_time_ago_in_s,
          error_after: r.criteria.error_after,
          message: r.error ? `source ${name}: ${r.error}` : `source ${name} was last loaded ${r.max_loaded_at_time_ago_in_s}s ago, over its error_after of ${r.criteria.error_after}`,
        };
      }),
    );
  }
  return { results, exitCode: failed.length ? 1 : 0, alerts };
}

/** `etl state show`: what etl_meta holds in the target. */
export async function stateShow(options: ProjectOptions): Promise<Record<string, QueryResult>> {
  const project = scanProject(options.projectDir, { target: options.target, vars: options.vars, env: options.env });
  // Read only: no run lock, and etl_meta is read, never created or migrated.
  const adapter = await createAdapter(project.target, project.root, { readOnly: true });
  await adapter.open();
  try {
    return await adapter.withSession(async (session) => {
      const state = await readState(adapter, session);
      return Object.fromEntries(Object.entries(state).map(([k, v]) => [k, { columns: v.columns, types: [], rows: v.rows }]));
    });
  } finally {
    await adapter.close();
  }
}

export type { Plan };
