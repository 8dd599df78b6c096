// Reading a seed with DuckDB's read_csv so that a malformed file is refused,
// not loaded: the dialect is fixed (the delimiter given or ",", RFC 4180
// quotes, no comment lines) instead of sniffed, since the sniffer, handed a
// ragged file, picks a dialect under which it parses (one column, no quote)
// and loads garbage. Strict mode without null padding makes a record with
// more or fewer fields than the header, or an unterminated quote, an error
// naming its line; bytes that are not UTF-8 are one already.

import type { Dialect } from '../dialect.js';
import { fileLineOf, headerFieldCount, lineOfInvalidUtf8, SeedFileError } from '../seed-file.js';

/** read_csv options for a seed: its dialect fixed, strict. */
export function seedCsvOptions(dialect: Dialect, delimiter: string): string {
  return `, delim = ${dialect.quoteString(delimiter)}, quote = '"', escape = '"', comment = '', strict_mode = true, null_padding = false`;
}

/**
 * The check run before the typed load: every record read as text, so no
 * type guess is involved and the first bad record is the one reported.
 * A count(*) over the file runs on all threads and costs a fraction of the load.
 */
export async function checkSeedSql(dialect: Dialect, csvPath: string, delimiter: string): Promise<string> {
  const fields = await headerFieldCount(csvPath, delimiter);
  const columns = Array.from({ length: fields }, (_, i) => `'c${i}': 'varchar'`).join(', ');
  return `select count(*) from read_csv(${dialect.quoteString(csvPath)}, header = true, auto_detect = false, columns = {${columns}}${seedCsvOptions(dialect, delimiter)})`;
}

/** What DuckDB's CSV error says, as a SeedFileError at the file's line; undefined for other errors. */
export async function seedFileProblem(err: unknown, csvPath: string, displayPath: string): Promise<SeedFileError | undefined> {
  const message = err instanceof Error ? err.message : String(err);
  const at = /CSV Error on Line: (\d+)/.exec(message);
  if (/Invalid unicode|not utf-8 encoded/i.test(message)) {
    return new SeedFileError(displayPath, await lineOfInvalidUtf8(csvPath), 'the file is not valid UTF-8 (save it as UTF-8)');
  }
  if (!at) return undefined;
  const line = await fileLineOf(csvPath, Number(at[1]));
  const count = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(message);
  if (count) return new SeedFileError(displayPath, line, `the record has ${count[2]} field${count[2] === '1' ? '' : 's'}, the header has ${count[1]}`);
  if (/unterminated quote/i.test(message)) return new SeedFileError(displayPath, line, 'a quoted value is never closed');
  const reason = message.split('\n').find((l) => l.trim() && !/^(Invalid Input Error: )?CSV Error on Line|^Original Line/.test(l.trim()));
  return new SeedFileError(displayPath, line, reason?.trim() ?? 'the record cannot be read');
}
