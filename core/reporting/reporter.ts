// Turns run events into output: a line per node with status, time and rows
// (coloured, with a progress bar, on a terminal; plain otherwise), or one JSON
// object per event with --log-format json. Every line is scrubbed of secrets.

import { styleText } from 'node:util';
import type cliProgress from 'cli-progress';
import type { Secrets } from '../project/secrets.js';
import { redact } from '../project/secrets.js';
import type { NodeResult, RunEvent } from '../runner/events.js';
import type { ManifestNode } from '../compiler/manifest.js';
import { formatTable } from './table.js';
import { formatBytes } from './bytes.js';

export type LogFormat = 'text' | 'json';

export interface Reporter {
  onEvent(event: RunEvent): void;
  /** Free-form message (warnings, notices). */
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  summary(results: NodeResult[], elapsedSeconds: number, interrupted: boolean): void;
  close(): void;
}

export interface ReporterOptions {
  format: LogFormat;
  secrets?: Secrets;
  out?: NodeJS.WriteStream;
  /** Colours and a progress bar; defaults to whether `out` is a terminal. */
  tty?: boolean;
  /** The run's id: every JSON event carries it as run_id. */
  runId?: string;
}

type Style = Parameters<typeof styleText>[0];

export async function createReporter(options: ReporterOptions): Promise<Reporter> {
  const out = options.out ?? process.stdout;
  const scrub = (s: string) => redact(s, options.secrets);
  if (options.format === 'json') return new JsonReporter((line) => out.write(`${scrub(line)}\n`), options.runId);
  const tty = options.tty ?? Boolean(out.isTTY);
  // The progress bar's library (and its string-width helpers) is loaded only
  // for a terminal: ~10 ms of every run's start-up otherwise.
  const progress = tty ? (await import('cli-progress')).default : undefined;
  return new TextReporter(out, tty, scrub, progress);
}

const STATUS_STYLE: Record<NodeResult['status'], Style> = {
  success: 'green',
  pass: 'green',
  warn: 'yellow',
  error: 'red',
  fail: 'red',
  skipped: 'yellow',
};

const STATUS_LABEL: Record<NodeResult['status'], string> = {
  success: 'OK',
  pass: 'PASS',
  warn: 'WARN',
  error: 'ERROR',
  fail: 'FAIL',
  skipped: 'SKIP',
};

function describeNode(node: ManifestNode): string {
  if (node.resource_type === 'test') return `test ${node.name}`;
  const kind = node.resource_type === 'model' ? node.config.materialized : node.resource_type;
  const where = node.relation_name ? `${node.schema}.${node.alias}` : node.name;
  return `${kind} ${where}`;
}

/** A loader's line: rows read, loaded, deleted (deletes: detect) and rejected, bytes and throughput. */
function loadSummary(result: NodeResult): string {
  const a = result.adapter_response;
  // CDC loaders say what they read: the change stream's positions, or why the table was loaded in full.
  const cdc = a.cdc?.summary;
  return `${cdc ? `${cdc}: ` : ''}${a.rows_read} read, ${a.rows_loaded ?? 0} loaded, ${a.rows_deleted !== undefined ? `${a.rows_deleted} deleted, ` : ''}${a.rows_rejected ?? 0} rejected, ${formatBytes(a.bytes ?? 0)}, ${a.rows_per_second ?? 0} rows/s, `;
}

class TextReporter implements Reporter {
  private bar?: cliProgress.SingleBar;
  private done = 0;
  private readonly failures: Array<{ node: ManifestNode; result: NodeResult }> = [];

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty: boolean,
    private readonly scrub: (s: string) => string,
    private readonly progress?: typeof cliProgress,
  ) {}

  private paint(style: Style, text: string): string {
    return this.tty ? styleText(style, text) : text;
  }

  private line(text: string): void {
    const clean = this.scrub(text);
    if (this.bar) {
      // Clear the bar, print, and let the next update redraw it.
      this.out.write(`\r\x1b[2K${clean}\n`);
      this.bar.render();
    } else this.out.write(`${clean}\n`);
  }

  onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'run_started':
        this.line(`Running ${event.total} node${event.total === 1 ? '' : 's'} with ${event.threads} thread${event.threads === 1 ? '' : 's'}`);
        if (this.progress && event.total > 0) {
          this.bar = new this.progress.SingleBar(
            { format: '  [{bar}] {value}/{total} {eta_formatted} left', hideCursor: true, clearOnComplete: true, stream: this.out, barsize: 30 },
            this.progress.Presets.shades_classic,
          );
          this.bar.start(event.total, 0);
        }
        break;
      case 'node_started':
        break;
      case 'node_retry':
        this.line(this.paint('yellow', `  retry ${event.attempt} of ${describeNode(event.node)} in ${(event.delayMs / 1000).toFixed(1)}s: ${event.reason}`));
        break;
      case 'node_finished': {
        const { result, node } = event;
        this.done++;
        this.bar?.update(this.done);
        if (result.status === 'error' || result.status === 'fail' || result.status === 'warn') this.failures.push({ node, result });
        const index = event.index ? `${String(event.index).padStart(String(event.total).length)} of ${event.total}` : ' '.repeat(String(event.total).length * 2 + 4);
        const label = this.paint(STATUS_STYLE[result.status], STATUS_LABEL[result.status].padEnd(5));
        const what = describeNode(node);
        const quarantined = result.quarantined ? `${result.quarantined} quarantined, ` : '';
        const load = result.adapter_response.rows_read;
        const rows =
          load !== undefined
            ? loadSummary(result)
            : result.rows_affected !== null && result.rows_affected !== undefined
              ? `${result.rows_affected} rows, ${quarantined}`
              : '';
        const detail = result.status === 'skipped' ? result.message : `${rows}${result.execution_time.toFixed(2)}s`;
        const dots = '.'.repeat(Math.max(3, 56 - what.length));
        this.line(`${index} ${label} ${what} ${this.paint('dim', dots)} [${detail}]`);
        break;
      }
    }
  }

  info(message: string): void {
    this.line(message);
  }

  warn(message: string): void {
    this.line(this.paint('yellow', `warning: ${message}`));
  }

  error(message: string): void {
    this.line(this.paint('red', message));
  }

  summary(results: NodeResult[], elapsedSeconds: number, interrupted: boolean): void {
    this.bar?.stop();
    this.bar = undefined;
    const count = (s: NodeResult['status']) => results.filter((r) => r.status === s).length;
    for (const { node, result } of this.failures) {
      this.out.write('\n');
      const heading = { fail: 'Failure', warn: 'Warning', error: 'Error' }[result.status as 'fail' | 'warn' | 'error'];
      const about = node.attached_node ? `, on ${node.attached_node.split('.').slice(2).join('.')}` : '';
      this.line(this.paint(result.status === 'warn' ? 'yellow' : 'red', `${heading} in ${node.resource_type} ${node.name}${about} (${node.original_file_path})`));
      for (const l of result.message.split('\n')) this.line(`  ${l}`);
      if (result.failing_rows_sample) {
        this.line(`  first ${result.failing_rows_sample.rows.length} failing row${result.failing_rows_sample.rows.length === 1 ? "" : "s"}:`);
        for (const l of formatTable(result.failing_rows_sample.columns, result.failing_rows_sample.rows).split('\n')) this.line(`  ${l}`);
      }
      if (result.compiled_path) this.line(`  compiled SQL: ${result.compiled_path}`);
    }
    const parts = [`${count('success') + count('pass')} succeeded`];
    if (count('warn')) parts.push(`${count('warn')} warned`);
    parts.push(`${count('error') + count('fail')} failed`, `${count('skipped')} skipped`);
    const head = interrupted ? 'Interrupted after' : 'Finished';
    const ok = count('error') + count('fail') === 0 && !interrupted;
    this.out.write('\n');
    this.line(this.paint(ok ? 'green' : 'red', `${head} ${results.length} node${results.length === 1 ? '' : 's'} in ${elapsedSeconds.toFixed(2)}s: ${parts.join(', ')}.`));
  }

  close(): void {
    this.bar?.stop();
  }
}

class JsonReporter implements Reporter {
  constructor(
    private readonly write: (line: string) => void,
    private readonly runId?: string,
  ) {}

  /** Every event carries the run id; a node's events its node id (= unique_id) too. */
  private emit(event: string, fields: Record<string, unknown>): void {
    const node = typeof fields.unique_id === 'string' ? { node_id: fields.unique_id } : {};
    this.write(JSON.stringify({ ts: new Date().toISOString(), event, ...(this.runId ? { run_id: this.runId } : {}), ...node, ...fields }));
  }

  onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'run_started':
        this.emit('run_started', { total: event.total, threads: event.threads });
        break;
      case 'node_started':
        this.emit('node_started', { index: event.index, total: event.total, unique_id: event.node.unique_id });
        break;
      case 'node_retry':
        this.emit('node_retry', { unique_id: event.node.unique_id, attempt: event.attempt, delay_ms: event.delayMs, reason: event.reason });
        break;
      case 'node_finished': {
        const r = event.result;
        this.emit('node_finished', {
          index: event.index,
          total: event.total,
          unique_id: r.unique_id,
          status: r.status,
          execution_time: r.execution_time,
          rows_affected: r.rows_affected,
          ...(r.adapter_response.rows_read !== undefined ? { load: { rows_read: r.adapter_response.rows_read, rows_loaded: r.adapter_response.rows_loaded, rows_rejected: r.adapter_response.rows_rejected, ...(r.adapter_response.rows_deleted !== undefined ? { rows_deleted: r.adapter_response.rows_deleted } : {}), bytes: r.adapter_response.bytes, rows_per_second: r.adapter_response.rows_per_second } } : {}),
          message: r.message,
          compiled_path: r.compiled_path,
        });
        break;
      }
    }
  }

  info(message: string): void {
    this.emit('info', { message });
  }

  warn(message: string): void {
    this.emit('warning', { message });
  }

  error(message: string): void {
    this.emit('error', { message });
  }

  summary(results: NodeResult[], elapsedSeconds: number, interrupted: boolean): void {
    const counts: Record<string, number> = {};
    for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
    this.emit('run_finished', { elapsed: elapsedSeconds, interrupted, counts });
  }

  close(): void {}
}
