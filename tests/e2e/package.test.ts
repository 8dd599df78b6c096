// The package as a user gets it: `npm pack`, installed from the tarball into
// a scratch project in a temporary folder, then imported as `etl` by a plain
// Node program (which builds project-template through the API and reads the
// data back as rows and as an Arrow table) and by a TypeScript file that must
// type-check against the shipped declarations. One pack and one install are
// shared by the cases; the install takes the dependencies from npm's cache.

import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, TEMPLATE_DIR, assertCliBuilt, makeTempDir, removeTempDirs } from './helpers.js';

const exec = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let scratch: string;
let packed: string[];

beforeAll(async () => {
  assertCliBuilt();
  const out = makeTempDir('etl-pack-');
  // dist/ is built (npm test builds first): --ignore-scripts keeps pack from building it again.
  const { stdout } = await exec(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', out], { cwd: REPO_ROOT, maxBuffer: 64 << 20 });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  packed = info!.files.map((f) => f.path);
  scratch = makeTempDir('etl-consumer-');
  writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  await exec(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(out, info!.filename)], { cwd: scratch, maxBuffer: 64 << 20 });
}, 240_000);

afterAll(removeTempDirs);

describe('npm pack', () => {
  it('ships the built library, its declarations, the CLI bundle, the docs site and project-template; no sources, tests or maps', () => {
    expect(packed).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/core/index.js', 'dist/core/index.d.ts', 'dist/bin/etl.js', 'dist/docs-site/index.html', 'dist/docs-site/app.css', 'project-template/etl.yml']));
    const unwanted = packed.filter((f) => /^(tests|bench|scripts|core|cli|adapters)\//.test(f) || /\.map$/.test(f) || (/\.ts$/.test(f) && !f.endsWith('.d.ts')) || /(^|\/)target\//.test(f) || /\.duckdb/.test(f));
    expect(unwanted).toEqual([]);
  });
});

describe('installed from the tarball', () => {
  it('builds project-template through the API and returns the data as rows and as an Arrow table', async () => {
    const project = path.join(scratch, 'shop');
    cpSync(TEMPLATE_DIR, project, { recursive: true, filter: (src) => !src.includes(`${path.sep}target`) });
    writeFileSync(
      path.join(scratch, 'main.mjs'),
      `import { build, query, queryArrow } from 'etl';
const projectDir = process.argv[2];
const summary = await build({ projectDir });
const totals = await query({ projectDir, sql: 'select count(*) as orders, cast(sum(amount) as varchar) as amount from orders where order_date >= $1', params: ['2024-01-01'] });
const table = await queryArrow({ projectDir, sql: 'select order_id, amount, order_date from orders order by order_id' });
console.log(JSON.stringify({
  exitCode: summary.exitCode,
  statuses: [...new Set(summary.results.map((r) => r.status))].sort(),
  nodes: summary.results.length,
  totals: { columns: totals.columns, row: totals.rows[0].map(String) },
  arrow: {
    rows: table.numRows,
    fields: table.schema.fields.map((f) => [f.name, String(f.type)]),
    firstId: Number(table.getChild('order_id').get(0)),
    cents: Math.round(table.getChild('amount').toArray().reduce((a, b) => a + b, 0) * 100),
  },
}));
`,
    );
    const { stdout } = await exec(process.execPath, ['main.mjs', project], { cwd: scratch });
    const got = JSON.parse(stdout.trim().split('\n').at(-1)!);

    // What the data must be, straight from the seed CSVs: orders on or after start_date, and their payments.
    const csv = (name: string) => readFileSync(path.join(TEMPLATE_DIR, 'seeds', name), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const orders = csv('raw_orders.csv').filter((o) => o[2]! >= '2024-01-01');
    const kept = new Set(orders.map((o) => o[0]));
    const cents = csv('raw_payments.csv').filter((p) => kept.has(p[1])).reduce((a, p) => a + Number(p[3]), 0);
    const dollars = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;

    expect(got.exitCode).toBe(0);
    expect(got.statuses).toEqual(['pass', 'success']);
    expect(got.totals).toEqual({ columns: ['orders', 'amount'], row: [String(orders.length), dollars] });
    expect(got.arrow).toEqual({
      rows: orders.length,
      fields: [['order_id', 'Int64'], ['amount', 'Float64'], ['order_date', 'Date32<DAY>']],
      firstId: Math.min(...orders.map((o) => Number(o[0]))),
      cents,
    });
  });

  it('the installed etl command builds project-template and writes its docs site', async () => {
    const project = path.join(scratch, 'shop-cli');
    cpSync(TEMPLATE_DIR, project, { recursive: true, filter: (src) => !src.includes(`${path.sep}target`) });
    const etl = path.join(scratch, 'node_modules', '.bin', 'etl');
    const built = await exec(etl, ['build', '--project-dir', project], { cwd: scratch });
    expect(built.stdout).toMatch(/Finished \d+ nodes .*: \d+ succeeded, 0 failed/);
    const docs = await exec(etl, ['docs', 'generate', '--project-dir', project], { cwd: scratch });
    expect(docs.stdout).toMatch(/Wrote the docs of 8 nodes/);
    expect(readFileSync(path.join(project, 'target/docs/index.html'), 'utf8')).toMatch(/<html/i);
  });

  it('type-checks a TypeScript program against the shipped declarations', async () => {
    writeFileSync(
      path.join(scratch, 'typed.ts'),
      `import { build, compile, query, test, toArrowTable, type RunSummary, type QueryResult } from 'etl';
const summary: RunSummary = await build({ projectDir: 'shop', select: ['orders'] });
const failed: number = summary.results.filter((r) => r.status === 'error').length;
const compiled = await compile({ projectDir: 'shop' });
const names: string[] = Object.values(compiled.manifest.nodes).map((n) => n.name);
const rows: QueryResult = await query({ projectDir: 'shop', sql: 'select 1' });
const tested = await test({ projectDir: 'shop' });
const width: number = toArrowTable(rows).numCols;
// @ts-expect-error projectDir is required
await build({});
// @ts-expect-error exitCode is 0 | 1
const wrong: string = tested.exitCode;
export { failed, names, width, wrong };
`,
    );
    writeFileSync(
      path.join(scratch, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['typed.ts'] }),
    );
    const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await exec(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: scratch }).catch((e: { stdout: string; code: number }) => e);
    expect('stdout' in r ? r.stdout : '', 'tsc output').toBe('');
  });
});
