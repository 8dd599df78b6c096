// What a node run costs at the rates of etl.yml `cost:`: `etl report`, the
// budget check and the docs site price runs the same way.

import type { CostRates } from '../state/state.js';

export interface CostConfig extends CostRates {
  currency: string;
}

/** etl.yml `cost:` with its defaults: no rates, no cost (time is still reported). */
export function costConfig(file: { cost?: Partial<CostConfig> }): CostConfig {
  return { per_cpu_hour: file.cost?.per_cpu_hour ?? 0, per_gb_written: file.cost?.per_gb_written ?? 0, per_gb_scanned: file.cost?.per_gb_scanned ?? 0, currency: file.cost?.currency ?? 'USD' };
}

/** What a run's node attempts cost at `rates`. */
export function costOf(records: Array<{ execution_time?: number | null; bytes_written?: number | null; bytes_scanned?: number | null }>, rates: CostRates): number {
  let cost = 0;
  for (const r of records) cost += ((r.execution_time ?? 0) / 3600) * rates.per_cpu_hour + ((r.bytes_written ?? 0) / 1e9) * rates.per_gb_written + ((r.bytes_scanned ?? 0) / 1e9) * rates.per_gb_scanned;
  return cost;
}
