// Bound schemas kept between runs in target/.etl/bound-schemas.json: each
// model's columns under a hash of its compiled SQL and of its inputs'
// schemas (so a changed model re-binds itself and, through the hash, its
// descendants), seeds' columns under their checksum, and the columns of
// sources as last read from the target's catalog. Each distinct column list
// is written once and entries point at it: most models of a project share a
// few schemas, and a warm run reads and writes this file every time.

import { hash } from 'node:crypto';
import path from 'node:path';
import { readJsonIfExists, writeFileAtomic } from '../compiler/artifacts.js';
import { ETL_VERSION } from '../compiler/version.js';
import type { BoundColumn } from './binder.js';

const FILE = path.join('.etl', 'bound-schemas.json');

interface CacheFile {
  etl_version: string;
  /** adapter type and target name: bound types differ by engine. */
  target: string;
  /** Entries point into schemas by index. */
  layout: 2;
  schemas: BoundColumn[][];
  entries: Record<string, { key: string; schema: number }>;
  catalog: Record<string, BoundColumn[]>;
}

/** A cache key of these parts (one hash call: a warm run keys 10,000 models). */
export function hashOf(parts: string[]): string {
  return hash('sha256', `${parts.join('\0')}\0`, 'base64url').slice(0, 22);
}

export class BoundSchemaCache {
  private readonly data: Omit<CacheFile, 'schemas' | 'entries'>;
  /** Entries with their columns: models of one schema share one array. */
  private readonly entries = new Map<string, { key: string; columns: BoundColumn[] }>();
  private changed = false;

  constructor(
    private readonly targetPath: string,
    target: string,
    enabled: boolean,
  ) {
    const read = enabled ? readJsonIfExists<CacheFile>(path.join(targetPath, FILE)) : undefined;
    const valid = read && read.etl_version === ETL_VERSION && read.target === target && read.layout === 2;
    this.data = { etl_version: ETL_VERSION, target, layout: 2, catalog: valid ? read.catalog : {} };
    if (valid) for (const [id, e] of Object.entries(read.entries)) if (read.schemas[e.schema]) this.entries.set(id, { key: e.key, columns: read.schemas[e.schema]! });
    if (!enabled) this.changed = true;
  }

  get(id: string, key: string): BoundColumn[] | undefined {
    const e = this.entries.get(id);
    return e && e.key === key ? e.columns : undefined;
  }

  set(id: string, key: string, columns: BoundColumn[]): void {
    if (this.entries.get(id)?.key === key) return;
    this.entries.set(id, { key, columns });
    this.changed = true;
  }

  catalog(key: string): BoundColumn[] | undefined {
    return this.data.catalog[key];
  }

  setCatalog(key: string, columns: BoundColumn[]): void {
    if (JSON.stringify(this.data.catalog[key]) === JSON.stringify(columns)) return;
    this.data.catalog[key] = columns;
    this.changed = true;
  }

  deleteCatalog(key: string): void {
    if (!(key in this.data.catalog)) return;
    delete this.data.catalog[key];
    this.changed = true;
  }

  write(): void {
    if (!this.changed) return;
    const schemas: BoundColumn[][] = [];
    const index = new Map<string, number>();
    const byArray = new Map<BoundColumn[], number>();
    const entries: CacheFile['entries'] = {};
    for (const [id, e] of this.entries) {
      let i = byArray.get(e.columns);
      if (i === undefined) {
        const text = JSON.stringify(e.columns);
        i = index.get(text);
        if (i === undefined) index.set(text, (i = schemas.push(e.columns) - 1));
        byArray.set(e.columns, i);
      }
      entries[id] = { key: e.key, schema: i };
    }
    const file: CacheFile = { ...this.data, schemas, entries };
    writeFileAtomic(path.join(this.targetPath, FILE), JSON.stringify(file));
  }
}
