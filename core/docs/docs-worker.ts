// Runs buildDocs (build.ts) on a worker thread for `etl docs generate`: the
// target's catalog, column lineage, the site's data and target/docs/ use the
// second core while the main thread finishes the compile. workerData is the
// DocsJob; the first message is the DocsRest, sent once the compile has
// succeeded. Answers { built } or { error, runError }.

import { parentPort, workerData } from 'node:worker_threads';
import { RunError } from '../errors.js';
import { buildDocs, type DocsJob, type DocsRest } from './build.js';

const rest = new Promise<DocsRest>((resolve) => parentPort!.once('message', resolve));
buildDocs(workerData as DocsJob, rest).then(
  (built) => parentPort!.postMessage({ built }),
  (err: Error) => parentPort!.postMessage({ error: err.message, runError: err instanceof RunError }),
);
