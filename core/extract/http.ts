// The HTTP source of a loader: a JSON API read page by page (page number,
// offset, a cursor from the response, or the Link header's rel="next"), with
// headers rendered from the environment (secrets never written anywhere), a
// rate limit, and the records found at `records_path`. Each request is retried
// on a transient failure (a connection error, 429, 5xx) with the backoff of
// core/runner/retry.ts, waiting at least what Retry-After asks; one circuit
// breaker per host (extractor.ts) stops calling a host that keeps failing
// for a cool-down. The records are
// written as NDJSON to a temporary file and read by DuckDB like a file
// (files.ts), so typing, casting and rejects are the same; a record that is
// not a JSON object is rejected with its raw payload.

import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LoaderSpec } from '../compiler/manifest.js';
import { RunError } from '../errors.js';
import { interpolateConfigString } from '../project/secrets.js';
import type { Clock } from '../clock.js';
import { backoffPolicy, CircuitOpenError, withRetry, RetriesExhausted } from '../runner/retry.js';
import { sourceBreaker, type ExtractRequest, type Extractor, type RejectedRecord, type SourceColumn } from './extractor.js';
import { FilesExtractor } from './files.js';

/** Pages read at most: a paginated API that never ends is a bug, not data. */
const MAX_PAGES = 100_000;

class HttpError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export class HttpExtractor implements Extractor {
  private tmp?: string;
  private reader?: FilesExtractor;
  private rejects: RejectedRecord[] = [];
  private secrets: string[] = [];
  private since?: string;
  private good = 0;
  /** Requests made, and retried, for the run's report. */
  requests = 0;

  constructor(
    private readonly spec: LoaderSpec,
    private readonly env: NodeJS.ProcessEnv,
    private readonly declaredTypes: Record<string, string>,
    private readonly clock: Clock,
  ) {}

  private render(value: string, what: string): string {
    const r = interpolateConfigString(value, {}, this.env, { values: new Set() }, /authorization|token|key|secret/i.test(what));
    if ('error' in r) throw new RunError(`loader of source ${this.spec.source} (${this.spec.declared_at}): ${what}: ${r.error}${r.hint ? `\n  hint: ${r.hint}` : ''}`);
    if (/authorization|token|key|secret/i.test(what) || /\{\{\s*env_var/.test(value)) this.secrets.push(r.value);
    return r.value;
  }

  async open(): Promise<void> {
    this.tmp = await mkdtemp(path.join(os.tmpdir(), 'etl-http-'));
  }

  /** Reads every page (since the watermark, when given) into records.ndjson, then lets DuckDB type them. */
  async columns(request?: { since?: string }): Promise<SourceColumn[]> {
    this.since = request?.since;
    const file = path.join(this.tmp!, 'records.ndjson');
    const out = createWriteStream(file);
    let good = 0;
    try {
      for await (const record of this.records()) {
        if (record === null || typeof record !== 'object' || Array.isArray(record)) {
          this.rejects.push({ file: this.spec.url ?? '', line: good + this.rejects.length + 1, raw: JSON.stringify(record) ?? String(record), error: 'the record is not a JSON object' });
          continue;
        }
        good++;
        if (!out.write(`${JSON.stringify(record)}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
    } finally {
      await new Promise<void>((r) => out.end(r));
    }
    this.good = good;
    if (good === 0) return [];
    this.reader = new FilesExtractor({ ...this.spec, type: 'files', path: 'records.ndjson', format: 'ndjson' }, this.tmp!, this.declaredTypes, { fileColumn: false });
    await this.reader.open();
    this.reader.only(new Set((await this.reader.units()).map((u) => u.key)));
    return this.reader.columns();
  }

  rejected(): RejectedRecord[] {
    return [...this.rejects, ...(this.reader?.rejected() ?? [])];
  }

  async rowsRead(): Promise<number> {
    return this.good;
  }

  extract(request: ExtractRequest): NodeJS.ReadableStream {
    return this.reader!.extract(request);
  }

  async close(): Promise<void> {
    await this.reader?.close();
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }

  /** Every record of every page, in order. */
  private async *records(): AsyncGenerator<unknown> {
    const p = this.spec.pagination ?? { type: 'none' as const };
    const size = p.size ?? 100;
    let url: string | undefined = this.firstUrl();
    let page = p.start ?? 1;
    let offset = 0;
    for (let n = 0; url && n < MAX_PAGES; n++) {
      const { body, link } = await this.get(url);
      const records = this.recordsOf(body);
      yield* records;
      switch (p.type) {
        case 'page':
          page++;
          url = records.length < size ? undefined : withParam(this.firstUrl(), p.param ?? 'page', String(page));
          break;
        case 'offset':
          offset += records.length;
          url = records.length < size ? undefined : withParam(this.firstUrl(), p.param ?? 'offset', String(offset));
          break;
        case 'cursor': {
          const next = dig(body, p.cursor_path ?? 'next_cursor');
          url = next === undefined || next === null || next === '' ? undefined : withParam(this.firstUrl(), p.param ?? 'cursor', String(next));
          break;
        }
        case 'link':
          url = link ? new URL(link, url).toString() : undefined;
          break;
        default:
          url = undefined;
      }
    }
  }

  private firstUrl(): string {
    const p = this.spec.pagination;
    let url = this.render(this.spec.url!, 'url');
    if (p && p.size !== undefined && p.size_param) url = withParam(url, p.size_param, String(p.size));
    if (p?.type === 'page') url = withParam(url, p.param ?? 'page', String(p.start ?? 1));
    if (this.since !== undefined && this.spec.incremental?.param) url = withParam(url, this.spec.incremental.param, isoTime(this.since));
    return url;
  }

  private recordsOf(body: unknown): unknown[] {
    const at = this.spec.records_path ? dig(body, this.spec.records_path) : body;
    if (!Array.isArray(at)) throw new RunError(`loader of source ${this.spec.source} (${this.spec.declared_at}): ${this.spec.records_path ? `records_path ${this.spec.records_path}` : 'the response'} is not a JSON array`);
    return at;
  }

  private lastRequestAt = 0;

  /** One GET, rate limited, retried on transient failures; the breaker of its host counts them. */
  private async get(url: string): Promise<{ body: unknown; link?: string }> {
    const host = new URL(url).host;
    const breaker = sourceBreaker(host, this.spec, this.clock);
    if (breaker.isOpen) throw new CircuitOpenError(host, breaker);
    const headers = Object.fromEntries(Object.entries(this.spec.headers ?? {}).map(([k, v]) => [k, this.render(v, k)]));
    const perSecond = this.spec.rate_limit;
    try {
      const { value } = await withRetry(
        async () => {
          if (perSecond) {
            const wait = this.lastRequestAt + 1000 / perSecond - Date.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          }
          this.lastRequestAt = Date.now();
          this.requests++;
          let res: Response;
          try {
            res = await fetch(url, { headers: { accept: 'application/json', ...headers }, signal: AbortSignal.timeout(60_000) });
          } catch (err) {
            throw new HttpError(`GET ${redactUrl(url)}: ${(err as Error).message}`, true);
          }
          if (res.status === 429 || res.status >= 500) {
            await res.body?.cancel();
            throw new HttpError(`GET ${redactUrl(url)}: HTTP ${res.status}`, true, retryAfterMs(res.headers.get('retry-after')));
          }
          if (!res.ok) throw new HttpError(`GET ${redactUrl(url)}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`, false);
          const text = await res.text();
          try {
            return { body: JSON.parse(text) as unknown, link: nextLink(res.headers.get('link')) };
          } catch {
            throw new HttpError(`GET ${redactUrl(url)}: the response is not JSON (${text.slice(0, 80)})`, false);
          }
        },
        {
          maxAttempts: 1 + (this.spec.retries ?? 5),
          policy: backoffPolicy(this.spec.retry_backoff ?? { strategy: 'exponential', base: '250ms', max: '30s' }),
          isTransient: (err) => err instanceof HttpError && err.transient,
          breaker,
        },
      );
      return value;
    } catch (err) {
      const cause = err instanceof RetriesExhausted ? err.cause : err;
      let message = (cause as Error)?.message ?? String(cause);
      for (const s of this.secrets) if (s) message = message.split(s).join('****');
      const tries = err instanceof RetriesExhausted ? ` after ${err.attempts.length} attempt${err.attempts.length === 1 ? '' : 's'}` : '';
      throw new RunError(`loader of source ${this.spec.source} (${this.spec.declared_at}): ${message}${tries}${breaker.isOpen ? `; ${breaker.reason}` : ''}`);
    }
  }
}

/** A timestamp as the engines print it ('2024-01-01 10:00:00+00') as APIs read it ('2024-01-01T10:00:00Z'); other values as they are. */
function isoTime(value: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)(\+00(?::?00)?|[+-]\d{2}(?::?\d{2})?)?$/.exec(value);
  if (!m) return value;
  const zone = m[3] === undefined ? '' : /^\+00(:?00)?$/.test(m[3]) ? 'Z' : m[3].length === 3 ? `${m[3]}:00` : m[3];
  return `${m[1]}T${m[2]}${zone}`;
}

/** Retry-After: seconds, or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The rel="next" target of a Link header. */
function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /rel="?next"?/i.test(m[2]!)) return m[1];
  }
  return undefined;
}

function withParam(url: string, name: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.toString();
}

function dig(body: unknown, dotted: string): unknown {
  let cur = body;
  for (const k of dotted.split('.')) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
  return cur;
}

/** A URL without its query (tokens travel there sometimes). */
function redactUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}
