/**
 * The reliability review's findings on keys, tiers and counters (issue #13), with the fault proxy in front
 * of DynamoDB Local and racing clients: an edit racing a rotation is never lost; a rotated key is edited
 * through its replacement; the loser of two rotations gets 409; a DELETE racing a grace rotation stops the
 * key; a tier change is all or nothing and concurrent ones agree; a request is counted at most once
 * whatever answers are lost; `last_used` never moves back.
 */
import { UsageRepository } from '../../lambdas/shared/repositories/usage.js';
import { createKey, revokeKey, rotateKey, setAccountTier, updateKey } from '../../lambdas/shared/services/keys.js';
import type { CountingProxy } from '../support/counting-proxy.js';
import { expectError } from '../support/http.js';
import { startTestStackBehindProxy, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ t, proxy, close } = await startTestStackBehindProxy('e2e-key-races'));
}, 60_000);
afterEach(() => proxy.clearFaults());
afterAll(() => close?.());


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const keysTable = () => t.stack.state.tables.keys;

describe('rotation and edits (finding 1)', () => {
  it('an edit made while a rotation is in flight reaches the replacement', async () => {
    const { accountId } = await t.account('business');
    const made = await createKey(t.deps(), accountId, { name: 'ci', capabilities: ['workflow:run', 'workflow:write', 'keys:write'] });
    // The rotation's transaction reaches DynamoDB a second late; the edit lands meanwhile (services called
    // in this process, through the proxy, so no function start-up blurs the order).
    proxy.inject({ operation: 'TransactWriteItems', table: keysTable(), fault: 'delay', delayMs: 1000, times: 1 });
    const rotation = rotateKey(t.deps(), accountId, made.key.key_id, {});
    await sleep(250);
    const edited = await updateKey(t.deps(), accountId, made.key.key_id, { capabilities: ['workflow:run'] });
    const rotated = await rotation;
    expect(edited.capabilities).toEqual(['workflow:run']);
    // The only key that keeps working holds what the edit left, nothing more.
    expect(rotated.key.capabilities).toEqual(['workflow:run']);
    const verify = await t.api(rotated.apiKey, 'GET', '/keys/verify');
    expect(verify.body['capabilities']).toEqual(['workflow:run']);
    expectError(await t.api(made.apiKey, 'GET', '/keys/verify'), 401, 'UNAUTHORIZED');
  });

  it('an edit of a key in its grace period is 409 KEY_ROTATED naming the replacement, and changes nothing', async () => {
    const { key: admin } = await t.account('business');
    const made = await t.api(admin, 'POST', '/keys', { name: 'old', preset: 'full-deploy' });
    const rotated = await t.api(admin, 'POST', `/keys/${String(made.body['key_id'])}/rotate`, { grace_period_seconds: 600 });
    const before = await t.snapshot();
    expectError(await t.api(admin, 'PATCH', `/keys/${String(made.body['key_id'])}`, { capabilities: ['workflow:read'] }), 409, 'KEY_ROTATED', {
      rotated_to: rotated.body['key_id'],
    });
    expect(await t.snapshot()).toBe(before);
  });

  it('the loser of two concurrent rotations gets 409 naming the winner’s key, not 404', async () => {
    const { accountId } = await t.account('business');
    const { key } = await createKey(t.deps(), accountId, { name: 'twice', preset: 'read-only' });
    const results = await Promise.allSettled([rotateKey(t.deps(), accountId, key.key_id, {}), rotateKey(t.deps(), accountId, key.key_id, {})]);
    const won = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Awaited<ReturnType<typeof rotateKey>>>;
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(won).toBeDefined();
    expect(lost.reason).toMatchObject({ status: 409, code: 'ALREADY_EXISTS', rotatedTo: won.value.key.key_id });
  });

  it('a DELETE racing a grace rotation stops the key (never 404 while it still authenticates)', async () => {
    const { accountId } = await t.account('business');
    const made = await createKey(t.deps(), accountId, { name: 'doomed', preset: 'read-only' });
    // The revocation's transaction is late; the grace rotation commits first.
    proxy.inject({ operation: 'TransactWriteItems', table: keysTable(), fault: 'delay', delayMs: 1000, times: 1 });
    const deletion = revokeKey(t.deps(), accountId, made.key.key_id);
    await sleep(250);
    const rotated = await rotateKey(t.deps(), accountId, made.key.key_id, { grace_period_seconds: 600 });
    await deletion;
    expectError(await t.api(made.apiKey, 'GET', '/keys/verify'), 401, 'UNAUTHORIZED');
    expect((await t.api(rotated.apiKey, 'GET', '/keys/verify')).status).toBe(200);
    // The slots add up: the replacement holds one, the revoked key none.
    expect((await t.deps().accounts.get(accountId))?.active_keys).toBe(2);
  });
});

describe('tier changes (finding 2)', () => {
  it('a failing tier change changes nothing: account and keys keep the old tier', async () => {
    const acct = await t.account('business');
    const other = await t.api(acct.key, 'POST', '/keys', { name: 'models', capabilities: ['model:run'] });
    proxy.inject({ operation: 'TransactWriteItems', table: t.stack.state.tables.accounts, fault: 'server-error' });
    await expect(setAccountTier(t.deps(), acct.accountId, 'free')).rejects.toThrow();
    proxy.clearFaults();
    expect((await t.deps().accounts.get(acct.accountId))?.tier).toBe('business');
    for (const key of [acct.key, String(other.body['api_key'])]) {
      expect((await t.api(key, 'GET', '/keys/verify')).body).toMatchObject({ tier: 'business' });
    }
    // Run again, it completes.
    await setAccountTier(t.deps(), acct.accountId, 'free');
    expect((await t.api(String(other.body['api_key']), 'GET', '/me')).body).toMatchObject({ account: { tier: 'free' }, capabilities: [] });
  });

  it('concurrent tier changes leave the account and every key on one tier', async () => {
    const acct = await t.account('business');
    for (let i = 0; i < 4; i++) await t.api(acct.key, 'POST', '/keys', { name: `k${i}`, preset: 'read-only' });
    const tiers = ['pro', 'enterprise', 'free', 'business', 'pro', 'enterprise'] as const;
    await Promise.all(tiers.map((tier) => setAccountTier(t.deps(), acct.accountId, tier)));
    const account = await t.deps().accounts.get(acct.accountId);
    const keys = await t.deps().keys.listActive(acct.accountId, new Date(), 100);
    expect(keys.items).toHaveLength(5);
    expect(keys.items.map((k) => k.tier)).toEqual(keys.items.map(() => account?.tier));
  });
});

describe('counting (findings 5 and 9)', () => {
  const usageTable = () => t.stack.state.tables.usage;

  async function counted(keyId: string): Promise<number> {
    return (await t.deps().usage!.summary(keyId, new Date())).requestsToday;
  }

  it('a lost answer from the counter never counts a request twice', async () => {
    const acct = await t.account('business');
    expect((await t.api(acct.key, 'GET', '/keys/verify')).status).toBe(200);
    expect(await counted(acct.keyId)).toBe(1);
    proxy.inject({ operation: 'UpdateItem', table: usageTable(), fault: 'lose-response', times: 1 });
    const lost = await t.api(acct.key, 'GET', '/keys/verify');
    // The write landed but its answer did not: the request fails, and counts once.
    expect(lost.status).toBe(500);
    expect(await counted(acct.keyId)).toBe(2);
    // Every answer lost: still once.
    proxy.inject({ operation: 'UpdateItem', table: usageTable(), fault: 'lose-response', times: 3 });
    expect((await t.api(acct.key, 'GET', '/keys/verify')).status).toBe(500);
    proxy.clearFaults();
    expect(await counted(acct.keyId)).toBe(3);
  });

  it('throttling of the counter is retried (it surely did not land) and counts once', async () => {
    const acct = await t.account('business');
    proxy.inject({ operation: 'UpdateItem', table: usageTable(), fault: 'throttle', times: 2 });
    expect((await t.api(acct.key, 'GET', '/keys/verify')).status).toBe(200);
    expect(await counted(acct.keyId)).toBe(1);
  });

  it('last_used keeps the latest time when writes arrive out of order', async () => {
    const usage = new UsageRepository(t.stack.doc, t.stack.state.tables.usage);
    const later = new Date('2026-11-30T10:00:05.500Z');
    const earlier = new Date('2026-11-30T10:00:05.100Z');
    await usage.hit('key_out_of_order', 'acct', 100, later);
    await usage.hit('key_out_of_order', 'acct', 100, earlier);
    expect(await usage.lastUsed('key_out_of_order')).toBe(later.toISOString());
  });
});
