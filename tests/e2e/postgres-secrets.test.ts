// Secrets and bad input against the real Postgres, through the built CLI.
//
// A role with a password (trust auth: the server does not check it, but etl
// must treat it as a secret all the same) reached through
// `url: "{{env_var 'PG_URL'}}"`: the password must appear in no log line (text
// and json), no file under target/ and no error message, also when the
// connection fails. Bad targets (wrong host, wrong port) exit 2 naming the
// target and the host; a role without CREATE on the schema gets Postgres's
// message and the compiled SQL's path.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresAdapter } from '../../adapters/postgres/adapter.js';
import { migrateState } from '../../core/state/state.js';
import { PG_URL, REPO_ROOT, assertCliBuilt, dropPgSchema, killAll, listFiles, makeTempDir, newPgSchema, pgConnect, pgQuoteIdent, readJson, readRunResults, removeTempDirs, runCli, writeFiles, type CliResult } from './helpers.js';

let admin: pg.Client;
const roles: string[] = [];
const schemas: string[] = [];
const url = new URL(PG_URL);
const host = url.hostname || '127.0.0.1';
const port = Number(url.port || 5432);
const database = url.pathname.slice(1) || 'test';

/** A role that may log in, create schemas in the database and write etl's state. */
async function createRole(password?: string): Promise<string> {
  const role = `etl_pw_${randomBytes(5).toString('hex')}`;
  roles.push(role);
  await admin.query(`create role ${role} login${password ? ` password '${password.replace(/'/g, "''")}'` : ''}`);
  await admin.query(`grant connect, create, temporary on database ${pgQuoteIdent(database)} to ${role}`);
  await admin.query(`grant usage, create on schema etl_meta to ${role}`);
  await admin.query(`grant select, insert, update, delete on all tables in schema etl_meta to ${role}`);
  return role;
}

beforeAll(async () => {
  assertCliBuilt();
  admin = await pgConnect();
  // etl_meta made by the admin, so that a role of this suite never owns it (DROP OWNED below).
  const adapter = new PostgresAdapter({ name: 'admin', url: PG_URL, schema: 'public', threads: 1 }, REPO_ROOT);
  await adapter.open();
  try {
    await adapter.withSession((s) => migrateState(adapter, s));
  } finally {
    await adapter.close();
  }
});

afterEach(async () => {
  await killAll();
  removeTempDirs();
  for (const s of schemas.splice(0)) await dropPgSchema(admin, s);
});

afterAll(async () => {
  await killAll();
  removeTempDirs();
  for (const s of schemas.splice(0)) await dropPgSchema(admin, s);
  for (const role of roles) {
    await admin.query(`reassign owned by ${role} to current_user`);
    await admin.query(`drop owned by ${role}`);
    await admin.query(`drop role if exists ${role}`);
  }
  await admin?.end();
});

function project(name: string, files: Record<string, string>, target = `url: "{{env_var 'PG_URL'}}"`): { dir: string; schema: string } {
  const schema = newPgSchema();
  schemas.push(schema);
  const dir = path.join(makeTempDir('etl-secrets-'), name);
  writeFiles(dir, {
    'etl.yml': `name: ${name}\nversion: 1\ntarget: pg\ntargets:\n  pg: { type: postgres, ${target}, schema: ${schema}, threads: 2, connect_timeout: 5 }\n`,
    ...files,
  });
  return { dir, schema };
}

function etl(dir: string, env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  return runCli([...args, '--project-dir', dir], { cwd: dir, env });
}

describe('a password given through env_var', () => {
  // URL-special characters, so the raw and the percent-encoded spellings differ.
  const password = `S3cr3t-${randomBytes(6).toString('hex')}-p@ss:w/rd%`;
  const spellings = [password, encodeURIComponent(password)];
  const expectNoSecret = (where: string, text: string) => {
    for (const s of spellings) expect(text.includes(s), `${where} contains the password (${s === password ? 'raw' : 'URL-encoded'})`).toBe(false);
  };
  let role: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    role = await createRole(password);
    env = { PG_URL: `postgres://${role}:${encodeURIComponent(password)}@${host}:${port}/${database}` };
  });

  it('appears in no log line (text, json), no file in target/ and no error message', async () => {
    const { dir, schema } = project('secrets', {
      'seeds/people.csv': 'id,name\n1,ann\n2,bob\n',
      'models/ok.sql': '{{config materialized="table"}}\nselect id, name, current_user as built_by from {{ref "people"}}\n',
      'models/broken.sql': '{{config materialized="table"}}\nselect no_such_column from {{ref "people"}}\n',
      'models/after_broken.sql': 'select * from {{ref "broken"}}\n',
      'models/schema.yml': 'models:\n  - name: ok\n    columns:\n      - name: name\n        tests:\n          - accepted_values: { values: [ann] }\n',
      'tests/no_rows.sql': 'select * from {{ref "ok"}} where id > 100\n',
    });
    const outputs: Array<[string, CliResult]> = [];
    const text = await etl(dir, env, 'build', '--no-check', '--junit', 'target/junit.xml');
    outputs.push(['etl build (text)', text]);
    expect(text.code, text.output).toBe(1);
    // It did connect as the role, with the URL that holds the password.
    expect((await admin.query(`select built_by from ${pgQuoteIdent(schema)}.ok order by id`)).rows).toEqual([{ built_by: role }, { built_by: role }]);
    expect(text.stdout).toMatch(/Error in model broken \(models\/broken\.sql\)\n\s+column "no_such_column" does not exist/);
    expect(text.stdout).toMatch(/Failure in test accepted_values_ok_name__ann, on ok/);
    const json = await etl(dir, env, 'build', '--no-check', '--log-format', 'json');
    outputs.push(['etl build --log-format json', json]);
    expect(json.code, json.output).toBe(1);
    const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; message?: string });
    expect(events.some((e) => e.event === 'node_finished' && /no_such_column/.test(e.message ?? ''))).toBe(true);
    for (const args of [['debug'], ['debug', '--log-format', 'json'], ['compile'], ['ls'], ['show', '--inline', 'select current_user as who'], ['state', 'show'], ['test'], ['retry']]) {
      const r = await etl(dir, env, ...args);
      outputs.push([`etl ${args.join(' ')}`, r]);
      expect(r.code, `${args.join(' ')}: ${r.output}`).not.toBe(2);
    }
    const debug = outputs.find(([n]) => n === 'etl debug')![1];
    expect(debug.stdout).toMatch(new RegExp(`target: pg \\(postgres, schema ${schema}, 2 threads\\)`));
    expect(debug.stdout).toMatch(/connection: OK/);

    for (const [name, r] of outputs) {
      expectNoSecret(`${name}: stdout`, r.stdout);
      expectNoSecret(`${name}: stderr`, r.stderr);
    }
    const files = listFiles(path.join(dir, 'target'));
    for (const f of ['manifest.json', 'run_results.json', 'junit.xml', 'compiled/secrets/models/ok.sql', 'compiled/secrets/models/broken.sql']) expect(files).toContain(f);
    for (const f of files) expectNoSecret(`target/${f}`, readFileSync(path.join(dir, 'target', f), 'latin1'));
    // The database too: run history and messages in etl_meta.
    const meta = await admin.query(`select message from etl_meta.node_runs where relation like $1`, [`"${schema}".%`]);
    expect(meta.rows.length).toBeGreaterThan(0);
    for (const row of meta.rows) expectNoSecret('etl_meta.node_runs', String(row.message));
  });

  it('a failing connection (wrong port) exits 2 naming target and host, never the password', async () => {
    const { dir } = project('badport', { 'models/m.sql': 'select 1 as x\n' });
    const wrong = { PG_URL: `postgres://${role}:${encodeURIComponent(password)}@${host}:1/${database}` };
    for (const format of ['text', 'json']) {
      const r = await etl(dir, wrong, 'build', '--log-format', format);
      expect(r.code, r.output).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`cannot connect to postgres target pg at ${host.replace(/\./g, '\\.')}:1 \\(database ${database}, user ${role}\\): .*ECONNREFUSED`));
      expect(r.stderr).toMatch(/hint: is the server running and accepting TCP connections/);
      expectNoSecret(`build --log-format ${format}: stdout`, r.stdout);
      expectNoSecret(`build --log-format ${format}: stderr`, r.stderr);
    }
    const debug = await etl(dir, wrong, 'debug');
    expect(debug.code, debug.output).not.toBe(0);
    expect(debug.stdout).toMatch(new RegExp(`connection: FAILED: cannot connect to postgres target pg at ${host.replace(/\./g, '\\.')}:1 `));
    expectNoSecret('debug', debug.output);
    for (const f of listFiles(path.join(dir, 'target'))) expectNoSecret(`target/${f}`, readFileSync(path.join(dir, 'target', f), 'latin1'));
  });
});

describe('bad targets and missing privileges', () => {
  it('an unknown host exits 2 naming the target and the host, before anything is built', async () => {
    const { dir } = project('badhost', { 'models/m.sql': 'select 1 as x\n' }, `host: no-such-host.invalid, port: ${port}, user: postgres, database: ${database}`);
    const r = await etl(dir, {}, 'build');
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(/cannot connect to postgres target pg at no-such-host\.invalid:\d+ \(database \w+, user postgres\): .*(ENOTFOUND|EAI_AGAIN)/);
    expect(r.stderr).toMatch(/hint: the host name does not resolve/);
    expect(r.stdout).toBe('');
  });

  it('a wrong port exits 2 naming the target and host:port', async () => {
    const { dir } = project('wrongport', { 'models/m.sql': 'select 1 as x\n' }, `host: "${host}", port: 1, user: postgres, database: ${database}`);
    const r = await etl(dir, {}, 'run');
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`cannot connect to postgres target pg at ${host.replace(/\./g, '\\.')}:1 `));
  });

  it('a role without CREATE on the schema: the model fails with Postgres\'s message and the compiled SQL path', async () => {
    const role = await createRole();
    const { dir, schema } = project(
      'noperm',
      {
        'models/m.sql': '{{config materialized="table"}}\nselect 1 as x\n',
        'models/v.sql': '{{config materialized="view"}}\nselect 2 as y\n',
      },
      `url: "postgres://${role}@${host}:${port}/${database}"`,
    );
    // The schema exists and the role may use it, but not create in it.
    await admin.query(`create schema ${pgQuoteIdent(schema)}`);
    await admin.query(`grant usage on schema ${pgQuoteIdent(schema)} to ${role}`);
    const r = await etl(dir, {}, 'build');
    expect(r.code, r.output).toBe(1);
    for (const m of ['m', 'v']) {
      expect(r.stdout).toMatch(new RegExp(`Error in model ${m} \\(models/${m}\\.sql\\)\\n\\s+permission denied for schema ${schema}\\n\\s+compiled SQL: target/compiled/noperm/models/${m}\\.sql`));
    }
    const results = readRunResults<{ results: Array<{ unique_id: string; status: string; message: string; compiled_path: string }> }>(dir).results;
    expect(results.map((x) => [x.unique_id, x.status, x.message]).sort()).toEqual([
      ['model.noperm.m', 'error', `permission denied for schema ${schema}`],
      ['model.noperm.v', 'error', `permission denied for schema ${schema}`],
    ]);
    expect(results.find((x) => x.unique_id === 'model.noperm.m')!.compiled_path).toBe('target/compiled/noperm/models/m.sql');
    expect((await admin.query(`select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1`, [schema])).rows).toEqual([{ n: '0' }]);
  });
});
