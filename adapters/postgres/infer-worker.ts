// Runs inferCsvShape on a worker thread, so a seed's full type check uses
// the second core while the main thread streams the file to COPY.

import { parentPort, workerData } from 'node:worker_threads';
import { inferCsvShape } from './csv-types.js';

const { file, delimiter } = workerData as { file: string; delimiter?: string };
inferCsvShape(file, delimiter).then(
  (shape) => parentPort!.postMessage({ shape }),
  (err: Error) => parentPort!.postMessage({ error: err.message }),
);
