// The Postgres source of a loader: one connection to the source database
// (url from the environment, TLS as for a Postgres target: sslmode,
// sslrootcert), the source's columns with their types as format_type prints
// them, and the rows streamed out with COPY (...) TO STDOUT in CSV. Nothing is
// read into memory: the stream goes straight to the target's stageCsv.

import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { connectionSettings, scrub, scrubError } from '../../adapters/postgres/connection.js';
import { traceSql } from '../../adapters/trace.js';
import type { Clock } from '../clock.js';
import type { LoaderSpec } from '../compiler/manifest.js';
import { CircuitOpenError } from '../runner/retry.js';
import { RunError } from '../errors.js';
import { interpolateConfigString } from '../project/secrets.js';
import { sourceBreaker, TransientSourceError, type ExtractRequest, type Extractor, type SourceColumn } from './extractor.js';

/** Connection failures that say the host is down or unreachable, not that the request was wrong. */
const UNREACHABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|timeout|terminated unexpectedly|the database system is (starting up|shutting down)/i;

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Types whose lookback is an interval (a duration); other cursors subtract a number. */
const TIME_TYPE = /^(date|timestamp|time)/i;

/**
 * A connection to a loader's Postgres source (TLS as for a Postgres target;
 * the host's circuit breaker); `replication`: a logical replication
 * connection (a CDC slot's first load).
 */
export async function connectSource(spec: LoaderSpec, projectRoot: string, env: NodeJS.ProcessEnv, clock: Clock, options: { replication?: boolean } = {}): Promise<{ client: pg.Client; secrets: string[] }> {
  const rendered = interpolateConfigString(spec.url!, {}, env, { values: new Set() }, true);
  if ('error' in rendered) throw new RunError(`loader of source ${spec.source} (${spec.declared_at}): url: ${rendered.error}${rendered.hint ? `\n  hint: ${rendered.hint}` : ''}`);
  const settings = connectionSettings(
    { name: `source ${spec.source}`, url: rendered.value, sslmode: spec.sslmode, sslrootcert: spec.sslrootcert, connect_timeout: spec.connect_timeout, schema: 'public', threads: 1 },
    projectRoot,
  );
  const connect = async (config: pg.ClientConfig) => {
    const client = new pg.Client({ ...config, application_name: 'etl extract', ...(options.replication ? { replication: 'database' } : {}) });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  };
  // A host that keeps refusing connections is not called again for a while (extractor.ts).
  const breaker = sourceBreaker(settings.address, spec, clock);
  if (breaker.isOpen) throw new CircuitOpenError(settings.address, breaker);
  try {
    const t0 = performance.now();
    const client = await connect(settings.config).catch((err: unknown) => {
      // sslmode=prefer: a server without TLS gets a plain connection, as with libpq.
      if (settings.sslmode === 'prefer' && /does not support SSL/i.test(String((err as Error)?.message))) return connect({ ...settings.config, ssl: false });
      throw err;
    });
    breaker.success();
    traceSql(`-- source ${spec.source}: connected${options.replication ? ' (replication)' : ''}`, t0);
    return { client, secrets: settings.secrets };
  } catch (err) {
    const message = scrub((err as Error).message, settings.secrets);
    const unreachable = UNREACHABLE.test(`${(err as { code?: string }).code ?? ''} ${message}`);
    if (unreachable) breaker.transientFailure(message);
    // Worth another try while the host's breaker is closed (the loader's retries); open, the host rests.
    throw new (unreachable && !breaker.isOpen ? TransientSourceError : RunError)(`loader of source ${spec.source}: cannot connect to ${settings.address}/${settings.database}${options.replication ? ' (replication connection)' : ''}: ${message}${breaker.isOpen ? `; ${breaker.reason}` : ''}`);
  }
}

export class PostgresExtractor implements Extractor {
  private client?: pg.Client;
  private secrets: string[] = [];

  constructor(
    private readonly spec: LoaderSpec,
    private readonly projectRoot: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly clock: Clock,
    /** A snapshot exported by the source (a CDC slot's): the rows are read as of it. */
    private readonly snapshot?: string,
  ) {}

  /** What the loader reads at the source: its table, or its query. */
  private baseSql(): string {
    if (this.spec.query !== undefined) return this.spec.query.trim().replace(/;\s*$/, '');
    return `select * from ${this.spec.table!.split('.').map(quoteIdent).join('.')}`;
  }

  async open(): Promise<void> {
    ({ client: this.client, secrets: this.secrets } = await connectSource(this.spec, this.projectRoot, this.env, this.clock));
    try {
      // One snapshot for the description and the rows.
      await this.client.query('begin isolation level repeatable read read only');
      if (this.snapshot) await this.client.query(`set transaction snapshot ${this.client.escapeLiteral(this.snapshot)}`);
    } catch (err) {
      throw new RunError(`loader of source ${this.spec.source}: cannot start reading: ${scrub((err as Error).message, this.secrets)}`);
    }
    // Described at once, while the loader reads the target's state (an incremental run's fixed cost).
    this.described = this.describe();
    this.described.catch(() => undefined);
  }

  private described?: Promise<SourceColumn[]>;

  columns(): Promise<SourceColumn[]> {
    return this.described!;
  }

  private uniqueKeys: string[][] = [];

  /**
   * Whether the source itself guarantees `key` unique: a table (not a query)
   * with a primary key or a unique index on NOT NULL columns, all of them in
   * `key`. Then the extracted rows need no check (a scan of the whole staged
   * table on a full load).
   */
  async keyIsUnique(key: string[]): Promise<boolean> {
    await this.described;
    return this.uniqueKeys.some((cols) => cols.every((c) => key.includes(c)));
  }

  private async describe(): Promise<SourceColumn[]> {
    const client = this.client!;
    const t0 = performance.now();
    try {
      const described = await client.query(`select * from (${this.baseSql()}) as etl_source limit 0`);
      const oids = described.fields.map((f) => f.dataTypeID);
      const mods = described.fields.map((f) => f.dataTypeModifier);
      // The types as format_type prints them and, for a table, its unique keys: one round trip.
      const table = this.spec.query === undefined && this.spec.incremental ? this.spec.table!.split('.').map(quoteIdent).join('.') : null;
      const info = await client.query<{ types: string[]; keys: string[][] | null }>(
        `select array(select format_type(o, m) from unnest($1::oid[], $2::int[]) with ordinality as x(o, m, n) order by n) as types,
                (select json_agg(cols) from (
                   select array_agg(a.attname::text order by k.n) as cols
                     from pg_index i cross join lateral unnest(i.indkey) with ordinality as k(attnum, n)
                     join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                    where $3::text is not null and i.indrelid = $3::text::regclass and i.indisunique and i.indimmediate and i.indpred is null and i.indexprs is null
                    group by i.indexrelid having bool_and(a.attnotnull)) as unique_keys) as keys`,
        [described.fields.map((f) => f.dataTypeID), described.fields.map((f) => f.dataTypeModifier), table],
      );
      const types = info.rows[0]!.types;
      this.uniqueKeys = info.rows[0]!.keys ?? [];
      traceSql(`-- source ${this.spec.source}: described (columns, types${table ? ', unique keys' : ''})`, t0);
      return described.fields.map((f, i) => ({ name: f.name, type: types[i]! }));
    } catch (err) {
      throw scrubError(new Error(`loader of source ${this.spec.source} (${this.spec.declared_at}): cannot read ${this.spec.query !== undefined ? 'its query' : `table ${this.spec.table}`} at the source: ${(err as Error).message}`), this.secrets);
    }
  }

  extract(request: ExtractRequest): NodeJS.ReadableStream {
    const client = this.client!;
    const list = request.columns.map((c) => quoteIdent(c.name)).join(', ');
    let where = '';
    let traced = '';
    if (request.since) {
      const { cursor, value, lookback } = request.since;
      const col = request.columns.find((c) => c.name === cursor)!;
      const bound = `cast(${client.escapeLiteral(value)} as ${col.type})`;
      traced = client.escapeLiteral(value);
      const back = lookback ? (TIME_TYPE.test(col.type) ? ` - interval '${lookback} seconds'` : ` - ${lookback}`) : '';
      where = ` where ${quoteIdent(cursor)} >= ${bound}${back}`;
    }
    const sql = `copy (select ${list} from (${this.baseSql()}) as etl_source${where}) to stdout with (format csv)`;
    const t0 = performance.now();
    const stream = client.query(copyTo(sql));
    stream.on('error', (err: Error) => scrubError(err, this.secrets));
    // Traced without the watermark's value (the trace prints statements, not data).
    stream.on('end', () => traceSql(`-- source ${this.spec.source}: ${traced ? sql.replace(traced, "'<watermark>'") : sql}`, t0));
    return stream;
  }

  async close(): Promise<void> {
    if (!this.client) return;
    await this.client.query('rollback').catch(() => undefined);
    await this.client.end().catch(() => undefined);
    this.client = undefined;
  }
}
