// The protocol checker every table etl writes goes through (tests/delta/
// writer.test.ts for the library's writes, tests/e2e/delta.test.ts for every
// table of the lakes the CLI builds): the whole log, field by field.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { fileKey, LocalStorage, parseSchema, type Action, type AddFile, type RemoveFile } from '../../adapters/delta/index.js';
import { readDeletionVector } from '../../adapters/delta/deletion-vectors.js';
import { fileLocation } from '../../adapters/delta/scan.js';
import type { SqlSession } from '../../adapters/delta/sql.js';
import { count } from './helpers.js';

/** Every commit of the table, parsed: [version, actions]. */
export function commits(root: string): Array<[number, Action[]]> {
  const dir = path.join(root, '_delta_log');
  return readdirSync(dir)
    .filter((f) => /^\d{20}\.json$/.test(f))
    .sort()
    .map((f) => [
      Number(f.slice(0, 20)),
      readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Action),
    ]);
}

const REQUIRED: Record<string, string[]> = {
  add: ['path', 'partitionValues', 'size', 'modificationTime', 'dataChange'],
  remove: ['path', 'dataChange'],
  metaData: ['id', 'format', 'schemaString', 'partitionColumns', 'configuration'],
  protocol: ['minReaderVersion', 'minWriterVersion'],
  txn: ['appId', 'version'],
  domainMetadata: ['domain', 'configuration', 'removed'],
};

/** Checks a table's whole log against the protocol and returns the active adds of a JSON replay (keyed by path and deletion vector). */
export async function checkProtocol(session: SqlSession, root: string): Promise<Map<string, AddFile>> {
  const active = new Map<string, AddFile>();
  const storage = new LocalStorage(root);
  let readerFeatures: string[] = [];
  let writerFeatures: string[] = [];
  const log = commits(root);
  const vacuumed = new Set<string>();
  expect(log.map(([v]) => v)).toEqual(log.map((_, i) => i)); // contiguous from 0
  for (const [version, actions] of log) {
    expect(Object.keys(actions[0]!), `version ${version} starts with commitInfo`).toEqual(['commitInfo']);
    const paths = new Set<string>();
    let metadata = 0;
    let protocol = 0;
    for (const a of actions) {
      const [kind, body] = Object.entries(a)[0]! as [string, Record<string, unknown>];
      expect(Object.keys(a)).toHaveLength(1);
      for (const f of REQUIRED[kind] ?? []) expect(body[f], `${kind}.${f} at version ${version}`).toBeDefined();
      if (kind === 'metaData') {
        metadata++;
        expect(() => parseSchema(body.schemaString as string, 'test')).not.toThrow();
        expect((body.format as { provider: string }).provider).toBe('parquet');
      }
      if (kind === 'protocol') {
        protocol++;
        const p = body as { minReaderVersion: number; minWriterVersion: number; readerFeatures?: string[]; writerFeatures?: string[] };
        if (p.minReaderVersion === 3) expect(p.readerFeatures).toBeDefined();
        if (p.minWriterVersion === 7) expect(p.writerFeatures).toBeDefined();
        if (p.minReaderVersion < 3) expect(p.readerFeatures).toBeUndefined();
        readerFeatures = p.readerFeatures ?? [];
        writerFeatures = p.writerFeatures ?? [];
      }
      if (kind === 'add') {
        const add = body as unknown as AddFile;
        expect(paths.has(`add:${add.path}`), `one add per path at version ${version}`).toBe(false);
        paths.add(`add:${add.path}`);
        const file = fileLocation(new LocalStorage(root), add.path);
        const stats = JSON.parse(add.stats!) as { numRecords: number };
        // A file removed later may be gone (vacuumed); an active one must be there (checked at the end).
        if (existsSync(file)) {
          expect(add.size, `add.size of ${add.path}`).toBe(statSync(file).size);
          expect(stats.numRecords).toBe(await count(session, `select * from read_parquet('${file}')`));
        } else vacuumed.add(fileKey(add));
        // partitionValues agree with the Hive folders the file is in.
        const folders = Object.fromEntries(
          decodeURIComponent(add.path)
            .split('/')
            .slice(0, -1)
            .map((seg) => seg.split('=').map((x) => decodeURIComponent(x))),
        );
        for (const [k, v] of Object.entries(add.partitionValues)) expect(folders[k] === '__HIVE_DEFAULT_PARTITION__' ? null : folders[k]).toBe(v);
        if (add.deletionVector) {
          // The feature is on, and the vector's file exists with the size, checksum and cardinality the descriptor says.
          expect(readerFeatures).toContain('deletionVectors');
          expect(writerFeatures).toContain('deletionVectors');
          const dv = add.deletionVector;
          expect(dv.storageType).toBe('u');
          const positions = await readDeletionVector(storage, dv, async (f) => readFileSync(f), `${add.path} at version ${version}`);
          expect(positions.length).toBe(dv.cardinality);
          expect(Math.max(...positions)).toBeLessThan(stats.numRecords);
          expect(JSON.parse(add.stats!).tightBounds).toBe(false);
        }
        active.set(fileKey(add), add);
      }
      if (kind === 'remove') {
        const r = body as RemoveFile;
        expect(active.has(fileKey(r)), `remove of ${r.path} at version ${version} matches an earlier add`).toBe(true);
        active.delete(fileKey(r));
      }
    }
    expect(metadata).toBeLessThanOrEqual(1);
    expect(protocol).toBeLessThanOrEqual(1);
    if (version === 0) expect([metadata, protocol]).toEqual([1, 1]);
  }
  for (const key of active.keys()) expect(vacuumed.has(key), `active file ${key} exists`).toBe(false);
  return active;
}

/** Every Delta table under a lake (<schema>/<table>/_delta_log), as folders. */
export function lakeTables(lake: string): string[] {
  const out: string[] = [];
  for (const schema of readdirSync(lake)) {
    if (!statSync(path.join(lake, schema)).isDirectory()) continue;
    for (const table of readdirSync(path.join(lake, schema))) if (readdirSync(path.join(lake, schema, table)).includes('_delta_log')) out.push(path.join(lake, schema, table));
  }
  return out.sort();
}
