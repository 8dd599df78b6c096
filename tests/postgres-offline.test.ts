// The Postgres adapter's parts that need no server: CSV type inference
// (csv-types.ts), the blank-line filter in front of COPY (seed.ts), target
// urls (connection.ts) and the classification of errors as transient
// (errors.ts). They run, and must pass, with Postgres down.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyValue, inferCsvShape } from '../adapters/postgres/csv-types.js';
import { connectionSettings, type PostgresTarget } from '../adapters/postgres/connection.js';
import { isTransientPgError } from '../adapters/postgres/errors.js';
import { dropBlankLines } from '../adapters/postgres/seed.js';

const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'etl-pg-offline-'));
afterAll(() => rmSync(tmpDir, { recursive: true, force: true }));

describe('CSV type inference', () => {
  it('scans a large CSV in bounded memory', async () => {
    const file = path.join(tmpDir, 'big.csv');
    const lines = ['id,amount,day,label'];
    for (let i = 1; i <= 200_000; i++) lines.push(`${i},${i % 100}.25,2024-01-${String((i % 28) + 1).padStart(2, '0')},"row ${i}, ok"`);
    writeFileSync(file, lines.join('\n') + '\n');
    const shape = await inferCsvShape(file);
    expect(shape).toEqual({ columns: ['id', 'amount', 'day', 'label'], types: ['integer', 'numeric', 'date', 'text'], rows: 200_000, blankLines: 0, complete: true });
  });

  it('classifies single values', () => {
    expect(['1', '-2147483648', '2147483648', '99999999999999999999', '1.5', '1e3', 'True', '2024-02-30', '2024-02-29', '2024-01-01T10:00:00Z', '007', 'abc', 'NaN'].map(classifyValue)).toEqual([
      'integer', 'integer', 'bigint', 'numeric', 'numeric', 'numeric', 'boolean', 'text', 'date', 'timestamptz', 'text', 'text', 'text',
    ]);
  });

  it('drops only blank lines outside quoted values, across chunk boundaries', async () => {
    const t = dropBlankLines();
    const out: Buffer[] = [];
    t.on('data', (b: Buffer) => out.push(b));
    for (const part of ['a,b\r', '\n\r\n1,"x\n', '\ny"\n', '\n', '\n2,z\n']) t.write(Buffer.from(part));
    t.end();
    await new Promise((r) => t.on('end', r));
    expect(Buffer.concat(out).toString()).toBe('a,b\r\n1,"x\n\ny"\n2,z\n');
  });
});

describe('errors', () => {
  it('classifies transient errors', () => {
    const transient = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }),
      new Error('Connection terminated unexpectedly'),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('could not serialize access due to concurrent update'), { code: '40001' }),
      Object.assign(new Error('deadlock detected'), { code: '40P01' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })], ''),
      new Error('cannot replace x', { cause: Object.assign(new Error('deadlock detected'), { code: '40P01' }) }),
    ];
    const permanent = [
      Object.assign(new Error('syntax error at or near "selec"'), { code: '42601' }),
      Object.assign(new Error('duplicate key value'), { code: '23505' }),
      Object.assign(new Error('canceling statement due to user request'), { code: '57014' }),
      Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }),
      Object.assign(new Error('password authentication failed'), { code: '28P01' }),
      Object.assign(new Error('getaddrinfo ENOTFOUND nohost'), { code: 'ENOTFOUND' }),
      new Error('boom'),
      undefined,
      'Connection',
    ];
    for (const e of transient) expect(isTransientPgError(e), String(e)).toBe(true);
    for (const e of permanent) expect(isTransientPgError(e), String(e)).toBe(false);
  });
});

describe('target urls (parsed by pg-connection-string)', () => {
  const settings = (url: string, extra: Partial<PostgresTarget> = {}) => connectionSettings({ name: 'pg', url, schema: 's', threads: 1, ...extra }, tmpDir);

  it('takes host, port, user, a percent-encoded password, database, sslmode and connect_timeout; the password in both spellings is a secret', () => {
    const s = settings('postgres://bob:s3cr%40t%21@db.example.com:6543/shop?sslmode=require&connect_timeout=3');
    expect(s.config).toMatchObject({ host: 'db.example.com', port: 6543, user: 'bob', password: 's3cr@t!', database: 'shop', connectionTimeoutMillis: 3000 });
    expect(s.sslmode).toBe('require');
    expect(s.secrets).toEqual(expect.arrayContaining(['s3cr@t!', 's3cr%40t%21']));
    expect(s.address).toBe('db.example.com:6543');
  });

  it('reaches unix sockets, IPv6 hosts, and lets ?dbname= and explicit keys win', () => {
    expect(settings('postgres:///test?host=/var/run/postgresql').config).toMatchObject({ host: '/var/run/postgresql', database: 'test' });
    expect(settings('postgres://%2Fvar%2Frun%2Fpostgresql/db').config).toMatchObject({ host: '/var/run/postgresql', database: 'db' });
    const v6 = settings('postgresql://u@[::1]:5/d?dbname=x&sslmode=disable');
    expect(v6.config).toMatchObject({ host: '::1', port: 5, database: 'x', ssl: false });
    expect(v6.address).toBe('[::1]:5');
    expect(settings('postgres://u@h:5/d', { host: 'other', port: 7, database: 'e' }).config).toMatchObject({ host: 'other', port: 7, database: 'e', user: 'u' });
  });

  it('reads sslrootcert from the project folder, not the process folder', () => {
    expect(() => settings('postgres://h/d?sslmode=verify-full&sslrootcert=certs/ca.crt')).toThrow(`cannot read sslrootcert ${path.join(tmpDir, 'certs/ca.crt')}`);
  });

  it('refuses another scheme and an unknown sslmode, without echoing the url', () => {
    expect(() => settings('mysql://root:hunter2@h/d')).toThrow(/url must start with postgres:\/\/ or postgresql:\/\/, got mysql:\/\/$/);
    expect(() => settings('postgres://a:hunter2@h/d?sslmode=nope')).toThrow(/url sslmode must be one of disable, prefer, require, verify-ca, verify-full, got "nope"/);
  });
});
