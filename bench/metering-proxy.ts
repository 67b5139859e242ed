/**
 * The bench's proxy in front of DynamoDB Local: forwards every call unchanged and counts it by operation,
 * and while metering is on also asks DynamoDB for the capacity each call consumed
 * (`ReturnConsumedCapacity: TOTAL` added to calls that did not ask) and adds it up, as read or write
 * request units by operation. DynamoDB Local reports a transaction's items as plain reads and writes;
 * AWS charges a transactional read or write twice, so TransactWriteItems and TransactGetItems count double.
 * It stands where the functions' calls arrive after the local IAM proxy has checked their signatures, so
 * changing a request here breaks nothing (DynamoDB Local does not check signatures).
 */
import { createServer, request as httpRequest, Agent, type Server } from 'node:http';

const READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);
const TRANSACTIONS = new Set(['TransactWriteItems', 'TransactGetItems']);

export interface Capacity {
  /** Read request units (on-demand): a strongly consistent read of up to 4 KB is 1, an eventually consistent one 0.5. */
  readonly readUnits: number;
  /** Write request units (on-demand): a write of up to 1 KB is 1. */
  readonly writeUnits: number;
}

export interface MeteringProxy {
  readonly endpoint: string;
  counts(): Record<string, number>;
  capacity(): Capacity;
  reset(): void;
  metering(on: boolean): void;
  close(): Promise<void>;
}

export async function startMeteringProxy(target: string): Promise<MeteringProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  let counts: Record<string, number> = {};
  let readUnits = 0;
  let writeUnits = 0;
  let metering = false;
  const server: Server = createServer({ keepAlive: true }, (req, res) => {
    const operation = String(req.headers['x-amz-target'] ?? '').replace(/^DynamoDB_\d+\./, '');
    if (operation) counts[operation] = (counts[operation] ?? 0) + 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      const meter = metering && (READS.has(operation) || WRITES.has(operation));
      if (meter) {
        const parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
        parsed['ReturnConsumedCapacity'] ??= 'TOTAL';
        body = Buffer.from(JSON.stringify(parsed));
      }
      const headers = { ...req.headers, 'content-length': String(body.length) };
      const up = httpRequest({ hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers, agent }, (answer) => {
        if (!meter) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('end', () => {
          const text = Buffer.concat(parts);
          try {
            const consumed = (JSON.parse(text.toString('utf8')) as { ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[] }).ConsumedCapacity;
            const units = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []).reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
            const charged = TRANSACTIONS.has(operation) ? 2 * units : units;
            if (READS.has(operation)) readUnits += charged;
            else writeUnits += charged;
          } catch {
            // Not JSON (an error page): nothing consumed.
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.end(text);
        });
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    capacity: () => ({ readUnits, writeUnits }),
    reset: () => {
      counts = {};
      readUnits = 0;
      writeUnits = 0;
    },
    metering: (on) => {
      metering = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
