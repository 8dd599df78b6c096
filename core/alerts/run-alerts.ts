// A run's results as alert events: failed nodes (`failure`), failing and
// warning tests (`test_fail`, `test_warn`), loaders that found the source's
// columns changed (`schema_change`) or ended with a warning (`loader_warn`:
// a column gone, a CDC table reloaded in full), and the SLAs of the models it
// selected (`sla_breach`: the build took longer than `sla:`, or the model's
// last successful build is older than it). A node stopped by an interrupt
// (Ctrl-C, `etl schedule` stopping) is not a failure to alert about.

import type { Manifest, ManifestNode } from '../compiler/manifest.js';
import { parseDuration } from '../project/duration.js';
import type { NodeResult } from '../runner/events.js';
import type { AlertEvent, AlertSubject } from './events.js';

export function subjectOf(node: Pick<ManifestNode, 'unique_id' | 'name' | 'relation_name'> & { resource_type: string }): AlertSubject {
  return { unique_id: node.unique_id, name: node.name, resource_type: node.resource_type, relation: node.relation_name ?? null };
}

interface RunContext {
  runId: string;
  job?: string;
}

/** failure, test_fail, test_warn and duration SLA events of a run's results. */
export function runAlertEvents(manifest: Manifest, results: NodeResult[], run: RunContext): AlertEvent[] {
  const events: AlertEvent[] = [];
  const base = { run_id: run.runId, job: run.job ?? null };
  for (const r of results) {
    const node = manifest.nodes[r.unique_id];
    if (!node) continue;
    const firstLine = r.message.split('\n')[0]!;
    if (node.resource_type === 'loader') {
      const drift = r.adapter_response.schema_changes;
      if (drift && r.status !== 'error') {
        const said = [drift.added.length ? `added ${drift.added.join(', ')}` : '', drift.removed.length ? `removed ${drift.removed.join(', ')}` : '', drift.changed.length ? `retyped ${drift.changed.join(', ')}` : ''].filter(Boolean).join('; ');
        events.push({ ...base, event: 'schema_change', node: subjectOf(node), status: r.status, ...drift, message: `loader ${node.name}: columns changed at the source: ${said}` });
      }
      if (r.status === 'warn') {
        events.push({ ...base, event: 'loader_warn', node: subjectOf(node), message: `loader ${node.name} warned: ${firstLine}` });
        continue;
      }
    }
    if (r.status === 'error' && r.message !== 'interrupted') {
      events.push({ ...base, event: 'failure', node: subjectOf(node), status: r.status, message: `${node.resource_type} ${node.name} failed: ${firstLine}` });
    } else if (r.status === 'fail' || r.status === 'warn') {
      const what = r.failures === null ? '' : ` (${r.failures} failing row${r.failures === 1 ? '' : 's'})`;
      events.push({ ...base, event: r.status === 'fail' ? 'test_fail' : 'test_warn', node: subjectOf(node), failures: r.failures, message: `test ${node.name} ${r.status === 'fail' ? 'failed' : 'warned'}${what}` });
    } else if (r.status === 'success' && typeof node.config.sla === 'string') {
      const sla = parseDuration(node.config.sla);
      if (sla !== undefined && r.execution_time > sla) {
        events.push({ ...base, event: 'sla_breach', node: subjectOf(node), kind: 'duration', sla: node.config.sla, sla_seconds: sla, observed_seconds: round(r.execution_time), message: `${node.resource_type} ${node.name} took ${formatSeconds(r.execution_time)}, over its SLA of ${node.config.sla}` });
      }
    }
  }
  return events;
}

/** Models with an SLA that this run did not build: their last success decides whether the SLA holds. */
export function staleCandidates(manifest: Manifest, results: NodeResult[]): string[] {
  return results.filter((r) => r.status !== 'success' && typeof manifest.nodes[r.unique_id]?.config.sla === 'string').map((r) => r.unique_id);
}

/** sla_breach (stale) events of the candidates whose last successful build (`lastSuccess`, ISO or null: never) is older than their SLA. */
export function staleSlaEvents(manifest: Manifest, candidates: string[], lastSuccess: Map<string, string | null>, run: RunContext, now: Date): AlertEvent[] {
  const events: AlertEvent[] = [];
  for (const id of candidates) {
    const node = manifest.nodes[id]!;
    const slaText = node.config.sla as string;
    const sla = parseDuration(slaText);
    if (sla === undefined) continue;
    const last = lastSuccess.get(id) ?? null;
    const age = last === null ? null : (now.getTime() - new Date(last).getTime()) / 1000;
    if (age !== null && age <= sla) continue;
    events.push({
      run_id: run.runId,
      job: run.job ?? null,
      event: 'sla_breach',
      node: subjectOf(node),
      kind: 'stale',
      sla: slaText,
      sla_seconds: sla,
      observed_seconds: age === null ? null : round(age),
      last_success_at: last,
      message: last === null ? `${node.resource_type} ${node.name} has never been built successfully (SLA ${slaText})` : `${node.resource_type} ${node.name} was last built ${formatSeconds(age!)} ago, over its SLA of ${slaText}`,
    });
  }
  return events;
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

export function formatSeconds(s: number): string {
  if (s < 120) return `${s.toFixed(1)}s`;
  if (s < 7200) return `${(s / 60).toFixed(1)}m`;
  if (s < 172800) return `${(s / 3600).toFixed(1)}h`;
  return `${(s / 86400).toFixed(1)}d`;
}
