// Writes and reads the artifacts in target/: manifest.json, compiled/**.sql,
// run_results.json, and the compile cache that lets an unchanged project skip
// compiling altogether (keyed by a hash of every input file, the target, vars
// and the environment variables templates read).

import { createHash, hash as oneShotHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Manifest, ManifestNode } from './manifest.js';
import { BUILD_ID } from './version.js';
import { manifestFromJson, manifestJsonEntries, manifestLayoutProblem } from '../artifacts/manifest-json.js';
import { RunError } from '../errors.js';
import { Worker } from 'node:worker_threads';
import { open } from 'node:fs/promises';

const CACHE_DIR = '.etl';

interface CompileCache {
  etl_version: string;
  fingerprint: string;
  /** Env var name -> sha256 of its value (or null when unset) at compile time. */
  env: Record<string, string | null>;
  /** Files read that are not project files (unit-test fixtures) -> sha256 of their contents. */
  files?: Record<string, string | null>;
  /** The manifest.json this compile wrote. */
  manifest?: { size: number; mtimeMs: number; nodes: number };
  format: boolean;
}

function hashValue(v: string | undefined): string | null {
  return v === undefined ? null : createHash('sha256').update(v).digest('hex');
}

/** Writes `text` atomically: a reader sees the old file or the new one. */
export function writeFileAtomic(file: string, text: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export interface CachedManifest {
  nodeCount: number;
  /** Reads manifest.json (tens of MB on large projects): only when a command needs it. */
  load(): Manifest;
}

/** The manifest of the last compile, if nothing it depends on has changed since. */
export function readCachedManifest(targetPath: string, compiledRoot: string, fingerprint: string, env: NodeJS.ProcessEnv, format: boolean): CachedManifest | undefined {
  const cacheFile = path.join(targetPath, CACHE_DIR, 'compile.json');
  const manifestFile = path.join(targetPath, 'manifest.json');
  if (!existsSync(cacheFile) || !existsSync(manifestFile) || !existsSync(compiledRoot)) return undefined;
  try {
    const cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as CompileCache;
    if (cache.etl_version !== BUILD_ID || cache.fingerprint !== fingerprint || cache.format !== format) return undefined;
    for (const [name, hash] of Object.entries(cache.env)) if (hashValue(env[name]) !== hash) return undefined;
    for (const [file, hash] of Object.entries(cache.files ?? {})) if (hashFile(file) !== hash) return undefined;
    // manifest.json must be the one this compile wrote.
    const stat = statSync(manifestFile);
    if (!cache.manifest || stat.size !== cache.manifest.size || stat.mtimeMs !== cache.manifest.mtimeMs) return undefined;
    let manifest: Manifest | undefined;
    return { nodeCount: cache.manifest.nodes, load: () => (manifest ??= readManifestJson(manifestFile)!) };
  } catch {
    return undefined;
  }
}

function hashFile(file: string): string | null {
  return existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : null;
}

export function writeCompileCache(targetPath: string, fingerprint: string, envRead: string[], env: NodeJS.ProcessEnv, format: boolean, nodes: number, files: string[] = []): void {
  const stat = statSync(path.join(targetPath, 'manifest.json'));
  const cache: CompileCache = {
    manifest: { size: stat.size, mtimeMs: stat.mtimeMs, nodes },
    etl_version: BUILD_ID,
    fingerprint,
    env: Object.fromEntries(envRead.map((n) => [n, hashValue(env[n])])),
    files: Object.fromEntries(files.map((f) => [f, hashFile(f)])),
    format,
  };
  writeFileAtomic(path.join(targetPath, CACHE_DIR, 'compile.json'), JSON.stringify(cache));
}

/**
 * Gives the manifest.json of a cached compile the invocation id and time of
 * this invocation, in place: the values have a fixed length (a UUID, an ISO
 * time), so their bytes near the start of the file are overwritten and the
 * rest (tens of MB on a large project) is not rewritten. The compile cache
 * then records the file as it is now.
 */
export function stampManifest(targetPath: string, invocationId: string, generatedAt: string): boolean {
  const file = path.join(targetPath, 'manifest.json');
  const cacheFile = path.join(targetPath, CACHE_DIR, 'compile.json');
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r+');
    const head = Buffer.alloc(4096);
    const n = readSync(fd, head, 0, head.length, 0);
    const text = head.subarray(0, n).toString('latin1');
    const patches: Array<[string, string]> = [
      ['"invocation_id":"', invocationId],
      ['"generated_at":"', generatedAt],
      ['"invocation_started_at":"', generatedAt],
    ];
    const writes: Array<[number, string]> = [];
    for (const [key, value] of patches) {
      const at = text.indexOf(key);
      if (at < 0) return false;
      const start = at + key.length;
      if (text.indexOf('"', start) - start !== value.length) return false;
      writes.push([start, value]);
    }
    for (const [start, value] of writes) writeSync(fd, Buffer.from(value, 'latin1'), 0, value.length, start);
    closeSync(fd);
    fd = undefined;
    const cache = JSON.parse(readFileSync(cacheFile, 'utf8')) as CompileCache;
    const stat = statSync(file);
    cache.manifest = { size: stat.size, mtimeMs: stat.mtimeMs, nodes: cache.manifest?.nodes ?? 0 };
    writeFileAtomic(cacheFile, JSON.stringify(cache));
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Serialised text is encoded into buffers of this many bytes, each handed to the file system when full. */
const MANIFEST_PIECE = 1 << 21;
const PIECES_IN_FLIGHT = 4;

/**
 * Writes manifest.json atomically (a temporary file renamed into place), the
 * same bytes as JSON.stringify(manifest). On a large project the manifest is
 * tens of MB: it is serialised node by node, each node's text encoded
 * straight into a buffer, and each full buffer is handed to libuv's thread
 * pool at its own offset, so the kernel copies one piece while the main
 * thread serialises the next, and no string of the whole file (or of a
 * piece) is ever built.
 */
export async function writeManifest(targetPath: string, manifest: Manifest): Promise<void> {
  await writeJsonStreamed(targetPath, 'manifest.json', manifestJsonEntries(manifest));
}

/**
 * Writes `name` in targetPath from top-level entries, each map serialised
 * entry by entry (through `convert`, when given): the same bytes as
 * JSON.stringify of the object they make.
 */
export async function writeJsonStreamed(targetPath: string, name: string, entries: Iterable<[string, unknown, ((value: unknown) => unknown)?]>): Promise<void> {
  const file = path.join(targetPath, name);
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w');
  const writes: Array<Promise<unknown>> = [];
  // A few buffers, each reused once its write is done: a fresh one per piece made V8 count
  // tens of MB of new external memory, and run full collections of the whole heap for it.
  const inFlight: Array<Promise<Buffer>> = [];
  let allocated = 1;
  let piece: Buffer | undefined = Buffer.allocUnsafe(MANIFEST_PIECE);
  let used = 0;
  let offset = 0;
  const writeAt = <T>(bytes: Buffer, length: number, value: T): Promise<T> => {
    const written = handle.write(bytes, 0, length, offset).then(() => value);
    writes.push(written);
    offset += length;
    return written;
  };
  const flush = () => {
    if (!piece || used === 0) return;
    inFlight.push(writeAt(piece, used, piece));
    used = 0;
    piece = allocated < PIECES_IN_FLIGHT ? (allocated++, Buffer.allocUnsafe(MANIFEST_PIECE)) : undefined;
  };
  const put = (text: string) => {
    // A UTF-16 unit takes at most 3 bytes in UTF-8 (a surrogate pair 4 for 2 units).
    if (piece && used + text.length * 3 <= MANIFEST_PIECE) {
      used += piece.write(text, used);
      return;
    }
    flush();
    if (piece && text.length * 3 <= MANIFEST_PIECE) used += piece.write(text, used);
    else void writeAt(Buffer.from(text, 'utf8'), Buffer.byteLength(text, 'utf8'), undefined); // longer than a piece, or every piece in flight
  };
  try {
    put('{');
    let firstKey = true;
    for (const [key, value, convert] of entries) {
      if (value === undefined) continue; // as JSON.stringify does
      put(`${firstKey ? '' : ','}${JSON.stringify(key)}:`);
      firstKey = false;
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        // nodes, parent_map, child_map...: one entry at a time.
        put('{');
        let first = true;
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          const json = JSON.stringify(convert && v !== undefined ? convert(v) : v) as string | undefined;
          if (json === undefined) continue; // undefined, a function: left out, as JSON.stringify does
          put(`${first ? '' : ','}${JSON.stringify(k)}:${json}`);
          first = false;
          // Every buffer handed over: wait for the oldest write, and reuse its buffer.
          if (!piece) piece = await inFlight.shift();
        }
        put('}');
      } else {
        put(JSON.stringify(value));
      }
    }
    put('}');
    flush();
    await Promise.all(writes);
  } catch (err) {
    await Promise.allSettled(writes);
    await handle.close();
    rmSync(tmp, { force: true });
    throw err;
  }
  await handle.close();
  renameSync(tmp, file);
}

/**
 * Writes target/compiled/**.sql; `transform` may pretty-print. A file whose
 * content is what the last compile wrote is not written again: on a large
 * project, file writes are most of a compile after a small change.
 *
 * The returned promise settles when every file is written (see writeFiles);
 * only then is the record of what was written saved.
 */
export async function writeCompiledFiles(
  projectRoot: string,
  targetPath: string,
  manifest: Manifest,
  transform?: (sql: string) => string,
  include: (node: ManifestNode) => boolean = () => true,
): Promise<number> {
  const recordFile = path.join(targetPath, CACHE_DIR, 'compiled-files.json');
  let previous: Record<string, string> = {};
  try {
    if (existsSync(recordFile)) previous = JSON.parse(readFileSync(recordFile, 'utf8')) as Record<string, string>;
  } catch {
    previous = {};
  }
  const record: Record<string, string> = { ...previous };
  let recordChanged = false;
  const dirs = new Set<string>();
  const pending: Array<[file: string, sql: string]> = [];
  for (const node of Object.values(manifest.nodes)) {
    if (!node.compiled_path || !include(node)) continue;
    const file = path.join(projectRoot, node.compiled_path);
    const raw = transform ? transform(node.compiled_code) : node.compiled_code;
    const sql = raw.endsWith('\n') ? raw : `${raw}\n`;
    const hash = oneShotHash('sha1', sql, 'base64');
    if (previous[node.compiled_path] !== hash) recordChanged = true;
    record[node.compiled_path] = hash;
    if (previous[node.compiled_path] === hash && existsSync(file)) continue;
    const dir = path.dirname(file);
    if (!dirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      dirs.add(dir);
    }
    pending.push([file, sql]);
  }
  await writeFiles(pending);
  if (recordChanged || !existsSync(recordFile)) writeFileAtomic(recordFile, JSON.stringify(record));
  return pending.length;
}

function writeError(file: string, message: string): RunError {
  return new RunError(`Could not write ${file}: ${message}\n  hint: make sure the target folder is writable and nothing else is at that path (etl clean removes target/)`);
}

/** Below this many files, a worker's start-up costs more than it saves. */
const WORKER_MIN_FILES = 500;

/** Runs on the worker: plain CommonJS, so it works from dist/ and from the TypeScript sources alike. */
const WRITER_SOURCE = `
const { writeFileSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
let file;
try {
  for (const [f, text] of workerData) { file = f; writeFileSync(f, text); }
  parentPort.postMessage({ ok: true });
} catch (err) {
  parentPort.postMessage({ error: String(err && err.message || err), file });
}`;

/**
 * Creating thousands of files is mostly kernel time: a worker thread does it
 * on the second core while the main thread goes on (the caller serialises the
 * manifest meanwhile). Few files are written here and now.
 */
async function writeFiles(files: Array<[file: string, text: string]>): Promise<void> {
  if (files.length < WORKER_MIN_FILES) {
    for (const [file, text] of files) {
      try {
        writeFileSync(file, text);
      } catch (err) {
        throw writeError(file, (err as Error).message);
      }
    }
    return;
  }
  // Started before this function first yields: the caller's synchronous work runs meanwhile.
  return new Promise((resolve, reject) => {
    // execArgv: [] so the source is read as CommonJS even when the parent runs with --input-type=module.
    const worker = new Worker(WRITER_SOURCE, { eval: true, workerData: files, execArgv: [] });
    worker.once('message', (m: { ok?: boolean; error?: string; file?: string }) => {
      void worker.terminate();
      if (m.ok) resolve();
      else reject(writeError(m.file ?? 'target/compiled', m.error ?? 'unknown error'));
    });
    worker.once('error', reject);
  });
}

/**
 * Reads a manifest.json written by etl as the compiler's Manifest; undefined
 * when there is none. A manifest of another layout (an older etl, or not
 * etl's) throws an Error saying so.
 */
export function readManifestJson(file: string): Manifest | undefined {
  const json = readJsonIfExists<Record<string, unknown>>(file);
  if (!json) return undefined;
  const problem = manifestLayoutProblem(json);
  if (problem) throw new Error(`${file} cannot be read: ${problem}`);
  return manifestFromJson(json);
}

export function readJsonIfExists<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}
