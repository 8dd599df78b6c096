// A Postgres target connects while the project compiles (execute() in
// core/api.ts): the connection, and the schema lock taken on it, are made
// concurrently with the compile. Against the real Postgres (127.0.0.1:5432,
// database test; ETL_PG_URL overrides), through the built CLI:
//
// - a bad project is reported as such (exit 2, file:line), whether the target
//   is reachable or not, and leaves nothing behind in the target: no schema, no
//   run in etl_meta.runs, no lock (the next build into the schema goes ahead);
// - during a build, the run holds exactly one connection named 'etl (lock)',
//   and it is the one holding the schema's advisory lock.

import { readdirSync, readFileSync, readlinkSync, existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, assertCliBuilt, dropPgSchema, killAll, makeTempDir, newPgSchema, pgConnect, pgQuoteIdent, removeTempDirs, runCli, startCli, waitForBackend, writeFiles } from './helpers.js';

let admin: pg.Client;
const schemas: string[] = [];
const targetNames: string[] = [];

beforeAll(async () => {
  assertCliBuilt();
  admin = await pgConnect();
});

async function cleanUp(): Promise<void> {
  await killAll();
  removeTempDirs();
  for (const s of schemas.splice(0)) await dropPgSchema(admin, s);
  if (await etlMetaExists()) {
    for (const t of targetNames.splice(0)) await admin.query('delete from etl_meta.runs where target = $1', [t]);
  }
}

afterEach(cleanUp);

afterAll(async () => {
  await cleanUp();
  await admin?.end();
});

async function etlMetaExists(): Promise<boolean> {
  return Boolean((await admin.query(`select 1 from pg_catalog.pg_tables where schemaname = 'etl_meta' and tablename = 'runs'`)).rowCount);
}

interface PgProject {
  dir: string;
  schema: string;
  /** The target's name: unique to the test, so etl_meta.runs (which records the target, not the schema) tells its runs apart. */
  target: string;
}

/** A project whose only target (named after its schema) is Postgres at `url`. */
function pgProject(name: string, files: Record<string, string>, options: { url?: string; extra?: string } = {}): PgProject {
  const schema = newPgSchema();
  const target = `t_${schema}`;
  schemas.push(schema);
  targetNames.push(target);
  const dir = path.join(makeTempDir('etl-pg-connect-'), name);
  writeFiles(dir, {
    'etl.yml': `name: ${name}\nversion: 1\ntarget: ${target}\ntargets:\n  ${target}: { type: postgres, url: "${options.url ?? PG_URL}", schema: ${schema}, threads: 4${options.extra ?? ''} }\n`,
    ...files,
  });
  return { dir, schema, target };
}

const GOOD_FILES = {
  'seeds/people.csv': 'id,name\n1,ann\n2,bob\n',
  'models/stg_people.sql': 'select id, name from {{ref "people"}}\n',
};
/** The same project with a typo in a ref, on line 2 of models/people_count.sql. */
const BAD_FILES = { ...GOOD_FILES, 'models/people_count.sql': '-- how many\nselect count(*) as n from {{ref "stg_peple"}}\n' };
const UNKNOWN_REF = /models\/people_count\.sql:2:\d+: unknown ref "stg_peple"/;

async function schemaExists(schema: string): Promise<boolean> {
  return Boolean((await admin.query('select 1 from pg_catalog.pg_namespace where nspname = $1', [schema])).rowCount);
}

async function runsOf(target: string): Promise<Array<{ command: string; status: string }>> {
  if (!(await etlMetaExists())) return [];
  return (await admin.query<{ command: string; status: string }>('select command, status from etl_meta.runs where target = $1 order by started_at', [target])).rows;
}

/** Server pids holding etl's run lock on `schema` (the two-key advisory lock of adapters/postgres/lock.ts). */
async function lockHolders(schema: string): Promise<number[]> {
  const r = await admin.query<{ pid: number }>(
    `select l.pid from pg_catalog.pg_locks l
      where l.locktype = 'advisory' and l.granted and l.objsubid = 2
        and l.database = (select oid from pg_catalog.pg_database where datname = current_database())
        and l.classid::int8 = (hashtext('etl')::int8 & 4294967295) and l.objid::int8 = (hashtext($1)::int8 & 4294967295)`,
    [schema],
  );
  return r.rows.map((x) => Number(x.pid));
}

describe('postgres: a bad project while the target connects', () => {
  it('reachable target: exit 2 naming the file and the ref; no schema, no run recorded, no lock left; the fixed project builds into the schema at once', async () => {
    const p = pgProject('badref', BAD_FILES);
    // A connection left open would keep the process alive: it must exit by itself.
    const r = await runCli(['build'], { cwd: p.dir, timeoutMs: 20_000 });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(UNKNOWN_REF);
    expect(r.stderr).toMatch(/did you mean "stg_people"\?/);
    expect(r.output).not.toMatch(/cannot connect/);
    expect(r.stdout).not.toMatch(/Running \d+ node/);
    expect(existsSync(path.join(p.dir, 'target')), 'target/ was created').toBe(false);

    expect(await schemaExists(p.schema), `schema ${p.schema} was created`).toBe(false);
    expect(await runsOf(p.target)).toEqual([]);
    // The connection that held the lock was closed before the process exited.
    expect(await lockHolders(p.schema)).toEqual([]);

    writeFiles(p.dir, { 'models/people_count.sql': '-- how many\nselect count(*) as n from {{ref "stg_people"}}\n' });
    const ok = await runCli(['build'], { cwd: p.dir });
    expect(ok.code, ok.output).toBe(0);
    expect(ok.output).not.toMatch(/another etl run/);
    expect((await admin.query(`select n from ${pgQuoteIdent(p.schema)}.people_count`)).rows).toEqual([{ n: '2' }]);
    // The same target's history holds the good run only (this proves the check above looks in the right place).
    expect(await runsOf(p.target)).toEqual([{ command: 'build', status: 'success' }]);
  });

  it('unreachable target (nothing listens on the port): exit 2 with the project error, not the connection error', async () => {
    const url = new URL(PG_URL);
    url.hostname = '127.0.0.1';
    url.port = '1';
    const p = pgProject('badref_unreachable', BAD_FILES, { url: url.toString() });
    const r = await runCli(['build'], { cwd: p.dir });
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(UNKNOWN_REF);
    expect(r.output).not.toMatch(/cannot connect|ECONNREFUSED/);
    expect(existsSync(path.join(p.dir, 'target'))).toBe(false);

    // The target is indeed unreachable: with the project fixed, the connection error is what is reported.
    writeFiles(p.dir, { 'models/people_count.sql': 'select 1 as n\n' });
    const good = await runCli(['build'], { cwd: p.dir });
    expect(good.code, good.output).toBe(2);
    expect(good.stderr).toMatch(new RegExp(`cannot connect to postgres target ${p.target} at 127\\.0\\.0\\.1:1\\b`));
  });

  it('a target that accepts TCP but never answers: the project error at once; the pending connection is cut short, not waited for', async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = new URL(PG_URL);
      url.hostname = '127.0.0.1';
      url.port = String((server.address() as net.AddressInfo).port);
      // A connect_timeout far beyond the test's timeout: waiting for it would fail the test.
      const p = pgProject('badref_silent', BAD_FILES, { url: url.toString(), extra: ', connect_timeout: 120' });
      // connect_timeout is 120 s and runCli gives up after 45: an exit at all means it was not waited for.
      const r = await runCli(['build'], { cwd: p.dir });
      expect(r.code, r.output).toBe(2);
      expect(r.stderr).toMatch(UNKNOWN_REF);
      expect(r.output).not.toMatch(/cannot connect|timeout/i);
      expect(existsSync(path.join(p.dir, 'target'))).toBe(false);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

/**
 * Local TCP ports of the sockets process `pid` has open (Linux /proc): the
 * client_port of its connections in pg_stat_activity, which tells the run's
 * connections from those of anything else using the database meanwhile.
 */
function tcpPortsOf(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.trim().split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is cols[1] (hex address:port), the inode cols[9].
      if (inodes.has(cols[9]!)) ports.add(parseInt(cols[1]!.split(':').pop()!, 16));
    }
  }
  return [...ports];
}

describe.skipIf(process.platform !== 'linux')('postgres: the lock connection', () => {
  it("during a build the run has exactly one 'etl (lock)' connection, and it holds the schema's lock", async () => {
    // The model waits at a gate the test holds (an advisory lock): the build is surely running
    // while its connections are looked at, whatever the machine's speed.
    const gate = 425_000 + Math.floor(Math.random() * 1000);
    await admin.query('select pg_advisory_lock($1)', [gate]);
    const p = pgProject('lockconn', {
      ...GOOD_FILES,
      'models/slow.sql': `{{config materialized="table"}}\nselect p.id from {{ref "stg_people"}} as p, pg_advisory_xact_lock_shared(${gate})\n`,
    });
    const run = startCli(['build'], { cwd: p.dir });
    const sleeper = await waitForBackend(admin, [p.schema, `pg_advisory_xact_lock_shared(${gate})`]);
    const ports = tcpPortsOf(run.child.pid!);
    const conns = (
      await admin.query<{ pid: number; application_name: string }>(
        'select pid, application_name from pg_stat_activity where datname = current_database() and client_port = any($1::int[]) order by pid',
        [ports],
      )
    ).rows.map((c) => ({ pid: Number(c.pid), app: c.application_name }));
    expect(run.exited, 'the build ended before the connections were looked at').toBe(false);

    // The connections seen are the run's: the one running the model is among them.
    expect(conns.map((c) => c.pid)).toContain(sleeper);
    const lock = conns.filter((c) => c.app === 'etl (lock)');
    expect(lock, JSON.stringify(conns)).toHaveLength(1);
    // Everything else is the pool, named 'etl' (at most threads: 4 of them).
    const pool = conns.filter((c) => c.app !== 'etl (lock)');
    expect(pool.length).toBeGreaterThanOrEqual(1);
    expect(pool.map((c) => c.app), JSON.stringify(conns)).toEqual(pool.map(() => 'etl'));
    expect(pool.length).toBeLessThanOrEqual(4);
    // ... and that connection is the one holding the run lock of the schema.
    expect(await lockHolders(p.schema)).toEqual([lock[0]!.pid]);

    await admin.query('select pg_advisory_unlock($1)', [gate]);
    const r = await run.exitWithin(30_000);
    expect(r.code, r.output).toBe(0);
    expect(await lockHolders(p.schema)).toEqual([]);
    expect((await admin.query('select 1 from pg_stat_activity where pid = $1', [lock[0]!.pid])).rowCount).toBe(0);
  });
});
