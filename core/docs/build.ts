// The docs site's own part of `etl docs generate`, from the rendered project
// to target/docs/: reads what the target knows (catalog and run history, over
// one read-only connection), traces column lineage (core/analysis), then,
// once the compile is done, splits it all for the site (split.ts) and writes
// target/docs/ (index.html, the front-end's assets built by
// core/docs/site/build.mjs into dist/docs-site/, and data/, see model.ts).
//
// generate.ts runs this on a worker thread (docs-worker.ts) from the moment
// the compiler has rendered every node's SQL, so it uses the second core
// while the main thread compiles the tests and writes manifest.json and
// compiled/. It writes nothing before the compile has succeeded (`DocsRest`
// arrives), so a project that fails to compile leaves target/ as it was.
//
// The folder is written beside the old one and swapped in, so a reader (or
// `docs serve`) sees the old site or the new one, never half of each.

import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BoundColumn } from '../analysis/binder.js';
import type { CatalogJson } from '../artifacts/catalog.js';
import { nodeResultFromJson } from '../artifacts/run-results.js';
import { writeFileAtomic } from '../compiler/artifacts.js';
import type { Manifest, ManifestNode, ManifestSource } from '../compiler/manifest.js';
import { RunError } from '../errors.js';
import type { ProjectScan } from '../project/load.js';
import { SHARD_SIZE } from './model.js';
import { CONFIG_KEYS, splitDocs, testKind, type CatalogFile, type DocsInputs, type LineageFile, type RunResultsFile, type SiteData, type SourcesFile } from './split.js';

/** What the docs need to start, as soon as the project's SQL is rendered. */
export interface DocsJob {
  /** The project's target: read for its catalog and run history, and target/ written. */
  project: Pick<ProjectScan, 'root' | 'target' | 'targetName' | 'targetPath'>;
  metadata: Pick<Manifest['metadata'], 'project_name' | 'adapter_type' | 'project_root'>;
  invocationId: string;
  /** Read the run history from the target. */
  history: boolean;
  /** etl.yml `cost:` (core/history/cost.ts costConfig), to price the runs shown. */
  cost: DocsInputs['cost'];
  /** The nodes that are not tests (models, seeds, snapshots, loaders), rendered, in the manifest's order, as docsNode gives them. */
  nodes: ManifestNode[];
  sources: Record<string, ManifestSource>;
}

/** What the docs need of the rest of the compile, sent once it has succeeded. */
export interface DocsRest {
  tests: DocsTests;
  /** depends_on.nodes of the nodes it changed for after they were rendered (a quarantined model's test inputs, a source's loader). */
  dependsOn: Record<string, string[]>;
}

/** The test nodes, column by column (entry i of each describes test i): tens of thousands of objects cost more to send to a worker. */
export interface DocsTests {
  ids: string[];
  names: string[];
  /** As testKind gives it: the generic test's name, 'unit' or 'singular'. */
  kinds: string[];
  columns: Array<string | null>;
  severities: string[];
  attached: Array<string | null>;
  /** depends_on.nodes of a test attached to no node (the site lists it on each), else 0. */
  dependsOn: Array<string[] | 0>;
}

export interface DocsBuilt {
  dir: string;
  nodes: number;
  warnings: string[];
}

/** The config keys the docs read: those a node page shows, and the lineage's and the catalog's. */
const DOCS_CONFIG_KEYS = new Set([...CONFIG_KEYS, 'materialized', 'enabled', 'contract', 'column_types', 'delimiter']);

/** A node with what the docs read of it (split.ts, the catalog, the lineage): about half the bytes to send to the worker. A field split.ts starts to read must be added here. */
export function docsNode(n: ManifestNode): ManifestNode {
  const config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(n.config)) if (DOCS_CONFIG_KEYS.has(k)) config[k] = v;
  const columns: ManifestNode['columns'] = {};
  for (const [k, c] of Object.entries(n.columns)) columns[k] = { name: c.name, description: c.description, data_type: c.data_type, constraints: c.constraints } as ManifestNode['columns'][string];
  const slim: Partial<ManifestNode> = {
    unique_id: n.unique_id,
    resource_type: n.resource_type,
    name: n.name,
    fqn: n.fqn,
    original_file_path: n.original_file_path,
    schema: n.schema,
    alias: n.alias,
    relation_name: n.relation_name,
    description: n.description,
    tags: n.tags,
    raw_code: n.raw_code,
    compiled_code: n.compiled_code,
    depends_on: { nodes: n.depends_on.nodes, macros: [] },
    config: config as ManifestNode['config'],
    columns,
  };
  return slim as ManifestNode;
}

export function packTests(tests: ManifestNode[]): DocsTests {
  const out: DocsTests = { ids: [], names: [], kinds: [], columns: [], severities: [], attached: [], dependsOn: [] };
  for (const t of tests) {
    out.ids.push(t.unique_id);
    out.names.push(t.name);
    out.kinds.push(testKind(t));
    out.columns.push(t.column_name ?? null);
    out.severities.push(t.config.severity ?? 'error');
    out.attached.push(t.attached_node ?? null);
    out.dependsOn.push(t.attached_node ? 0 : t.depends_on.nodes);
  }
  return out;
}

/** The test nodes of packTests again, with the fields split.ts reads. */
function unpackTests(t: DocsTests): ManifestNode[] {
  return t.ids.map((id, i) => {
    const kind = t.kinds[i]!;
    const test = {
      unique_id: id,
      resource_type: 'test',
      name: t.names[i]!,
      column_name: t.columns[i],
      attached_node: t.attached[i],
      test_metadata: kind === 'unit' || kind === 'singular' ? undefined : { name: kind },
      config: { materialized: kind === 'unit' ? 'unit_test' : 'test', severity: t.severities[i] },
      depends_on: { nodes: t.dependsOn[i] || [t.attached[i]!] },
    };
    return test as unknown as ManifestNode;
  });
}

export async function buildDocs(job: DocsJob, rest: Promise<DocsRest>): Promise<DocsBuilt> {
  const { project } = job;
  const target = project.targetPath;
  // Until the rest arrives, a manifest of the rendered nodes: all the catalog and the lineage read.
  const manifest = {
    metadata: job.metadata,
    nodes: Object.fromEntries(job.nodes.map((n) => [n.unique_id, n])),
    sources: job.sources,
  } as Manifest;
  const [{ readTarget }, { projectLineage, writeLineageArtifact }] = await Promise.all([import('./history.js'), import('../analysis/column-lineage.js')]);
  // One read-only connection: the catalog (engine types) and the run history.
  const read = await readTarget(project, manifest, job.invocationId, { history: job.history });
  // Column lineage from DuckDB's parse of the compiled SQL, with the catalog's columns where the
  // target has them (no bind: that is `etl compile --check`'s).
  const lineage = await projectLineage(manifest, catalogColumns(read.catalog), target, { derive: true });
  const { tests, dependsOn } = await rest;
  if (read.catalog) writeFileAtomic(path.join(target, 'catalog.json'), JSON.stringify(read.catalog, null, 2));
  writeLineageArtifact(target, lineage);
  for (const [id, nodes] of Object.entries(dependsOn)) if (manifest.nodes[id]) manifest.nodes[id].depends_on.nodes = nodes;
  for (const t of unpackTests(tests)) manifest.nodes[t.unique_id] = t;

  const warnings = [...read.warnings];
  const inputs: DocsInputs = {
    manifest,
    runResults: readRunResults(path.join(target, 'run_results.json'), warnings),
    catalog: read.catalog ?? readJson<CatalogFile>(path.join(target, 'catalog.json'), warnings),
    lineage: lineage as LineageFile,
    sources: readJson<SourcesFile>(path.join(target, 'sources.json'), warnings),
    history: read.history,
    cost: job.cost,
  };
  const data = splitDocs(inputs);
  const dir = path.join(target, 'docs');
  await writeSite(dir, data);
  return { dir, nodes: data.nodes.length, warnings };
}

/** The columns of each relation the catalog describes, in the engine's order. */
function catalogColumns(catalog: CatalogJson | undefined): Map<string, BoundColumn[]> {
  const out = new Map<string, BoundColumn[]>();
  for (const tables of [catalog?.nodes, catalog?.sources]) {
    for (const [id, t] of Object.entries(tables ?? {})) {
      out.set(id, Object.values(t.columns).sort((a, b) => a.index - b.index).map((c) => ({ name: c.name, type: c.type })));
    }
  }
  return out;
}

function readJson<T>(file: string, warnings: string[]): T | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    warnings.push(`${path.basename(file)} is not valid JSON (${(err as Error).message}); left out of the docs`);
    return undefined;
  }
}

/** run_results.json with each result as the runner reported it (rows and quarantined rows out of adapter_response). */
function readRunResults(file: string, warnings: string[]): RunResultsFile | undefined {
  const json = readJson<Omit<RunResultsFile, 'results'> & { results?: Array<Record<string, unknown>> }>(file, warnings);
  if (!json) return undefined;
  return { ...json, results: (json.results ?? []).map(nodeResultFromJson) };
}

/** Where `npm run build` put the site's assets (dist/docs-site), from this module in dist/ or in the sources. */
export function siteAssetsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    for (const candidate of [path.join(dir, 'docs-site'), path.join(dir, 'dist', 'docs-site')]) {
      if (existsSync(path.join(candidate, 'app.js'))) return candidate;
    }
    dir = path.dirname(dir);
  }
  throw new RunError('the docs site assets are missing (dist/docs-site/app.js)\n  hint: run npm run build in the etl checkout');
}

/** A data file: a classic script handing its payload to the page (file://-safe, unlike fetch). */
export function dataScript(key: string, value: unknown): string {
  return `etlDocs(${JSON.stringify(key)},${JSON.stringify(value)});\n`;
}

/** Node data files are written this many at a time (by libuv's thread pool). */
const WRITE_BATCH = 64;

export async function writeSite(dir: string, data: SiteData, assets = siteAssetsDir()): Promise<void> {
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'data', 'nodes'), { recursive: true });
  try {
    cpSync(assets, path.join(tmp, 'assets'), { recursive: true });
    // The stamp keeps a browser (or a static host's cache) from mixing two generations' files.
    const stamp = Date.parse(data.index.generated_at).toString(36);
    const html = readFileSync(path.join(assets, 'index.html'), 'utf8').replaceAll('__STAMP__', stamp).replaceAll('__PROJECT__', escapeHtml(data.index.project));
    writeFileSync(path.join(tmp, 'index.html'), html);
    rmSync(path.join(tmp, 'assets', 'index.html'));
    writeFileSync(path.join(tmp, 'data', 'index.js'), dataScript('index', data.index));
    writeFileSync(path.join(tmp, 'data', 'search.js'), dataScript('search', data.search));
    const shards = Math.ceil(data.nodes.length / SHARD_SIZE);
    for (let i = 0; i < shards; i += WRITE_BATCH) {
      const batch: Array<Promise<void>> = [];
      for (let k = i; k < Math.min(i + WRITE_BATCH, shards); k++) {
        batch.push(writeFile(path.join(tmp, 'data', 'nodes', `${k}.js`), dataScript(`s${k}`, data.nodes.slice(k * SHARD_SIZE, (k + 1) * SHARD_SIZE))));
      }
      await Promise.all(batch);
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new RunError(`Could not write ${dir}: ${(err as Error).message}\n  hint: make sure target/ is writable`);
  }
  const old = `${dir}.${process.pid}.old`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
  // Leftovers of a generate that was killed (not of one still running beside this one).
  for (const entry of readdirSync(path.dirname(dir))) {
    const m = /^docs\.(\d+)\.(tmp|old)$/.exec(entry);
    if (m && !isRunning(Number(m[1]))) rmSync(path.join(path.dirname(dir), entry), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
