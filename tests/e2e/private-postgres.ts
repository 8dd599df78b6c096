// A Postgres cluster of a test's own: initdb into a temporary directory and
// pg_ctl start on a free port of 127.0.0.1, with whatever server settings the
// test needs (-c ...), so a test can use settings (max_slot_wal_keep_size, a
// tiny max_wal_size) that would need ALTER SYSTEM and a restart of the shared
// server. Trust auth, user postgres; the socket lives in the directory too.
// initdb refuses to run as root: as root, the binaries run as the `postgres`
// user (runuser) on a directory it owns. stop() stops the server (immediate)
// and removes the directory.

import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  dir: string;
  /** A URL of another database of the cluster. */
  urlOf(database: string): string;
  stop(): Promise<void>;
}

/** The server's binaries: pg_config --bindir, else the newest /usr/lib/postgresql/<version>/bin (Debian). */
async function binDir(): Promise<string> {
  const found = await run('pg_config', ['--bindir']).then((r) => r.stdout.trim()).catch(() => '');
  if (found && existsSync(path.join(found, 'initdb'))) return found;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin/initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error('initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin): install the PostgreSQL server (see .ci/run)');
  return path.join(root, versions[0]!, 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a cluster with these server settings (name -> value, as `-c name=value`). */
export async function startPrivatePostgres(settings: Record<string, string | number>): Promise<PrivatePostgres> {
  const bin = await binDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'etl-private-pg-'));
  const asRoot = process.getuid?.() === 0;
  // As root, the cluster belongs to the postgres user (initdb and the server refuse root).
  const exec = (file: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(bin, file), ...args]) : run(path.join(bin, file), args));
  if (asRoot) {
    const { uid, gid } = await run('id', ['-u', 'postgres']).then(async (u) => ({ uid: Number(u.stdout), gid: Number((await run('id', ['-g', 'postgres'])).stdout) }));
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  let started = false;
  const stop = async () => {
    if (started) await exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    const port = await freePort();
    const options = ['-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    started = true;
    await exec('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-o', options.join(' '), 'start']);
    const urlOf = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
    return { url: urlOf('postgres'), port, dir, urlOf, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
