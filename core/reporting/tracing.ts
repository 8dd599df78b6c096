// OpenTelemetry traces of a run: with OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, one trace per run, a span per
// node and a span per attempt, exported over OTLP/HTTP by the OpenTelemetry
// SDK. The SDK is loaded only then: an ordinary run pays nothing. Spans are
// made from the runner's events (the runner knows nothing of tracing).

import type { RunEvent } from '../runner/events.js';

export interface RunTracing {
  onEvent(event: RunEvent): void;
  /** Ends the run's span and sends what is left; never throws (a collector that is down must not fail the run). */
  finish(status: string): Promise<void>;
}

/** Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces (the OTLP/HTTP convention). */
export function tracesUrl(env: NodeJS.ProcessEnv): string | undefined {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

export async function startRunTracing(run: { runId: string; command: string; project: string; target: string; version: string; job?: string | null; env: NodeJS.ProcessEnv }): Promise<RunTracing> {
  // The packages are CommonJS: loaded from ESM (or a bundle) their exports may sit under `default`.
  const load = async <T extends object>(m: Promise<T>): Promise<T> => {
    const mod = await m;
    return (Object.keys(mod).length <= 2 && 'default' in mod ? (mod as { default: T }).default : mod) as T;
  };
  const [api, { BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    load(import('@opentelemetry/api')),
    load(import('@opentelemetry/sdk-trace-base')),
    load(import('@opentelemetry/exporter-trace-otlp-http')),
    load(import('@opentelemetry/resources')),
  ]);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': run.env.OTEL_SERVICE_NAME ?? 'etl', 'service.version': run.version }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(run.env) }))],
  });
  const tracer = provider.getTracer('etl', run.version);
  const runSpan = tracer.startSpan(`etl ${run.command}`, {
    kind: api.SpanKind.INTERNAL,
    attributes: { 'etl.run_id': run.runId, 'etl.command': run.command, 'etl.project': run.project, 'etl.target': run.target, ...(run.job ? { 'etl.job': run.job } : {}) },
  });
  const runContext = api.trace.setSpan(api.context.active(), runSpan);
  let nodes = 0;
  let failed = 0;
  return {
    onEvent(event) {
      if (event.type !== 'node_finished') return;
      const { node, result } = event;
      nodes++;
      if (result.status === 'error' || result.status === 'fail') failed++;
      const t = result.timing[0];
      const start = t ? new Date(t.started_at) : new Date();
      const end = t ? new Date(t.completed_at) : start;
      const attempts = result.attempts ?? (t ? [{ attempt: 1, status: result.status, started_at: t.started_at, completed_at: t.completed_at, message: result.status === 'success' ? undefined : result.message }] : []);
      const attributes: Record<string, string | number> = {
        'etl.node_id': node.unique_id,
        'etl.resource_type': node.resource_type,
        'etl.status': result.status,
        'etl.retry_count': Math.max(0, attempts.length - 1),
      };
      if (node.relation_name) attributes['etl.relation'] = node.relation_name;
      if (result.rows_affected !== null && result.rows_affected !== undefined) attributes['etl.rows'] = result.rows_affected;
      if (result.adapter_response.bytes_written !== undefined) attributes['etl.bytes_written'] = result.adapter_response.bytes_written;
      if (result.adapter_response.bytes_scanned !== undefined) attributes['etl.bytes_scanned'] = result.adapter_response.bytes_scanned;
      const span = tracer.startSpan(node.name, { startTime: start, attributes }, runContext);
      const failedStatus = result.status === 'error' || result.status === 'fail';
      if (failedStatus) span.setStatus({ code: api.SpanStatusCode.ERROR, message: result.message.split('\n')[0] });
      const nodeContext = api.trace.setSpan(runContext, span);
      for (const a of attempts) {
        const s = tracer.startSpan(`${node.name} attempt ${a.attempt}`, { startTime: new Date(a.started_at), attributes: { 'etl.node_id': node.unique_id, 'etl.attempt': a.attempt, 'etl.status': a.status } }, nodeContext);
        if (a.status === 'error') s.setStatus({ code: api.SpanStatusCode.ERROR, message: (a.message ?? '').split('\n')[0] });
        s.end(new Date(a.completed_at));
      }
      span.end(end);
    },
    async finish(status) {
      runSpan.setAttributes({ 'etl.status': status, 'etl.nodes': nodes, 'etl.failed': failed });
      if (status !== 'success') runSpan.setStatus({ code: api.SpanStatusCode.ERROR, message: status });
      runSpan.end();
      try {
        await provider.forceFlush();
        await provider.shutdown();
      } catch {
        // the collector is down or refused: the run's outcome stands
      }
    },
  };
}
