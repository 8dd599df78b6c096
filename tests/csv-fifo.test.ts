// A CSV stream staged into DuckDB (DuckDbAdapter.stageCsv): through a FIFO
// (adapters/duckdb/csv-fifo.ts) past 4 MiB, from one file below. A real
// database file in a temp dir, real streams. The staged table must hold
// exactly the stream's rows (quoted newlines, doubled quotes, NULLs), and a
// failure on either side — the stream, or the statement before or while it
// reads — must fail the stage with that side's error, leave no table behind,
// and never hang.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuckDbAdapter } from '../adapters/duckdb/adapter.js';
import { loadCsvThroughFifo, makeFifo } from '../adapters/duckdb/csv-fifo.js';

let dir: string;
let adapter: DuckDbAdapter;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'etl-fifo-test-'));
  adapter = new DuckDbAdapter({ name: 'dev', path: 'fifo.duckdb', threads: 1 }, dir);
  await adapter.open();
  await adapter.withSession((s) => s.execute('create schema raw'));
});
afterEach(async () => {
  await adapter.close();
  await rm(dir, { recursive: true, force: true });
});

const columns = [
  { name: 'id', type: 'BIGINT' },
  { name: 'note', type: 'VARCHAR' },
  { name: 'amount', type: 'DECIMAL(12,2)' },
];
const relation = { schema: 'raw', name: 'items' };

/** Rows as Postgres's CSV writes them: quoted newlines and quotes, an empty unquoted field as NULL, "" as the empty string. */
function csvRows(n: number): string {
  let text = '';
  for (let i = 1; i <= n; i++) text += i % 4 === 0 ? `${i},"two\nlines ""quoted"" ${i}",${i}.25\n` : i % 4 === 1 ? `${i},,\n` : i % 4 === 2 ? `${i},"",1\n` : `${i},plain ${i},${i}\n`;
  return text;
}

/** The stream in pieces of `size` bytes, cutting records anywhere, produced lazily. */
function streamOf(text: string, size: number): Readable {
  const buf = Buffer.from(text);
  let at = 0;
  return new Readable({
    read() {
      this.push(at < buf.length ? buf.subarray(at, (at += size)) : null);
    },
  });
}

const stagedTables = () => adapter.withSession(async (s) => (await s.query("select table_name from duckdb_tables() where schema_name = 'raw' order by 1")).rows.map((r) => String(r[0])));

describe('staging a CSV stream through a FIFO', () => {
  it('stages exactly the stream, in one statement, past many pipe buffers', async () => {
    // ~7 MiB: the pipe (64 KiB) fills and drains many times.
    const n = 200_000;
    const staged = await adapter.withSession((s) => adapter.stageCsv(s, relation, columns, streamOf(csvRows(n), 100_000)));
    expect(staged.rows).toBe(n);
    const rows = await adapter.withSession(async (s) => (await s.query(`select count(*), count(distinct id), count(note), sum(case when note = '' then 1 else 0 end), sum(amount)::varchar, max(note) filter (where id = 8) from ${adapter.relationSql(staged.relation)}`)).rows[0]);
    expect(rows.map(String)).toEqual([String(n), String(n), String((n * 3) / 4), String(n / 4), expect.any(String), 'two\nlines "quoted" 8']);
    // The sum, computed here from the same rows.
    let sum = 0;
    for (let i = 1; i <= n; i++) sum += i % 4 === 0 ? i + 0.25 : i % 4 === 2 ? 1 : i % 4 === 3 ? i : 0;
    expect(Number(rows[4])).toBe(sum);
  });

  it('a small stream (within 4 MiB) is staged from one file, exactly', async () => {
    const staged = await adapter.withSession((s) => adapter.stageCsv(s, relation, columns, streamOf(csvRows(9), 5)));
    expect(staged.rows).toBe(9);
    const rows = await adapter.withSession(async (s) => (await s.query(`select id, note, amount::varchar from ${adapter.relationSql(staged.relation)} order by id`)).rows);
    expect(rows.map((r) => r.map((v) => (v === null ? null : String(v))))).toEqual([
      ['1', null, null],
      ['2', '', '1.00'],
      ['3', 'plain 3', '3.00'],
      ['4', 'two\nlines "quoted" 4', '4.25'],
      ['5', null, null],
      ['6', '', '1.00'],
      ['7', 'plain 7', '7.00'],
      ['8', 'two\nlines "quoted" 8', '8.25'],
      ['9', null, null],
    ]);
  });

  it('an empty stream stages an empty table', async () => {
    const staged = await adapter.withSession((s) => adapter.stageCsv(s, relation, columns, Readable.from([])));
    expect(staged.rows).toBe(0);
    expect(await stagedTables()).toEqual([staged.relation.name]);
  });

  it('a stream failing midway fails the stage with its error and leaves no table', async () => {
    // 7 MiB first (past 4 MiB, so they go through the FIFO), and the failure when more is asked for.
    let reads = 0;
    const source = new Readable({
      read() {
        if (reads++ === 0) this.push(Buffer.from(csvRows(200_000)));
        else this.destroy(new Error('connection reset by the source'));
      },
    });
    await expect(adapter.withSession((s) => adapter.stageCsv(s, relation, columns, source))).rejects.toThrow('connection reset by the source');
    expect(reads).toBe(2);
    expect(await stagedTables()).toEqual([]);
  });

  it('a stream failing before it is read fails the stage with its error (the process goes on)', async () => {
    const source = new Readable({ read() {} });
    source.destroy(new Error('refused at the source'));
    await expect(adapter.withSession((s) => adapter.stageCsv(s, relation, columns, source))).rejects.toThrow('refused at the source');
    expect(await stagedTables()).toEqual([]);
  });

  it('a statement failing while it reads fails with its error and stops the stream', async () => {
    // Row 100000 is not a number: strict read_csv fails mid-stream, with the pipe still being written.
    const text = csvRows(99_999) + 'oops,x,1\n' + csvRows(100_000);
    const source = streamOf(text, 65_536);
    await expect(adapter.withSession((s) => adapter.stageCsv(s, relation, columns, source))).rejects.toThrow(/oops|BIGINT|convert/i);
    expect(source.destroyed).toBe(true);
    expect(await stagedTables()).toEqual([]);
  });

  it('a statement failing before it opens the pipe fails with its error, without waiting for a reader', async () => {
    const fifo = (await makeFifo(dir))!;
    const source = streamOf(csvRows(10), 10);
    await expect(
      loadCsvThroughFifo(source, fifo, () => adapter.withSession((s) => s.execute(`create table raw.bad as select * from read_csv('${fifo}', columns = {'id': 'NOT_A_TYPE'})`))),
    ).rejects.toThrow(/NOT_A_TYPE/);
    expect(source.destroyed).toBe(true);
  });
});
