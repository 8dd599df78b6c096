// The CSV chunker of the DuckDB loads (adapters/duckdb/csv-chunks.ts): real
// files in a temp dir, read back by the load callback. Every chunk must end
// at a record boundary (never inside a quoted field with a newline or a
// doubled quote), the chunks together must be the stream, and a failure on
// either side must stop the other.

import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCsvInChunks } from '../adapters/duckdb/csv-chunks.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'etl-chunks-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Records with quoted newlines and doubled quotes, as Postgres's CSV writes them. */
function records(n: number): string[] {
  return Array.from({ length: n }, (_, i) => (i % 3 === 0 ? `${i},"line one\nline ""two"" of ${i}",x\n` : i % 3 === 1 ? `${i},"a, ""quoted"" ${i}",\n` : `${i},plain ${i},y\n`));
}

/** The stream in pieces of `size` bytes, cutting records anywhere. */
function streamOf(text: string, size: number): Readable {
  const buf = Buffer.from(text);
  const pieces: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) pieces.push(buf.subarray(i, i + size));
  return Readable.from(pieces);
}

describe('loadCsvInChunks', () => {
  it('cuts only at record boundaries, in order, and the chunks are the whole stream', async () => {
    const rows = records(500);
    const text = rows.join('');
    for (const piece of [7, 64, 1000]) {
      const loaded: string[] = [];
      await loadCsvInChunks(streamOf(text, piece), dir, 512, async (file, index) => {
        expect(index).toBe(loaded.length);
        loaded.push(await readFile(file, 'utf8'));
      });
      expect(loaded.length).toBeGreaterThan(5);
      expect(loaded.join('')).toBe(text);
      // Each chunk is a run of whole records: it starts where one starts.
      let at = 0;
      const starts = new Set(rows.map((r) => ((at += r.length), at - r.length)));
      let offset = 0;
      for (const chunk of loaded) {
        expect(starts.has(offset)).toBe(true);
        offset += chunk.length;
      }
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('an empty stream is one empty chunk', async () => {
    const loaded: string[] = [];
    await loadCsvInChunks(Readable.from([]), dir, 512, async (file) => void loaded.push(await readFile(file, 'utf8')));
    expect(loaded).toEqual(['']);
  });

  it('a failing load stops the stream; a failing stream stops the loads', async () => {
    const text = records(2000).join('');
    const source = streamOf(text, 100);
    let calls = 0;
    await expect(
      loadCsvInChunks(source, dir, 512, async () => {
        if (++calls === 2) throw new Error('the engine refused chunk 2');
      }),
    ).rejects.toThrow('the engine refused chunk 2');
    expect(calls).toBe(2);
    expect(source.destroyed).toBe(true);

    const broken = new Readable({ read() {} });
    broken.push(Buffer.from(text.slice(0, 2000)));
    setImmediate(() => broken.destroy(new Error('connection reset by the source')));
    const seen: number[] = [];
    await expect(loadCsvInChunks(broken, dir, 512, async (_f, index) => void seen.push(index))).rejects.toThrow('connection reset by the source');
  });

  it('a load failing mid-stream fails with its error and stops the stream, with nothing unhandled after', async () => {
    const piece = Buffer.from('1,"a",b\n'.repeat(8192));
    const source = Readable.from(Array.from({ length: 300 }, () => piece));
    await expect(
      loadCsvInChunks(source, dir, 256 * 1024, async (_file, index) => {
        if (index === 1) throw new Error('out of memory in the engine');
      }),
    ).rejects.toThrow('out of memory in the engine');
    // Give any write still in flight its callback: an unhandled error would fail the run of this file.
    await new Promise((r) => setTimeout(r, 50));
  });
});
