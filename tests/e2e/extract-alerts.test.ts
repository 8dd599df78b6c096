// Schema drift at a loader's source is alerted (etl.yml alerts:, a command
// sink writing each event it reads on its stdin to a file): a column added and one removed raise
// `schema_change` (the columns) and `loader_warn` (the removed column's
// warning, on every run until a full refresh), never `test_warn`; a column
// added alone raises `schema_change` with status success; an incompatible type change fails the loader and
// raises `failure`. A real Postgres source (a schema of its own).

import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { etlYml, PG_URL, pgQuoteIdent, pgTestSchemas, read, readJson, runCli, writeProject } from './helpers.js';

const pg = pgTestSchemas();
const env = { CRM_URL: PG_URL, TZ: 'UTC' };

describe('schema drift at a loader source is alerted', () => {
  it('schema_change with the columns, loader_warn for a removed one, failure for an incompatible type', async () => {
    const schema = pg.schema();
    const t = `${pgQuoteIdent(schema)}.items`;
    await pg.admin.query(`create schema ${pgQuoteIdent(schema)}`);
    await pg.admin.query(`create table ${t} (id integer primary key, qty integer, note text, updated_at timestamptz not null)`);
    await pg.admin.query(`insert into ${t} select g, g, 'n' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' from generate_series(1, 10) g`);
    const dir = writeProject({
      'etl.yml': etlYml('shop', `alerts:\n  - name: drift\n    on: [schema_change, loader_warn, test_warn, failure]\n    command: "cat > alert-$$.json"\n`),
      'models/crm.yml': `sources:
  - name: crm
    tables:
      - name: items
        loader:
          type: postgres
          url: "{{env_var 'CRM_URL'}}"
          table: ${schema}.items
          incremental: { cursor: updated_at, primary_key: id }
`,
    });
    // Each event to a file of its own (the sinks of one run may run at once): those not seen before, in the order raised.
    const seen = new Set<string>();
    const events = () => {
      const fresh = readdirSync(dir).filter((f) => /^alert-\d+\.json$/.test(f) && !seen.has(f));
      for (const f of fresh) seen.add(f);
      return fresh.map((f) => JSON.parse(read(dir, f)) as Record<string, any>).sort((a, b) => String(a.event).localeCompare(String(b.event)));
    };
    const first = await runCli(['extract'], { cwd: dir, env });
    expect(first.code, first.output).toBe(0);
    expect(events()).toEqual([]);

    await pg.admin.query(`alter table ${t} add column color text, drop column note`);
    await pg.admin.query(`update ${t} set color = 'red', updated_at = timestamptz '2025-01-01 00:00:00+00' where id = 3`);
    const drift = await runCli(['extract'], { cwd: dir, env });
    expect(drift.code, drift.output).toBe(0);
    const runId = readJson(dir, 'target/run_results.json').metadata.invocation_id;
    const raised = events();
    expect(raised.map((e) => e.event)).toEqual(['loader_warn', 'schema_change']);
    const node = { unique_id: 'loader.shop.crm.items', name: 'crm.items', resource_type: 'loader' };
    expect(raised.find((e) => e.event === 'schema_change')).toMatchObject({
      version: 1,
      run_id: runId,
      node,
      message: 'loader crm.items: columns changed at the source: added color; removed note',
      details: { status: 'warn', added: ['color'], removed: ['note'], changed: [] },
    });
    expect(raised.find((e) => e.event === 'loader_warn')).toMatchObject({ node, run_id: runId });
    expect(raised.find((e) => e.event === 'loader_warn')!.message).toMatch(/^loader crm\.items warned: MERGE since .*column note no longer at the source \(kept, NULL in new rows\)$/);

    // Another column added: the removed one is still missing (warned on every run until a full refresh drops it).
    await pg.admin.query(`alter table ${t} add column size integer`);
    await pg.admin.query(`update ${t} set size = 4, updated_at = timestamptz '2025-02-01 00:00:00+00' where id = 4`);
    const added = await runCli(['extract'], { cwd: dir, env });
    expect(added.code, added.output).toBe(0);
    const later = events();
    expect(later.map((e) => e.event)).toEqual(['loader_warn', 'schema_change']);
    expect(later[1]).toMatchObject({ details: { status: 'warn', added: ['size'], removed: ['note'], changed: [] } });

    // --full-refresh takes the source's columns as they are: nothing to report. Then a column added alone: status success, no warning.
    const refresh = await runCli(['extract', '--full-refresh'], { cwd: dir, env });
    expect(refresh.code, refresh.output).toBe(0);
    expect(events()).toEqual([]);
    await pg.admin.query(`alter table ${t} add column weight numeric(6,2)`);
    await pg.admin.query(`update ${t} set weight = 1.5, updated_at = timestamptz '2025-02-15 00:00:00+00' where id = 6`);
    const alone = await runCli(['extract'], { cwd: dir, env });
    expect(alone.code, alone.output).toBe(0);
    const clean = events();
    expect(clean.map((e) => e.event)).toEqual(['schema_change']);
    expect(clean[0]).toMatchObject({ details: { status: 'success', added: ['weight'], removed: [], changed: [] }, message: 'loader crm.items: columns changed at the source: added weight' });

    // text -> integer cannot be taken: the loader fails, and that is a failure alert.
    await pg.admin.query(`alter table ${t} alter column color type integer using 1`);
    await pg.admin.query(`update ${t} set qty = 7, updated_at = timestamptz '2025-03-01 00:00:00+00' where id = 5`);
    const narrowing = await runCli(['extract'], { cwd: dir, env });
    expect(narrowing.code).toBe(1);
    const last = events();
    expect(last.map((e) => e.event)).toEqual(['failure']);
    expect(last[0]).toMatchObject({ node, details: { status: 'error' } });
    expect(last[0]!.message).toContain('the type of color (VARCHAR -> INTEGER) changed at the source of crm.items');
  });
});
