// The bodies a webhook posts: etl's own payload as is (`format: json`), or
// the shapes Slack and Microsoft Teams incoming webhooks accept.
// Slack: `text` (shown in notifications) and Block Kit `blocks`.
// Teams: a message with one Adaptive Card attachment, what a Teams
// "When a Teams webhook request is received" workflow posts to a channel.

import type { AlertPayload } from './events.js';

export type WebhookFormat = 'json' | 'slack' | 'teams';

const TITLES: Record<AlertPayload['event'], string> = {
  failure: 'Failure',
  sla_breach: 'SLA breached',
  test_fail: 'Test failed',
  test_warn: 'Test warning',
  freshness_error: 'Source not fresh',
  cost_spike: 'Cost over budget',
  schema_change: 'Source columns changed',
  loader_warn: 'Loader warning',
};

/** Title, then name/value facts: what both chat formats show. */
function facts(p: AlertPayload): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ['project', p.project],
    ['target', p.target],
  ];
  if (p.job) out.push(['job', p.job]);
  if (p.node) out.push([p.node.resource_type, p.node.name]);
  for (const [k, v] of Object.entries(p.details)) if (v !== null && v !== undefined && typeof v !== 'object') out.push([k, String(v)]);
  if (p.run_id) out.push(['run', p.run_id]);
  out.push(['at', p.occurred_at]);
  return out;
}

export function title(p: AlertPayload): string {
  return `etl ${TITLES[p.event]}: ${p.project}${p.job ? ` / ${p.job}` : ''}`;
}

export function webhookBody(p: AlertPayload, format: WebhookFormat): unknown {
  if (format === 'slack') {
    return {
      text: `${title(p)}: ${p.message}`,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: title(p).slice(0, 150) } },
        { type: 'section', text: { type: 'mrkdwn', text: p.message.slice(0, 3000) } },
        { type: 'section', fields: facts(p).slice(0, 10).map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${v}`.slice(0, 2000) })) },
      ],
    };
  }
  if (format === 'teams') {
    return {
      type: 'message',
      attachments: [
        {
          contentType: 'application/vnd.microsoft.card.adaptive',
          contentUrl: null,
          content: {
            $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
            type: 'AdaptiveCard',
            version: '1.4',
            body: [
              { type: 'TextBlock', size: 'Medium', weight: 'Bolder', text: title(p), wrap: true, color: p.event === 'test_warn' || p.event === 'loader_warn' || p.event === 'schema_change' ? 'Warning' : 'Attention' },
              { type: 'TextBlock', text: p.message, wrap: true },
              { type: 'FactSet', facts: facts(p).map(([k, v]) => ({ title: k, value: v })) },
            ],
          },
        },
      ],
    };
  }
  return p;
}
