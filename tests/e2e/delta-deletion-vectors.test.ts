// deletion_vectors: true on a Delta model, through the built CLI: the first
// build turns the table property and the protocol feature on; an incremental
// merge then marks the replaced rows in deletion vectors (the data file stays,
// its add comes back with a vector) instead of rewriting the file; the table
// reads back the merged rows, and `etl delta optimize` purges the vectors.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeltaTable, LocalStorage } from '../../adapters/delta/index.js';
import { etlYml, removeTempDirs, runCli, writeProject, type CliResult } from './helpers.js';
import { openDuckDb, type TestDb } from '../delta/helpers.js';

let db: TestDb;
beforeAll(async () => {
  db = await openDuckDb();
});
afterAll(() => {
  db?.close();
  removeTempDirs();
});

const yml = etlYml('dvs').replace('target: dev\n', 'target: lake\n').replace('targets:\n', 'targets:\n  lake: { type: delta, path: lake, schema: main, threads: 1 }\n');
const csv = (changed: number[]) => `id,v\n${Array.from({ length: 300 }, (_, i) => `${i},${changed.includes(i) ? 'new' : 'old'}`).join('\n')}\n`;

function etl(dir: string, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir });
}

describe('deletion vectors on a Delta model', () => {
  let dir: string;
  const table = () => new DeltaTable(new LocalStorage(path.join(dir, 'lake', 'main', 'items')), db.session);
  const rows = async () => (await db.session.query(`select id, v from (${(await table().scan()).sql}) as t order by id`)).rows.map(([id, v]) => `${Number(id)}:${String(v)}`);
  const expected = (changed: number[]) => Array.from({ length: 300 }, (_, i) => `${i}:${changed.includes(i) ? 'new' : 'old'}`);

  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': yml,
      'seeds/src.csv': csv([]),
      'models/items.sql': '{{config materialized="incremental" unique_key="id" incremental_strategy="merge" deletion_vectors=true}}\nselect id, v from {{ref "src"}}\n{{#if is_incremental}}where v = \'new\'{{/if}}\n',
    });
    const r = await etl(dir, 'build');
    expect(r.code, r.output).toBe(0);
  });

  it('the first build turns them on; a merge marks the replaced rows instead of rewriting the file; optimize purges them', async () => {
    const created = await table().snapshot();
    expect(created.metadata.configuration['delta.enableDeletionVectors']).toBe('true');
    expect(created.protocol.readerFeatures).toContain('deletionVectors');
    const [file] = [...created.files.values()];
    writeFileSync(path.join(dir, 'seeds/src.csv'), csv([3, 7, 250]));
    const r = await etl(dir, 'build');
    expect(r.code, r.output).toBe(0);
    const after = await table().snapshot();
    const kept = [...after.files.values()].find((f) => f.path === file!.path)!;
    expect(kept.deletionVector).toMatchObject({ storageType: 'u', cardinality: 3 });
    expect(after.commitInfo).toMatchObject({ operation: 'MERGE', operationMetrics: { numDeletionVectorsAdded: '1', numDeletedRows: '3', numRemovedFiles: '0' } });
    expect(await rows()).toEqual(expected([3, 7, 250]));

    const optimized = await etl(dir, 'delta', 'optimize', '-s', 'items');
    expect(optimized.code, optimized.output).toBe(0);
    expect([...(await table().snapshot()).files.values()].filter((f) => f.deletionVector)).toEqual([]);
    expect(await rows()).toEqual(expected([3, 7, 250]));
  });
});
