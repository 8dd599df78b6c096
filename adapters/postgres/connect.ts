// The live connections of a postgres target: the first connection (the probe:
// is the server there, which version, TLS as sslmode says), the pool sized by
// the target's threads, the run's schema locks, sessions handed out and taken
// back clean, and cancelling what runs. Turning the target's settings into
// pg's is connection.ts; what runs on a session is the adapter's.

import pg from 'pg';
import { RunError } from '../../core/errors.js';
import { connectionSettings, scrub, scrubError, type ConnectionSettings, type PostgresTarget } from './connection.js';
import { connectHint, errorText, isConnectionLost } from './errors.js';
import { LOCK_APPLICATION_NAME, SchemaLocks } from './lock.js';
import { PgSession, typeParsers } from './session.js';

/** The advisory lock that serializes setting up a shared schema (keys: this and the schema name). */
const SHARED_SCHEMA_LOCK_NAMESPACE = 'etl meta setup';

const noop = () => undefined;

export class PgConnections {
  private settings?: ConnectionSettings;
  /** The settings connections are made with (after sslmode=prefer chose TLS or not). */
  private clientConfig?: pg.ClientConfig;
  private pool?: pg.Pool;
  private locks?: SchemaLocks;
  private readonly busy = new Set<PgSession>();
  private readonly typeNames = new Map<number, string>();
  private interrupting = false;
  /** close() was called: an open() still under way stops at its next step. */
  private closed = false;
  /** The probe's connection while it connects, so that close() can cut it short. */
  private connectingClient?: pg.Client;
  /** The server's server_version_num, once open. */
  serverVersion = 0;

  constructor(
    private readonly target: PostgresTarget,
    private readonly projectRoot: string,
    /** Take the run lock of the target's schema in open() (commands that build). */
    private readonly lockTargetSchema: boolean,
  ) {}

  /** Values no message may show (the password, a url's credentials). */
  get secrets(): readonly string[] {
    return this.settings?.secrets ?? [];
  }

  async open(): Promise<void> {
    const settings = connectionSettings(this.target, this.projectRoot);
    this.settings = settings;
    let config = settings.config;
    let first: pg.Client;
    try {
      first = await this.probe(config);
    } catch (err) {
      // sslmode=prefer: a server without TLS gets a plain connection, as with libpq.
      if (settings.sslmode !== 'prefer' || !/does not support SSL/i.test(errorText(err))) throw this.connectError(err);
      config = { ...config, ssl: false };
      try {
        first = await this.probe(config);
      } catch (err2) {
        throw this.connectError(err2);
      }
    }
    if (this.closed) {
      await first.end().catch(noop);
      throw new RunError(`target ${this.target.name}: closed while connecting`);
    }
    this.clientConfig = config;
    const pool = new pg.Pool({ ...config, types: typeParsers, max: this.target.threads, idleTimeoutMillis: 30_000 });
    // An idle connection the server drops is removed by the pool; a busy one
    // reports through its running query. Either way, no unhandled 'error'.
    pool.on('error', noop);
    pool.on('connect', (client) => client.on('error', noop));
    this.pool = pool;
    // The first pooled connection is made while the lock is taken: the run's
    // first statements need it right after.
    pool.connect().then((c) => c.release(), noop);
    // The probe's connection becomes the one that holds the schema locks: one
    // connection fewer to set up per run. A read-only command takes no lock.
    if (!this.lockTargetSchema) void first.end().catch(noop);
    this.locks = new SchemaLocks(config, this.target.name, settings.secrets, this.lockTargetSchema ? first : undefined);
    if (this.lockTargetSchema) {
      // Before anything is written (target/, etl_meta, the schema): a second
      // run on this schema fails here and changes nothing, as a second run on
      // a DuckDB file does.
      try {
        await this.locks.acquire(this.target.schema);
      } catch (err) {
        await this.close();
        throw err;
      }
    }
  }

  /**
   * Connects and asks the server's version: proves the target is reachable.
   * Returns the connection, named for its later use: holding the schema locks.
   */
  private async probe(config: pg.ClientConfig): Promise<pg.Client> {
    const client = new pg.Client({ ...config, application_name: LOCK_APPLICATION_NAME });
    client.on('error', noop);
    this.connectingClient = client;
    try {
      await client.connect();
      const r = await client.query<{ v: string }>("select current_setting('server_version_num') as v");
      this.serverVersion = Number(r.rows[0]?.v);
      return client;
    } catch (err) {
      await client.end().catch(noop);
      throw err;
    } finally {
      this.connectingClient = undefined;
    }
  }

  private connectError(err: unknown): RunError {
    const s = this.settings!;
    const hint = connectHint(err, s.address);
    // The database or user name may be the password itself (it happens): scrub all of it.
    const message = `cannot connect to postgres target ${this.target.name} at ${s.address} (database ${s.database}, user ${s.user}): ${errorText(err)}${hint ? `\n  hint: ${hint}` : ''}`;
    return new RunError(scrub(message, s.secrets), 2);
  }

  /**
   * Also while open() is under way (a project found bad while the connection
   * was being made): a connect that is still waiting on the network is cut
   * short rather than waited for up to connect_timeout.
   */
  async close(): Promise<void> {
    this.closed = true;
    // A client still connecting waits for the server before end() completes:
    // its socket is destroyed instead (its connect() then fails, and open() with it).
    this.connectingClient?.connection.stream.destroy();
    const pool = this.pool;
    this.pool = undefined;
    // Each end waits for the server to close its session: side by side.
    await Promise.all([this.locks?.releaseAll(), pool?.end().catch(noop)]);
  }

  async withSession<T>(fn: (session: PgSession) => Promise<T>): Promise<T> {
    if (!this.pool) throw new Error('PostgresAdapter: open() was not called');
    this.locks?.assertHeld();
    const secrets = this.settings!.secrets;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw scrubError(err, secrets);
    }
    const pid = (client as unknown as { processID: number | null }).processID ?? 0;
    const session = new PgSession(client, pid, secrets, this.typeNames, () => this.locks?.assertHeld());
    this.busy.add(session);
    let broken: unknown;
    try {
      return await fn(session);
    } catch (err) {
      if (isConnectionLost(err)) broken = err;
      if (this.interrupting && (err as { code?: string })?.code === '57014') (err as Error).message = `interrupted: ${(err as Error).message}`;
      throw err;
    } finally {
      this.busy.delete(session);
      if (!broken && session.inTransaction()) {
        // Never hand the next caller a connection in the middle of a transaction.
        await client.query('rollback').catch((err: unknown) => (broken = err));
      }
      if (!broken && session.sharedSchemaLock !== undefined) {
        await client.query('select pg_catalog.pg_advisory_unlock(hashtext($1), hashtext($2))', [SHARED_SCHEMA_LOCK_NAMESPACE, session.sharedSchemaLock]).catch((err: unknown) => (broken = err));
      }
      // release(err) destroys the client: a dropped connection is never reused.
      client.release(broken ? (broken as Error) : undefined);
    }
  }

  /** Cancels the statement running on every busy connection (pg_cancel_backend over a separate connection). */
  async cancelRunning(): Promise<void> {
    const pids = [...this.busy].map((s) => s.pid).filter((pid) => pid > 0);
    if (!pids.length || !this.clientConfig) return;
    this.interrupting = true;
    const client = new pg.Client(this.clientConfig);
    client.on('error', noop);
    try {
      await client.connect();
      await client.query('select pg_catalog.pg_cancel_backend(pid) from unnest($1::int[]) as pid', [pids]);
    } catch {
      // best effort: the run is stopping anyway
    } finally {
      await client.end().catch(noop);
    }
  }

  /** The run lock of a schema this run builds into (held until close). */
  async lockSchema(schema: string): Promise<void> {
    await this.locks?.acquire(schema);
  }

  /**
   * A shared schema (the state's) is used by every run on the database,
   * whatever schema it builds: holding a run lock on it would make two runs
   * into different schemas exclude each other. Its setup (the migrations, and
   * the run's first record) is serialized instead, by a lock this session
   * holds until withSession takes it back: two first runs on a fresh database
   * would otherwise both create its tables.
   */
  async lockSharedSchema(session: PgSession, schema: string): Promise<void> {
    await session.query('select pg_catalog.pg_advisory_lock(hashtext($1), hashtext($2))', [SHARED_SCHEMA_LOCK_NAMESPACE, schema]);
    session.sharedSchemaLock = schema;
  }
}
