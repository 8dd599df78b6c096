// TLS to the real Postgres: the test makes a throw-away CA and server
// certificates with openssl, switches the server's TLS on (ALTER SYSTEM +
// pg_reload_conf), checks every sslmode through `etl debug` and `etl build`,
// and puts the server's ssl settings back as they were in afterAll.
//
// Needs: openssl on PATH, a superuser connection (trust auth as postgres), and
// the right to give the key file to the server's OS user (we run as root in
// CI). Without them the suite fails with the reason; it never skips.

import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, assertCliBuilt, dbPathOf, dropPgSchema, etlYml, killAll, makeTempDir, newPgSchema, pgConnect, pgQuoteIdent, removeTempDirs, runCli, withDb, writeFiles, writeProject, type CliResult } from './helpers.js';

const exec = promisify(execFile);
const SSL_SETTINGS = ['ssl', 'ssl_cert_file', 'ssl_key_file'] as const;

let admin: pg.Client;
/** The server's ssl settings as ALTER SYSTEM had them (undefined: not set there), to put back. */
let previous: Map<string, string | undefined> | undefined;
let certDir: string;
let schema: string;
let project: string;
const host = new URL(PG_URL).hostname || '127.0.0.1';
const port = Number(new URL(PG_URL).port || 5432);
const database = new URL(PG_URL).pathname.slice(1) || 'test';

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await exec('openssl', args, { cwd });
  } catch (err) {
    throw new Error(`openssl ${args.join(' ')} failed: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`);
  }
}

/** A CA (self-signed) and, signed by it, server certificates with the given subjectAltNames. */
async function makeCertificates(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'stranger_ca']) {
    await openssl(['req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=etl test ${ca}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  }
  const servers = { server: ['localhost', 'DNS:localhost,IP:127.0.0.1,IP:::1'], other: ['db.example.com', 'DNS:db.example.com'] };
  for (const [name, [cn, san]] of Object.entries(servers)) {
    writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
    await openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
  }
}

/** Points the server at `name`.crt/.key with TLS on, and waits until new connections get that certificate. */
async function serveCertificate(name: string, commonName: string): Promise<void> {
  await admin.query(`alter system set ssl_cert_file = '${path.join(certDir, `${name}.crt`)}'`);
  await admin.query(`alter system set ssl_key_file = '${path.join(certDir, `${name}.key`)}'`);
  await admin.query('alter system set ssl = on');
  await admin.query('select pg_reload_conf()');
  const deadline = Date.now() + 10_000;
  let last = '';
  for (;;) {
    let served: string | undefined;
    const client = new pg.Client({
      host,
      port,
      user: 'postgres',
      database,
      // (Node asks checkServerIdentity only of a chain it could verify: hence the CA.)
      ssl: { ca: readFileSync(path.join(certDir, 'ca.crt'), 'utf8'), rejectUnauthorized: false, checkServerIdentity: (_h, cert) => void (served = String(cert.subject.CN)) },
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if (served === commonName) return;
      last = `the server still presents ${served}`;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      await client.end().catch(() => undefined);
    }
    if (Date.now() > deadline) {
      const errors = await admin.query<{ name: string; error: string }>(`select name, error from pg_file_settings where error is not null`);
      throw new Error(
        `the server did not switch TLS on with ${name}.crt after pg_reload_conf (${last}); ` +
          `pg_file_settings errors: ${JSON.stringify(errors.rows)}; see the server log (the key must be owned by the server's OS user, mode 0600)`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function restore(): Promise<void> {
  if (!previous) return;
  for (const name of SSL_SETTINGS) {
    const value = previous.get(name);
    await admin.query(value === undefined ? `alter system reset ${name}` : `alter system set ${name} = '${value.replace(/'/g, "''")}'`);
  }
  await admin.query('select pg_reload_conf()');
  // Wait until new connections see the old setting again, so the suites after this one are unaffected.
  const want = previous.get('ssl') ?? (await admin.query(`select boot_val from pg_settings where name = 'ssl'`)).rows[0].boot_val;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = await pgConnect();
    const now = (await client.query('show ssl')).rows[0].ssl;
    await client.end();
    if (now === want || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  previous = undefined;
}

beforeAll(async () => {
  assertCliBuilt();
  try {
    await exec('openssl', ['version']);
  } catch (err) {
    throw new Error(`openssl is needed to make the test certificates and was not found on PATH (apt-get install openssl): ${(err as Error).message}`);
  }
  admin = await pgConnect();
  const su = await admin.query(`select rolsuper from pg_roles where rolname = current_user`);
  if (su.rows[0]?.rolsuper !== 'true') {
    throw new Error(`switching the server's TLS on needs a superuser (ALTER SYSTEM); ${PG_URL.replace(/:[^:@/]*@/, ':****@')} connects as a role that is not`);
  }
  // The server reads the key as its own OS user, the owner of the data directory.
  const dataDir = (await admin.query('show data_directory')).rows[0].data_directory as string;
  let owner: { uid: number; gid: number };
  try {
    owner = statSync(dataDir);
  } catch (err) {
    throw new Error(`cannot find the server's OS user (stat ${dataDir}: ${(err as Error).message}); the test must run on the server's machine`);
  }
  certDir = mkdtempSync(path.join(os.tmpdir(), 'etl-tls-'));
  chmodSync(certDir, 0o755);
  await makeCertificates(certDir);
  for (const name of ['server', 'other']) {
    try {
      chownSync(path.join(certDir, `${name}.key`), owner.uid, owner.gid);
      chownSync(path.join(certDir, `${name}.crt`), owner.uid, owner.gid);
    } catch (err) {
      throw new Error(`cannot give the server key to the server's OS user (uid ${owner.uid}): ${(err as Error).message}; run the suite as root or as that user`);
    }
    chmodSync(path.join(certDir, `${name}.key`), 0o600);
    chmodSync(path.join(certDir, `${name}.crt`), 0o644);
  }

  const set = await admin.query<{ name: string; setting: string }>(
    `select name, setting from pg_file_settings where sourcefile like '%postgresql.auto.conf' and name = any($1) and applied`,
    [[...SSL_SETTINGS]],
  );
  previous = new Map(SSL_SETTINGS.map((n) => [n, set.rows.find((r) => r.name === n)?.setting]));
  await serveCertificate('server', 'localhost');

  schema = newPgSchema();
  project = path.join(makeTempDir('etl-tls-'), 'tls');
  writeFiles(project, {
    'models/tls.sql': '{{config materialized="table"}}\nselect ssl, version from pg_stat_ssl where pid = pg_backend_pid()\n',
  });
  mkdirSync(path.join(project, 'certs'));
  for (const ca of ['ca', 'stranger_ca']) writeFileSync(path.join(project, 'certs', `${ca}.crt`), readFileSync(path.join(certDir, `${ca}.crt`)));
}, 60_000);

afterAll(async () => {
  await killAll();
  try {
    await restore();
  } finally {
    if (schema && admin) await dropPgSchema(admin, schema).catch(() => undefined);
    await admin?.end();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
    removeTempDirs();
  }
}, 60_000);

/** Sets the target's TLS settings (as etl.yml keys) and runs etl. */
function etl(tls: string, ...args: string[]): Promise<CliResult> {
  writeFiles(project, {
    'etl.yml': `name: tls\nversion: 1\ntarget: pg\ntargets:\n  pg: { type: postgres, host: "${host}", port: ${port}, user: postgres, database: ${database}, schema: ${schema}, threads: 2, ${tls} }\n`,
  });
  return runCli([...args, '--project-dir', project], { cwd: project });
}

describe('sslmode against a server with TLS on', () => {
  const MODES: Array<[mode: string, settings: string, encrypted: boolean]> = [
    ['disable', 'sslmode: disable', false],
    ['require', 'sslmode: require', true],
    ['verify-ca', 'sslmode: verify-ca, sslrootcert: certs/ca.crt', true],
    ['verify-full', 'sslmode: verify-full, sslrootcert: certs/ca.crt', true],
  ];

  it.each(MODES)('%s: etl debug connects and etl build runs over the expected connection', async (mode, settings, encrypted) => {
    const debug = await etl(settings, 'debug');
    expect(debug.code, debug.output).toBe(0);
    expect(debug.stdout).toMatch(/connection: OK/);
    const build = await etl(settings, 'build');
    expect(build.code, build.output).toBe(0);
    const row = (await admin.query(`select ssl, version from ${pgQuoteIdent(schema)}.tls`)).rows;
    expect(row, mode).toEqual([{ ssl: String(encrypted), version: encrypted ? expect.stringMatching(/^TLSv1\.[23]$/) : null }]);
  });

  it('sslmode and sslrootcert in the url work the same (verify-full)', async () => {
    const url = `postgres://postgres@${host}:${port}/${database}?sslmode=verify-full&sslrootcert=certs/ca.crt`;
    writeFiles(project, { 'etl.yml': `name: tls\nversion: 1\ntarget: pg\ntargets:\n  pg: { type: postgres, url: "${url}", schema: ${schema}, threads: 2 }\n` });
    const build = await runCli(['build', '--project-dir', project], { cwd: project });
    expect(build.code, build.output).toBe(0);
    expect((await admin.query(`select ssl from ${pgQuoteIdent(schema)}.tls`)).rows).toEqual([{ ssl: 'true' }]);
  });

  it('a Postgres source of a loader connects over TLS the same way (require, verify-full with its CA); a CA that did not sign the server fails the run naming the source', async () => {
    // The loader's query reads its own connection's TLS state at the source: the raw table says how it connected.
    const dir = writeProject({ 'etl.yml': etlYml('tls_source') });
    mkdirSync(path.join(dir, 'certs'));
    for (const ca of ['ca', 'stranger_ca']) writeFileSync(path.join(dir, 'certs', `${ca}.crt`), readFileSync(path.join(certDir, `${ca}.crt`)));
    const load = (tls: string) => {
      writeFiles(dir, {
        'models/crm.yml': `sources:
  - name: crm
    tables:
      - name: conn
        loader:
          type: postgres
          url: "postgres://postgres@${host}:${port}/${database}"
          query: select ssl, version from pg_stat_ssl where pid = pg_backend_pid()
          ${tls}
`,
      });
      return runCli(['extract', '--full-refresh'], { cwd: dir });
    };
    for (const tls of ['sslmode: require', 'sslmode: verify-full\n          sslrootcert: certs/ca.crt']) {
      const r = await load(tls);
      expect(r.code, r.output).toBe(0);
      expect(await withDb(dbPathOf(dir), (db) => db.rows('select ssl, version from crm.conn'))).toEqual([{ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) }]);
    }
    const plain = await load('sslmode: disable');
    expect(plain.code, plain.output).toBe(0);
    expect(await withDb(dbPathOf(dir), (db) => db.rows('select ssl from crm.conn'))).toEqual([{ ssl: false }]);

    const stranger = await load('sslmode: verify-full\n          sslrootcert: certs/stranger_ca.crt');
    expect(stranger.code, stranger.output).toBe(1);
    expect(stranger.output).toMatch(new RegExp(`loader of source crm\\.conn: cannot connect to ${host.replace(/\./g, '\\.')}:${port}/${database}: .*(certificate|self[- ]signed)`, 'i'));
    // The raw table is what the last good load left.
    expect(await withDb(dbPathOf(dir), (db) => db.rows('select ssl from crm.conn'))).toEqual([{ ssl: false }]);
  });

  it('verify-ca with a CA that did not sign the server certificate fails with exit 2 and a hint', async () => {
    const build = await etl('sslmode: verify-ca, sslrootcert: certs/stranger_ca.crt', 'build');
    expect(build.code, build.output).toBe(2);
    expect(build.stderr).toMatch(new RegExp(`cannot connect to postgres target pg at ${host.replace(/\./g, '\\.')}:${port} \\(database ${database}, user postgres\\): .*(certificate|self[- ]signed)`, 'i'));
    expect(build.stderr).toMatch(/hint: check sslrootcert/);
    expect(build.stdout).toBe('');
  });

  it('verify-full against a certificate for another name fails with a clear message (exit 2); verify-ca accepts it', async () => {
    await serveCertificate('other', 'db.example.com');
    const build = await etl('sslmode: verify-full, sslrootcert: certs/ca.crt', 'build');
    expect(build.code, build.output).toBe(2);
    expect(build.stderr).toMatch(
      new RegExp(`cannot connect to postgres target pg at ${host.replace(/\./g, '\\.')}:${port} \\(database ${database}, user postgres\\): Hostname/IP does not match certificate's altnames: IP: ${host.replace(/\./g, '\\.')} is not in the cert's list`),
    );
    expect(build.stderr).toMatch(/hint: check sslrootcert .* and sslmode \(verify-ca skips the host name check\)/);
    expect(build.stdout).toBe('');
    const debug = await etl('sslmode: verify-full, sslrootcert: certs/ca.crt', 'debug');
    expect(debug.code, debug.output).not.toBe(0);
    expect(debug.stdout).toMatch(/connection: FAILED: cannot connect to postgres target pg .*does not match certificate's altnames/);

    const ca = await etl('sslmode: verify-ca, sslrootcert: certs/ca.crt', 'build');
    expect(ca.code, ca.output).toBe(0);
    expect((await admin.query(`select ssl from ${pgQuoteIdent(schema)}.tls`)).rows).toEqual([{ ssl: 'true' }]);
  });
});
