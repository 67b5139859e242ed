/**
 * The security review's findings (issue #12), end to end against the local stack, each as it was
 * reproduced: runaway `$.` references and oversize or over-deep values end the run FAILED (never a 500,
 * never stuck RUNNING); a test key manages only test keys; a grace rotation cannot escape the key limit;
 * bodies nested past 32 levels and page tokens the API did not issue are 400; a tier change reaches every
 * key, however far the index lags behind.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { setAccountTier } from '../../lambdas/shared/services/keys.js';
import type { CountingProxy } from '../support/counting-proxy.js';
import { expectError, type Reply } from '../support/http.js';
import { startTestStackBehindProxy, type TestStack } from '../support/stack.js';

let proxy: CountingProxy;
let t: TestStack;
let close: () => Promise<void>;
let admin: string;
let accountId: string;

beforeAll(async () => {
  ({ t, proxy, close } = await startTestStackBehindProxy('e2e-hardening'));
  ({ key: admin, accountId } = await t.account('business'));
}, 60_000);
afterEach(() => proxy.clearFaults());
afterAll(() => close?.());


async function deploy(slug: string, definition: unknown, key = admin): Promise<void> {
  const created = await t.api(key, 'POST', '/workflows', { slug, name: slug, definition });
  expect(created.status).toBe(201);
  expect((await t.api(key, 'POST', `/workflows/${slug}/deploy`)).status).toBe(200);
}

/** Eight echo steps, each referencing the previous output twice: the value doubles every step. */
const DOUBLING = {
  input_schema: {},
  steps: Array.from({ length: 8 }, (_, i) => ({
    id: `s${i}`,
    model: 'echo',
    input: i === 0 ? ['$.input', '$.input'] : [`$.steps.s${i - 1}.output`, `$.steps.s${i - 1}.output`],
  })),
  output: '$.steps.s7.output',
};

/** Five steps of 100 references each to the previous output (an 8.7 KB definition). */
const FANOUT = {
  input_schema: {},
  steps: Array.from({ length: 5 }, (_, i) => ({
    id: `f${i}`,
    model: 'echo',
    input: Array.from({ length: 100 }, () => (i === 0 ? '$.input' : `$.steps.f${i - 1}.output`)),
  })),
  output: '$.steps.f4.output',
};

describe('run limits (finding 1)', () => {
  beforeAll(async () => {
    await deploy('doubling', DOUBLING);
    await deploy('fanout', FANOUT);
    await deploy('echo-all', { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' });
    // Each step wraps the previous output in two more levels: nesting grows past what DynamoDB stores.
    await deploy('deepening', {
      input_schema: {},
      steps: Array.from({ length: 20 }, (_, i) => ({ id: `d${i}`, model: 'echo', input: { v: [i === 0 ? '$.input' : `$.steps.d${i - 1}.output`] } })),
      output: '$.steps.d19.output',
    });
  });

  it('4 KB doubled by eight steps ends FAILED naming the limit, synchronously and asynchronously', async () => {
    const input = 'x'.repeat(4096);
    const sync = await t.api(admin, 'POST', '/workflows/doubling/run', { input });
    expect(sync.status).toBe(200);
    expect(sync.body).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/step 's\d': its (resolved input|output) is .*over the limit of 256 KB/) });
    const queued = await t.api(admin, 'POST', '/workflows/doubling/run?async=true', { input });
    expect(queued.status).toBe(202);
    const id = String(queued.body['execution_id']);
    let final: Reply;
    const deadline = Date.now() + 20_000;
    do {
      await new Promise((r) => setTimeout(r, 200));
      final = await t.api(admin, 'GET', `/executions/${id}`);
    } while (['QUEUED', 'RUNNING'].includes(String(final.body['status'])) && Date.now() < deadline);
    expect(final.body).toMatchObject({ status: 'FAILED', error: expect.stringContaining('over the limit of 256 KB') });
  });

  it('five steps of 100 references fail fast at the limit instead of exhausting the function', async () => {
    const started = Date.now();
    const reply = await t.api(admin, 'POST', '/workflows/fanout/run', { input: 'y'.repeat(1024) });
    expect(reply.body).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/step 'f\d': its resolved input is over the limit of 256 KB/) });
    // Generous: it ran to the 29 s timeout (and 3.1 GB) before.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('an execution output over 128 KB ends FAILED naming the limit', async () => {
    const reply = await t.api(admin, 'POST', '/workflows/echo-all/run', { input: 'z'.repeat(100 * 1024) });
    expect(reply.body).toMatchObject({ status: 'SUCCEEDED' });
    const doubled = await t.api(admin, 'POST', '/workflows/doubling/run', { input: 'z'.repeat(20 * 1024) });
    expect(doubled.body).toMatchObject({ status: 'FAILED', error: expect.stringMatching(/over the limit of (128|256) KB/) });
  });

  it('a run input over 128 KB is 400 and nothing is stored', async () => {
    const before = await t.snapshot();
    expectError(await t.api(admin, 'POST', '/workflows/echo-all/run', { input: 'w'.repeat(129 * 1024) }), 400, 'VALIDATION_ERROR', {
      details: [{ field: 'input', message: expect.stringContaining('at most 128 KB') }],
    });
    expect(await t.snapshot()).toBe(before);
  });

  it('a step output nested past what DynamoDB stores ends FAILED, not a 500', async () => {
    const reply = await t.api(admin, 'POST', '/workflows/deepening/run', { input: 1 });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ status: 'FAILED', error: expect.stringContaining('nests deeper than the limit of 31 levels') });
  });
});

describe('bodies and page tokens (finding 9)', () => {
  const nested = (depth: number): unknown => (depth === 0 ? 1 : [nested(depth - 1)]);

  it('a run input or an input_schema nested deeper than 32 levels is 400, and nothing is written', async () => {
    const before = await t.snapshot();
    const run = await t.api(admin, 'POST', '/workflows/echo-all/run', { input: nested(40) });
    expectError(run, 400, 'VALIDATION_ERROR', { details: [{ field: 'body', message: 'nests deeper than 32 levels' }] });
    let schema: Record<string, unknown> = { type: 'object' };
    for (let i = 0; i < 40; i++) schema = { type: 'object', properties: { a: schema } };
    const created = await t.api(admin, 'POST', '/workflows', {
      slug: 'deep-schema',
      name: 'deep',
      definition: { input_schema: schema, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' },
    });
    expectError(created, 400, 'VALIDATION_ERROR');
    expect(await t.snapshot()).toBe(before);
    // At the limit it works: a body nesting 32 levels.
    const ok = await t.api(admin, 'POST', '/workflows/echo-all/run', { input: nested(30) });
    expect(ok.body).toMatchObject({ status: 'SUCCEEDED' });
  });

  it.each([
    ['/executions', { e: '', w: '', a: 'ACCOUNT' }],
    ['/executions', { e: 'exe_../../x', w: '', a: 'ACCOUNT' }],
    ['/executions', { e: 'exe_1', w: 'nope', a: 'ACCOUNT' }],
    ['/workflows', { s: '', a: 'ACCOUNT' }],
    ['/workflows', { s: 'NOT A SLUG', a: 'ACCOUNT' }],
    ['/keys', { c: '', k: '', a: 'ACCOUNT' }],
  ])('GET %s with a token it did not issue (%j) is 400', async (path, token) => {
    const forged = Buffer.from(JSON.stringify({ ...token, a: accountId })).toString('base64url');
    expectError(await t.api(admin, 'GET', `${path}?next_token=${forged}`), 400, 'VALIDATION_ERROR', {
      details: [{ field: 'next_token', message: expect.any(String) }],
    });
  });

  describe('a well-formed token naming a real position of the caller’s own account is 400 unless the API issued it', () => {
    beforeAll(async () => {
      // Every list below has at least three items: two more keys (and their audit events), a workflow
      // with three versions, three runs of it (and the built-in models).
      const made = (reply: Reply, status: number) => {
        if (reply.status !== status) throw new Error(`setup: ${reply.status} ${JSON.stringify(reply.body)}`);
      };
      for (const name of ['paged one', 'paged two']) made(await t.api(admin, 'POST', '/keys', { name, preset: 'read-only' }), 201);
      await deploy('versioned', { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' });
      for (const n of [2, 3]) {
        const definition = { input_schema: {}, steps: [{ id: `e${n}`, model: 'echo', input: '$.input' }], output: `$.steps.e${n}.output` };
        made(await t.api(admin, 'PUT', '/workflows/versioned', { definition }), 200);
      }
      for (let i = 0; i < 3; i++) made(await t.api(admin, 'POST', '/workflows/versioned/run', { input: i }), 200);
    });

    const parts = (token: string) => {
      const [body, mac] = token.split('.');
      return { body: body!, mac: mac! };
    };
    const page = async (path: string, token?: string): Promise<Reply> =>
      t.api(admin, 'GET', `${path}${path.includes('?') ? '&' : '?'}limit=1${token ? `&next_token=${encodeURIComponent(token)}` : ''}`);

    const LISTS = ['/keys', '/audit-events', '/workflows', '/workflows/versioned/versions', '/executions', '/models'];
    /** Each list's token for its second page, as the API issued it. */
    const issued = new Map<string, string>();

    it.each(LISTS)('GET %s', async (path) => {
      const first = await page(path);
      expect(first.status).toBe(200);
      const one = String(first.body['next_token']);
      const second = await page(path, one);
      expect(second.status).toBe(200);
      const two = String(second.body['next_token']);
      expect(two).not.toBe('null');
      issued.set(path, one);
      // Each token the API issued goes on.
      expect((await page(path, two)).status).toBe(200);
      const signedWithAnotherKey = `${parts(one).body}.${createHmac('sha256', randomBytes(32)).update(parts(one).body).digest('base64url')}`;
      for (const forged of [
        parts(one).body, // the unsigned token of earlier releases
        `${parts(two).body}.${parts(one).mac}`, // the second position under the first token's MAC
        signedWithAnotherKey,
        `${one}.${parts(one).mac}`,
        `${parts(one).body}.${parts(one).mac.slice(0, -1)}`,
      ]) {
        expectError(await page(path, forged), 400, 'VALIDATION_ERROR', { details: [{ field: 'next_token', message: expect.any(String) }] });
      }
    });

    it('each list’s token, signed by the API, is 400 on every other list', async () => {
      expect([...issued.keys()].sort()).toEqual([...LISTS].sort());
      for (const [from, token] of issued) {
        for (const path of LISTS.filter((p) => p !== from)) {
          expectError(await page(path, token), 400, 'VALIDATION_ERROR', { details: [{ field: 'next_token', message: expect.any(String) }] });
        }
      }
    });
  });
});

describe('test keys manage only test keys (finding 4)', () => {
  it('a test key with keys:write cannot create, edit, rotate or revoke a live key: 403 ENVIRONMENT_DENIED, nothing written', async () => {
    const made = await t.api(admin, 'POST', '/keys', { name: 'test admin', scope: 'admin', environment: 'test' });
    expect(made.status).toBe(201);
    const testKey = String(made.body['api_key']);
    const live = await t.api(admin, 'POST', '/keys', { name: 'live one', preset: 'read-only' });
    const liveId = String(live.body['key_id']);
    const before = await t.snapshot();
    expectError(await t.api(testKey, 'POST', '/keys', { name: 'escalate', preset: 'read-only' }), 403, 'ENVIRONMENT_DENIED', { environment: 'live' });
    expectError(await t.api(testKey, 'POST', '/keys', { name: 'escalate', preset: 'read-only', environment: 'live' }), 403, 'ENVIRONMENT_DENIED', {
      environment: 'live',
    });
    expectError(await t.api(testKey, 'PATCH', `/keys/${liveId}`, { name: 'renamed' }), 403, 'ENVIRONMENT_DENIED', { environment: 'live' });
    expectError(await t.api(testKey, 'POST', `/keys/${liveId}/rotate`, {}), 403, 'ENVIRONMENT_DENIED', { environment: 'live' });
    expectError(await t.api(testKey, 'DELETE', `/keys/${liveId}`), 403, 'ENVIRONMENT_DENIED', { environment: 'live' });
    expect(await t.snapshot()).toBe(before);
    // Test keys it may manage; a live key may manage both.
    const testChild = await t.api(testKey, 'POST', '/keys', { name: 'test child', preset: 'read-only', environment: 'test' });
    expect(testChild.status).toBe(201);
    expect((await t.api(testKey, 'DELETE', `/keys/${String(testChild.body['key_id'])}`)).status).toBe(204);
    expect((await t.api(admin, 'DELETE', `/keys/${liveId}`)).status).toBe(204);
    expect((await t.api(admin, 'DELETE', `/keys/${String(made.body['key_id'])}`)).status).toBe(204);
  });
});

describe('grace rotations count against the key limit (finding 5)', () => {
  it('eight grace rotations on a full account leave ten working keys, not eighteen', async () => {
    const full = await t.account('business');
    for (let i = 0; i < 9; i++) expect((await t.api(full.key, 'POST', '/keys', { name: `k${i}`, preset: 'read-only' })).status).toBe(201);
    const listed = await t.api(full.key, 'GET', '/keys?limit=100');
    const ids = (listed.body['items'] as { key_id: string }[]).map((k) => k.key_id).filter((id) => id !== full.keyId);
    for (const id of ids.slice(0, 8)) {
      expectError(await t.api(full.key, 'POST', `/keys/${id}/rotate`, { grace_period_seconds: 3600 }), 409, 'KEY_LIMIT_REACHED');
    }
    expect(((await t.api(full.key, 'GET', '/keys?limit=100')).body['items'] as unknown[]).length).toBe(10);
    // Without grace a rotation always works.
    expect((await t.api(full.key, 'POST', `/keys/${ids[0]!}/rotate`, {})).status).toBe(201);
    expect(((await t.api(full.key, 'GET', '/keys?limit=100')).body['items'] as unknown[]).length).toBe(10);
  });
});

describe('a tier change reaches every key (finding 10)', () => {
  it('even a key the index does not show yet', async () => {
    const acct = await t.account('business');
    const fresh = await t.api(acct.key, 'POST', '/keys', { name: 'just made', capabilities: ['model:run'] });
    expect(fresh.status).toBe(201);
    // The by-account index has not caught up with the new key (as on AWS, moments after a write).
    proxy.inject({ operation: 'Query', table: t.stack.state.tables.keys, fault: 'index-lag' });
    await setAccountTier(t.deps(), acct.accountId, 'free');
    proxy.clearFaults();
    const freshKey = String(fresh.body['api_key']);
    expect((await t.api(freshKey, 'GET', '/me')).body).toMatchObject({ account: { tier: 'free' }, capabilities: [] });
    expectError(await t.api(freshKey, 'POST', '/models/echo/run', { input: 1 }), 403, 'CAPABILITY_DENIED');
    expect((await t.api(acct.key, 'GET', '/keys/verify')).body).toMatchObject({ tier: 'free' });
  });

  it('keys created while the tier changes end on the new tier', async () => {
    const acct = await t.account('business');
    const creates = Array.from({ length: 6 }, (_, i) => t.api(acct.key, 'POST', '/keys', { name: `race${i}`, preset: 'read-only' }));
    const [, ...made] = await Promise.all([setAccountTier(t.deps(), acct.accountId, 'pro'), ...creates]);
    for (const reply of made) {
      if (reply.status !== 201) continue; // refused once the tier changed under the admin key's capabilities
      expect((await t.api(String(reply.body['api_key']), 'GET', '/keys/verify')).body).toMatchObject({ tier: 'pro' });
    }
    expect((await t.api(acct.key, 'GET', '/keys/verify')).body).toMatchObject({ tier: 'pro' });
  });
});
