// core/alerts: events delivered to a real HTTP server on 127.0.0.1 and to a
// real command, with etl.yml alerts read by the real loader.

import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scanProject } from '../core/project/load.js';
import { ALERTS_LOG, raiseAlert, raiseAlerts, type AlertEvent } from '../core/alerts/index.js';
import { startReceiver, type WebhookReceiver } from './webhook-receiver.js';

const dirs: string[] = [];
const receivers: WebhookReceiver[] = [];

afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function project(alerts: string, env: NodeJS.ProcessEnv = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-alerts-test-'));
  dirs.push(root);
  fs.writeFileSync(
    path.join(root, 'etl.yml'),
    `name: shop\nversion: 1\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb }\nalerts:\n${alerts}`,
  );
  return scanProject(root, { env });
}

async function receiver(statuses: Array<number | 'hang'>) {
  const r = await startReceiver(statuses);
  receivers.push(r);
  return r;
}

const FAILURE: AlertEvent = {
  event: 'failure',
  run_id: 'run-1',
  node: { unique_id: 'model.shop.orders', name: 'orders', resource_type: 'model', relation: '"main"."orders"' },
  status: 'error',
  message: 'model orders failed: Binder Error: column "x" not found',
  occurred_at: '2026-01-02T03:04:05.000Z',
};

const fast = { backoff: { strategy: 'exponential' as const, baseMs: 5, maxMs: 20, jitter: 0 } };

describe('webhook sink', () => {
  it('posts the documented JSON payload, retrying a 500 until it is accepted', async () => {
    const hook = await receiver([500, 200]);
    const p = project(`  - name: ops\n    on: [failure]\n    webhook: { url: "${hook.url}" }\n`);
    const [delivery] = await raiseAlert(p, FAILURE, fast);
    expect(delivery).toMatchObject({ alert: 'ops', event: 'failure', sink: 'webhook', delivered: true, attempts: 2, status: 200 });
    await hook.closed;
    expect(hook.received).toHaveLength(2);
    expect(hook.received[1]!.method).toBe('POST');
    expect(hook.received[1]!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(hook.received[1]!.body)).toEqual({
      version: 1,
      event: 'failure',
      project: 'shop',
      target: 'dev',
      occurred_at: '2026-01-02T03:04:05.000Z',
      run_id: 'run-1',
      job: null,
      message: 'model orders failed: Binder Error: column "x" not found',
      node: { unique_id: 'model.shop.orders', name: 'orders', resource_type: 'model', relation: '"main"."orders"' },
      details: { status: 'error' },
    });
    expect(hook.received[0]!.body).toBe(hook.received[1]!.body);
    const log = fs.readFileSync(path.join(p.targetPath, ALERTS_LOG), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ alert: 'ops', delivered: true, attempts: 2, destination: new URL(hook.url).origin });
  });

  it('gives up on a receiver that does not answer within the timeout: logged and recorded, never thrown', async () => {
    const hook = await receiver(['hang', 'hang']);
    const p = project(`  - name: slow\n    on: [failure]\n    timeout: 1s\n    retries: 1\n    webhook: { url: "${hook.url}" }\n`);
    const logged: string[] = [];
    const [delivery] = await raiseAlerts(p, [FAILURE], { ...fast, onUndelivered: (m) => logged.push(m) });
    expect(delivery).toMatchObject({ delivered: false, attempts: 2, status: null, error: 'no answer within 1s' });
    expect(hook.received).toHaveLength(2);
    expect(logged).toEqual([`alert "slow" (failure) not delivered to ${new URL(hook.url).origin} after 2 attempts: no answer within 1s (recorded in target/alerts.jsonl)`]);
    const log = JSON.parse(fs.readFileSync(path.join(p.targetPath, ALERTS_LOG), 'utf8'));
    expect(log).toMatchObject({ alert: 'slow', delivered: false, attempts: 2, error: 'no answer within 1s' });
  });

  it('does not retry a 4xx answer other than 408 and 429', async () => {
    const hook = await receiver([404]);
    const p = project(`  - on: [failure]\n    webhook: { url: "${hook.url}" }\n`);
    const [delivery] = await raiseAlert(p, FAILURE, fast);
    expect(delivery).toMatchObject({ alert: 'alerts[0]', delivered: false, attempts: 1, status: 404, error: 'HTTP 404 Not Found' });
  });

  it('a refused connection is undelivered, not an error of the caller', async () => {
    const hook = await receiver([200]);
    await hook.close();
    const p = project(`  - on: [failure]\n    retries: 2\n    webhook: { url: "${hook.url}" }\n`);
    const [delivery] = await raiseAlert(p, FAILURE, fast);
    expect(delivery).toMatchObject({ delivered: false, attempts: 3, error: 'ECONNREFUSED' });
  });

  it('sends only the events an alert listens for, to every alert that does', async () => {
    const a = await receiver([200, 200]);
    const b = await receiver([200]);
    const p = project(`  - name: a\n    on: [failure, test_fail]\n    webhook: { url: "${a.url}" }\n  - name: b\n    on: [test_fail]\n    webhook: { url: "${b.url}" }\n`);
    const testFail: AlertEvent = { event: 'test_fail', node: { unique_id: 'test.shop.t', name: 't', resource_type: 'test', relation: null }, failures: 3, message: 'test t failed (3 failing rows)' };
    const deliveries = await raiseAlerts(p, [FAILURE, testFail, { ...testFail, event: 'test_warn' }], fast);
    expect(deliveries.map((d) => `${d.alert}:${d.event}`).sort()).toEqual(['a:failure', 'a:test_fail', 'b:test_fail']);
    await Promise.all([a.closed, b.closed]);
    expect(a.received.map((r) => JSON.parse(r.body).event).sort()).toEqual(['failure', 'test_fail']);
    expect(JSON.parse(b.received[0]!.body)).toMatchObject({ event: 'test_fail', details: { failures: 3 }, node: { name: 't' } });
  });

  it('sends the configured headers; a header read from ETL_ENV_SECRET_* is masked in what is recorded', async () => {
    const hook = await receiver([401]);
    const secret = 'tok-3f9a-very-secret';
    const p = project(`  - name: auth\n    on: [failure]\n    webhook:\n      url: "${hook.url}"\n      headers: { Authorization: "Bearer {{env_var 'ETL_ENV_SECRET_HOOK'}}", X-Team: data }\n`, { ETL_ENV_SECRET_HOOK: secret });
    const logged: string[] = [];
    await raiseAlert(p, { ...FAILURE, message: `failed with ${secret} in its message` }, { ...fast, onUndelivered: (m) => logged.push(m) });
    expect(hook.received[0]!.headers.authorization).toBe(`Bearer ${secret}`);
    expect(hook.received[0]!.headers['x-team']).toBe('data');
    expect(logged.join('\n')).not.toContain(secret);
    expect(fs.readFileSync(path.join(p.targetPath, ALERTS_LOG), 'utf8')).not.toContain(secret);
  });
});

describe('Slack and Teams formats', () => {
  it('posts a Slack incoming-webhook message: text plus Block Kit blocks', async () => {
    const hook = await receiver([200]);
    const p = project(`  - on: [failure]\n    webhook: { url: "${hook.url}", format: slack }\n`);
    await raiseAlert(p, { ...FAILURE, job: 'nightly' }, fast);
    const body = JSON.parse(hook.received[0]!.body);
    expect(body.text).toBe('etl Failure: shop / nightly: model orders failed: Binder Error: column "x" not found');
    expect(body.blocks.map((b: { type: string }) => b.type)).toEqual(['header', 'section', 'section']);
    expect(body.blocks[0].text).toEqual({ type: 'plain_text', text: 'etl Failure: shop / nightly' });
    expect(body.blocks[2].fields).toContainEqual({ type: 'mrkdwn', text: '*model*\norders' });
    expect(body.blocks[2].fields).toContainEqual({ type: 'mrkdwn', text: '*job*\nnightly' });
  });

  it('posts a Teams message with one Adaptive Card', async () => {
    const hook = await receiver([202]);
    const p = project(`  - on: [test_warn]\n    webhook: { url: "${hook.url}", format: teams }\n`);
    const [d] = await raiseAlert(p, { event: 'test_warn', node: { unique_id: 'test.shop.t', name: 't', resource_type: 'test', relation: null }, failures: 2, message: 'test t warned (2 failing rows)' }, fast);
    expect(d!.delivered).toBe(true);
    const body = JSON.parse(hook.received[0]!.body);
    expect(body.type).toBe('message');
    expect(body.attachments).toHaveLength(1);
    expect(body.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
    const card = body.attachments[0].content;
    expect(card).toMatchObject({ type: 'AdaptiveCard', version: '1.4' });
    expect(card.body[0]).toMatchObject({ type: 'TextBlock', text: 'etl Test warning: shop', color: 'Warning' });
    expect(card.body[1]).toMatchObject({ type: 'TextBlock', text: 'test t warned (2 failing rows)' });
    expect(card.body[2].facts).toContainEqual({ title: 'failures', value: '2' });
    expect(card.body[2].facts).toContainEqual({ title: 'test', value: 't' });
  });
});

describe('command sink', () => {
  it('runs the command in the project folder with the event as JSON on its stdin', async () => {
    const p = project(`  - name: script\n    on: [failure]\n    command: "cat > received.json; echo \\"$ETL_ALERT_EVENT\\" > event.txt"\n`);
    const [d] = await raiseAlert(p, FAILURE, fast);
    expect(d).toMatchObject({ alert: 'script', sink: 'command', delivered: true, attempts: 1, status: 0 });
    expect(JSON.parse(fs.readFileSync(path.join(p.root, 'received.json'), 'utf8'))).toMatchObject({ version: 1, event: 'failure', project: 'shop', node: { name: 'orders' }, message: FAILURE.message });
    expect(fs.readFileSync(path.join(p.root, 'event.txt'), 'utf8')).toBe('failure\n');
  });

  it('a command that fails is retried, then reported with its last stderr line', async () => {
    const p = project(`  - on: [failure]\n    retries: 1\n    command: "echo try >> tries.txt; echo 'pager unreachable' >&2; exit 3"\n`);
    const [d] = await raiseAlert(p, FAILURE, fast);
    expect(d).toMatchObject({ delivered: false, attempts: 2, status: 3, error: 'exited with 3: pager unreachable' });
    expect(fs.readFileSync(path.join(p.root, 'tries.txt'), 'utf8')).toBe('try\ntry\n');
  });

  it('a command that outlives the timeout is killed and reported', async () => {
    const p = project(`  - on: [failure]\n    retries: 0\n    timeout: 1s\n    command: "exec sleep 30"\n`);
    const [d] = await raiseAlert(p, FAILURE, fast);
    expect(d).toMatchObject({ delivered: false, attempts: 1, error: 'did not finish within 1s' });
  });
});
