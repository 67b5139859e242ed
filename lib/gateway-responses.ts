import { ResponseType, type RestApi } from 'aws-cdk-lib/aws-apigateway';

/**
 * The errors API Gateway produces by itself (before or around our functions), each given the
 * contract's JSON body (API.md §3: `{"error", "code", "request_id", ...}`). Our functions produce the
 * other error bodies themselves.
 *
 * Every response type API Gateway has is listed, each with its own status and code, so that none falls
 * back to DEFAULT_4XX / DEFAULT_5XX. Those two set no status code: API Gateway then keeps the status of
 * the error they stand in for (a status set on them would replace the status of every 4xx, or 5xx, that
 * has no response of its own: a WAF block or a 415 would all become that one status).
 */
export interface GatewayError {
  readonly type: ResponseType;
  /** Omitted only for DEFAULT_4XX and DEFAULT_5XX: the original status is kept. */
  readonly status?: string;
  readonly code: string;
  readonly message: string;
  /** More fields of the body, after `request_id`. */
  readonly extra?: string;
  readonly headers?: Record<string, string>;
}

/** No credentials, or a refused API key (the authorizer threw `Unauthorized`): no word of bearer tokens. */
const UNAUTHORIZED_MESSAGE = 'Missing or invalid API key: send a valid, active key in the x-api-key header';
/** A refused `Authorization: Bearer` (the authorizer denied the request: lambdas/authorizer). */
const INVALID_BEARER_MESSAGE =
  'The token in Authorization: Bearer was refused. An API key goes in the x-api-key header, never in Authorization: Bearer. A signed-in person sends an access token for this API (from its provider and client, not expired, not an ID token): sign in again';
const INTERNAL = { code: 'INTERNAL_ERROR', message: 'Internal server error' } as const;
/** A request the gateway refused for a reason of AWS's own (not a Knouds key or capability). */
const FORBIDDEN = 'FORBIDDEN';

/**
 * The `WWW-Authenticate` challenges of a 401 (RFC 9110 §11.6.1, RFC 6750 §3). A request without a
 * bearer token is told both schemes the API takes: `ApiKey` (not a registered scheme; the name API
 * tools use for a key in a header: here `x-api-key`) and `Bearer` without an error code, as RFC 6750
 * §3.1 asks of a request that carried no token. A refused bearer token gets `error="invalid_token"`.
 * The realm is the deployment's key prefix (`knouds` by default).
 */
export function challenges(realm: string): { readonly keyOrNone: string; readonly invalidBearer: string } {
  return {
    keyOrNone: `ApiKey realm="${realm}", Bearer realm="${realm}"`,
    invalidBearer: `Bearer realm="${realm}", error="invalid_token", error_description="The access token is not valid for this API"`,
  };
}

/** A gateway response header value: a static value, quoted as API Gateway's mapping expressions want it. */
const quoted = (value: string) => `'${value}'`;

export function gatewayErrors(realm: string): readonly GatewayError[] {
  const challenge = challenges(realm);
  return [
    // Authentication: the authorizer's refusal of a key (or of no credentials at all), and its Deny of a
    // bearer token. It denies nothing else (every allow covers the whole API), so ACCESS_DENIED is a
    // refused token: 401, not 403. (A resource policy a deployer added, denying a caller, would answer
    // this too.)
    {
      type: ResponseType.UNAUTHORIZED,
      status: '401',
      code: 'UNAUTHORIZED',
      message: UNAUTHORIZED_MESSAGE,
      headers: { 'WWW-Authenticate': quoted(challenge.keyOrNone) },
    },
    {
      type: ResponseType.ACCESS_DENIED,
      status: '401',
      code: 'UNAUTHORIZED',
      message: INVALID_BEARER_MESSAGE,
      headers: { 'WWW-Authenticate': quoted(challenge.invalidBearer) },
    },
    // AWS's own checks, none of which this stack turns on; a deployer may (a WAF web ACL on the stage, a
    // usage plan with required API keys, IAM authorization): 403 as AWS says, with a code that does not
    // pretend to be a Knouds key or capability refusal.
    { type: ResponseType.WAF_FILTERED, status: '403', code: FORBIDDEN, message: 'The request was blocked by the web application firewall in front of this API' },
    { type: ResponseType.INVALID_API_KEY, status: '403', code: FORBIDDEN, message: 'The request has no valid API Gateway API key for this stage’s usage plan' },
    { type: ResponseType.INVALID_SIGNATURE, status: '403', code: FORBIDDEN, message: 'The request’s AWS signature is not valid' },
    { type: ResponseType.EXPIRED_TOKEN, status: '403', code: FORBIDDEN, message: 'The request’s AWS security token has expired' },
    // An unknown path or method: API Gateway says 403 "Missing Authentication Token"; the contract says 404.
    { type: ResponseType.MISSING_AUTHENTICATION_TOKEN, status: '404', code: 'NOT_FOUND', message: 'No such route: check the method and the path' },
    { type: ResponseType.RESOURCE_NOT_FOUND, status: '404', code: 'NOT_FOUND', message: 'Not found' },
    // The request validator (path parameters; no method declares a body model).
    { type: ResponseType.BAD_REQUEST_BODY, status: '400', code: 'VALIDATION_ERROR', message: 'The request body is not valid', extra: '"details": []' },
    { type: ResponseType.BAD_REQUEST_PARAMETERS, status: '400', code: 'VALIDATION_ERROR', message: 'The request parameters are not valid', extra: '"details": []' },
    { type: ResponseType.REQUEST_TOO_LARGE, status: '413', code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large' },
    // e.g. GET /health (a mock integration with an application/json template only) with another Content-Type.
    {
      type: ResponseType.UNSUPPORTED_MEDIA_TYPE,
      status: '415',
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: 'The request’s Content-Type is not supported here: send Content-Type: application/json, or none',
    },
    // The stage's own rate limit, all callers together (not the per-key limit, which our functions answer
    // with RATE_LIMIT_EXCEEDED and exact X-RateLimit-* headers).
    {
      type: ResponseType.THROTTLED,
      status: '429',
      code: 'THROTTLED',
      message: 'Too many requests to this API from all callers together; retry after the time in the Retry-After header',
      headers: { 'Retry-After': "'1'" },
    },
    // A usage plan's quota (the stack has none; a deployer may add one).
    {
      type: ResponseType.QUOTA_EXCEEDED,
      status: '429',
      code: 'THROTTLED',
      message: 'The usage plan’s request quota is used up; retry after the time in the Retry-After header',
      headers: { 'Retry-After': "'60'" },
    },
    { type: ResponseType.AUTHORIZER_FAILURE, status: '500', ...INTERNAL },
    { type: ResponseType.AUTHORIZER_CONFIGURATION_ERROR, status: '500', ...INTERNAL },
    { type: ResponseType.API_CONFIGURATION_ERROR, status: '500', ...INTERNAL },
    // The function could not be reached or failed: 502, the status API Gateway gives a Lambda proxy
    // function that crashes or answers badly (DEFAULT_5XX below), so "the function failed" is one status.
    { type: ResponseType.INTEGRATION_FAILURE, status: '502', ...INTERNAL },
    // The function outlived API Gateway's integration timeout (29 s).
    { type: ResponseType.INTEGRATION_TIMEOUT, status: '504', code: 'GATEWAY_TIMEOUT', message: 'The request timed out before the API answered' },
    // Anything else: the original status, a generic code (it may be any 4xx; it is not a validation error).
    { type: ResponseType.DEFAULT_4XX, code: 'REQUEST_REFUSED', message: 'The request was refused' },
    { type: ResponseType.DEFAULT_5XX, ...INTERNAL },
  ];
}

/** The gateway's errors with the default key prefix as realm (for tests and documents). */
export const GATEWAY_ERRORS: readonly GatewayError[] = gatewayErrors('knouds');

/** The response body template: `$context.requestId` is API Gateway's request id (also `x-amzn-RequestId`). */
export function gatewayErrorBody(e: GatewayError): string {
  return `{"error": "${e.message}", "code": "${e.code}", "request_id": "$context.requestId"${e.extra ? `, ${e.extra}` : ''}}`;
}

/**
 * The header mapping that gives every answer of the gateway itself the request id, as the functions
 * give theirs (`x-request-id`, API.md §3): API Gateway's `$context.requestId`, which the body repeats.
 */
export const REQUEST_ID_HEADER_MAPPING = { 'x-request-id': 'context.requestId' } as const;

/** `realm`: the `WWW-Authenticate` realm of the 401s (the deployment's key prefix). */
export function addGatewayResponses(api: RestApi, realm: string): void {
  for (const e of gatewayErrors(realm)) {
    api.addGatewayResponse(`GatewayResponse${e.type.responseType}`, {
      type: e.type,
      ...(e.status ? { statusCode: e.status } : {}),
      // nosniff, as the functions' answers (lambdas/shared/responses.ts).
      responseHeaders: { 'Content-Type': "'application/json'", 'X-Content-Type-Options': "'nosniff'", ...REQUEST_ID_HEADER_MAPPING, ...e.headers },
      templates: { 'application/json': gatewayErrorBody(e) },
    });
  }
}
