/**
 * Pages and parameters (issue #21 item 3), through the local stack:
 * - every list's `next_token` is null when nothing follows, also after a full last page (never an
 *   empty page after it): keys, workflows, executions (filtered or not), audit events, models;
 * - every route refuses a query parameter it does not take, naming it (400 VALIDATION_ERROR), from the
 *   one per-route list the OpenAPI document publishes; `?workflow_slug=` on /executions among them;
 * - the IETF RateLimit-Policy and RateLimit headers beside X-RateLimit-*, saying the same.
 */
import { OPENAPI_OPERATIONS } from '../../lambdas/shared/openapi.js';
import { queryParameterNames } from '../../lambdas/shared/query-parameters.js';
import { expectError, type Reply } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
let admin: string;
let adminId: string;

beforeAll(async () => {
  t = await startTestStack('e2e-pages-parameters');
  ({ key: admin, keyId: adminId } = await t.account('business'));
});
afterAll(() => t?.close());

/** Every item of a list, page by page of `limit`, and each page's size and token. */
async function pages(path: string, limit: number): Promise<{ ids: string[]; sizes: number[]; tokens: (string | null)[] }> {
  const ids: string[] = [];
  const sizes: number[] = [];
  const tokens: (string | null)[] = [];
  let token: string | null = null;
  const sep = path.includes('?') ? '&' : '?';
  do {
    const reply: Reply = await t.api(admin, 'GET', `${path}${sep}limit=${limit}${token ? `&next_token=${encodeURIComponent(token)}` : ''}`);
    expect({ path, status: reply.status }).toEqual({ path, status: 200 });
    const items = reply.body['items'] as Record<string, unknown>[];
    ids.push(...items.map((i) => String(i['key_id'] ?? i['slug'] ?? i['execution_id'] ?? i['event_id'] ?? i['id'])));
    sizes.push(items.length);
    token = reply.body['next_token'] as string | null;
    expect(token === null || typeof token === 'string').toBe(true);
    tokens.push(token);
  } while (token !== null && tokens.length < 20);
  return { ids, sizes, tokens };
}

describe('next_token is null when nothing follows: no empty last page', () => {
  /** The setup's calls must succeed. */
  const ok = async (pending: Promise<Reply>, status: number) => {
    const reply = await pending;
    if (reply.status !== status) throw new Error(`setup: ${reply.status} ${reply.text}`);
  };

  beforeAll(async () => {
    // Two more keys (three in all), four workflows, four executions of one of them.
    for (const name of ['a', 'b']) await ok(t.api(admin, 'POST', '/keys', { name, preset: 'read-only' }), 201);
    const definition = { input_schema: {}, steps: [{ id: 's', model: 'echo', input: '$.input' }], output: '$.steps.s.output' };
    for (const slug of ['w1', 'w2', 'w3', 'w4']) await ok(t.api(admin, 'POST', '/workflows', { slug, name: slug, definition }), 201);
    await ok(t.api(admin, 'POST', '/workflows/w1/deploy'), 200);
    for (let i = 0; i < 4; i++) await ok(t.api(admin, 'POST', '/workflows/w1/run', { input: i }), 200);
  });

  it.each([
    ['keys', '/keys', 3],
    ['workflows', '/workflows', 4],
    ['executions', '/executions', 4],
    ['executions of one workflow', '/executions?workflow=w1', 4],
    ['executions in one status', '/executions?status=SUCCEEDED', 4],
    // account.created, and key.created of the admin key and the two more.
    ['audit events', '/audit-events', 4],
    ['audit events of one action', '/audit-events?action=key.created', 3],
  ])('%s: a list of N in pages of N, of N − 1, and of 1', async (_what, path, n) => {
    const whole = await pages(path, n);
    expect({ sizes: whole.sizes, tokens: whole.tokens }).toEqual({ sizes: [n], tokens: [null] });
    const two = await pages(path, n - 1);
    expect(two.sizes).toEqual([n - 1, 1]);
    expect(two.tokens[1]).toBeNull();
    expect(two.ids).toEqual(whole.ids);
    const ones = await pages(path, 1);
    expect(ones.sizes).toEqual(Array.from({ length: n }, () => 1));
    expect(ones.ids).toEqual(whole.ids);
  });

  it('models: the built-in ones first, in pages like every list', async () => {
    const all = await t.api(admin, 'GET', '/models');
    const ids = (all.body['items'] as { id: string }[]).map((m) => m.id);
    expect(ids.slice(0, 5)).toEqual(['echo', 'uppercase', 'word-count', 'sleep', 'fail']);
    expect(all.body['next_token']).toBeNull();
    const whole = await pages('/models', ids.length);
    expect(whole.tokens).toEqual([null]);
    const ones = await pages('/models', 1);
    expect(ones.ids).toEqual(ids);
    expect(ones.tokens.at(-1)).toBeNull();
    expect(ones.sizes.every((n) => n === 1)).toBe(true);
    // Another account's token is refused, as on every list.
    const token = String((await t.api(admin, 'GET', '/models?limit=1')).body['next_token']);
    const other = (await t.account('business')).key;
    expectError(await t.api(other, 'GET', `/models?next_token=${encodeURIComponent(token)}`), 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field: 'next_token' })] });
  });

  it('an account with nothing in a list: one empty page, next_token null', async () => {
    const { key } = await t.account('business');
    for (const path of ['/workflows', '/executions']) expect((await t.api(key, 'GET', path)).body).toEqual({ items: [], next_token: null });
  });

  it('the admin key is among the keys listed (oldest first)', async () => {
    expect((await pages('/keys', 50)).ids[0]).toBe(adminId);
  });
});

describe('unknown query parameters are 400, naming them', () => {
  /** A concrete path of an operation (its parameters made up: the parameter check comes first). */
  const concrete = (path: string) => path.replace('{key_id}', 'key_x').replace('{slug}', 'nothing').replace('{model_id}', 'echo').replace('{execution_id}', 'exe_x');

  it('on every route but GET /health (the gateway’s alone), before anything else of the request is looked at', async () => {
    const routes = OPENAPI_OPERATIONS.filter((o) => o.path !== '/health');
    expect(routes.length).toBeGreaterThanOrEqual(26);
    for (const { method, path } of routes) {
      const key = path === '/openapi.json' ? undefined : admin;
      const reply = await t.api(key, method, `${concrete(path)}?bogus=1&also_bogus=2`, method === 'GET' || method === 'DELETE' ? undefined : {});
      expectError(reply, 400, 'VALIDATION_ERROR', {
        details: [expect.objectContaining({ field: 'bogus' }), expect.objectContaining({ field: 'also_bogus' })],
      });
      expect({ route: `${method} ${path}`, error: reply.body['error'] }).toEqual({ route: `${method} ${path}`, error: expect.stringContaining('bogus, also_bogus') });
      // The message says what the route takes.
      for (const name of queryParameterNames(`${method} ${path}`)) expect(reply.body['error']).toContain(name);
    }
  });

  it('a parameter given twice is 400 naming it on every route that takes one, never the last value quietly', async () => {
    let checked = 0;
    for (const { method, path } of OPENAPI_OPERATIONS.filter((o) => o.path !== '/health')) {
      const names = queryParameterNames(`${method} ${path}`);
      if (names.length === 0) continue;
      const key = path === '/openapi.json' ? undefined : admin;
      const query = names.map((name) => `${name}=1&${name}=2`).join('&');
      const reply = await t.api(key, method, `${concrete(path)}?${query}`, method === 'GET' || method === 'DELETE' ? undefined : {});
      expect({ route: `${method} ${path}`, status: reply.status, details: reply.body['details'] }).toEqual({
        route: `${method} ${path}`,
        status: 400,
        details: names.map((field) => ({ field, message: 'must be given once' })),
      });
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(8);
    // As the reviewer found them: an "or" of statuses, and a limit made valid by a second one.
    expectError(await t.api(admin, 'GET', '/executions?status=FAILED&status=CANCELLED'), 400, 'VALIDATION_ERROR', { details: [{ field: 'status', message: 'must be given once' }] });
    expectError(await t.api(admin, 'GET', '/keys?limit=500&limit=5'), 400, 'VALIDATION_ERROR', { details: [{ field: 'limit', message: 'must be given once' }] });
  });

  it('?workflow_slug= on GET /executions is refused, not silently ignored (the filter is `workflow`)', async () => {
    const reply = await t.api(admin, 'GET', '/executions?workflow_slug=w1');
    expectError(reply, 400, 'VALIDATION_ERROR', { details: [expect.objectContaining({ field: 'workflow_slug' })] });
    expect(reply.body['error']).toMatch(/workflow_slug/);
    expect((await t.api(admin, 'GET', '/executions?workflow=w1')).status).toBe(200);
  });

  it('the parameters a route takes still work, and a refused request costs its rate-limit slot like any other', async () => {
    expect((await t.api(admin, 'GET', '/keys/verify?x=1')).headers.get('x-ratelimit-remaining')).not.toBeNull();
    expect((await t.api(admin, 'GET', `/keys/${adminId}/usage?days=7`)).status).toBe(200);
    expect((await t.api(admin, 'GET', '/audit-events?since=2020-01-01&limit=1')).status).toBe(200);
  });
});

describe('IETF RateLimit-Policy and RateLimit beside X-RateLimit-*', () => {
  /** draft-ietf-httpapi-ratelimit-headers-10: `"default";q=<quota>;w=<window>` and `"default";r=<remaining>;t=<seconds>`. */
  function ietf(reply: Reply) {
    const policy = /^"default";q=(\d+);w=(\d+)$/.exec(reply.headers.get('ratelimit-policy') ?? '');
    const limit = /^"default";r=(\d+);t=(\d+)$/.exec(reply.headers.get('ratelimit') ?? '');
    expect({ policy: reply.headers.get('ratelimit-policy'), limit: reply.headers.get('ratelimit') }).toEqual({
      policy: expect.stringMatching(/^"default";q=\d+;w=60$/),
      limit: expect.stringMatching(/^"default";r=\d+;t=\d+$/),
    });
    return { q: Number(policy![1]), w: Number(policy![2]), r: Number(limit![1]), t: Number(limit![2]) };
  }

  it('on a success and on an error past the authorizer, saying what X-RateLimit-* says', async () => {
    const { key } = await t.account('pro', { name: 'keys', capabilities: ['keys:read'] });
    for (const reply of [await t.api(key, 'GET', '/keys/verify'), await t.api(key, 'GET', '/keys/key_missing')]) {
      const now = Math.floor(Date.now() / 1000);
      const { q, w, r, t: seconds } = ietf(reply);
      expect(q).toBe(Number(reply.headers.get('x-ratelimit-limit')));
      expect(q).toBe(100);
      expect(w).toBe(60);
      expect(r).toBe(Number(reply.headers.get('x-ratelimit-remaining')));
      const reset = Number(reply.headers.get('x-ratelimit-reset'));
      expect(Math.abs(seconds - (reset - now))).toBeLessThanOrEqual(2);
      expect(seconds).toBeLessThanOrEqual(60);
    }
  });

  it('on a 429, r=0 and t the Retry-After', async () => {
    // A test key: 10 requests a minute on any tier.
    const { key } = await t.account('business', { name: 'test', preset: 'read-only', environment: 'test' });
    let reply: Reply | undefined;
    for (let i = 0; i < 25 && reply?.status !== 429; i++) reply = await t.api(key, 'GET', '/keys/verify');
    expectError(reply!, 429, 'RATE_LIMIT_EXCEEDED');
    const { q, r, t: seconds } = ietf(reply!);
    expect({ q, r }).toEqual({ q: 10, r: 0 });
    expect(Math.abs(seconds - Number(reply!.headers.get('retry-after')))).toBeLessThanOrEqual(1);
  });
});
