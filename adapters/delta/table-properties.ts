// Table properties (metaData.configuration) etl honours, with Delta's defaults.

import type { Metadata } from './actions.js';
import { DeltaTableError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  millisecond: 1,
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 7 * 86_400_000,
};

/** Parses Spark's interval form ("interval 1 week", "interval 168 hours", "7 days") into milliseconds. */
export function parseInterval(text: string): number {
  const parts = text.trim().toLowerCase().replace(/^interval\s+/, '').split(/\s+/);
  let total = 0;
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const n = Number(parts[i]);
    const unit = parts[i + 1]!.replace(/s$/, '');
    const ms = UNIT_MS[unit];
    if (!Number.isFinite(n) || ms === undefined) throw new DeltaTableError(`not an interval: ${JSON.stringify(text)} (e.g. "interval 7 days")`);
    total += n * ms;
  }
  if (parts.length % 2 !== 0 || parts.length === 0) throw new DeltaTableError(`not an interval: ${JSON.stringify(text)} (e.g. "interval 7 days")`);
  return total;
}

/** delta.deletedFileRetentionDuration: how long removed files stay for readers of older versions (default one week). */
export function retentionMillis(metadata: Metadata): number {
  return parseInterval(metadata.configuration['delta.deletedFileRetentionDuration'] ?? 'interval 1 week');
}

/** delta.enableDeletionVectors: changes mark deleted rows in deletion vectors instead of rewriting files (deletion-vectors.ts). */
export const ENABLE_DELETION_VECTORS = 'delta.enableDeletionVectors';

export function deletionVectorsEnabled(metadata: Metadata): boolean {
  return metadata.configuration[ENABLE_DELETION_VECTORS] === 'true';
}

/**
 * delta.isolationLevel (Spark's table property): Serializable, or
 * WriteSerializable, under which a commit is not checked against the files of
 * another writer's blind append (one that read nothing of the table) unless
 * it changes the metadata itself. etl's default is Serializable (Spark's is
 * WriteSerializable): a blind append into rows a change read conflicts.
 */
export const ISOLATION_LEVEL = 'delta.isolationLevel';
export type IsolationLevel = 'Serializable' | 'WriteSerializable';

/** Any value but WriteSerializable (none, Serializable, one etl does not know) commits as Serializable, the stricter. */
export function isolationLevelOf(metadata: Metadata | undefined): IsolationLevel {
  return metadata?.configuration[ISOLATION_LEVEL] === 'WriteSerializable' ? 'WriteSerializable' : 'Serializable';
}
