// Source freshness: how long ago each source table was last loaded, from
// max(loaded_at_field), judged against warn_after / error_after ("12h",
// "30m", "2d"). Results are written as target/sources.json (dbt's shape).

import type { Adapter } from '../../../adapters/adapter.js';
import type { Manifest, ManifestSource } from '../../compiler/manifest.js';
import { parseDuration } from '../../project/duration.js';

export type FreshnessStatus = 'pass' | 'warn' | 'error' | 'runtime error';

export interface FreshnessResult {
  unique_id: string;
  status: FreshnessStatus;
  max_loaded_at: string | null;
  snapshotted_at: string;
  max_loaded_at_time_ago_in_s: number | null;
  criteria: { warn_after: string | null; error_after: string | null; filter: string | null };
  execution_time: number;
  error?: string;
}

export { parseDuration };

/** Sources that declare freshness and a loaded_at_field. */
export function freshnessSources(manifest: Manifest): ManifestSource[] {
  return Object.values(manifest.sources).filter((s) => s.freshness && s.loaded_at_field && (s.freshness.warn_after || s.freshness.error_after));
}

export async function checkFreshness(adapter: Adapter, sources: ManifestSource[], now: () => Date): Promise<FreshnessResult[]> {
  const results: FreshnessResult[] = [];
  for (const source of sources) {
    const started = performance.now();
    const criteria = { warn_after: source.freshness?.warn_after ?? null, error_after: source.freshness?.error_after ?? null, filter: source.freshness?.filter ?? null };
    const base: Omit<FreshnessResult, 'status' | 'max_loaded_at' | 'max_loaded_at_time_ago_in_s'> = { unique_id: source.unique_id, snapshotted_at: now().toISOString(), criteria, execution_time: 0 };
    try {
      const col = adapter.dialect.quoteIdentifier(source.loaded_at_field!);
      const where = criteria.filter ? ` where ${criteria.filter}` : '';
      const r = await adapter.withSession((s) => s.query(`select cast(max(${col}) as varchar) from ${source.relation_name}${where}`));
      const raw = r.rows[0]?.[0];
      const execution_time = (performance.now() - started) / 1000;
      if (raw === null || raw === undefined) {
        results.push({ ...base, execution_time, status: criteria.error_after ? 'error' : 'warn', max_loaded_at: null, max_loaded_at_time_ago_in_s: null, error: 'the table has no rows with a loaded_at value' });
        continue;
      }
      const loadedAt = parseLoadedAt(String(raw));
      const ago = (now().getTime() - loadedAt.getTime()) / 1000;
      const errorAfter = criteria.error_after ? parseDuration(criteria.error_after) : undefined;
      const warnAfter = criteria.warn_after ? parseDuration(criteria.warn_after) : undefined;
      const status: FreshnessStatus = errorAfter !== undefined && ago > errorAfter ? 'error' : warnAfter !== undefined && ago > warnAfter ? 'warn' : 'pass';
      results.push({ ...base, execution_time, status, max_loaded_at: loadedAt.toISOString(), max_loaded_at_time_ago_in_s: Math.round(ago) });
    } catch (err) {
      results.push({ ...base, execution_time: (performance.now() - started) / 1000, status: 'runtime error', max_loaded_at: null, max_loaded_at_time_ago_in_s: null, error: (err as Error).message });
    }
  }
  return results;
}

/**
 * A max(loaded_at) value cast to text, as a Date. A timestamp without a zone
 * is taken as UTC, as dbt does; a zone offset may be written `+00`, `+0530`
 * or `+05:30` (DuckDB prints timestamptz as `2024-01-01 10:00:00+00`, which
 * JavaScript's Date does not read as such).
 */
export function parseLoadedAt(text: string): Date {
  const t = text.trim().replace(' ', 'T');
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i.exec(t);
  if (!m) throw new Error(`cannot read the loaded_at value "${text}" as a timestamp`);
  const [, day, time = '00:00:00', zone] = m;
  let offset = 'Z';
  if (zone && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    offset = `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2, 4) || '00'}`;
  }
  // Milliseconds are all a Date keeps; DuckDB prints micro- or nanoseconds.
  const date = new Date(`${day}T${time.replace(/(\.\d{3})\d+$/, '$1')}${offset}`);
  if (Number.isNaN(date.getTime())) throw new Error(`cannot read the loaded_at value "${text}" as a timestamp`);
  return date;
}
