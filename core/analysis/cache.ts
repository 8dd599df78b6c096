// Bound schemas kept between runs in target/.etl/bound-schemas.json: each
// model's columns under a hash of its compiled SQL and of its inputs'
// schemas (so a changed model re-binds itself and, through the hash, its
// descendants), seeds' columns under their checksum, and the columns of
// sources as last read from the target's catalog.

import { createHash } from 'node:crypto';
import path from 'node:path';
import { readJsonIfExists, writeFileAtomic } from '../compiler/artifacts.js';
import { ETL_VERSION } from '../compiler/version.js';
import type { BoundColumn } from './binder.js';

const FILE = path.join('.etl', 'bound-schemas.json');

interface CacheFile {
  etl_version: string;
  /** adapter type and target name: bound types differ by engine. */
  target: string;
  entries: Record<string, { key: string; columns: BoundColumn[] }>;
  catalog: Record<string, BoundColumn[]>;
}

export function hashOf(parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('base64url').slice(0, 22);
}

export class BoundSchemaCache {
  private readonly data: CacheFile;
  private changed = false;

  constructor(
    private readonly targetPath: string,
    target: string,
    enabled: boolean,
  ) {
    const read = enabled ? readJsonIfExists<CacheFile>(path.join(targetPath, FILE)) : undefined;
    this.data = read && read.etl_version === ETL_VERSION && read.target === target ? read : { etl_version: ETL_VERSION, target, entries: {}, catalog: {} };
    if (!enabled) this.changed = true;
  }

  get(id: string, key: string): BoundColumn[] | undefined {
    const e = this.data.entries[id];
    return e && e.key === key ? e.columns : undefined;
  }

  set(id: string, key: string, columns: BoundColumn[]): void {
    if (this.data.entries[id]?.key === key) return;
    this.data.entries[id] = { key, columns };
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
    if (this.changed) writeFileAtomic(path.join(this.targetPath, FILE), JSON.stringify(this.data));
  }
}
