// The hand-written seed CSV reader (adapters/postgres/csv-types.ts, a fast
// path that streams million-row seeds) against csv-parse on a corpus of
// tricky inputs, each also cut into chunks at every position (the reader
// sees a file in pieces); and the typing of unit-test fixture values
// (core/data-tests/unit-tests.ts, read with csv-parse) against the seed
// reader's classifyValue, so that both follow one set of rules.

import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { classifyValue, readCsvRecords } from '../adapters/postgres/csv-types.js';
import { fixtureValue, parseCsv } from '../core/data-tests/unit-tests.js';

const CORPUS: Array<[string, string, string?]> = [
  ['plain', 'id,name\n1,a\n2,b\n'],
  ['no final newline', 'id,name\n1,a\n2,b'],
  ['CRLF', 'id,name\r\n1,a\r\n2,b\r\n'],
  ['bare CR line ends', 'id,name\r1,a\r2,b\r'],
  ['mixed line ends', 'id,name\n1,a\r\n2,b\r3,c\n'],
  ['quoted delimiters, quotes and newlines', 'id,text\n1,"a, b"\n2,"she said ""hi"""\n3,"two\nlines"\n4,"crlf\r\ninside"\n5,""""\n'],
  ['empty fields, quoted and not', 'a,b,c\n,,\n"",,""\n1,"",\n'],
  ['blank lines between records', 'a,b\n\n1,2\n\n\n3,4\n'],
  ['a quoted field at the end of the file, unterminated line', 'a,b\n1,"x\ny"'],
  ['whitespace is kept', 'a,b\n 1 , x \n"  ",\t\n'],
  ['a BOM before the header', '\uFEFFid,name\n1,a\n'],
  ['a BOM before a quoted header', '\uFEFF"id","name"\n1,a\n'],
  ['unicode', 'k,v\n1,ünï ✓\n2,"日本, 語"\n'],
  ['one column', 'x\n1\n\n2\n'],
  ['semicolons', 'a;b\n1;"x;y"\n2;z\n', ';'],
  ['tabs', 'a\tb\n1\t"x\ty"\n', '\t'],
];

/** csv-parse with COPY's CSV rules, keeping which fields were quoted. */
function reference(text: string, delimiter: string): Array<{ fields: string[]; quoted: boolean[] }> {
  const records = parse(text, { delimiter, bom: true, record_delimiter: ['\r\n', '\n', '\r'], skip_empty_lines: false, relax_column_count: true, cast: (value, ctx) => ({ value, quoted: ctx.quoting }) }) as unknown as Array<Array<{ value: string; quoted: boolean }>>;
  return records.map((r) => ({ fields: r.map((f) => f.value), quoted: r.map((f) => f.quoted) }));
}

/** The seed reader's records; the BOM is dropped as inferCsvShape drops it (from the header's first name). */
function seedReader(chunks: string[], delimiter: string): Array<{ fields: string[]; quoted: boolean[] }> {
  return readCsvRecords(chunks, delimiter).map(({ fields, quoted }, i) => ({ fields: i === 0 ? [fields[0]!.replace(/^\uFEFF/, ''), ...fields.slice(1)] : fields, quoted }));
}

describe('the seed CSV reader agrees with csv-parse', () => {
  it.each(CORPUS)('%s', (_name, text, delimiter = ',') => {
    const expected = reference(text, delimiter);
    expect(seedReader([text], delimiter)).toEqual(expected);
    for (let cut = 1; cut < text.length; cut++) {
      expect(seedReader([text.slice(0, cut), text.slice(cut)], delimiter), `cut at ${cut}`).toEqual(expected);
    }
    // One character at a time: every state carried across chunk boundaries.
    expect(seedReader([...text], delimiter)).toEqual(expected);
  });

  it('both refuse a quoted value that is never closed', () => {
    expect(() => parse('a,b\n1,"open\n', {})).toThrow();
    expect(() => readCsvRecords(['a,b\n1,"open\n'])).toThrow(/a quoted value is never closed/);
  });
});

describe('unit-test fixture values follow the seed reader rules', () => {
  const VALUES = ['0', '1', '-2', '+3', '007', '-007', '0.5', '00.5', '.5', '1.', '1e3', '-1.5E-2', '2147483648', '9007199254740993', '99999999999999999999',
    'true', 'FALSE', 'True', 'yes', 'NaN', 'Infinity', '2024-01-01', '2024-01-01 10:00:00', 'abc', ' 1', '1 ', '1,5', '0x10'];

  it.each(VALUES)('%j', (v) => {
    const seedType = classifyValue(v);
    const fixture = fixtureValue(v, false);
    if (seedType === 'boolean') expect(fixture).toBe(v.toLowerCase() === 'true');
    else if (seedType === 'integer' || seedType === 'numeric' || seedType === 'bigint') {
      // A number; an integer past 2^53 keeps its exact digits, as text.
      const inexact = /^[+-]?\d+$/.test(v) && !Number.isSafeInteger(Number(v));
      expect(fixture).toBe(inexact ? v : Number(v));
    } else expect(fixture).toBe(v);
    // Quoted, every value is text as written.
    expect(fixtureValue(v, true)).toBe(v);
  });

  it('a fixture file: a quoted "007" stays a string, an unquoted empty value is null, a quoted one is empty text', () => {
    expect(parseCsv('\uFEFFid,code,note,n\r\n1,"007",,"42"\r\n2,007,"",42\r\n')).toEqual({
      columns: ['id', 'code', 'note', 'n'],
      rows: [
        { id: 1, code: '007', note: null, n: '42' },
        { id: 2, code: '007', note: '', n: 42 },
      ],
    });
  });

  it('a fixture row with the wrong number of values is an error naming the line', () => {
    expect(parseCsv('a,b\n1,2\n3\n')).toEqual({ error: expect.stringMatching(/line 3/) });
  });
});
