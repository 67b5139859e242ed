/**
 * The functions' DynamoDB endpoint when IAM is enforced: a proxy in front of DynamoDB Local (or the
 * DYNAMODB_ENDPOINT given) that tells which function calls from the request's SigV4 signature (each
 * function signs with credentials of its own, its logical id as the access key id), checks that
 * signature as AWS would (sigv4.ts), checks the call against the function's role policies (enforcer.ts),
 * and forwards it under the runner's one access key id: DynamoDB Local started without -sharedDb keeps a
 * database per access key id. DynamoDB Local reads the access key id of a request and never checks its
 * signature, so the forwarded request keeps the caller's signature with the runner's access key id in its
 * credential scope instead of being signed again (a second SigV4 signing per call was half the proxy's CPU).
 *
 * A refused call gets DynamoDB's own answer: HTTP 400 with `AccessDeniedException` and AWS's message (or
 * `UnrecognizedClientException`/`InvalidSignatureException` for a signature that is not a function's).
 *
 * Requests signed with the runner's own credentials (LOCAL_CREDENTIALS) pass unchecked: they are the
 * operator's (the admin CLI, the runner's seeding, tests' fixtures), who deployed the stack and holds the
 * account's administrator credentials on AWS, where no role policy of the template applies to them.
 * (The runner hands its own clients DynamoDB's endpoint directly; this is for anyone pointed here.)
 */
import { randomUUID } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { isRefusal, SigV4Verifier, type Refusal, type SigningIdentity } from '../sigv4.js';
import { dynamoDbAccess, type DynamoDbTarget } from './dynamodb.js';
import type { IamEnforcer } from './enforcer.js';

export interface DynamoDbIamProxyOptions {
  /** Where calls are forwarded (DynamoDB Local's endpoint). */
  readonly upstream: string;
  /** Session token → the function that holds it. */
  readonly callers: ReadonlyMap<string, SigningIdentity>;
  /** The runner's own credentials: requests signed with this access key id pass unchecked; forwarded calls carry its access key id. */
  readonly runnerCredentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly target: DynamoDbTarget;
  readonly enforcer: IamEnforcer;
  /** The clock signatures are checked against. @default Date.now */
  readonly now?: () => number;
  /** A refused signature, said once per request (without the token or the signature). */
  readonly onLog?: (line: string) => void;
  /** Sees every call forwarded, checked or the runner's own (`npm run bench` counts and meters them here). */
  readonly observer?: DynamoDbCallObserver;
}

/**
 * Told of each call the proxy forwards, after its checks, by operation (`GetItem`, …). To see the answer
 * too, it returns the body to forward (it may change it: DynamoDB Local does not check signatures) and a
 * function given the answer's body before the caller gets it; undefined forwards the call as it came.
 */
export type DynamoDbCallObserver = (operation: string, body: Buffer) => { readonly body: Buffer; readonly onAnswer: (answer: Buffer) => void } | undefined;

export interface DynamoDbIamProxy {
  readonly endpoint: string;
  close(): Promise<void>;
}

const JSON_10 = 'application/x-amz-json-1.0';
/** How long an idle connection to DynamoDB Local is kept for reuse (its server closes them after 30 s). */
const UPSTREAM_IDLE_MS = 4_000;
/** Headers not forwarded: the caller's session token and what the forwarding request sets itself. */
const DROPPED = new Set(['x-amz-security-token', 'host', 'connection', 'content-length', 'keep-alive', 'transfer-encoding']);

const operationOf = (req: IncomingMessage) => String(req.headers['x-amz-target'] ?? '').replace(/^DynamoDB_\d+\./, '');
const accessKeyIdOf = (authorization: string | undefined) => /Credential=([^/\s,]+)\//.exec(authorization ?? '')?.[1];

export async function startDynamoDbIamProxy(options: DynamoDbIamProxyOptions): Promise<DynamoDbIamProxy> {
  const upstream = new URL(options.upstream);
  // Idle upstream connections are dropped after UPSTREAM_IDLE_MS, well before DynamoDB Local's Jetty closes
  // them (30 s): reusing a connection as the server closes it cuts the request, which is never sent again.
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, timeout: UPSTREAM_IDLE_MS });
  const verifier = new SigV4Verifier(options.callers, options.target.region, 'dynamodb', options.now);
  const log = options.onLog ?? (() => {});

  const error = (res: ServerResponse, type: string, message: string, messageField: 'message' | 'Message' = 'message') => {
    const body = JSON.stringify({ __type: `com.amazon.coral.service#${type}`, [messageField]: message });
    res.writeHead(400, { 'content-type': JSON_10, 'x-amzn-requestid': randomUUID(), 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const refuseSignature = (req: IncomingMessage, res: ServerResponse, refusal: Refusal) => {
    log(`refused ${String(req.headers['x-amz-target'] ?? 'a call').slice(0, 80)} from ${req.socket.remoteAddress}:${req.socket.remotePort}: ${refusal.reason} (${refusal.errorType})`);
    error(res, refusal.errorType, refusal.message);
  };

  const runnerKeyId = options.runnerCredentials.accessKeyId;
  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const outgoing: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !DROPPED.has(name)) outgoing[name] = Array.isArray(value) ? value.join(',') : value;
    }
    outgoing['host'] = upstream.host;
    outgoing['content-length'] = body.length;
    // The runner's access key id in the credential scope (the database DynamoDB Local keeps for it).
    const authorization = outgoing['authorization'];
    if (typeof authorization === 'string') outgoing['authorization'] = authorization.replace(/Credential=[^/\s,]+\//, `Credential=${runnerKeyId}/`);
    const path = req.url ?? '/';
    const observed = options.observer?.(operationOf(req), body);
    if (observed) {
      body = observed.body;
      outgoing['content-length'] = body.length;
    }
    const up = httpRequest({ hostname: upstream.hostname, port: upstream.port, path, method: req.method, headers: outgoing, agent }, (answer) => {
      // An answer cut short upstream is cut short for the caller too (its SDK sees the lost connection).
      answer.on('aborted', () => res.destroy());
      answer.on('error', () => res.destroy());
      if (!observed) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const parts: Buffer[] = [];
      answer.on('data', (c: Buffer) => parts.push(c));
      answer.on('end', () => {
        const text = Buffer.concat(parts);
        try {
          observed.onAnswer(text);
        } catch {
          // The observer's failure is its own: the caller still gets DynamoDB's answer.
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.end(text);
      });
    });
    // A lost upstream connection is a lost connection for the caller too (its SDK retries, as it would).
    // Never sent again from here: the request may have landed (the usage counter's write must count once).
    up.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.end(body);
  };

  // Callers' idle connections are never closed by the proxy (keepAliveTimeout 0): the functions' SDK keeps
  // its sockets with no idle limit of its own (Node 20 ignores the server's Keep-Alive hint), so a server
  // closing an idle socket races the next request sent on it, which then fails with ECONNRESET — and the
  // usage counter's write, made once by design (repositories/usage.ts), turns that into a 500.
  const server = createServer({ keepAlive: true, keepAliveTimeout: 0 }, (req, res) => {
    const authorization = req.headers['authorization'];
    const accessKeyId = accessKeyIdOf(typeof authorization === 'string' ? authorization : undefined);
    const chunks: Buffer[] = [];
    const withBody = (then: (body: Buffer) => void) => {
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => then(Buffer.concat(chunks)));
    };
    const fail = (e: unknown) => {
      if (!res.headersSent) error(res, 'InternalFailure', `the local IAM proxy failed: ${(e as Error).message}`);
      else res.destroy();
    };
    if (accessKeyId === undefined) {
      req.resume();
      return error(res, 'MissingAuthenticationTokenException', 'Request is missing Authentication Token');
    }
    if (accessKeyId === options.runnerCredentials.accessKeyId) {
      withBody((body) => {
        try {
          forward(req, res, body);
        } catch (e) {
          fail(e);
        }
      });
      return;
    }
    const signedRequest = { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers };
    const checked = verifier.checkHeaders(signedRequest, ['x-amz-target', 'content-type']);
    if (isRefusal(checked)) {
      req.resume();
      return refuseSignature(req, res, checked);
    }
    withBody((body) => {
      void (async () => {
        const refusal = await verifier.checkSignature(signedRequest, checked, body);
        if (refusal) return refuseSignature(req, res, refusal);
        const operation = operationOf(req);
        // A body DynamoDB could not read (not JSON, not an object, a field of the wrong shape) is the
        // caller's fault, answered as DynamoDB answers it (SerializationException, HTTP 400), not a 500.
        let accesses: ReturnType<typeof dynamoDbAccess>;
        try {
          const parsed: unknown = JSON.parse(body.toString('utf8') || '{}');
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError('not an object');
          accesses = dynamoDbAccess(operation, parsed as Record<string, unknown>, options.target);
        } catch (e) {
          // Not JSON (SyntaxError), or a field of another shape than the operation's (TypeError, reading
          // it); anything else is the proxy's own failure (InternalFailure, below).
          if (!(e instanceof SyntaxError || e instanceof TypeError)) throw e;
          return error(res, 'SerializationException', 'Start of structure or map found where not expected');
        }
        for (const access of accesses) {
          const decision = options.enforcer.authorize(checked.identity.name, access);
          if (!decision.ok) return error(res, 'AccessDeniedException', decision.refusal.message, 'Message');
        }
        forward(req, res, body);
      })().catch(fail);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
