/**
 * The console's API types (console/src/api/schema.ts) are generated from the OpenAPI document the API
 * serves; the console calls the API only through them (openapi-fetch). Regenerated here in memory:
 * the committed file must be exactly what `npm run console:api` writes now, so a change of the API
 * that the console has not taken in fails here (drift).
 */
import { readFile } from 'node:fs/promises';
import { generateApiSchema, SCHEMA_FILE } from '../console/scripts/generate-api.js';

it('console/src/api/schema.ts is what `npm run console:api` generates from the current OpenAPI document', async () => {
  const committed = await readFile(SCHEMA_FILE, 'utf8');
  const fresh = await generateApiSchema();
  // One line for the message, not a 3,000-line diff.
  const firstDifference = fresh.split('\n').findIndex((line, i) => line !== committed.split('\n')[i]);
  const upToDate = committed === fresh;
  expect({ upToDate, firstDifferentLine: firstDifference === -1 ? null : firstDifference + 1, fix: upToDate ? null : 'npm run console:api, then commit the file' }).toEqual({
    upToDate: true,
    firstDifferentLine: null,
    fix: null,
  });
});

it('describes what the console calls, with typed bodies', async () => {
  const schema = await generateApiSchema();
  for (const path of ['"/me"', '"/keys"', '"/keys/{key_id}"', '"/keys/{key_id}/rotate"', '"/keys/{key_id}/usage"', '"/webhooks/secret"', '"/webhooks/secret/rotate"', '"/workflows"', '"/models"']) {
    expect(schema).toContain(`${path}: {`);
  }
  for (const name of ['Me', 'Key', 'KeyList', 'CreatedKeyOrReplay', 'KeyUsage', 'WebhookSecret', 'WorkflowList', 'ModelList', 'CreateKeyRequest', 'UpdateKeyRequest', 'Error']) {
    expect(schema).toMatch(new RegExp(`\\n        ${name}: [{a-z]`));
  }
  expect(schema).toContain('"Idempotency-Key"?: string');
  expect(schema).toContain('"Knouds-Account"?: string');
});
