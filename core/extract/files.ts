// The files source of a loader: a glob over local paths (relative to the
// project), read by DuckDB's readers (read_csv, read_parquet, read_json) in an
// in-memory database of its own, whatever the target. Each file is a unit
// loaded once: its key is path@size@mtime, kept in the state with the data, so
// only new or changed files are read. CSV records that cannot be parsed or
// cast (to the types declared on the source's columns) are rejected by DuckDB
// (store_rejects) and handed back with their raw line and the error. The rows
// leave as Postgres-style CSV, the loaders' common currency (extractor.ts).

import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
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
    const list = `[${this.chosen.map((f) => q(f.abs)).join(', ')}]`;
    const types = Object.entries(this.declaredTypes);
    const typed = types.length ? `, types = {${types.map(([c, t]) => `${q(c)}: ${q(t)}`).join(', ')}}` : '';
    const reader =
      format === 'csv'
        ? `read_csv(${list}, header = true, filename = true, store_rejects = true${typed})`
        : format === 'parquet'
          ? `read_parquet(${list}, filename = true, union_by_name = true)`
          : `read_json(${list}, filename = true, format = ${format === 'ndjson' ? "'newline_delimited'" : "'auto'"})`;
    const rel = `substr(filename, ${this.projectRoot.length + 2})`;
    try {
      await conn.run(`create temp table etl_rows as select * exclude (filename)${this.options.fileColumn ? `, ${rel} as ${qi(FILE_COLUMN)}` : ''} from ${reader}`);
    } catch (err) {
      throw new RunError(`loader of source ${this.spec.source} (${this.spec.declared_at}): cannot read the files: ${(err as Error).message.split('\n')[0]}`);
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
    const d = await conn.runAndReadAll('describe etl_rows');
    return (d.getRowsJS() as Array<[string, string]>).map(([name, type]) => ({ name, type: postgresTypeOf(type) }));
  }

  rejected(): RejectedRecord[] {
    return this.rejects;
  }

  /** Rows read per file, for the state. */
  async rowsPerFile(): Promise<Map<string, number>> {
    if (!this.options.fileColumn) return new Map();
    const r = await this.conn!.runAndReadAll(`select ${qi(FILE_COLUMN)}, count(*) from etl_rows group by all`);
    return new Map((r.getRowsJS() as Array<[string, bigint]>).map(([f, n]) => [f, Number(n)]));
  }

  extract(request: ExtractRequest): NodeJS.ReadableStream {
    const out = (async () => {
      this.tmp = await mkdtemp(path.join(os.tmpdir(), 'etl-files-'));
      const file = path.join(this.tmp, 'rows.csv');
      const list = request.columns.map((c) => qi(c.name)).join(', ');
      // Postgres's CSV: NULL unquoted and empty, an empty string quoted.
      await this.conn!.run(`copy (select ${list} from etl_rows) to ${q(file)} (format csv, header false, force_quote *, null '')`);
      return createReadStream(file);
    })();
    const pass = new PassThrough();
    out.then((s) => s.on('error', (e) => pass.destroy(e)).pipe(pass), (e: Error) => pass.destroy(e));
    return pass;
  }

  async close(): Promise<void> {
    this.conn?.closeSync();
    this.instance?.closeSync();
    this.conn = undefined;
    this.instance = undefined;
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }
}
