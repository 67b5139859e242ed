/**
 * A counting proxy in front of DynamoDB: forwards every request unchanged and counts it by operation
 * (the `X-Amz-Target` header, e.g. `DynamoDB_20120810.GetItem`). The local stack pointed at it shows
 * exactly which calls the deployed bundles make per HTTP request.
 *
 * It also injects the faults DynamoDB Local cannot produce: throttling (400
 * ProvisionedThroughputExceededException), a 500 InternalServerError, or no answer at all (a hang, which
 * the SDK's request timeout ends), for the calls of one operation, optionally on one table only; and a
 * secondary index that has not caught up yet (`index-lag`: a Query of an index answers an empty page, as
 * a GSI can on AWS just after a write); and a lost response (`lose-response`: the call reaches DynamoDB
 * and takes effect, then the connection is cut before the answer arrives, so the SDK retries a write
 * that already happened); a slow call (`delay`: forwarded unchanged after `delayMs`), to open a race; a
 * BatchWriteItem whose every item comes back unprocessed (`unprocessed`: not forwarded, all of
 * `RequestItems` answered as `UnprocessedItems`, as DynamoDB does under throttling); and a transaction
 * cancelled by a conflicting one (`transaction-conflict`: not forwarded, a TransactionCanceledException
 * with a `TransactionConflict` reason for each item; for a plain write, a TransactionConflictException);
 * and a transaction whose token is still being executed (`transaction-in-progress`: not forwarded, a
 * TransactionInProgressException, as DynamoDB answers a retry of a transaction that has not finished).
 */
import { createServer, request as httpRequest, type Server, type ServerResponse } from 'node:http';

export type Fault = 'throttle' | 'server-error' | 'hang' | 'index-lag' | 'lose-response' | 'delay' | 'unprocessed' | 'transaction-conflict' | 'transaction-in-progress';

export interface FaultRule {
  /** `GetItem`, `UpdateItem`, `TransactWriteItems`, … */
  readonly operation: string;
  /** Only calls naming this table (anywhere in the request). */
  readonly table?: string;
  readonly fault: Fault;
  /** How many matching calls fail; then the rule is spent. @default every one */
  readonly times?: number;
  /** For `delay`: how long the call waits before it is forwarded. @default 1000 */
  readonly delayMs?: number;
  /** How many matching calls pass untouched before the rule starts failing them. @default 0 */
  readonly skip?: number;
  /** The share (0–1) of matching calls the rule fails, drawn at random for each. @default 1 */
  readonly probability?: number;
}

export interface CountingProxy {
  readonly endpoint: string;
  /** Calls since the last reset, by operation name. */
  counts(): Record<string, number>;
  reset(): void;
  /** Fail the calls the rule matches, until `clearFaults` (or `times` runs out). */
  inject(rule: FaultRule): void;
  clearFaults(): void;
  /** Calls failed by injection since the last reset. */
  injected(): number;
  /** Items that Query and Scan calls read (their ScannedCount) since the last reset. */
  scanned(): number;
  close(): Promise<void>;
}

const FAULT_BODIES: Record<Exclude<Fault, 'hang' | 'index-lag' | 'lose-response' | 'delay' | 'unprocessed' | 'transaction-conflict'>, { status: number; type: string; message: string }> = {
  throttle: { status: 400, type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'Rate of requests exceeds the allowed throughput (injected)' },
  'server-error': { status: 500, type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'Internal server error (injected)' },
  'transaction-in-progress': {
    status: 400,
    type: 'com.amazonaws.dynamodb.v20120810#TransactionInProgressException',
    message: 'The transaction with the given request token is already in progress (injected)',
  },
};

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  let counts: Record<string, number> = {};
  let rules: { rule: FaultRule; left: number; skip: number }[] = [];
  let injected = 0;
  let scanned = 0;
  const hung = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const op = String(req.headers['x-amz-target'] ?? 'unknown').split('.').pop() ?? 'unknown';
    counts[op] = (counts[op] ?? 0) + 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forwardCall = () => {
        const forward = httpRequest(
          { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            if (op === 'Query' || op === 'Scan') {
              // Items read, as DynamoDB bills them: ScannedCount, before any filter.
              const parts: Buffer[] = [];
              up.on('data', (c: Buffer) => parts.push(c));
              up.on('end', () => {
                try {
                  scanned += Number((JSON.parse(Buffer.concat(parts).toString('utf8')) as { ScannedCount?: number }).ScannedCount ?? 0);
                } catch {
                  // not JSON (an error page): nothing read
                }
              });
            }
            up.pipe(res);
          },
        );
        forward.on('error', () => res.destroy());
        forward.end(body);
      };
      const match = rules.find(
        (r) =>
          r.left > 0 &&
          r.rule.operation === op &&
          (!r.rule.table || body.includes(`"TableName":"${r.rule.table}"`)) &&
          (r.rule.fault !== 'index-lag' || body.includes('"IndexName"')) &&
          (r.rule.probability === undefined || Math.random() < r.rule.probability),
      );
      if (match && match.skip > 0) match.skip--;
      else if (match?.rule.fault === 'delay') {
        match.left--;
        injected++;
        setTimeout(() => forwardCall(), match.rule.delayMs ?? 1000);
        return;
      } else if (match) {
        match.left--;
        injected++;
        if (match.rule.fault === 'hang') {
          hung.add(res);
          res.on('close', () => hung.delete(res));
          return;
        }
        if (match.rule.fault === 'lose-response') {
          const forward = httpRequest(
            { hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
            (up) => {
              up.resume();
              up.on('end', () => res.destroy());
            },
          );
          forward.on('error', () => res.destroy());
          forward.end(body);
          return;
        }
        if (match.rule.fault === 'index-lag') {
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(JSON.stringify({ Count: 0, Items: [], ScannedCount: 0 }));
          return;
        }
        if (match.rule.fault === 'unprocessed') {
          const { RequestItems } = JSON.parse(body.toString('utf8')) as { RequestItems: unknown };
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(JSON.stringify({ UnprocessedItems: RequestItems }));
          return;
        }
        if (match.rule.fault === 'transaction-conflict' && op !== 'TransactWriteItems') {
          // A plain write on an item a transaction is writing.
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': 'TransactionConflictException' });
          res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#TransactionConflictException', message: 'Transaction is ongoing for the item (injected)' }));
          return;
        }
        if (match.rule.fault === 'transaction-conflict') {
          const { TransactItems } = JSON.parse(body.toString('utf8')) as { TransactItems: unknown[] };
          const type = 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException';
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': 'TransactionCanceledException' });
          res.end(
            JSON.stringify({
              __type: type,
              message: 'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict] (injected)',
              CancellationReasons: TransactItems.map(() => ({ Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' })),
            }),
          );
          return;
        }
        const f = FAULT_BODIES[match.rule.fault];
        res.writeHead(f.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': f.type.split('#')[1]! });
        res.end(JSON.stringify({ __type: f.type, message: f.message }));
        return;
      }
      forwardCall();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    reset: () => {
      counts = {};
      injected = 0;
      scanned = 0;
    },
    scanned: () => scanned,
    inject: (rule) => {
      rules.push({ rule, left: rule.times ?? Number.POSITIVE_INFINITY, skip: rule.skip ?? 0 });
    },
    clearFaults: () => {
      rules = [];
      for (const res of hung) res.destroy();
    },
    injected: () => injected,
    close: () =>
      new Promise<void>((resolve) => {
        rules = [];
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
