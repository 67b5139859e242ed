/**
 * OpenAPI Lambda: `GET /openapi.json`, without a key. The document is built once per cold start from
 * the schemas the other functions validate with (shared/openapi.ts); this function reads no table.
 */
import type { APIGatewayProxyResult } from 'aws-lambda';
import { buildOpenApiDocument } from '../shared/openapi.js';

const body = JSON.stringify(buildOpenApiDocument());

export function handler(): Promise<APIGatewayProxyResult> {
  return Promise.resolve({
    statusCode: 200,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'public, max-age=300' },
    body,
  });
}
