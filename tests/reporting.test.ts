// The text reporter on a terminal (colours, progress bar: its library is
// loaded only then) and off one, writing to an in-memory stream.

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createReporter } from '../core/reporting/reporter.js';

function capture(): { out: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  // cli-progress asks a terminal stream for its width.
  Object.assign(stream, { isTTY: true, columns: 100, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  return { out: stream as unknown as NodeJS.WriteStream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('text reporter', () => {
  it('on a terminal draws a progress bar and colours; off one, plain lines only', async () => {
    for (const tty of [true, false]) {
      const { out, text } = capture();
      const reporter = await createReporter({ format: 'text', out, tty, secrets: { values: new Set(['s3cret']) } });
      reporter.onEvent({ type: 'run_started', total: 2, threads: 1 });
      reporter.info('connecting with s3cret');
      reporter.close();
      await new Promise((r) => setImmediate(r));
      const output = text();
      expect(output).toContain('Running 2 nodes with 1 thread');
      expect(output).toContain('connecting with ****');
      expect(output).not.toContain('s3cret');
      // The bar's track (░) only on a terminal.
      expect(output.includes('░'), `tty=${tty}: ${JSON.stringify(output)}`).toBe(tty);
    }
  });
});
