/** A webhook receiver on 127.0.0.1 for tests: records every request, and answers each as a plan says. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}

/** `ok`: 204; `refuse`: 500; `hang`: never answered (the sender's deadline ends the attempt). */
export type Answer = 'ok' | 'refuse' | 'hang';

export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  close(): Promise<void>;
}

/** Answers its n-th request (0-based) as `plan(n)` says; by default every one with 204. */
export async function startReceiver(plan: (n: number) => Answer = () => 'ok'): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // Decoded once: a character split between two chunks would not survive decoding each apart.
      const body = Buffer.concat(chunks).toString('utf8');
      const answer = plan(received.length);
      received.push({ headers: req.headers, body, at: Date.now() });
      if (answer === 'ok') res.writeHead(204).end();
      else if (answer === 'refuse') res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
