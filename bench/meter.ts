/**
 * The bench's meter, an observer of the local stack's DynamoDB endpoint (the IAM proxy in front of
 * DynamoDB Local, `local-runner/iam/dynamodb-proxy.ts`): every call of the functions, and of the bench's
 * floor, which goes through the same proxy with the runner's own credentials, is counted by operation.
 * While metering is on it also asks DynamoDB for the capacity each call consumed
 * (`ReturnConsumedCapacity: TOTAL` added to calls that did not ask) and adds it up, as read or write
 * request units. DynamoDB Local reports a transaction's items as plain reads and writes; AWS charges a
 * transactional read or write twice, so TransactWriteItems and TransactGetItems count double.
 *
 * It sits where the proxy has checked a call's signature and policy, so changing a request here breaks
 * nothing (DynamoDB Local does not check signatures). Metering in the proxy, not in a proxy of its own,
 * keeps the bench's DynamoDB path the one `npm start` runs: one hop between a function and DynamoDB Local.
 */
import type { DynamoDbCallObserver } from '../local-runner/iam/dynamodb-proxy.js';

const READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);
const TRANSACTIONS = new Set(['TransactWriteItems', 'TransactGetItems']);

export interface Capacity {
  /** Read request units (on-demand): a strongly consistent read of up to 4 KB is 1, an eventually consistent one 0.5. */
  readonly readUnits: number;
  /** Write request units (on-demand): a write of up to 1 KB is 1. */
  readonly writeUnits: number;
}

export interface Meter {
  /** Give this to `startLocalStack({ dynamodbObserver })`. */
  readonly observer: DynamoDbCallObserver;
  counts(): Record<string, number>;
  capacity(): Capacity;
  reset(): void;
  metering(on: boolean): void;
}

export function createMeter(): Meter {
  let counts: Record<string, number> = {};
  let readUnits = 0;
  let writeUnits = 0;
  let metering = false;
  const observer: DynamoDbCallObserver = (operation, body) => {
    if (operation) counts[operation] = (counts[operation] ?? 0) + 1;
    if (!metering || !(READS.has(operation) || WRITES.has(operation))) return undefined;
    const parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    parsed['ReturnConsumedCapacity'] ??= 'TOTAL';
    return {
      body: Buffer.from(JSON.stringify(parsed)),
      onAnswer: (answer) => {
        try {
          const consumed = (JSON.parse(answer.toString('utf8')) as { ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[] }).ConsumedCapacity;
          const units = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []).reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
          const charged = TRANSACTIONS.has(operation) ? 2 * units : units;
          if (READS.has(operation)) readUnits += charged;
          else writeUnits += charged;
        } catch {
          // Not JSON (an error page): nothing consumed.
        }
      },
    };
  };
  return {
    observer,
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
  };
}
