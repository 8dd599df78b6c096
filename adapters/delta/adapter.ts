// The Delta target: DuckDB computes, Delta stores. Each model is a Delta
// table at <lake>/<schema>/<name>/ (see lake.ts); an in-memory DuckDB runs
// every query and sees each Delta table as a view of its latest snapshot.
// Materializations are log actions: a table build is one overwrite commit
// (remove every file, add the new ones), an incremental append adds files,
// merge / delete+insert / microbatch rewrite only the files holding replaced
// rows (changes.ts), and state commits with the data (state-store.ts). A
// Delta target has no views: a view model is built as a table, with a warning.

import path from 'node:path';
import type { Adapter, AdapterCapabilities, AdapterSession, SessionContext, ColumnDef, IncrementalChange, MaterializeResult, PublishExtras, QueryResult, Relation, RelationKind, RowMove, SeedOptions, SnapshotChange, SnapshotResult, StagedTable, StageOptions } from '../adapter.js';
import type { SqlEngine } from '../sql-engine.js';
import { applySnapshotSql } from '../sql-snapshot.js';
import { dialectFor } from '../dialect.js';
import { DuckDbAdapter, seedSelectSql } from '../duckdb/adapter.js';
import { RunError } from '../../core/errors.js';
import type { StateRecord } from '../../core/state/state.js';
import { commit } from './transaction.js';
import { ConcurrentModificationError } from './errors.js';
import { planCopyOnWrite, planRewrite } from './changes.js';
import { Lake, relationSql } from './lake.js';
import { deletionVectorsEnabled } from './table-properties.js';
import { protocolFor, checkWritable, sameProtocol } from './protocol.js';
import { scanSnapshot } from './scan.js';
import { readsOfSql, widenReads } from './reads.js';
import { duckdbTypeOf, quoteIdent, schemaFromDuckDb } from './schema.js';
import { loadSnapshot, type Snapshot } from './snapshot.js';
import { LocalStorage } from './storage.js';
import { DeltaSession, type PendingState } from './session.js';
import { settleLake, settleQuarantine, stageQuarantine } from './quarantine.js';
import { applyRecords, DeltaStateStore, parseTableState, STATE_DOMAIN, type AppliedCounts, type DeltaStateHost } from './state-store.js';
import type { SqlSession } from './sql.js';
import type { Action } from './actions.js';
import type { DomainValue } from './table.js';

/** commitInfo.operation of each incremental strategy. */
const OPERATIONS: Record<IncrementalChange['strategy'], string> = {
  append: 'WRITE',
  merge: 'MERGE',
  'delete+insert': 'DELETE+INSERT',
  replace_where: 'REPLACE WHERE',
  insert_overwrite: 'INSERT OVERWRITE',
};

/** The quarantine table a model's commit goes with, and the domain recording the pairing. */
interface Quarantined {
  into?: Relation;
  domains: DomainValue[];
}

/** commitInfo's writer fields from the session's context. */
function writerOf(context: SessionContext | undefined): { writer?: string; nodeId?: string } {
  return context ? { writer: context.invocationId, nodeId: context.nodeId } : {};
}

export interface DeltaTarget {
  name: string;
  path: string;
  threads: number;
}

export class DeltaAdapter implements Adapter, DeltaStateHost {
  readonly dialect = dialectFor('delta');
  readonly capabilities: AdapterCapabilities = { merge: true };
  readonly state: DeltaStateStore = new DeltaStateStore(this);
  readonly lake: Lake;
  /** The compute engine: an in-memory DuckDB, never written to disk. */
  private readonly duck: DuckDbAdapter;
  private warnedViews = false;
  /** Views of older versions made so far ({{ref "x" version=N}}); a version never changes. */
  private readonly versionViews = new Set<string>();

  constructor(
    private readonly target: DeltaTarget,
    projectRoot: string,
    private readonly options: { readOnly?: boolean; warn?: (message: string) => void } = {},
  ) {
    this.lake = new Lake(path.resolve(projectRoot, target.path));
    this.duck = new DuckDbAdapter({ name: target.name, path: ':memory:', threads: target.threads }, projectRoot);
  }

  async open(): Promise<void> {
    if (this.options.readOnly && !(await this.lake.storageRoot.stat(''))) {
      throw new RunError(`target ${this.target.name} has not been built yet: ${this.lake.root} does not exist\n  hint: run etl build (or etl seed / etl run) first`, 1);
    }
    if (!this.options.readOnly) await this.lake.storageRoot.prepareDir('');
    await this.duck.open();
    const tables = await this.lake.discover();
    await this.withSession(async (session) => {
      for (const r of tables) await this.lake.createView(r, session);
      // Quarantine rows a model commit recorded and a run that died did not commit yet (quarantine.ts).
      if (!this.options.readOnly) await settleLake(this.lake, session, (model, err) => this.warn(`the quarantine rows recorded by ${model.schema}.${model.name}'s last commit are not committed yet: ${err.message.split('\n')[0]}`));
    });
  }

  close(): Promise<void> {
    return this.duck.close();
  }

  private warn(message: string): void {
    if (this.options.warn) this.options.warn(message);
    else process.stderr.write(`warning: ${message}\n`);
  }

  withSession<T>(fn: (session: AdapterSession) => Promise<T>, context?: SessionContext): Promise<T> {
    return this.duck.withSession((s) => fn(new DeltaSession(s as SqlSession & { connection?: unknown }, this.shadowHost, context)));
  }

  interruptAll(): void {
    this.duck.interruptAll();
  }

  isTransient(err: unknown): boolean {
    // Another writer committed first and the change read what it changed: the node runs again on the new version.
    return err instanceof ConcurrentModificationError || this.duck.isTransient(err);
  }

  async ensureSchema(session: AdapterSession, schema: string): Promise<void> {
    // The lake folder of a schema is made by its first table's write: a schema that gets no table leaves none.
    await session.execute(`create schema if not exists ${quoteIdent(schema)}`);
  }

  async relationKind(session: AdapterSession, relation: Relation): Promise<RelationKind | undefined> {
    if (this.lake.isTable(relation)) return 'table';
    if (await this.lake.table(relation, session).exists()) {
      await this.lake.refresh(relation, session);
      return 'table';
    }
    return this.duck.relationKind(session, relation);
  }

  async listColumns(session: AdapterSession, relation: Relation): Promise<ColumnDef[]> {
    if (!this.lake.isTable(relation)) return this.duck.listColumns(session, relation);
    const snapshot = await this.lake.snapshot(relation, session);
    return snapshot.schema.fields.map((f) => ({ name: f.name, type: duckdbTypeOf(f.type) }));
  }

  async replaceView(session: AdapterSession, relation: Relation, selectSql: string): Promise<MaterializeResult> {
    if (!this.warnedViews) {
      this.warnedViews = true;
      this.warn(`target ${this.target.name} (delta) has no views: view models are built as tables`);
    }
    const result = await this.replaceTable(session, relation, selectSql);
    return { ...result, message: result.message.replace('CREATE TABLE', 'CREATE TABLE (view)') };
  }

  async replaceTable(session: AdapterSession, relation: Relation, selectSql: string, state: StateRecord[] = []): Promise<MaterializeResult> {
    const written = await this.lake.table(relation, session).write({ selectSql, mode: 'overwrite', ...this.stateOption(session, relation, state, undefined) });
    await this.lake.refresh(relation, session);
    return { rowsAffected: written.rows, bytesWritten: bytesOf(written.adds), message: `CREATE TABLE (${written.rows} rows)` };
  }

  stageTable(session: AdapterSession, relation: Relation, selectSql: string, options?: StageOptions): Promise<StagedTable> {
    return this.duck.stageTable(session, relation, selectSql, options);
  }

  /** Staged in DuckDB as any table; publishTable writes its Parquet files and commits them. */
  stageCsv(session: AdapterSession, relation: Relation, columns: ColumnDef[], csv: NodeJS.ReadableStream, options?: StageOptions): Promise<StagedTable> {
    return this.duck.stageCsv(session, relation, columns, csv, options);
  }

  /**
   * The staged rows are DuckDB's (in memory, spilling to its temp directory when bounded). A merge is
   * not bounded here (boundsMerges unset): the table is not in DuckDB's catalog, so the bound would not allow for it.
   */
  withBoundedMemory<T>(session: AdapterSession, fn: () => Promise<T>): Promise<T> {
    return this.duck.withBoundedMemory(session, fn);
  }

  discardStaged(session: AdapterSession, staged: StagedTable): Promise<void> {
    return this.duck.discardStaged(session, staged);
  }

  async publishTable(session: AdapterSession, staged: StagedTable, relation: Relation, extras: PublishExtras = {}): Promise<{ bytesWritten: number }> {
    const current = this.lake.isTable(relation) ? await this.lake.latest(relation, session) : undefined;
    const quarantine = await this.quarantineFirst(session, relationSql(staged.relation), relation, current, extras.moveRows);
    const written = await this.withQuarantine(session, relation, quarantine, () =>
      this.lake.table(relation, session).write({
        selectSql: `select * from ${relationSql(staged.relation)}`,
        current,
        mode: 'overwrite',
        partitionBy: extras.partitionBy,
        ...(extras.deletionVectors ? { deletionVectors: true } : {}),
        ...this.stateOption(session, relation, extras.state ?? [], { rows: staged.rows }, quarantine.domains),
      }),
    );
    await this.duck.discardStaged(session, staged);
    await this.lake.refresh(relation, session);
    return { bytesWritten: bytesOf(written.adds) };
  }

  async relationVersions(session: AdapterSession, relations: Relation[]): Promise<Array<number | undefined>> {
    const out: Array<number | undefined> = [];
    for (const r of relations) out.push(this.lake.isTable(r) ? (await this.lake.snapshot(r, session as SqlSession)).version : undefined);
    return out;
  }

  /**
   * Quarantine (quarantine.ts): the rows leave the staged table as files of
   * the quarantine table that no commit references yet; the model's commit
   * records them (the returned domain) and settleQuarantine commits them
   * after it. A run that died between the two is rolled forward first.
   */
  private async quarantineFirst(session: AdapterSession, from: string, target: Relation, current: Snapshot | undefined, move: RowMove | undefined): Promise<Quarantined> {
    if (!move) {
      await settleQuarantine(this.lake, session, target, current);
      return { domains: [] };
    }
    const select = `select ${move.columns} from ${from} as ${move.alias} where ${move.where}`;
    const domain = await stageQuarantine(this.lake, session, target, current, move.into, select);
    await session.execute(`delete from ${from} as ${move.alias} where ${move.where}`);
    return domain ? { into: move.into, domains: [domain] } : { domains: [] };
  }

  /** The model's commit, then the quarantine commit of the rows it recorded (a failed model commit leaves only unreferenced files). */
  private async withQuarantine<T>(session: AdapterSession, target: Relation, quarantine: Quarantined, write: () => Promise<T>): Promise<T> {
    const written = await write();
    if (quarantine.into) {
      await settleQuarantine(this.lake, session, target, await this.lake.refresh(target, session));
    }
    return written;
  }

  async applyIncremental(session: AdapterSession, change: IncrementalChange): Promise<{ rowsAffected: number; bytesWritten?: number; alreadyApplied?: boolean }> {
    // A staged DuckDB table (microbatch's full refresh builds one batch by batch) is DuckDB's to change.
    if (!this.lake.isTable(change.target)) return this.duck.applyIncremental(session, { ...change, state: [] });
    const table = this.lake.table(change.target, session);
    // The version the model's SQL read through the table's view: the change is committed against it (conflicts: transaction.ts).
    const snapshot = await this.lake.viewed(change.target, session);
    // The change's txn (appId: the run, version: its seq) committed already: a retry after the commit landed.
    const txn = change.commitId && { appId: change.commitId.run, version: change.commitId.seq };
    if (txn && (snapshot.txns.get(txn.appId)?.version ?? -1) >= txn.version) return { rowsAffected: 0, alreadyApplied: true };
    let source: string;
    let scratch: string | undefined;
    let quarantine: Quarantined = { domains: [] };
    if ('sql' in change.staged) {
      // The rows of a query are staged once: counted, matched and written from the same rows.
      scratch = `"temp"."etl_delta_rows_${Math.random().toString(36).slice(2)}"`;
      await session.execute(`create temp table ${scratch} as ${change.staged.sql}`);
      source = scratch;
    } else {
      source = relationSql(change.staged);
      quarantine = await this.quarantineFirst(session, source, change.target, snapshot, change.moveRows);
    }
    try {
      const rows = Number((await session.query(`select count(*) from ${source}`)).rows[0]?.[0] ?? 0);
      const deletionVectors = change.deletionVectors ?? deletionVectorsEnabled(snapshot.metadata);
      const plan = await planRewrite(table.storage, session, snapshot, change, source, { deletionVectors });
      // What the model's SQL read of its own table counts as read too (reads.ts): a self-reading append is no blind append.
      const read = widenReads(snapshot, plan, change.sql ? await readsOfSql(session, change.sql, change.target, snapshot) : 'none');
      const nothing = rows === 0 && plan.removeFiles.length === 0 && plan.markDeleted.length === 0 && !plan.schema;
      if (nothing && change.state.length === 0 && quarantine.domains.length === 0) return { rowsAffected: 0 };
      const written = await this.withQuarantine(session, change.target, quarantine, () =>
        table.write({
          readSnapshot: snapshot,
          // No rows to write and none to keep: a commit of state alone, without an empty data file.
          selectSql: nothing ? undefined : plan.selectSql,
          mode: plan.removeFiles.length || plan.markDeleted.length || plan.schema ? 'rewrite' : 'append',
          removeFiles: plan.removeFiles,
          markDeleted: plan.markDeleted,
          ...(change.deletionVectors ? { deletionVectors: true } : {}),
          schema: plan.schema,
          operation: OPERATIONS[change.strategy],
          txn,
          readPredicate: read.readPredicate,
          readFiles: read.readFiles,
          ...this.stateOption(session, change.target, change.state, { rows }, quarantine.domains),
        }),
      ).catch(async (err: unknown) => {
        // A retry of the node must read the version that won, not the one this change read.
        if (err instanceof ConcurrentModificationError) await this.lake.refresh(change.target, session).catch(() => undefined);
        throw err;
      });
      await this.lake.refresh(change.target, session);
      if (txn && !written.commit) return { rowsAffected: 0, alreadyApplied: true };
      return { rowsAffected: rows, bytesWritten: bytesOf(written.adds) };
    } finally {
      if (scratch) await session.execute(`drop table if exists ${scratch}`).catch(() => undefined);
    }
  }

  /** The etl.state domain of a commit that carries state records, computed over the table as the commit leaves it, and `extra` domains. */
  private stateOption(session: AdapterSession, relation: Relation, records: StateRecord[], applied: AppliedCounts | undefined, extra: DomainValue[] = []): { domains?: (after: Snapshot) => Promise<DomainValue[]> } {
    if (records.length === 0) return extra.length ? { domains: async () => extra } : {};
    return {
      domains: async (after) => {
        const current = parseTableState(after.domains.get(STATE_DOMAIN)?.configuration, relation.name);
        const next = await applyRecords(current, records, applied ?? {}, (column, newRows) => this.maxOf(session, relation, after, column, newRows));
        return [...extra, { domain: STATE_DOMAIN, configuration: JSON.stringify(next) }];
      },
    };
  }

  private async maxOf(session: AdapterSession, relation: Relation, after: Snapshot, column: string, newRows?: Relation): Promise<string | null> {
    const scan = await scanSnapshot(this.lake.storage(relation), session, after);
    const c = quoteIdent(column);
    // As the SQL engines: with the new rows known, only rows at or above their maximum are read.
    const where = newRows ? ` where ${c} >= (select max(${c}) from ${relationSql(newRows)})` : '';
    const r = await session.query(`select cast(max(${c}) as varchar) from (${scan.sql}) as etl_table${where}`);
    const v = r.rows[0]?.[0];
    return v == null ? null : String(v);
  }

  /** State records that change no data: a commit with only the etl.state domain. */
  async commitState(session: SqlSession, relation: Relation, records: StateRecord[]): Promise<void> {
    if (!this.lake.isTable(relation)) return;
    const table = this.lake.table(relation, session);
    const snapshot = await this.lake.latest(relation, session);
    checkWritable(snapshot.protocol, snapshot.metadata, snapshot.schema, table.storage.root);
    const current = parseTableState(snapshot.domains.get(STATE_DOMAIN)?.configuration, relation.name);
    const next = await applyRecords(current, records, {}, (column) => this.maxOf(session, relation, snapshot, column));
    const protocol = protocolFor(snapshot.schema, { current: snapshot.protocol, domainMetadata: true });
    const actions: Action[] = [];
    if (!sameProtocol(protocol, snapshot.protocol)) actions.push({ protocol });
    actions.push({ domainMetadata: { domain: STATE_DOMAIN, configuration: JSON.stringify(next), removed: false } });
    await commit(table.storage, session, { operation: 'SET ETL STATE', readVersion: snapshot.version, snapshot, actions, readPredicate: 'none', ...writerOf(session.context) });
    await this.lake.refresh(relation, session);
  }

  async appendRows(session: SqlSession, relation: Relation, selectSql: string): Promise<void> {
    await this.lake.table(relation, session).write({ selectSql, mode: 'append', mergeSchema: true, current: this.lake.isTable(relation) ? await this.lake.snapshot(relation, session) : undefined });
    await this.lake.refresh(relation, session);
  }

  async overwriteRows(session: SqlSession, relation: Relation, selectSql: string): Promise<void> {
    await this.lake.table(relation, session).write({ selectSql, mode: 'overwrite', current: await this.lake.snapshot(relation, session) });
    await this.lake.refresh(relation, session);
  }

  async loadSeed(session: AdapterSession, relation: Relation, csvPath: string, options: SeedOptions): Promise<MaterializeResult> {
    const loaded = await this.replaceTable(session, relation, seedSelectSql(csvPath, options));
    return { rowsAffected: loaded.rowsAffected, bytesWritten: loaded.bytesWritten, message: `INSERT ${loaded.rowsAffected}` };
  }

  /**
   * SCD-2 snapshots: the SQL engines' statements (adapters/sql-snapshot.ts),
   * run on DuckDB against the history table shadowed from Delta (session.ts);
   * the transaction's commit writes the new history and the snapshot_run
   * record as one Delta commit.
   */
  applySnapshot(session: AdapterSession, change: SnapshotChange): Promise<SnapshotResult> {
    const engine = {
      dialect: this.dialect,
      relationKind: (s: AdapterSession, r: Relation) => this.relationKind(s, r),
      listColumns: (s: AdapterSession, r: Relation) => this.listColumns(s, r),
      stageTable: (s: AdapterSession, r: Relation, sql: string, o?: StageOptions) => this.stageTable(s, r, sql, o),
      publishTable: (s: AdapterSession, staged: StagedTable, r: Relation, extras?: PublishExtras) => this.publishTable(s, staged, r, extras),
      discardStaged: (s: AdapterSession, staged: StagedTable) => this.discardStaged(s, staged),
      state: { writeInTransaction: async (s: AdapterSession, records: StateRecord[], applied: AppliedCounts = {}) => (s as DeltaSession).addState(records, applied) },
    };
    return applySnapshotSql(engine as unknown as SqlEngine, session, change);
  }

  preview(session: AdapterSession, selectSql: string, limit: number): Promise<QueryResult> {
    return this.duck.preview(session, selectSql, limit);
  }

  /** Sources with `location:`: any Delta table by path (Spark's included), a view of its latest snapshot under the source's relation. */
  async attachExternal(session: AdapterSession, tables: Array<{ relation: Relation; location: string }>): Promise<void> {
    for (const t of tables) {
      const storage = new LocalStorage(t.location);
      const snapshot = await loadSnapshot(storage, session);
      const scan = await scanSnapshot(storage, session, snapshot);
      await session.execute(`create schema if not exists ${quoteIdent(t.relation.schema)}`);
      await session.execute(`create or replace view ${relationSql(t.relation)} as ${scan.sql}`);
    }
  }

  /** What DeltaSession needs to turn SQL that writes to a Delta table into a commit. */
  private readonly shadowHost = {
    isDeltaTable: (r: Relation) => this.lake.isTable(r),
    scanSql: async (session: SqlSession, r: Relation) => (await scanSnapshot(this.lake.storage(r), session, await this.lake.viewed(r, session))).sql,
    writeBack: async (session: SqlSession, r: Relation, state: PendingState[], context: SessionContext | undefined) => {
      const name = relationSql(r);
      try {
        const records = state.flatMap((p) => p.records);
        const applied = Object.assign({}, ...state.map((p) => p.applied)) as AppliedCounts;
        const table = this.lake.table(r, session);
        // The snapshot the shadow was copied from: only its files that lost or changed a row are rewritten, and any change committed since conflicts.
        const current = await this.lake.viewed(r, session);
        const plan = await planCopyOnWrite(table.storage, session, current, name, schemaFromDuckDb(await table.describe(`select * from ${name}`)));
        await table.write({
          ...(plan ? { selectSql: plan.selectSql, mode: 'rewrite', removeFiles: plan.removeFiles, operation: 'MERGE' } : { selectSql: `select * from ${name}`, mode: 'overwrite', operation: 'UPDATE' }),
          readSnapshot: current,
          readPredicate: 'all',
          readFiles: 'all',
          ...writerOf(context),
          ...this.stateOption(session, r, records, applied),
        });
      } finally {
        await session.execute(`drop table if exists ${name}`);
        await this.lake.refresh(r, session);
      }
    },
    versionView: async (session: SqlSession, view: Relation, table: Relation, at: { version: number } | { timestamp: string }) => {
      const key = relationSql(view);
      if (this.versionViews.has(key)) return;
      if (!(await this.lake.table(table, session).exists())) throw new RunError(`${table.schema}.${table.name} is not a Delta table of target ${this.target.name} (read at ${'version' in at ? `version ${at.version}` : at.timestamp})\n  hint: build it first`);
      const snapshot = await this.lake.table(table, session).snapshot(at);
      const scan = await scanSnapshot(this.lake.storage(table), session, snapshot);
      await session.execute(`create schema if not exists ${quoteIdent(view.schema)}`);
      await session.execute(`create or replace view ${key} as ${scan.sql}`);
      this.versionViews.add(key);
    },
    restoreView: async (session: SqlSession, r: Relation) => {
      await session.execute(`drop table if exists ${relationSql(r)}`);
      await this.lake.refresh(r, session);
    },
  };
}

/** Bytes of the data files a commit added. */
function bytesOf(adds: Array<{ size: number }>): number {
  return adds.reduce((n, a) => n + a.size, 0);
}
