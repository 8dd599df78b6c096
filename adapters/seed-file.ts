// A seed file's own problems, the same on every engine: a record with more or
// fewer fields than the header, a quoted value never closed, bytes that are
// not UTF-8. Each engine's CSV reader finds them (DuckDB's strict read_csv,
// Postgres' COPY and the type inference beside it); this module turns what it
// says into `seeds/x.csv:LINE: reason`, LINE being the line of the file (a
// record with a quoted line break spans several) where the bad record starts.

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { firstInvalidUtf8 } from '../core/project/files.js';

/** A seed file that cannot be loaded as it is: its path (relative to the project) and line. */
export class SeedFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${reason}\n  hint: fix the file; the previous table is left as it was`);
    this.name = 'SeedFileError';
  }
}

/** The number of fields of the file's first record (the header), split by `delimiter` outside double quotes. */
export async function headerFieldCount(file: string, delimiter: string): Promise<number> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 16);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    let fields = 1;
    let quoted = false;
    for (const ch of text) {
      if (ch === '"') quoted = !quoted;
      else if (!quoted && ch === delimiter) fields++;
      else if (!quoted && (ch === '\n' || ch === '\r')) break;
    }
    return fields;
  } finally {
    await handle.close();
  }
}

/**
 * The line of the file where the `readerLine`-th line, as a CSV reader counts
 * them (line breaks outside quoted values; the header is line 1), starts.
 * Called only when a load failed, so it may read the file once more.
 */
export async function fileLineOf(file: string, readerLine: number): Promise<number> {
  if (readerLine <= 1) return readerLine;
  let reader = 1;
  let physical = 1;
  let quoted = false;
  let afterCr = false;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (const byte of chunk) {
      if (afterCr && byte === 0x0a) {
        afterCr = false;
        continue; // CRLF is one line break
      }
      afterCr = byte === 0x0d;
      if (byte === 0x22) quoted = !quoted;
      else if (byte === 0x0a || byte === 0x0d) {
        physical++;
        if (!quoted && ++reader === readerLine) return physical;
      }
    }
  }
  return physical;
}

/** The line of the first byte that is not UTF-8, if any (read only when a load failed on the encoding). */
export async function lineOfInvalidUtf8(file: string): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  return firstInvalidUtf8(await readFile(file))?.line;
}
