// Column types for a seed CSV, inferred by streaming the file once (seeds can
// have a million rows, so nothing is held but one record). Postgres's COPY
// then loads the same file into a table of these types. The reader follows
// COPY's CSV rules: "" escapes a quote, an unquoted empty value is NULL and a
// quoted empty value is an empty string.

import { createReadStream } from 'node:fs';
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

/** A quick yes for a value of the column's current type; `false` means "classify it". */
function keepsType(type: InferredType, value: string): boolean {
  switch (type) {
    case 'integer':
    case 'bigint':
      return SMALL_INTEGER.test(value);
    case 'date': {
      const m = DATE.exec(value);
      return m !== null && validDate(m[1]!, m[2]!, m[3]!);
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
export async function inferCsvShape(file: string, delimiter = ','): Promise<CsvShape> {
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new CsvError(`delimiter must be one character other than a quote or a newline, got ${JSON.stringify(delimiter)}`);
  }
  let columns: string[] | undefined;
  let types: Array<InferredType | undefined> = [];
  let rows = 0;
  let blankLines = 0;
  const reader = new CsvReader(delimiter, (fields, quoted, line) => {
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
    for (let i = 0; i < fields.length; i++) {
      const v = fields[i]!;
      if (v === '' && !quoted[i]) continue; // NULL: says nothing about the type
      const current = types[i];
      if (current === 'text') continue;
      // Most values keep their column's type: check that first, with one test.
      if (current !== undefined && keepsType(current, v)) continue;
      types[i] = widen(current, v === '' ? 'text' : classifyValue(v));
    }
  });
  const decoder = new StringDecoder('utf8');
  for await (const chunk of createReadStream(file)) reader.push(decoder.write(chunk as Buffer));
  reader.push(decoder.end());
  reader.end();
  if (!columns) throw new CsvError('the file is empty; a seed needs a header line');
  return { columns, types: types.map((t) => t ?? 'text'), rows, blankLines };
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
  ) {}

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
