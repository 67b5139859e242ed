/**
 * `npm run console:api`: writes console/src/api/schema.ts, the TypeScript types of the API, from the
 * OpenAPI document the API serves at GET /v1/openapi.json, built here by the very function the OpenAPI
 * Lambda calls (no server needed). The console calls the API only through these types
 * (openapi-fetch), and test/console-api.test.ts fails when the committed file differs from a fresh
 * generation, so the console cannot drift from the API.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript';
import { buildOpenApiDocument } from '../../lambdas/shared/openapi.js';

/** Where the generated types live. */
export const SCHEMA_FILE = fileURLToPath(new URL('../src/api/schema.ts', import.meta.url));

const HEADER = `${COMMENT_HEADER}// Generated from the API's OpenAPI document by \`npm run console:api\` (console/scripts/generate-api.ts).\n\n`;

/** The text of console/src/api/schema.ts for the document the API serves now. */
export async function generateApiSchema(): Promise<string> {
  const ast = await openapiTS(buildOpenApiDocument() as unknown as OpenAPI3);
  return HEADER + astToString(ast);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(SCHEMA_FILE, await generateApiSchema());
  console.log(`wrote ${SCHEMA_FILE}`);
}
