// Loading a seed CSV with COPY: the table's columns (inferred types, with the
// seed's column_types on top), the COPY FROM STDIN that streams the file to
// the server, and the load itself (loadSeedCsv): types guessed from the first
// rows while a full read checks them, a staged table swapped in. Values never
// pass through SQL text, so any value is data.

import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { MaterializeResult, Relation, SeedOptions } from '../adapter.js';
import type { Dialect } from '../dialect.js';
import { transaction } from '../transaction.js';
import { scrubError } from './connection.js';
import { inferCsvShape, inferCsvShapeInWorker, type CsvShape } from './csv-types.js';
import type { PgSession } from './session.js';
import { fileLineOf, lineOfInvalidUtf8, SeedFileError } from '../seed-file.js';

/** A type name as written in DDL: `numeric(16, 2)`, `timestamp(3) with time zone`, `text[]`, `public.citext`. */
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_. ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?[A-Za-z ]*(\[\d*\])*$/;

export interface SeedColumn {
  name: string;
  type: string;
}

/** The seed's columns: inferred types, overridden by `column_types`; unknown names and odd types are errors. */
export function seedColumns(shape: CsvShape, columnTypes: Record<string, string>): SeedColumn[] {
  const columns = shape.columns.map((name, i) => ({ name, type: shape.types[i] as string }));
  for (const [name, type] of Object.entries(columnTypes)) {
    // Exact name first; a case-insensitive match helps a header written as `Order_Date`.
    const column = columns.find((c) => c.name === name) ?? columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    if (!column) {
      throw new Error(`column_types names "${name}", which is not a column of the CSV (its columns: ${shape.columns.join(', ')})`);
    }
    if (!TYPE_NAME.test(type.trim())) {
      throw new Error(`column_types.${name}: "${type}" is not a type name (expected e.g. integer, numeric(16, 2), varchar(20), timestamp with time zone)`);
    }
    column.type = type.trim();
  }
  return columns;
}

export function createTableSql(dialect: Dialect, table: string, columns: SeedColumn[]): string {
  return `create table ${table} (\n  ${columns.map((c) => `${dialect.quoteIdentifier(c.name)} ${c.type}`).join(',\n  ')}\n)`;
}

export interface CopyOptions {
  delimiter?: string;
  /** The file has empty lines between records (see CsvShape.blankLines). */
  skipBlankLines?: boolean;
}

/** Streams `file` into `table` with COPY ... FROM STDIN (CSV, header skipped); returns the rows copied. */
export async function copyCsv(client: pg.PoolClient, dialect: Dialect, table: string, columns: SeedColumn[], file: string, options: CopyOptions = {}): Promise<number> {
  const copy = client.query(copyFrom(copySql(dialect, table, columns, true, options.delimiter)));
  if (options.skipBlankLines) await pipeline(createReadStream(file), dropBlankLines(), copy);
  else await pipeline(createReadStream(file), copy);
  return copy.rowCount;
}

function copySql(dialect: Dialect, table: string, columns: SeedColumn[], header: boolean, delimiter = ','): string {
  const columnList = columns.map((c) => dialect.quoteIdentifier(c.name)).join(', ');
  return `copy ${table} (${columnList}) from stdin with (format csv, header ${header}, delimiter ${dialect.quoteString(delimiter)})`;
}

/** Streams CSV into `table` with COPY ... FROM STDIN; returns the rows copied. */
export async function copyCsvStream(client: pg.PoolClient, dialect: Dialect, table: string, columns: SeedColumn[], input: NodeJS.ReadableStream, options: { header: boolean; delimiter?: string }): Promise<number> {
  const copy = client.query(copyFrom(copySql(dialect, table, columns, options.header, options.delimiter)));
  await pipeline(input, copy);
  return copy.rowCount;
}

/**
 * Removes empty lines outside quoted values. Works on bytes: in UTF-8 the
 * bytes of `"`, CR and LF never occur inside another character, and quote
 * parity tells whether a line break is inside a value ("" toggles twice).
 */
export function dropBlankLines(): Transform {
  const QUOTE = 0x22;
  const LF = 0x0a;
  const CR = 0x0d;
  let inQuotes = false;
  let atLineStart = false;
  // After a line-ending CR, an LF belongs to the same line break.
  let afterCr = false;
  let crDropped = false;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const out = Buffer.allocUnsafe(chunk.length);
      let n = 0;
      for (const byte of chunk) {
        if (afterCr) {
          afterCr = false;
          if (byte === LF) {
            if (!crDropped) out[n++] = byte;
            continue;
          }
        }
        if (!inQuotes && atLineStart && (byte === LF || byte === CR)) {
          afterCr = byte === CR;
          crDropped = true;
          continue;
        }
        out[n++] = byte;
        if (byte === QUOTE) {
          inQuotes = !inQuotes;
          atLineStart = false;
        } else if (!inQuotes && (byte === LF || byte === CR)) {
          atLineStart = true;
          afterCr = byte === CR;
          crDropped = false;
        } else {
          atLineStart = false;
        }
      }
      done(null, out.subarray(0, n));
    },
  });
}

/**
 * COPY's complaint about the file as a SeedFileError at the file's line:
 * bytes that are not UTF-8 (found again in the file, as COPY names only its
 * own line count) or a malformed record (the type inference beside COPY
 * usually finds those first); undefined for any other error.
 */
export async function copyFileProblem(err: unknown, csvPath: string, displayPath: string): Promise<SeedFileError | undefined> {
  if (err instanceof SeedFileError) return err;
  const e = err as { code?: string; where?: string; message?: string };
  if (e.code === '22021') return new SeedFileError(displayPath, await lineOfInvalidUtf8(csvPath), 'the file is not valid UTF-8 (save it as UTF-8)');
  if (e.code !== '22P04') return undefined;
  const at = /COPY [^,]*, line (\d+)/.exec(e.where ?? '');
  return new SeedFileError(displayPath, at ? await fileLineOf(csvPath, Number(at[1])) : undefined, e.message ?? 'the record cannot be read');
}

/** Rows read to guess a seed's column types before the full read confirms them. */
const SEED_SAMPLE_ROWS = 20_000;

class SeedTypesChanged extends Error {}

/** Where a seed goes, and what loading it needs of the adapter. */
export interface SeedLoad {
  dialect: Dialect;
  /** The staged table the file is copied into first. */
  staged: Relation;
  /** Replaces the seed's table with `staged` on the session's open transaction. */
  swap(session: PgSession): Promise<void>;
  secrets: readonly string[];
}

/**
 * Loads `csvPath` into a staged table with COPY and swaps it in, in one
 * transaction: a failure leaves the previous table as it was. Types come from
 * the first rows, checked by a full read of the file that runs while Postgres
 * copies it: the two take about as long, so a large seed costs one of them
 * rather than both. If the full read disagrees (a text value in row 900,000),
 * the copy is rolled back and done again with the full read's types.
 */
export async function loadSeedCsv(load: SeedLoad, session: PgSession, csvPath: string, options: SeedOptions): Promise<MaterializeResult> {
  try {
    const rows = await loadSpeculatively(load, session, csvPath, options);
    return { rowsAffected: rows, message: `INSERT ${rows}` };
  } catch (err) {
    throw (await copyFileProblem(err, csvPath, options.path ?? csvPath)) ?? err;
  }
}

async function loadSpeculatively(load: SeedLoad, session: PgSession, csvPath: string, options: SeedOptions): Promise<number> {
  const infer = async (maxRows?: number) => {
    try {
      return maxRows === undefined ? await inferCsvShapeInWorker(csvPath, options.delimiter) : await inferCsvShape(csvPath, options.delimiter, { maxRows });
    } catch (err) {
      const at = /^line (\d+):? (.*)$/s.exec((err as Error).message);
      if (at) throw new SeedFileError(options.path ?? csvPath, Number(at[1]), at[2]!.replace(/^has /, 'the record has '));
      throw new Error(`${options.path ?? csvPath}: ${(err as Error).message}`, { cause: err });
    }
  };
  const columnsOf = (shape: CsvShape) => {
    try {
      return seedColumns(shape, options.columnTypes);
    } catch (err) {
      throw new Error(`${csvPath}: ${(err as Error).message}`, { cause: err });
    }
  };
  const sample = await infer(SEED_SAMPLE_ROWS);
  let shape: CsvShape = sample;
  if (!sample.complete) {
    const full = infer();
    full.catch(() => undefined); // awaited below on every path
    const agrees = (f: CsvShape) => f.types.every((t, i) => t === sample.types[i]) && !(f.blankLines > 0 && sample.blankLines === 0);
    try {
      return await copySeed(load, session, csvPath, columnsOf(sample), options, sample.blankLines > 0, async () => {
        if (!agrees(await full)) throw new SeedTypesChanged();
      });
    } catch (err) {
      const fullShape = await full;
      if (!(err instanceof SeedTypesChanged) && agrees(fullShape)) throw err;
      shape = fullShape;
    }
  }
  return copySeed(load, session, csvPath, columnsOf(shape), options, shape.blankLines > 0);
}

/** Creates the staged table, COPYs the file into it and swaps it in, in one transaction. */
async function copySeed(load: SeedLoad, session: PgSession, csvPath: string, columns: SeedColumn[], options: SeedOptions, skipBlankLines: boolean, beforeSwap?: () => Promise<void>): Promise<number> {
  const staged = load.dialect.relation(load.staged.schema, load.staged.name);
  return transaction(session, async () => {
    await session.execute(`drop table if exists ${staged}`);
    await session.execute(createTableSql(load.dialect, staged, columns));
    let copied: number;
    try {
      copied = await copyCsv(session.client, load.dialect, staged, columns, csvPath, { delimiter: options.delimiter, skipBlankLines });
    } catch (err) {
      throw scrubError(err, load.secrets);
    }
    if (beforeSwap) await beforeSwap();
    await load.swap(session);
    return copied;
  });
}
