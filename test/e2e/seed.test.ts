/**
 * `npm start`'s seeding on data a persisted run changed (API.md §5): the demo account moved to another
 * tier, or holding its limit of keys. Start-up goes on either way: the admin key holds what the admin
 * scope has within the tier's ceiling, and when no key can be made start-up says why and what to do.
 */
import { jest } from '@jest/globals';
import { SCOPES } from '../../lambdas/shared/capabilities.js';
import { createKey, revokeKey, setAccountTier } from '../../lambdas/shared/services/keys.js';
import { DEMO_ACCOUNT_ID } from '../../local-runner/stack.js';
import { uniquePrefix } from '../support/dynamodb.js';
import { startTestStack, type TestStack } from '../support/stack.js';

jest.setTimeout(120_000);

// One set of tables for every start of this file, as with `npm start -- --persist`.
const tableNamePrefix = uniquePrefix('e2e-seed');
let t: TestStack | undefined;
afterAll(async () => {
  await t?.close();
});

/** Starts (again) on the same tables; what start-up said. */
async function start(): Promise<string[]> {
  await t?.close();
  const said: string[] = [];
  t = await startTestStack('e2e-seed', { seed: true, tableNamePrefix, onProgress: (line) => said.push(line) });
  return said;
}

const sorted = (values: readonly string[]) => [...values].sort();

it('moved to pro: the admin key holds the admin scope without model:run; full, or on the free tier: no admin key, said with what to do', async () => {
  await start();
  const first = await t!.api(t!.stack.adminKey!, 'GET', '/keys/verify');
  expect(first.body).toMatchObject({ account_id: DEMO_ACCOUNT_ID, tier: 'business' });
  expect(sorted(first.body['capabilities'] as string[])).toEqual(sorted(SCOPES.admin));

  await setAccountTier(t!.deps(), DEMO_ACCOUNT_ID, 'pro');
  let said = await start();
  const pro = await t!.api(t!.stack.adminKey!, 'GET', '/keys/verify');
  expect(pro.status).toBe(200);
  expect(pro.body).toMatchObject({ tier: 'pro' });
  expect(sorted(pro.body['capabilities'] as string[])).toEqual(sorted(SCOPES.admin.filter((c) => c !== 'model:run')));
  expect(said.filter((line) => line.startsWith('No admin API key'))).toEqual([]);

  // The account filled with keys of its own (the admin key's slot taken too).
  const deps = t!.deps();
  const limit = deps.settings.maxActiveKeysPerAccount;
  await revokeKey(deps, DEMO_ACCOUNT_ID, String(pro.body['key_id']));
  for (let i = 0; i < limit; i++) await createKey(deps, DEMO_ACCOUNT_ID, { name: `mine ${i}`, preset: 'read-only' });
  said = await start();
  expect(t!.stack.adminKey).toBeUndefined();
  expect(said).toContain(`No admin API key: ${DEMO_ACCOUNT_ID} holds ${limit} active keys, its limit (npm run admin -- key revoke <key_id> frees a slot for the next start).`);
  // The rest started: the API answers, and the console's sign-in is there.
  expect((await t!.api(undefined, 'GET', '/health')).status).toBe(200);
  expect(t!.stack.demoPerson).toBeDefined();

  await setAccountTier(t!.deps(), DEMO_ACCOUNT_ID, 'free');
  said = await start();
  expect(t!.stack.adminKey).toBeUndefined();
  expect(said).toContain(
    `No admin API key: ${DEMO_ACCOUNT_ID} is on the free tier, which has no API keys (npm run admin -- account set-tier --id ${DEMO_ACCOUNT_ID} --tier business gives it one at the next start).`,
  );
});
