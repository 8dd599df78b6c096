// `etl compile` (artifacts, --format, the compile cache), `etl format` and
// `etl ls`, spawned on copies of project-template/.

import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, copyTemplate, dbPathOf, etlYml, killAll, listFiles, read, readJson, removeTempDirs, runCli, snapshotDir, withDb, writeProject } from './helpers.js';

const MODEL_FILES = [
  'models/marts/customers.sql',
  'models/marts/orders.sql',
  'models/staging/stg_customers.sql',
  'models/staging/stg_orders.sql',
  'models/staging/stg_payments.sql',
];
const SEED_NAMES = ['raw_customers', 'raw_orders', 'raw_payments'];

afterEach(killAll);

const tagsOf = (text: string) => text.match(/\{\{!--[\s\S]*?--\}\}|\{\{\{[\s\S]*?\}\}\}|\{\{[\s\S]*?\}\}/g) ?? [];
const trimmedLines = (text: string) => text.split('\n').map((l) => l.trim());

describe('etl compile', () => {
  afterEach(removeTempDirs);

  it('writes manifest.json and compiled/**.sql and creates no database', async () => {
    const project = copyTemplate();
    const r = await runCli(['compile'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).toMatch(/Compiled \d+ nodes in \d+\.\d\ds\n/);
    expect(r.stdout).not.toMatch(/from cache/);

    const manifest = readJson(project, 'target/manifest.json');
    expect(manifest.nodes['model.shop.orders'].compiled_code).toContain('"main"."stg_payments"');
    const compiled = listFiles(path.join(project, 'target/compiled'));
    for (const f of MODEL_FILES) expect(compiled).toContain(`shop/${f}`);
    const orders = read(project, 'target/compiled/shop/models/marts/orders.sql');
    expect(orders).toContain('"main"."stg_payments"');
    expect(orders).toContain('"main"."stg_orders"');
    expect(orders).not.toContain('{{');
    // The partial was expanded, the var substituted.
    expect(read(project, 'target/compiled/shop/models/staging/stg_payments.sql')).toMatch(/cast\(amount_cents \/ 100\.0 as decimal\(16, 2\)\)/);
    expect(read(project, 'target/compiled/shop/models/staging/stg_orders.sql')).toContain("cast('2024-01-01' as date)");

    // No database anywhere.
    expect(existsSync(dbPathOf(project))).toBe(false);
    expect(listFiles(project).filter((f) => /\.duckdb/.test(f))).toEqual([]);
    expect(existsSync(path.join(project, 'target/run_results.json'))).toBe(false);
  });

  it('--format pretty-prints the compiled SQL; --vars reach the compiled SQL', async () => {
    const project = copyTemplate();
    const plain = await runCli(['compile'], { cwd: project });
    expect(plain.code, plain.output).toBe(0);
    const before = read(project, 'target/compiled/shop/models/marts/orders.sql');

    const pretty = await runCli(['compile', '--format'], { cwd: project });
    expect(pretty.code, pretty.output).toBe(0);
    // A different cache entry: formatting was not served from the unformatted compile.
    expect(pretty.stdout).not.toMatch(/from cache/);
    const after = read(project, 'target/compiled/shop/models/marts/orders.sql');
    expect(after).not.toBe(before);
    // Keywords now stand on their own lines.
    expect(trimmedLines(before)).not.toContain('with');
    expect(trimmedLines(after)).toContain('with');
    expect(trimmedLines(after)).toContain('select');
    expect(trimmedLines(after)).toContain('from');
    expect(trimmedLines(after)).toContain('end');
    expect(after).toContain('"main"."stg_payments"');
    expect(after).toContain('"main"."stg_orders"');
    // Only whitespace and layout changed.
    const squash = (s: string) => s.replace(/--[^\n]*/g, '').replace(/\s+/g, '').toLowerCase();
    expect(squash(after)).toBe(squash(before));

    const again = await runCli(['compile', '--format'], { cwd: project });
    expect(again.code, again.output).toBe(0);
    expect(again.stdout).toMatch(/from cache/);
    expect(read(project, 'target/compiled/shop/models/marts/orders.sql')).toBe(after);

    const withVars = await runCli(['compile', '--vars', '{start_date: "2024-06-01"}'], { cwd: project });
    expect(withVars.code, withVars.output).toBe(0);
    expect(withVars.stdout).not.toMatch(/from cache/);
    expect(read(project, 'target/compiled/shop/models/staging/stg_orders.sql')).toContain("cast('2024-06-01' as date)");
  });

  it('a second compile with nothing changed is served from cache; editing a model invalidates it', async () => {
    const project = copyTemplate();
    const first = await runCli(['compile'], { cwd: project });
    expect(first.code, first.output).toBe(0);
    expect(first.stdout).not.toMatch(/from cache/);

    const second = await runCli(['compile'], { cwd: project });
    expect(second.code, second.output).toBe(0);
    expect(second.stdout).toMatch(/from cache/);

    appendFileSync(path.join(project, 'models/marts/orders.sql'), '\n-- touched\n');
    const third = await runCli(['compile'], { cwd: project });
    expect(third.code, third.output).toBe(0);
    expect(third.stdout).not.toMatch(/from cache/);
    expect(read(project, 'target/compiled/shop/models/marts/orders.sql')).toContain('-- touched');
    expect(readJson(project, 'target/manifest.json').nodes['model.shop.orders'].raw_code).toContain('-- touched');

    const fourth = await runCli(['compile'], { cwd: project });
    expect(fourth.stdout).toMatch(/from cache/);
  });

  it('a cached compile still writes compiled/**.sql when those files were deleted', async () => {
    const project = copyTemplate();
    expect((await runCli(['compile'], { cwd: project })).code).toBe(0);
    const compiledDir = path.join(project, 'target/compiled');
    const files = listFiles(compiledDir);
    const { rmSync } = await import('node:fs');
    rmSync(compiledDir, { recursive: true, force: true });
    const r = await runCli(['compile'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    expect(listFiles(compiledDir)).toEqual(files);
  });

  it('a project with nothing to compile (a loader only) is cached too', async () => {
    const project = writeProject({
      'etl.yml': etlYml('loaders_only'),
      'models/crm.yml': `sources:\n  - name: crm\n    tables:\n      - name: customers\n        loader: { type: postgres, url: "{{env_var 'CRM_URL' 'postgres://127.0.0.1:1/none'}}", table: customers }\n`,
    });
    const first = await runCli(['compile'], { cwd: project });
    expect(first.code, first.output).toBe(0);
    expect(first.stdout).not.toMatch(/from cache/);
    const second = await runCli(['compile'], { cwd: project });
    expect(second.code, second.output).toBe(0);
    expect(second.stdout).toMatch(/Compiled 1 node in .*from cache/);
  });
});

describe('etl compile: seed checksum stamps (target/.etl/file-stamps.json)', () => {
  afterEach(removeTempDirs);

  const STAMPS = 'target/.etl/file-stamps.json';
  const SEED_FILES = SEED_NAMES.map((n) => `seeds/${n}.csv`);
  const sha256 = (buf: Buffer | string) => createHash('sha256').update(buf).digest('hex');
  interface Stamp {
    size: number;
    mtimeMs: number;
    hashedAt: number;
    checksum: string;
  }
  const seedChecksum = (project: string, name: string): string => readJson(project, 'target/manifest.json').nodes[`seed.shop.${name}`].checksum.checksum;
  /** Sets a file's mtime (and atime) to `sec`, whole seconds since the epoch, so mtimeMs reads back exactly. */
  const setMtime = (file: string, sec: number) => utimesSync(file, sec, sec);
  const nowSec = () => Math.floor(Date.now() / 1000);
  /** A copy of project-template whose seeds were last written an hour ago: their stamps are trustworthy from the first compile. */
  const oldProject = () => {
    const project = copyTemplate();
    for (const f of SEED_FILES) setMtime(path.join(project, f), nowSec() - 3600);
    return project;
  };
  /** Replaces `from` by `to` (same length) in a file: same size, other content. */
  const editSameSize = (file: string, from: string, to: string) => {
    expect(to.length).toBe(from.length);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(from);
    const size = statSync(file).size;
    writeFileSync(file, text.replace(from, to));
    expect(statSync(file).size).toBe(size);
  };

  it('holds a stamp per seed CSV; an untouched project compiles from cache and leaves the stamps as they were', async () => {
    const project = oldProject();
    const first = await runCli(['compile'], { cwd: project });
    expect(first.code, first.output).toBe(0);
    expect(first.stdout).not.toMatch(/from cache/);

    const stamps = readJson<Record<string, Stamp>>(project, STAMPS);
    expect(Object.keys(stamps).sort()).toEqual(SEED_FILES);
    for (const f of SEED_FILES) {
      const abs = path.join(project, f);
      const st = statSync(abs);
      expect(stamps[f], f).toMatchObject({ size: st.size, mtimeMs: st.mtimeMs, checksum: sha256(readFileSync(abs)) });
      expect(stamps[f]!.hashedAt, f).toBeGreaterThan(st.mtimeMs + 50);
      expect(seedChecksum(project, path.basename(f, '.csv')), f).toBe(stamps[f]!.checksum);
    }

    const stampsFile = path.join(project, STAMPS);
    const before = { text: read(project, STAMPS), mtimeMs: statSync(stampsFile).mtimeMs };
    const second = await runCli(['compile'], { cwd: project });
    expect(second.code, second.output).toBe(0);
    expect(second.stdout).toMatch(/from cache/);
    // Every stamp was trusted: nothing new to save.
    expect({ text: read(project, STAMPS), mtimeMs: statSync(stampsFile).mtimeMs }).toEqual(before);
  });

  it('a seed edited to the same size, its mtime moved, is a cache miss with a new checksum', async () => {
    const project = oldProject();
    expect((await runCli(['compile'], { cwd: project })).code).toBe(0);
    const oldChecksum = seedChecksum(project, 'raw_customers');

    const file = path.join(project, 'seeds/raw_customers.csv');
    editSameSize(file, '1,Daniel,Andersson', '1,Danial,Andersson');
    setMtime(file, nowSec() - 7200); // clearly not the stamped mtime (an hour ago)
    const r = await runCli(['compile'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).not.toMatch(/from cache/);
    const newChecksum = sha256(readFileSync(file));
    expect(newChecksum).not.toBe(oldChecksum);
    expect(seedChecksum(project, 'raw_customers')).toBe(newChecksum);
    expect(readJson<Record<string, Stamp>>(project, STAMPS)['seeds/raw_customers.csv']).toMatchObject({ mtimeMs: statSync(file).mtimeMs, checksum: newChecksum });
    // The other seeds are as they were.
    expect(seedChecksum(project, 'raw_orders')).toBe(sha256(readFileSync(path.join(project, 'seeds/raw_orders.csv'))));

    const again = await runCli(['compile'], { cwd: project });
    expect(again.code, again.output).toBe(0);
    expect(again.stdout).toMatch(/from cache/);
  });

  it('a stamp taken when the file was just written is not trusted: a same-size edit under the same mtime is still seen', async () => {
    const project = oldProject();
    const file = path.join(project, 'seeds/raw_orders.csv');
    // An mtime after the hash (as a write racing the hash, or a coarse clock, would leave): a racy stamp.
    const future = nowSec() + 3600;
    setMtime(file, future);
    expect((await runCli(['compile'], { cwd: project })).code).toBe(0);
    const stamp = readJson<Record<string, Stamp>>(project, STAMPS)['seeds/raw_orders.csv']!;
    expect(stamp.mtimeMs).toBe(future * 1000);
    expect(stamp.hashedAt).toBeLessThanOrEqual(stamp.mtimeMs + 50);

    editSameSize(file, '1,64,2024-01-03,completed', '1,64,2024-01-03,returned_');
    setMtime(file, future); // size and mtime both match the stamp: only its raciness gives the edit away
    expect(statSync(file).mtimeMs).toBe(stamp.mtimeMs);
    const r = await runCli(['compile'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).not.toMatch(/from cache/);
    expect(seedChecksum(project, 'raw_orders')).toBe(sha256(readFileSync(file)));
    expect(seedChecksum(project, 'raw_orders')).not.toBe(stamp.checksum);
  });

  it('a trustworthy stamp stands for the file: its checksum (here a fake one) is the one compiled', async () => {
    const project = oldProject();
    expect((await runCli(['compile'], { cwd: project })).code).toBe(0);
    const stamps = readJson<Record<string, Stamp>>(project, STAMPS);
    const fake = 'f'.repeat(64);
    stamps['seeds/raw_payments.csv']!.checksum = fake;
    writeFileSync(path.join(project, STAMPS), JSON.stringify(stamps));
    const r = await runCli(['compile'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    // The fingerprint is made of the stamps' checksums: the fake one is a change.
    expect(r.stdout).not.toMatch(/from cache/);
    expect(seedChecksum(project, 'raw_payments')).toBe(fake);
  });

  it('bad input on a project never compiled still creates no target/ (the new stamps are not saved)', async () => {
    const project = copyTemplate();
    appendFileSync(path.join(project, 'models/marts/orders.sql'), '\nunion all select * from {{ref "nope"}}\n');
    const r = await runCli(['compile'], { cwd: project });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(/models\/marts\/orders\.sql:\d+:\d+: unknown ref "nope"/);
    const vars = await runCli(['compile', '--vars', '{start_date: [2024'], { cwd: project });
    expect(vars.code, vars.output).toBe(2);
    expect(existsSync(path.join(project, 'target'))).toBe(false);
  });
});

describe('etl compile of a large project (compiled files written by a worker thread)', () => {
  afterEach(removeTempDirs);

  const N = 600; // above the worker's threshold of 500 files
  const files = (): Record<string, string> => {
    const out: Record<string, string> = { 'etl.yml': etlYml('big') };
    for (let i = 0; i < N; i++) out[`models/m${i}.sql`] = i === 0 ? 'select 1 as id' : `select id + ${i} as id from {{ref "m${i - 1}"}}`;
    return out;
  };

  it('writes every compiled file with its rendered SQL, then only what changed', async () => {
    const project = writeProject(files());
    const r = await runCli(['compile'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    const compiled = listFiles(path.join(project, 'target/compiled/big/models'));
    expect(compiled).toHaveLength(N);
    expect(read(project, 'target/compiled/big/models/m599.sql')).toBe(`select id + 599 as id from "main"."m598"\n`);
    expect(read(project, 'target/compiled/big/models/m0.sql')).toBe('select 1 as id\n');

    appendFileSync(path.join(project, 'models/m7.sql'), ' -- changed');
    const again = await runCli(['compile'], { cwd: project });
    expect(again.code, again.output).toBe(0);
    expect(read(project, 'target/compiled/big/models/m7.sql')).toContain('-- changed');
    expect(read(project, 'target/compiled/big/models/m8.sql')).toBe(`select id + 8 as id from "main"."m7"\n`);
  });

  it('the programmatic API writes them too from a process run with --input-type=module (the worker is not made ESM)', async () => {
    const project = writeProject(files());
    const script = `const api = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist/core/api.js'))}); const r = await api.compile({ projectDir: ${JSON.stringify(project)} }); console.log(r.nodeCount);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(String(N));
    expect(listFiles(path.join(project, 'target/compiled/big/models'))).toHaveLength(N);
  });

  it('a file that cannot be written fails the compile with its path, and no cache claims it', async () => {
    const project = writeProject(files());
    // A directory where a compiled file should go: the worker's write fails.
    mkdirSync(path.join(project, 'target/compiled/big/models/m300.sql'), { recursive: true });
    const r = await runCli(['compile'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/Could not write \S*m300\.sql: EISDIR/);
    expect(r.output).not.toContain('Internal error');
    expect(existsSync(path.join(project, 'target/.etl/compile.json'))).toBe(false);
  });
});

describe('etl format', () => {
  afterEach(removeTempDirs);

  it('--check exits 1, names the files and writes nothing', async () => {
    const project = copyTemplate();
    const before = snapshotDir(project);
    const r = await runCli(['format', '--check'], { cwd: project });
    expect(r.code, r.output).toBe(1);
    for (const f of MODEL_FILES) expect(r.stdout).toContain(`would format ${f}`);
    expect(r.stdout).toMatch(/5 of 5 files need formatting/);
    expect(snapshotDir(project)).toEqual(before);
  });

  it('rewrites models in place keeping every {{...}} tag byte-identical; the project still builds the same data', async () => {
    const project = copyTemplate();
    const build1 = await runCli(['build'], { cwd: project });
    expect(build1.code, build1.output).toBe(0);
    const contents = () =>
      withDb(dbPathOf(project), async (db) => ({
        customers: await db.rows('select * from customers order by customer_id'),
        orders: await db.rows('select * from orders order by order_id'),
        stg_payments: await db.rows('select * from stg_payments order by payment_id'),
        stg_orders: await db.rows('select * from stg_orders order by order_id'),
      }));
    const data1 = await contents();

    const originals = Object.fromEntries(MODEL_FILES.map((f) => [f, read(project, f)]));
    const seedsBefore = snapshotDir(path.join(project, 'seeds'));
    const fmt = await runCli(['format'], { cwd: project });
    expect(fmt.code, fmt.output).toBe(0);
    expect(fmt.stdout).toMatch(/5 of 5 files formatted/);
    for (const f of MODEL_FILES) {
      const now = read(project, f);
      expect(now, f).not.toBe(originals[f]);
      expect(tagsOf(now), f).toEqual(tagsOf(originals[f]!));
      expect(tagsOf(now).length, f).toBeGreaterThan(0);
      expect(now.endsWith('\n'), f).toBe(true);
    }
    // The comments survive too.
    expect(read(project, 'models/marts/orders.sql')).toContain('-- an order without payments yet still gets a row, with zero amounts');
    expect(snapshotDir(path.join(project, 'seeds'))).toEqual(seedsBefore);

    // Formatting is idempotent.
    const check = await runCli(['format', '--check'], { cwd: project });
    expect(check.code, check.output).toBe(0);
    expect(check.stdout).toMatch(/0 of 5 files need formatting/);

    const build2 = await runCli(['build'], { cwd: project });
    expect(build2.code, build2.output).toBe(0);
    expect(build2.stdout).not.toMatch(/from cache/);
    expect(await contents()).toEqual(data1);
  });
});

describe('etl ls', () => {
  let project: string;
  beforeAll(() => {
    project = copyTemplate();
  });
  afterAll(removeTempDirs);

  const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

  it("-s 'tag:staging+' lists the staging models and their descendants, not the seeds", async () => {
    const r = await runCli(['ls', '-s', 'tag:staging+'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    const out = lines(r.stdout);
    for (const m of ['shop.staging.stg_customers', 'shop.staging.stg_orders', 'shop.staging.stg_payments', 'shop.marts.customers', 'shop.marts.orders']) {
      expect(out).toContain(m);
    }
    expect(out.filter((l) => SEED_NAMES.some((s) => l.endsWith(`.${s}`)))).toEqual([]);

    const names = await runCli(['ls', '-s', 'tag:staging+', '--output', 'name', '--resource-type', 'model'], { cwd: project });
    expect(names.code, names.output).toBe(0);
    expect(lines(names.stdout).sort()).toEqual(['customers', 'orders', 'stg_customers', 'stg_orders', 'stg_payments']);
    // ls compiles but touches no database.
    expect(existsSync(dbPathOf(project))).toBe(false);
  });

  it('-s orders --output name prints the model (and only tests besides it)', async () => {
    const r = await runCli(['ls', '-s', 'orders', '--output', 'name'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toBe('orders');
    const known = ['customers', 'stg_customers', 'stg_orders', 'stg_payments', ...SEED_NAMES];
    expect(out.filter((l) => known.includes(l))).toEqual([]);
    const manifest = readJson(project, 'target/manifest.json');
    const byName = new Map(Object.values({ ...manifest.nodes, ...manifest.unit_tests } as Record<string, { name: string; resource_type: string }>).map((n) => [n.name, n.resource_type]));
    for (const name of out.slice(1)) expect(['test', 'unit_test'], name).toContain(byName.get(name));

    const models = await runCli(['ls', '-s', 'orders', '--output', 'name', '--resource-type', 'model'], { cwd: project });
    expect(lines(models.stdout)).toEqual(['orders']);

    const paths = await runCli(['ls', '-s', '+orders', '--output', 'path', '--resource-type', 'model', '--resource-type', 'seed'], { cwd: project });
    expect(paths.code, paths.output).toBe(0);
    expect(lines(paths.stdout).sort()).toEqual(
      ['models/marts/orders.sql', 'models/staging/stg_orders.sql', 'models/staging/stg_payments.sql', 'seeds/raw_orders.csv', 'seeds/raw_payments.csv'].sort(),
    );
    expect(readFileSync(path.join(project, 'etl.yml'), 'utf8')).toMatch(/^name: shop$/m);
  });

  it('a selector matching nothing is a warning with a suggestion (as in dbt), not an error', async () => {
    const r = await runCli(['ls', '-s', 'ordres'], { cwd: project });
    expect(r.code, r.output).toBe(0);
    expect(r.stdout.trim()).toBe('');
    expect(r.stderr).toMatch(/"ordres" matched no node; did you mean "orders"\?/);
  });
});
