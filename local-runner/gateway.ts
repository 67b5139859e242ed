/**
 * A small API Gateway (REST, Lambda proxy) for the API a synthesized template describes: it routes by
 * the template's Resource/Method tree, runs its REQUEST authorizer with API Gateway's event shape and
 * rules, invokes the same bundles that deploy with proxy events, and renders the template's Gateway
 * Responses for the errors the gateway itself produces.
 *
 * Known differences from API Gateway, none of which the contract depends on: no stage throttling, no
 * request validators, no 29 s integration limit beyond the function's own timeout, and a path outside
 * the stage gets the MISSING_AUTHENTICATION_TOKEN response (API Gateway answers 403 "Forbidden").
 */
import { isUtf8 as isUtf8Buffer } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FunctionError, RequestTooLargeError } from './functions.js';
import type { AuthorizerDef, GatewayResponseDef, LocalApiModel, MethodDef } from './template.js';

export const API_ID = 'local';
/** API Gateway's payload limit (Lambda's 6 MB limits on the proxy event and result: see functions.ts). */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export type Invoke = (functionId: string, event: unknown) => Promise<unknown>;

export interface AccessLogEntry {
  readonly requestId: string;
  readonly httpMethod: string;
  readonly path: string;
  readonly status: number;
  readonly latencyMs: number;
  readonly errorType?: string;
}

export interface GatewayOptions {
  readonly model: LocalApiModel;
  readonly invoke: Invoke;
  readonly region: string;
  readonly accountId: string;
  readonly accessLog?: (entry: AccessLogEntry) => void;
}

interface Route {
  readonly method: MethodDef;
  readonly pathParameters: Record<string, string> | null;
}

interface Node {
  readonly literal: Map<string, Node>;
  param?: { name: string; node: Node };
  greedy?: { name: string; node: Node };
  readonly methods: Map<string, MethodDef>;
}

const newNode = (): Node => ({ literal: new Map(), methods: new Map() });

/** The resource tree, matched as API Gateway does: literal segments before `{param}`, before `{proxy+}`. */
export function buildRouter(methods: readonly MethodDef[]): (httpMethod: string, path: string) => Route | undefined {
  const root = newNode();
  for (const method of methods) {
    let node = root;
    for (const part of method.resourcePath.split('/').filter(Boolean)) {
      const greedy = /^\{(.+)\+\}$/.exec(part);
      const param = /^\{(.+)\}$/.exec(part);
      if (greedy) node = (node.greedy ??= { name: greedy[1]!, node: newNode() }).node;
      else if (param) node = (node.param ??= { name: param[1]!, node: newNode() }).node;
      else {
        let next = node.literal.get(part);
        if (!next) node.literal.set(part, (next = newNode()));
        node = next;
      }
    }
    node.methods.set(method.httpMethod, method);
  }
  const pick = (node: Node, httpMethod: string) => node.methods.get(httpMethod) ?? node.methods.get('ANY');
  const match = (node: Node, httpMethod: string, parts: string[], i: number, params: Record<string, string>): MethodDef | undefined => {
    if (i === parts.length) return pick(node, httpMethod);
    const part = parts[i]!;
    const lit = node.literal.get(part);
    if (lit) {
      const found = match(lit, httpMethod, parts, i + 1, params);
      if (found) return found;
    }
    if (node.param) {
      const found = match(node.param.node, httpMethod, parts, i + 1, params);
      if (found) {
        params[node.param.name] = part;
        return found;
      }
    }
    if (node.greedy) {
      const found = pick(node.greedy.node, httpMethod);
      if (found) {
        params[node.greedy.name] = parts.slice(i).join('/');
        return found;
      }
    }
    return undefined;
  };
  return (httpMethod, path) => {
    let parts: string[];
    try {
      parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return undefined;
    }
    const params: Record<string, string> = {};
    const method = match(root, httpMethod, parts, 0, params);
    if (!method) return undefined;
    return { method, pathParameters: Object.keys(params).length > 0 ? params : null };
  };
}

interface Statement {
  Effect?: string;
  Action?: string | string[];
  Resource?: string | string[];
}

/** Each pattern's expression, compiled once (an authorizer answers the same few policies again and again). */
const wildcards = new Map<string, RegExp>();
const wildcard = (pattern: string) => {
  let re = wildcards.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    if (wildcards.size >= 10_000) wildcards.clear();
    wildcards.set(pattern, re);
  }
  return re;
};
const asList = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** IAM evaluation of an authorizer policy for one method ARN: an explicit Deny wins, else an Allow is needed. */
export function policyAllows(policy: unknown, methodArn: string): boolean {
  const statement = (policy as { Statement?: Statement | Statement[] } | null | undefined)?.Statement;
  const statements = statement === undefined ? [] : Array.isArray(statement) ? statement : [statement];
  const applies = (s: Statement) =>
    asList(s.Action).some((a) => wildcard(a).test('execute-api:Invoke')) && asList(s.Resource).some((r) => wildcard(r).test(methodArn));
  let allowed = false;
  for (const s of statements) {
    if (!applies(s)) continue;
    if (s.Effect === 'Deny') return false;
    if (s.Effect === 'Allow') allowed = true;
  }
  return allowed;
}

class GatewayError extends Error {
  constructor(readonly responseType: string, message: string) {
    super(message);
  }
}

/**
 * The status API Gateway gives each of its own errors (the "default status code" of each gateway
 * response type). A gateway response without a status code of its own (DEFAULT_4XX and DEFAULT_5XX in
 * this stack) keeps it.
 */
export const DEFAULT_STATUS: Readonly<Record<string, number>> = {
  ACCESS_DENIED: 403,
  API_CONFIGURATION_ERROR: 500,
  AUTHORIZER_CONFIGURATION_ERROR: 500,
  AUTHORIZER_FAILURE: 500,
  BAD_REQUEST_PARAMETERS: 400,
  BAD_REQUEST_BODY: 400,
  EXPIRED_TOKEN: 403,
  INTEGRATION_FAILURE: 504,
  INTEGRATION_TIMEOUT: 504,
  INVALID_API_KEY: 403,
  INVALID_SIGNATURE: 403,
  MISSING_AUTHENTICATION_TOKEN: 403,
  QUOTA_EXCEEDED: 429,
  REQUEST_TOO_LARGE: 413,
  RESOURCE_NOT_FOUND: 404,
  THROTTLED: 429,
  UNAUTHORIZED: 401,
  UNSUPPORTED_MEDIA_TYPE: 415,
  WAF_FILTERED: 403,
};

interface Reply {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
  errorType?: string;
}

interface CachedDecision {
  readonly expiresAt: number;
  readonly principalId: string;
  readonly policy: unknown;
  readonly context: Record<string, unknown>;
}

export function createGateway(options: GatewayOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { model, invoke, region, accountId } = options;
  const route = buildRouter(model.methods);
  const stagePrefix = `/${model.stageName}`;
  const cache = new Map<string, CachedDecision>();

  /**
   * The template's gateway response for `type`, else its DEFAULT_4XX or DEFAULT_5XX (by the error's
   * own status). A response without a status code keeps the error's own status: `status` when given
   * (502 for a function that failed), else the type's default.
   */
  const gatewayReply = (type: string, requestId: string, message: string, status?: number): Reply => {
    const original = status ?? DEFAULT_STATUS[type] ?? 500;
    const fallback = original >= 500 ? 'DEFAULT_5XX' : 'DEFAULT_4XX';
    const def: GatewayResponseDef | undefined = model.gatewayResponses.get(type) ?? model.gatewayResponses.get(fallback);
    const code = def?.statusCode === undefined ? original : Number(def.statusCode);
    const template = def?.templates['application/json'];
    const body =
      template !== undefined
        ? template
            .replaceAll('$context.requestId', requestId)
            .replaceAll('$context.error.messageString', JSON.stringify(message))
            .replaceAll('$context.error.message', message)
            .replaceAll('$context.error.responseType', type)
        : JSON.stringify({ message });
    return {
      status: code,
      // x-request-id: the template maps it from context.requestId on every gateway response, which
      // template.ts (static values only) does not carry over (lib/gateway-responses.ts).
      headers: { 'Content-Type': 'application/json', ...def?.headers, 'x-request-id': requestId, 'x-amzn-ErrorType': type },
      body: Buffer.from(body),
      errorType: type,
    };
  };

  const authorize = async (
    authorizer: AuthorizerDef,
    methodArn: string,
    base: ReturnType<typeof requestParts>,
    requestContext: Record<string, unknown>,
  ): Promise<{ principalId: string; context: Record<string, unknown> }> => {
    const identity: string[] = [];
    for (const source of authorizer.identitySources) {
      const header = /^method\.request\.header\.(.+)$/.exec(source);
      const query = /^method\.request\.querystring\.(.+)$/.exec(source);
      const value = header
        ? base.lowerHeaders[header[1]!.toLowerCase()]
        : query
          ? base.queryStringParameters?.[query[1]!]
          : undefined;
      // A missing identity source is refused before the authorizer runs.
      if (value === undefined || value === '') throw new GatewayError('UNAUTHORIZED', 'Unauthorized');
      identity.push(value);
    }
    const cacheKey = `${authorizer.logicalId}\u0000${identity.join('\u0000')}`;
    let decision = authorizer.resultTtlSeconds > 0 ? cache.get(cacheKey) : undefined;
    if (decision && decision.expiresAt <= Date.now()) decision = undefined;
    if (!decision) {
      const event =
        authorizer.type === 'TOKEN'
          ? { type: 'TOKEN', methodArn, authorizationToken: identity[0] }
          : {
              type: 'REQUEST',
              methodArn,
              resource: base.resource,
              path: base.path,
              httpMethod: base.httpMethod,
              headers: base.headers,
              multiValueHeaders: base.multiValueHeaders,
              queryStringParameters: base.queryStringParameters,
              multiValueQueryStringParameters: base.multiValueQueryStringParameters,
              pathParameters: base.pathParameters ?? {},
              stageVariables: null,
              requestContext,
            };
      let result: unknown;
      try {
        result = await invoke(authorizer.functionId, event);
      } catch (error) {
        if (error instanceof FunctionError && error.message === 'Unauthorized') throw new GatewayError('UNAUTHORIZED', 'Unauthorized');
        throw new GatewayError('AUTHORIZER_FAILURE', 'Authorizer error');
      }
      const r = result as { principalId?: unknown; policyDocument?: unknown; context?: unknown } | null;
      const context = (r?.context ?? {}) as Record<string, unknown>;
      const validContext =
        typeof context === 'object' &&
        !Array.isArray(context) &&
        Object.values(context).every((v) => ['string', 'number', 'boolean'].includes(typeof v));
      if (!r || typeof r.principalId !== 'string' || typeof r.policyDocument !== 'object' || !validContext) {
        throw new GatewayError('AUTHORIZER_CONFIGURATION_ERROR', 'Authorizer configuration error');
      }
      decision = {
        expiresAt: Date.now() + authorizer.resultTtlSeconds * 1000,
        principalId: r.principalId,
        policy: r.policyDocument,
        context,
      };
      if (authorizer.resultTtlSeconds > 0) cache.set(cacheKey, decision);
    }
    if (!policyAllows(decision.policy, methodArn)) {
      throw new GatewayError('ACCESS_DENIED', 'User is not authorized to access this resource with an explicit deny');
    }
    return { principalId: decision.principalId, context: decision.context };
  };

  const handle = async (req: IncomingMessage, body: Buffer, requestId: string): Promise<Reply> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const httpMethod = (req.method ?? 'GET').toUpperCase();
    if (url.pathname !== stagePrefix && !url.pathname.startsWith(`${stagePrefix}/`)) {
      return gatewayReply('MISSING_AUTHENTICATION_TOKEN', requestId, 'Missing Authentication Token');
    }
    const path = url.pathname.slice(stagePrefix.length) || '/';
    const found = route(httpMethod, path);
    if (!found) return gatewayReply('MISSING_AUTHENTICATION_TOKEN', requestId, 'Missing Authentication Token');
    const { method, pathParameters } = found;
    const base = requestParts(req, url, path, method.resourcePath, httpMethod, pathParameters);
    const now = new Date();
    const requestContext: Record<string, unknown> = {
      accountId,
      apiId: API_ID,
      resourceId: method.resourcePath,
      resourcePath: method.resourcePath,
      httpMethod,
      path: url.pathname,
      stage: model.stageName,
      requestId,
      extendedRequestId: requestId,
      requestTime: now.toUTCString(),
      requestTimeEpoch: now.getTime(),
      protocol: `HTTP/${req.httpVersion}`,
      domainName: req.headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      identity: {
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: req.headers['user-agent'] ?? null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        user: null,
        userArn: null,
        accessKey: null,
        clientCert: null,
      },
    };

    let authorizerContext: Record<string, unknown> | undefined;
    if (method.authorizationType === 'CUSTOM' && method.authorizerId) {
      const authorizer = model.authorizers.get(method.authorizerId);
      if (!authorizer) return gatewayReply('AUTHORIZER_CONFIGURATION_ERROR', requestId, 'Unknown authorizer');
      const methodArn = `arn:aws:execute-api:${region}:${accountId}:${API_ID}/${model.stageName}/${httpMethod}${path}`;
      const started = Date.now();
      try {
        const { principalId, context } = await authorize(authorizer, methodArn, base, requestContext);
        // API Gateway hands the proxy integration every context value as a string.
        authorizerContext = Object.fromEntries(Object.entries(context).map(([k, v]) => [k, String(v)]));
        authorizerContext['principalId'] = principalId;
        authorizerContext['integrationLatency'] = Date.now() - started;
      } catch (error) {
        if (error instanceof GatewayError) return gatewayReply(error.responseType, requestId, error.message);
        throw error;
      }
    }

    const integration = method.integration;
    if (integration.type === 'MOCK') {
      // The request template is chosen by the request's media type (application/json when it sends none);
      // without one, NEVER (and WHEN_NO_TEMPLATES on an integration that has templates) refuses the request.
      const contentType = String(req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
      const templates = integration.requestContentTypes;
      const refuses = integration.passthroughBehavior === 'NEVER' || (integration.passthroughBehavior === 'WHEN_NO_TEMPLATES' && templates.length > 0);
      if (refuses && !templates.includes(contentType)) return gatewayReply('UNSUPPORTED_MEDIA_TYPE', requestId, 'Unsupported Media Type');
      const response = integration.responses.find((r) => !r.selectionPattern) ?? integration.responses[0];
      // The mapping template's context variables the template's mocks use (GET /health, the 405s of
      // lib/method-not-allowed.ts), and their x-request-id header, mapped from context.requestId.
      const body = (response?.template ?? '').replaceAll('$context.requestId', requestId).replaceAll('$context.httpMethod', httpMethod);
      return {
        status: Number(response?.statusCode ?? 200),
        headers: { 'Content-Type': 'application/json', ...response?.headers, 'x-request-id': requestId },
        body: Buffer.from(body),
      };
    }

    const isText = body.length === 0 || isUtf8(body);
    const event = {
      resource: method.resourcePath,
      path,
      httpMethod,
      headers: base.headers,
      multiValueHeaders: base.multiValueHeaders,
      queryStringParameters: base.queryStringParameters,
      multiValueQueryStringParameters: base.multiValueQueryStringParameters,
      pathParameters,
      stageVariables: null,
      requestContext: authorizerContext ? { ...requestContext, authorizer: authorizerContext } : requestContext,
      body: body.length === 0 ? null : isText ? body.toString('utf8') : body.toString('base64'),
      isBase64Encoded: !isText,
    };
    let result: unknown;
    try {
      result = await invoke(integration.functionId, event);
    } catch (error) {
      // The proxy event (body, headers, request context: the whole JSON) is over Lambda's 6 MB request
      // limit: Lambda refuses the invoke with 413 and API Gateway answers 413 "Request Too Long" (as for
      // its own 10 MB limit); the function never runs.
      if (error instanceof RequestTooLargeError) return gatewayReply('REQUEST_TOO_LARGE', requestId, 'Request Too Long');
      // The function's result is over Lambda's 6 MB response limit: the invocation fails and API Gateway
      // answers its INTEGRATION_FAILURE response (502 "Internal server error" unless the API sets one).
      if (error instanceof FunctionError && error.errorName === 'Function.ResponseSizeTooLarge') {
        return gatewayReply('INTEGRATION_FAILURE', requestId, 'Internal server error', 502);
      }
      return gatewayReply('DEFAULT_5XX', requestId, 'Internal server error', 502);
    }
    const r = result as {
      statusCode?: unknown;
      headers?: Record<string, unknown>;
      multiValueHeaders?: Record<string, unknown[]>;
      body?: unknown;
      isBase64Encoded?: unknown;
    } | null;
    if (!r || typeof r !== 'object' || !Number.isInteger(r.statusCode) || (r.body != null && typeof r.body !== 'string')) {
      return gatewayReply('DEFAULT_5XX', requestId, 'Internal server error', 502);
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(r.headers ?? {})) headers[k] = String(v);
    for (const [k, v] of Object.entries(r.multiValueHeaders ?? {})) headers[k] = v.map(String);
    const text = typeof r.body === 'string' ? r.body : '';
    return {
      status: r.statusCode as number,
      headers,
      body: r.isBase64Encoded === true ? Buffer.from(text, 'base64') : Buffer.from(text),
    };
  };

  return (req, res) => {
    const started = performance.now();
    const requestId = randomUUID();
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const reply: Promise<Reply> = tooLarge
        ? Promise.resolve(gatewayReply('REQUEST_TOO_LARGE', requestId, 'Request Too Long'))
        : handle(req, Buffer.concat(chunks), requestId).catch(() =>
            gatewayReply('DEFAULT_5XX', requestId, 'Internal server error', 500),
          );
      void reply.then((r) => {
        res.writeHead(r.status, { ...r.headers, 'x-amzn-RequestId': requestId, 'Content-Length': String(r.body.length) });
        res.end(r.body);
        options.accessLog?.({
          requestId,
          httpMethod: req.method ?? '',
          path: req.url ?? '',
          status: r.status,
          latencyMs: Math.round((performance.now() - started) * 10) / 10,
          ...(r.errorType ? { errorType: r.errorType } : {}),
        });
      });
    });
  };
}

function isUtf8(buffer: Buffer): boolean {
  return isUtf8Buffer(buffer);
}

/** Headers (with their original case, as API Gateway passes them) and query string of a request. */
function requestParts(
  req: IncomingMessage,
  url: URL,
  path: string,
  resource: string,
  httpMethod: string,
  pathParameters: Record<string, string> | null,
) {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const lowerHeaders: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    headers[name] = value;
    (multiValueHeaders[name] ??= []).push(value);
    lowerHeaders[name.toLowerCase()] = value;
  }
  let queryStringParameters: Record<string, string> | null = null;
  let multiValueQueryStringParameters: Record<string, string[]> | null = null;
  for (const [name, value] of url.searchParams) {
    (queryStringParameters ??= {})[name] = value;
    ((multiValueQueryStringParameters ??= {})[name] ??= []).push(value);
  }
  return {
    resource,
    path,
    httpMethod,
    headers,
    multiValueHeaders,
    lowerHeaders,
    queryStringParameters,
    multiValueQueryStringParameters,
    pathParameters,
  };
}
