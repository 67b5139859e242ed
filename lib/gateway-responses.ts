import { ResponseType, type RestApi } from 'aws-cdk-lib/aws-apigateway';

/**
 * The errors API Gateway produces by itself (before or around our functions), each given the
 * contract's JSON body (API.md §3). Our functions produce the other error bodies themselves.
 */
interface GatewayError {
  readonly type: ResponseType;
  readonly status: string;
  readonly code: string;
  readonly message: string;
  readonly extra?: string;
  readonly headers?: Record<string, string>;
}

const UNAUTHORIZED_MESSAGE =
  'Missing or invalid API key: send it in the x-api-key header (Authorization: Bearer is not accepted)';

export const GATEWAY_ERRORS: readonly GatewayError[] = [
  { type: ResponseType.UNAUTHORIZED, status: '401', code: 'UNAUTHORIZED', message: UNAUTHORIZED_MESSAGE },
  {
    type: ResponseType.ACCESS_DENIED,
    status: '403',
    code: 'CAPABILITY_DENIED',
    message: 'Insufficient capability',
    extra: '"required": "execute-api:Invoke", "actual": []',
  },
  // An unknown path or method: API Gateway says 403 "Missing Authentication Token"; users expect 404.
  { type: ResponseType.MISSING_AUTHENTICATION_TOKEN, status: '404', code: 'NOT_FOUND', message: 'No such route: check the method and the path' },
  { type: ResponseType.RESOURCE_NOT_FOUND, status: '404', code: 'NOT_FOUND', message: 'Not found' },
  { type: ResponseType.BAD_REQUEST_BODY, status: '400', code: 'VALIDATION_ERROR', message: 'The request body is not valid', extra: '"details": []' },
  { type: ResponseType.BAD_REQUEST_PARAMETERS, status: '400', code: 'VALIDATION_ERROR', message: 'The request parameters are not valid', extra: '"details": []' },
  { type: ResponseType.REQUEST_TOO_LARGE, status: '413', code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large' },
  // Stage throttling (not the per-key limit, which our functions enforce with exact headers).
  {
    type: ResponseType.THROTTLED,
    status: '429',
    code: 'RATE_LIMIT_EXCEEDED',
    message: 'Too many requests; retry after the time in the Retry-After header',
    headers: { 'Retry-After': "'1'" },
  },
  {
    type: ResponseType.QUOTA_EXCEEDED,
    status: '429',
    code: 'RATE_LIMIT_EXCEEDED',
    message: 'Too many requests; retry after the time in the Retry-After header',
    headers: { 'Retry-After': "'60'" },
  },
  { type: ResponseType.AUTHORIZER_FAILURE, status: '500', code: 'INTERNAL_ERROR', message: 'Internal server error', extra: '"request_id": "$context.requestId"' },
  { type: ResponseType.AUTHORIZER_CONFIGURATION_ERROR, status: '500', code: 'INTERNAL_ERROR', message: 'Internal server error', extra: '"request_id": "$context.requestId"' },
  { type: ResponseType.INTEGRATION_TIMEOUT, status: '504', code: 'INTERNAL_ERROR', message: 'The request timed out', extra: '"request_id": "$context.requestId"' },
  { type: ResponseType.INTEGRATION_FAILURE, status: '504', code: 'INTERNAL_ERROR', message: 'Internal server error', extra: '"request_id": "$context.requestId"' },
  { type: ResponseType.DEFAULT_4XX, status: '400', code: 'VALIDATION_ERROR', message: 'The request is not valid', extra: '"details": []' },
  { type: ResponseType.DEFAULT_5XX, status: '500', code: 'INTERNAL_ERROR', message: 'Internal server error', extra: '"request_id": "$context.requestId"' },
];

export function addGatewayResponses(api: RestApi): void {
  for (const e of GATEWAY_ERRORS) {
    const body = `{"error": "${e.message}", "code": "${e.code}"${e.extra ? `, ${e.extra}` : ''}}`;
    api.addGatewayResponse(`GatewayResponse${e.type.responseType}`, {
      type: e.type,
      statusCode: e.status,
      responseHeaders: { 'Content-Type': "'application/json'", ...e.headers },
      templates: { 'application/json': body },
    });
  }
}
