// Classifying pg errors: which are worth a retry, which mean the connection is
// dead (the client must be thrown away, not returned to the pool), and what
// to tell a user whose target cannot be reached.

/** SQLSTATEs where the same statement can succeed when tried again. */
const TRANSIENT_SQLSTATES = new Set([
  '57P01', // admin_shutdown: the backend was terminated
  '57P03', // cannot_connect_now: the server is starting up or shutting down
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available: lock_timeout ran out
]);

/** Socket errors of a dropped or refused connection. */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

const CONNECTION_TERMINATED = /Connection terminated/;

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  errors?: unknown;
  cause?: unknown;
}

/** The error and everything it wraps (`cause`, AggregateError's `errors`). */
function* chain(err: unknown, depth = 0): Generator<ErrorLike> {
  if (!err || typeof err !== 'object' || depth > 5) return;
  const e = err as ErrorLike;
  yield e;
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* chain(inner, depth + 1);
  if (e.cause) yield* chain(e.cause, depth + 1);
}

/** Dropped/refused connection (class 08), terminated backend, serialization failure, deadlock, lock timeout. Nothing else. */
export function isTransientPgError(err: unknown): boolean {
  for (const e of chain(err)) {
    if (typeof e.code === 'string' && (TRANSIENT_SQLSTATES.has(e.code) || e.code.startsWith('08') || CONNECTION_ERRNOS.has(e.code))) return true;
    if (typeof e.message === 'string' && CONNECTION_TERMINATED.test(e.message)) return true;
  }
  return false;
}

/** Whether the connection that raised `err` can no longer be used. */
export function isConnectionLost(err: unknown): boolean {
  for (const e of chain(err)) {
    if (typeof e.code === 'string') {
      // class 08: connection exception; 57P0x: the backend is going away
      if (/^08|^57P0/.test(e.code) || CONNECTION_ERRNOS.has(e.code) || e.code === 'ETIMEDOUT') return true;
    }
    if (typeof e.message === 'string' && (CONNECTION_TERMINATED.test(e.message) || /not queryable/.test(e.message))) return true;
  }
  return false;
}

/** The text of an error; AggregateError (several addresses tried) has an empty message of its own. */
export function errorText(err: unknown): string {
  const e = err as ErrorLike;
  const own = typeof e?.message === 'string' ? e.message : String(err);
  if (own || !Array.isArray(e?.errors)) return own;
  return [...new Set(e.errors.map((inner) => errorText(inner)))].join('; ');
}

/** A one-line hint for a failed connection attempt. */
export function connectHint(err: unknown, address: string): string | undefined {
  const codes = [...chain(err)].map((e) => e.code).filter((c): c is string => typeof c === 'string');
  const text = [...chain(err)].map((e) => String(e.message ?? '')).join(' ');
  if (codes.includes('ECONNREFUSED')) return `is the server running and accepting TCP connections on ${address}?`;
  if (codes.includes('ENOTFOUND') || codes.includes('EAI_AGAIN')) return 'the host name does not resolve; check host (or the url)';
  if (codes.includes('28P01') || codes.includes('28000')) return 'check user and password (or the url); an env var such as {{env_var \'PG_PASSWORD\'}} keeps the password out of etl.yml';
  if (codes.includes('3D000')) return 'the database does not exist; check database (or the path of the url)';
  if (/timeout/i.test(text)) return 'no answer in time; check host, port and firewalls, or raise connect_timeout';
  if (/does not support SSL/i.test(text)) return 'the server has no TLS; use sslmode: prefer or disable';
  if (/certificate|self[- ]signed|altnames|CERT_/i.test(text)) return 'check sslrootcert (the CA that signed the server certificate) and sslmode (verify-ca skips the host name check)';
  return undefined;
}
