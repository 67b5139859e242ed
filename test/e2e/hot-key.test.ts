/**
 * A hot key past its limit costs DynamoDB nothing more (issue #14, finding 5): once a function has seen a
 * key refused in a window, it refuses the key's next requests in that window without a write, so a key
 * hammering the API cannot push its counter item past DynamoDB's write limit and turn its 429s into 500s.
 * Only refusals are cached: the limit stays exact.
 */
import { createKey, setAccountTier } from '../../lambdas/shared/services/keys.js';
import type { CountingProxy } from '../support/counting-proxy.js';
import { startTestStackBehindProxy, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ t, proxy, close } = await startTestStackBehindProxy('e2e-hot-key'));
}, 60_000);
afterAll(() => close?.());

it('refusals past the limit are answered without a counter write, and the limit stays exact', async () => {
  const { accountId } = await t.account('business');
  const { apiKey } = await createKey(t.deps(), accountId, { name: 'hot', preset: 'read-only', environment: 'test' });
  // All in one minute window.
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 40_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 200));
  const first = [];
  for (let i = 0; i < 12; i++) first.push(await t.api(apiKey, 'GET', '/workflows'));
  expect(first.filter((r) => r.status === 200)).toHaveLength(10);
  expect(first.filter((r) => r.status === 429)).toHaveLength(2);
  proxy.reset();
  const hammer = [];
  for (let i = 0; i < 30; i++) hammer.push(await t.api(apiKey, 'GET', '/workflows'));
  expect(hammer.every((r) => r.status === 429)).toBe(true);
  for (const r of hammer) {
    expect(r.body['code']).toBe('RATE_LIMIT_EXCEEDED');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(r.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(r.headers.get('x-ratelimit-reset'))).toBe(Number(first[11]!.headers.get('x-ratelimit-reset')));
  }
  // At most one write per warm function instance (the one that learnt of the refusal), not one per request.
  expect(proxy.counts()['UpdateItem'] ?? 0).toBeLessThanOrEqual(3);
}, 90_000);

it('a remembered refusal gives way to a higher limit at once: a tier raised mid-window applies from the next request', async () => {
  const { accountId } = await t.account('business');
  const { apiKey } = await createKey(t.deps(), accountId, { name: 'upgraded', preset: 'read-only' });
  await setAccountTier(t.deps(), accountId, 'free');
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 40_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 200));
  const refused = [];
  for (let i = 0; i < 14; i++) refused.push(await t.api(apiKey, 'GET', '/keys/verify'));
  expect(refused.map((r) => r.status)).toEqual([...Array(10).fill(200), 429, 429, 429, 429]);
  await setAccountTier(t.deps(), accountId, 'business');
  // Every warm instance that remembered the refusal lets the next request through to the counter.
  for (let i = 0; i < 4; i++) {
    const reply = await t.api(apiKey, 'GET', '/keys/verify');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('x-ratelimit-limit')).toBe('1000');
  }
  // Lowered again, the counter (now past 10) refuses at once, and the refusal is remembered anew.
  await setAccountTier(t.deps(), accountId, 'free');
  const again = await t.api(apiKey, 'GET', '/keys/verify');
  expect(again.status).toBe(429);
  expect(again.headers.get('x-ratelimit-limit')).toBe('10');
}, 90_000);
