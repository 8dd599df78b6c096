// The `jobs:` and `alerts:` of etl.yml: each entry validated with file:line
// errors (an invalid cron expression, an unknown time zone, an unknown event,
// an alert without a sink, a webhook URL that is not http(s)), and each
// alert's settings rendered ({{env_var 'ETL_ENV_SECRET_...'}} in a URL or a
// header is remembered as a secret, so it is masked wherever it appears).
// Checked only when etl.yml has these keys: a project without them pays nothing.

import { createRequire } from 'node:module';
import * as z from 'zod';
import type { Diagnostic } from '../errors.js';
import { closestMatch } from '../errors.js';
import { DURATION_HINT, DURATION_PATTERN, parseDuration } from './duration.js';
import { interpolateConfigString, type Secrets } from './secrets.js';
import { strictObject, validate, type YamlFile } from './yaml.js';

/** The events an alert may be raised for (core/alerts). */
export const ALERT_EVENTS = ['failure', 'sla_breach', 'test_fail', 'test_warn', 'freshness_error', 'cost_spike', 'schema_change', 'loader_warn'] as const;
export type AlertEventName = (typeof ALERT_EVENTS)[number];

/** The commands a job may run: the ones that build or check something. */
export const JOB_COMMANDS = ['build', 'run', 'test', 'seed', 'snapshot', 'retry', 'source'] as const;

export interface JobConfig {
  name: string;
  cron: string;
  /** IANA zone the cron expression is read in; undefined: the machine's. */
  timezone?: string;
  /** The etl command as written, e.g. "build -s tag:daily". */
  command: string;
  /** `command` split into arguments. */
  args: string[];
  /** The run must finish within this many seconds of its start. */
  slaSeconds?: number;
  sla?: string;
  catchup: boolean;
  /** Where it is declared, for messages. */
  line: number;
}

export interface AlertConfig {
  name: string;
  on: AlertEventName[];
  webhook?: { url: string; headers: Record<string, string>; format: 'json' | 'slack' | 'teams' };
  command?: string;
  timeoutSeconds: number;
  retries: number;
}

const duration = z.string().regex(DURATION_PATTERN, DURATION_HINT);

function buildSchemas() {
  const job = strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a job name is letters, digits, "_", "-" and "."'),
    cron: z.string(),
    timezone: z.string(),
    command: z.string(),
    sla: duration,
    catchup: z.boolean(),
  }).partial({ timezone: true, command: true, sla: true, catchup: true });
  const alert = strictObject({
    name: z.string(),
    on: z.array(z.enum(ALERT_EVENTS)).min(1),
    webhook: strictObject({
      url: z.string(),
      headers: z.record(z.string(), z.string()),
      format: z.enum(['json', 'slack', 'teams']),
    }).partial({ headers: true, format: true }),
    command: z.string(),
    timeout: duration,
    retries: z.number().int().min(0).max(10),
  }).partial({ name: true, webhook: true, command: true, timeout: true, retries: true });
  return { job, alert };
}

// Built on first use: a project without jobs or alerts never pays for them.
let built: ReturnType<typeof buildSchemas> | undefined;
const schemas = () => (built ??= buildSchemas());

/** Reads `jobs:`; pushes a diagnostic per problem. */
export function readJobs(entries: unknown[], yaml: YamlFile, errors: Diagnostic[]): JobConfig[] {
  const { job: jobSchema } = schemas();
  const jobs: JobConfig[] = [];
  const seen = new Map<string, number>();
  entries.forEach((entry, i) => {
    const at = ['jobs', i];
    const job = validate(jobSchema, entry, yaml, at, errors, `job ${i + 1} of etl.yml jobs`);
    if (!job) return;
    const line = yaml.locate(at).line;
    const first = seen.get(job.name);
    if (first !== undefined) {
      errors.push(yaml.diagnostic([...at, 'name'], `job "${job.name}" is declared twice`, `it is also declared on line ${first}; give each job its own name`));
      return;
    }
    seen.set(job.name, line);
    if (job.timezone !== undefined && !isTimeZone(job.timezone)) {
      const match = closestMatch(job.timezone, Intl.supportedValuesOf('timeZone'));
      errors.push(yaml.diagnostic([...at, 'timezone'], `unknown time zone "${job.timezone}" for job "${job.name}"`, match ? `did you mean "${match}"?` : 'an IANA name such as Europe/Berlin, America/New_York or UTC'));
      return;
    }
    const cronError = cronProblem(job.cron, job.timezone);
    if (cronError) {
      errors.push(yaml.diagnostic([...at, 'cron'], `invalid cron expression "${job.cron}" for job "${job.name}": ${cronError}`, 'five fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * *" (a sixth, leading field is seconds)'));
      return;
    }
    const command = job.command ?? 'build';
    const args = splitCommand(command);
    if ('error' in args) {
      errors.push(yaml.diagnostic([...at, 'command'], `job "${job.name}": ${args.error}`));
      return;
    }
    const verb = args.argv[0] === 'etl' ? args.argv[1] : args.argv[0];
    if (!verb || !(JOB_COMMANDS as readonly string[]).includes(verb)) {
      const match = verb ? closestMatch(verb, JOB_COMMANDS) : undefined;
      errors.push(yaml.diagnostic([...at, 'command'], `job "${job.name}" runs "${command}", which is not an etl command a job can run`, `${match ? `did you mean "${match}"? ` : ''}a job runs one of: ${JOB_COMMANDS.join(', ')} (e.g. "build -s tag:daily")`));
      return;
    }
    jobs.push({
      name: job.name,
      cron: job.cron,
      timezone: job.timezone,
      command,
      args: args.argv[0] === 'etl' ? args.argv.slice(1) : args.argv,
      sla: job.sla,
      slaSeconds: job.sla ? parseDuration(job.sla) : undefined,
      catchup: job.catchup ?? false,
      line,
    });
  });
  return jobs;
}

/** Reads `alerts:`, rendering env_var/var in URLs, headers and commands; pushes a diagnostic per problem. */
export function readAlerts(entries: unknown[], yaml: YamlFile, vars: Record<string, unknown>, env: NodeJS.ProcessEnv, secrets: Secrets, errors: Diagnostic[]): AlertConfig[] {
  const { alert: alertSchema } = schemas();
  const alerts: AlertConfig[] = [];
  entries.forEach((entry, i) => {
    const at = ['alerts', i];
    const alert = validate(alertSchema, entry, yaml, at, errors, `alert ${i + 1} of etl.yml alerts`);
    if (!alert) return;
    const name = alert.name ?? `alerts[${i}]`;
    if (!alert.webhook === !alert.command) {
      errors.push(yaml.diagnostic(at, alert.webhook ? `alert "${name}" has both a webhook and a command` : `alert "${name}" has no sink`, alert.webhook ? 'give each alert one sink; declare a second alert for the other' : 'add `webhook: { url: "https://..." }` or `command: "./notify.sh"` (the event arrives as JSON on its stdin)'));
      return;
    }
    const render = (value: string, path: Array<string | number>, holdsSecret: boolean): string | undefined => {
      const r = interpolateConfigString(value, vars, env, secrets, holdsSecret);
      if ('error' in r) {
        errors.push(yaml.diagnostic([...at, ...path], `alert "${name}": ${r.error}`, r.hint));
        return undefined;
      }
      return r.value;
    };
    const config: AlertConfig = {
      name,
      on: [...new Set(alert.on)],
      timeoutSeconds: alert.timeout ? parseDuration(alert.timeout)! : 10,
      retries: alert.retries ?? 3,
    };
    if (alert.webhook) {
      const url = render(alert.webhook.url, ['webhook', 'url'], false);
      if (url === undefined) return;
      let parsed: URL | undefined;
      try {
        parsed = new URL(url);
      } catch {
        parsed = undefined;
      }
      if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
        // The URL as written, not as rendered: the rendered one may hold a secret.
        errors.push(yaml.diagnostic([...at, 'webhook', 'url'], `alert "${name}": the webhook URL ${JSON.stringify(alert.webhook.url)} is not an http(s) URL`, 'write https://host/path (or http:// for a receiver on this machine)'));
        return;
      }
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(alert.webhook.headers ?? {})) {
        const v = render(value, ['webhook', 'headers', key], true);
        if (v === undefined) return;
        headers[key] = v;
      }
      config.webhook = { url, headers, format: alert.webhook.format ?? 'json' };
    } else {
      const command = render(alert.command!, ['command'], false);
      if (command === undefined) return;
      config.command = command;
    }
    alerts.push(config);
  });
  return alerts;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const requireModule = createRequire(import.meta.url);

/** What croner finds wrong with an expression, or undefined when it reads it. */
function cronProblem(expression: string, timezone: string | undefined): string | undefined {
  const { Cron } = requireModule('croner') as typeof import('croner');
  try {
    new Cron(expression, { paused: true, timezone }).nextRun();
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^CronPattern:\s*/, '');
  }
}

/** Splits a command line as a shell would (single and double quotes, backslash escapes), without running one. */
export function splitCommand(text: string): { argv: string[] } | { error: string } {
  const argv: string[] = [];
  let current: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) current += text[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      current ??= '';
    } else if (c === '\\' && i + 1 < text.length) current = (current ?? '') + text[++i];
    else if (/\s/.test(c)) {
      if (current !== undefined) argv.push(current);
      current = undefined;
    } else current = (current ?? '') + c;
  }
  if (quote) return { error: `the command has an unclosed ${quote}` };
  if (current !== undefined) argv.push(current);
  return { argv };
}
