/**
 * OpenAPI Lambda: `GET /openapi.json`, without a key. The document is built once per cold start from
 * the schemas the other functions validate with (shared/openapi.ts); this function reads no table. Like
 * every route it answers with `x-request-id`, and refuses query parameters (it takes none).
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { buildOpenApiDocument } from '../shared/openapi.js';
import { assertKnownQueryParameters } from '../shared/query-parameters.js';
import { errorResponse, REQUEST_ID_HEADER, requestIdOf } from '../shared/responses.js';

const ROUTE = 'GET /openapi.json';
const body = JSON.stringify(buildOpenApiDocument());

export function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  const requestId = requestIdOf(event);
  try {
    assertKnownQueryParameters(ROUTE, Object.keys(event.multiValueQueryStringParameters ?? event.queryStringParameters ?? {}));
  } catch (error) {
    return Promise.resolve(errorResponse(error, requestId, ROUTE));
  }
  return Promise.resolve({
    statusCode: 200,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff', [REQUEST_ID_HEADER]: requestId },
    body,
  });
}
