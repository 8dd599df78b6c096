// Runs projectLineage (column-lineage.ts) on a worker thread for `etl docs
// generate`, so tracing 10,000 models uses the second core while the main
// thread writes manifest.json and compiled/; writes target/lineage.json.
// Answers { json } (the file's text) or { error }.

import { parentPort, workerData } from 'node:worker_threads';
import type { BoundColumn } from './binder.js';
import type { Manifest } from '../compiler/manifest.js';
import { projectLineage, writeLineageArtifact, type ProjectLineageOptions } from './column-lineage.js';

const { manifest, columns, targetPath, options } = workerData as { manifest: Manifest; columns: Map<string, BoundColumn[]>; targetPath: string; options: ProjectLineageOptions };
projectLineage(manifest, columns, targetPath, options).then(
  (artifact) => parentPort!.postMessage({ json: writeLineageArtifact(targetPath, artifact) }),
  (err: Error) => parentPort!.postMessage({ error: err.message }),
);
