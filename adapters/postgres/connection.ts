// How a postgres target becomes pg connection settings: a `url` and/or
// host/port/user/password/database (explicit keys win over the url's parts),
// libpq's sslmode semantics, and timeouts. Also owns keeping the password out
// of every message: describing a target never includes it, and `scrub`
// removes it from error text a driver or server produced.

import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type pg from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import { RunError } from '../../core/errors.js';

export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface PostgresTarget {
  name: string;
  url?: string;
  host?: string;
  port?: number | string;
  user?: string;
  password?: string;
  database?: string;
  schema: string;
  threads: number;
  sslmode?: SslMode;
  sslrootcert?: string;
  connect_timeout?: number;
  statement_timeout?: number;
}

export interface ConnectionSettings {
  /** Settings for pg.Client / pg.Pool, without `max`. */
  config: pg.ClientConfig;
  sslmode: SslMode;
  /** `host:port`, for messages. */
  address: string;
  database: string;
  user: string;
  /** Strings to remove from any message: the password, raw and URL-encoded. */
  secrets: string[];
}

/** Seconds to wait for a connection when the target does not say. */
const DEFAULT_CONNECT_TIMEOUT_S = 10;

export function connectionSettings(target: PostgresTarget, projectRoot: string): ConnectionSettings {
  const fromUrl = target.url ? parseUrl(target) : {};
  const host = target.host ?? fromUrl.host ?? process.env.PGHOST ?? 'localhost';
  const port = Number(target.port ?? fromUrl.port ?? process.env.PGPORT ?? 5432);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new RunError(`target ${target.name}: port must be a number between 1 and 65535, got "${target.port ?? fromUrl.port}"`, 2);
  }
  const user = target.user ?? fromUrl.user ?? process.env.PGUSER ?? osUser();
  // Without one, pg reads PGPASSWORD (or ~/.pgpass) itself.
  const password = target.password ?? fromUrl.password;
  const database = target.database ?? fromUrl.database ?? process.env.PGDATABASE ?? user;
  const rootCertPath = target.sslrootcert ?? fromUrl.sslrootcert;
  let sslmode = target.sslmode ?? fromUrl.sslmode ?? 'prefer';
  // libpq: "require" with a root certificate behaves like verify-ca.
  if (sslmode === 'require' && rootCertPath) sslmode = 'verify-ca';
  const connectTimeout = target.connect_timeout ?? fromUrl.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_S;

  const config: pg.ClientConfig = {
    host,
    port,
    user,
    password,
    database,
    application_name: 'etl',
    connectionTimeoutMillis: Math.round(connectTimeout * 1000),
    ssl: sslOptions(target, sslmode, rootCertPath, projectRoot),
  };
  // Sent as a startup parameter, so it holds for every statement on the connection.
  if (target.statement_timeout) config.statement_timeout = Math.round(target.statement_timeout);

  const secrets: string[] = [];
  if (password) secrets.push(password, encodeURIComponent(password));
  if (fromUrl.rawPassword) secrets.push(fromUrl.rawPassword);
  if (!password && process.env.PGPASSWORD) secrets.push(process.env.PGPASSWORD);
  const address = host.startsWith('/') ? `${host} (socket), port ${port}` : `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return { config, sslmode, address, database, user, secrets: [...new Set(secrets)].filter(Boolean) };
}

/** libpq's default user: the operating-system user. */
function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? 'postgres';
  }
}

/** `ssl` for pg: false, or TLS options following libpq's sslmode. */
function sslOptions(target: PostgresTarget, mode: SslMode, rootCertPath: string | undefined, projectRoot: string): false | ConnectionOptions {
  if (mode === 'disable') return false;
  // prefer/require encrypt but check nothing, as libpq does.
  if (mode === 'prefer' || mode === 'require') return { rejectUnauthorized: false };
  const options: ConnectionOptions = { rejectUnauthorized: true };
  if (rootCertPath) {
    const file = path.resolve(projectRoot, rootCertPath);
    try {
      options.ca = readFileSync(file, 'utf8');
    } catch (err) {
      throw new RunError(`target ${target.name}: cannot read sslrootcert ${file}: ${(err as Error).message}`, 2);
    }
  }
  // verify-ca checks the chain only; verify-full also checks the host name (node's default).
  if (mode === 'verify-ca') options.checkServerIdentity = () => undefined;
  return options;
}

interface UrlParts {
  host?: string;
  port?: string;
  user?: string;
  password?: string;
  rawPassword?: string;
  database?: string;
  sslmode?: SslMode;
  sslrootcert?: string;
  connectTimeout?: number;
}

const SSL_MODES = new Set<string>(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']);

function parseUrl(target: PostgresTarget): UrlParts {
  const raw = target.url!;
  if (!/^postgres(ql)?:\/\//i.test(raw)) {
    throw new RunError(`target ${target.name}: url must start with postgres:// or postgresql://, got ${/^[a-z][a-z0-9+.-]*:\/\//i.exec(raw)?.[0] ?? 'something else'}`, 2);
  }
  let url: Record<string, string | null | undefined>;
  try {
    // sslmode and sslrootcert pass through under other names: pg-connection-string would read
    // the certificate from the process's folder (etl reads it from the project's) and warn
    // that it treats sslmode unlike libpq (etl follows libpq: sslOptions).
    url = parseConnectionString(raw.replace(/([?&])(sslmode|sslrootcert)=/gi, '$1etl_$2=')) as Record<string, string | null | undefined>;
  } catch {
    // The url may hold a password: never echo it.
    throw new RunError(`target ${target.name}: url is not a valid URL (expected postgres://user:password@host:port/database)`, 2);
  }
  const parts: UrlParts = {};
  const given = (v: string | null | undefined) => (v === null || v === undefined || v === '' ? undefined : v);
  parts.host = given(url.host);
  parts.port = given(url.port);
  parts.user = given(url.user);
  parts.password = given(url.password);
  // As written in the url (percent-encoded), also kept out of messages.
  parts.rawPassword = /^[^:]+:\/\/[^/?#@]*?:([^@/?#]*)@/.exec(raw)?.[1] || undefined;
  parts.database = given(url.dbname) ?? given(url.database);
  const sslmode = given(url.etl_sslmode);
  if (sslmode) {
    if (!SSL_MODES.has(sslmode)) throw new RunError(`target ${target.name}: url sslmode must be one of ${[...SSL_MODES].join(', ')}, got "${sslmode}"`, 2);
    parts.sslmode = sslmode as SslMode;
  }
  parts.sslrootcert = given(url.etl_sslrootcert);
  if (given(url.connect_timeout)) parts.connectTimeout = Number(url.connect_timeout);
  return parts;
}

/** Removes every secret from `text`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join('****');
  return out;
}

/** Scrubs an error's message and stack in place, keeping its class and code (retries look at them). */
export function scrubError<E>(err: E, secrets: readonly string[]): E {
  if (secrets.length && err instanceof Error) {
    err.message = scrub(err.message, secrets);
    if (err.stack) err.stack = scrub(err.stack, secrets);
  }
  return err;
}
