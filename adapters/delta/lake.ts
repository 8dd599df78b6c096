// The lake: where each relation's Delta table lives (<lake>/<schema>/<name>/)
// and how DuckDB sees it. Every Delta table is a DuckDB view over the active
// files of its latest snapshot (refreshed after each commit), so models,
// tests and `etl show` read Delta tables with plain SQL.

import path from 'node:path';
import type { Relation } from '../adapter.js';
import { quoteIdent } from './schema.js';
import { scanSnapshot } from './scan.js';
import { updateSnapshot, type Snapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';
import { LocalStorage } from './storage.js';
import { DeltaTable } from './table.js';

export function relationKeyOf(r: Relation): string {
  return `${r.schema}\u0000${r.name}`;
}

export function relationSql(r: Relation): string {
  return `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`;
}

export class Lake {
  /** Relations known to be Delta tables, with their latest snapshot once read. */
  private readonly tables = new Map<string, { relation: Relation; snapshot?: Snapshot }>();
  /** The snapshot each table's DuckDB view shows: what a model's SQL read. */
  private readonly views = new Map<string, Snapshot>();

  /** The lake's own folder (schemas, then tables), through the storage interface like every table. */
  readonly storageRoot: LocalStorage;

  constructor(readonly root: string) {
    this.storageRoot = new LocalStorage(root);
  }

  folder(r: Relation): string {
    return path.join(this.root, r.schema, r.name);
  }

  storage(r: Relation): LocalStorage {
    return new LocalStorage(this.folder(r));
  }

  table(r: Relation, session: SqlSession): DeltaTable {
    return new DeltaTable(this.storage(r), session);
  }

  isTable(r: Relation): boolean {
    return this.tables.has(relationKeyOf(r));
  }

  relations(): Relation[] {
    return [...this.tables.values()].map((t) => t.relation);
  }

  /** Finds the Delta tables already in the lake (<schema>/<name>/_delta_log). */
  async discover(): Promise<Relation[]> {
    const found: Relation[] = [];
    const folders = (dir: string) => this.storageRoot.folders(dir);
    for (const schema of await folders('')) {
      for (const name of await folders(schema)) {
        if ((await folders(`${schema}/${name}`)).includes('_delta_log')) found.push({ schema, name });
      }
    }
    for (const r of found) if (!this.tables.has(relationKeyOf(r))) this.tables.set(relationKeyOf(r), { relation: r });
    return found;
  }

  /** The snapshot last read (possibly behind another writer's newer commits). */
  async snapshot(r: Relation, session: SqlSession): Promise<Snapshot> {
    const entry = this.tables.get(relationKeyOf(r));
    if (entry?.snapshot) return entry.snapshot;
    return this.latest(r, session);
  }

  /** The latest snapshot: the cached one brought up to date with the commits after it. */
  async latest(r: Relation, session: SqlSession): Promise<Snapshot> {
    const cached = this.tables.get(relationKeyOf(r))?.snapshot;
    const snapshot = cached ? await updateSnapshot(this.storage(r), cached) : await this.table(r, session).snapshot();
    this.tables.set(relationKeyOf(r), { relation: r, snapshot });
    return snapshot;
  }

  /**
   * The snapshot the table's view shows (what SQL run since the last refresh
   * read): a change computed from that SQL is checked for conflicts against
   * every commit after it.
   */
  async viewed(r: Relation, session: SqlSession): Promise<Snapshot> {
    return this.views.get(relationKeyOf(r)) ?? this.latest(r, session);
  }

  /** After a commit: the table's view reads the new snapshot. */
  async refresh(r: Relation, session: SqlSession): Promise<Snapshot> {
    const before = this.tables.get(relationKeyOf(r))?.snapshot;
    const snapshot = await this.latest(r, session);
    if (snapshot !== before || !before || this.views.get(relationKeyOf(r)) !== snapshot) await this.createView(r, session, snapshot);
    return snapshot;
  }

  async createView(r: Relation, session: SqlSession, snapshot?: Snapshot): Promise<void> {
    const s = snapshot ?? (await this.snapshot(r, session));
    const scan = await scanSnapshot(this.storage(r), session, s);
    await session.execute(`create schema if not exists ${quoteIdent(r.schema)}`);
    await session.execute(`create or replace view ${relationSql(r)} as ${scan.sql}`);
    this.views.set(relationKeyOf(r), s);
  }
}
