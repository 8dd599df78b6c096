// A real HTTP server on 127.0.0.1 standing in for a webhook receiver (Slack,
// Teams, a pager). It answers each request with the next status of
// `statuses` ('hang': never answers), keeps what it received, and closes
// itself after `statuses.length` requests: a test can never leave it
// listening, nor be flooded by a sender that retries for ever.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedRequest[];
  /** Resolves once the server has closed (every planned request answered, or close() called). */
  closed: Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(statuses: Array<number | 'hang'>): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const server = http.createServer((req, res) => {
    const index = received.length;
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
      const status = statuses[index] ?? 503;
      if (status !== 'hang') res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
      if (received.length >= statuses.length) stop();
    });
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close(() => resolveClosed());
    // A hanging answer's socket is cut only once the sender has given up on it, or the test ends.
    setImmediate(() => server.closeIdleConnections());
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/etl-test`,
    received,
    closed,
    close: async () => {
      stop();
      server.closeAllConnections();
      await closed;
    },
  };
}
