// deletion_vectors: true on a Delta model, through the built CLI: the first
// build turns the table property and the protocol feature on; an incremental
// merge then marks the replaced rows in deletion vectors (the data file stays,
// its add comes back with a vector) instead of rewriting the file; the table
// reads back the merged rows, and `etl delta optimize` purges the vectors.

import { readdirSync, writeFileSync } from 'node:fs';
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

// Microbatch passes deletion_vectors through: the first build turns them on,
// and a batch reprocessed later marks its old rows in the file that holds
// every batch (written whole by --full-refresh) instead of rewriting it.
describe('deletion vectors on a microbatch model', () => {
  const DAY = 86_400_000;
  // The run clock is pinned (ETL_NOW): the same batches whatever the date.
  const NOW = '2024-03-10T12:00:00Z';
  const day = (offset: number) => new Date(Date.parse('2024-03-10T00:00:00Z') + offset * DAY).toISOString().slice(0, 10);
  const days = [day(-3), day(-2), day(-1)];
  const seed = (version: string) => `id,ts,v\n${days.flatMap((d, i) => Array.from({ length: 10 }, (_, j) => `${i * 10 + j},${d} 0${j}:00:00,${i === 2 ? version : 'old'}`)).join('\n')}\n`;
  let dir: string;
  const table = () => new DeltaTable(new LocalStorage(path.join(dir, 'lake', 'main', 'events_mb')), db.session);
  const rows = async () => (await db.session.query(`select id, v from (${(await table().scan()).sql}) as t order by id`)).rows.map(([id, v]) => `${Number(id)}:${String(v)}`);
  const expected = (last: string) => Array.from({ length: 30 }, (_, id) => `${id}:${id >= 20 ? last : 'old'}`);
  const at = (...args: string[]) => runCli([...args, '--project-dir', dir], { cwd: dir, env: { ETL_NOW: NOW } });

  beforeAll(() => {
    dir = writeProject({
      'etl.yml': yml,
      'seeds/events.csv': seed('old'),
      'models/events_mb.sql': `{{config materialized="incremental" incremental_strategy="microbatch" event_time="ts" batch_size="day" begin="${days[0]}" deletion_vectors=true}}\nselect id, ts, v from {{ref "events"}}\n`,
    });
  });

  it('turns them on at the first build; a reprocessed batch marks its old rows in a vector', async () => {
    let r = await at('build');
    expect(r.code, r.output).toBe(0);
    const created = await table().snapshot();
    expect(created.metadata.configuration['delta.enableDeletionVectors']).toBe('true');
    expect(created.protocol.readerFeatures).toContain('deletionVectors');
    expect(await rows()).toEqual(expected('old'));
    // Every batch in one file.
    r = await at('build', '--full-refresh');
    expect(r.code, r.output).toBe(0);
    const [whole] = [...(await table().snapshot()).files.values()];
    expect((await table().snapshot()).files.size).toBe(1);

    // The last day changes; the next run reprocesses it (and the empty day of the clock).
    writeFileSync(path.join(dir, 'seeds/events.csv'), seed('new'));
    r = await at('build');
    expect(r.code, r.output).toBe(0);
    const after = await table().snapshot();
    const kept = [...after.files.values()].find((f) => f.path === whole!.path);
    expect(kept?.deletionVector).toMatchObject({ storageType: 'u', cardinality: 10 });
    const dvFiles = readdirSync(path.join(dir, 'lake', 'main', 'events_mb')).filter((f) => /^deletion_vector_.*\.bin$/.test(f));
    expect(dvFiles).toHaveLength(1);
    expect(await rows()).toEqual(expected('new'));
  });
});
