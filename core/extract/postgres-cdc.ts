// The change stream of a Postgres source table (`incremental: { mode: cdc }`):
// a logical replication slot with the test_decoding plugin, read through
// Postgres's SQL interface to logical decoding. No extra library and no
// replication protocol for the changes: pg_logical_slot_peek_changes reads
// them without consuming them, and the slot is advanced only after the target
// has committed the changes with the new position
// (core/materializations/loader-cdc.ts says why that order makes a crash lose
// and duplicate nothing).
//
// - The first load (and every full reload) creates the slot on a logical
//   replication connection with EXPORT_SNAPSHOT, and the table is copied as of
//   that snapshot (PostgresExtractor with the snapshot): the copy holds exactly
//   the transactions that committed before the slot's consistent point, and
//   the slot streams exactly those after it.
// - changes() streams, as CSV for the target's stageCsv, one row per change of
//   the table committed after the stored position: its order, its kind
//   (u: the row as it is now, d: the row is gone), which columns were left out
//   (unchanged TOAST values), and the columns. The decoding, the join of each
//   change to its transaction's commit position and the order are the
//   server's (one COPY ... TO STDOUT); Node parses one line at a time.
// - test_decoding prints every change of the database; only the table's and
//   the last position read leave the server.

import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { scrub, scrubError } from '../../adapters/postgres/connection.js';
import type { Clock } from '../clock.js';
import type { LoaderSpec } from '../compiler/manifest.js';
import { RunError } from '../errors.js';
import type { SourceColumn } from './extractor.js';
import { connectSource } from './postgres.js';

/** The columns a change row has before the table's. */
export const CHANGE_SEQ = 'etl_cdc_seq';
export const CHANGE_OP = 'etl_cdc_op';
export const CHANGE_UNCHANGED = 'etl_cdc_unchanged';

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** A replication slot as the source has it. */
export interface SlotState {
  plugin: string;
  database: string;
  /** confirmed_flush_lsn: changes committed before it are not streamed again. */
  confirmed: string | null;
  /** wal_status = lost: the WAL the slot needed was removed (max_slot_wal_keep_size); it streams nothing again. */
  lost: boolean;
  active: boolean;
  /** A test_decoding slot of the database connected to: one this loader can read. */
  ours: boolean;
}

/** What one read of the change stream found. */
export interface ChangeSummary {
  /** Changes of the table read (after the stored position). */
  changes: number;
  /** The position the stream was read to: store it with the data, then advance the slot to it. */
  position: string;
  /** A TRUNCATE of the table: its rows cannot be known from the stream, the table is reloaded. */
  truncated: boolean;
  /** Indexes (in the columns) of columns some change left out (unchanged TOAST values). */
  unchanged: Set<number>;
}

/** A Postgres LSN ("16/B374D848") as a number, to compare. */
export function lsnValue(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn.trim());
  if (!m) throw new Error(`not a Postgres LSN: ${lsn}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

const maxLsn = (...lsns: Array<string | null | undefined>): string =>
  lsns.filter((l): l is string => !!l).reduce((a, b) => (lsnValue(b) > lsnValue(a) ? b : a));

/**
 * The slot a loader reads when `slot:` does not name one: one per source
 * database, target and raw table, the same on every run (a slot holds WAL
 * until it is read, so a name that changed would leave the old one behind).
 * Slot names are global to the server while a slot belongs to one database:
 * the source database is part of the name, so two projects alike but for the
 * database they read (two checkouts, two test runs) never take each other's.
 */
export function defaultSlotName(identity: { project: string; target: string; database?: string | null; sourceDatabase: string; schema: string; table: string }): string {
  const hash = createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 8);
  const readable = `${identity.schema}_${identity.table}`.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 63 - 'etl__'.length - hash.length);
  return `etl_${readable}_${hash}`;
}

export class PostgresCdcSource {
  private client?: pg.Client;
  private secrets: string[] = [];
  private replication?: pg.Client;
  /** The table as the source names it (schema, name), once resolved. */
  private resolved?: { schema: string; name: string };

  constructor(
    private readonly spec: LoaderSpec,
    private readonly projectRoot: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly clock: Clock,
    /** The slot's name, or how to name it from the source database once connected. */
    private readonly slotName: string | ((sourceDatabase: string) => string),
  ) {}

  private named?: string;

  /** The replication slot this source reads; known once open() has connected. */
  get slot(): string {
    if (this.named === undefined) throw new Error('PostgresCdcSource.slot read before open()');
    return this.named;
  }

  private fail(what: string, err: unknown): RunError {
    return new RunError(`loader of source ${this.spec.source} (${this.spec.declared_at}): ${what}: ${scrub((err as Error).message, this.secrets)}`);
  }

  async open(): Promise<void> {
    ({ client: this.client, secrets: this.secrets } = await connectSource(this.spec, this.projectRoot, this.env, this.clock));
    const r = await this.client.query<{ wal_level: string; database: string }>(`select current_setting('wal_level') as wal_level, current_database() as database`);
    this.named = typeof this.slotName === 'string' ? this.slotName : this.slotName(r.rows[0]!.database);
    if (r.rows[0]?.wal_level !== 'logical') {
      throw new RunError(
        `loader of source ${this.spec.source} (${this.spec.declared_at}): incremental mode cdc needs wal_level = logical at the source, it is ${r.rows[0]?.wal_level}\n  hint: ALTER SYSTEM SET wal_level = logical and restart the server (see "CDC" in the README), or load by a cursor column: incremental: { cursor: updated_at, primary_key: id }`,
      );
    }
  }

  /**
   * The table's schema and name, and the key that identifies its rows: the
   * yml's primary_key, else the table's primary key. Deletes carry only the
   * columns of the table's REPLICA IDENTITY, so the key must be among them.
   */
  async describe(): Promise<{ schema: string; name: string; key: string[] }> {
    const client = this.client!;
    const table = this.spec.table!;
    let row: { schema: string; name: string; identity: string; pk: string[] | null; identity_cols: string[] | null } | undefined;
    try {
      const r = await client.query(
        `select n.nspname as schema, c.relname as name, c.relreplident as identity,
           (select array_agg(a.attname::text order by k.ord) from pg_index i cross join unnest(i.indkey) with ordinality as k(attnum, ord) join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum where i.indrelid = c.oid and i.indisprimary) as pk,
           (select array_agg(a.attname::text order by k.ord) from pg_index i cross join unnest(i.indkey) with ordinality as k(attnum, ord) join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum where i.indrelid = c.oid and i.indisreplident) as identity_cols
         from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = to_regclass($1)`,
        [table.split('.').map(quoteIdent).join('.')],
      );
      row = r.rows[0];
    } catch (err) {
      throw this.fail(`cannot read table ${table} at the source`, err);
    }
    if (!row) throw new RunError(`loader of source ${this.spec.source} (${this.spec.declared_at}): table ${table} does not exist at the source\n  hint: name it as the source does (schema.table), with table:`);
    const key = this.spec.cdc?.primary_key ?? row.pk ?? undefined;
    if (!key?.length) {
      throw new RunError(
        `loader of source ${this.spec.source} (${this.spec.declared_at}): table ${table} has no primary key, and incremental.primary_key names none: a change cannot be matched to a row\n  hint: add a primary key at the source, or name the columns that identify a row (incremental: { mode: cdc, primary_key: id }) and set REPLICA IDENTITY FULL on the table`,
      );
    }
    // What a delete carries: d (default) the primary key, i an index's columns, f every column, n nothing.
    const carried = row.identity === 'f' ? undefined : row.identity === 'i' ? (row.identity_cols ?? []) : row.identity === 'd' ? (row.pk ?? []) : [];
    const missing = carried ? key.filter((k) => !carried.includes(k)) : [];
    if (missing.length) {
      throw new RunError(
        `loader of source ${this.spec.source} (${this.spec.declared_at}): deletes of table ${table} do not carry ${missing.join(', ')} (its REPLICA IDENTITY is ${{ d: 'DEFAULT', i: 'USING INDEX', n: 'NOTHING', f: 'FULL' }[row.identity] ?? row.identity}${carried?.length ? `: ${carried.join(', ')}` : ''}), so a deleted row could not be found by its key\n  hint: ALTER TABLE ${table} REPLICA IDENTITY FULL, or key the loader on the primary key`,
      );
    }
    this.resolved = { schema: row.schema, name: row.name };
    return { ...this.resolved, key };
  }

  async slotState(): Promise<SlotState | undefined> {
    const r = await this.client!.query(
      `select plugin, database, confirmed_flush_lsn::text as confirmed, coalesce(wal_status = 'lost', false) as lost, active, (plugin = 'test_decoding' and database = current_database()) as ours from pg_replication_slots where slot_name = $1`,
      [this.slot],
    );
    const row = r.rows[0] as SlotState | undefined;
    return row ? { plugin: row.plugin, database: row.database, confirmed: row.confirmed, lost: row.lost, active: row.active, ours: row.ours } : undefined;
  }

  async dropSlot(): Promise<void> {
    try {
      await this.client!.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1`, [this.slot]);
    } catch (err) {
      throw this.fail(`cannot drop replication slot ${this.slot}`, err);
    }
  }

  /**
   * Creates the slot on a replication connection, exporting the snapshot of
   * its consistent point: a copy read as of `snapshot` plus the changes the
   * slot streams are the table, each change exactly once. The snapshot lives
   * until release() (call it once the copy's transaction has imported it).
   */
  async createSlot(): Promise<{ position: string; snapshot: string }> {
    try {
      ({ client: this.replication } = await connectSource(this.spec, this.projectRoot, this.env, this.clock, { replication: true }));
      const r = await this.replication.query(`CREATE_REPLICATION_SLOT ${quoteIdent(this.slot)} LOGICAL test_decoding EXPORT_SNAPSHOT`);
      const row = r.rows[0] as { consistent_point: string; snapshot_name: string };
      return { position: row.consistent_point, snapshot: row.snapshot_name };
    } catch (err) {
      await this.release();
      if (err instanceof RunError) throw err;
      throw this.fail(`cannot create replication slot ${this.slot} (the role needs the REPLICATION attribute, and max_replication_slots a free slot)`, err);
    }
  }

  /** Ends the replication connection that exported the snapshot. */
  async release(): Promise<void> {
    await this.replication?.end().catch(() => undefined);
    this.replication = undefined;
  }

  /**
   * The changes of the table committed after `after`, as CSV rows of
   * (seq, op, unchanged, ...columns); `summary` resolves once the stream has
   * ended. The stream is read to the WAL flushed when it starts: the position
   * returned is at least that, so the slot also moves past transactions that
   * did not touch the table.
   */
  changes(columns: SourceColumn[], key: string[], after: string): { rows: NodeJS.ReadableStream; summary: Promise<ChangeSummary> } {
    const client = this.client!;
    const { schema, name } = this.resolved!;
    const index = new Map(columns.map((c, i) => [c.name, i]));
    const keyIndex = key.map((k) => index.get(k)!);
    const state = { seq: 0, changes: 0, truncated: false, unchanged: new Set<number>(), end: null as string | null };
    let floor = after;
    let prefix = '';
    let pending = '';
    const fail = (err: unknown) => scrubError(err instanceof Error ? err : new Error(String(err)), this.secrets);

    const csvField = (v: string | null) => (v === null ? '' : `"${v.replace(/"/g, '""')}"`);
    const emit = (out: string[], op: 'u' | 'd', values: Map<number, Value>) => {
      const left: number[] = [];
      const fields = columns.map((_, i) => {
        const v = values.get(i);
        if (v === UNCHANGED) {
          left.push(i);
          state.unchanged.add(i);
          return '';
        }
        return csvField(v ?? null);
      });
      out.push(`${++state.seq},${op},${left.length ? `",${left.join(',')},"` : ''},${fields.join(',')}\n`);
    };
    const byIndex = (tuple: Array<[string, Value]>) => {
      const m = new Map<number, Value>();
      for (const [col, v] of tuple) {
        const i = index.get(col);
        if (i !== undefined) m.set(i, v);
      }
      return m;
    };
    const line = (text: string, out: string[]) => {
      const [, commitLsn, data] = text.split('\t').map(unescapeCopyText);
      if (data === null || data === undefined) {
        // The last row: the last position decoded (null when nothing was).
        state.end = commitLsn ?? null;
        return;
      }
      state.changes++;
      const change = parseChange(data.slice(prefix.length));
      if (change.kind === 'truncate') {
        state.truncated = true;
        return;
      }
      if (change.kind === 'delete') {
        const old = byIndex(change.old);
        if (keyIndex.some((i) => old.get(i) === undefined)) throw new Error(`a delete of ${schema}.${name} without its key (${key.join(', ')}): ${data.slice(0, 200)}`);
        emit(out, 'd', old);
        return;
      }
      const now = byIndex(change.new);
      if (change.kind === 'update' && change.old.length) {
        // The key changed (or REPLICA IDENTITY FULL): the old key's row is gone.
        const old = byIndex(change.old);
        if (keyIndex.some((i) => old.get(i) !== now.get(i))) emit(out, 'd', old);
      }
      emit(out, 'u', now);
    };

    const decoder = new StringDecoder('utf8');
    const parse = new Transform({
      transform(chunk: Buffer, _enc, done) {
        pending += decoder.write(chunk);
        const out: string[] = [];
        try {
          let start = 0;
          let nl: number;
          while ((nl = pending.indexOf('\n', start)) >= 0) {
            line(pending.slice(start, nl), out);
            start = nl + 1;
          }
          pending = pending.slice(start);
        } catch (err) {
          done(fail(err));
          return;
        }
        done(null, out.join(''));
      },
    });
    let settle: { resolve: (s: ChangeSummary) => void; reject: (e: unknown) => void };
    const summary = new Promise<ChangeSummary>((resolve, reject) => (settle = { resolve, reject }));
    summary.catch(() => undefined);
    parse.on('end', () => settle.resolve({ changes: state.changes, position: maxLsn(floor, state.end), truncated: state.truncated, unchanged: state.unchanged }));
    parse.on('error', (err) => settle.reject(err));

    void (async () => {
      try {
        // How test_decoding names the table (quote_qualified_identifier).
        const q = await client.query<{ prefix: string; flushed: string }>(`select 'table ' || quote_ident($1) || '.' || quote_ident($2) || ': ' as prefix, pg_current_wal_flush_lsn()::text as flushed`, [schema, name]);
        prefix = q.rows[0]!.prefix;
        const flushed = q.rows[0]!.flushed;
        floor = maxLsn(after, flushed);
        const lit = (v: string) => client.escapeLiteral(v);
        // Each change with its transaction's commit position (the end of the commit record, what
        // the slot is advanced to); changes of transactions at or before `after` are already in
        // the target. Decoding stops at the WAL flushed now: what commits later is read next time.
        const sql = `copy (
  with c as (select lsn, xid, data, n from pg_logical_slot_peek_changes(${lit(this.slot)}, ${lit(flushed)}::pg_lsn, null, 'include-xids', '0', 'skip-empty-xacts', '1') with ordinality as c(lsn, xid, data, n)),
  commits as (select xid, lsn as commit_lsn from c where data = 'COMMIT')
  select * from (
    select c.n, commits.commit_lsn, c.data from c join commits using (xid) where left(c.data, ${prefix.length}) = ${lit(prefix)} and commits.commit_lsn > ${lit(after)}::pg_lsn
    union all select null, max(lsn), null from c
  ) as changes order by n nulls last
) to stdout`;
        const stream = client.query(copyTo(sql));
        stream.on('error', (err: Error) => parse.destroy(fail(new Error(`cannot read the changes of ${schema}.${name} from replication slot ${this.slot}: ${err.message}`))));
        stream.pipe(parse);
      } catch (err) {
        parse.destroy(fail(err));
      }
    })();
    return { rows: parse, summary };
  }

  /** Moves the slot to `position` (the target has committed it): the WAL before it can go. */
  async advance(position: string): Promise<void> {
    try {
      await this.client!.query(`select pg_replication_slot_advance(slot_name, $2::pg_lsn) from pg_replication_slots where slot_name = $1 and confirmed_flush_lsn < $2::pg_lsn`, [this.slot, position]);
    } catch (err) {
      throw this.fail(`the changes are loaded, but replication slot ${this.slot} could not be advanced to ${position} (the next run skips them)`, err);
    }
  }

  async close(): Promise<void> {
    await this.release();
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
  }
}

// ---------------------------------------------------------------------------
// test_decoding's text: `table public.t: INSERT: id[integer]:1 name[text]:'a''b' note[text]:null`,
// `UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 ...` (the old key when it changed, or
// every column under REPLICA IDENTITY FULL), `DELETE: id[integer]:1`, `TRUNCATE: (no-flags)`.
// Values are the types' output functions: numbers and booleans bare, everything else in single
// quotes with quotes doubled, B'0101' for bit strings; `null`; `unchanged-toast-datum` for a large
// value an update did not change (it is not in the WAL).

export const UNCHANGED = Symbol('unchanged TOAST value');
export type Value = string | null | typeof UNCHANGED;

export type Change =
  | { kind: 'insert'; new: Array<[string, Value]> }
  | { kind: 'update'; old: Array<[string, Value]>; new: Array<[string, Value]> }
  | { kind: 'delete'; old: Array<[string, Value]> }
  | { kind: 'truncate' };

/** One change, the text after `table <schema>.<name>: `. */
export function parseChange(text: string): Change {
  const action = /^(INSERT|UPDATE|DELETE|TRUNCATE):/.exec(text);
  if (!action) throw new Error(`unexpected test_decoding output: ${text.slice(0, 200)}`);
  const rest = text.slice(action[0].length);
  switch (action[1]) {
    case 'INSERT':
      return { kind: 'insert', new: parseTuple(rest, 0).tuple };
    case 'DELETE':
      if (rest.trim() === '(no-tuple-data)') return { kind: 'delete', old: [] };
      return { kind: 'delete', old: parseTuple(rest, 0).tuple };
    case 'UPDATE': {
      if (rest.startsWith(' old-key:')) {
        const old = parseTuple(rest, ' old-key:'.length, ' new-tuple:');
        return { kind: 'update', old: old.tuple, new: parseTuple(rest, old.end + ' new-tuple:'.length).tuple };
      }
      return { kind: 'update', old: [], new: parseTuple(rest, 0).tuple };
    }
    default:
      return { kind: 'truncate' };
  }
}

/** ` name[type]:value` repeated, from `at` to the end or to `stop`. */
function parseTuple(s: string, at: number, stop?: string): { tuple: Array<[string, Value]>; end: number } {
  const tuple: Array<[string, Value]> = [];
  let i = at;
  const bad = () => new Error(`cannot parse test_decoding output at ${i}: ${s.slice(Math.max(0, i - 40), i + 80)}`);
  while (i < s.length) {
    if (stop && s.startsWith(stop, i)) break;
    if (s[i] !== ' ') throw bad();
    i++;
    if (s.startsWith('(no-tuple-data)', i)) return { tuple, end: i + '(no-tuple-data)'.length };
    let name: string;
    if (s[i] === '"') {
      const quoted = readQuoted(s, i + 1, '"');
      if (!quoted) throw bad();
      ({ text: name, end: i } = quoted);
    } else {
      const b = s.indexOf('[', i);
      if (b < 0) throw bad();
      name = s.slice(i, b);
      i = b;
    }
    if (s[i] !== '[') throw bad();
    // The type may hold brackets itself (integer[]): it ends at the first "]:".
    const close = s.indexOf(']:', i);
    if (close < 0) throw bad();
    i = close + 2;
    let value: Value;
    if (s.startsWith('null', i) && (i + 4 === s.length || s[i + 4] === ' ')) {
      value = null;
      i += 4;
    } else if (s.startsWith('unchanged-toast-datum', i)) {
      value = UNCHANGED;
      i += 'unchanged-toast-datum'.length;
    } else if (s[i] === "'" || (s[i] === 'B' && s[i + 1] === "'")) {
      const quoted = readQuoted(s, s[i] === 'B' ? i + 2 : i + 1, "'");
      if (!quoted) throw bad();
      ({ text: value, end: i } = quoted);
    } else {
      const sp = s.indexOf(' ', i);
      const end = sp < 0 ? s.length : sp;
      value = s.slice(i, end);
      i = end;
    }
    tuple.push([name, value]);
  }
  return { tuple, end: i };
}

/** The text quoted from `start` (just past the opening `quote`) to the closing one, a doubled quote standing for one; undefined when it is not closed. */
function readQuoted(s: string, start: number, quote: string): { text: string; end: number } | undefined {
  let text = '';
  let j = start;
  for (;;) {
    const q = s.indexOf(quote, j);
    if (q < 0) return undefined;
    text += s.slice(j, q);
    if (s[q + 1] !== quote) return { text, end: q + 1 };
    text += quote;
    j = q + 2;
  }
}

/** A field of COPY's text format: \N is NULL; backslash escapes. */
function unescapeCopyText(field: string): string | null {
  if (field === '\\N') return null;
  if (!field.includes('\\')) return field;
  return field.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/g, (_m, oct: string | undefined, hex: string | undefined, ch: string | undefined) => {
    if (oct) return String.fromCharCode(parseInt(oct, 8));
    if (hex) return String.fromCharCode(parseInt(hex, 16));
    return { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' }[ch!] ?? ch!;
  });
}
