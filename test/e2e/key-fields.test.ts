/**
 * The key fields of #21 item 5 (API.md §4 "Keys"), end to end over HTTP against the local runner:
 * `metadata` (set, returned on every key object, replaced by PATCH, validated: 400 and nothing changed),
 * `expires_at` at creation (refused from its instant), and `enabled` (a disabled key is 401 from its
 * next request and keeps its slot; enabled again it works), with their audit events.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { hashApiKey } from '../../lambdas/shared/api-key.js';
import type { Reply } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
beforeAll(async () => {
  t = await startTestStack('e2e-key-fields');
});
afterAll(() => t?.close());

const DAY = 86_400_000;

function expectValidation(reply: Reply, field: string) {
  expect({ status: reply.status, code: reply.body['code'] }).toEqual({ status: 400, code: 'VALIDATION_ERROR' });
  const details = reply.body['details'] as { field: string; message: string }[];
  expect(details.map((d) => d.field)).toContain(field);
  for (const d of details) expect(d.message).toEqual(expect.any(String));
}

interface Event {
  action: string;
  target: { id: string };
  changes: Record<string, { from: unknown; to: unknown }> | null;
}

async function events(admin: string, keyId: string): Promise<Event[]> {
  const reply = await t.api(admin, 'GET', `/audit-events?target_id=${keyId}&limit=100`);
  expect(reply.status).toBe(200);
  return (reply.body['items'] as Event[]).reverse();
}

/** Waits (polling, never a fixed sleep past need) until `instant` has passed on this machine's clock. */
async function until(instant: number) {
  while (Date.now() <= instant) await new Promise((r) => setTimeout(r, Math.min(200, instant - Date.now() + 5)));
}

describe('metadata', () => {
  it('is set at creation and returned by create, get, list and verify', async () => {
    const { key: admin } = await t.account('business');
    const metadata = { team: 'platform', ticket: 'OPS-1', empty: '' };
    const created = await t.api(admin, 'POST', '/keys', { name: 'tagged', preset: 'read-only', metadata });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ metadata, enabled: true });
    // Keys in order, whatever order they were given in.
    expect(Object.keys(created.body['metadata'] as object)).toEqual(['empty', 'team', 'ticket']);
    const id = String(created.body['key_id']);
    expect((await t.api(admin, 'GET', `/keys/${id}`)).body).toMatchObject({ metadata, enabled: true });
    const listed = (await t.api(admin, 'GET', '/keys')).body['items'] as Record<string, unknown>[];
    expect(listed.find((k) => k['key_id'] === id)).toMatchObject({ metadata, enabled: true });
    // The admin key has none: `{}`.
    expect(listed.find((k) => k['key_id'] !== id)).toMatchObject({ metadata: {}, enabled: true });
    const verified = await t.api(String(created.body['api_key']), 'GET', '/keys/verify');
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ key_id: id, metadata, enabled: true });
  });

  it('PATCH replaces the whole map ({} clears it); a retried PATCH changes nothing; the audit event says from and to', async () => {
    const { key: admin } = await t.account('business');
    const created = await t.api(admin, 'POST', '/keys', { name: 'm', preset: 'read-only', metadata: { a: '1', b: '2' } });
    const id = String(created.body['key_id']);
    const patched = await t.api(admin, 'PATCH', `/keys/${id}`, { metadata: { b: '3', c: '4' } });
    expect(patched.status).toBe(200);
    expect(patched.body['metadata']).toEqual({ b: '3', c: '4' });
    const before = await t.snapshot();
    const again = await t.api(admin, 'PATCH', `/keys/${id}`, { metadata: { c: '4', b: '3' } });
    expect({ status: again.status, metadata: again.body['metadata'] }).toEqual({ status: 200, metadata: { b: '3', c: '4' } });
    expect(await t.snapshot()).toBe(before);
    const cleared = await t.api(admin, 'PATCH', `/keys/${id}`, { metadata: {} });
    expect(cleared.body['metadata']).toEqual({});
    const trail = await events(admin, id);
    expect(trail.map((e) => e.action)).toEqual(['key.created', 'key.updated', 'key.updated']);
    expect(trail[0]!.changes).toMatchObject({ metadata: { from: null, to: { a: '1', b: '2' } }, enabled: { from: null, to: true } });
    expect(trail[1]!.changes).toEqual({ metadata: { from: { a: '1', b: '2' }, to: { b: '3', c: '4' } } });
    expect(trail[2]!.changes).toEqual({ metadata: { from: { b: '3', c: '4' }, to: {} } });
  });

  it('each limit refused with 400 VALIDATION_ERROR naming the field, at creation and by PATCH, and nothing changed', async () => {
    const { key: admin } = await t.account('business');
    const id = String((await t.api(admin, 'POST', '/keys', { name: 'limits', preset: 'read-only', metadata: { keep: 'me' } })).body['key_id']);
    const entries = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    // At the limits: accepted.
    const atLimits = { ...entries(19), ['k'.repeat(40)]: 'v'.repeat(500) };
    const ok = await t.api(admin, 'POST', '/keys', { name: 'at limits', preset: 'read-only', metadata: atLimits });
    expect(ok.status).toBe(201);
    expect(ok.body['metadata']).toEqual(atLimits);
    await t.api(admin, 'DELETE', `/keys/${String(ok.body['key_id'])}`);

    const bad: [unknown, string][] = [
      [entries(21), 'metadata'],
      [{ ['k'.repeat(41)]: 'v' }, 'metadata'],
      [{ '': 'v' }, 'metadata'],
      [{ long: 'v'.repeat(501) }, 'metadata.long'],
      [{ n: 5 }, 'metadata.n'],
      [{ nested: { a: 'b' } }, 'metadata.nested'],
      [['a'], 'metadata'],
      ['text', 'metadata'],
      // The names of JavaScript's object members (an own `__proto__` as JSON.parse makes it): reserved,
      // never a 500 from DynamoDB's marshalling.
      [JSON.parse('{"__proto__": "p"}') as unknown, 'metadata'],
      [{ toString: 'x' }, 'metadata'],
      [{ constructor: 'x' }, 'metadata'],
    ];
    const before = await t.snapshot();
    for (const [metadata, field] of bad) {
      expectValidation(await t.api(admin, 'POST', '/keys', { name: 'bad', preset: 'read-only', metadata }), field);
      expectValidation(await t.api(admin, 'PATCH', `/keys/${id}`, { name: 'renamed', metadata }), field);
    }
    expect(await t.snapshot()).toBe(before);
    expect((await t.api(admin, 'GET', `/keys/${id}`)).body).toMatchObject({ name: 'limits', metadata: { keep: 'me' } });
  });

  it('a rotated key carries its predecessor’s metadata and state, with or without grace', async () => {
    const { key: admin } = await t.account('business');
    const metadata = { owner: 'ci' };
    const id = String((await t.api(admin, 'POST', '/keys', { name: 'r', preset: 'read-only', metadata })).body['key_id']);
    const rotated = await t.api(admin, 'POST', `/keys/${id}/rotate`, { grace_period_seconds: 60 });
    expect(rotated.status).toBe(201);
    expect(rotated.body).toMatchObject({ metadata, enabled: true });
    const next = String(rotated.body['key_id']);
    expect((await t.api(admin, 'GET', `/keys/${next}`)).body).toMatchObject({ metadata });
    expect((await t.api(String(rotated.body['api_key']), 'GET', '/keys/verify')).body).toMatchObject({ key_id: next, metadata });
  });
});

describe('expires_at at creation', () => {
  it('is accepted as an exact instant (any offset), returned in UTC, and the key is refused from that instant', async () => {
    const { key: admin } = await t.account('business');
    const soon = new Date(Date.now() + 3000);
    const inAMonth = new Date(Date.now() + 30 * DAY);
    const offset = inAMonth.toISOString().replace('Z', '+00:00');
    const month = await t.api(admin, 'POST', '/keys', { name: 'month', preset: 'read-only', expires_at: offset });
    expect(month.status).toBe(201);
    expect(month.body['expires_at']).toBe(inAMonth.toISOString());
    // At most a year ahead: 365 days is accepted.
    const year = await t.api(admin, 'POST', '/keys', { name: 'year', preset: 'read-only', expires_at: new Date(Date.now() + 365 * DAY - 60_000).toISOString() });
    expect(year.status).toBe(201);

    const short = await t.api(admin, 'POST', '/keys', { name: 'short', preset: 'read-only', expires_at: soon.toISOString() });
    expect(short.status).toBe(201);
    expect(short.body['expires_at']).toBe(soon.toISOString());
    const key = String(short.body['api_key']);
    expect((await t.api(key, 'GET', '/keys/verify')).status).toBe(200);
    await until(soon.getTime());
    const refused = await t.api(key, 'GET', '/keys/verify');
    expect({ status: refused.status, code: refused.body['code'] }).toEqual({ status: 401, code: 'UNAUTHORIZED' });
  });

  it('in the past, more than a year ahead, not a date-time, or with expires_in_days: 400 and nothing created', async () => {
    const { key: admin } = await t.account('business');
    const before = await t.snapshot();
    const cases: [Record<string, unknown>, string][] = [
      [{ expires_at: new Date(Date.now() - 60_000).toISOString() }, 'expires_at'],
      [{ expires_at: new Date(Date.now() + 366 * DAY).toISOString() }, 'expires_at'],
      [{ expires_at: '2030-01-01' }, 'expires_at'],
      [{ expires_at: `${new Date().getUTCFullYear() + 1}-02-30T00:00:00Z` }, 'expires_at'],
      [{ expires_at: new Date(Date.now() + DAY).toISOString().replace(/T\d\d/, 'T24') }, 'expires_at'],
      [{ expires_at: 'tomorrow' }, 'expires_at'],
      [{ expires_at: new Date(Date.now() + 7 * DAY).toISOString(), expires_in_days: 30 }, 'expires_at'],
    ];
    for (const [extra, field] of cases) {
      expectValidation(await t.api(admin, 'POST', '/keys', { name: 'bad expiry', preset: 'read-only', ...extra }), field);
    }
    expect(await t.snapshot()).toBe(before);
  });

  it('null stands for not given, as the OpenAPI document types these fields: both expiries null is no expiry, not "both"', async () => {
    const { key: admin } = await t.account('business');
    const neither = await t.api(admin, 'POST', '/keys', { name: 'nulls', preset: 'read-only', scope: null, capabilities: null, environment: null, expires_in_days: null, expires_at: null });
    expect({ status: neither.status, expires_at: neither.body['expires_at'], environment: neither.body['environment'] }).toEqual({ status: 201, expires_at: null, environment: 'live' });
    // Still exactly one of capabilities, preset or scope: nulls do not count, and none at all is refused.
    expectValidation(await t.api(admin, 'POST', '/keys', { name: 'none', capabilities: null, preset: null }), 'capabilities');
    const wrong = await t.api(admin, 'POST', '/keys', { name: 'bad', preset: 'read-only', expires_in_days: 8 });
    expect(wrong.body['error']).toBe('expires_in_days: must be one of 7, 30, 60, 90, 180, 365');
    const at = new Date(Date.now() + 7 * DAY).toISOString();
    const one = await t.api(admin, 'POST', '/keys', { name: 'one', preset: 'read-only', expires_in_days: null, expires_at: at });
    expect({ status: one.status, expires_at: one.body['expires_at'] }).toEqual({ status: 201, expires_at: at });
  });

  it('a body that is not a JSON object is refused as that alone, naming no field it never sent', async () => {
    const { key: admin } = await t.account('business');
    const before = await t.snapshot();
    for (const raw of [undefined, 'null', '[1]', '"x"', '3']) {
      const reply = await t.api(admin, 'POST', '/keys', raw);
      expect({ raw, status: reply.status, error: reply.body['error'], details: reply.body['details'] }).toEqual({
        raw,
        status: 400,
        error: 'body: must be a JSON object',
        details: [{ field: 'body', message: 'must be a JSON object' }],
      });
    }
    expect(await t.snapshot()).toBe(before);
  });
});

describe('enabled', () => {
  it('PATCH {enabled: false}: 401 from the next request, still listed and counted; true: works again; audited', async () => {
    const { key: admin, accountId } = await t.account('business');
    const created = await t.api(admin, 'POST', '/keys', { name: 'switch', preset: 'read-only' });
    const id = String(created.body['key_id']);
    const key = String(created.body['api_key']);
    expect((await t.api(key, 'GET', '/workflows')).status).toBe(200);

    const disabled = await t.api(admin, 'PATCH', `/keys/${id}`, { enabled: false });
    expect({ status: disabled.status, enabled: disabled.body['enabled'] }).toEqual({ status: 200, enabled: false });
    // The very next request, on any route, and the key's own verify: 401 (no cache window).
    for (const path of ['/workflows', '/keys/verify', '/me']) {
      const refused = await t.api(key, 'GET', path);
      expect({ path, status: refused.status, code: refused.body['code'] }).toEqual({ path, status: 401, code: 'UNAUTHORIZED' });
    }
    // Still listed, readable, and holding its slot.
    const listed = (await t.api(admin, 'GET', '/keys')).body['items'] as Record<string, unknown>[];
    expect(listed.find((k) => k['key_id'] === id)).toMatchObject({ enabled: false });
    expect((await t.api(admin, 'GET', `/keys/${id}`)).body).toMatchObject({ enabled: false });
    const me = await t.api(admin, 'GET', '/me');
    expect((me.body['account'] as Record<string, unknown>)['active_keys']).toBe(2);
    expect((await t.deps().accounts.get(accountId))?.active_keys).toBe(2);

    // A retried PATCH is harmless: nothing written, the same answer.
    const before = await t.snapshot();
    const retried = await t.api(admin, 'PATCH', `/keys/${id}`, { enabled: false });
    expect({ status: retried.status, enabled: retried.body['enabled'] }).toEqual({ status: 200, enabled: false });
    expect(await t.snapshot()).toBe(before);

    const enabled = await t.api(admin, 'PATCH', `/keys/${id}`, { enabled: true });
    expect(enabled.body['enabled']).toBe(true);
    expect((await t.api(key, 'GET', '/workflows')).status).toBe(200);
    expect((await t.api(key, 'GET', '/keys/verify')).body).toMatchObject({ key_id: id, enabled: true });

    const updates = (await events(admin, id)).filter((e) => e.action === 'key.updated');
    expect(updates.map((e) => e.changes)).toEqual([{ enabled: { from: true, to: false } }, { enabled: { from: false, to: true } }]);
  });

  it('a disabled key keeps its slot: at the key limit, creating another is 409 KEY_LIMIT_REACHED', async () => {
    const { key: admin } = await t.account('business');
    const ids: string[] = [];
    // The admin key and 9 more: 10 of 10.
    for (let i = 0; i < 9; i++) ids.push(String((await t.api(admin, 'POST', '/keys', { name: `k${i}`, preset: 'read-only' })).body['key_id']));
    await t.api(admin, 'PATCH', `/keys/${ids[0]!}`, { enabled: false });
    const full = await t.api(admin, 'POST', '/keys', { name: 'one more', preset: 'read-only' });
    expect(full.status).toBe(409);
    expect(full.body).toMatchObject({ code: 'KEY_LIMIT_REACHED', limit: 10, active: 10 });
    // Deleting the disabled key frees the slot.
    expect((await t.api(admin, 'DELETE', `/keys/${ids[0]!}`)).status).toBe(204);
    expect((await t.api(admin, 'POST', '/keys', { name: 'one more', preset: 'read-only' })).status).toBe(201);
  });

  it('a key made disabled at creation is refused until enabled', async () => {
    const { key: admin } = await t.account('business');
    const created = await t.api(admin, 'POST', '/keys', { name: 'off', preset: 'read-only', enabled: false });
    expect(created.body['enabled']).toBe(false);
    expect((await t.api(String(created.body['api_key']), 'GET', '/keys/verify')).status).toBe(401);
    await t.api(admin, 'PATCH', `/keys/${String(created.body['key_id'])}`, { enabled: true });
    expect((await t.api(String(created.body['api_key']), 'GET', '/keys/verify')).status).toBe(200);
  });

  it('rotating a disabled key gives a disabled replacement; enabling the replacement makes it work', async () => {
    const { key: admin } = await t.account('business');
    const id = String((await t.api(admin, 'POST', '/keys', { name: 'dr', preset: 'read-only', metadata: { a: 'b' } })).body['key_id']);
    await t.api(admin, 'PATCH', `/keys/${id}`, { enabled: false });
    const rotated = await t.api(admin, 'POST', `/keys/${id}/rotate`, {});
    expect(rotated.status).toBe(201);
    expect(rotated.body).toMatchObject({ enabled: false, metadata: { a: 'b' } });
    const next = String(rotated.body['key_id']);
    expect((await t.api(String(rotated.body['api_key']), 'GET', '/keys/verify')).status).toBe(401);
    // The old key is rotated: edits go to the replacement.
    expect((await t.api(admin, 'PATCH', `/keys/${id}`, { enabled: true })).body).toMatchObject({ code: 'KEY_ROTATED', rotated_to: next });
    await t.api(admin, 'PATCH', `/keys/${next}`, { enabled: true });
    expect((await t.api(String(rotated.body['api_key']), 'GET', '/keys/verify')).status).toBe(200);
  });

  it('a disable racing a rotation is never lost: the replacement is disabled, or the disable lands on it', async () => {
    const { key: admin } = await t.account('business');
    for (let round = 0; round < 5; round++) {
      const created = await t.api(admin, 'POST', '/keys', { name: `race${round}`, preset: 'read-only' });
      const id = String(created.body['key_id']);
      const [patch, rotate] = await Promise.all([
        t.api(admin, 'PATCH', `/keys/${id}`, { enabled: false, metadata: { round: String(round) } }),
        t.api(admin, 'POST', `/keys/${id}/rotate`, {}),
      ]);
      expect(rotate.status).toBe(201);
      const next = String(rotate.body['key_id']);
      // The edit came first (200: the rotation read again and copied it), or the rotation did (409 naming
      // the replacement, which the caller then edits).
      const outcome = patch.status === 409 ? { status: 409, code: patch.body['code'], rotated_to: patch.body['rotated_to'] } : { status: patch.status };
      expect([{ status: 200 }, { status: 409, code: 'KEY_ROTATED', rotated_to: next }]).toContainEqual(outcome);
      if (patch.status === 409) await t.api(admin, 'PATCH', `/keys/${next}`, { enabled: false, metadata: { round: String(round) } });
      expect((await t.api(admin, 'GET', `/keys/${next}`)).body).toMatchObject({ enabled: false, metadata: { round: String(round) } });
      expect((await t.api(String(rotate.body['api_key']), 'GET', '/keys/verify')).status).toBe(401);
      await t.api(admin, 'DELETE', `/keys/${next}`);
    }
  });
});

describe('keys made before these fields', () => {
  it('read as metadata {} and enabled true, work, and can be edited', async () => {
    const { key: admin } = await t.account('business');
    const created = await t.api(admin, 'POST', '/keys', { name: 'old', preset: 'read-only' });
    const id = String(created.body['key_id']);
    const key = String(created.body['api_key']);
    await t.stack.doc.send(
      new UpdateCommand({ TableName: t.stack.state.tables.keys, Key: { pk: `H#${hashApiKey(key)}` }, UpdateExpression: 'REMOVE metadata, enabled' }),
    );
    expect((await t.api(admin, 'GET', `/keys/${id}`)).body).toMatchObject({ metadata: {}, enabled: true });
    expect((await t.api(key, 'GET', '/keys/verify')).body).toMatchObject({ metadata: {}, enabled: true });
    // Nothing to change: no write.
    const before = await t.snapshot();
    expect((await t.api(admin, 'PATCH', `/keys/${id}`, { metadata: {}, enabled: true })).status).toBe(200);
    expect(await t.snapshot()).toBe(before);
    const off = await t.api(admin, 'PATCH', `/keys/${id}`, { enabled: false, metadata: { x: 'y' } });
    expect(off.body).toMatchObject({ enabled: false, metadata: { x: 'y' } });
    expect((await t.api(key, 'GET', '/keys/verify')).status).toBe(401);
    const last = (await events(admin, id)).at(-1)!;
    expect(last.changes).toEqual({ enabled: { from: true, to: false }, metadata: { from: {}, to: { x: 'y' } } });
  });
});
