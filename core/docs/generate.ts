// `etl docs generate`: compiles the project, reads what target/ knows of its
// last runs (run_results.json, sources.json, and over one connection to the
// target its catalog and run history), traces column lineage (core/analysis),
// splits it all for the site (split.ts) and writes target/docs/: index.html, the front-end's assets (built by
// core/docs/site/build.mjs into dist/docs-site/) and data/ (model.ts).
//
// The folder is written beside the old one and swapped in, so a reader (or
// `docs serve`) sees the old site or the new one, never half of each.

import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileUnwritten, type CompileOptions } from '../api.js';
import type { BoundColumn } from '../analysis/binder.js';
import type { CatalogJson } from '../artifacts/catalog.js';
import { nodeResultFromJson } from '../artifacts/run-results.js';
import { RunError } from '../errors.js';
import { costConfig } from '../history/cost.js';
import { SHARD_SIZE } from './model.js';
import { splitDocs, type CatalogFile, type DocsInputs, type LineageFile, type RunResultsFile, type SiteData, type SourcesFile } from './split.js';

export interface DocsGenerateOptions extends CompileOptions {
  /** Read the run history from the target (default true). */
  history?: boolean;
}

export interface DocsGenerateResult {
  dir: string;
  nodes: number;
  warnings: string[];
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

export async function generateDocs(options: DocsGenerateOptions): Promise<DocsGenerateResult> {
  const compiled = await compileUnwritten(options);
  const { project, invocationId } = compiled;
  const manifest = compiled.manifest;
  const target = project.targetPath;
  const [{ readTarget }, { projectLineageInWorker }] = await Promise.all([import('./history.js'), import('../analysis/column-lineage.js')]);
  // One read-only connection: target/catalog.json (engine types) and the run history.
  const read = await readTarget(project, manifest, invocationId, { history: options.history !== false });
  // Column lineage from DuckDB's parse of the compiled SQL, with the catalog's columns where the
  // target has them (no bind: that is `etl compile --check`'s), on a worker thread started
  // before this one writes manifest.json and compiled/; it writes target/lineage.json too.
  const tracing = projectLineageInWorker(manifest, catalogColumns(read.catalog), target, { derive: true });
  const writing = compiled.writeArtifacts();
  // Awaited together: the first failure is the command's, and no rejection goes unhandled.
  const [, lineage] = await Promise.all([writing, tracing]);
  const warnings = [...read.warnings];
  const inputs: DocsInputs = {
    manifest,
    runResults: readRunResults(path.join(target, 'run_results.json'), warnings),
    catalog: read.catalog ?? readJson<CatalogFile>(path.join(target, 'catalog.json'), warnings),
    lineage: lineage as LineageFile,
    sources: readJson<SourcesFile>(path.join(target, 'sources.json'), warnings),
    history: read.history,
    cost: costConfig(project.file),
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
