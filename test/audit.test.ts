/**
 * The audit repository against DynamoDB Local (API.md §7): the stored item (its indexes' keys and its TTL
 * from `auditRetentionDays`), the order and the time range, combined filters that keep pages full, page
 * tokens bound to their account and filters, and conditional membership writes that record nothing when
 * the member changed under them.
 */
import { QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { AuditRepository, newAuditEvent, OPERATOR_ACTOR, SYSTEM_ACTOR, type AuditEvent } from '../lambdas/shared/repositories/audit.js';
import { MembershipsRepository } from '../lambdas/shared/repositories/memberships.js';
import { createAccount, createKey, setAccountTier } from '../lambdas/shared/services/keys.js';
import { resolveSettings } from '../lambdas/shared/settings.js';
import { createTestDb, type TestDb } from './support/dynamodb.js';

let db: TestDb;
let audit: AuditRepository;
let n = 0;

beforeAll(async () => {
  db = await createTestDb('audit');
  audit = new AuditRepository(db.doc, db.tables.audit, 30);
});
afterAll(() => db?.close());

const newAccount = () => `acct_audit_${++n}_${Date.now().toString(36)}`;

/** Writes events as their changes' transactions would (up to 100 at once). */
async function write(events: AuditEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 100) {
    await db.doc.send(new TransactWriteCommand({ TransactItems: events.slice(i, i + 100).map((e) => audit.putItem(e)) }));
  }
}

const at = (iso: string) => new Date(iso);
const keyEvent = (accountId: string, action: 'key.created' | 'key.updated' | 'key.revoked', keyId: string, actorKey: string, now: Date) =>
  newAuditEvent({ accountId, action, actor: { kind: 'key', key_id: actorKey }, target: { kind: 'key', id: keyId }, changes: null, now });

async function items(accountId: string): Promise<Record<string, unknown>[]> {
  const out = await db.doc.send(new QueryCommand({ TableName: db.tables.audit, KeyConditionExpression: 'account_id = :a', ExpressionAttributeValues: { ':a': accountId }, ConsistentRead: true }));
  return out.Items ?? [];
}

describe('the stored event', () => {
  it('carries its index keys and a TTL of occurred_at + auditRetentionDays; operator and system actors stay out of the actor index', async () => {
    const accountId = newAccount();
    const now = at('2026-03-01T10:00:00.123Z');
    await write([
      keyEvent(accountId, 'key.created', 'key_a', 'key_admin', now),
      newAuditEvent({ accountId, action: 'account.created', actor: OPERATOR_ACTOR, target: { kind: 'account', id: accountId }, changes: { tier: { from: null, to: 'pro' } }, now }),
      newAuditEvent({ accountId, action: 'key.expired', actor: SYSTEM_ACTOR, target: { kind: 'key', id: 'key_a' }, now }),
    ]);
    const stored = await items(accountId);
    const epoch = Math.floor(now.getTime() / 1000);
    expect(stored.map((i) => i['ttl'])).toEqual([epoch + 30 * 86_400, epoch + 30 * 86_400, epoch + 30 * 86_400]);
    const byAction = Object.fromEntries(stored.map((i) => [String(i['action']), i]));
    expect(byAction['key.created']).toMatchObject({
      sk: expect.stringMatching(/^2026-03-01T10:00:00\.123Z#evt_[0-9A-Za-z]{20}$/),
      target_key: `${accountId}#key_a`,
      actor_key: `${accountId}#key_admin`,
      action_key: `${accountId}#key.created`,
    });
    expect(byAction['account.created']).not.toHaveProperty('actor_key');
    expect(byAction['key.expired']).not.toHaveProperty('actor_key');
    // The API's view has none of them.
    const page = await audit.list(accountId, {}, 10);
    for (const event of page.items) expect(Object.keys(event).sort()).toEqual(
      ['account_id', 'action', 'actor', 'changes', 'event_id', 'occurred_at', 'request_id', 'source_ip', 'target', 'user_agent'],
    );
  });

  it('is create-only: the same event again is refused', async () => {
    const accountId = newAccount();
    const event = keyEvent(accountId, 'key.created', 'key_once', 'key_admin', new Date());
    await write([event]);
    await expect(write([event])).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    expect(await items(accountId)).toHaveLength(1);
  });

  it('keeps a long user agent to 512 characters', () => {
    const event = newAuditEvent({
      accountId: 'acct',
      action: 'key.revoked',
      actor: OPERATOR_ACTOR,
      target: { kind: 'key', id: 'key_x' },
      request: { request_id: 'r', source_ip: '203.0.113.9', user_agent: 'x'.repeat(2000) },
      now: new Date(),
    });
    expect(event.user_agent).toHaveLength(512);
  });
});

describe('reading', () => {
  const accountId = newAccount();
  const times = Array.from({ length: 6 }, (_, i) => at(`2026-04-0${i + 1}T00:00:00.000Z`));
  let written: AuditEvent[];
  beforeAll(async () => {
    written = times.map((t, i) => keyEvent(accountId, i % 2 ? 'key.updated' : 'key.created', `key_${i % 3}`, 'key_admin', t));
    await write(written);
  });
  const ids = (events: AuditEvent[]) => events.map((e) => e.event_id);

  it('newest first; since inclusive, until exclusive, to the millisecond', async () => {
    expect(ids((await audit.list(accountId, {}, 10)).items)).toEqual(ids([...written].reverse()));
    expect(ids((await audit.list(accountId, { since: times[2]!, until: times[4]! }, 10)).items)).toEqual(ids([written[3]!, written[2]!]));
    expect(ids((await audit.list(accountId, { since: new Date(times[2]!.getTime() + 1) }, 10)).items)).toEqual(ids([written[5]!, written[4]!, written[3]!]));
    expect(ids((await audit.list(accountId, { until: new Date(times[1]!.getTime() + 1) }, 10)).items)).toEqual(ids([written[1]!, written[0]!]));
    expect((await audit.list(accountId, { since: times[3]!, until: times[3]! }, 10)).items).toEqual([]);
  });

  it('a page is never empty, and its token is null when nothing follows', async () => {
    const first = await audit.list(accountId, {}, 3);
    expect(first.items).toHaveLength(3);
    const second = await audit.list(accountId, {}, 3, first.nextToken!);
    expect({ n: second.items.length, next: second.nextToken }).toEqual({ n: 3, next: null });
    expect(ids([...first.items, ...second.items])).toEqual(ids([...written].reverse()));
  });

  it('a token is valid for its account and its filters only', async () => {
    const first = await audit.list(accountId, { action: 'key.created' }, 1);
    await expect(audit.list(newAccount(), { action: 'key.created' }, 1, first.nextToken!)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(audit.list(accountId, { action: 'key.updated' }, 1, first.nextToken!)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(audit.list(accountId, {}, 1, first.nextToken!)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    expect((await audit.list(accountId, { action: 'key.created' }, 1, first.nextToken!)).items).toHaveLength(1);
  });

  it('a combination reads the narrowest partition and keeps pages full, however far apart the matches are', async () => {
    const busy = newAccount();
    // One key edited 150 times by one admin; three of those edits by another key.
    const start = Date.parse('2026-05-01T00:00:00Z');
    const events = Array.from({ length: 150 }, (_, i) => keyEvent(busy, 'key.updated', 'key_busy', [20, 90, 140].includes(i) ? 'key_other' : 'key_admin', new Date(start + i * 1000)));
    await write(events);
    const first = await audit.list(busy, { targetId: 'key_busy', actorId: 'key_other' }, 2);
    expect(ids(first.items)).toEqual(ids([events[140]!, events[90]!]));
    const second = await audit.list(busy, { targetId: 'key_busy', actorId: 'key_other' }, 2, first.nextToken!);
    expect({ ids: ids(second.items), next: second.nextToken }).toEqual({ ids: ids([events[20]!]), next: null });
    expect(ids((await audit.list(busy, { actorId: 'key_other', action: 'key.updated' }, 10)).items)).toEqual(ids([events[140]!, events[90]!, events[20]!]));
    expect((await audit.list(busy, { actorId: 'key_other', action: 'key.created' }, 10)).items).toEqual([]);
  });

  it('a combination that matches nothing in a long history reads a bounded page: short (here empty) with a token, and the tokens lead to the match', async () => {
    const busy = newAccount();
    // A CI key that edited one key 1,100 times; its one creation is the oldest event.
    const start = Date.parse('2026-06-01T00:00:00Z');
    const events = Array.from({ length: 1_101 }, (_, i) => keyEvent(busy, i === 0 ? 'key.created' : 'key.updated', 'key_ci', 'key_ci', new Date(start + i * 1000)));
    await write(events);
    const filters = { actorId: 'key_ci', action: 'key.created' } as const;
    // Before: one page read all 1,101 events (a year's history: until the function's timeout).
    const first = await audit.list(busy, filters, 10);
    expect(first.items).toEqual([]);
    expect(first.nextToken).not.toBeNull();
    const second = await audit.list(busy, filters, 10, first.nextToken!);
    expect({ ids: ids(second.items), next: second.nextToken }).toEqual({ ids: ids([events[0]!]), next: null });
  });
});

describe('membership writes are conditioned on the member as read', () => {
  it('a role change or removal of a member changed meanwhile writes nothing, event included', async () => {
    const memberships = new MembershipsRepository(db.doc, db.tables.memberships);
    const accountId = newAccount();
    const put = (action: 'member.added' | 'member.role_changed' | 'member.removed') =>
      audit.putItem(newAuditEvent({ accountId, action, actor: OPERATOR_ACTOR, target: { kind: 'member', id: 'sub-1' }, now: new Date() }));
    const added = await memberships.add('sub-1', accountId, 'one@example.com', 'viewer', new Date(), put('member.added'));
    expect(await memberships.setRole(added, 'admin', new Date(), put('member.role_changed'))).toMatchObject({ role: 'admin' });
    // `added` still says viewer: stale.
    expect(await memberships.setRole(added, 'viewer', new Date(), put('member.role_changed'))).toBeUndefined();
    expect(await memberships.remove(added, put('member.removed'))).toBe(false);
    expect((await items(accountId)).map((i) => i['action'])).toEqual(['member.added', 'member.role_changed']);
    expect(await memberships.get('sub-1', accountId)).toMatchObject({ role: 'admin' });
    // The same membership added again (a retry) writes nothing more.
    await memberships.add('sub-1', accountId, 'one@example.com', 'admin', new Date(), put('member.added'));
    expect(await items(accountId)).toHaveLength(2);
  });
});

describe('tier changes are conditioned on the tier as read', () => {
  it('changes at once: each lands after the one before, and each event’s `from` is the tier it replaced', async () => {
    const accountId = newAccount();
    const deps = db.deps();
    await createAccount(deps, accountId, 'business');
    await createKey(deps, accountId, { name: 'tiered', scope: 'admin' });
    const targets = ['pro', 'enterprise', 'business', 'pro', 'free'] as const;
    await Promise.all(targets.map((tier) => setAccountTier(deps, accountId, tier)));
    const changes = (await items(accountId))
      .filter((i) => i['action'] === 'account.tier_changed')
      .map((i) => (i['changes'] as { tier: { from: string; to: string } }).tier);
    // A chain from business to the tier the account has now, no link stale or repeated.
    expect(changes.length).toBeGreaterThanOrEqual(1);
    expect(changes[0]!.from).toBe('business');
    for (let i = 1; i < changes.length; i++) expect(changes[i]!.from).toBe(changes[i - 1]!.to);
    for (const change of changes) expect(change.from).not.toBe(change.to);
    expect((await deps.accounts.get(accountId))!.tier).toBe(changes[changes.length - 1]!.to);
    // The same tier again writes nothing.
    const before = (await items(accountId)).length;
    await setAccountTier(deps, accountId, changes[changes.length - 1]!.to as 'pro');
    expect(await items(accountId)).toHaveLength(before);
  });
});

describe('settings', () => {
  it('auditRetentionDays: 365 by default, 1 to 3650; maxActiveKeysPerAccount at most 98 (a tier change, its keys and its event in one transaction)', () => {
    expect(resolveSettings().auditRetentionDays).toBe(365);
    expect(resolveSettings({ auditRetentionDays: 7 }).auditRetentionDays).toBe(7);
    for (const bad of [0, 3651, 1.5]) expect(() => resolveSettings({ auditRetentionDays: bad })).toThrow(`auditRetentionDays must be an integer from 1 to 3650, got ${bad}`);
    expect(() => resolveSettings({ maxActiveKeysPerAccount: 99 })).toThrow(/from 1 to 98/);
  });
});
