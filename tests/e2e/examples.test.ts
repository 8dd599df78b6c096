// The deployment examples (examples/Dockerfile, examples/etl-schedule.service)
// cannot rot: this test reads the command line each one runs (the unit's
// ExecStart; the image's ENTRYPOINT + CMD), its working folder, environment
// handling and stop signal, and runs exactly that against a copy of
// project-template with a job: the scheduler catches up the job, is sent the
// stop signal while the job builds (a slow model added for the purpose is
// running), and must exit 0 with every table whole and nothing half built.
// The unit is also checked by `systemd-analyze verify` where systemd is
// installed. Building the image needs a Docker daemon and node:20 from a
// registry, which a test may not reach: the Dockerfile's install step (npm
// install of the packed tarball) is what tests/e2e/package.test.ts does.

import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT, copyTemplate, killAll, makeTempDir, read, removeTempDirs, runCli, startCommand, withDb } from './helpers.js';

afterAll(async () => {
  await killAll();
  removeTempDirs();
});

const UNIT = path.join(REPO_ROOT, 'examples/etl-schedule.service');
const DOCKERFILE = path.join(REPO_ROOT, 'examples/Dockerfile');

/** `Key=value` lines of a unit's [Service] section (the last one wins, as in systemd). */
function serviceSection(file: string): Map<string, string> {
  const out = new Map<string, string>();
  let inService = false;
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) inService = line === '[Service]';
    else if (inService && line && !line.startsWith('#')) {
      const i = line.indexOf('=');
      out.set(line.slice(0, i), line.slice(i + 1));
    }
  }
  return out;
}

/** A Dockerfile instruction's argument (the last one of its kind). */
function instruction(file: string, name: string): string | undefined {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith(`${name} `));
  return lines.at(-1)?.slice(name.length + 1).trim();
}

/** A folder holding an `etl` command (the built CLI), as `npm install --global` puts one on PATH. */
function etlOnPath(): string {
  const bin = makeTempDir('etl-bin-');
  symlinkSync(CLI, path.join(bin, 'etl'));
  return `${bin}:${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;
}

/** project-template with what the README tells a user to add for a schedule: a job, and the unit's prod target from the environment. */
async function scheduledTemplate(): Promise<{ dir: string; counts: Record<string, number> }> {
  const dir = copyTemplate();
  appendFileSync(
    path.join(dir, 'etl.yml'),
    `jobs:\n  - { name: nightly, cron: "0 2 * * *", timezone: UTC, command: build, catchup: true }\n`,
  );
  const yml = readFileSync(path.join(dir, 'etl.yml'), 'utf8').replace('targets:\n', `targets:\n  prod: { type: duckdb, path: "{{env_var 'SHOP_DB' 'target/missing.duckdb'}}", schema: main, threads: 4 }\n`);
  writeFileSync(path.join(dir, 'etl.yml'), yml);
  // Built once for both targets: the tables a stopped run must leave whole.
  for (const target of ['dev', 'prod']) {
    const r = await runCli(['build', '--target', target], { cwd: dir, env: { SHOP_DB: 'target/prod.duckdb' } });
    expect(r.code, r.output).toBe(0);
  }
  const counts = await tableCounts(path.join(dir, 'target/dev.duckdb'));
  expect(Object.keys(counts).length).toBeGreaterThan(3);
  // A model that runs until stopped: the signal comes while it builds.
  writeFileSync(path.join(dir, 'models/slow.sql'), '{{config materialized="table"}}\nselect count(*) as v from range(1000000) a, range(1000000) b where (a.range * b.range) % 7 = 3\n');
  // The missed 02:00 slot of long ago: the scheduler runs the job as soon as it starts.
  writeFileSync(path.join(dir, 'target/schedule-state.json'), JSON.stringify({ version: 1, jobs: { nightly: { last_slot: '2020-01-01T02:00:00.000Z' } } }));
  return { dir, counts };
}

async function tableCounts(db: string): Promise<Record<string, number>> {
  return withDb(db, async (conn) => {
    const tables = await conn.rows(`select table_name from information_schema.tables where table_schema = 'main' and table_type = 'BASE TABLE' order by 1`);
    const out: Record<string, number> = {};
    for (const t of tables) out[String(t.table_name)] = await conn.count(`main."${String(t.table_name)}"`);
    return out;
  });
}

/** Starts `argv` as the service manager would, stops it with `signal` once the job's build has started, and checks what it left. */
async function runAndStop(dir: string, argv: string[], env: NodeJS.ProcessEnv, signal: NodeJS.Signals, db: string, counts: Record<string, number>) {
  // ETL_TRACE_SQL prints each statement once done: after the drop of slow's temporary name comes its slow create.
  const p = startCommand(argv, { cwd: dir, env: { ...env, ETL_TRACE_SQL: '1' } });
  await p.waitForOutput(/nightly: started \(catching up the run missed at /);
  await p.waitForOutput(/\] drop table if exists "main"\."slow__etl_tmp"/, 60_000);
  p.child.kill(signal);
  const r = await p.exitWithin(60_000);
  expect(r.code, r.output).toBe(0);
  expect(r.signal).toBeNull();
  const log = read(dir, 'target/schedule.jsonl').trim().split('\n').map((l) => JSON.parse(l) as { type: string; job: string; exit_code?: number });
  expect(log.map((l) => `${l.type}:${l.job}`)).toEqual(['started:nightly', 'finished:nightly']);
  expect(log[1]!.exit_code).toBe(130);
  expect(await tableCounts(db)).toEqual(counts);
  await withDb(db, async (conn) => expect(await conn.tempRelations()).toEqual([]));
}

describe('examples/etl-schedule.service', () => {
  it('systemd-analyze verify accepts the unit', (ctx) => {
    // Skipped only where systemd is not installed (a container, macOS): nothing to verify with.
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) ctx.skip();
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.trim()).toBe('');
  });

  it("ExecStart, run as systemd would (WorkingDirectory, EnvironmentFile only, KillSignal to the main process), stops cleanly", async () => {
    const unit = serviceSection(UNIT);
    expect(unit.get('KillMode')).toBe('mixed');
    const signal = unit.get('KillSignal') as NodeJS.Signals;
    expect(signal).toBe('SIGTERM');
    const argv = unit.get('ExecStart')!.split(/\s+/);
    expect(argv.slice(0, 3)).toEqual(['/usr/bin/env', 'etl', 'schedule']);
    expect(unit.get('WorkingDirectory')).toBeDefined();
    expect(unit.get('EnvironmentFile')).toBeDefined();
    const { dir, counts } = await scheduledTemplate();
    // The EnvironmentFile's KEY=value lines, and the PATH systemd gives a service.
    const envFile = path.join(dir, 'shop.env');
    writeFileSync(envFile, '# read by systemd\nSHOP_DB=target/prod.duckdb\n');
    const env: NodeJS.ProcessEnv = { PATH: etlOnPath() };
    for (const line of readFileSync(envFile, 'utf8').split('\n')) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
    await runAndStop(dir, argv, env, signal, path.join(dir, 'target/prod.duckdb'), counts);
  }, 180_000);
});

describe('examples/Dockerfile', () => {
  it('ENTRYPOINT + CMD, run as docker run would (WORKDIR, --env-file, STOPSIGNAL), stops cleanly', async () => {
    const entrypoint = JSON.parse(instruction(DOCKERFILE, 'ENTRYPOINT')!) as string[];
    const cmd = JSON.parse(instruction(DOCKERFILE, 'CMD')!) as string[];
    expect(entrypoint).toEqual(['etl']);
    expect(instruction(DOCKERFILE, 'WORKDIR')).toBe('/project');
    const signal = instruction(DOCKERFILE, 'STOPSIGNAL') as NodeJS.Signals;
    expect(signal).toBe('SIGTERM');
    expect(instruction(DOCKERFILE, 'RUN')).toBe('useradd --create-home etl && chown -R etl /project');
    const { dir, counts } = await scheduledTemplate();
    // The image's environment (node:20's PATH, with the globally installed etl) and --env-file's lines.
    const env: NodeJS.ProcessEnv = { PATH: etlOnPath(), HOME: makeTempDir('etl-home-'), SHOP_DB: 'target/prod.duckdb' };
    mkdirSync(env.HOME!, { recursive: true });
    await runAndStop(dir, [...entrypoint, ...cmd], env, signal, path.join(dir, 'target/dev.duckdb'), counts);
    // The one-job form the README shows: `docker run ... schedule --once nightly`.
    rmSync(path.join(dir, 'models/slow.sql'));
    const once = startCommand([...entrypoint, ...cmd, '--once', 'nightly'], { cwd: dir, env });
    const r = await once.exitWithin(120_000);
    expect(r.code, r.output).toBe(0);
    expect(await tableCounts(path.join(dir, 'target/dev.duckdb'))).toEqual(counts);
  }, 180_000);
});
