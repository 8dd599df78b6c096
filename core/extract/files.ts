// The files source of a loader: a glob over local paths (relative to the
// project), read by DuckDB's readers (read_csv, read_parquet, read_json) in an
// in-memory database of its own, whatever the target. Each file is a unit
// loaded once: its key is path@size@mtime, kept in the state with the data, so
// only new or changed files are read. CSV records that cannot be parsed or
// cast (to the types declared on the source's columns) are rejected by DuckDB
// (store_rejects) and handed back with their raw line and the error. The rows
// leave as Postgres-style CSV, the loaders' common currency (extractor.ts).

import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtemp, open as openFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { duckdb, type DuckDBConnection } from '../../adapters/duckdb/driver.js';
import type { LoaderSpec } from '../compiler/manifest.js';
import { RunError } from '../errors.js';
import type { ExtractRequest, Extractor, RejectedRecord, SourceColumn, SourceUnit } from './extractor.js';

/** The column that names the file a row came from. */
export const FILE_COLUMN = '_etl_file';

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
const qi = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** DuckDB's types as Postgres names them (what every target maps from). */
function postgresTypeOf(duck: string): string {
  const t = duck.toUpperCase();
  const dec = /^DECIMAL\((\d+),(\d+)\)$/.exec(t);
  if (dec) return `numeric(${dec[1]},${dec[2]})`;
  const map: Record<string, string> = {
    BIGINT: 'bigint',
    INTEGER: 'integer',
    SMALLINT: 'smallint',
    TINYINT: 'smallint',
    HUGEINT: 'numeric',
    DOUBLE: 'double precision',
    FLOAT: 'real',
    BOOLEAN: 'boolean',
    DATE: 'date',
    TIMESTAMP: 'timestamp without time zone',
    'TIMESTAMP WITH TIME ZONE': 'timestamp with time zone',
    TIME: 'time without time zone',
    UUID: 'uuid',
    JSON: 'json',
  };
  return map[t] ?? 'text';
}

export class FilesExtractor implements Extractor {
  private instance?: Awaited<ReturnType<typeof duckdb.DuckDBInstance.create>>;
  private conn?: DuckDBConnection;
  private found: Array<SourceUnit & { abs: string }> = [];
  private chosen: Array<SourceUnit & { abs: string }> = [];
  private tmp?: string;
  private rejects: RejectedRecord[] = [];
  /** Every file was rejected: there are no rows, nor columns. */
  private nothing = false;
  private cleaned = 0;

  constructor(
    private readonly spec: LoaderSpec,
    private readonly projectRoot: string,
    /** Declared types of the source's columns (data_type in the yml): CSV values are cast to them. */
    private readonly declaredTypes: Record<string, string>,
    private readonly options: { fileColumn: boolean } = { fileColumn: true },
  ) {}

  private format(file: string): 'csv' | 'parquet' | 'json' | 'ndjson' {
    if (this.spec.format) return this.spec.format;
    const ext = path.extname(file).toLowerCase();
    if (ext === '.parquet') return 'parquet';
    if (ext === '.json') return 'json';
    if (ext === '.ndjson' || ext === '.jsonl') return 'ndjson';
    return 'csv';
  }

  async open(): Promise<void> {
    this.instance = await duckdb.DuckDBInstance.create(':memory:');
    this.conn = await this.instance.connect();
    const pattern = path.resolve(this.projectRoot, this.spec.path!);
    const r = await this.conn.runAndReadAll(`select file from glob(${q(pattern)}) order by file`);
    for (const [abs] of r.getRowsJS() as Array<[string]>) {
      const s = await stat(abs);
      const rel = path.relative(this.projectRoot, abs).split(path.sep).join('/');
      this.found.push({ abs, name: rel, key: `${rel}@${s.size}@${Math.trunc(s.mtimeMs)}` });
    }
  }

  async units(): Promise<SourceUnit[]> {
    return this.found.map(({ name, key }) => ({ name, key }));
  }

  only(keys: Set<string>): void {
    this.chosen = this.found.filter((f) => keys.has(f.key));
  }

  /** The chosen files read into one temporary table (each file's format); its columns, with the file column last. */
  async columns(): Promise<SourceColumn[]> {
    const conn = this.conn!;
    if (this.chosen.length === 0) return [];
    const formats = new Set(this.chosen.map((f) => this.format(f.abs)));
    if (formats.size > 1) throw new RunError(`loader of source ${this.spec.source} (${this.spec.declared_at}): the files mix formats (${[...formats].join(', ')}); set format: or narrow path:`);
    const format = [...formats][0]!;
    try {
      await conn.run(`create temp table etl_rows as ${this.selectFrom(format, this.chosen.map((f) => f.abs))}`);
    } catch (err) {
      // CSV's bad records are DuckDB's rejects; a JSON or Parquet file that cannot be read is found file by file.
      if (format === 'csv') throw new RunError(`loader of source ${this.spec.source} (${this.spec.declared_at}): cannot read the files: ${firstLine(err)}`);
      await this.readFileByFile(format);
    }
    if (format === 'csv') {
      const rj = await conn.runAndReadAll(`select s.file_path, e.line, e.csv_line, e.error_message from reject_errors e join reject_scans s using (scan_id, file_id) order by s.file_path, e.line`);
      this.rejects = (rj.getRowsJS() as Array<[string, bigint, string, string]>).map(([file, line, raw, error]) => ({
        file: path.relative(this.projectRoot, file).split(path.sep).join('/'),
        line: Number(line),
        raw,
        error,
      }));
    }
    if (this.nothing) return [];
    const d = await conn.runAndReadAll('describe etl_rows');
    return (d.getRowsJS() as Array<[string, string]>).map(([name, type]) => ({ name, type: postgresTypeOf(type) }));
  }

  /** The rows of `files` (of one format), with the file column; CSV read with the declared types and its bad records kept aside. */
  private selectFrom(format: 'csv' | 'parquet' | 'json' | 'ndjson', files: string[], fileName?: string): string {
    const list = `[${files.map(q).join(', ')}]`;
    const types = Object.entries(this.declaredTypes);
    const typed = types.length ? `, types = {${types.map(([c, t]) => `${q(c)}: ${q(t)}`).join(', ')}}` : '';
    const reader =
      format === 'csv'
        ? `read_csv(${list}, header = true, filename = true, store_rejects = true${typed})`
        : format === 'parquet'
          ? `read_parquet(${list}, filename = true, union_by_name = true)`
          : `read_json(${list}, filename = true, format = ${format === 'ndjson' ? "'newline_delimited'" : "'auto'"})`;
    const file = fileName !== undefined ? q(fileName) : `substr(filename, ${this.projectRoot.length + 2})`;
    return `select * exclude (filename)${this.options.fileColumn ? `, ${file} as ${qi(FILE_COLUMN)}` : ''} from ${reader}`;
  }

  /**
   * The slow path, taken when the files cannot be read together: each file on
   * its own. A Parquet or JSON file that cannot be read is rejected whole (one
   * record: its path and the error); an NDJSON file is read line by line, its
   * malformed lines rejected with their text and the good ones loaded.
   */
  private async readFileByFile(format: 'parquet' | 'json' | 'ndjson'): Promise<void> {
    const conn = this.conn!;
    const parts: string[] = [];
    for (const [i, f] of this.chosen.entries()) {
      const part = qi(`etl_part_${i}`);
      try {
        await conn.run(`create temp table ${part} as ${this.selectFrom(format, [f.abs])}`);
        parts.push(part);
        continue;
      } catch (err) {
        if (format !== 'ndjson') {
          this.rejects.push({ file: f.name, line: 0, raw: format === 'json' ? await head(f.abs) : '', error: `cannot read the file: ${firstLine(err)}` });
          continue;
        }
      }
      const clean = await this.goodLines(f);
      if (clean === undefined) continue;
      await conn.run(`create temp table ${part} as ${this.selectFrom('ndjson', [clean], f.name)}`);
      parts.push(part);
    }
    if (parts.length === 0) {
      await conn.run('create temp table etl_rows as select 1 as etl_nothing where false');
      this.nothing = true;
      return;
    }
    await conn.run(`create temp table etl_rows as ${parts.map((p) => `select * from ${p}`).join(' union all by name ')}`);
    for (const p of parts) await conn.run(`drop table ${p}`);
  }

  /** The lines of an NDJSON file that are JSON objects, copied to a file of their own; the others rejected. Undefined if none is. */
  private async goodLines(f: SourceUnit & { abs: string }): Promise<string | undefined> {
    this.tmp ??= await mkdtemp(path.join(os.tmpdir(), 'etl-files-'));
    const clean = path.join(this.tmp, `clean-${this.cleaned++}.ndjson`);
    const out = createWriteStream(clean);
    let good = 0;
    let line = 0;
    for await (const text of createInterface({ input: createReadStream(f.abs), crlfDelay: Infinity })) {
      line++;
      if (text.trim() === '') continue;
      let error: string | undefined;
      try {
        const value: unknown = JSON.parse(text);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) error = 'the record is not a JSON object';
      } catch (err) {
        error = `malformed JSON: ${(err as Error).message}`;
      }
      if (error) {
        this.rejects.push({ file: f.name, line, raw: text, error });
        continue;
      }
      good++;
      if (!out.write(`${text}\n`)) await once(out, 'drain');
    }
    await new Promise<void>((resolve) => out.end(resolve));
    return good ? clean : undefined;
  }

  rejected(): RejectedRecord[] {
    return this.rejects;
  }

  /** Rows read per file, for the state. */
  async rowsPerFile(): Promise<Map<string, number>> {
    if (!this.options.fileColumn || this.nothing) return new Map();
    const r = await this.conn!.runAndReadAll(`select ${qi(FILE_COLUMN)}, count(*) from etl_rows group by all`);
    return new Map((r.getRowsJS() as Array<[string, bigint]>).map(([f, n]) => [f, Number(n)]));
  }

  extract(request: ExtractRequest): NodeJS.ReadableStream {
    const out = (async () => {
      this.tmp ??= await mkdtemp(path.join(os.tmpdir(), 'etl-files-'));
      const file = path.join(this.tmp, 'rows.csv');
      const list = request.columns.map((c) => qi(c.name)).join(', ');
      const where = request.since ? await this.sinceWhere(request.since) : '';
      // Postgres's CSV: NULL unquoted and empty, an empty string quoted (DuckDB quotes a value equal to the null string),
      // other values quoted only where they must be, as Postgres does (the loads cut the stream at newlines outside quotes).
      await this.conn!.run(`copy (select ${list} from etl_rows${where}) to ${q(file)} (format csv, header false, null '')`);
      return createReadStream(file);
    })();
    const pass = new PassThrough();
    out.then((s) => s.on('error', (e) => pass.destroy(e)).pipe(pass), (e: Error) => pass.destroy(e));
    return pass;
  }

  /**
   * Only the rows at or past the watermark (less the lookback), when the
   * source gave them all (an HTTP API without incremental.param): the
   * cursor is a field of the data, compared in its own type.
   */
  private async sinceWhere(since: NonNullable<ExtractRequest['since']>): Promise<string> {
    const d = await this.conn!.runAndReadAll('describe etl_rows');
    const type = (d.getRowsJS() as Array<[string, string]>).find(([name]) => name === since.cursor)?.[1];
    if (!type) return '';
    const time = /^(DATE|TIMESTAMP|TIME)/i.test(type);
    const numeric = /^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DECIMAL|DOUBLE|FLOAT|REAL)/i.test(type);
    const back = since.lookback && (time || numeric) ? (time ? ` - interval '${since.lookback} seconds'` : ` - ${since.lookback}`) : '';
    return ` where ${qi(since.cursor)} >= cast(${q(since.value)} as ${type})${back}`;
  }

  async close(): Promise<void> {
    this.conn?.closeSync();
    this.instance?.closeSync();
    this.conn = undefined;
    this.instance = undefined;
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!;
}

/** The start of a file that could not be read, as its raw record (64 KiB at most). */
async function head(file: string): Promise<string> {
  const handle = await openFile(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
}
