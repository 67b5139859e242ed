/**
 * A counting proxy in front of DynamoDB: forwards every request unchanged and counts it by operation
 * (the `X-Amz-Target` header, e.g. `DynamoDB_20120810.GetItem`). The local stack pointed at it shows
 * exactly which calls the deployed bundles make per HTTP request.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';

export interface CountingProxy {
  readonly endpoint: string;
  /** Calls since the last reset, by operation name. */
  counts(): Record<string, number>;
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  let counts: Record<string, number> = {};
  const server: Server = createServer((req, res) => {
    const op = String(req.headers['x-amz-target'] ?? 'unknown').split('.').pop() ?? 'unknown';
    counts[op] = (counts[op] ?? 0) + 1;
    const forward = httpRequest(
      { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    reset: () => {
      counts = {};
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
