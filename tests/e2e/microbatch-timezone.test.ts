// Microbatch bounds are UTC on every machine: the same rows land in the same
// batches whatever the time zone of the process running etl (DuckDB's session
// time zone follows the machine's), for an event_time of type timestamptz
// (each bound an instant) and of type timestamp (a wall-clock time in UTC).

import { afterAll, describe, expect, it } from 'vitest';
import { dbPathOf, etlYml, killAll, removeTempDirs, runCli, withDb, writeProject } from './helpers.js';

const EVENTS = `{{config materialized="table"}}
select * from (values
  (1, timestamptz '2024-01-31 20:00:00+00'),
  (2, timestamptz '2024-02-01 03:00:00+00'),
  (3, timestamptz '2024-02-29 23:30:00+00'),
  (4, timestamptz '2024-03-01 00:30:00+00')
) as t(id, ts)
`;

const model = (tsType: string) =>
  `{{config materialized="incremental" incremental_strategy="microbatch" event_time="ts" batch_size="month" begin="2024-01-01"}}\nselect id, cast(ts as ${tsType}) as ts from {{ref "events"}}\n`;

async function batchRows(tz: string, tsType: string): Promise<Record<string, number>> {
  // The timestamp (no zone) column is the UTC wall-clock time, cast in a UTC session.
  const dir = writeProject({
    'etl.yml': etlYml('mb_tz'),
    'models/events.sql': EVENTS,
    'models/mb.sql': tsType === 'timestamp' ? model('timestamp').replace('cast(ts as timestamp)', "timezone('UTC', ts)") : model(tsType),
  });
  // The run clock pinned (ETL_NOW): batches January to April 2024, whatever today is.
  const r = await runCli(['build', '--no-check'], { cwd: dir, env: { TZ: tz, ETL_NOW: '2024-04-15T00:00:00Z' } });
  expect(r.code, r.output).toBe(0);
  return withDb(dbPathOf(dir), async (db) => {
    const rows = await db.rows(`select batch_start, rows_affected from etl_meta.batches where relation like '%mb' and batch_start < '2024-04' order by 1`);
    return Object.fromEntries(rows.map((x) => [String(x.batch_start), Number(x.rows_affected)]));
  });
}

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

describe('microbatch bounds are UTC', () => {
  it.each(['timestamptz', 'timestamp'])('event_time of type %s: the same batches under TZ=UTC and TZ=America/Los_Angeles', async (tsType) => {
    const expected = { '2024-01-01 00:00:00': 1, '2024-02-01 00:00:00': 2, '2024-03-01 00:00:00': 1 };
    expect(await batchRows('UTC', tsType)).toEqual(expected);
    expect(await batchRows('America/Los_Angeles', tsType)).toEqual(expected);
  });
});
