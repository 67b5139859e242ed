/**
 * The slice of the Lambda Invoke API the functions use on each other (the workflows function hands
 * async runs to the worker; models may be the deployer's functions): `POST
 * /2015-03-31/functions/{name}/invocations`, synchronous (`RequestResponse`) or asynchronous (`Event`,
 * answered 202 and run in the background, a failed one retried as the function's EventInvokeConfig says). The functions' SDK reaches it
 * through the standard `AWS_ENDPOINT_URL_LAMBDA`. Lambda's payload limits hold: a request over 6 MB
 * (synchronous) or 1 MB (`Event`) is refused with 413 RequestEntityTooLargeException, and a result over
 * 6 MB comes back as the function error `Function.ResponseSizeTooLarge`.
 *
 * Only the functions the runner started may call it (security review #12, finding 11): each has its own
 * secret key and session token, and every request must be signed with them (SigV4, checked as AWS does;
 * see sigv4.ts). Anything else is refused with 403 before the path or the body is looked at, and the
 * refusal is logged (without the token or the signature). With IAM enforced (`authorize`), the caller's
 * role must also allow `lambda:InvokeFunction` on the function's ARN, checked before the function is
 * looked up, as on AWS; a refusal is Lambda's 403 AccessDeniedException.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FunctionError, MAX_ASYNC_REQUEST_BYTES, MAX_SYNC_REQUEST_BYTES, RequestTooLargeError } from './functions.js';
import { isRefusal, SigV4Verifier, type Refusal, type SigningIdentity } from './sigv4.js';

export type Invoke = (functionId: string, event: unknown) => Promise<unknown>;

export interface LambdaApiOptions {
  readonly invoke: Invoke;
  /** Function names (as the template's Refs resolve locally) → function ids. */
  readonly resolve: (name: string) => string | undefined;
  /** Session token → the function that holds it: only requests signed with one of these are served. */
  readonly callers: ReadonlyMap<string, SigningIdentity>;
  /** The region requests must be signed for. */
  readonly region: string;
  /** The clock signatures are checked against. @default Date.now */
  readonly now?: () => number;
  /** Delays before Lambda's retries (at most two) of a failed asynchronous invocation. @default [1000, 2000] */
  readonly retryDelaysMs?: readonly number[];
  /** How many of those retries a function gets (its EventInvokeConfig's MaximumRetryAttempts). @default 2 for every function */
  readonly asyncRetryAttempts?: (functionId: string) => number | undefined;
  /**
   * Lambda delivers an asynchronous event at least once: with this share (0–1), an event is delivered a
   * second time, concurrently with the first, as Lambda may. @default 0
   */
  readonly duplicateDeliveryRate?: number;
  readonly onLog?: (line: string) => void;
  /**
   * IAM: whether `caller` may invoke the function of this name (as the request names it); undefined
   * when allowed, else the AccessDeniedException's message. @default every signed caller may
   */
  readonly authorize?: (caller: SigningIdentity, name: string) => string | undefined;
}

export function createLambdaApi(options: LambdaApiOptions) {
  const retryDelays = options.retryDelaysMs ?? [1000, 2000];
  const log = options.onLog ?? (() => {});
  const inFlight = new Set<Promise<void>>();
  const verifier = new SigV4Verifier(options.callers, options.region, 'lambda', options.now);

  const runAsync = async (functionId: string, name: string, event: unknown) => {
    const retries = retryDelays.slice(0, options.asyncRetryAttempts?.(functionId) ?? 2);
    for (let attempt = 0; ; attempt++) {
      try {
        await options.invoke(functionId, event);
        return;
      } catch (error) {
        const delay = retries[attempt];
        if (delay === undefined) {
          log(`async invocation of ${name} failed ${attempt + 1} time(s); given up (to its on-failure destination, if it has one): ${(error as Error).message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };

  /**
   * An asynchronous invocation as Lambda makes it (also for an EventBridge rule's target): at least once
   * (a second, concurrent delivery at `duplicateDeliveryRate`), a failed one retried as often as the
   * function's EventInvokeConfig says (`asyncRetryAttempts`; Lambda's default, twice). Resolves when
   * every delivery has ended.
   */
  const invokeAsync = (functionId: string, name: string, event: unknown): Promise<void> => {
    const deliveries = Math.random() < (options.duplicateDeliveryRate ?? 0) ? 2 : 1;
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < deliveries; i++) {
      const job = runAsync(functionId, name, event).finally(() => inFlight.delete(job));
      inFlight.add(job);
      jobs.push(job);
    }
    return Promise.all(jobs).then(() => undefined);
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(text);
    };
    const refuse = (refusal: Refusal) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname.slice(0, 200);
      log(`refused ${req.method} ${path} from ${req.socket.remoteAddress}:${req.socket.remotePort}: ${refusal.reason} (${refusal.errorType})`);
      reply(403, { message: refusal.message }, { 'x-amzn-ErrorType': refusal.errorType });
    };
    const serve = (raw: Buffer, caller: SigningIdentity) => {
      const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
      if (req.method !== 'POST' || !m) {
        return reply(404, { message: 'not a Lambda API path' }, { 'x-amzn-ErrorType': 'UnknownOperationException' });
      }
      let name: string;
      try {
        name = decodeURIComponent(m[1]!);
      } catch {
        // Lambda refuses a name that is not a function name; a bad escape must not throw past the server.
        return reply(400, { Type: 'User', message: 'The function name is not valid percent-encoding.' }, { 'x-amzn-ErrorType': 'ValidationException' });
      }
      const denied = options.authorize?.(caller, name);
      if (denied !== undefined) {
        return reply(403, { Type: 'User', Message: denied }, { 'x-amzn-ErrorType': 'AccessDeniedException' });
      }
      const functionId = options.resolve(name);
      if (!functionId) {
        return reply(404, { message: `Function not found: ${name}` }, { 'x-amzn-ErrorType': 'ResourceNotFoundException' });
      }
      const type = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
      // Lambda's request limits: 6 MB for a synchronous invocation, 1 MB for an asynchronous one.
      const tooLarge = (error: RequestTooLargeError) =>
        reply(413, { Type: 'User', message: error.message }, { 'x-amzn-ErrorType': 'RequestEntityTooLargeException' });
      if (raw.length > (type === 'Event' ? MAX_ASYNC_REQUEST_BYTES : MAX_SYNC_REQUEST_BYTES)) {
        return tooLarge(new RequestTooLargeError(raw.length, type === 'Event' ? 'Event' : 'RequestResponse'));
      }
      let event: unknown;
      const text = raw.toString('utf8');
      try {
        event = text ? JSON.parse(text) : {};
      } catch {
        return reply(400, { message: 'Could not parse request body into json' }, { 'x-amzn-ErrorType': 'InvalidRequestContentException' });
      }
      if (type === 'Event') {
        void invokeAsync(functionId, name, event);
        return reply(202, '');
      }
      options.invoke(functionId, event).then(
        (value) => reply(200, value === undefined ? 'null' : JSON.stringify(value), { 'x-amz-executed-version': '$LATEST' }),
        (error: unknown) => {
          // The event re-serialized can differ from the body sent (`1e2` becomes `100`).
          if (error instanceof RequestTooLargeError) return tooLarge(error);
          const e = error instanceof FunctionError ? { errorType: error.errorName, errorMessage: error.message } : { errorType: 'Error', errorMessage: String(error) };
          reply(200, e, { 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': '$LATEST' });
        },
      );
    };

    const signed = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    // The caller must be one of the runner's functions before anything else is looked at.
    const checked = verifier.checkHeaders(signed, ['x-amz-invocation-type']);
    if (isRefusal(checked)) {
      refuse(checked);
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      verifier.checkSignature(signed, checked, raw).then(
        (refusal) => (refusal ? refuse(refusal) : serve(raw, checked.identity)),
        (error: unknown) => reply(500, { message: `could not check the signature: ${(error as Error).message}` }, { 'x-amzn-ErrorType': 'ServiceException' }),
      );
    });
  };
  /**
   * Resolves when no asynchronous invocation is in flight, Lambda's retries and invocations started
   * meanwhile included; rejects after `deadlineMs` if some are still running then (a schedule firing every
   * few ms may never let the set empty).
   */
  const settled = async (deadlineMs = 60_000): Promise<void> => {
    const deadline = Date.now() + deadlineMs;
    while (inFlight.size > 0) {
      const left = deadline - Date.now();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Math.max(0, left))));
      const outcome = await Promise.race([Promise.allSettled([...inFlight]), late]);
      clearTimeout(timer);
      if (outcome === 'late') throw new Error(`${inFlight.size} asynchronous invocations still in flight after ${deadlineMs} ms`);
    }
  };

  return { handler, inFlight, invokeAsync, settled };
}
