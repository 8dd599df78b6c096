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
// A failed compile sends { cancel: true } instead of terminating this thread: a
// terminate() that lands inside a DuckDB call aborts the whole process
// (Napi::Error thrown on a native thread). Cancelled, buildDocs fails at its next
// await of job or rest, once the DuckDB call in flight has returned.
let cancel!: (err: Error) => void;
const cancelled = new Promise<never>((_, reject) => (cancel = reject));
cancelled.catch(() => undefined);
parentPort!.on('message', (m: unknown) => {
  if ((m as { cancel?: boolean } | null)?.cancel === true) cancel(new Error('cancelled: the compile failed'));
  else messages.shift()?.(m);
});
const job = Promise.race([new Promise<DocsJob>((resolve) => messages.push(resolve as (m: unknown) => void)), cancelled]);
const rest = Promise.race([new Promise<DocsRest>((resolve) => messages.push(resolve as (m: unknown) => void)), cancelled]);
// Handled here as well: buildDocs awaits rest only after its DuckDB reads, and a
// rejection unhandled until then would end this thread in the middle of them.
job.catch(() => undefined);
rest.catch(() => undefined);
// What buildDocs loads when it starts, loaded while the job is still being compiled.
// A cancelled worker answers only once these have loaded: terminated while
// DuckDB's native module initialises, the process aborts as well.
const loading = Promise.allSettled([import('./history.js'), import('../analysis/column-lineage.js')]);
job.then((j) => buildDocs(j, rest)).then(
  (built) => parentPort!.postMessage({ built }),
  async (err: Error) => {
    await loading;
    parentPort!.postMessage({ error: err.message, runError: err instanceof RunError });
  },
);
