/**
 * Runs functions as Lambda does: each instance is a worker thread with only the function's own
 * environment, serving one invocation at a time; a warm instance is reused, a new one is started
 * (a cold start) when all are busy, up to `maxInstances`, after which invocations wait.
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import type { FunctionDef } from './template.js';

export class FunctionError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(message);
    this.name = 'FunctionError';
  }
}

/**
 * Lambda's payload limits, in bytes, as its answers state them: a synchronous invocation's request
 * ("Request must be smaller than 6291456 bytes for the InvokeFunction operation"), its response
 * ("Response payload size exceeded maximum allowed payload size (6291556 bytes)."), and an asynchronous
 * (`Event`) invocation's request (1 MB since 2025; 256 KB before).
 */
export const MAX_SYNC_REQUEST_BYTES = 6 * 1024 * 1024;
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100;
export const MAX_ASYNC_REQUEST_BYTES = 1024 * 1024;

/** Lambda refused an invocation whose payload is over its limit (413 RequestEntityTooLargeException); nothing ran. */
export class RequestTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly invocationType: 'RequestResponse' | 'Event',
  ) {
    super(
      invocationType === 'Event'
        ? `${bytes} byte payload is too large for the Event invocation type (limit ${MAX_ASYNC_REQUEST_BYTES} bytes)`
        : `Request must be smaller than ${MAX_SYNC_REQUEST_BYTES} bytes for the InvokeFunction operation`,
    );
    this.name = 'RequestEntityTooLargeException';
  }
}

export type LogSink = (functionId: string, line: string) => void;

/** The answer to one invocation, as the worker posts it. */
interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: string;
  readonly error?: { name: string; message: string };
  /** How long the handler ran, in ms (what Lambda bills, before rounding up). */
  readonly ms?: number;
}

interface Instance {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  busy: boolean;
  /** The invocation in flight: one listener per instance for its whole life, not one per invocation. */
  pending?: { id: number; onReply: (m: Reply) => void; onExit: () => void };
}

/** Invocations and their handler time, per function (logical id): what `npm run bench` prices. */
export interface InvocationStats {
  invocations: number;
  /** Handler time rounded up to whole ms per invocation, as Lambda bills it. */
  billedMs: number;
  /** Handler time, exact (ms). */
  handlerMs: number;
  /** From the event's hand-off to the worker until its answer is back, with the handler time (ms). */
  invokeMs: number;
}
const stats = new Map<string, InvocationStats>();
export function invocationStats(): ReadonlyMap<string, Readonly<InvocationStats>> {
  return stats;
}
export function resetInvocationStats(): void {
  stats.clear();
}

let nextId = 0;

const WORKER_URL = new URL('./lambda-worker.mjs', import.meta.url);

export class FunctionPool {
  private readonly idle: Instance[] = [];
  private readonly all = new Set<Instance>();
  private readonly waiting: ((instance: Instance) => void)[] = [];
  private closed = false;

  constructor(
    readonly def: FunctionDef,
    private readonly baseEnv: Record<string, string>,
    /** Where the function's log lines go; without one they are dropped inside the worker, at no cost. */
    private readonly onLog: LogSink | undefined,
    private readonly maxInstances = 64,
  ) {}

  private spawn(): Instance {
    const env: Record<string, string> = {
      ...this.baseEnv,
      ...this.def.environment,
      AWS_LAMBDA_FUNCTION_NAME: this.def.logicalId,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(this.def.memoryMb),
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    };
    const worker = new Worker(WORKER_URL, {
      env,
      stdout: this.onLog !== undefined,
      stderr: this.onLog !== undefined,
      workerData: {
        modulePath: this.def.modulePath,
        exportName: this.def.exportName,
        functionName: this.def.logicalId,
        memoryMb: this.def.memoryMb,
        sourceMaps: (env['NODE_OPTIONS'] ?? '').includes('--enable-source-maps'),
        discardLogs: this.onLog === undefined,
      },
    });
    const onLog = this.onLog;
    if (onLog) {
      for (const stream of [worker.stdout, worker.stderr]) {
        createInterface({ input: stream }).on('line', (line) => onLog(this.def.logicalId, line));
      }
    }
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: { ready?: boolean }) => {
        if (m.ready) {
          worker.off('message', onMessage);
          worker.off('error', reject);
          resolve();
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    const instance: Instance = { worker, ready, busy: false };
    worker.on('message', (m: Reply) => {
      if (instance.pending && m.id === instance.pending.id) instance.pending.onReply(m);
    });
    worker.on('exit', () => {
      instance.pending?.onExit();
      this.all.delete(instance);
      const i = this.idle.indexOf(instance);
      if (i >= 0) this.idle.splice(i, 1);
    });
    this.all.add(instance);
    return instance;
  }

  private acquire(): Promise<Instance> {
    const warm = this.idle.pop();
    if (warm) return Promise.resolve(warm);
    if (this.all.size < this.maxInstances) return Promise.resolve(this.spawn());
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(instance: Instance): void {
    instance.busy = false;
    if (!this.all.has(instance)) return;
    const next = this.waiting.shift();
    if (next) next(instance);
    else this.idle.push(instance);
  }

  /**
   * Invokes the function; resolves with its return value, rejects with FunctionError on any failure
   * (a result whose JSON is over Lambda's response limit fails as `Function.ResponseSizeTooLarge`), or
   * with RequestTooLargeError, before any instance is used, for an event whose JSON is over Lambda's
   * synchronous request limit.
   */
  async invoke(event: unknown): Promise<unknown> {
    if (this.closed) throw new FunctionError('Closed', 'the local stack is stopping');
    // As Lambda does, the event travels as JSON (one string: far cheaper to post than an object graph).
    const payload: string | undefined = JSON.stringify(event);
    // A string of n UTF-16 units is at most 3n bytes: only a long one needs counting.
    const payloadBytes = payload === undefined || payload.length * 3 <= MAX_SYNC_REQUEST_BYTES ? 0 : Buffer.byteLength(payload);
    if (payloadBytes > MAX_SYNC_REQUEST_BYTES) throw new RequestTooLargeError(payloadBytes, 'RequestResponse');
    const instance = await this.acquire();
    instance.busy = true;
    try {
      await instance.ready;
    } catch (error) {
      void instance.worker.terminate();
      throw new FunctionError('InitError', error instanceof Error ? error.message : String(error));
    }
    const id = ++nextId;
    const handedOff = performance.now();
    const timeoutMs = this.def.timeoutSeconds * 1000;
    const functionId = this.def.logicalId;
    return new Promise((resolve, reject) => {
      const finish = () => {
        instance.pending = undefined;
        clearTimeout(timer);
      };
      const onReply = (m: Reply) => {
        finish();
        this.release(instance);
        if (m.ms !== undefined) {
          const s = stats.get(functionId) ?? { invocations: 0, billedMs: 0, handlerMs: 0, invokeMs: 0 };
          s.invocations++;
          s.billedMs += Math.max(1, Math.ceil(m.ms));
          s.handlerMs += m.ms;
          s.invokeMs += performance.now() - handedOff;
          stats.set(functionId, s);
        }
        if (m.ok && m.result !== undefined && m.result.length * 3 > MAX_RESPONSE_BYTES && Buffer.byteLength(m.result) > MAX_RESPONSE_BYTES) {
          // The handler returned, but Lambda cannot hand the result back: the invocation fails.
          reject(
            new FunctionError(
              'Function.ResponseSizeTooLarge',
              `Response payload size exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`,
            ),
          );
        } else if (m.ok) resolve(m.result === undefined ? undefined : (JSON.parse(m.result) as unknown));
        else reject(new FunctionError(m.error?.name ?? 'Error', m.error?.message ?? 'function failed'));
      };
      const onExit = () => {
        finish();
        reject(new FunctionError('Runtime.ExitError', 'the function instance exited'));
      };
      const timer = setTimeout(() => {
        if (instance.pending?.id !== id) return;
        finish();
        // As on Lambda, a timed-out environment is discarded.
        void instance.worker.terminate();
        reject(new FunctionError('TimeoutError', `Task timed out after ${this.def.timeoutSeconds} seconds`));
      }, timeoutMs);
      instance.pending = { id, onReply, onExit };
      instance.worker.postMessage({ id, payload, requestId: randomUUID(), deadline: Date.now() + timeoutMs });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.all].map((i) => i.worker.terminate()));
  }
}
