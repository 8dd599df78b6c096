// OpenTelemetry traces (core/reporting/tracing.ts): with
// OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP/HTTP receiver on
// 127.0.0.1 (the test's own server, JSON bodies), a build exports one trace:
// a span for the run, one per node and one per attempt, with the relation,
// rows, status and retry count. Also: every --log-format json event carries
// the run id, and node events the node id.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { etlYml, killAll, PG_URL, pgTestSchemas, readJson, removeTempDirs, runCli, writeProject } from './helpers.js';

interface Attr {
  key: string;
  value: { stringValue?: string; intValue?: number | string; doubleValue?: number };
}
interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: Attr[];
  status?: { code?: number };
}

/** An OTLP/HTTP receiver: collects the spans POSTed to /v1/traces; closed after each test. */
let server: http.Server | undefined;
const spans: Span[] = [];
async function receiver(): Promise<string> {
  spans.length = 0;
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.method === 'POST') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Span[] }> }> };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}
afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});
afterAll(async () => {
  await killAll();
  removeTempDirs();
});

const attr = (s: Span, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : (v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue));
};

describe('OpenTelemetry traces', () => {
  it('a build exports one trace: the run, a span per node and per attempt, with relation, rows, status and retry count', async () => {
    const endpoint = await receiver();
    const dir = writeProject({
      'etl.yml': etlYml('traced'),
      'models/a.sql': '{{config materialized="table"}}\nselect * from range(5) as t(id)\n',
      'models/b.sql': 'select id from {{ref "a"}}\n',
    });
    const r = await runCli(['build'], { cwd: dir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    expect(r.code, r.output).toBe(0);
    const runId = readJson(dir, 'target/run_results.json').metadata.invocation_id as string;
    const root = spans.find((s) => s.name === 'etl build')!;
    expect(root).toBeDefined();
    expect(root.parentSpanId || undefined).toBeUndefined();
    expect(attr(root, 'etl.run_id')).toBe(runId);
    expect(attr(root, 'etl.status')).toBe('success');
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([root.traceId]));
    const a = spans.find((s) => s.name === 'a')!;
    expect(a.parentSpanId).toBe(root.spanId);
    expect([attr(a, 'etl.relation'), attr(a, 'etl.rows'), attr(a, 'etl.status'), attr(a, 'etl.retry_count'), attr(a, 'etl.node_id')]).toEqual(['"main"."a"', 5, 'success', 0, 'model.traced.a']);
    const attempts = spans.filter((s) => s.parentSpanId === a.spanId);
    expect(attempts.map((s) => [s.name, attr(s, 'etl.attempt')])).toEqual([['a attempt 1', 1]]);
    expect(spans.find((s) => s.name === 'b')!.parentSpanId).toBe(root.spanId);
  });

  it('without the variable nothing is sent, and a collector that is down does not fail the run', async () => {
    const endpoint = await receiver();
    const dir = writeProject({ 'etl.yml': etlYml('traced'), 'models/a.sql': 'select 1 as id\n' });
    expect((await runCli(['build'], { cwd: dir })).code).toBe(0);
    expect(spans).toEqual([]);
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    // (the exporter's own timeout, shortened: it retries a refused export until then)
    const r = await runCli(['build'], { cwd: dir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_TIMEOUT: '500' } });
    expect(r.code, r.output).toBe(0);
  });
});

describe('OpenTelemetry traces on Postgres', () => {
  const pgTest = pgTestSchemas();
  it('a node retried after serialization failures has a span per attempt and its retry count', async () => {
    const endpoint = await receiver();
    const schema = pgTest.schema();
    const admin: pg.Client = pgTest.admin;
    await admin.query(`create schema "${schema}"; create function "${schema}".conflict() returns int language plpgsql as $$ begin raise exception 'could not serialize access' using errcode = '40001'; end $$`);
    const dir = writeProject({
      'etl.yml': `name: traced\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 1 }\n`,
      'models/c.sql': `{{config materialized="table" retries=2 retry_backoff="none"}}\nselect "${schema}".conflict() as x\n`,
    });
    const r = await runCli(['build', '--no-check'], { cwd: dir, env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    expect(r.code, r.output).toBe(1);
    const c = spans.find((s) => s.name === 'c')!;
    expect([attr(c, 'etl.status'), attr(c, 'etl.retry_count')]).toEqual(['error', 2]);
    expect(c.status?.code).toBe(2);
    expect(spans.filter((s) => s.parentSpanId === c.spanId).map((s) => attr(s, 'etl.attempt'))).toEqual([1, 2, 3]);
    expect(attr(spans.find((s) => s.name === 'etl build')!, 'etl.status')).toBe('error');
  });
});

describe('--log-format json', () => {
  it('every event carries the run id; node events the node id', async () => {
    const dir = writeProject({ 'etl.yml': etlYml('logged'), 'models/a.sql': 'select 1 as id\n', 'models/b.sql': 'select * from {{ref "a"}}\n' });
    const r = await runCli(['build', '--log-format', 'json', '-s', 'a', 'nothing_like_this'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    const runId = readJson(dir, 'target/run_results.json').metadata.invocation_id as string;
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['warning', 'run_started', 'node_started', 'node_finished', 'run_finished']));
    for (const e of events) expect(e.run_id, JSON.stringify(e)).toBe(runId);
    const nodeEvents = events.filter((e) => String(e.event).startsWith('node_'));
    expect(nodeEvents.length).toBeGreaterThan(0);
    for (const e of nodeEvents) expect(e.node_id).toBe('model.logged.a');
  });
});

