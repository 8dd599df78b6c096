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

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly targetName: string,
    private readonly secrets: readonly string[],
    /** An open connection to use instead of making one (the adapter's probe). */
    connected?: pg.Client,
  ) {
    this.client = connected;
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
      client.on('error', () => undefined);
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
