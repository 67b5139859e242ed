/**
 * The webhook signing secret's rotation with a grace period (API.md §4): the secret it replaces keeps
 * signing beside the new one until the grace ends; a rotation retried after its answer was lost is
 * applied once (else the new secret would become its own "previous" and end the old one's grace at
 * once); both secrets are sealed at rest. The routes' answers and refusals are in test/e2e/webhook-secret.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../lambdas/shared/ddb.js';
import { AccountsRepository, PREVIOUS_SECRET_ATTRIBUTE, SECRET_ATTRIBUTE } from '../lambdas/shared/repositories/accounts.js';
import { AuditRepository, newAuditEvent } from '../lambdas/shared/repositories/audit.js';
import { randomUUID } from 'node:crypto';
import { createAccount } from '../lambdas/shared/services/keys.js';
import { LocalSecretBox } from '../lambdas/shared/secret-box.js';
import { rotateWebhookSecret, getWebhookSecret } from '../lambdas/shared/services/webhook-secrets.js';
import { NO_NEW_SECRET, NoWebhookSecretYet, signingSecrets as signingSecretsOf } from '../lambdas/shared/services/webhooks.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../local-runner/stack.js';
import { startCountingProxy, type CountingProxy } from './support/counting-proxy.js';
import { createTestDb, testEndpoint, type TestDb } from './support/dynamodb.js';

let db: TestDb;
let proxy: CountingProxy;
let accounts: AccountsRepository;
let audit: AuditRepository;
/** The same repositories through the fault proxy, with the functions' own client settings. */
let faulty: AccountsRepository;
let faultyAudit: AuditRepository;
const box = new LocalSecretBox(LocalSecretBox.newKey());
let n = 0;
/** The secrets a webhook is signed with (the secret exists: these tests made it). */
const signingSecrets = (repo: AccountsRepository, id: string, now?: Date) => signingSecretsOf({ accounts: repo }, id, NO_NEW_SECRET, now);

beforeAll(async () => {
  db = await createTestDb('webhook-secret');
  proxy = await startCountingProxy(testEndpoint());
  accounts = new AccountsRepository(db.doc, db.tables.accounts, box);
  audit = new AuditRepository(db.doc, db.tables.audit, 365);
  const faultyDoc = createDocumentClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  faulty = new AccountsRepository(faultyDoc, db.tables.accounts, box);
  faultyAudit = new AuditRepository(faultyDoc, db.tables.audit, 365);
});
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  await proxy?.close();
  db?.close();
});

async function newAccount(): Promise<string> {
  const id = `acct_whsec_${++n}_${Date.now().toString(36)}`;
  await createAccount({ accounts, audit }, id, 'business');
  return id;
}

const HOUR = 3600;
const at = (ms: number) => () => new Date(ms);

describe('rotation with a grace period', () => {
  it('keeps the replaced secret signing, second, until the grace ends; then only the new one', async () => {
    const id = await newAccount();
    const t0 = Date.parse('2026-11-30T12:00:00Z');
    const before = (await getWebhookSecret({ accounts, audit, now: at(t0) }, id)).secret;
    const rotated = await rotateWebhookSecret({ accounts, audit, now: at(t0) }, id, { grace_period_seconds: HOUR });
    expect(rotated.secret).not.toBe(before);
    expect(rotated.previous_secret_expires_at).toBe('2026-11-30T13:00:00.000Z');
    expect(await getWebhookSecret({ accounts, audit, now: at(t0 + 1000) }, id)).toEqual(rotated);

    expect(await signingSecrets(accounts, id, new Date(t0 + HOUR * 1000 - 1))).toEqual([rotated.secret, before]);
    expect(await signingSecrets(accounts, id, new Date(t0 + HOUR * 1000))).toEqual([rotated.secret]);
    expect(await getWebhookSecret({ accounts, audit, now: at(t0 + HOUR * 1000) }, id)).toEqual({ secret: rotated.secret, previous_secret_expires_at: null });
  });

  it('without a grace period the replaced secret stops at once, and so does one still in an earlier grace', async () => {
    const id = await newAccount();
    const now = Date.now();
    const first = (await getWebhookSecret({ accounts, audit }, id)).secret;
    const second = await rotateWebhookSecret({ accounts, audit, now: at(now) }, id, { grace_period_seconds: HOUR });
    expect(await signingSecrets(accounts, id, new Date(now))).toEqual([second.secret, first]);
    const third = await rotateWebhookSecret({ accounts, audit, now: at(now) }, id, {});
    expect(third.previous_secret_expires_at).toBeNull();
    expect(await signingSecrets(accounts, id, new Date(now))).toEqual([third.secret]);
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: id }, ConsistentRead: true }))).Item!;
    expect(item).not.toHaveProperty(PREVIOUS_SECRET_ATTRIBUTE);
  });

  it('a second rotation in a grace ends the first one’s grace: the secret it replaces is the one signing now', async () => {
    const id = await newAccount();
    const now = Date.now();
    const first = (await getWebhookSecret({ accounts, audit }, id)).secret;
    const second = await rotateWebhookSecret({ accounts, audit, now: at(now) }, id, { grace_period_seconds: HOUR });
    const third = await rotateWebhookSecret({ accounts, audit, now: at(now) }, id, { grace_period_seconds: 60 });
    const signing = await signingSecrets(accounts, id, new Date(now));
    expect(signing).toEqual([third.secret, second.secret]);
    expect(signing).not.toContain(first);
  });

  it('five rotations with a grace at once: each keeps the secret it replaced, in one chain, none a secret that no longer signs', async () => {
    const id = await newAccount();
    const first = (await getWebhookSecret({ accounts, audit }, id)).secret;
    const now = new Date();
    const event = () => audit.putItem(newAuditEvent({ accountId: id, action: 'webhook_secret.rotated', actor: { kind: 'operator' }, target: { kind: 'webhook_secret', id }, changes: null, now }));
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => accounts.rotateWebhookSecret(id, `whsec_parallel_${i}_${randomUUID()}`, HOUR, now, randomUUID(), event())),
    );
    // Each answer's previous is the secret its rotation replaced: the first one, or another answer's.
    const next = new Map(answers.map((a) => [a.previous?.secret, a.current]));
    expect(next.size).toBe(5);
    let last = first;
    for (let i = 0; i < 5; i++) last = next.get(last) ?? 'a break in the chain';
    expect(answers.map((a) => a.current)).toContain(last);
    const signing = await signingSecrets(accounts, id, now);
    expect(signing[0]).toBe(last);
    expect(signing[1]).toBe(answers.find((a) => a.current === last)!.previous!.secret);
  });

  it('an account that never had a secret gets one; there is nothing to keep', async () => {
    const id = await newAccount();
    const rotated = await rotateWebhookSecret({ accounts, audit }, id, { grace_period_seconds: HOUR });
    expect(rotated.previous_secret_expires_at).toBeNull();
    expect(await signingSecrets(accounts, id)).toEqual([rotated.secret]);
  });

  it('a rotation with a grace that read no secret, while a first use makes one and hands it out: that secret keeps its grace', async () => {
    const id = await newAccount();
    // The first use lands between the rotation's read and its write (once: it makes the secret).
    const doc = createDocumentClient({ endpoint: testEndpoint(), region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    let handedOut: string | undefined;
    doc.middlewareStack.add(
      (next, context) => async (args) => {
        if (/TransactWrite/.test(String(context.commandName)) && handedOut === undefined) handedOut = (await getWebhookSecret({ accounts, audit }, id)).secret;
        return next(args);
      },
      { step: 'initialize', name: 'firstUseMeanwhile' },
    );
    try {
      const rotated = await rotateWebhookSecret({ accounts: new AccountsRepository(doc, db.tables.accounts, box), audit: new AuditRepository(doc, db.tables.audit, 365) }, id, {
        grace_period_seconds: HOUR,
      });
      expect(handedOut).toBeDefined();
      expect(rotated.previous_secret_expires_at).not.toBeNull();
      expect(await signingSecrets(accounts, id)).toEqual([rotated.secret, handedOut]);
      expect((await audit.list(id, { action: 'webhook_secret.rotated' }, 10)).items).toHaveLength(1);
    } finally {
      doc.destroy();
    }
  });

  it('both secrets are sealed at rest, never in the clear', async () => {
    const id = await newAccount();
    const first = (await getWebhookSecret({ accounts, audit }, id)).secret;
    const second = await rotateWebhookSecret({ accounts, audit }, id, { grace_period_seconds: HOUR });
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: id }, ConsistentRead: true }))).Item!;
    const text = JSON.stringify(item);
    for (const secret of [first, second.secret]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(secret.slice('whsec_'.length));
    }
    expect(item[SECRET_ATTRIBUTE]).toMatch(/^local:v1:/);
    expect(item[PREVIOUS_SECRET_ATTRIBUTE]).toMatch(/^local:v1:/);
  });

  it.each([[-1], [604_801], [1.5], ['60'], [{}]])('grace_period_seconds %p is refused with 400 and changes nothing', async (grace) => {
    const id = await newAccount();
    const before = await getWebhookSecret({ accounts, audit }, id);
    await expect(rotateWebhookSecret({ accounts, audit }, id, { grace_period_seconds: grace })).rejects.toMatchObject({
      status: 400,
      code: 'VALIDATION_ERROR',
      details: [expect.objectContaining({ field: 'grace_period_seconds' })],
    });
    expect(await getWebhookSecret({ accounts, audit }, id)).toEqual(before);
  });

  it('an unknown account is 404', async () => {
    await expect(rotateWebhookSecret({ accounts, audit }, 'acct_nobody_here', { grace_period_seconds: 60 })).rejects.toMatchObject({ status: 404 });
  });
});

describe('a rotation whose answer is lost', () => {
  it('is applied once: the SDK’s retry leaves the replaced secret in its grace', async () => {
    const id = await newAccount();
    const before = (await getWebhookSecret({ accounts, audit }, id)).secret;
    proxy.inject({ operation: 'TransactWriteItems', table: db.tables.accounts, fault: 'lose-response', times: 1 });
    const rotated = await rotateWebhookSecret({ accounts: faulty, audit: faultyAudit }, id, { grace_period_seconds: HOUR });
    expect(proxy.injected()).toBe(1);
    expect(rotated.previous_secret_expires_at).not.toBeNull();
    expect(await signingSecrets(accounts, id)).toEqual([rotated.secret, before]);
    // And its event is written once.
    expect((await audit.list(id, { action: 'webhook_secret.rotated' }, 10)).items).toHaveLength(1);
  });

  it('every answer to it lost: found applied by its rotation id, answered as applied; not failed, so its retry cannot rotate again and end the grace', async () => {
    const id = await newAccount();
    const before = (await getWebhookSecret({ accounts, audit }, id)).secret;
    proxy.inject({ operation: 'TransactWriteItems', table: db.tables.accounts, fault: 'lose-response' });
    const rotated = await rotateWebhookSecret({ accounts: faulty, audit: faultyAudit }, id, { grace_period_seconds: HOUR });
    expect(proxy.injected()).toBeGreaterThan(1);
    proxy.clearFaults();
    expect(await signingSecrets(accounts, id)).toEqual([rotated.secret, before]);
    expect((await audit.list(id, { action: 'webhook_secret.rotated' }, 10)).items).toHaveLength(1);
  });
});

describe('the first secret, made on first use, is recorded once (webhook_secret.created)', () => {
  const person = { kind: 'person' as const, subject: 'sub-first', email: 'first@example.com' };
  const request = { request_id: 'req-first', source_ip: '203.0.113.7', user_agent: 'first-use/1.0' };
  const createdEvents = async (id: string) => (await audit.list(id, { action: 'webhook_secret.created' }, 10)).items;

  it('by whoever’s use made it, holding no secret; a later use records nothing', async () => {
    const id = await newAccount();
    const made = await getWebhookSecret({ accounts, audit }, id, person, request);
    expect(await getWebhookSecret({ accounts, audit }, id, { kind: 'key', key_id: 'key_later' })).toEqual(made);
    const events = await createdEvents(id);
    expect(events).toEqual([
      expect.objectContaining({ action: 'webhook_secret.created', actor: person, target: { kind: 'webhook_secret', id }, changes: null, ...request }),
    ]);
    expect(JSON.stringify(events)).not.toContain(made.secret.slice('whsec_'.length));
  });

  it('a first use cancelled by another transaction on the account (TransactionConflict) tries again: one secret, one event', async () => {
    const id = await newAccount();
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: db.tables.accounts, fault: 'transaction-conflict', times: 2 });
    const made = await getWebhookSecret({ accounts: faulty, audit: faultyAudit }, id, person);
    expect(proxy.injected()).toBe(2);
    expect(await getWebhookSecret({ accounts, audit }, id)).toEqual(made);
    expect(await createdEvents(id)).toHaveLength(1);
  });

  it('a rotation cancelled by another transaction on the account tries again: applied once, with one event', async () => {
    const id = await newAccount();
    const before = (await getWebhookSecret({ accounts, audit }, id)).secret;
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: db.tables.accounts, fault: 'transaction-conflict', times: 1 });
    const rotated = await rotateWebhookSecret({ accounts: faulty, audit: faultyAudit }, id, { grace_period_seconds: HOUR });
    expect(proxy.injected()).toBe(1);
    expect(await signingSecrets(accounts, id)).toEqual([rotated.secret, before]);
    expect((await audit.list(id, { action: 'webhook_secret.rotated' }, 10)).items).toHaveLength(1);
  });

  it('ten first uses at once agree on one secret and one event (DynamoDB Local orders them: each later one fails its condition)', async () => {
    const id = await newAccount();
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => getWebhookSecret({ accounts, audit }, id, { kind: 'key', key_id: `key_${i}` })));
    expect(new Set(all.map((s) => s.secret)).size).toBe(1);
    expect(await createdEvents(id)).toHaveLength(1);
  });

  it('a first use whose answer is lost (the SDK sends it again): one secret, the one answered, and one event', async () => {
    const id = await newAccount();
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: db.tables.accounts, fault: 'lose-response', times: 1 });
    const made = await getWebhookSecret({ accounts: faulty, audit: faultyAudit }, id, person);
    expect(proxy.injected()).toBe(1);
    expect(await getWebhookSecret({ accounts, audit }, id)).toEqual(made);
    expect(await createdEvents(id)).toHaveLength(1);
  });

  it.each(['server-error', 'throttle'] as const)('a first use that fails (%s) leaves neither a secret nor an event; the next one makes both', async (fault) => {
    const id = await newAccount();
    proxy.inject({ operation: 'TransactWriteItems', table: db.tables.accounts, fault });
    await expect(getWebhookSecret({ accounts: faulty, audit: faultyAudit }, id, person)).rejects.toThrow();
    proxy.clearFaults();
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: id }, ConsistentRead: true }))).Item!;
    expect(item).not.toHaveProperty(SECRET_ATTRIBUTE);
    expect(await createdEvents(id)).toHaveLength(0);
    await getWebhookSecret({ accounts: faulty, audit: faultyAudit }, id, person);
    expect(await createdEvents(id)).toHaveLength(1);
  });

  it('a caller that may only open the secret makes none, and records nothing', async () => {
    const id = await newAccount();
    await expect(signingSecrets(accounts, id)).rejects.toThrow(NoWebhookSecretYet);
    const item = (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: id }, ConsistentRead: true }))).Item!;
    expect(item).not.toHaveProperty(SECRET_ATTRIBUTE);
    expect(await createdEvents(id)).toHaveLength(0);
  });

  it('an unknown account is 404, with no event', async () => {
    await expect(getWebhookSecret({ accounts, audit }, 'acct_never_made', person)).rejects.toMatchObject({ status: 404 });
    expect(await createdEvents('acct_never_made')).toHaveLength(0);
  });
});
