// Delivering one alert to one sink: a webhook (a JSON POST over node:http,
// so no fetch implementation is loaded) or a command (the payload as JSON on
// its stdin). Each is tried 1 + retries times with exponential backoff (the
// runner's retry policy, core/runner/retry.ts), each try bounded by the
// alert's timeout. Nothing here throws: the outcome is a
// value, and a failure says why without the URL's path or any header (a
// chat webhook's URL is its credential).

import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type { AlertConfig } from '../project/orchestration.js';
import type { AlertPayload } from './events.js';
import { webhookBody } from './formats.js';
import { RetriesExhausted, withRetry, type BackoffPolicy } from '../runner/retry.js';

export interface AlertDelivery {
  alert: string;
  event: AlertPayload['event'];
  sink: 'webhook' | 'command';
  /** scheme://host:port of a webhook (never its path or query), or "command". */
  destination: string;
  delivered: boolean;
  attempts: number;
  /** The last try's HTTP status or exit code. */
  status: number | null;
  error?: string;
}

interface Attempt {
  ok: boolean;
  status: number | null;
  error?: string;
  /** False for an answer that a retry will not change (HTTP 4xx other than 408/429). */
  retryable: boolean;
}

export interface DeliverOptions {
  /** Folder a command sink runs in (the project's root). */
  cwd: string;
  /** The waits between tries; ALERT_BACKOFF by default. */
  backoff?: BackoffPolicy;
}

/** 0.5 s, 1 s, 2 s, ... up to 30 s, each with up to half of it taken off at random (so many senders spread out). */
export const ALERT_BACKOFF: BackoffPolicy = { strategy: 'exponential', baseMs: 500, maxMs: 30_000, jitter: 0.5 };

/** A failed try, as withRetry sees it: transient unless a retry cannot change the answer. */
class AttemptFailed extends Error {
  constructor(readonly attempt: Attempt) {
    super(attempt.error);
  }
}

export async function deliverAlert(alert: AlertConfig, payload: AlertPayload, options: DeliverOptions): Promise<AlertDelivery> {
  const sink = alert.webhook ? 'webhook' : 'command';
  const destination = alert.webhook ? new URL(alert.webhook.url).origin : 'command';
  const once = async (): Promise<Attempt> => {
    let a: Attempt;
    try {
      a = alert.webhook ? await postWebhook(alert.webhook, payload, alert.timeoutSeconds * 1000) : await runCommand(alert.command!, payload, alert.timeoutSeconds * 1000, options.cwd);
    } catch (err) {
      a = { ok: false, status: null, error: (err as Error)?.message ?? String(err), retryable: true };
    }
    if (!a.ok) throw new AttemptFailed(a);
    return a;
  };
  const result = { alert: alert.name, event: payload.event, sink, destination } as const;
  try {
    const { value, attempts } = await withRetry(once, { maxAttempts: 1 + alert.retries, policy: options.backoff ?? ALERT_BACKOFF, isTransient: (err) => err instanceof AttemptFailed && err.attempt.retryable });
    return { ...result, delivered: true, attempts: attempts.length, status: value.status };
  } catch (err) {
    const attempts = err instanceof RetriesExhausted ? err.attempts.length : 1;
    const cause = err instanceof RetriesExhausted ? err.cause : err;
    const last = cause instanceof AttemptFailed ? cause.attempt : { status: null, error: (cause as Error)?.message ?? String(cause) };
    return { ...result, delivered: false, attempts, status: last.status, error: last.error };
  }
}

function postWebhook(webhook: NonNullable<AlertConfig['webhook']>, payload: AlertPayload, timeoutMs: number): Promise<Attempt> {
  const url = new URL(webhook.url);
  const body = Buffer.from(JSON.stringify(webhookBody(payload, webhook.format)));
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise<Attempt>((resolve) => {
    let settled = false;
    const done = (a: Attempt) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const req = lib.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length), 'user-agent': 'etl-alerts/1', ...webhook.headers },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        res.on('end', () => {
          if (status >= 200 && status < 300) done({ ok: true, status, retryable: false });
          else done({ ok: false, status, error: `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`, retryable: status >= 500 || status === 408 || status === 429 });
        });
        res.on('error', (err) => done({ ok: false, status, error: err.message, retryable: true }));
      },
    );
    // The whole exchange, not just an idle socket, must fit in the timeout.
    const timer = setTimeout(() => {
      done({ ok: false, status: null, error: `no answer within ${timeoutMs / 1000}s`, retryable: true });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, status: null, error: err.code ?? err.message, retryable: true }));
    req.end(body);
  });
}

function runCommand(command: string, payload: AlertPayload, timeoutMs: number, cwd: string): Promise<Attempt> {
  return new Promise<Attempt>((resolve) => {
    const child = spawn(command, { shell: true, cwd, stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, ETL_ALERT_EVENT: payload.event } });
    let stderr = '';
    let timedOut = false;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-500);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, status: null, error: err.message, retryable: true });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) resolve({ ok: false, status: null, error: `did not finish within ${timeoutMs / 1000}s`, retryable: true });
      else if (code === 0) resolve({ ok: true, status: 0, retryable: false });
      else resolve({ ok: false, status: code, error: `exited with ${code ?? signal}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`, retryable: true });
    });
    // A command that does not read its stdin closes it: not an error of the delivery.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(JSON.stringify(payload));
  });
}
