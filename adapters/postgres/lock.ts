// One writer per schema: a run takes a session-level advisory lock for each
// schema it builds into, held on a dedicated connection until the adapter
// closes. A second run into the same schema fails at once, naming the holder,
// instead of interleaving its swaps with ours. Read-only commands (show,
// debug) never ask for it, since only ensureSchema takes it.

import pg from 'pg';
import { RunError } from '../../core/errors.js';
import { scrubError } from './connection.js';

/** The first key of the two-key advisory lock: keeps our locks apart from other applications'. */
const LOCK_NAMESPACE = 'etl';

/** application_name of the connection holding the locks, as pg_stat_activity shows it. */
export const LOCK_APPLICATION_NAME = 'etl (lock)';

export class SchemaLocks {
  private client?: pg.Client;
  private connecting?: Promise<pg.Client>;
  private readonly held = new Set<string>();
  /** Why the locks' connection failed (an error or an end we did not ask for): the locks went with it. */
  private lostBecause?: string;
  private releasing = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly targetName: string,
    private readonly secrets: readonly string[],
    /** An open connection to use instead of making one (the adapter's probe). */
    connected?: pg.Client,
  ) {
    this.client = connected;
    if (connected) this.watch(connected);
  }

  /**
   * A session-level advisory lock lives as long as its connection: a dropped
   * connection, a terminated backend or idle_session_timeout releases it
   * without a word to us. The connection's error and end events say so.
   */
  private watch(client: pg.Client): void {
    const lost = (why: string) => {
      if (!this.releasing) this.lostBecause ??= why;
    };
    client.on('error', (err: Error) => lost(scrubError(err, this.secrets).message));
    client.on('end', () => lost('its connection to the server ended'));
  }

  /**
   * Throws when a lock this run took is no longer held: called before every
   * statement, so a run that lost its lock stops before its next write
   * instead of racing another run that may now hold it.
   */
  assertHeld(): void {
    if (this.lostBecause === undefined || this.held.size === 0) return;
    const schemas = [...this.held].map((s) => `"${s}"`).join(', ');
    throw new RunError(
      `target ${this.targetName}: this run lost its lock on schema ${schemas} (${this.lostBecause}); it stopped before writing anything more\n` +
        '  hint: another run may be building the schema now; run again once it is done. The lock is a session-level advisory lock: a transaction-mode pooler (PgBouncer pool_mode=transaction) cannot hold it, so connect etl to Postgres directly or through a session-mode pool',
      1,
    );
  }

  /** Takes the lock for `schema`, or throws RunError when another session holds it. */
  async acquire(schema: string): Promise<void> {
    if (this.held.has(schema)) return;
    const client = await this.connection();
    const r = await client
      .query<{ ok: boolean }>('select pg_catalog.pg_try_advisory_lock(hashtext($1), hashtext($2)) as ok', [LOCK_NAMESPACE, schema])
      .catch((err: unknown) => {
        throw scrubError(err, this.secrets);
      });
    if (r.rows[0]?.ok) {
      this.held.add(schema);
      return;
    }
    const holder = await client
      .query<{ pid: number; application_name: string; client_addr: string | null; backend_start: string }>(
        `select l.pid, a.application_name, a.client_addr::text, a.backend_start::text
           from pg_catalog.pg_locks l
           left join pg_catalog.pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and l.granted and l.objsubid = 2
            and l.database = (select oid from pg_catalog.pg_database where datname = current_database())
            and l.classid::int8 = (hashtext($1)::int8 & 4294967295) and l.objid::int8 = (hashtext($2)::int8 & 4294967295)`,
        [LOCK_NAMESPACE, schema],
      )
      .then((q) => q.rows[0])
      .catch(() => undefined);
    const who = holder
      ? ` (server pid ${holder.pid}${holder.application_name ? `, ${holder.application_name}` : ''}${holder.client_addr ? ` from ${holder.client_addr}` : ''}, connected since ${holder.backend_start})`
      : '';
    throw new RunError(
      `target ${this.targetName}: another etl run is building schema "${schema}"${who}\n  hint: wait for it to finish, then run again`,
      1,
    );
  }

  async releaseAll(): Promise<void> {
    this.releasing = true;
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    this.connecting = undefined;
    this.held.clear();
    // Ending the session releases its advisory locks.
    await client?.end().catch(() => undefined);
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({ ...this.config, application_name: LOCK_APPLICATION_NAME });
      this.watch(client);
      try {
        await client.connect();
      } catch (err) {
        this.connecting = undefined;
        throw scrubError(err, this.secrets);
      }
      this.client = client;
      return client;
    })();
    return this.connecting;
  }
}
