// What an alert says: one typed event per kind, and the JSON payload every
// sink receives (README "Schedules and alerts" documents it; version 1).
// Raising an alert is core/alerts/index.ts; turning a run's results into
// events is core/alerts/run-alerts.ts.

import type { AlertEventName } from '../project/orchestration.js';

export { ALERT_EVENTS, type AlertEventName } from '../project/orchestration.js';

/** The node or source an event is about. */
export interface AlertSubject {
  unique_id: string;
  name: string;
  resource_type: string;
  relation: string | null;
}

interface AlertBase {
  /** One line a person reads first. */
  message: string;
  run_id?: string | null;
  /** The scheduled job (etl.yml jobs:) the run belongs to. */
  job?: string | null;
  /** When it happened; defaults to when it is raised. */
  occurred_at?: string;
}

export type AlertEvent =
  /** A node (node set) or a whole job run (no node) failed. */
  | (AlertBase & { event: 'failure'; node?: AlertSubject; status: string; exit_code?: number | null })
  | (AlertBase & { event: 'test_fail' | 'test_warn'; node: AlertSubject; failures: number | null })
  /**
   * An SLA missed. `duration`: a model's build, or a job's run, took longer than the SLA.
   * `stale`: a model's last successful build is older than the SLA.
   * `deadline`: a job's run had not finished when its SLA ran out (raised while it runs).
   */
  | (AlertBase & { event: 'sla_breach'; node?: AlertSubject; kind: 'duration' | 'stale' | 'deadline'; sla: string; sla_seconds: number; observed_seconds: number | null; last_success_at?: string | null })
  /** A loader found the source's columns changed (added, removed, retyped) and handled it per on_schema_change; `status`: success, or warn (a column gone). */
  | (AlertBase & { event: 'schema_change'; node: AlertSubject; status: string; added: string[]; removed: string[]; changed: string[] })
  /** A loader ended with a warning: a column gone at the source, a CDC table reloaded in full (why: the message). */
  | (AlertBase & { event: 'loader_warn'; node: AlertSubject })
  | (AlertBase & { event: 'freshness_error'; node: AlertSubject; max_loaded_at: string | null; age_seconds: number | null; error_after: string | null })
  /** Month-to-date spend crossing alert_at of the budget (`budget: { monthly, alert_at }`; core/history/report.ts budgetCheck). */
  | (AlertBase & { event: 'cost_spike'; period: string; cost: number; budget: number; alert_at: number; currency?: string; run_cost?: number });

/** The JSON body of a `format: json` webhook and the stdin of a command sink. */
export interface AlertPayload {
  version: 1;
  event: AlertEventName;
  project: string;
  target: string;
  occurred_at: string;
  run_id: string | null;
  job: string | null;
  message: string;
  node: AlertSubject | null;
  /** The event's own fields (status, failures, sla, ...). */
  details: Record<string, unknown>;
}

export function alertPayload(event: AlertEvent, project: { name: string; targetName: string }): AlertPayload {
  const { event: name, message, run_id, job, occurred_at, node, ...details } = event as AlertEvent & { node?: AlertSubject };
  return {
    version: 1,
    event: name,
    project: project.name,
    target: project.targetName,
    occurred_at: occurred_at ?? new Date().toISOString(),
    run_id: run_id ?? null,
    job: job ?? null,
    message,
    node: node ?? null,
    details,
  };
}
