/**
 * Authorization matrices, end to end over HTTP against the local stack: every endpoint of API.md §4 ×
 * every kind of caller that must not get in (no key, garbage, revoked, expired, another account's key, a
 * key lacking the capability, a key outside the workspace) → the contract's status and code, and nothing
 * changed in DynamoDB (every table scanned before and after). Then every key-management path (create,
 * edit, rotate) tried with every capability and workspace the caller lacks.
 *
 * The same for people (API.md §1, §2): an `admin` and a `viewer` of account A, an admin of another
 * account, and a person of no account, each with a session token (test issuer, support/issuer.ts).
 *
 * Refused requests that passed the authorizer are still counted (README: "A refused request is still
 * counted"), so for those callers the usage table is left out of the comparison; for 401s it is in.
 */
import { FIXED_CAPABILITIES } from '../../lambdas/shared/capabilities.js';
import { createKey, revokeKey } from '../../lambdas/shared/services/keys.js';
import { DEFAULT_SETTINGS } from '../../lambdas/shared/settings.js';
import { call, type Reply } from '../support/http.js';
import { startTestIssuer, type TestIssuer } from '../support/issuer.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
/** Account A: the owner of everything the callers reach for. */
let a: { accountId: string; key: string; keyId: string };
let targetKeyId: string;
let executionId: string;
const keys: Record<string, string | undefined> = {};
/** People's session tokens, by caller name. */
const sessions: Record<string, string> = {};
let issuer: TestIssuer;

const DEFINITION = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };

beforeAll(async () => {
  issuer = await startTestIssuer();
  t = await startTestStack('e2e-matrix', { identity: issuer.config });
  a = await t.account('business');
  const deps = t.deps();
  targetKeyId = (await createKey(deps, a.accountId, { name: 'target', preset: 'read-only' })).key.key_id;
  const setup = [
    await t.api(a.key, 'POST', '/workflows', { slug: 'alpha', name: 'Alpha', definition: DEFINITION, workspace_id: 'ws-a' }),
    await t.api(a.key, 'POST', '/workflows/alpha/deploy'),
    await t.api(a.key, 'POST', '/workflows/alpha/run', { input: { x: 1 } }),
    // The webhook secret exists before the matrix runs (the first read makes it).
    await t.api(a.key, 'GET', '/webhooks/secret'),
  ];
  if (setup.map((r) => r.status).join() !== '201,200,200,200') throw new Error(`setup failed: ${setup.map((r) => r.text).join('\n')}`);
  executionId = String(setup[2]!.body['execution_id']);

  const revoked = await createKey(deps, a.accountId, { name: 'revoked', scope: 'admin' });
  await revokeKey(deps, a.accountId, revoked.key.key_id);
  const past = new Date(Date.now() - 8 * 86_400_000);
  const expired = await createKey(t.deps(() => past), a.accountId, { name: 'expired', scope: 'admin', expires_in_days: 7 });
  keys['no key'] = undefined;
  keys['garbage'] = 'knouds_live_garbage';
  keys['revoked'] = revoked.apiKey;
  keys['expired'] = expired.apiKey;
  keys['another account'] = (await t.account('business')).key;
  keys['lacking the capability'] = (await createKey(deps, a.accountId, { name: 'hooks', preset: 'webhook-receiver' })).apiKey;
  keys['outside the workspace'] = (await createKey(deps, a.accountId, { name: 'ws-b', scope: 'admin', workspaces: ['ws-b'] })).apiKey;

  const other = await t.account('business');
  for (const [caller, account, role] of [
    ['admin person', a.accountId, 'admin'],
    ['viewer person', a.accountId, 'viewer'],
    ['another account’s admin person', other.accountId, 'admin'],
    ['person of no account', undefined, undefined],
  ] as const) {
    const subject = `matrix-${caller.replace(/\W+/g, '-')}`;
    if (account && role) await t.member(subject, account, `${subject}@example.com`, role);
    sessions[caller] = await issuer.sign(subject);
  }
}, 60_000);
afterAll(async () => {
  await t?.close();
  await issuer?.close();
});

let nobodies = 0;

/** A caller's request: with its key in x-api-key, or a person's session token as a Bearer token. */
async function request(caller: string, method: string, path: string, body?: unknown): Promise<Reply> {
  // A person of no account is counted against the lowest live limit (10 a minute): a new one per request.
  const session = caller === 'person of no account' ? await issuer.sign(`matrix-nobody-${++nobodies}`) : sessions[caller];
  if (session === undefined) return t.api(keys[caller], method, path, body);
  return call(`${t.stack.apiUrl}${path}`, { method, headers: { authorization: `Bearer ${session}` }, ...(body !== undefined ? { body } : {}) });
}

type Route = { name: string; method: string; path: () => string; body?: unknown; needs: string };
const ROUTES: Route[] = [
  { name: 'GET /keys/verify', method: 'GET', path: () => '/keys/verify', needs: 'any' },
  { name: 'GET /me', method: 'GET', path: () => '/me', needs: 'any' },
  { name: 'POST /keys', method: 'POST', path: () => '/keys', body: { name: 'new', preset: 'read-only' }, needs: 'keys:write' },
  { name: 'GET /keys', method: 'GET', path: () => '/keys', needs: 'keys:read' },
  { name: 'GET /keys/{id}', method: 'GET', path: () => `/keys/${targetKeyId}`, needs: 'keys:read' },
  { name: 'PATCH /keys/{id}', method: 'PATCH', path: () => `/keys/${targetKeyId}`, body: { name: 'renamed' }, needs: 'keys:write' },
  { name: 'DELETE /keys/{id}', method: 'DELETE', path: () => `/keys/${targetKeyId}`, needs: 'keys:write' },
  { name: 'POST /keys/{id}/rotate', method: 'POST', path: () => `/keys/${targetKeyId}/rotate`, body: {}, needs: 'keys:write' },
  { name: 'GET /keys/{id}/usage', method: 'GET', path: () => `/keys/${targetKeyId}/usage`, needs: 'keys:read' },
  { name: 'GET /webhooks/secret', method: 'GET', path: () => '/webhooks/secret', needs: 'keys:read' },
  { name: 'POST /webhooks/secret/rotate', method: 'POST', path: () => '/webhooks/secret/rotate', needs: 'keys:write' },
  {
    name: 'POST /workflows',
    method: 'POST',
    path: () => '/workflows',
    body: { slug: 'beta', name: 'Beta', definition: DEFINITION, workspace_id: 'ws-a' },
    needs: 'workflow:write',
  },
  { name: 'GET /workflows', method: 'GET', path: () => '/workflows', needs: 'workflow:read' },
  { name: 'GET /workflows/{slug}', method: 'GET', path: () => '/workflows/alpha', needs: 'workflow:read' },
  { name: 'GET /workflows/{slug}/versions', method: 'GET', path: () => '/workflows/alpha/versions', needs: 'workflow:read' },
  { name: 'PUT /workflows/{slug}', method: 'PUT', path: () => '/workflows/alpha', body: { name: 'A2', definition: DEFINITION }, needs: 'workflow:write' },
  { name: 'POST /workflows/{slug}/deploy', method: 'POST', path: () => '/workflows/alpha/deploy', needs: 'workflow:write' },
  { name: 'DELETE /workflows/{slug}', method: 'DELETE', path: () => '/workflows/alpha', needs: 'workflow:write' },
  { name: 'POST /workflows/{slug}/run', method: 'POST', path: () => '/workflows/alpha/run', body: { input: {} }, needs: 'workflow:run' },
  { name: 'GET /models', method: 'GET', path: () => '/models', needs: 'any' },
  { name: 'POST /models/{id}/run', method: 'POST', path: () => '/models/echo/run', body: { input: 1 }, needs: 'model:run' },
  { name: 'GET /executions', method: 'GET', path: () => '/executions', needs: 'execution:read' },
  { name: 'GET /executions/{id}', method: 'GET', path: () => `/executions/${executionId}`, needs: 'execution:read' },
  { name: 'POST /executions/{id}/cancel', method: 'POST', path: () => `/executions/${executionId}/cancel`, needs: 'execution:cancel' },
  // Needs execution:read and webhook:receive; the key lacking a capability holds webhook:receive only.
  { name: 'POST /executions/{id}/webhook/redeliver', method: 'POST', path: () => `/executions/${executionId}/webhook/redeliver`, needs: 'execution:read' },
];

const outcome = (r: Reply) => `${r.status} ${typeof r.body['code'] === 'string' ? r.body['code'] : ''}`.trim();

/**
 * The expected outcome for each caller and route. `ALLOWED` marks what the caller may do (not run here:
 * the matrix is about refusals); everything else must be refused with exactly this status and code.
 */
const ALLOWED = 'allowed';
function expected(caller: string, route: Route): string {
  switch (caller) {
    case 'no key':
    case 'garbage':
    case 'revoked':
    case 'expired':
      return '401 UNAUTHORIZED';
    case 'another account':
      // Anything addressed by id belongs to account A: 404, as if it did not exist. Lists and creates
      // act on the caller's own account, which is its right.
      return /\{(id|slug)\}/.test(route.name) && route.name !== 'POST /models/{id}/run' ? '404 NOT_FOUND' : ALLOWED;
    case 'lacking the capability':
      return route.needs === 'any' ? ALLOWED : '403 CAPABILITY_DENIED';
    case 'outside the workspace':
      // Workspaces scope workflows and executions, and which keys a key may manage; reads of keys and
      // the account's webhook secret are account-wide (README "Keys").
      if (['POST /keys', 'PATCH /keys/{id}', 'DELETE /keys/{id}', 'POST /keys/{id}/rotate'].includes(route.name)) return '403 WORKSPACE_DENIED';
      if (/^(GET|PUT|POST|DELETE) \/workflows\/\{slug\}/.test(route.name) || route.name === 'POST /workflows') return '403 WORKSPACE_DENIED';
      if (/\/executions\/\{id\}/.test(route.name)) return '403 WORKSPACE_DENIED';
      return ALLOWED;
    case 'admin person':
      // Every capability of a business account; only the key-only route has nothing to show.
      return route.name === 'GET /keys/verify' ? '404 NOT_FOUND' : ALLOWED;
    case 'viewer person':
      if (route.name === 'GET /keys/verify') return '404 NOT_FOUND';
      return route.needs === 'any' || ['keys:read', 'workflow:read', 'execution:read', 'audit:read'].includes(route.needs) ? ALLOWED : '403 CAPABILITY_DENIED';
    case 'another account’s admin person':
      if (route.name === 'GET /keys/verify') return '404 NOT_FOUND';
      return expected('another account', route);
    case 'person of no account':
      return '403 NOT_A_MEMBER';
    default:
      throw new Error(caller);
  }
}

const CALLERS = [
  'no key',
  'garbage',
  'revoked',
  'expired',
  'another account',
  'lacking the capability',
  'outside the workspace',
  'admin person',
  'viewer person',
  'another account’s admin person',
  'person of no account',
];

describe('every endpoint × every caller that must not get in', () => {
  it.each(CALLERS)('%s: refused with the contract’s status, nothing changed in DynamoDB', async (caller) => {
    // Refused before the counter: no usage written either. (A person of no account is counted.)
    const unauthenticated = expected(caller, ROUTES[0]!) === '401 UNAUTHORIZED';
    const refused = ROUTES.filter((r) => expected(caller, r) !== ALLOWED);
    expect(refused.length).toBeGreaterThan(0);
    const before = await t.snapshot({ withUsage: unauthenticated });
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    for (const route of refused) {
      const reply = await request(caller, route.method, route.path(), route.body);
      got[route.name] = outcome(reply);
      want[route.name] = expected(caller, route);
      // Every refusal is the contract's JSON error body, never an internal detail.
      expect(Object.keys(reply.body)).toEqual(expect.arrayContaining(['error', 'code']));
      expect(reply.text).not.toMatch(/stack|at .*\.js|Exception/);
    }
    expect(got).toEqual(want);
    expect(await t.snapshot({ withUsage: unauthenticated })).toBe(before);
  });

  it('the routes those callers may use answer 200 and show nothing of account A', async () => {
    const other = keys['another account']!;
    const lists = await Promise.all(['/keys', '/workflows', '/executions'].map((path) => t.api(other, 'GET', path)));
    expect(lists.map((r) => r.status)).toEqual([200, 200, 200]);
    for (const reply of lists) expect(reply.text).not.toContain(a.accountId);
    expect(lists.map((r) => r.body['items'])).toEqual([[expect.objectContaining({ name: 'admin' })], [], []]);
    const outside = keys['outside the workspace']!;
    expect((await t.api(outside, 'GET', '/workflows')).body['items']).toEqual([]);
    expect((await t.api(outside, 'GET', '/executions')).body['items']).toEqual([]);
    expect((await t.api(outside, 'GET', `/keys/${targetKeyId}`)).status).toBe(200);
    for (const caller of ['lacking the capability', 'outside the workspace']) {
      expect((await t.api(keys[caller], 'GET', '/keys/verify')).status).toBe(200);
      expect((await t.api(keys[caller], 'GET', '/models')).status).toBe(200);
    }
  });
});

describe('people reach what their role allows', () => {
  it.each(['admin person', 'viewer person'])('%s: every read their role allows answers 200', async (caller) => {
    const reads = ROUTES.filter((r) => r.method === 'GET' && expected(caller, r) === ALLOWED);
    expect(reads.length).toBeGreaterThan(caller === 'admin person' ? 9 : 7);
    const got = Object.fromEntries(await Promise.all(reads.map(async (r) => [r.name, (await request(caller, r.method, r.path())).status] as const)));
    expect(got).toEqual(Object.fromEntries(reads.map((r) => [r.name, 200])));
  });
});

describe('key management with every capability and workspace the caller lacks', () => {
  const HELD = ['keys:read', 'keys:write', 'workflow:read', 'workflow:alpha:run'];
  let caller: string;
  let managed: string;

  beforeAll(async () => {
    const deps = t.deps();
    caller = (await createKey(deps, a.accountId, { name: 'narrow', capabilities: HELD, workspaces: ['ws-a'] })).apiKey;
    managed = (await createKey(deps, a.accountId, { name: 'managed', capabilities: ['workflow:read'], workspaces: ['ws-a'] })).key.key_id;
  });

  /** The caller can neither edit, rotate nor revoke `keyId`, and nothing changes. */
  async function expectUnmanageable(keyId: string, code: string) {
    const before = await t.snapshot();
    for (const [method, path, body] of [
      ['PATCH', `/keys/${keyId}`, { name: 'mine now' }],
      ['POST', `/keys/${keyId}/rotate`, {}],
      ['DELETE', `/keys/${keyId}`, undefined],
    ] as const) {
      const reply = await t.api(caller, method, path, body);
      expect({ method, status: reply.status, code: reply.body['code'] }).toEqual({ method, status: 403, code });
    }
    expect(await t.snapshot()).toBe(before);
  }

  const lacking = [
    ...FIXED_CAPABILITIES.filter((c) => !HELD.includes(c)),
    'workflow:beta:run', // another workflow than the one held
    'model:echo:run',
  ];

  it('lists every capability it lacks', () => {
    expect(lacking).toEqual(expect.arrayContaining(['workflow:run', 'workflow:write', 'model:run', 'webhook:receive', 'execution:read', 'execution:cancel']));
  });

  it.each(lacking)('cannot create, edit or rotate into %s (403 CAPABILITY_DENIED), and nothing changes', async (capability) => {
    const before = await t.snapshot();
    const create = await t.api(caller, 'POST', '/keys', { name: 'x', capabilities: ['workflow:read', capability], workspaces: ['ws-a'] });
    const edit = await t.api(caller, 'PATCH', `/keys/${managed}`, { capabilities: ['workflow:read', capability] });
    expect([create, edit].map((r) => [r.status, r.body['code'], r.body['required']])).toEqual([
      [403, 'CAPABILITY_DENIED', capability],
      [403, 'CAPABILITY_DENIED', capability],
    ]);
    expect(await t.snapshot()).toBe(before);
    // A key holding the capability cannot be edited, rotated or revoked by this caller either.
    const holder = (await createKey(t.deps(), a.accountId, { name: 'holder', capabilities: [capability], workspaces: ['ws-a'] })).key.key_id;
    await expectUnmanageable(holder, 'CAPABILITY_DENIED');
    await revokeKey(t.deps(), a.accountId, holder);
  });

  it.each([[['ws-b']], [['ws-a', 'ws-b']], [['*']]])('cannot create, edit or rotate into workspaces %j (403 WORKSPACE_DENIED)', async (workspaces) => {
    const before = await t.snapshot();
    const create = await t.api(caller, 'POST', '/keys', { name: 'x', capabilities: ['workflow:read'], workspaces });
    const edit = await t.api(caller, 'PATCH', `/keys/${managed}`, { workspaces });
    expect([create, edit].map((r) => [r.status, r.body['code']])).toEqual([
      [403, 'WORKSPACE_DENIED'],
      [403, 'WORKSPACE_DENIED'],
    ]);
    expect(await t.snapshot()).toBe(before);
    const wider = (await createKey(t.deps(), a.accountId, { name: 'wider', capabilities: ['workflow:read'], workspaces })).key.key_id;
    await expectUnmanageable(wider, 'WORKSPACE_DENIED');
    await revokeKey(t.deps(), a.accountId, wider);
  });

  it('a pro account’s key cannot grant what the tier does not allow (403 TIER_CEILING_EXCEEDED), even holding keys:write', async () => {
    const pro = await t.account('pro', { name: 'pro admin', capabilities: ['keys:read', 'keys:write', 'workflow:read'] });
    const before = await t.snapshot();
    const reply = await t.api(pro.key, 'POST', '/keys', { name: 'm', capabilities: ['model:run'] });
    expect([reply.status, reply.body['code'], reply.body['tier'], reply.body['capability']]).toEqual([403, 'TIER_CEILING_EXCEEDED', 'pro', 'model:run']);
    expect(await t.snapshot()).toBe(before);
    expect(DEFAULT_SETTINGS.tiers.pro.ceiling).not.toContain('model:run');
  });
});
