/**
 * Every endpoint that takes a body, end to end, fed random JSON, mutations of a valid body and text that
 * is not JSON (fast-check): the answer is a success or a 4xx with the contract's JSON error, never a
 * 5xx, and a refused body writes nothing (every table but the usage counters scanned before and after).
 * Bodies over each function's limit get 413 PAYLOAD_TOO_LARGE.
 */
/* eslint-disable jest/no-conditional-expect -- a property's expectation depends on the generated case */
import { jest } from '@jest/globals';
import fc from 'fast-check';
import { createKey } from '../../lambdas/shared/services/keys.js';
import { call } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
let accountId: string;
let targetKeyId: string;
/** Keys of the account for the fuzzing: one per endpoint (the rate limit is per key), made up front. */
const fuzzKeys = new Map<string, string>();
let bigKey: string;

// 40 bodies per route, each with two snapshots of every table: minutes on a loaded 2-core machine.
jest.setTimeout(120_000);
const DEFINITION = {
  input_schema: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
  steps: [{ id: 'up', model: 'uppercase', input: { text: '$.input.text' } }],
  output: '$.steps.up.output',
};

beforeAll(async () => {
  t = await startTestStack('e2e-bodies');
  ({ accountId } = await t.account('business'));
  const admin = await createKey(t.deps(), accountId, { name: 'setup', scope: 'admin' });
  for (const e of ENDPOINTS) {
    // POST /keys fills an account with the keys it creates: it gets an account of its own.
    const owner = e.name === 'POST /keys' ? (await t.account('business', { name: 'x', scope: 'admin' })).accountId : accountId;
    fuzzKeys.set(e.name, (await createKey(t.deps(), owner, { name: `fuzz ${e.name}`, scope: 'admin' })).apiKey);
  }
  bigKey = (await createKey(t.deps(), accountId, { name: 'big', scope: 'admin' })).apiKey;
  targetKeyId = (await createKey(t.deps(), accountId, { name: 'target', preset: 'read-only' })).key.key_id;
  const created = await t.api(admin.apiKey, 'POST', '/workflows', { slug: 'shout', name: 'Shout', definition: DEFINITION });
  const deployed = await t.api(admin.apiKey, 'POST', '/workflows/shout/deploy');
  if (created.status !== 201 || deployed.status !== 200) throw new Error(`setup failed: ${created.text} ${deployed.text}`);
}, 60_000);
afterAll(() => t?.close());

type Endpoint = { name: string; method: string; path: () => string; valid: Record<string, unknown>; limit: number };
const KEYS_LIMIT = 160 * 1024;
const WORKFLOWS_LIMIT = 256 * 1024;
const ENDPOINTS: Endpoint[] = [
  { name: 'POST /keys', method: 'POST', path: () => '/keys', valid: { name: 'fuzz', capabilities: ['workflow:read'], expires_in_days: 7 }, limit: KEYS_LIMIT },
  { name: 'PATCH /keys/{id}', method: 'PATCH', path: () => `/keys/${targetKeyId}`, valid: { name: 'renamed', workspaces: ['a'] }, limit: KEYS_LIMIT },
  { name: 'POST /keys/{id}/rotate', method: 'POST', path: () => `/keys/${targetKeyId}/rotate`, valid: { grace_period_seconds: 60 }, limit: KEYS_LIMIT },
  { name: 'POST /workflows', method: 'POST', path: () => '/workflows', valid: { slug: 'fuzzed', name: 'F', definition: DEFINITION }, limit: WORKFLOWS_LIMIT },
  { name: 'PUT /workflows/{slug}', method: 'PUT', path: () => '/workflows/shout', valid: { name: 'Shout 2', definition: DEFINITION }, limit: WORKFLOWS_LIMIT },
  { name: 'POST /workflows/{slug}/run', method: 'POST', path: () => '/workflows/shout/run', valid: { input: { text: 'hi' } }, limit: WORKFLOWS_LIMIT },
  { name: 'POST /models/{id}/run', method: 'POST', path: () => '/models/uppercase/run', valid: { input: { text: 'hi' } }, limit: WORKFLOWS_LIMIT },
];

/** Random JSON, a valid body with one field dropped, replaced or added, or text that is not JSON. */
function bodies(valid: Record<string, unknown>): fc.Arbitrary<string> {
  const fields = Object.keys(valid);
  const json = fc.jsonValue({ maxDepth: 3 });
  return fc.oneof(
    json.map((v) => JSON.stringify(v)),
    fc.constantFrom(...fields).map((f) => JSON.stringify({ ...valid, [f]: undefined })),
    fc.tuple(fc.constantFrom(...fields), json).map(([f, v]) => JSON.stringify({ ...valid, [f]: v })),
    fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), json).map(([f, v]) => JSON.stringify({ ...valid, [f]: v })),
    fc.string({ maxLength: 60 }).filter((s) => {
      try {
        JSON.parse(s);
        return false;
      } catch {
        return true;
      }
    }),
  );
}

describe('random and mutated bodies', () => {
  it.each(ENDPOINTS.map((e) => [e.name, e] as const))('%s: 2xx or a 4xx JSON error, never a 5xx; a refusal writes nothing', async (_name, endpoint) => {
    const apiKey = fuzzKeys.get(endpoint.name)!;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(bodies(endpoint.valid), async (text) => {
        const before = await t.snapshot();
        const reply = await call(`${t.stack.apiUrl}${endpoint.path()}`, {
          method: endpoint.method,
          headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
          body: text,
        });
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        expect(reply.status).toBeLessThan(500);
        if (reply.status >= 400) {
          expect(reply.status).not.toBe(401);
          expect(reply.body).toEqual(expect.objectContaining({ error: expect.any(String), code: expect.stringMatching(/^[A-Z_]+$/) }));
          expect(await t.snapshot()).toBe(before);
        }
      }),
      { numRuns: 40 },
    );
    // The generator reaches the validation errors (the property is not vacuous).
    expect(statuses.get(400) ?? 0).toBeGreaterThan(5);
  });
});

describe('oversize bodies', () => {
  it.each(ENDPOINTS.map((e) => [e.name, e] as const))('%s: 413 PAYLOAD_TOO_LARGE past the function’s limit, nothing written', async (_name, endpoint) => {
    const before = await t.snapshot();
    const big = JSON.stringify({ ...endpoint.valid, padding: 'x'.repeat(endpoint.limit) });
    const reply = await call(`${t.stack.apiUrl}${endpoint.path()}`, { method: endpoint.method, headers: { 'x-api-key': bigKey }, body: big });
    expect([reply.status, reply.body['code']]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(await t.snapshot()).toBe(before);
  });
});
