// Alerts: the one way anything in etl tells a person that something needs
// them (a failure, a test, an SLA, a stale source, a cost spike). Callers
// raise typed events (events.ts); each alert of etl.yml whose `on:` lists
// the event delivers it (deliver.ts). An alert that cannot be delivered is
// logged and recorded in target/alerts.jsonl, and never fails the caller:
// raiseAlerts() does not throw.

import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { AlertConfig } from '../project/orchestration.js';
import { redact, type Secrets } from '../project/secrets.js';
import { deliverAlert, type AlertDelivery, type DeliverOptions } from './deliver.js';
import { alertPayload, type AlertEvent } from './events.js';

export type { AlertEvent, AlertPayload, AlertSubject } from './events.js';
export type { AlertDelivery } from './deliver.js';

/** What raising an alert needs to know of the project: a ProjectScan has all of it. */
export interface AlertContext {
  name: string;
  targetName: string;
  /** target/: where deliveries are recorded (alerts.jsonl). */
  targetPath: string;
  /** The project's root: where a command sink runs. */
  root: string;
  alerts: AlertConfig[];
  secrets: Secrets;
}

export interface RaiseOptions {
  /** Told of each alert that could not be delivered (already free of secrets). */
  onUndelivered?: (message: string, delivery: AlertDelivery) => void;
  /** The waits between tries (tests make them short). */
  backoff?: DeliverOptions['backoff'];
}

/** The file every delivery (and every failure to deliver) is appended to, one JSON object a line. */
export const ALERTS_LOG = 'alerts.jsonl';

/** True when some alert of the project listens for `event`: callers skip building events nobody receives. */
export function wantsAlert(project: Pick<AlertContext, 'alerts'>, event: AlertEvent['event']): boolean {
  return project.alerts.some((a) => a.on.includes(event));
}

/** Delivers each event to every alert listening for it; resolves once all are delivered or given up. Never throws. */
export async function raiseAlerts(project: AlertContext, events: AlertEvent[], options: RaiseOptions = {}): Promise<AlertDelivery[]> {
  const jobs: Array<Promise<AlertDelivery>> = [];
  for (const event of events) {
    const payload = alertPayload(event, project);
    for (const alert of project.alerts) {
      if (alert.on.includes(event.event)) jobs.push(deliverAlert(alert, payload, { cwd: project.root, backoff: options.backoff }));
    }
  }
  if (jobs.length === 0) return [];
  const deliveries = (await Promise.all(jobs)).map((d) => (d.error ? { ...d, error: redact(d.error, project.secrets) } : d));
  try {
    mkdirSync(project.targetPath, { recursive: true });
    const at = new Date().toISOString();
    appendFileSync(path.join(project.targetPath, ALERTS_LOG), deliveries.map((d) => `${redact(JSON.stringify({ at, ...d }), project.secrets)}\n`).join(''));
  } catch {
    // Recording is best effort, as delivery is: the run's outcome stands.
  }
  for (const d of deliveries) if (!d.delivered) options.onUndelivered?.(redact(describeUndelivered(d), project.secrets), d);
  return deliveries;
}

/** What is logged of an alert that could not be delivered. */
export function describeUndelivered(d: AlertDelivery): string {
  return `alert "${d.alert}" (${d.event}) not delivered to ${d.destination} after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}: ${d.error} (recorded in target/${ALERTS_LOG})`;
}

/** One event: raiseAlerts for a single event (the cost report's cost_spike, a job's sla_breach). */
export function raiseAlert(project: AlertContext, event: AlertEvent, options: RaiseOptions = {}): Promise<AlertDelivery[]> {
  return raiseAlerts(project, [event], options);
}
