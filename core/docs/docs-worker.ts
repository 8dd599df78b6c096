// Runs buildDocs (build.ts) on a worker thread for `etl docs generate`: the
// target's catalog, column lineage, the site's data and target/docs/ use the
// second core while the main thread finishes the compile. Started before the
// compile, so that loading its modules overlaps it; the first message is the
// DocsJob (the rendered nodes), the second the DocsRest, sent once the compile
// has succeeded. Answers { built } or { error, runError }.

import { parentPort } from 'node:worker_threads';
import { RunError } from '../errors.js';
import { buildDocs, type DocsJob, type DocsRest } from './build.js';

const messages: Array<(m: unknown) => void> = [];
parentPort!.on('message', (m) => messages.shift()?.(m));
const job = new Promise<DocsJob>((resolve) => messages.push(resolve as (m: unknown) => void));
const rest = new Promise<DocsRest>((resolve) => messages.push(resolve as (m: unknown) => void));
// What buildDocs loads when it starts, loaded while the job is still being compiled.
void import('./history.js');
void import('../analysis/column-lineage.js');
job.then((j) => buildDocs(j, rest)).then(
  (built) => parentPort!.postMessage({ built }),
  (err: Error) => parentPort!.postMessage({ error: err.message, runError: err instanceof RunError }),
);
