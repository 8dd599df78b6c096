// Column types for a seed CSV, inferred by streaming the file once (seeds can
// have a million rows, so nothing is held but one record). Postgres's COPY
// then loads the same file into a table of these types. The reader follows
// COPY's CSV rules: "" escapes a quote, an unquoted empty value is NULL and a
// quoted empty value is an empty string.

import { createReadStream, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StringDecoder } from 'node:string_decoder';

export type InferredType = 'boolean' | 'integer' | 'bigint' | 'numeric' | 'date' | 'timestamp' | 'timestamptz' | 'text';

export interface CsvShape {
  columns: string[];
  types: InferredType[];
  /** Data records (the header excluded). */
  rows: number;
  /** Empty lines between records; COPY would reject them, so the loader skips them. */
  blankLines: number;
}

export class CsvError extends Error {}

/** Thrown inside the reader to stop a sampling read early. */
const SAMPLE_DONE = new Error('sample complete');

const INT4_MAX = 2147483647n;
const INT8_MAX = 9223372036854775807n;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;
const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$/;
const BOOLEAN = /^(?:true|false)$/i;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

// Called once per date value of a million-row seed: arithmetic, no Date objects.
function validDate(y: string, m: string, d: string): boolean {
  const month = Number(m);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1) return false;
  const year = Number(y);
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!);
}

/** The narrowest type that reads `value`; values with leading zeros stay text (ids, zip codes). */
export function classifyValue(value: string): InferredType {
  if (INTEGER.test(value)) {
    const digits = value.charCodeAt(0) === 43 || value.charCodeAt(0) === 45 ? value.slice(1) : value;
    if (digits.length > 1 && digits.charCodeAt(0) === 48) return 'text';
    // Nine digits always fit an int4: no BigInt needed for the common case.
    if (digits.length <= 9) return 'integer';
    if (digits.length > 19) return 'numeric';
    const n = BigInt(value.replace(/^\+/, ''));
    if (n >= -INT4_MAX - 1n && n <= INT4_MAX) return 'integer';
    return n >= -INT8_MAX - 1n && n <= INT8_MAX ? 'bigint' : 'numeric';
  }
  if (BOOLEAN.test(value)) return 'boolean';
  if (DECIMAL.test(value)) return 'numeric';
  let m = DATE.exec(value);
  if (m) return validDate(m[1]!, m[2]!, m[3]!) ? 'date' : 'text';
  m = TIMESTAMP.exec(value);
  if (m && validDate(m[1]!, m[2]!, m[3]!) && Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6] ?? 0) < 60) {
    return m[7] ? 'timestamptz' : 'timestamp';
  }
  return 'text';
}

const SMALL_INTEGER = /^[+-]?(?:[1-9]\d{0,8}|0)$/;
// Numbers a numeric column keeps: no leading zeros (those stay text, like zip codes).
const PLAIN_NUMBER = /^[+-]?(?:(?:[1-9]\d{0,18}|0)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

// Seeds repeat the same days: remember which YYYY-MM-DD strings are valid dates.
const knownDates = new Map<string, boolean>();
function isDateText(day: string): boolean {
  let ok = knownDates.get(day);
  if (ok === undefined) {
    const m = DATE.exec(day);
    ok = m !== null && validDate(m[1]!, m[2]!, m[3]!);
    if (knownDates.size > 100_000) knownDates.clear();
    knownDates.set(day, ok);
  }
  return ok;
}

/** A quick yes for a value of the column's current type; `false` means "classify it". */
function keepsType(type: InferredType, value: string): boolean {
  switch (type) {
    case 'integer':
    case 'bigint':
      return SMALL_INTEGER.test(value);
    case 'date':
      return value.length === 10 && isDateText(value);
    case 'numeric':
      return PLAIN_NUMBER.test(value);
    case 'timestamp': {
      if (value.length < 16 || !isDateText(value.slice(0, 10))) return false;
      const m = TIMESTAMP.exec(value);
      return m !== null && m[7] === undefined && Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6] ?? 0) < 60;
    }
    case 'boolean':
      return BOOLEAN.test(value);
    default:
      return false;
  }
}

const NUMBERS: InferredType[] = ['integer', 'bigint', 'numeric'];
const TIMES: InferredType[] = ['date', 'timestamp', 'timestamptz'];

/** The type that reads values of both types (integer+numeric = numeric, date+timestamp = timestamp). */
export function widen(a: InferredType | undefined, b: InferredType): InferredType {
  if (a === undefined || a === b) return b;
  for (const family of [NUMBERS, TIMES]) {
    const ia = family.indexOf(a);
    const ib = family.indexOf(b);
    if (ia >= 0 && ib >= 0) return family[Math.max(ia, ib)]!;
  }
  return 'text';
}

/** Streams `file` and returns its header and the inferred type of every column. */
export async function inferCsvShape(file: string, delimiter = ',', options: { maxRows?: number } = {}): Promise<CsvShape & { complete: boolean }> {
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new CsvError(`delimiter must be one character other than a quote or a newline, got ${JSON.stringify(delimiter)}`);
  }
  let columns: string[] | undefined;
  let types: Array<InferredType | undefined> = [];
  let rows = 0;
  let blankLines = 0;
  const onRecord = (fields: string[], quoted: boolean[], line: number) => {
    if (!columns) {
      columns = readHeader(fields, line);
      types = columns.map(() => undefined);
      return;
    }
    // A blank line is not a record.
    if (fields.length === 1 && fields[0] === '' && !quoted[0]) {
      blankLines++;
      return;
    }
    if (fields.length !== columns.length) {
      throw new CsvError(`line ${line} has ${fields.length} values, the header has ${columns.length}`);
    }
    rows++;
    if (options.maxRows !== undefined && rows > options.maxRows) throw SAMPLE_DONE;
    for (let i = 0; i < fields.length; i++) {
      const v = fields[i]!;
      if (v === '' && !quoted[i]) continue; // NULL: says nothing about the type
      const current = types[i];
      if (current === 'text') continue;
      // Most values keep their column's type: check that first, with one test.
      if (current !== undefined && keepsType(current, v)) continue;
      types[i] = widen(current, v === '' ? 'text' : classifyValue(v));
    }
  };
  const reader = new LineSplitter(delimiter, onRecord);
  const decoder = new StringDecoder('utf8');
  let complete = true;
  const stream = createReadStream(file, options.maxRows !== undefined ? { highWaterMark: 256 * 1024 } : {});
  try {
    for await (const chunk of stream) reader.push(decoder.write(chunk as Buffer));
    reader.push(decoder.end());
    reader.end();
  } catch (err) {
    if (err !== SAMPLE_DONE) throw err;
    complete = false;
    rows--;
    stream.destroy();
  }
  if (!columns) throw new CsvError('the file is empty; a seed needs a header line');
  return { columns, types: types.map((t) => t ?? 'text'), rows, blankLines, complete };
}

/** Feeds text, in the chunks given, through the reader inferCsvShape uses, and returns its records (tests compare it with csv-parse). */
export function readCsvRecords(chunks: string[], delimiter = ','): Array<{ fields: string[]; quoted: boolean[]; line: number }> {
  const records: Array<{ fields: string[]; quoted: boolean[]; line: number }> = [];
  const reader = new LineSplitter(delimiter, (fields, quoted, line) => records.push({ fields, quoted: fields.map((_, i) => quoted[i] ?? false), line }));
  for (const chunk of chunks) reader.push(chunk);
  reader.end();
  return records;
}

function readHeader(fields: string[], line: number): string[] {
  const names = fields.map((f, i) => (i === 0 ? f.replace(/^\uFEFF/, '') : f));
  const seen = new Set<string>();
  names.forEach((n, i) => {
    if (n === '') throw new CsvError(`line ${line}: column ${i + 1} of the header has no name`);
    if (seen.has(n)) throw new CsvError(`line ${line}: column "${n}" appears twice in the header`);
    seen.add(n);
  });
  return names;
}

/**
 * A fast path in front of CsvReader: while the text has no quote and no
 * bare carriage return, records are lines and fields are split natively,
 * several times faster than reading character by character. At the first
 * quote it hands the rest of the text to the full CSV reader.
 */
class LineSplitter {
  private pending = '';
  private line = 1;
  private slow?: CsvReader;
  private static readonly NO_QUOTES: boolean[] = [];

  constructor(
    private readonly delimiter: string,
    private readonly onRecord: (fields: string[], quoted: boolean[], line: number) => void,
  ) {}

  push(text: string): void {
    // A byte-order mark is not part of the first value (a quote after it still opens a quoted one).
    if (this.line === 1 && this.pending === '' && !this.slow && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (this.slow) return this.slow.push(text);
    if (text.includes('"') || /\r(?!\n)/.test(text)) {
      this.slow = new CsvReader(this.delimiter, this.onRecord, this.line);
      this.slow.push(this.pending + text);
      this.pending = '';
      return;
    }
    const lines = (this.pending + text).split('\n');
    this.pending = lines.pop()!;
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      this.onRecord(line.split(this.delimiter), LineSplitter.NO_QUOTES, this.line++);
    }
  }

  end(): void {
    if (this.slow) return this.slow.end();
    if (this.pending !== '') this.onRecord(this.pending.split(this.delimiter), LineSplitter.NO_QUOTES, this.line);
  }
}

/** An incremental CSV tokenizer: push text, get records. */
class CsvReader {
  private fields: string[] = [];
  private quoted: boolean[] = [];
  private field = '';
  private fieldQuoted = false;
  private inQuotes = false;
  private quoteSeen = false;
  private afterCr = false;
  private line = 1;
  private recordLine = 1;
  private dirty = false;

  constructor(
    private readonly delimiter: string,
    private readonly onRecord: (fields: string[], quoted: boolean[], line: number) => void,
    firstLine = 1,
  ) {
    this.line = firstLine;
    this.recordLine = firstLine;
  }

  push(text: string): void {
    const d = this.delimiter;
    let runStart = 0;
    // Unquoted and quoted runs are copied by slice, not by character.
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (this.inQuotes) {
        if (this.quoteSeen) {
          this.quoteSeen = false;
          if (c === '"') {
            this.field += '"';
            runStart = i + 1;
            continue;
          }
          this.inQuotes = false; // that quote closed the value; `c` is read below
        } else {
          if (c === '"') {
            this.field += text.slice(runStart, i);
            this.quoteSeen = true;
            runStart = i + 1;
          } else if (c === '\n') {
            this.line++;
          }
          continue;
        }
      }
      if (this.afterCr) {
        this.afterCr = false;
        if (c === '\n') {
          runStart = i + 1;
          continue;
        }
      }
      if (c === '"' && !this.dirty && this.field === '' && i === runStart) {
        this.inQuotes = true;
        this.fieldQuoted = true;
        this.dirty = true;
        runStart = i + 1;
      } else if (c === d) {
        this.field += text.slice(runStart, i);
        this.endField();
        runStart = i + 1;
      } else if (c === '\n' || c === '\r') {
        this.field += text.slice(runStart, i);
        this.endField();
        this.endRecord();
        this.line++;
        this.recordLine = this.line;
        this.afterCr = c === '\r';
        runStart = i + 1;
      } else {
        this.dirty = true;
      }
    }
    this.field += text.slice(runStart);
  }

  end(): void {
    if (this.inQuotes && !this.quoteSeen) throw new CsvError(`line ${this.recordLine}: a quoted value is never closed`);
    this.inQuotes = false;
    this.quoteSeen = false;
    if (this.field !== '' || this.fieldQuoted || this.fields.length > 0) {
      this.endField();
      this.endRecord();
    }
  }

  private endField(): void {
    this.fields.push(this.field);
    this.quoted.push(this.fieldQuoted);
    this.field = '';
    this.fieldQuoted = false;
    this.dirty = false;
  }

  private endRecord(): void {
    const fields = this.fields;
    const quoted = this.quoted;
    this.fields = [];
    this.quoted = [];
    this.onRecord(fields, quoted, this.recordLine);
  }
}

/**
 * inferCsvShape on a worker thread when the compiled worker is there (dist/);
 * on the calling thread otherwise (tests run the TypeScript sources).
 */
export function inferCsvShapeInWorker(file: string, delimiter?: string): Promise<CsvShape & { complete: boolean }> {
  const workerFile = fileURLToPath(new URL('./infer-worker.js', import.meta.url));
  if (!existsSync(workerFile)) return inferCsvShape(file, delimiter);
  return workerAnswer<CsvShape & { complete: boolean }>(workerFile, { file, delimiter });
}

/**
 * The one message a worker answers with ({ shape } or { error }). A worker
 * that ends without answering (process.exit in it, killed, out of memory)
 * rejects too, so the caller never waits forever.
 */
export function workerAnswer<T>(workerFile: string, workerData: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerFile, { workerData });
    worker.once('message', (m: { shape?: T; error?: string }) => {
      void worker.terminate();
      if (m.shape) resolve(m.shape);
      else reject(new CsvError(m.error ?? 'type inference failed'));
    });
    worker.once('error', reject);
    // After an answer this settles nothing: a promise settles once.
    worker.once('exit', (code) => reject(new Error(`the CSV type inference worker stopped (exit code ${code}) without an answer`)));
  });
}
