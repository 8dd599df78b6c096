// A CSV stream cut into files of about `chunkBytes`, each ending at a record
// boundary, for DuckDB to read one after the other while the next is being
// written: the stream and the reader overlap, the disk holds at most three
// chunks (one loading, one waiting, one being written), and no read_csv ever builds more than one chunk's worth of rows.
// Postgres's CSV may quote a newline inside a field; a cut is made only at a
// newline outside quotes (an even number of '"' before it: a doubled "" inside
// a field keeps the parity).

import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';

/**
 * The quotes in `text` before `to`. The bytes are read as latin1 (one char a
 * byte, so positions are the buffer's): a string's indexOf is several times
 * faster than a Buffer's, which crosses into C++ on every call.
 */
function quotesIn(text: string, to = text.length): number {
  let n = 0;
  for (let i = text.indexOf('"'); i !== -1 && i < to; i = text.indexOf('"', i + 1)) n++;
  return n;
}

/** The position just past the last newline of `text` outside quotes, given the quote parity at its start; -1 if none. */
function lastRecordEnd(text: string, oddAtStart: boolean): number {
  for (let nl = text.lastIndexOf('\n'); nl !== -1; nl = nl === 0 ? -1 : text.lastIndexOf('\n', nl - 1)) {
    if ((quotesIn(text, nl) % 2 === 1) === oddAtStart) return nl + 1;
  }
  return -1;
}

function endFile(out: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    out.once('error', reject);
    out.end(() => resolve());
  });
}

async function write(out: WriteStream, buf: Buffer): Promise<void> {
  // once() rejects on 'error' and removes its listeners either way.
  if (buf.length && !out.write(buf)) await once(out, 'drain');
}

/**
 * Calls `load` with each chunk file in order (the first always, even for an
 * empty stream), while the stream fills the next one; a chunk is deleted once
 * loaded. A failure of either side stops both and is thrown.
 */
export async function loadCsvInChunks(csv: NodeJS.ReadableStream, dir: string, chunkBytes: number, load: (file: string, index: number) => Promise<void>): Promise<void> {
  const ready: string[] = [];
  let finished = false;
  let failure: { error: unknown } | undefined;
  let wakeLoader: (() => void) | undefined;
  let wakeWriter: (() => void) | undefined;
  const signal = (which: 'loader' | 'writer') => {
    const wake = which === 'loader' ? wakeLoader : wakeWriter;
    if (which === 'loader') wakeLoader = undefined;
    else wakeWriter = undefined;
    wake?.();
  };

  // Every chunk file's errors are the load's: a write still pending when the
  // load fails and the file is destroyed must not become an unhandled 'error'.
  const open = (file: string) => createWriteStream(file).on('error', (error) => void (failure ??= { error }));

  const writer = (async () => {
    let index = 0;
    let file = path.join(dir, `chunk-${index}.csv`);
    let out = open(file);
    let size = 0;
    let odd = false;
    try {
      for await (const chunk of csv as AsyncIterable<Buffer | string>) {
        if (failure) return;
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        const text = buf.toString('latin1');
        const cut: number = size + buf.length >= chunkBytes ? lastRecordEnd(text, odd) : -1;
        if (cut === -1) {
          await write(out, buf);
          size += buf.length;
          if (quotesIn(text) % 2 === 1) odd = !odd;
          continue;
        }
        await write(out, buf.subarray(0, cut));
        await endFile(out);
        // One finished chunk waits for the loader at most.
        while (ready.length > 0 && !failure) await new Promise<void>((r) => (wakeWriter = r));
        if (failure) return;
        ready.push(file);
        signal('loader');
        index++;
        file = path.join(dir, `chunk-${index}.csv`);
        out = open(file);
        const rest = buf.subarray(cut);
        await write(out, rest);
        size = rest.length;
        // The cut was at even parity, so the rest's parity is the parity of its own quotes.
        odd = quotesIn(text.slice(cut)) % 2 === 1;
      }
      await endFile(out);
      while (ready.length > 0 && !failure) await new Promise<void>((r) => (wakeWriter = r));
      if (size > 0 || index === 0) ready.push(file);
      else await rm(file, { force: true });
      finished = true;
      signal('loader');
    } finally {
      if (!out.closed) out.destroy();
    }
  })().catch((error: unknown) => {
    failure ??= { error };
    signal('loader');
  });

  try {
    for (let index = 0; ; index++) {
      while (ready.length === 0 && !finished && !failure) await new Promise<void>((r) => (wakeLoader = r));
      if (failure) throw failure.error;
      const file = ready.shift();
      if (file === undefined) break;
      signal('writer');
      await load(file, index);
      await rm(file, { force: true });
    }
  } catch (error) {
    failure ??= { error };
    signal('writer');
    (csv as NodeJS.ReadableStream & { destroy?: (e?: Error) => void }).destroy?.();
    await writer;
    throw failure.error;
  }
  await writer;
  if (failure) throw (failure as { error: unknown }).error;
}
