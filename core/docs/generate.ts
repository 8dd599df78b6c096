// `etl docs generate`: compiles the project and writes target/docs/ (and
// catalog.json, lineage.json). The main thread compiles and writes
// manifest.json and compiled/; the docs themselves (build.ts: the target's
// catalog and run history, column lineage, the site) are built on a worker
// thread (docs-worker.ts), started first and handed the rendered nodes as
// soon as the compiler has them, before its tests stage: the two halves take
// about as long on a large project, so the second core does one while the
// first does the other.

import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { compileUnwritten, type CompileOptions } from '../api.js';
import type { ManifestNode, ManifestSource } from '../compiler/manifest.js';
import { RunError } from '../errors.js';
import { costConfig } from '../history/cost.js';
import { scanProject } from '../project/load.js';
import { buildDocs, docsNode, packTests, type DocsBuilt, type DocsJob, type DocsRest } from './build.js';

export { dataScript, siteAssetsDir, writeSite } from './build.js';

export interface DocsGenerateOptions extends CompileOptions {
  /** Read the run history from the target (default true). */
  history?: boolean;
}

export type DocsGenerateResult = DocsBuilt;

export async function generateDocs(options: DocsGenerateOptions): Promise<DocsGenerateResult> {
  // Started first: the worker loads its modules while this thread reads the project.
  const docs = startDocs();
  try {
    const env = options.env ?? process.env;
    const scan = options.scan ?? scanProject(options.projectDir, { target: options.target, vars: options.vars, env });
    const invocationId = options.invocationId ?? randomUUID();
    // depends_on.nodes of each node as the worker got it: later stages may add to some.
    let sent: Map<string, number> | undefined;
    const start = (nodes: ManifestNode[], sources: Record<string, ManifestSource>) => {
      sent = new Map(nodes.map((n) => [n.unique_id, n.depends_on.nodes.length]));
      docs.start({
        project: { root: scan.root, target: scan.target, targetName: scan.targetName, targetPath: scan.targetPath },
        metadata: { project_name: scan.name, adapter_type: scan.target.type, project_root: scan.root },
        invocationId,
        history: options.history !== false,
        cost: costConfig(scan.file),
        nodes: nodes.map(docsNode),
        sources,
      });
    };
    const compiled = await compileUnwritten({ ...options, scan, invocationId }, { rendered: start });
    const { manifest } = compiled;
    // From the compile cache, nothing was rendered: the docs start now.
    if (!sent) start(Object.values(manifest.nodes).filter((n) => n.resource_type !== 'test'), manifest.sources);
    const writing = compiled.writeArtifacts();
    const tests: ManifestNode[] = [];
    const dependsOn: Record<string, string[]> = {};
    for (const n of Object.values(manifest.nodes)) {
      if (n.resource_type === 'test') tests.push(n);
      else if (n.depends_on.nodes.length !== sent!.get(n.unique_id)) dependsOn[n.unique_id] = n.depends_on.nodes;
    }
    docs.finish({ tests: packTests(tests), dependsOn });
    // Awaited together: the first failure is the command's, and no rejection goes unhandled.
    const [, built] = await Promise.all([writing, docs.built]);
    return built;
  } catch (err) {
    await docs.cancel();
    throw err;
  }
}

interface DocsRun {
  /** The SQL is rendered: the docs may start. */
  start(job: DocsJob): void;
  /** The compile succeeded: the docs may be written. */
  finish(rest: DocsRest): void;
  /** The compile failed: nothing is written; settles once the docs have stopped. */
  cancel(): Promise<void>;
  built: Promise<DocsBuilt>;
}

/** How long a cancelled docs worker may take to finish the catalog read or lineage in flight. */
const CANCEL_WAIT_MS = 30_000;

/** buildDocs on a worker thread when it is built beside this module (dist/), else here. */
function startDocs(): DocsRun {
  const workerFile = fileURLToPath(new URL('./docs-worker.js', import.meta.url));
  if (!existsSync(workerFile)) {
    let job!: (job: DocsJob) => void;
    let rest!: { resolve: (rest: DocsRest) => void; reject: (err: Error) => void };
    const jobGiven = new Promise<DocsJob>((resolve) => (job = resolve));
    const restGiven = new Promise<DocsRest>((resolve, reject) => (rest = { resolve, reject }));
    // Both awaited (rest by buildDocs, built by the caller) unless cancelled before.
    restGiven.catch(() => undefined);
    const built = jobGiven.then((j) => buildDocs(j, restGiven));
    built.catch(() => undefined);
    return { start: job, finish: rest.resolve, cancel: async () => rest.reject(new Error('cancelled')), built };
  }
  const worker = new Worker(workerFile);
  const built = new Promise<DocsBuilt>((resolve, reject) => {
    worker.once('message', (m: { built?: DocsBuilt; error?: string; runError?: boolean }) => {
      void worker.terminate();
      if (m.built) resolve(m.built);
      else reject(m.runError ? new RunError(m.error ?? 'docs generate failed') : new Error(m.error ?? 'docs generate failed'));
    });
    worker.once('error', reject);
    // After an answer this settles nothing: a promise settles once.
    worker.once('exit', (code) => reject(new Error(`the docs worker stopped (exit code ${code}) without an answer`)));
  });
  built.catch(() => undefined);
  // Cancel asks the worker to stop and waits for its answer (bounded) before
  // terminating it: terminating it inside a DuckDB call aborts the process.
  const cancel = async (): Promise<void> => {
    worker.postMessage({ cancel: true });
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, CANCEL_WAIT_MS)));
    await Promise.race([built.then(() => undefined, () => undefined), bound]);
    clearTimeout(timer);
    await worker.terminate();
  };
  return { start: (job) => worker.postMessage(job), finish: (rest) => worker.postMessage(rest), cancel, built };
}
