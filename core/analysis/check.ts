// Static analysis, the stage after compile: every selected model's compiled
// SQL bound, in graph order, against its inputs' schemas (seeds from their
// CSV, sources from the target's catalog or their yml types, upstream models
// from their own bound result) without reading or writing any data. Errors
// are collected as compile errors about the template; models that cannot be
// analysed are listed as unchecked with the reason, never failed. Bound
// schemas are cached by a hash of the SQL and of the inputs' schemas, so a
// warm run re-binds only what changed and its descendants.

import path from 'node:path';
import type { ColumnDef, Relation } from '../../adapters/adapter.js';
import { dialectFor } from '../../adapters/dialect.js';
import type { Diagnostic } from '../errors.js';
import type { Manifest, ManifestNode, ManifestSource } from '../compiler/manifest.js';
import { buildGraph, graphOfManifest, parentsThrough, reach, topologicalOrder, type DependencyGraph } from '../graph/graph.js';
import { ephemeralCteName } from '../compiler/ephemeral.js';
import { DuckDbBinder, mayBeDialectGap, type BoundColumn, type InlineInput, type InlineJob } from './binder.js';
import { quoteIdentifierAnsi as q } from '../../adapters/dialect.js';
import type { TargetBindOutcome, TargetBindRequest } from './postgres-binder.js';
import { lineColOf, templatePosition } from './template-position.js';
import { bindDiagnostic, type BindInput } from './diagnose.js';
import { seedColumnTypes } from '../../adapters/index.js';
import { BoundSchemaCache, hashOf } from './cache.js';
import { ymlPosition } from './yml-position.js';
import { deltaTypeOfDuckDb } from '../../adapters/delta/schema.js';

export type { BoundColumn } from './binder.js';

export interface CheckOptions {
  /** Model ids to check (their ancestors are bound too, for their schemas); default every model. */
  selected?: Iterable<string>;
  /** Reads columns of relations from the target's catalog (sources); absent when there is no target to read. */
  readCatalog?: (relations: Relation[]) => Promise<Map<string, ColumnDef[]>>;
  /** A source missing from the catalog is a warning, not an error (sources the run itself creates). */
  allowMissingSources?: boolean;
  /** Reuse bound schemas from target/.etl (default true). */
  cache?: boolean;
  /** Binds on the target itself (Postgres): what DuckDB cannot, and the engine's own result types. */
  bindOnTarget?: (request: TargetBindRequest) => Promise<Map<string, TargetBindOutcome> | undefined>;
}

export interface CheckResult {
  /** Bound columns of every node and source whose schema is known, by unique_id. */
  columns: Map<string, BoundColumn[]>;
  /** Errors, as compile errors (file:line:col). */
  errors: Diagnostic[];
  warnings: string[];
  /** Models that could not be analysed, with the reason. */
  unchecked: Array<{ unique_id: string; reason: string }>;
  /** Incremental models whose columns would change on their next run. */
  schemaChanges: Array<{ unique_id: string; added: string[]; removed: string[]; retyped: string[] }>;
  /** seconds: wall time; cpu_seconds: the process's CPU time meanwhile (DuckDB's threads included). */
  stats: { models: number; bound: number; cached: number; seconds: number; cpu_seconds: number };
}

type Status = { ok: true } | { ok: false; reason: string; root?: string };

const SNAPSHOT_COLUMNS: BoundColumn[] = [
  { name: 'etl_scd_id', type: 'VARCHAR' },
  { name: 'etl_updated_at', type: 'TIMESTAMP' },
  { name: 'etl_valid_from', type: 'TIMESTAMP' },
  { name: 'etl_valid_to', type: 'TIMESTAMP' },
];

/** The check stage: binds the compiled manifest; returns bound schemas and every problem found. */
export async function checkManifest(manifest: Manifest, targetPath: string, options: CheckOptions = {}): Promise<CheckResult> {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const engineType = (manifest.metadata.adapter_type as 'duckdb' | 'postgres' | 'delta') ?? 'duckdb';
  const dialect = dialectFor(engineType);
  // A DuckDB error that may only mean "not DuckDB's dialect": the engine's own SQL, not the model's error.
  const dialectGap = (message: string) => dialect.bindsOnServer && mayBeDialectGap(message);
  const root = manifest.metadata.project_root;
  const cache = new BoundSchemaCache(targetPath, `${manifest.metadata.adapter_type}:${manifest.metadata.target_name}`, options.cache !== false);
  const columns = new Map<string, BoundColumn[]>();
  const status = new Map<string, Status>();
  const errors: Diagnostic[] = [];
  const warnings: string[] = [];
  const unchecked: CheckResult['unchecked'] = [];
  const downstreamOf = new Map<string, string[]>();
  let bound = 0;
  let cached = 0;

  // What to bind: the selection and everything it reads.
  const isModel = (n: ManifestNode | undefined) => !!n && (n.resource_type === 'model' || n.resource_type === 'snapshot');
  const start = [...new Set(options.selected ?? Object.keys(manifest.nodes))].filter((id) => isModel(manifest.nodes[id]));
  const manifestGraph = graphOfManifest(manifest);
  const everyModel = !options.selected || start.length === Object.values(manifest.nodes).filter(isModel).length;
  const ids = everyModel ? withInputs(manifest, start) : [...reach(manifestGraph, start, 'up')].filter((id) => manifest.nodes[id] || manifest.sources[id]);
  // A compiled manifest has no cycle (the compiler refuses one).
  const order = topologicalOrder(buildGraph(ids, (id) => manifest.nodes[id]?.depends_on.nodes ?? [])).order ?? [];

  // Opened while the cache keys are hashed (DuckDB starts on another thread): a
  // warm run that re-binds one model does not wait for it afterwards. Its error,
  // if any, is the first binding's; unused (every model cached), it is closed
  // without being waited for.
  const opening = order.some((id) => isModel(manifest.nodes[id])) ? DuckDbBinder.open() : undefined;
  opening?.catch(() => undefined);
  let binderPromise: Promise<DuckDbBinder> | undefined;
  const binder = () => (binderPromise ??= opening ?? DuckDbBinder.open());
  try {
    await resolveSources(manifest, order, { columns, status, errors, warnings, cache, options, dialect, root });

    for (const id of order) {
      const node = manifest.nodes[id];
      if (!node || node.resource_type !== 'seed') continue;
      const csv = path.join(root, node.original_file_path);
      const seedOptions = { columnTypes: node.config.column_types ?? {}, delimiter: node.config.delimiter };
      const key = hashOf(['seed', node.checksum.checksum, JSON.stringify(seedOptions)]);
      const hit = cache.get(id, key);
      try {
        const cols = hit ?? (await seedColumnTypes(engineType, csv, seedOptions, async (sql) => (await binder()).describe(sql)));
        columns.set(id, cols);
        cache.set(id, key, cols);
        status.set(id, { ok: true });
      } catch (err) {
        errors.push({ file: node.original_file_path, line: 1, message: `cannot read the columns of seed ${node.name}: ${(err as Error).message.split('\n')[0]}` });
        status.set(id, { ok: false, reason: `seed ${node.name} cannot be read`, root: id });
      }
    }

    // Waves: a model's wave is one more than its deepest model input, so the
    // models of a wave are independent and bind in one batch.
    const waveOf = new Map<string, number>();
    const waves: string[][] = [];
    for (const id of order) {
      if (!isModel(manifest.nodes[id])) continue;
      const w = 1 + Math.max(0, ...manifest.nodes[id]!.depends_on.nodes.map((p) => waveOf.get(p) ?? 0));
      waveOf.set(id, w);
      (waves[w] ??= []).push(id);
    }
    // A schema's hash, once per node however many children read it, and once per
    // column list however many nodes share it (the cache and the binder share equal lists).
    const hashes = new Map<string, string>();
    const schemaHashes = new WeakMap<BoundColumn[], string>();
    const columnsHash = (id: string) => {
      let h = hashes.get(id);
      if (h === undefined) {
        const cols = columns.get(id);
        h = cols && schemaHashes.get(cols);
        if (h === undefined) {
          h = hashOf([JSON.stringify(cols ?? null)]);
          if (cols) schemaHashes.set(cols, h);
        }
        hashes.set(id, h);
      }
      return h;
    };
    // Each column list as stand-in types, once however many models read it.
    const standIns = new WeakMap<BoundColumn[], BoundColumn[]>();
    // A model's cache key: its SQL and its inputs' schemas.
    const keyOf = (n: ManifestNode) => hashOf([n.compiled_code, n.compiled_incremental_code ?? '', n.config.materialized, ...n.depends_on.nodes.map((p) => `${p}=${columnsHash(p)}`)]);
    const keys = new Map<string, string>();
    const deferred = new Set<string>();
    const fresh = new Set<string>();
    for (const wave of waves) {
      if (!wave) continue;
      const jobs: InlineJob[] = [];
      for (const id of wave) {
        const n = manifest.nodes[id]!;
        // An input that failed or is unknown leaves this model unchecked.
        const blocked = n.depends_on.nodes.map((p) => [p, status.get(p)] as const).find(([, s]) => !s || !s.ok);
        if (blocked) {
          const [p, s] = blocked;
          const reason = s && !s.ok ? (s.root && s.root !== p ? `upstream ${nameOf(manifest, s.root)} (through ${nameOf(manifest, p)}) cannot be checked` : `upstream ${nameOf(manifest, p)} cannot be checked`) : `upstream ${nameOf(manifest, p)} is unknown`;
          const rootId = s && !s.ok ? (s.root ?? p) : p;
          status.set(id, { ok: false, reason, root: rootId });
          unchecked.push({ unique_id: id, reason });
          if (downstreamOf.has(rootId)) downstreamOf.get(rootId)!.push(n.name);
          useDeclared(n, columns, status);
          continue;
        }
        if (n.depends_on.nodes.some((p) => deferred.has(p))) {
          // Reads a model only the target can bind: the target binds this one too.
          deferred.add(id);
          fresh.add(id);
          status.set(id, { ok: true });
          continue;
        }
        const key = keyOf(n);
        keys.set(id, key);
        const hit = cache.get(id, key);
        if (hit) {
          cached++;
          columns.set(id, hit);
          status.set(id, { ok: true });
          continue;
        }
        jobs.push({
          id,
          sql: n.compiled_code,
          inputs: inlinedInputs(manifest, manifestGraph, n, columns, dialect.bindingType, standIns),
          incrementalSql: n.relation_name ? n.compiled_incremental_code : undefined,
          self: n.relation_name ?? undefined,
          selfName: n.alias,
          // Postgres refuses such a union itself, with its own message.
          setOperations: !options.bindOnTarget,
        });
      }
      if (!jobs.length) continue;
      const b = await binder();
      bound += jobs.length;
      const outcomes = await b.bindInline(jobs);
      for (const job of jobs) {
        const id = job.id;
        const n = manifest.nodes[id]!;
        const outcome = outcomes.get(id)!;
        if ('columns' in outcome) {
          const cols = n.resource_type === 'snapshot' ? [...outcome.columns, ...snapshotColumns(n)] : outcome.columns;
          columns.set(id, cols);
          if (options.bindOnTarget) fresh.add(id);
          else cache.set(id, keys.get(id)!, cols);
          status.set(id, { ok: true });
          continue;
        }
        // Positions and names are those of the SQL as bound: inputs inlined as CTEs named after them.
        const inputs: BindInput[] = [...outcome.names].map(([relation, name]) => ({ label: labelOf(manifest, relation), relation: q(name), columns: job.inputs.find((i) => i.relation === relation)?.columns ?? [] }));
        // Ephemeral models read by the model are CTEs of its compiled SQL.
        for (const p of n.depends_on.nodes) {
          const e = manifest.nodes[p];
          if (e && !e.relation_name && columns.has(p)) inputs.push({ label: e.name, relation: q(ephemeralCteName(e.name)), columns: columns.get(p)! });
        }
        const outside = /^Catalog Error: (?:Table|View|Schema) with name (.+?) does not exist/.exec(outcome.error);
        if (options.bindOnTarget && (outside || dialectGap(outcome.error))) {
          // DuckDB does not speak this dialect (or lacks this relation): the target decides.
          deferred.add(id);
          fresh.add(id);
          status.set(id, { ok: true });
          continue;
        }
        if (outside || dialectGap(outcome.error)) {
          // Introspective SQL (the engine's own catalog, tables made outside the project) or another dialect: not an error of the model.
          const reason = outside ? `reads ${outside[1]}, which is not a ref or source of the project` : `DuckDB cannot bind its ${manifest.metadata.adapter_type} SQL: ${outcome.error.split('\n')[0]}`;
          status.set(id, { ok: false, reason: `${n.name} is unchecked`, root: id });
          unchecked.push({ unique_id: id, reason });
          downstreamOf.set(id, []);
          continue;
        }
        errors.push(bindDiagnostic({ file: n.original_file_path, template: n.raw_code, compiled: outcome.sql, message: outcome.error, inputs, hint: outcome.hint, offset: outcome.offset }));
        status.set(id, { ok: false, reason: `${n.name} has errors`, root: id });
        downstreamOf.set(id, []);
      }
    }
    if (options.bindOnTarget) {
      const onServer = await bindOnTarget(manifest, order, options.bindOnTarget, { columns, status, errors, unchecked, downstreamOf, fresh });
      // Cached under keys of the final (the server's) types of their inputs, as a warm run computes them;
      // models only the server could bind are cached too, so a warm run does not defer their descendants.
      for (const id of fresh) hashes.delete(id);
      for (const id of order) if (onServer.has(id)) cache.set(id, keyOf(manifest.nodes[id]!), columns.get(id)!);
      for (const id of deferred) {
        if (status.get(id)?.ok && !columns.has(id)) {
          // An ephemeral model DuckDB cannot bind is bound inside its consumers only.
          const reason = `${manifest.nodes[id]!.name} is ephemeral and DuckDB cannot bind it; it is checked inside its consumers`;
          unchecked.push({ unique_id: id, reason });
        }
      }
    }
  } finally {
    if (binderPromise) await binderPromise.then((b) => b.close(), () => undefined);
    else void opening?.then((b) => b.close(), () => undefined);
  }

  // Root errors name the models they leave unchecked.
  for (const e of errors) {
    const id = Object.keys(manifest.nodes).find((k) => manifest.nodes[k]!.original_file_path === e.file);
    const below = id ? downstreamOf.get(id) : undefined;
    if (below?.length) e.hint = `${e.hint ? `${e.hint}\n  ` : ''}left unchecked downstream: ${below.slice(0, 10).join(', ')}${below.length > 10 ? `, and ${below.length - 10} more` : ''}`;
  }
  for (const id of order) {
    const n = manifest.nodes[id];
    if (isModel(n) && status.get(id)?.ok) errors.push(...contractProblems(n!, columns.get(id)!, dialect.canonicalType, root));
    if (dialect.name === 'delta' && n && n.config.materialized !== 'ephemeral' && (isModel(n) || n.resource_type === 'seed') && columns.has(id) && !declaredSchemas.has(columns.get(id)!)) errors.push(...deltaTypeProblems(n, columns.get(id)!));
  }
  cache.write();
  return {
    columns,
    errors,
    warnings,
    unchecked,
    schemaChanges: [],
    stats: { models: order.filter((id) => isModel(manifest.nodes[id])).length, bound, cached, seconds: (performance.now() - started) / 1000, cpu_seconds: cpuSeconds(process.cpuUsage(cpuStarted)) },
  };
}

/**
 * Every model with the nodes and sources it reads: what reach() upwards gives
 * when every model is selected (their ancestors are models too, or seeds and
 * sources, which read nothing), without walking the graph.
 */
function withInputs(manifest: Manifest, models: string[]): string[] {
  const ids = new Set(models);
  for (const id of models) for (const p of manifest.nodes[id]!.depends_on.nodes) if (manifest.nodes[p] || manifest.sources[p]) ids.add(p);
  return [...ids];
}

function cpuSeconds(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6;
}

function nameOf(manifest: Manifest, id: string): string {
  const n = manifest.nodes[id];
  if (n) return n.name;
  const s = manifest.sources[id];
  return s ? `${s.source_name}.${s.name}` : id;
}

function relationOf(manifest: Manifest, id: string): string | null {
  return manifest.nodes[id]?.relation_name ?? manifest.sources[id]?.relation_name ?? null;
}

/** Schemas taken from a yml's data_types (in the user's spelling), not bound by DuckDB. */
const declaredSchemas = new WeakSet<BoundColumn[]>();

/** A model that cannot be bound but declares every column's data_type still gives its children a schema. */
function useDeclared(n: ManifestNode, columns: Map<string, BoundColumn[]>, status: Map<string, Status>): boolean {
  const declared = Object.values(n.columns);
  if (!declared.length || declared.some((c) => !c.data_type)) return false;
  const schema = declared.map((c) => ({ name: c.name, type: c.data_type! }));
  declaredSchemas.add(schema);
  columns.set(n.unique_id, schema);
  status.set(n.unique_id, { ok: true });
  return true;
}

/** The relations a model's compiled SQL names (through inlined ephemeral models too), with their columns as DuckDB types. */
function inlinedInputs(manifest: Manifest, graph: DependencyGraph, n: ManifestNode, columns: Map<string, BoundColumn[]>, standInType: (t: string) => string, standIns: WeakMap<BoundColumn[], BoundColumn[]>): InlineInput[] {
  const out = new Map<string, InlineInput>();
  // Through ephemeral inputs (no relation of their own) to what they read.
  for (const p of parentsThrough(graph, n.unique_id, (id) => !!manifest.nodes[id] && !manifest.nodes[id]!.relation_name)) {
    const node = manifest.nodes[p];
    const relation = relationOf(manifest, p);
    if (!relation || out.has(relation) || !columns.has(p)) continue;
    const name = node ? node.alias : manifest.sources[p]!.identifier;
    const bound = columns.get(p)!;
    let cols = standIns.get(bound);
    if (!cols) standIns.set(bound, (cols = bound.map((c) => ({ name: c.name, type: standInType(c.type) }))));
    out.set(relation, { relation, name, columns: cols });
    // Older versions of the input ({{ref "x" version=N}} on a Delta target, dialect.versionedRelation) have its columns.
    const schema = node ? node.schema : manifest.sources[p]!.schema;
    for (const versioned of versionedNames(n.compiled_code, schema, name)) out.set(versioned.relation, { relation: versioned.relation, name: versioned.name, columns: cols });
  }
  return [...out.values()];
}

/** `"schema"."name@v12"` / `"schema"."name@<timestamp>"` relations of schema.name that the SQL reads. */
function versionedNames(sql: string, schema: string, name: string): Array<{ relation: string; name: string }> {
  if (!sql.includes('@')) return [];
  const q = (s: string) => s.replace(/"/g, '""').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`"${q(schema)}"\\s*\\.\\s*"(${q(name)}@[^"]+)"`, 'g');
  return [...new Map([...sql.matchAll(re)].map((m) => [m[0], { relation: m[0], name: m[1]! }])).values()];
}

/** What a user calls the relation the compiled SQL names. */
function labelOf(manifest: Manifest, relation: string): string {
  const n = Object.values(manifest.nodes).find((x) => x.relation_name === relation);
  if (n) return n.name;
  const s = Object.values(manifest.sources).find((x) => x.relation_name === relation);
  return s ? `${s.source_name}.${s.name}` : relation;
}

interface SourceContext {
  columns: Map<string, BoundColumn[]>;
  status: Map<string, Status>;
  errors: Diagnostic[];
  warnings: string[];
  cache: BoundSchemaCache;
  options: CheckOptions;
  dialect: ReturnType<typeof dialectFor>;
  root: string;
}

/** Sources' columns: the target's catalog (cached in target/.etl), else the yml's data_types. */
async function resolveSources(manifest: Manifest, order: string[], ctx: SourceContext): Promise<void> {
  const sources = order.map((id) => manifest.sources[id]).filter((s): s is ManifestSource => !!s);
  if (!sources.length) return;
  const key = (s: ManifestSource) => `catalog:${s.schema}.${s.identifier}`;
  // Read from the target whenever it can be (a source's columns change outside the project);
  // the copy in target/.etl stands in when it cannot (a locked file, a server down).
  if (ctx.options.readCatalog) {
    const found = await ctx.options.readCatalog(sources.map((s) => ({ schema: s.schema, name: s.identifier })));
    if (found.size) {
      for (const s of sources) {
        const cols = found.get(`${s.schema}.${s.identifier}`);
        if (cols?.length) ctx.cache.setCatalog(key(s), cols);
        else ctx.cache.deleteCatalog(key(s));
      }
    }
  }
  for (const s of sources) {
    const fromCatalog = ctx.cache.catalog(key(s));
    const declared = Object.values(s.columns);
    if (fromCatalog) ctx.columns.set(s.unique_id, fromCatalog);
    else if (declared.length && declared.every((c) => c.data_type)) ctx.columns.set(s.unique_id, declared.map((c) => ({ name: c.name, type: c.data_type! })));
    if (ctx.columns.has(s.unique_id)) {
      ctx.status.set(s.unique_id, { ok: true });
      continue;
    }
    const where = ymlPosition(ctx.root, s.original_file_path, ['sources', s.source_name, s.name]);
    const message = `source ${s.source_name}.${s.name} (${s.relation_name}) is not in the target's catalog`;
    const hint = 'load it first, or declare its columns with data_type in the yml; --no-check-sources makes this a warning for sources the run itself creates';
    // A source with a loader is created by the run itself (its loader runs first).
    if (ctx.options.allowMissingSources || !ctx.options.readCatalog || s.loaded_by) {
      ctx.warnings.push(`${s.original_file_path}:${where.line}: ${message}; models reading it are unchecked`);
    } else ctx.errors.push({ file: s.original_file_path, line: where.line, col: where.col, message, hint });
    ctx.status.set(s.unique_id, { ok: false, reason: `source ${s.source_name}.${s.name} is not in the catalog`, root: s.unique_id });
  }
}

/** A contract whose declared columns or types disagree with the bound ones. */
function contractProblems(n: ManifestNode, bound: BoundColumn[], canonical: (t: string) => string, root: string): Diagnostic[] {
  if (!n.config.contract?.enforced) return [];
  const out: Diagnostic[] = [];
  const file = n.patch_path ?? n.original_file_path;
  const byName = new Map(bound.map((c) => [c.name.toLowerCase(), c]));
  const declared = Object.values(n.columns);
  const declaredNames = new Set(declared.map((c) => c.name.toLowerCase()));
  for (const c of declared) {
    const pos = n.patch_path ? ymlPosition(root, n.patch_path, ['models', n.name, c.name]) : { line: 1, col: undefined };
    const b = byName.get(c.name.toLowerCase());
    if (!b) out.push({ file, line: pos.line, col: pos.col, message: `contract of ${n.name}: column "${c.name}" is declared but the query does not return it`, hint: `the query returns: ${bound.map((x) => x.name).join(', ')}` });
    else if (c.data_type && canonical(c.data_type) !== canonical(b.type)) {
      out.push({ file, line: pos.line, col: pos.col, message: `contract of ${n.name}: column "${c.name}" is declared ${c.data_type} but the query returns ${b.type}`, hint: `cast it in ${n.original_file_path} (cast(${c.name} as ${c.data_type})) or declare data_type: ${b.type.toLowerCase()}` });
    }
  }
  const extra = bound.filter((b) => !declaredNames.has(b.name.toLowerCase()));
  if (extra.length) {
    const pos = n.patch_path ? ymlPosition(root, n.patch_path, ['models', n.name]) : { line: 1, col: undefined };
    out.push({ file, line: pos.line, col: pos.col, message: `contract of ${n.name}: the query returns undeclared column${extra.length > 1 ? 's' : ''} ${extra.map((x) => `"${x.name}"`).join(', ')}`, hint: 'declare them under columns:, or leave them out of the select' });
  }
  return out;
}

/**
 * A Delta target's tables can hold only Delta's types: a column of another
 * type (a time, an interval, a union) is an error of the model here, naming
 * the column, rather than a failed write once the run reaches it.
 */
function deltaTypeProblems(n: ManifestNode, bound: BoundColumn[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const c of bound) {
    try {
      deltaTypeOfDuckDb(c.type, c.name);
    } catch (err) {
      // At the column's alias when the SQL names it (`as gap`), else the model's first line.
      const alias = new RegExp(`\\bas\\s+"?${c.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?\\b`, 'i').exec(n.raw_code);
      const pos = alias ? lineColOf(n.raw_code, alias.index) : { line: 1, col: undefined };
      out.push({ file: n.original_file_path, line: pos.line, col: pos.col, message: `${n.name}: ${(err as Error).message.split('\n')[0]}`, hint: `cast ${c.name} in ${n.original_file_path} to a type a Delta table holds` });
    }
  }
  return out;
}

function snapshotColumns(n: ManifestNode): BoundColumn[] {
  return [...SNAPSHOT_COLUMNS, ...(n.config.hard_deletes === 'new_record' ? [{ name: 'etl_is_deleted', type: 'BOOLEAN' }] : [])];
}

/**
 * The same columns as select items computed as the snapshot computes them
 * (adapters/sql-snapshot.ts: an md5 text, timestamps, a boolean), for an
 * engine that names their types itself (the Postgres server binding a
 * snapshot: a model reading etl_valid_to binds against them too).
 */
function snapshotColumnsSql(n: ManifestNode): string {
  const timestamps = ['etl_updated_at', 'etl_valid_from', 'etl_valid_to'].map((c) => `cast(null as timestamp) as ${c}`);
  return [`md5('') as etl_scd_id`, ...timestamps, ...(n.config.hard_deletes === 'new_record' ? ['false as etl_is_deleted'] : [])].join(', ');
}

interface TargetContext {
  columns: Map<string, BoundColumn[]>;
  status: Map<string, Status>;
  errors: Diagnostic[];
  unchecked: CheckResult['unchecked'];
  downstreamOf: Map<string, string[]>;
  /** Models bound in DuckDB this run, or left to the target. */
  fresh: Set<string>;
}

/**
 * The target binds what DuckDB could not and gives its own result types for
 * what DuckDB bound this run (cached models already have them). Errors found
 * only there are errors of the model, at the position the server names.
 */
async function bindOnTarget(manifest: Manifest, order: string[], bind: NonNullable<CheckOptions['bindOnTarget']>, ctx: TargetContext): Promise<Set<string>> {
  const onServer = new Set<string>();
  const pass = order.filter((id) => ctx.fresh.has(id) && ctx.status.get(id)?.ok && manifest.nodes[id]!.relation_name);
  if (!pass.length) return onServer;
  const inPass = new Set(pass);
  // The models of the pass a model reads, directly or through ephemeral models.
  const passInputs = (id: string): string[] => {
    const out = new Set<string>();
    const visit = (ids: string[]) => {
      for (const p of ids) {
        if (inPass.has(p)) out.add(p);
        else if (manifest.nodes[p] && !manifest.nodes[p]!.relation_name) visit(manifest.nodes[p]!.depends_on.nodes);
      }
    };
    visit(manifest.nodes[id]!.depends_on.nodes);
    return [...out];
  };
  const graph = buildGraph(order, (id) => manifest.nodes[id]?.depends_on.nodes ?? []);
  const tables = [...reach(graph, pass, 'up')]
    .filter((id) => !inPass.has(id) && ctx.columns.has(id) && (manifest.sources[id] || manifest.nodes[id]?.relation_name))
    .map((id) => ({ relation: relationOf(manifest, id)!, columns: ctx.columns.get(id)! }));
  const results = await bind({
    tables,
    models: pass.map((id) => {
      const n = manifest.nodes[id]!;
      return { id, relation: n.relation_name!, sql: n.compiled_code, incrementalSql: n.compiled_incremental_code, inputs: passInputs(id), extraColumns: n.resource_type === 'snapshot' ? snapshotColumnsSql(n) : undefined };
    }),
  });
  if (!results) {
    // The target cannot be reached: DuckDB's types stand; what only the target can bind is unchecked.
    for (const id of pass.filter((p) => !ctx.columns.has(p))) ctx.unchecked.push({ unique_id: id, reason: 'only the target can bind it, and the target cannot be reached' });
    return onServer;
  }
  for (const id of pass) {
    const n = manifest.nodes[id]!;
    const r = results.get(id);
    if (r && 'columns' in r) {
      ctx.columns.set(id, r.columns);
      onServer.add(id);
      continue;
    }
    if (!r || 'skipped' in r) {
      const reason = r?.skipped ?? 'not bound on the target';
      ctx.status.set(id, { ok: false, reason, root: id });
      ctx.unchecked.push({ unique_id: id, reason });
      continue;
    }
    const sql = r.incremental ? n.compiled_incremental_code! : n.compiled_code;
    const pos = r.offset === undefined ? { line: 1, col: undefined } : templatePosition(n.raw_code, sql, r.offset);
    ctx.errors.push({ file: n.original_file_path, line: pos.line, col: pos.col, message: `${r.error.split('\n')[0]} (${manifest.metadata.adapter_type})`, hint: r.hint });
    ctx.status.set(id, { ok: false, reason: `${n.name} has errors`, root: id });
    ctx.downstreamOf.set(id, []);
    for (const c of pass.filter((c) => results.get(c) && 'skipped' in results.get(c)! && reach(graph, [c], 'up').has(id))) ctx.downstreamOf.get(id)!.push(manifest.nodes[c]!.name);
  }
  return onServer;
}
