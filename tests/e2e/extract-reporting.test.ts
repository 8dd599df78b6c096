// What a load reports, in each place it is reported: the run output's line,
// `--log-format json` (node_finished's `load`), run_results.json
// (adapter_response) and the run history (`etl history`: rows read, loaded,
// deleted and rejected, rows/s, bytes, the message), the same numbers everywhere. A real Postgres source (a schema of
// its own) with `deletes: detect`, so rows deleted are reported too.

import { describe, expect, it } from 'vitest';
import { LOAD_COLUMNS } from '../../core/state/state.js';
import { etlYml, PG_URL, pgQuoteIdent, pgTestSchemas, readJson, runCli, writeProject } from './helpers.js';

const pg = pgTestSchemas();
const env = { CRM_URL: PG_URL, TZ: 'UTC' };

describe('load reporting', () => {
  it('rows read, loaded, deleted and rejected, bytes and rows/s: in the output, the JSON log, run_results and history alike', async () => {
    const schema = pg.schema();
    const t = `${pgQuoteIdent(schema)}.customers`;
    await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
    await pg.admin.query(`create table ${t} (id int primary key, name text, updated_at timestamptz not null)`);
    await pg.admin.query(`insert into ${t} select g, 'name ' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' from generate_series(1, 1000) g`);
    const dir = writeProject({
      'etl.yml': etlYml('shop'),
      'models/crm.yml': `sources:\n  - name: crm\n    tables:\n      - name: customers\n        loader: { type: postgres, url: "{{env_var 'CRM_URL'}}", table: ${schema}.customers, incremental: { cursor: updated_at, primary_key: id, deletes: detect } }\n`,
    });
    const first = await runCli(['extract'], { cwd: dir, env });
    expect(first.code, first.output).toBe(0);

    await pg.admin.query(`delete from ${t} where id <= 7`);
    await pg.admin.query(`update ${t} set name = 'changed', updated_at = timestamptz '2025-01-01 00:00:00+00' where id between 100 and 104`);
    const r = await runCli(['extract', '--log-format', 'json'], { cwd: dir, env });
    expect(r.code, r.output).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    const finished = events.find((e) => e.event === 'node_finished' && e.unique_id === 'loader.shop.crm.customers');
    expect(finished).toBeDefined();
    // The five changed rows and the one at the watermark; 7 keys gone.
    expect(finished!.load).toMatchObject({ rows_read: 6, rows_loaded: 6, rows_deleted: 7, rows_rejected: 0 });
    expect(finished!.load.bytes).toBeGreaterThan(5 * 20);
    expect(finished!.load.rows_per_second).toBeGreaterThan(0);

    const result = readJson(dir, 'target/run_results.json').results.find((x: { unique_id: string }) => x.unique_id === 'loader.shop.crm.customers');
    expect(result.adapter_response).toMatchObject({ ...finished!.load, rows_affected: 6 });
    expect(result.adapter_response.seconds).toBeGreaterThan(0);
    expect(result.message).toBe(`MERGE since 2024-01-01 00:16:40+00 (6 rows read, 6 loaded, 7 deleted, ${result.message.match(/, ([\d.]+ [KMG]?i?B), /)![1]}, ${finished!.load.rows_per_second} rows/s)`);

    const history = await runCli(['history', '-s', 'source:crm.customers', '--limit', '1', '-o', 'json'], { cwd: dir, env });
    expect(history.code, history.output).toBe(0);
    const [load] = JSON.parse(history.stdout).node_runs;
    expect(load).toMatchObject({ unique_id: 'loader.shop.crm.customers', status: 'success', rows_affected: 6, bytes_written: finished!.load.bytes, bytes_scanned: finished!.load.bytes, message: result.message });
    // Columns of their own, as run_results has them: rows read, loaded, deleted, rejected and rows/s.
    expect(load).toMatchObject({ rows_read: 6, rows_loaded: 6, rows_deleted: 7, rows_rejected: 0 });
    for (const c of LOAD_COLUMNS) expect(load[c], c).toBe(result.adapter_response[c]);
  });
});
