/**
 * The answers of every function behind API Gateway: JSON bodies, the contract's error bodies (API.md §3:
 * `{error, code, request_id, ...}`, never a stack trace) and the request id. Small on purpose: the
 * OpenAPI function uses it without the authenticated middleware of http.ts.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { ApiError } from './errors.js';
import { log } from './log.js';

export type ProxyEvent = APIGatewayProxyEvent;
export type ProxyResult = APIGatewayProxyResult;

/**
 * A JSON answer. Never stored by a cache (`no-store`) unless `headers` says otherwise: answers belong to
 * their caller, and some hold a plaintext key or the webhook secret (a browser or a proxy keeping them
 * would keep the secret too). `nosniff`: a browser never reads one as anything but JSON (a value a caller
 * stored, shown back, cannot become a page or a script).
 */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): ProxyResult {
  return {
    statusCode,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers },
    body: body === undefined ? '' : JSON.stringify(body),
  };
}

/**
 * The header every answer of the API carries: API Gateway's id for the request (the same as its
 * `x-amzn-RequestId` and `$context.requestId`), which every error body repeats as `request_id` (API.md
 * §3). The gateway's own answers map it in the template (lib/gateway-responses.ts).
 */
export const REQUEST_ID_HEADER = 'x-request-id';

/** The request id of an event (`unknown` only for an event that did not come through API Gateway). */
export const requestIdOf = (event: ProxyEvent): string => event.requestContext?.requestId ?? 'unknown';

export function errorResponse(error: unknown, requestId: string, route: string): ProxyResult {
  if (error instanceof ApiError) {
    return json(error.status, { error: error.message, code: error.code, request_id: requestId, ...error.extra() }, { [REQUEST_ID_HEADER]: requestId });
  }
  // Details go to the log, never to the client.
  log('error', 'unhandled error', {
    route,
    request_id: requestId,
    error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error),
  });
  return json(500, { error: 'Internal server error', code: 'INTERNAL_ERROR', request_id: requestId }, { [REQUEST_ID_HEADER]: requestId });
}
