// What a loader's source system offers (one module per type: postgres.ts):
// its columns, and its rows as a CSV stream, all of them or those at or past a
// cursor value. The loader (core/materializations/loader.ts) does the rest,
// the same for every source: staging on the target, checks, the atomic
// publish or merge with the watermark.

import type { LoaderSpec } from '../compiler/manifest.js';
import { FilesExtractor } from './files.js';
import { HttpExtractor } from './http.js';
import { PostgresExtractor } from './postgres.js';

/** A column at the source, with the source's type name. */
export interface SourceColumn {
  name: string;
  type: string;
}

export interface ExtractRequest {
  /** The columns to read, in this order (the CSV's). */
  columns: SourceColumn[];
  /** Only rows with `cursor` >= `value` - `lookback` (seconds for time types, units otherwise). */
  since?: { cursor: string; value: string; lookback: number };
}

/** A unit of a source loaded once (a file): `key` changes when its contents may have (path@size@mtime). */
export interface SourceUnit {
  name: string;
  key: string;
}

/** A record the source could not parse or cast: kept in <source>__rejected. */
export interface RejectedRecord {
  file: string;
  line: number;
  raw: string;
  error: string;
}

export interface Extractor {
  open(): Promise<void>;
  /** The columns of what will be extracted; `since` (the stored watermark): sources that filter while reading (http) need it here. */
  columns(request?: { since?: string }): Promise<SourceColumn[]>;
  /** CSV without a header, as Postgres writes it (an empty unquoted field is NULL). */
  extract(request: ExtractRequest): NodeJS.ReadableStream;
  close(): Promise<void>;
  /** Sources of units (files): what is there now; the loader reads only those not loaded yet. */
  units?(): Promise<SourceUnit[]>;
  /** Restricts columns() and extract() to these units. */
  only?(keys: Set<string>): void;
  /** Records rejected while reading (after columns()). */
  rejected?(): RejectedRecord[];
  /** Rows read per unit name (after columns()). */
  rowsPerFile?(): Promise<Map<string, number>>;
  /** Good records read (after columns()), where there are no units. */
  rowsRead?(): Promise<number>;
}

export function extractorFor(spec: LoaderSpec, projectRoot: string, env: NodeJS.ProcessEnv, declaredTypes: Record<string, string>): Extractor {
  switch (spec.type) {
    case 'postgres':
      return new PostgresExtractor(spec, projectRoot, env);
    case 'files':
      return new FilesExtractor(spec, projectRoot, declaredTypes);
    case 'http':
      return new HttpExtractor(spec, env, declaredTypes);
  }
}

/** A lookback as seconds (a duration "10m") or as a plain number. */
export function lookbackAmount(lookback: number | string | undefined): number {
  if (lookback === undefined) return 0;
  if (typeof lookback === 'number') return lookback;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$/.exec(lookback);
  return m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] : 0;
}
