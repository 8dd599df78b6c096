// The files loader on local files: new, changed and malformed CSV files (only
// new or changed files read; a changed file's rows replaced; bad records in
// <table>__rejected with the raw record, the error and the run id;
// max_rejected exceeded publishes nothing), Parquet, JSON and NDJSON, and
// a Postgres target (DuckDB reads the files, COPY loads them).

import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, killAll, createPgDatabase, dropPgDatabase, pgConnect, pgQuoteIdent, pgTestSchemas, readJson, removeTempDirs, runCli, withDb, writeProject } from './helpers.js';

const pg = pgTestSchemas();
afterAll(async () => {
  await killAll();
  removeTempDirs();
});

/**
 * A database of its own for a Postgres target (dropped after the file's tests):
 * etl_meta, the state's schema, is per database, so this test's state is its own.
 */
const databases: string[] = [];
async function ownDatabase(): Promise<string> {
  const url = await createPgDatabase(pg.admin, 'etl_x');
  databases.push(url);
  return url;
}
afterAll(async () => {
  for (const url of databases) await dropPgDatabase(pg.admin, url);
});


function filesProject(loader: string, files: Record<string, string> = {}, target?: string): string {
  return writeProject({
    'etl.yml': target ? etlYml('shop').replace(/dev: \{[^}]*\}/, target) : etlYml('shop'),
    'models/shop.yml': `sources:
  - name: shop
    tables:
      - name: orders
        loader: ${loader}
        columns:
          - { name: amount, data_type: integer }
`,
    'models/big_orders.sql': "select id from {{source 'shop' 'orders'}} where amount >= 50",
    ...files,
  });
}

async function rows(dir: string, sql: string): Promise<Record<string, unknown>[]> {
  return withDb(dbPathOf(dir), (db) => db.rows(sql));
}

function loaderResponse(dir: string): Record<string, any> {
  return readJson(dir, 'target/run_results.json').results.find((r: { unique_id: string }) => r.unique_id === 'loader.shop.shop.orders').adapter_response;
}

describe('files loader', () => {
  it('loads new CSV files once, reloads a changed one, keeps the file in _etl_file and bad records in orders__rejected', async () => {
    const dir = filesProject('{ type: files, path: "data/*.csv", max_rejected: 5 }', {
      'data/a.csv': 'id,amount,day\n1,10,2024-01-01\n2,abc,2024-01-02\n3,30,2024-01-03\n',
      'data/b.csv': 'id,amount,day\n5,50,2024-01-05\n',
    });
    const first = await runCli(['build'], { cwd: dir });
    expect(first.code, first.output).toBe(0);
    expect(loaderResponse(dir)).toMatchObject({ rows_read: 4, rows_loaded: 3, rows_rejected: 1 });
    const firstRun = readJson(dir, 'target/run_results.json').metadata.invocation_id;
    expect(await rows(dir, 'select id::int as id, amount, _etl_file as f from shop.orders order by id')).toEqual([
      { id: 1, amount: 10, f: 'data/a.csv' },
      { id: 3, amount: 30, f: 'data/a.csv' },
      { id: 5, amount: 50, f: 'data/b.csv' },
    ]);
    expect(await rows(dir, 'select id::int as id from main.big_orders')).toEqual([{ id: 5 }]);
    const rejected = await rows(dir, 'select file, line::int as line, raw_record, error, run_id from shop.orders__rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ file: 'data/a.csv', line: 3, raw_record: '2,abc,2024-01-02', run_id: firstRun });
    expect(rejected[0]!.error).toContain('amount');

    // Nothing new: no file is read.
    const again = await runCli(['extract'], { cwd: dir });
    expect(again.code, again.output).toBe(0);
    expect(loaderResponse(dir)).toMatchObject({ rows_read: 0, rows_loaded: 0 });
    expect(readJson(dir, 'target/run_results.json').results[0].message).toContain('no new or changed files');

    // A new file, and b.csv changed (its rows replace the ones it gave before).
    writeFileSync(path.join(dir, 'data/c.csv'), 'id,amount,day\n6,60,2024-01-06\n');
    writeFileSync(path.join(dir, 'data/b.csv'), 'id,amount,day\n5,55,2024-01-05\n9,90,2024-01-09\n');
    utimesSync(path.join(dir, 'data/b.csv'), new Date(), new Date(Date.now() + 5000));
    const third = await runCli(['extract'], { cwd: dir });
    expect(third.code, third.output).toBe(0);
    expect(loaderResponse(dir)).toMatchObject({ rows_read: 3, rows_loaded: 3, rows_rejected: 0 });
    expect(await rows(dir, 'select id::int as id, amount, _etl_file as f from shop.orders order by id')).toEqual([
      { id: 1, amount: 10, f: 'data/a.csv' },
      { id: 3, amount: 30, f: 'data/a.csv' },
      { id: 5, amount: 55, f: 'data/b.csv' },
      { id: 6, amount: 60, f: 'data/c.csv' },
      { id: 9, amount: 90, f: 'data/b.csv' },
    ]);
    expect(await rows(dir, 'select count(*)::int as n from shop.orders__rejected')).toEqual([{ n: 1 }]);

    // --full-refresh reads every file again.
    const refresh = await runCli(['extract', '--full-refresh'], { cwd: dir });
    expect(refresh.code, refresh.output).toBe(0);
    expect(loaderResponse(dir)).toMatchObject({ rows_read: 6, rows_loaded: 5, rows_rejected: 1 });
  });

  it('max_rejected exceeded (a count, then a percentage): nothing of the run is published, and the files are read again next time', async () => {
    const dir = filesProject('{ type: files, path: "data/*.csv", max_rejected: 1 }', { 'data/a.csv': 'id,amount\n1,10\n' });
    expect((await runCli(['extract'], { cwd: dir })).code).toBe(0);
    writeFileSync(path.join(dir, 'data/b.csv'), 'id,amount\n2,x\n3,y\n4,40\n');
    const bad = await runCli(['extract'], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('2 of 3 records rejected, more than max_rejected (1); nothing of this run is published');
    expect(await rows(dir, 'select id::int as id from shop.orders order by id')).toEqual([{ id: 1 }]);
    expect(await rows(dir, `select count(*)::int as n from information_schema.tables where table_name = 'orders__rejected'`)).toEqual([{ n: 0 }]);

    writeFileSync(path.join(dir, 'models/shop.yml'), readFileSync(path.join(dir, 'models/shop.yml'), 'utf8').replace('max_rejected: 1', 'max_rejected: "70%"'));
    const allowed = await runCli(['extract'], { cwd: dir });
    expect(allowed.code, allowed.output).toBe(0);
    expect(await rows(dir, 'select id::int as id from shop.orders order by id')).toEqual([{ id: 1 }, { id: 4 }]);
    expect(await rows(dir, 'select raw_record from shop.orders__rejected order by raw_record')).toEqual([{ raw_record: '2,x' }, { raw_record: '3,y' }]);
  });

  it('reads Parquet, JSON and NDJSON files', async () => {
    const dir = filesProject('{ type: files, path: "data/*.ndjson" }', {
      'data/a.ndjson': '{"id": 1, "amount": 10, "tags": "x"}\n{"id": 2, "amount": 70, "tags": null}\n',
    });
    const r = await runCli(['build'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    expect(await rows(dir, 'select id::int as id, amount::int as amount, tags, _etl_file as f from shop.orders order by id')).toEqual([
      { id: 1, amount: 10, tags: 'x', f: 'data/a.ndjson' },
      { id: 2, amount: 70, tags: null, f: 'data/a.ndjson' },
    ]);
    expect(await rows(dir, 'select id::int as id from main.big_orders')).toEqual([{ id: 2 }]);

    // The same rows as a JSON array and as Parquet (written by DuckDB), each its own source.
    await withDb(dbPathOf(dir), (db) => db.rows(`copy (select * from (values (7, 700), (8, 800)) as t(id, amount)) to '${path.join(dir, 'data/p.parquet')}' (format parquet)`));
    writeFileSync(path.join(dir, 'data/j.json'), '[{"id": 11, "amount": 5}, {"id": 12, "amount": 6}]');
    for (const [glob, expected] of [
      ['data/*.parquet', [{ id: 7 }, { id: 8 }]],
      ['data/*.json', [{ id: 11 }, { id: 12 }]],
    ] as const) {
      writeFileSync(path.join(dir, 'models/shop.yml'), `sources:\n  - name: shop\n    tables:\n      - name: orders\n        loader: { type: files, path: "${glob}" }\n`);
      const load = await runCli(['extract', '--full-refresh'], { cwd: dir });
      expect(load.code, load.output).toBe(0);
      expect(await rows(dir, 'select id::int as id from shop.orders order by id')).toEqual(expected);
    }
  });

  it('a malformed NDJSON line, a malformed JSON file and a corrupt Parquet file are rejected, the rest loaded; over max_rejected nothing is published', async () => {
    const dir = filesProject('{ type: files, path: "data/*.ndjson", max_rejected: 2 }', {
      'data/a.ndjson': '{"id": 1, "amount": 10}\n{"id": 2, "amount": 20\n\n{"id": 3, "amount": 30}\n[4, 40]\n',
      'data/b.ndjson': '{"id": 5, "amount": 50}\n',
    });
    const r = await runCli(['extract'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    const runId = readJson(dir, 'target/run_results.json').metadata.invocation_id;
    expect(loaderResponse(dir)).toMatchObject({ rows_read: 5, rows_loaded: 3, rows_rejected: 2 });
    expect(await rows(dir, 'select id::int as id, amount::int as amount, _etl_file as f from shop.orders order by id')).toEqual([
      { id: 1, amount: 10, f: 'data/a.ndjson' },
      { id: 3, amount: 30, f: 'data/a.ndjson' },
      { id: 5, amount: 50, f: 'data/b.ndjson' },
    ]);
    const rejected = await rows(dir, 'select file, line::int as line, raw_record, error, run_id from shop.orders__rejected order by line');
    expect(rejected).toEqual([
      { file: 'data/a.ndjson', line: 2, raw_record: '{"id": 2, "amount": 20', error: expect.stringContaining('malformed JSON'), run_id: runId },
      { file: 'data/a.ndjson', line: 5, raw_record: '[4, 40]', error: 'the record is not a JSON object', run_id: runId },
    ]);

    // Three bad lines in a new file: over max_rejected (2), the table and __rejected stay as they were.
    writeFileSync(path.join(dir, 'data/c.ndjson'), '{"id": 6, "amount": 60}\n{x\n{y\n{z\n');
    const over = await runCli(['extract'], { cwd: dir });
    expect(over.code).toBe(1);
    expect(over.output).toContain('3 of 4 records rejected, more than max_rejected (2); nothing of this run is published');
    expect(await rows(dir, 'select count(*)::int as n from shop.orders')).toEqual([{ n: 3 }]);
    expect(await rows(dir, 'select count(*)::int as n from shop.orders__rejected')).toEqual([{ n: 2 }]);

    // A JSON document that does not parse is one rejected record (its text); a corrupt Parquet file one rejected record (its path); the other files load.
    await withDb(dbPathOf(dir), (db) => db.rows(`copy (select * from (values (7, 700), (8, 800)) as t(id, amount)) to '${path.join(dir, 'data/good.parquet')}' (format parquet)`));
    const parquet = readFileSync(path.join(dir, 'data/good.parquet'));
    writeFileSync(path.join(dir, 'data/corrupt.parquet'), Buffer.concat([parquet.subarray(0, 40), Buffer.alloc(200, 0x55), parquet.subarray(parquet.length - 8)]));
    writeFileSync(path.join(dir, 'data/good.json'), '[{"id": 11, "amount": 5}]');
    writeFileSync(path.join(dir, 'data/bad.json'), '[{"id": 12, "amount": 6}, {"id": ');
    for (const [glob, ids, bad] of [
      ['data/*.parquet', [{ id: 7 }, { id: 8 }], 'data/corrupt.parquet'],
      ['data/*.json', [{ id: 11 }], 'data/bad.json'],
    ] as const) {
      writeFileSync(path.join(dir, 'models/shop.yml'), `sources:\n  - name: shop\n    tables:\n      - name: orders\n        loader: { type: files, path: "${glob}", max_rejected: 1 }\n`);
      const load = await runCli(['extract', '--full-refresh'], { cwd: dir });
      expect(load.code, load.output).toBe(0);
      expect(await rows(dir, 'select id::int as id from shop.orders order by id')).toEqual(ids);
      const last = readJson(dir, 'target/run_results.json').metadata.invocation_id;
      const kept = await rows(dir, `select file, line::int as line, raw_record, error from shop.orders__rejected where run_id = '${last}'`);
      expect(kept).toHaveLength(1);
      expect(kept[0]).toMatchObject({ file: bad, line: 0 });
      expect(kept[0]!.error).toContain('cannot read the file');
      if (bad === 'data/bad.json') expect(kept[0]!.raw_record).toBe('[{"id": 12, "amount": 6}, {"id": ');
    }
  });

  it('an empty string stays an empty string, a null a null; quotes, commas and newlines inside values survive', async () => {
    const dir = filesProject('{ type: files, path: "data/*.ndjson" }', {
      'data/a.ndjson': ['{"id": 1, "amount": 1, "note": ""}', '{"id": 2, "amount": 2, "note": null}', '{"id": 3, "amount": 3, "note": "say \\"hi\\", twice\\nthen stop"}', '{"id": 4, "amount": 4, "note": "plain"}'].join('\n') + '\n',
    });
    const r = await runCli(['extract'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    expect(await rows(dir, 'select id::int as id, note, note is null as missing from shop.orders order by id')).toEqual([
      { id: 1, note: '', missing: false },
      { id: 2, note: null, missing: true },
      { id: 3, note: 'say "hi", twice\nthen stop', missing: false },
      { id: 4, note: 'plain', missing: false },
    ]);
  });

  it('loads files into a Postgres target (DuckDB reads them, COPY writes them)', async () => {
    const schema = 'analytics';
    const raw = 'raw';
    const targetUrl = await ownDatabase();
    const dir = filesProject('{ type: files, path: "data/*.csv", max_rejected: "50%" }', { 'data/a.csv': 'id,amount\n1,10\n2,bad\n3,60\n' }, `dev: { type: postgres, url: "${targetUrl}", schema: ${schema}, threads: 2 }`);
    writeFileSync(path.join(dir, 'models/shop.yml'), readFileSync(path.join(dir, 'models/shop.yml'), 'utf8').replace('  - name: shop\n', `  - name: shop\n    schema: ${raw}\n`));
    const r = await runCli(['build'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    const db = await pgConnect(targetUrl);
    const q = async (sql: string) => (await db.query(sql)).rows;
    expect(await q(`select id::int, amount, _etl_file from ${pgQuoteIdent(raw)}.orders order by id`)).toEqual([
      { id: '1', amount: '10', _etl_file: 'data/a.csv' },
      { id: '3', amount: '60', _etl_file: 'data/a.csv' },
    ]);
    expect(await q(`select raw_record from ${pgQuoteIdent(raw)}.orders__rejected`)).toEqual([{ raw_record: '2,bad' }]);
    expect(await q(`select count(*)::int as n from ${pgQuoteIdent(schema)}.big_orders`)).toEqual([{ n: '1' }]);
    await db.end();
  });
});
