// The Delta target end to end, through the built CLI: project-template builds
// on a lake and equals the DuckDB build table for table; what only Delta has
// (commits, state in the log, history, vacuum, optimize, time travel,
// quarantine rolled forward, copy-on-write, txn idempotence). The shared suites
// (incremental strategies and microbatch, snapshots, data tests) run on
// Delta through tests/e2e/targets.ts.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeltaTable, LocalStorage } from '../../adapters/delta/index.js';
import { copyTemplate, etlYml, killAll, readJson, removeTempDirs, runCli, startCli, withDb, writeProject, type CliResult } from './helpers.js';
import { activeFilesByJsonReplay, extractGolden, openDuckDb, type TestDb } from '../delta/helpers.js';
import { checkProtocol, lakeTables } from '../delta/protocol-check.js';

let db: TestDb;
beforeAll(async () => {
  db = await openDuckDb();
});
afterAll(async () => {
  db?.close();
  await killAll();
  removeTempDirs();
});

const LAKE_TARGET = `  lake: { type: delta, path: lake, schema: main, threads: 4 }\n`;
const deltaYml = (name: string, extra = '') => etlYml(name, extra).replace('target: dev\n', 'target: lake\n').replace('targets:\n', `targets:\n${LAKE_TARGET}`);

function etl(dir: string, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir });
}

/** etl with its run clock pinned (ETL_NOW). */
function etlAt(now: string, dir: string, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir, env: { ETL_NOW: now } });
}

function expectOk(r: CliResult): void {
  expect(r.code, r.output).toBe(0);
}

function table(dir: string, name: string, schema = 'main'): DeltaTable {
  return new DeltaTable(new LocalStorage(path.join(dir, 'lake', schema, name)), db.session);
}

/** The rows of a lake table, every value as text, sorted. */
async function rows(dir: string, name: string, columns = '*', schema = 'main'): Promise<string[][]> {
  const scan = await table(dir, name, schema).scan();
  const r = await db.session.query(`select cast(columns(*) as varchar) from (select ${columns} from (${scan.sql}) as t) as x order by all`);
  return r.rows as string[][];
}

/** Every table under the project's lake checked by the protocol checker (tests/delta/protocol-check.ts); etl's snapshot has the files of the replay. */
async function expectLakeFollowsProtocol(dir: string): Promise<void> {
  const tables = lakeTables(path.join(dir, 'lake'));
  expect(tables.length).toBeGreaterThan(0);
  for (const folder of tables) {
    const replayed = await checkProtocol(db.session, folder);
    const snapshot = await new DeltaTable(new LocalStorage(folder), db.session).snapshot();
    expect(new Set(snapshot.files.keys()), folder).toEqual(new Set(replayed.keys()));
    // Writer 2 / reader 1, unless a feature is needed: domainMetadata for state or quarantine records, timestampNtz for naive timestamps, deletionVectors when turned on.
    const needed = new Set<string>();
    if (snapshot.domains.size) needed.add('domainMetadata');
    if (JSON.stringify(snapshot.schema).includes('"timestamp_ntz"')) needed.add('timestampNtz');
    if (snapshot.metadata.configuration['delta.enableDeletionVectors'] === 'true') needed.add('deletionVectors');
    const p = snapshot.protocol;
    if (needed.size === 0) expect([p.minReaderVersion, p.minWriterVersion, p.readerFeatures, p.writerFeatures], folder).toEqual([1, 2, undefined, undefined]);
    else expect([p.minWriterVersion, new Set(p.writerFeatures)], folder).toEqual([7, needed]);
  }
}

/** The test each describe that builds a lake ends with. */
function itFollowsTheProtocol(dirOf: () => string): void {
  it("every table of the lake follows the protocol, and etl's reader (checkpoints included) agrees with a JSON replay", () => expectLakeFollowsProtocol(dirOf()));
}

function commits(dir: string, name: string, schema = 'main'): Array<Array<Record<string, any>>> {
  const log = path.join(dir, 'lake', schema, name, '_delta_log');
  return readdirSync(log)
    .filter((f) => /^\d{20}\.json$/.test(f))
    .sort()
    .map((f) => readFileSync(path.join(log, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
}

describe('project-template on a Delta target', () => {
  let dir: string;
  let build: CliResult;
  beforeAll(async () => {
    dir = copyTemplate();
    writeFileSync(path.join(dir, 'etl.yml'), readFileSync(path.join(dir, 'etl.yml'), 'utf8').replace('targets:\n', `targets:\n${LAKE_TARGET}`));
    build = await etl(dir, 'build', '--target', 'lake');
  });

  it('builds every seed, model and test, warning once that views are built as tables', () => {
    expectOk(build);
    expect(build.output).toMatch(/Finished \d+ nodes .*0 failed/);
    expect(build.stderr.match(/has no views: view models are built as tables/g)).toHaveLength(1);
  });

  it('holds the same rows as the DuckDB build, table for table', async () => {
    expectOk(await etl(dir, 'build', '--target', 'dev'));
    const tables = readdirSync(path.join(dir, 'lake', 'main'));
    expect(tables).toEqual(expect.arrayContaining(['orders', 'customers', 'stg_orders', 'raw_orders']));
    await withDb(path.join(dir, 'target', 'dev.duckdb'), async (duck) => {
      for (const name of tables) {
        const lake = await rows(dir, name);
        const reader = await duck.connection.runAndReadAll(`select cast(columns(*) as varchar) from main."${name}" order by all`);
        expect(lake, name).toEqual(reader.getRowsJS());
      }
    });
  });

  it('etl show and etl test read the lake', async () => {
    const show = await etl(dir, 'show', '--target', 'lake', '-s', 'customers', '--limit', '2');
    expectOk(show);
    expect(show.stdout).toMatch(/\(2 rows\)/);
    const test = await etl(dir, 'test', '--target', 'lake');
    expectOk(test);
    expect(test.output).toMatch(/0 failed/);
  });

  it('keeps run history in Delta tables under the lake', async () => {
    const runs = await rows(dir, 'runs', 'run_id, status', 'etl_meta');
    expect(runs.filter((r) => r[1] === 'success').length).toBeGreaterThanOrEqual(1);
    expect((await rows(dir, 'node_runs', 'unique_id', 'etl_meta')).length).toBeGreaterThan(10);
  });

  itFollowsTheProtocol(() => dir);
});

describe('ephemeral models on Delta', () => {
  it('are inlined as on the other engines: no table of their own, the model reading them has their rows', async () => {
    const dir = writeProject({
      'etl.yml': deltaYml('eph'),
      'models/base.sql': '{{config materialized="ephemeral"}}\nselect range as id from range(4)\n',
      'models/evens.sql': '{{config materialized="table"}}\nselect id from {{ref "base"}} where id % 2 = 0\n',
    });
    expectOk(await etl(dir, 'build'));
    expect(await rows(dir, 'evens', 'id')).toEqual([['0'], ['2']]);
    expect(existsSync(path.join(dir, 'lake', 'main', 'base'))).toBe(false);
    expect(readFileSync(path.join(dir, 'target/compiled/eph/models/evens.sql'), 'utf8')).toMatch(/with "?__etl_ephemeral__base"? as/);
  });
});

describe('incremental models on Delta', () => {
  const model = (config: string, from: string, cutoff: string) =>
    `{{config materialized="incremental" ${config}}}\nselect * from {{ref "${from}"}}\n{{#if is_incremental}}where ${cutoff} > (select max(${cutoff}) from {{this}}){{/if}}\n`;
  const BEFORE = 'order_id,line_no,sku,qty,updated_at\n1,1,A,1,2024-01-01\n1,2,B,2,2024-01-01\n2,1,A,5,2024-01-02\n3,1,C,1,2024-01-03\n3,2,D,1,2024-01-03\n';
  const AFTER = `${BEFORE.replace('1,2,B,2,2024-01-01', '1,2,B,7,2024-02-01').replace('3,1,C,1,2024-01-03', '3,1,C,9,2024-02-01')}2,2,E,1,2024-02-01\n4,1,F,3,2024-02-01\n`;
  const EXPECTED = [
    ['1', '1', 'A', '1', '2024-01-01'],
    ['1', '2', 'B', '7', '2024-02-01'],
    ['2', '1', 'A', '5', '2024-01-02'],
    ['2', '2', 'E', '1', '2024-02-01'],
    ['3', '1', 'C', '9', '2024-02-01'],
    ['3', '2', 'D', '1', '2024-01-03'],
    ['4', '1', 'F', '3', '2024-02-01'],
  ];
  let dir: string;
  let second: CliResult;
  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': deltaYml('inc'),
      'seeds/lines.csv': BEFORE,
      'models/lines_append.sql': model('event_time="updated_at"', 'lines', 'updated_at'),
      'models/lines_merge.sql': model('unique_key=(list "order_id" "line_no")', 'lines', 'updated_at'),
      'models/lines_di.sql': model('incremental_strategy="delete+insert" unique_key=(list "order_id" "line_no")', 'lines', 'updated_at'),
      'models/by_order.sql': '{{config materialized="incremental" unique_key="order_id" partition_by="order_id"}}\nselect order_id, sum(qty) as qty, max(updated_at) as updated_at from {{ref "lines"}} group by order_id\n',
    });
    expectOk(await etl(dir, 'build'));
    writeFileSync(path.join(dir, 'seeds/lines.csv'), AFTER);
    second = await etl(dir, 'build');
  });

  it('append adds the new rows in a commit that removes nothing, and records the watermark in the same commit', async () => {
    expectOk(second);
    expect(await rows(dir, 'lines_append', 'order_id, line_no, sku, qty, updated_at')).toHaveLength(9);
    const last = commits(dir, 'lines_append').at(-1)!;
    expect(last.filter((a) => a.remove)).toHaveLength(0);
    expect(last.filter((a) => a.add)).toHaveLength(1);
    const state = JSON.parse(last.find((a) => a.domainMetadata)!.domainMetadata.configuration);
    expect(state.watermark).toMatchObject({ column: 'updated_at', value: '2024-02-01' });
    expect((await table(dir, 'lines_append').snapshot()).protocol).toMatchObject({ minWriterVersion: 7, writerFeatures: ['domainMetadata'] });
  });

  it('merge and delete+insert on a composite key give the merged rows, in one commit each', async () => {
    for (const name of ['lines_merge', 'lines_di']) {
      expect(await rows(dir, name, 'order_id, line_no, sku, qty, updated_at'), name).toEqual(EXPECTED);
      const last = commits(dir, name).at(-1)!;
      expect(last[0]!.commitInfo.operation).toBe(name === 'lines_merge' ? 'MERGE' : 'DELETE+INSERT');
      expect(last.filter((a) => a.remove)).toHaveLength(1);
    }
  });

  it('a partitioned merge rewrites only the partitions holding changed keys', async () => {
    const t = await table(dir, 'by_order').snapshot();
    expect(t.metadata.partitionColumns).toEqual(['order_id']);
    const last = commits(dir, 'by_order').at(-1)!;
    // Orders 1, 2 and 3 changed (their partitions are rewritten); order 4 is new.
    expect(last.filter((a) => a.remove).map((a) => a.remove.partitionValues.order_id).sort()).toEqual(['1', '2', '3']);
    expect(last.filter((a) => a.add).map((a) => a.add.partitionValues.order_id).sort()).toEqual(['1', '2', '3', '4']);
    expect(await rows(dir, 'by_order', 'order_id, qty')).toEqual([
      ['1', '8'],
      ['2', '6'],
      ['3', '10'],
      ['4', '3'],
    ]);
  });

  itFollowsTheProtocol(() => dir);
});

const DAY = 86_400_000;
// Microbatch runs below pin their clock (ETL_NOW) here: the same batches whatever the date.
const NOW = '2024-03-10T12:00:00Z';
const ymd = (offset: number) => new Date(Math.floor(Date.parse(NOW) / DAY) * DAY + offset * DAY).toISOString().slice(0, 10);

// Microbatch, data tests, contracts and quarantine give the same rows on Delta
// as on DuckDB (incremental.test.ts and data-tests.test.ts run on both); here,
// where a batch's record lives.
describe('microbatch on Delta', () => {
  let dir: string;
  let first: CliResult;
  // Batches from three days before the pinned clock to its day: a few commits.
  const days = [ymd(-3), ymd(-2), ymd(-1)];
  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': deltaYml('more'),
      'seeds/events.csv': `id,ts,v\n${days.map((d, i) => `${i + 1},${d} 06:00:00,${i + 1}`).join('\n')}\n`,
      'models/events_mb.sql': `{{config materialized="incremental" incremental_strategy="microbatch" event_time="ts" batch_size="day" begin="${days[0]}"}}\nselect id, ts, v from {{ref "events"}}\n`,
    });
    first = await etlAt(NOW, dir, 'build');
  });

  it('microbatch commits each batch with its record in the table\'s etl.state domain', async () => {
    expectOk(first);
    expect(await rows(dir, 'events_mb', 'id')).toEqual([['1'], ['2'], ['3']]);
    const state = JSON.parse((await table(dir, 'events_mb').snapshot()).domains.get('etl.state')!.configuration);
    expect(Object.keys(state.batches).slice(0, 3)).toEqual(days.map((d) => `${d} 00:00:00`));
    expect(Object.values(state.batches).every((b: any) => b.status === 'success')).toBe(true);
  });

  itFollowsTheProtocol(() => dir);
});

describe('etl delta history | vacuum | optimize', () => {
  let dir: string;
  beforeAll(async () => {
    dir = writeProject({ 'etl.yml': deltaYml('maint'), 'models/events.sql': '{{config materialized="incremental"}}\nselect range as id from range(3)\n' });
    for (let i = 0; i < 3; i++) expectOk(await etl(dir, 'build'));
  });

  it('history lists the versions of a model, newest first', async () => {
    const r = await etl(dir, 'delta', 'history', '-s', 'events', '--log-format', 'json');
    expectOk(r);
    const [t] = JSON.parse(r.stdout) as Array<{ table: string; result: Array<{ version: number; operation: string }> }>;
    expect(t!.table).toBe('main.events');
    expect(t!.result.map((h) => [h.version, h.operation])).toEqual([
      [2, 'WRITE'],
      [1, 'WRITE'],
      [0, 'CREATE TABLE AS SELECT'],
    ]);
  });

  it('each commit names the invocation (run_results.json\'s and manifest.json\'s) and the node that wrote it', async () => {
    const invocation = readJson(dir, 'target/run_results.json').metadata.invocation_id as string;
    const last = commits(dir, 'events').at(-1)!.find((a) => a.commitInfo)!.commitInfo;
    expect(last).toMatchObject({ etlInvocationId: invocation, etlNodeId: 'model.maint.events', operation: 'WRITE' });
    expect(last.engineInfo).toMatch(/^etl\/\d/);
    const r = await etl(dir, 'delta', 'history', '-s', 'events', '--limit', '1');
    expectOk(r);
    expect(r.stdout).toMatch(new RegExp(`\\| WRITE .*\\| ${invocation} \\| model\\.maint\\.events \\|`));
    // The run's own records in etl_meta carry the same id.
    const runs = commits(dir, 'runs', 'etl_meta').flat().filter((a) => a.commitInfo).map((a) => a.commitInfo.etlInvocationId);
    expect(runs).toContain(invocation);
  });

  it('optimize compacts the appended files into one; vacuum refuses a short retention unless forced', async () => {
    const opt = await etl(dir, 'delta', 'optimize', '-s', 'events');
    expectOk(opt);
    expect(opt.stdout).toMatch(/main\.events: 3 files compacted into 1 \(version 3\)/);
    expect(await rows(dir, 'events', 'id')).toEqual([['0'], ['0'], ['0'], ['1'], ['1'], ['1'], ['2'], ['2'], ['2']]);
    const refused = await etl(dir, 'delta', 'vacuum', '-s', 'events', '--retain', '1h');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to vacuum .*retention of 1h/);
    const dry = await etl(dir, 'delta', 'vacuum', '-s', 'events', '--retain', '0h', '--force', '--dry-run');
    expectOk(dry);
    // The three files optimize replaced are unreferenced now; a dry run lists them and deletes nothing.
    expect(dry.stdout).toMatch(/main\.events: would delete 3 files/);
    expect(await rows(dir, 'events', 'id')).toHaveLength(9);
    // The optimize commit rearranged rows: every add and remove has dataChange false.
    const optimized = commits(dir, 'events').at(-1)!;
    expect(optimized.find((a) => a.commitInfo)!.commitInfo.operation).toBe('OPTIMIZE');
    const files = optimized.filter((a) => a.add || a.remove).map((a) => [a.add ? 'add' : 'remove', (a.add ?? a.remove).dataChange]);
    expect(files.sort()).toEqual([['add', false], ['remove', false], ['remove', false], ['remove', false]]);
    // Forced, it deletes them; the table reads the same.
    const folder = path.join(dir, 'lake', 'main', 'events');
    const before = readdirSync(folder).filter((f) => f.endsWith('.parquet'));
    const done = await etl(dir, 'delta', 'vacuum', '-s', 'events', '--retain', '0h', '--force');
    expectOk(done);
    expect(done.stdout).toMatch(/main\.events: deleted 3 files/);
    expect(readdirSync(folder).filter((f) => f.endsWith('.parquet'))).toHaveLength(before.length - 3);
    expect(await rows(dir, 'events', 'id')).toHaveLength(9);
  });

  it('needs a delta target', async () => {
    const r = await runCli(['delta', 'history', '-s', 'events', '--project-dir', dir, '--target', 'dev'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/works on a delta target; target dev is duckdb/);
  });

  itFollowsTheProtocol(() => dir);
});

describe('insert_overwrite on Delta and DuckDB', () => {
  let dir: string;
  const sales = (rows: string[]) => `id,day,amount\n${rows.join('\n')}\n`;
  const FIRST = ['1,2024-01-01,10', '2,2024-01-02,20', '3,2024-01-03,30'];
  const SECOND = [...FIRST, '4,2024-01-03,5', '5,2024-01-04,40'];
  const EXPECTED = [
    ['2024-01-01', '10', '1'],
    ['2024-01-02', '20', '1'],
    ['2024-01-03', '35', '2'],
    ['2024-01-04', '40', '1'],
  ];
  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': deltaYml('io'),
      'seeds/sales.csv': sales(FIRST),
      'models/daily.sql': '{{config materialized="incremental" incremental_strategy="insert_overwrite" partition_by="day"}}\nselect day, sum(amount) as total, count(*) as n from {{ref "sales"}}\n{{#if is_incremental}}where day >= (select max(day) from {{this}}){{/if}}\ngroup by day\n',
    });
    for (const target of ['lake', 'dev']) expectOk(await etl(dir, 'build', '--target', target));
    writeFileSync(path.join(dir, 'seeds/sales.csv'), sales(SECOND));
    for (const target of ['lake', 'dev']) expectOk(await etl(dir, 'build', '--target', target));
  });

  it('replaces exactly the partitions the new rows touch, on both engines', async () => {
    expect(await rows(dir, 'daily', 'day, total, n')).toEqual(EXPECTED);
    await withDb(path.join(dir, 'target', 'dev.duckdb'), async (duck) => {
      const r = await duck.connection.runAndReadAll('select cast(columns(*) as varchar) from (select day, total, n from main.daily) as t order by all');
      expect(r.getRowsJS()).toEqual(EXPECTED);
    });
  });

  it('on Delta, the commit removes the files of the replaced partition and nothing else', async () => {
    const last = commits(dir, 'daily').at(-1)!;
    expect(last[0]!.commitInfo.operation).toBe('INSERT OVERWRITE');
    expect(last.filter((a) => a.remove).map((a) => a.remove.partitionValues.day)).toEqual(['2024-01-03']);
    expect(last.filter((a) => a.add).map((a) => a.add.partitionValues.day).sort()).toEqual(['2024-01-03', '2024-01-04']);
  });

  it('needs partition_by', async () => {
    const bad = writeProject({ 'etl.yml': deltaYml('io_bad'), 'models/m.sql': '{{config materialized="incremental" incremental_strategy="insert_overwrite"}}\nselect 1 as id\n' });
    const r = await etl(bad, 'compile');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/insert_overwrite needs partition_by/);
  });

  itFollowsTheProtocol(() => dir);
});

describe('time travel: {{ref "x" version=N}} and timestamp="..."', () => {
  let dir: string;
  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': deltaYml('tt'),
      'models/orders.sql': '{{config materialized="table"}}\nselect range as id from range({{var "n" 1}})\n',
      'models/orders_first.sql': '{{config materialized="table"}}\nselect * from {{ref "orders" version=0}}\n',
      'models/orders_then.sql': '{{config materialized="table"}}\nselect * from {{ref "orders" timestamp=(var "ts" "2999-01-01T00:00:00Z")}}\n',
    });
    expectOk(await etl(dir, 'build'));
  });

  it('reads the version asked for, while the latest moves on', async () => {
    const v0 = (await table(dir, 'orders').history()).find((h) => h.version === 0)!;
    expectOk(await etl(dir, 'build', '--vars', JSON.stringify({ n: 3, ts: new Date(v0.timestamp).toISOString() })));
    expect(await rows(dir, 'orders', 'id')).toEqual([['0'], ['1'], ['2']]);
    expect(await rows(dir, 'orders_first', 'id')).toEqual([['0']]);
    expect(await rows(dir, 'orders_then', 'id')).toEqual([['0']]);
    const compiled = readFileSync(path.join(dir, 'target/compiled/tt/models/orders_first.sql'), 'utf8');
    expect(compiled).toContain('"main"."orders@v0"');
  });

  it('a version that does not exist fails the model, naming the table and version', async () => {
    writeFileSync(path.join(dir, 'models/orders_first.sql'), '{{config materialized="table"}}\nselect * from {{ref "orders" version=99}}\n');
    const r = await etl(dir, 'build', '-s', 'orders_first', '--no-check');
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/has no version 99: its latest version is 1/);
  });

  it('needs a target that keeps versions', async () => {
    const r = await etl(dir, 'compile', '--target', 'dev');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/orders_first\.sql:2:\d+: .*does not keep[\s\S]*time travel needs a delta target/);
  });

  itFollowsTheProtocol(() => dir);
});

describe('a source at a location: any Delta table by path', () => {
  it('reads a table Spark wrote, in a model, in show and in a test', async () => {
    const dir = writeProject({
      'etl.yml': deltaYml('ext'),
      'models/sources.yml': 'sources:\n  - name: spark\n    tables:\n      - name: primitives\n        location: external/data-reader-primitives/delta\n        columns:\n          - { name: as_int, tests: [unique] }\n',
      'models/ints.sql': '{{config materialized="table"}}\nselect as_int, as_string from {{source "spark" "primitives"}} where as_int is not null\n',
    });
    mkdirSync(path.join(dir, 'external'), { recursive: true });
    extractGolden('data-reader-primitives', path.join(dir, 'external'));
    const r = await etl(dir, 'build');
    expectOk(r);
    expect(await rows(dir, 'ints', 'as_int, as_string')).toEqual(Array.from({ length: 10 }, (_, i) => [String(i), String(i)]).sort());
    const show = await etl(dir, 'show', '--inline', 'select count(*) as n from spark.primitives');
    expectOk(show);
    expect(show.stdout).toMatch(/\|\s+11 \|/);
  });

  it('a location that is not a Delta table fails with its path; another target cannot have such sources', async () => {
    const dir = writeProject({
      'etl.yml': deltaYml('ext_bad'),
      'models/sources.yml': 'sources:\n  - name: raw\n    tables:\n      - { name: t, location: nowhere }\n',
      'models/m.sql': 'select * from {{source "raw" "t"}}\n',
    });
    const r = await etl(dir, 'build', '--no-check');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not a Delta table: .*nowhere has no _delta_log/);
    const dev = await etl(dir, 'build', '--target', 'dev', '--no-check');
    expect(dev.code).toBe(2);
    expect(dev.stderr).toMatch(/models\/sources\.yml.*source raw\.t has a location, which target dev \(duckdb\) cannot read/);
  });

  it('a table with a feature etl does not read (column mapping) is refused by name, with its path', async () => {
    const dir = writeProject({
      'etl.yml': deltaYml('ext_cm'),
      'models/sources.yml': 'sources:\n  - name: spark\n    tables:\n      - { name: mapped, location: external/table-with-columnmapping-mode-name/delta }\n',
      'models/m.sql': 'select * from {{source "spark" "mapped"}}\n',
    });
    mkdirSync(path.join(dir, 'external'), { recursive: true });
    extractGolden('table-with-columnmapping-mode-name', path.join(dir, 'external'));
    const r = await etl(dir, 'build', '--no-check');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unsupported Delta feature: columnMapping/);
    expect(r.stderr).toContain(path.join('external', 'table-with-columnmapping-mode-name', 'delta'));
  });
});

describe('on_schema_change on Delta', () => {
  it('append_new_columns adds the column in the commit\'s metaData; sync_all_columns drops one and retypes another, rewriting the files', async () => {
    const model = (cols: string, mode: string) => `{{config materialized="incremental" on_schema_change="${mode}"}}\nselect ${cols} from range({{var "n" 1}}) as r(i)\n{{#if is_incremental}}where i >= (select count(*) from {{this}}){{/if}}\n`;
    const dir = writeProject({ 'etl.yml': deltaYml('osc'), 'models/m.sql': model('i as id, i * 10 as a', 'append_new_columns') });
    expectOk(await etl(dir, 'build'));
    writeFileSync(path.join(dir, 'models/m.sql'), model(`i as id, i * 10 as a, 'x' || i as b`, 'append_new_columns'));
    expectOk(await etl(dir, 'build', '--vars', '{n: 2}'));
    expect(await rows(dir, 'm', 'id, a, b')).toEqual([
      ['0', '0', null],
      ['1', '10', 'x1'],
    ]);
    const added = commits(dir, 'm').at(-1)!;
    expect(JSON.parse(added.find((a) => a.metaData)!.metaData.schemaString).fields.map((f: { name: string }) => f.name)).toEqual(['id', 'a', 'b']);
    writeFileSync(path.join(dir, 'models/m.sql'), model(`cast(i as integer) as id, 'x' || i as b`, 'sync_all_columns'));
    expectOk(await etl(dir, 'build', '--vars', '{n: 3}'));
    const s = await table(dir, 'm').snapshot();
    expect(s.schema.fields.map((f) => [f.name, f.type])).toEqual([
      ['id', 'integer'],
      ['b', 'string'],
    ]);
    expect(await rows(dir, 'm', 'id, b')).toEqual([
      ['0', null],
      ['1', 'x1'],
      ['2', 'x2'],
    ]);
  });
});

describe('a type a Delta table cannot hold', () => {
  it('is an error of the model before anything is built, naming file:line and the column; the same model builds on DuckDB', async () => {
    const dir = writeProject({
      'etl.yml': deltaYml('types'),
      'models/m.sql': "{{config materialized=\"table\"}}\nselect 1 as id,\n  interval 1 day as gap,\n  time '10:00' as opens_at\n",
      'models/fine.sql': 'select 1 as id\n',
    });
    for (const command of ['build', 'compile']) {
      const r = await etl(dir, command, ...(command === 'compile' ? ['--check'] : []));
      expect(r.code, r.output).toBe(2);
      expect(r.stderr).toMatch(/models\/m\.sql:3:\d+: m: column gap has type INTERVAL, which a Delta table cannot hold: Delta has no interval type/);
      expect(r.stderr).toMatch(/models\/m\.sql:4:\d+: m: column opens_at has type TIME, which a Delta table cannot hold/);
      expect(r.stderr).not.toMatch(/fine/);
    }
    expect(existsSync(path.join(dir, 'lake'))).toBe(false);
    expectOk(await etl(dir, 'build', '--target', 'dev'));
  });
});

describe('quarantine and its model commit, killed between the two', () => {
  // Delta commits one table at a time: the quarantine rows are written as
  // files no commit references, the model's commit records them (its
  // etl.quarantine domain), and the quarantine commit follows. Killed right
  // after the model's commit, a plain log replay of the quarantine table (what
  // Spark reads) shows no row of the killed run: never rows of a model commit
  // that did not happen. The next etl run on the lake commits them (rolled
  // forward), once however often it runs (txn appId etl.quarantine:<model>).
  const src = (rows: Array<[number, number, number]>) => `id,batch,amount\n${rows.map((r) => r.join(',')).join('\n')}\n`;
  const FIRST: Array<[number, number, number]> = [[1, 1, 10], [2, 1, -5], [3, 1, 30]];
  const SECOND: Array<[number, number, number]> = [...FIRST, [4, 2, -7], [5, 2, 50], [6, 2, -9]];
  const MODELS = {
    orders_t: '{{config materialized="table" quarantine=true}}\nselect * from {{ref "src"}}\n',
    orders_i: '{{config materialized="incremental" unique_key="id" quarantine=true}}\nselect * from {{ref "src"}}\n{{#if is_incremental}}where batch > (select max(batch) from {{this}}){{/if}}\n',
  };
  let dir: string;
  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': deltaYml('quar'),
      'seeds/src.csv': src(FIRST),
      ...Object.fromEntries(Object.entries(MODELS).map(([name, sql]) => [`models/${name}.sql`, sql])),
      'models/schema.yml': `models:\n${Object.keys(MODELS).map((m) => `  - name: ${m}\n    tests: [{ expression_is_true: { expression: "amount >= 0" } }]\n`).join('')}`,
    });
    expectOk(await etl(dir, 'build'));
    writeFileSync(path.join(dir, 'seeds/src.csv'), src(SECOND));
    expectOk(await etl(dir, 'seed'));
  });

  /** The quarantine table as a reader of the files sees it: the JSON commits replayed (add, remove), the active files read. */
  const replayed = async (model: string): Promise<Array<[string, number[]]>> => {
    const files = activeFilesByJsonReplay(path.join(dir, 'lake', 'main', `${model}__quarantine`));
    if (files.length === 0) return [];
    const r = await db.session.query(`select etl_run_id, list(id order by id) from read_parquet([${files.map((f) => `'${f}'`).join(', ')}]) group by all order by min(etl_quarantined_at)`);
    return r.rows.map((row) => [String(row[0]), (row[1] as number[]).map(Number)]);
  };
  const record = async (model: string) => JSON.parse((await table(dir, model).snapshot()).domains.get('etl.quarantine')!.configuration) as { table: string; seq: number; adds: Array<{ path: string }> };

  it.each([
    // The next etl run on the lake: one that builds nothing of this model, or a vacuum that would otherwise delete the staged files.
    ['table', 'orders_t', [1, 3, 5], [2, 4, 6], ['seed']],
    ['incremental (merge)', 'orders_i', [1, 3, 5], [4, 6], ['delta', 'vacuum', '--retain', '0h', '--force']],
  ])('%s: the killed run\'s quarantine rows appear only with its model commit, rolled forward once by the next run', async (_kind, model, good, secondBad, next) => {
    const first = await replayed(model);
    expect(first).toEqual([[expect.any(String), [2]]]);
    const firstSeq = (await record(model)).seq;

    const child = startCli(['build', '-s', model, '--project-dir', dir], { cwd: dir, env: { ETL_PAUSE_AFTER_SQL: `^delta commit \\S+ v\\d+ .*/main/${model}$` } });
    await child.waitForOutput(/\[paused after sql\]/);
    child.kill('SIGKILL');
    await child.done;
    // The model's commit happened, with its record of the staged quarantine files; the quarantine commit did not.
    expect(await rows(dir, model, 'id')).toEqual(good.map((id) => [String(id)]));
    const killedRun = commits(dir, model).at(-1)!.find((a) => a.commitInfo)!.commitInfo.etlInvocationId as string;
    const pending = await record(model);
    expect(pending).toMatchObject({ table: `main.${model}__quarantine`, seq: firstSeq + 1 });
    for (const add of pending.adds) expect(existsSync(path.join(dir, 'lake', 'main', `${model}__quarantine`, add.path))).toBe(true);
    // No reader sees them yet: not Spark's log replay, not etl show (read-only: it settles nothing).
    expect(await replayed(model)).toEqual(first);
    const shown = async () => {
      const r = await etl(dir, 'show', '--inline', `select string_agg(cast(id as varchar), ',' order by id) as ids from main.${model}__quarantine`, '--log-format', 'json');
      expectOk(r);
      return (JSON.parse(r.stdout) as { rows: string[][] }).rows[0]![0];
    };
    expect(await shown()).toBe('2');

    // The next etl run on the lake rolls the quarantine commit forward.
    expectOk(await etl(dir, ...next));
    expect(await replayed(model)).toEqual([first[0], [killedRun, secondBad]]);
    const rolled = commits(dir, `${model}__quarantine`).at(-1)!;
    expect(rolled.find((a) => a.txn)!.txn).toMatchObject({ appId: `etl.quarantine:main.${model}`, version: firstSeq + 1 });
    expect(rolled.find((a) => a.commitInfo)!.commitInfo).toMatchObject({ etlQuarantineOf: `main.${model}`, etlQuarantineSeq: firstSeq + 1 });
    // Again: nothing more (the txn says it is in).
    const versions = commits(dir, `${model}__quarantine`).length;
    expectOk(await etl(dir, 'seed'));
    expect(commits(dir, `${model}__quarantine`)).toHaveLength(versions);
    expect(await shown()).toBe([2, ...secondBad].join(','));

    // A run to completion quarantines its own rows in the same two steps, once.
    const rerun = await etl(dir, 'build', '-s', model);
    expectOk(rerun);
    const invocation = readJson(dir, 'target/run_results.json').metadata.invocation_id as string;
    const after = await replayed(model);
    expect(after.slice(0, 2)).toEqual([first[0], [killedRun, secondBad]]);
    // A table model quarantines every bad row of each run; the incremental one had no new rows.
    expect(after.slice(2)).toEqual(model === 'orders_t' ? [[invocation, secondBad]] : []);
  });

  itFollowsTheProtocol(() => dir);

  it('a roll-forward that cannot be made is a warning naming the model for other runs, and the model\'s own run fails on it', async () => {
    const other = writeProject({
      'etl.yml': deltaYml('quar2'),
      'seeds/src.csv': src(FIRST),
      'models/orders_t.sql': MODELS.orders_t,
      'models/other.sql': 'select 1 as id\n',
      'models/schema.yml': 'models:\n  - name: orders_t\n    tests: [{ expression_is_true: { expression: "amount >= 0" } }]\n',
    });
    expectOk(await etl(other, 'build'));
    writeFileSync(path.join(other, 'seeds/src.csv'), src(SECOND));
    expectOk(await etl(other, 'seed'));
    const child = startCli(['build', '-s', 'orders_t', '--project-dir', other], { cwd: other, env: { ETL_PAUSE_AFTER_SQL: '^delta commit \\S+ v\\d+ .*/main/orders_t$' } });
    await child.waitForOutput(/\[paused after sql\]/);
    child.kill('SIGKILL');
    await child.done;
    // Another writer replaced the quarantine table with one whose id is a string: the staged rows (id a long) cannot be appended.
    await table(other, 'orders_t__quarantine').write({ selectSql: `select 'x' as id`, mode: 'overwrite' });
    const r = await etl(other, 'run', '-s', 'other');
    expectOk(r);
    expect(r.stderr).toMatch(/warning: the quarantine rows recorded by main\.orders_t's last commit are not committed yet: column id of .*orders_t__quarantine is "string" but the new rows have "long"/);
    const own = await etl(other, 'run', '-s', 'orders_t');
    expect(own.code).toBe(1);
    expect(own.output).toMatch(/column id of .*orders_t__quarantine is "string"/);
  });
});

describe('txn: a change whose commit landed before its process died is applied once by etl retry', () => {
  // The model appends the batch a var names, with no filter on {{this}}: run twice with the same
  // batch, it appends it twice. Only the txn (appId: the run, version: the change's seq) tells the
  // retry of a killed run that the batch is in already.
  const events = `id,batch\n${[1, 2, 3, 4, 5, 6].map((id) => `${id},${id <= 3 ? 1 : 2}`).join('\n')}\n`;
  let dir: string;
  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': deltaYml('txn'),
      'seeds/events.csv': events,
      'models/loads.sql': '{{config materialized="incremental"}}\nselect id, batch from {{ref "events"}} where batch = {{var "batch" 1}}\n',
    });
    expectOk(await etl(dir, 'build'));
  });

  it('killed right after the append commit, etl retry reruns the run and skips the committed change; a new run appends again', async () => {
    expect(await rows(dir, 'loads', 'id')).toEqual([['1'], ['2'], ['3']]);
    const child = startCli(['run', '-s', 'loads', '--vars', '{batch: 2}', '--project-dir', dir], { cwd: dir, env: { ETL_PAUSE_AFTER_SQL: '^delta commit WRITE v\\d+ .*/main/loads$' } });
    await child.waitForOutput(/\[paused after sql\]/);
    child.kill('SIGKILL');
    await child.done;
    // The commit landed with its txn: the killed run's id, seq 0.
    const landed = commits(dir, 'loads').at(-1)!;
    const killedRun = landed.find((a) => a.commitInfo)!.commitInfo.etlInvocationId as string;
    expect(landed.find((a) => a.txn)!.txn).toMatchObject({ appId: killedRun, version: 0 });
    expect(await rows(dir, 'loads', 'id')).toEqual([['1'], ['2'], ['3'], ['4'], ['5'], ['6']]);
    expect(readJson(dir, 'target/run_started.json')).toMatchObject({ invocation_id: killedRun, changes_of: killedRun, nodes: ['model.txn.loads'] });

    const retry = await etl(dir, 'retry', '--vars', '{batch: 2}');
    expectOk(retry);
    expect(retry.output).toMatch(new RegExp(`the last run \\(${killedRun}\\) did not finish: its 1 node ran again`));
    const result = readJson(dir, 'target/run_results.json').results.find((r: { unique_id: string }) => r.unique_id === 'model.txn.loads');
    expect(result).toMatchObject({ status: 'success', message: `APPEND (already applied by run ${killedRun})` });
    // Once: six rows, and no commit after the killed run's.
    expect(await rows(dir, 'loads', 'id')).toEqual([['1'], ['2'], ['3'], ['4'], ['5'], ['6']]);
    expect(commits(dir, 'loads').at(-1)).toEqual(landed);
    expect(existsSync(path.join(dir, 'target/run_started.json'))).toBe(false);

    // A new run is a new change: the same batch is appended again (the model is not idempotent by itself).
    expectOk(await etl(dir, 'run', '-s', 'loads', '--vars', '{batch: 2}'));
    expect(await rows(dir, 'loads', 'id')).toEqual([['1'], ['2'], ['3'], ['4'], ['4'], ['5'], ['5'], ['6'], ['6']]);
  });

  itFollowsTheProtocol(() => dir);
});

describe('microbatch killed between two batch commits', () => {
  it('etl retry reruns the run: each batch once, every batch recorded, the batch commits carrying their txn', async () => {
    const days = [ymd(-3), ymd(-2), ymd(-1), ymd(0)];
    const dir = writeProject({
      'etl.yml': deltaYml('mbkill'),
      'seeds/events.csv': `id,ts\n${days.flatMap((d, i) => [`${2 * i + 1},${d} 06:00:00`, `${2 * i + 2},${d} 18:00:00`]).join('\n')}\n`,
      'models/events_mb.sql': `{{config materialized="incremental" incremental_strategy="microbatch" event_time="ts" batch_size="day" begin="${days[0]}"}}\nselect id, ts from {{ref "events"}}\n`,
    });
    expectOk(await etlAt(NOW, dir, 'seed'));
    // v0 creates the empty table, v1 and v2 are the first two batches: killed once v2 is in the log.
    const child = startCli(['run', '--project-dir', dir], { cwd: dir, env: { ETL_NOW: NOW, ETL_PAUSE_AFTER_SQL: '^delta commit REPLACE WHERE v2 .*/main/events_mb$' } });
    await child.waitForOutput(/\[paused after sql\]/);
    child.kill('SIGKILL');
    await child.done;
    expect(await rows(dir, 'events_mb', 'id')).toEqual([['1'], ['2'], ['3'], ['4']]);
    const killed = commits(dir, 'events_mb');
    const killedRun = killed.at(-1)!.find((a) => a.commitInfo)!.commitInfo.etlInvocationId as string;
    // Each batch's txn: the run, the batch's day number since the epoch.
    expect(killed.slice(1).map((c) => c.find((a) => a.txn)?.txn)).toEqual(days.slice(0, 2).map((d) => expect.objectContaining({ appId: killedRun, version: Date.parse(`${d}T00:00:00Z`) / DAY })));

    const retry = await etlAt(NOW, dir, 'retry');
    expectOk(retry);
    expect(retry.output).toMatch(/did not finish: its 1 node ran again/);
    expect(await rows(dir, 'events_mb', 'id')).toEqual(['1', '2', '3', '4', '5', '6', '7', '8'].map((id) => [id]));
    const state = JSON.parse((await table(dir, 'events_mb').snapshot()).domains.get('etl.state')!.configuration) as { batches: Record<string, { status: string }> };
    expect(Object.entries(state.batches).map(([start, b]) => [start, b.status])).toEqual(days.map((d) => [`${d} 00:00:00`, 'success']));
  });
});

describe('snapshots on Delta rewrite only the files holding changed keys', () => {
  let dir: string;
  const people = (rows: string[]) => `id,email,updated_at\n${rows.join('\n')}\n`;
  const paths = async () => [...(await table(dir, 'people_snap').snapshot()).files.values()].map((f) => f.path).sort();
  beforeAll(async () => {
    dir = writeProject({
      'etl.yml': deltaYml('snapcow'),
      'seeds/people.csv': people(['1,a@x,2024-01-01', '2,b@x,2024-01-01', '3,c@x,2024-01-01']),
      'snapshots/people_snap.sql': '{{config unique_key="id" strategy="timestamp" updated_at="updated_at" hard_deletes="invalidate"}}\nselect * from {{ref "people"}}\n',
    });
    expectOk(await etl(dir, 'build'));
  });

  it('new keys add a file; a changed key rewrites only its file; the other keeps its path', async () => {
    const [first] = await paths();
    expect(await paths()).toHaveLength(1);
    // New keys only: the first file stays, one file is added.
    writeFileSync(path.join(dir, 'seeds/people.csv'), people(['1,a@x,2024-01-01', '2,b@x,2024-01-01', '3,c@x,2024-01-01', '4,d@x,2024-02-01', '5,e@x,2024-02-01']));
    expectOk(await etl(dir, 'build'));
    const afterInsert = await paths();
    expect(afterInsert).toHaveLength(2);
    expect(afterInsert).toContain(first);
    const second = afterInsert.find((p) => p !== first)!;
    // Key 5 changes: only the second file (which holds key 5) is rewritten.
    writeFileSync(path.join(dir, 'seeds/people.csv'), people(['1,a@x,2024-01-01', '2,b@x,2024-01-01', '3,c@x,2024-01-01', '4,d@x,2024-02-01', '5,e2@x,2024-03-01']));
    expectOk(await etl(dir, 'build'));
    const afterChange = await paths();
    expect(afterChange).toContain(first);
    expect(afterChange).not.toContain(second);
    const last = commits(dir, 'people_snap').at(-1)!;
    expect(last.filter((a) => a.remove).map((a) => a.remove.path)).toEqual([second]);
    expect(last.find((a) => a.commitInfo).commitInfo.operation).toBe('MERGE');
    // Key 2 is deleted from the source (invalidated): the first file is rewritten, the rest kept.
    const beforeDelete = await paths();
    writeFileSync(path.join(dir, 'seeds/people.csv'), people(['1,a@x,2024-01-01', '3,c@x,2024-01-01', '4,d@x,2024-02-01', '5,e2@x,2024-03-01']));
    expectOk(await etl(dir, 'build'));
    const removed = commits(dir, 'people_snap').at(-1)!.filter((a) => a.remove).map((a) => a.remove.path);
    expect(removed).toEqual([first]);
    expect(await paths()).toEqual(expect.arrayContaining(beforeDelete.filter((p) => p !== first)));
    expect(await rows(dir, 'people_snap', 'id, email, etl_valid_to is null as current')).toEqual([
      ['1', 'a@x', 'true'],
      ['2', 'b@x', 'false'],
      ['3', 'c@x', 'true'],
      ['4', 'd@x', 'true'],
      ['5', 'e2@x', 'true'],
      ['5', 'e@x', 'false'],
    ]);
    // Every row once: the same rows as a full read of the log's latest version, no duplicate version ids.
    const ids = await rows(dir, 'people_snap', 'etl_scd_id');
    expect(new Set(ids.map((r) => r[0])).size).toBe(ids.length);
  });

  itFollowsTheProtocol(() => dir);
});
