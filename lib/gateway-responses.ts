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

const UNAUTHORIZED_MESSAGE =
  'Missing or invalid credentials: send an API key in the x-api-key header (never as Authorization: Bearer), or a signed-in person’s access token as Authorization: Bearer <token>';
const INTERNAL = { code: 'INTERNAL_ERROR', message: 'Internal server error' } as const;
/** A request the gateway refused for a reason of AWS's own (not a Knouds key or capability). */
const FORBIDDEN = 'FORBIDDEN';

export const GATEWAY_ERRORS: readonly GatewayError[] = [
  // Authentication and authorization: the authorizer's refusal, then a Deny (or an uncovered method).
  { type: ResponseType.UNAUTHORIZED, status: '401', code: 'UNAUTHORIZED', message: UNAUTHORIZED_MESSAGE },
  {
    type: ResponseType.ACCESS_DENIED,
    status: '403',
    code: 'CAPABILITY_DENIED',
    message: 'Insufficient capability',
    extra: '"required": "execute-api:Invoke", "actual": []',
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

/** The response body template: `$context.requestId` is API Gateway's request id (also `x-amzn-RequestId`). */
export function gatewayErrorBody(e: GatewayError): string {
  return `{"error": "${e.message}", "code": "${e.code}", "request_id": "$context.requestId"${e.extra ? `, ${e.extra}` : ''}}`;
}

export function addGatewayResponses(api: RestApi): void {
  for (const e of GATEWAY_ERRORS) {
    api.addGatewayResponse(`GatewayResponse${e.type.responseType}`, {
      type: e.type,
      ...(e.status ? { statusCode: e.status } : {}),
      responseHeaders: { 'Content-Type': "'application/json'", ...e.headers },
      templates: { 'application/json': gatewayErrorBody(e) },
    });
  }
}
