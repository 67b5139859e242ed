/**
 * The HTTP edge of every handler Lambda: one middleware stack (middy) that decodes the caller, charges
 * the request to its key's counter (the one write of the hot path), maps errors to the contract's
 * bodies (each with the request id), refuses query parameters the route does not take, and sets the
 * rate-limit headers (X-RateLimit-* and the IETF draft's RateLimit-Policy and RateLimit) and
 * `x-request-id` on every response, success or error. Routes that take an Idempotency-Key run once per
 * key (services/idempotency.ts).
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { decodeCaller, decodeRefused, principalOf, refusedCounterId, type Caller } from './caller.js';
import { covers, type Capability } from './capabilities.js';
import { errorResponse, REQUEST_ID_HEADER, requestIdOf, type ProxyEvent, type ProxyResult } from './responses.js';
import {
  ApiError,
  CapabilityDeniedError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitExceededError,
  ConcurrencyLimitExceededError,
  CONCURRENCY_RETRY_AFTER_SECONDS,
  IdempotencyInProgressError,
  IDEMPOTENCY_RETRY_AFTER_SECONDS,
  ValidationError,
} from './errors.js';
import type { Grant } from './services/keys.js';
import { countMetric, log, METRIC, startInvocation } from './log.js';
import { firstProblem, jsonDepth, MAX_BODY_DEPTH, unstorable } from './references.js';
import { assertKnownQueryParameters } from './query-parameters.js';
import type { Hit, UsageRepository } from './repositories/usage.js';
import { LEASE_MARGIN_MS } from './run-budget.js';
import {
  beginIdempotent,
  checkIdempotencyKey,
  finishIdempotent,
  IDEMPOTENCY_HEADER,
  keepingItem,
  releaseIdempotent,
  requestFingerprint,
  type Answer,
  type IdempotencyDeps,
} from './services/idempotency.js';
import type { TransactItem } from './repositories/audit.js';

export { errorResponse, json, REQUEST_ID_HEADER, requestIdOf, type ProxyEvent, type ProxyResult } from './responses.js';

/** What a route receives: the event, the authenticated caller, and this request's counter result. */
export interface RequestContext {
  readonly event: ProxyEvent;
  readonly caller: Caller;
  readonly hit: Hit;
  /** The caller's grant, for creating or editing keys within it. */
  readonly grant: Grant;
  /** The JSON body; undefined when empty; 400 VALIDATION_ERROR when not JSON. */
  body(): unknown;
  /** A path parameter the route's resource declares. */
  param(name: string): string;
  /**
   * With an Idempotency-Key: `render`'s answer kept by the work's own transaction (the returned function
   * gives the transaction's item for a result), so a request that dies after its work committed is
   * replayed, never run again. Undefined without a key. The route then answers `render(result)`.
   */
  keepAs<T>(render: (result: T) => ProxyResult): ((result: T) => TransactItem | undefined) | undefined;
}

export type Route = (request: RequestContext) => Promise<ProxyResult>;

/**
 * A route that takes an `Idempotency-Key` (API.md §4 "Retries and idempotency"; services/idempotency.ts):
 * with the header, the request runs once and its 2xx answer is replayed to the same request for 24 h.
 */
export interface Idempotent {
  /** Top-level fields of the answer never kept (a key's plaintext `api_key`): a replay goes without them. */
  readonly omit?: readonly string[];
  /**
   * Error codes that come after the route's work was done (a model that ran and failed): kept and replayed
   * like a 2xx, so a retry does not do the work again. Any other error releases the key.
   */
  readonly keepErrors?: readonly string[];
  /** The query parameters that make the request another (`async`); others do not count. */
  readonly query?: readonly string[];
}

/** A route and the capability it needs: the one enforcement point (CAPABILITY_DENIED, with `required`). */
export interface RouteDef {
  /** A capability, several (each needed; the first missing one is `required`), or one that depends on the request (`workflow:<slug>:run`). */
  readonly needs?: Capability | readonly Capability[] | ((event: ProxyEvent) => Capability);
  /** Takes an Idempotency-Key; the handler then needs `HandlerOptions.idempotency`. */
  readonly idempotent?: Idempotent;
  /**
   * Takes no body (a DELETE, a cancel): one sent is refused (400 naming `body`) before anything is done,
   * as an unknown field is elsewhere, rather than ignored while the request acts. None, `{}` and `null`
   * are no body.
   */
  readonly noBody?: true;
  /**
   * The body is never stored (a direct model run's input): a member named "", which JSON allows and
   * DynamoDB does not, is taken as it always was. Every other body refuses one (400 naming where).
   */
  readonly unstored?: true;
  readonly handle: Route;
}

export interface HandlerOptions {
  /** Larger bodies get 413 PAYLOAD_TOO_LARGE before any parsing. @default 64 KiB */
  readonly maxBodyBytes?: number;
  readonly now?: () => Date;
  /** Where idempotency records live: required when a route is `idempotent`. */
  readonly idempotency?: IdempotencyDeps;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

function bodyBytes(event: ProxyEvent): number {
  if (!event.body) return 0;
  return event.isBase64Encoded ? Math.floor((event.body.length * 3) / 4) : Buffer.byteLength(event.body, 'utf8');
}

/** The body as text (decoded when API Gateway passed it base64-encoded); undefined when empty. */
function bodyText(event: ProxyEvent): string | undefined {
  if (!event.body) return undefined;
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

/** `emptyNames`: the body is never stored, so a member named "" is taken (see RouteDef.unstored). */
function parseBody(event: ProxyEvent, emptyNames = false): unknown {
  const text = bodyText(event);
  if (text === undefined) return undefined;
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw ValidationError.field('body', 'is not valid JSON');
  }
  // DynamoDB refuses items nested deeper than 32 levels: refuse such a body here, before any work.
  if (jsonDepth(value) > MAX_BODY_DEPTH) throw ValidationError.field('body', `nests deeper than ${MAX_BODY_DEPTH} levels`);
  const unstorable = unstorableAt(value, emptyNames);
  if (unstorable !== undefined) throw ValidationError.field(unstorable.field, unstorable.message);
  return value;
}

/** A surrogate without its pair: JSON's `\uXXXX` escapes can spell one; no UTF-8 text holds one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ILL_FORMED = 'holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair): it is not Unicode text';

/**
 * The first value of a body that cannot be taken as it was sent, as a field path (`body` for the top)
 * and what is wrong, or undefined when there is none:
 * - a string (a value or a member name) that is not well-formed Unicode: DynamoDB stores UTF-8 (the SDK
 *   would write U+FFFD instead), and it can be neither canonicalized nor compared;
 * - a number DynamoDB cannot hold (`isStorableNumber`): its write would fail after the work was done;
 * - a member named "" (DynamoDB stores no empty attribute name), unless `emptyNames` (a body never stored).
 */
function unstorableAt(value: unknown, emptyNames: boolean): { field: string; message: string } | undefined {
  const found = firstProblem(value, (v, name) => (typeof v === 'string' && LONE_SURROGATE.test(v) ? ILL_FORMED : name && emptyNames ? undefined : unstorable(v, name)));
  return found && { field: found.path.join('.') || 'body', message: found.problem };
}

/** Ids in paths (key ids, slugs, model and execution ids) are far shorter; see the handler's check. */
export const MAX_PATH_PARAMETER_BYTES = 256;

/**
 * Keys this container saw refused in the current window, with the window's end (epoch seconds): their
 * next requests in that window are refused without a write. Only refusals are cached, so the limit stays
 * exact (every admission is still decided by the conditional write), and a hot key past its limit
 * costs DynamoDB nothing more: its 429s cannot turn into throttled writes and 500s. Each refusal is
 * remembered with the limit it was refused under and applies only while the caller's limit is no higher
 * (a tier raised mid-window applies from the next request, API.md §2). Bounded: expired entries go first,
 * and the whole map past REFUSALS_MAX.
 */
const refusedUntil = new Map<string, { until: number; limit: number }>();
const REFUSALS_MAX = 10_000;

function rememberRefusal(keyId: string, reset: number, limit: number, nowSeconds: number): void {
  if (refusedUntil.size >= REFUSALS_MAX) {
    for (const [k, { until }] of refusedUntil) if (until <= nowSeconds) refusedUntil.delete(k);
    if (refusedUntil.size >= REFUSALS_MAX) refusedUntil.clear();
  }
  refusedUntil.set(keyId, { until: reset, limit });
}

/** The Lambda context, carrying what the middleware established for this invocation. */
type HandlerContext = Context & { caller?: Caller; hit?: Hit; startedAt?: number };

/** The rate limit's fixed window (repositories/usage.ts counts per UTC minute). */
export const RATE_LIMIT_WINDOW_SECONDS = 60;
/** The name of the one quota policy in the IETF fields (a key's, or a person's in an account, per minute). */
export const RATE_LIMIT_POLICY = 'default';

/**
 * The rate-limit headers of an answer: the de-facto `X-RateLimit-*` (reset in Unix epoch seconds), and
 * the IETF fields of draft-ietf-httpapi-ratelimit-headers-10 (September 2025; §3 and §4, the syntax the
 * editor's draft -11 keeps): `RateLimit-Policy`, a Structured Field List whose item names the policy
 * with its quota `q` and window `w` (seconds), and `RateLimit`, the same policy with what `r`emains
 * and the seconds `t` until the window resets: `RateLimit-Policy: "default";q=100;w=60`,
 * `RateLimit: "default";r=42;t=17`.
 */
export function rateLimitHeaders(hit: Hit): Record<string, string> {
  const untilReset = Math.max(0, hit.reset - Math.floor(hit.now.getTime() / 1000));
  return {
    'X-RateLimit-Limit': String(hit.limit),
    'X-RateLimit-Remaining': String(hit.remaining),
    'X-RateLimit-Reset': String(hit.reset),
    'RateLimit-Policy': `"${RATE_LIMIT_POLICY}";q=${hit.limit};w=${RATE_LIMIT_WINDOW_SECONDS}`,
    RateLimit: `"${RATE_LIMIT_POLICY}";r=${hit.remaining};t=${untilReset}`,
  };
}

const routeName = (event: ProxyEvent) => `${event.httpMethod} ${event.resource}`;

/** Every value of a header, whatever the case of its name (API Gateway passes names as the client sent them). */
function headerValues(event: ProxyEvent, name: string): string[] {
  const wanted = name.toLowerCase();
  const multi = event.multiValueHeaders ?? {};
  const fromMulti = Object.entries(multi).flatMap(([k, values]) => (k.toLowerCase() === wanted ? (values ?? []) : []));
  if (Object.keys(multi).length > 0) return fromMulti;
  return Object.entries(event.headers ?? {}).flatMap(([k, value]) => (k.toLowerCase() === wanted && value !== undefined ? [value] : []));
}

/** The named query parameters, each with every value it was given (names not given left out). */
function queryValues(event: ProxyEvent, names: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const name of names) {
    const values = event.multiValueQueryStringParameters?.[name] ?? (event.queryStringParameters?.[name] !== undefined ? [event.queryStringParameters[name]!] : undefined);
    if (values) out[name] = [...values];
  }
  return out;
}

/**
 * The one log line per request (its id, route, status, latency, key id and account; never the key or
 * its hash), and the request metrics: 429s and 5xx (API Gateway's own `Count` counts every request; a
 * metric line of ours per request would cost every request a second JSON line).
 */
function logRequest(event: ProxyEvent, context: HandlerContext, status: number): void {
  log('info', 'request', {
    request_id: requestIdOf(event),
    route: routeName(event),
    status,
    latency_ms: context.startedAt === undefined ? null : Math.round((performance.now() - context.startedAt) * 10) / 10,
    key_id: context.caller?.kind === 'key' ? context.caller.keyId : null,
    ...(context.caller?.kind === 'person' ? { subject: context.caller.subject } : {}),
    account_id: context.caller?.accountId ?? null,
  });
  if (status === 429) countMetric(METRIC.rateLimited);
  if (status >= 500) countMetric(METRIC.serverErrors);
}

/**
 * Wraps the routes of one Lambda. `routes` is keyed by `<METHOD> <resource>` as API Gateway names them
 * (`GET /keys/{key_id}`), so nothing re-parses paths.
 */
export function authenticatedHandler(
  usage: UsageRepository,
  routes: Readonly<Record<string, RouteDef>>,
  options: HandlerOptions = {},
) {
  const now = options.now ?? (() => new Date());
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const idempotency = options.idempotency;
  const idempotentRoutes = Object.entries(routes).filter(([, r]) => r.idempotent).map(([name]) => name);
  if (idempotentRoutes.length > 0 && !idempotency) throw new Error(`routes ${idempotentRoutes.join(', ')} take an Idempotency-Key: give the handler an idempotency store`);
  /**
   * One request counted against `limit` in the current window (the hit kept in `context` for the
   * headers); 429 past it. A refusal seen in this window is remembered, and answered without a write.
   */
  const count = async (counterId: string, accountId: string, limit: number, context: HandlerContext): Promise<void> => {
    const at = now();
    const nowSeconds = at.getTime() / 1000;
    const refused = refusedUntil.get(counterId);
    if (refused !== undefined && refused.until > nowSeconds && limit <= refused.limit) {
      context.hit = { admitted: false, limit, remaining: 0, reset: refused.until, now: at };
      throw new RateLimitExceededError(refused.until);
    }
    const hit = await usage.hit(counterId, accountId, limit, at);
    context.hit = hit;
    if (!hit.admitted) {
      rememberRefusal(counterId, hit.reset, limit, nowSeconds);
      throw new RateLimitExceededError(hit.reset);
    }
  };
  return middy<ProxyEvent, ProxyResult, Error, HandlerContext>()
    .use({
      before: async (request) => {
        request.context.startedAt = performance.now();
        startInvocation();
        const context = request.event.requestContext?.authorizer;
        // A person placed in no account (403 NOT_A_MEMBER, or 400 naming Knouds-Account) is counted per
        // person, so the answer carries the rate-limit headers and a flood of them gets 429; then its error.
        const refusedPerson = decodeRefused(context);
        if (refusedPerson) {
          if (refusedPerson.rateLimit !== undefined) await count(refusedCounterId(refusedPerson.subject), '-', refusedPerson.rateLimit, request.context);
          throw refusedPerson.error;
        }
        const caller = decodeCaller(context);
        // Before the counter write, so a failing write is still logged with its key and account.
        request.context.caller = caller;
        await count(caller.counterId, caller.accountId, caller.rateLimit, request.context);
      },
      after: (request) => {
        const hit = request.context.hit;
        if (request.response) {
          request.response.headers = { ...request.response.headers, ...(hit ? rateLimitHeaders(hit) : {}), [REQUEST_ID_HEADER]: requestIdOf(request.event) };
        }
        logRequest(request.event, request.context, request.response?.statusCode ?? 200);
      },
      onError: (request) => {
        const event = request.event;
        const response = errorResponse(request.error, requestIdOf(event), routeName(event));
        const hit = request.context.hit;
        const headers: Record<string, string> = hit ? rateLimitHeaders(hit) : {};
        if (request.error instanceof RateLimitExceededError) {
          const nowSeconds = Math.floor((hit?.now ?? now()).getTime() / 1000);
          headers['Retry-After'] = String(Math.max(1, request.error.resetEpochSeconds - nowSeconds));
        }
        if (request.error instanceof ConcurrencyLimitExceededError) headers['Retry-After'] = String(CONCURRENCY_RETRY_AFTER_SECONDS);
        if (request.error instanceof IdempotencyInProgressError) headers['Retry-After'] = String(IDEMPOTENCY_RETRY_AFTER_SECONDS);
        response.headers = { ...response.headers, ...headers };
        request.response = response;
        logRequest(event, request.context, response.statusCode);
      },
    })
    .handler(async (event, context) => {
      const route = routes[routeName(event)];
      const { caller, hit } = context;
      if (!caller || !hit) throw new Error('middleware did not establish the caller');
      if (!route) throw new NotFoundError('No such route');
      const needs = typeof route.needs === 'function' ? route.needs(event) : route.needs;
      for (const need of [needs ?? []].flat()) {
        if (!covers(caller.capabilities, need)) throw new CapabilityDeniedError(need, [...caller.capabilities]);
      }
      // An id longer than any we issue names nothing we hold: 404 without a read (DynamoDB would refuse a
      // key attribute over 1,024 or 2,048 bytes with a ValidationException, a 500 here).
      for (const [name, value] of Object.entries(event.pathParameters ?? {})) {
        if (typeof value === 'string' && Buffer.byteLength(value) > MAX_PATH_PARAMETER_BYTES) throw new NotFoundError(`No ${name} is longer than ${MAX_PATH_PARAMETER_BYTES} bytes`);
      }
      if (bodyBytes(event) > maxBodyBytes) {
        throw new PayloadTooLargeError(`The request body is larger than ${maxBodyBytes} bytes`);
      }
      // Only the parameters the route takes (query-parameters.ts, which the OpenAPI document publishes).
      assertKnownQueryParameters(routeName(event), Object.keys(event.multiValueQueryStringParameters ?? event.queryStringParameters ?? {}));
      // Each takes one value: `?status=FAILED&status=CANCELLED` is not an "or" (API Gateway's single-value
      // map would quietly keep the last one), nor `?limit=500&limit=5` a valid limit.
      const repeated = Object.entries(event.multiValueQueryStringParameters ?? {}).filter(([, values]) => Array.isArray(values) && values.length > 1);
      if (repeated.length > 0) throw new ValidationError(repeated.map(([field]) => ({ field, message: 'must be given once' })), `Query parameter${repeated.length > 1 ? 's' : ''} given more than once: ${repeated.map(([name]) => name).join(', ')}`);
      let parsed: { value: unknown } | undefined;
      if (route.noBody) {
        const value = (parsed = { value: parseBody(event, route.unstored) }).value;
        const empty = value === undefined || value === null || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);
        if (!empty) throw ValidationError.field('body', `${routeName(event)} takes no body: send none`);
      }
      const handle = (hold?: Hold) => route.handle({
        event,
        caller,
        hit,
        grant: { capabilities: caller.capabilities, workspaces: caller.workspaces, environment: caller.environment, principal: principalOf(caller) },
        body: () => (parsed ??= { value: parseBody(event, route.unstored) }).value,
        param: (name) => {
          const value = event.pathParameters?.[name];
          if (value === undefined) throw new Error(`route ${routeName(event)} has no path parameter ${name}`);
          return value;
        },
        keepAs: (render) => hold && ((result) => hold.keep(render(result))),
      });
      // After the capability and size checks: a refused request takes no key.
      if (!route.idempotent || !idempotency) return handle();
      const key = checkIdempotencyKey(headerValues(event, IDEMPOTENCY_HEADER));
      if (key === undefined) return handle();
      // Until this invocation is certainly over (Lambda ends it at its timeout), plus the clock margin: a
      // crashed request blocks its retries for that long, not for the key's 24 h.
      const leaseMs = context.getRemainingTimeInMillis() + LEASE_MARGIN_MS;
      return idempotently(idempotency, route.idempotent, key, event, caller, leaseMs, handle);
    });
}

/**
 * `handle` run once for its Idempotency-Key (services/idempotency.ts): the kept answer of an earlier
 * request (409 or 422 when it cannot be), or this request's own answer, kept when it is a 2xx.
 */
async function idempotently(
  idempotency: IdempotencyDeps,
  options: Idempotent,
  key: string,
  event: ProxyEvent,
  caller: Caller,
  leaseMs: number,
  handle: (hold: Hold) => Promise<ProxyResult>,
): Promise<ProxyResult> {
  const begun = await beginIdempotent(idempotency, {
    accountId: caller.accountId,
    key,
    fingerprint: requestFingerprint({
      method: event.httpMethod,
      route: event.resource,
      pathParameters: event.pathParameters ?? {},
      query: queryValues(event, options.query ?? []),
      // The key, or the person (in this account): the same id the rate limit counts.
      principal: caller.counterId,
      body: bodyText(event),
    }),
    leaseMs,
  });
  if ('replay' in begun) return { statusCode: begun.replay.statusCode, headers: { ...begun.replay.headers }, body: begun.replay.body };
  const attempt = begun.attempt;
  const keeping = { omit: options.omit ?? [], errors: options.keepErrors ?? [] };
  // The answer the work's transaction keeps, when the route has it kept there (keepAs).
  let keptByWork: Answer | undefined;
  const hold: Hold = {
    keep: (answer) => {
      const item = keepingItem(idempotency, attempt, asAnswer(answer), keeping);
      keptByWork = item ? asAnswer(answer) : undefined;
      return item;
    },
  };
  let response: ProxyResult;
  try {
    response = await handle(hold);
  } catch (error) {
    // An error that comes after the work (a model that ran and failed) is kept as the answer it becomes.
    if (error instanceof ApiError && keeping.errors.includes(error.code)) {
      await finishIdempotent(idempotency, attempt, asAnswer(errorResponse(error, requestIdOf(event), routeName(event))), keeping);
    } else {
      await releaseIdempotent(idempotency, attempt);
    }
    throw error;
  }
  const answer = asAnswer(response);
  // Already kept, committed with the work: nothing more to write.
  if (keptByWork && sameAnswer(keptByWork, answer)) return response;
  await finishIdempotent(idempotency, attempt, answer, keeping);
  return response;
}

/** What `keepAs` hands a route: the transaction item that keeps an answer (undefined for one not kept). */
interface Hold {
  keep(answer: ProxyResult): TransactItem | undefined;
}

const asAnswer = (response: ProxyResult): Answer => ({
  statusCode: response.statusCode,
  headers: Object.fromEntries(Object.entries(response.headers ?? {}).map(([k, v]) => [k, String(v)])),
  body: response.body,
});

const sameAnswer = (a: Answer, b: Answer): boolean =>
  a.statusCode === b.statusCode && a.body === b.body && JSON.stringify(a.headers) === JSON.stringify(b.headers);

