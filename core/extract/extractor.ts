// What a loader's source system offers (one module per type: postgres.ts):
// its columns, and its rows as a CSV stream, all of them or those at or past a
// cursor value. The loader (core/materializations/loader.ts) does the rest,
// the same for every source: staging on the target, checks, the atomic
// publish or merge with the watermark.

import { Transform } from 'node:stream';
import type { Clock } from '../clock.js';
import { RunError } from '../errors.js';
import type { LoaderSpec } from '../compiler/manifest.js';
import { CircuitBreaker } from '../runner/retry.js';
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
  /** Whether the source guarantees `key` unique in what it gives (a primary key at the source): the loader's check is skipped. */
  keyIsUnique?(key: string[]): Promise<boolean>;
  /** Good records read (after columns()), where there are no units. */
  rowsRead?(): Promise<number>;
}

export function extractorFor(spec: LoaderSpec, projectRoot: string, env: NodeJS.ProcessEnv, declaredTypes: Record<string, string>, clock: Clock): Extractor {
  switch (spec.type) {
    case 'postgres':
      return new PostgresExtractor(spec, projectRoot, env, clock);
    case 'files':
      return new FilesExtractor(spec, projectRoot, declaredTypes);
    case 'http':
      return new HttpExtractor(spec, env, declaredTypes, clock);
  }
}

/** A source that refused or dropped the connection (its host's breaker still closed): the load may be tried again. */
export class TransientSourceError extends RunError {}

/** Consecutive transient failures after which a source host is not called, and for how long (seconds), unless the loader says. */
const BREAKER_FAILURES = 5;
const BREAKER_COOL_DOWN_SECONDS = 300;

/**
 * One breaker per source host for the life of the process (a run, or the
 * runs of a scheduler or API caller): loaders of the same host share it. Its
 * cool-down is measured on the clock of the run asking (core/clock.ts).
 */
const breakers = new Map<string, { breaker: CircuitBreaker; clock: Clock }>();

export function sourceBreaker(host: string, spec: LoaderSpec, clock: Clock): CircuitBreaker {
  let entry = breakers.get(host);
  if (!entry) {
    const config = spec.circuit_breaker;
    const failures = typeof config === 'number' ? config : (config?.failures ?? BREAKER_FAILURES);
    const coolDown = typeof config === 'object' && config.cool_down !== undefined ? lookbackAmount(config.cool_down) : BREAKER_COOL_DOWN_SECONDS;
    const made: { breaker?: CircuitBreaker; clock: Clock } = { clock };
    made.breaker = new CircuitBreaker(failures, { ms: coolDown * 1000, now: () => made.clock.now().getTime() });
    entry = made as { breaker: CircuitBreaker; clock: Clock };
    breakers.set(host, entry);
  }
  entry.clock = clock;
  return entry.breaker;
}

/** A lookback as seconds (a duration "10m") or as a plain number. */
export function lookbackAmount(lookback: number | string | undefined): number {
  if (lookback === undefined) return 0;
  if (typeof lookback === 'number') return lookback;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$/.exec(lookback);
  return m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] : 0;
}

/**
 * A source's stream as a stage reads it: every chunk's bytes passed to
 * `count`, and the source's error made the stream's. The stage reads that
 * error from the stream; one raised before the stage reads must not become an
 * 'error' event without a listener, which would end the process.
 */
export function countedSource(rows: NodeJS.ReadableStream, count: (bytes: number) => void): Transform {
  const counted = new Transform({
    transform(chunk: Buffer, _enc, done) {
      count(chunk.length);
      done(null, chunk);
    },
  });
  rows.on('error', (err: Error) => counted.destroy(err));
  counted.on('error', () => undefined);
  return rows.pipe(counted);
}
