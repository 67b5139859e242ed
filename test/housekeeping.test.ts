/**
 * Housekeeping (API.md §7, issue #18 item 3) at the service level, against DynamoDB Local: expired keys,
 * keys past their rotation's grace and overdue executions are made with the repositories and services
 * themselves, their clocks in the past; then `sweep` runs (once, twice at once, bounded, and through the
 * fault proxy) and the tables are read back. Every test has tables of its own, so a run sees only its
 * test's accounts.
 */
import { jest } from '@jest/globals';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../lambdas/shared/ddb.js';
import { AccountsRepository, SECRET_ATTRIBUTE } from '../lambdas/shared/repositories/accounts.js';
import { AuditRepository, OPERATOR_ACTOR } from '../lambdas/shared/repositories/audit.js';
import { ExecutionsRepository, IN_FLIGHT_ATTRIBUTE, newExecutionId, TIMED_OUT, type ExecutionRecord } from '../lambdas/shared/repositories/executions.js';
import { KeysRepository } from '../lambdas/shared/repositories/keys.js';
import { LEASE_MARGIN_MS, QUEUED_DEADLINE_MS, WORKER_TIMEOUT_SECONDS } from '../lambdas/shared/run-budget.js';
import { LocalSecretBox } from '../lambdas/shared/secret-box.js';
import { overdueCutoffs, sweep, SweepStopped, type HousekeepingDeps, type HousekeepingLimits, type SweepResult } from '../lambdas/shared/services/housekeeping.js';
import { createAccount, createKey, revokeKey, rotateKey } from '../lambdas/shared/services/keys.js';
import { NO_NEW_SECRET, sendDueWebhooks } from '../lambdas/shared/services/webhooks.js';
import { DEFAULT_SETTINGS, type Settings } from '../lambdas/shared/settings.js';
import { ALLOW_LOOPBACK_ENV } from '../lambdas/shared/webhooks.js';
import { firstWebhookSecret } from '../lambdas/shared/services/first-webhook-secret.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../local-runner/stack.js';
import { startCountingProxy, type CountingProxy, type FaultRule } from './support/counting-proxy.js';
import { createTestDb, testEndpoint, type TestDb } from './support/dynamodb.js';
import { startReceiver, type Receiver } from './support/receiver.js';

// Webhooks go to a receiver on this machine.
process.env[ALLOW_LOOPBACK_ENV] = 'true';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const ago = (ms: number) => new Date(Date.now() - ms);
/** Three keys per account: small accounts fill up fast. */
const SETTINGS: Settings = { ...DEFAULT_SETTINGS, maxActiveKeysPerAccount: 3 };
const IN_FLIGHT_LIMIT = 50;

let db: TestDb;
let receiver: Receiver;
const box = new LocalSecretBox(LocalSecretBox.newKey());

beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
});
beforeEach(async () => {
  db = await createTestDb('housekeeping');
});
afterEach(() => db?.close());

function housekeeping(doc = db.doc, limits: Partial<HousekeepingLimits> = {}): HousekeepingDeps {
  return {
    keys: new KeysRepository(doc, { keys: db.tables.keys, accounts: db.tables.accounts }),
    executions: new ExecutionsRepository(doc, db.tables.executions, db.tables.accounts),
    accounts: new AccountsRepository(doc, db.tables.accounts),
    audit: new AuditRepository(doc, db.tables.audit, SETTINGS.auditRetentionDays),
    limits,
  };
}

/** The account's `key.expired` events, as stored (read back consistently). */
async function expiredEvents(accountId: string): Promise<Record<string, unknown>[]> {
  const out = await db.doc.send(
    new QueryCommand({ TableName: db.tables.audit, KeyConditionExpression: 'account_id = :a', ExpressionAttributeValues: { ':a': accountId }, ConsistentRead: true }),
  );
  return (out.Items ?? []).filter((e) => e['action'] === 'key.expired');
}
const executions = () => new ExecutionsRepository(db.doc, db.tables.executions, db.tables.accounts);
const keyDeps = (at?: Date) => db.deps(SETTINGS, at ? () => at : undefined);

let accountCount = 0;
async function account(): Promise<string> {
  const accountId = `acct_hk_${++accountCount}`;
  await createAccount(keyDeps(ago(30 * DAY)), accountId, 'business');
  return accountId;
}

/** A key made 8 days ago with a 7-day expiry: expired for a day. */
async function expiredKey(accountId: string): Promise<string> {
  return (await createKey(keyDeps(ago(8 * DAY)), accountId, { name: 'expired', scope: 'admin', expires_in_days: 7 })).key.key_id;
}
async function liveKey(accountId: string, name = 'live'): Promise<string> {
  return (await createKey(keyDeps(), accountId, { name, scope: 'admin' })).key.key_id;
}
/** A key rotated two days ago with an hour's grace: the old one's grace ended long ago, its replacement lives. */
async function rotatedPastGrace(accountId: string): Promise<{ old: string; next: string }> {
  const at = ago(2 * DAY);
  const old = (await createKey(keyDeps(at), accountId, { name: 'rotated', scope: 'admin' })).key.key_id;
  const next = (await rotateKey(keyDeps(at), accountId, old, { grace_period_seconds: 3600 })).key.key_id;
  return { old, next };
}

type RunKind = 'queued-overdue' | 'queued-fresh' | 'running-overdue' | 'sync-stuck' | 'running-live' | 'running-legacy';

/** An execution written as the services write one, `created` in the past; async ones hold an in-flight slot. */
async function execution(accountId: string, kind: RunKind, webhook = true): Promise<ExecutionRecord> {
  const created = {
    'queued-overdue': ago(QUEUED_DEADLINE_MS + MINUTE),
    'queued-fresh': ago(10 * MINUTE),
    'running-overdue': ago(30 * MINUTE),
    'sync-stuck': ago(5 * MINUTE),
    'running-live': ago(2 * MINUTE),
    'running-legacy': ago(WORKER_TIMEOUT_SECONDS * 1000 + LEASE_MARGIN_MS + MINUTE),
  }[kind];
  const isAsync = kind !== 'sync-stuck';
  const running = kind.startsWith('running') || kind === 'sync-stuck';
  const record: ExecutionRecord = {
    account_id: accountId,
    execution_id: newExecutionId(created),
    workflow_slug: 'wf',
    workflow_version: 1,
    workspace_id: 'default',
    status: running ? 'RUNNING' : 'QUEUED',
    input: { kind },
    created_at: created.toISOString(),
    ...(running ? { started_at: created.toISOString() } : {}),
    ...(running && kind !== 'running-legacy'
      ? { owner: 'att_gone', lease_until: kind === 'running-live' ? Date.now() + 10 * MINUTE : Date.now() - MINUTE }
      : {}),
    started_by: { kind: 'key', key_id: 'key_hk' },
    key_id: 'key_hk',
    ...(isAsync && webhook ? { webhook_url: receiver.url } : {}),
    async: isAsync,
    ...(isAsync ? { async_slot: true } : {}),
  };
  await executions().create(record, IN_FLIGHT_LIMIT);
  return record;
}

async function storedKey(keyId: string): Promise<Record<string, unknown>> {
  const pointer = await db.doc.send(new GetCommand({ TableName: db.tables.keys, Key: { pk: `K#${keyId}` }, ConsistentRead: true }));
  const record = await db.doc.send(new GetCommand({ TableName: db.tables.keys, Key: { pk: `H#${String(pointer.Item!['key_hash'])}` }, ConsistentRead: true }));
  return { ...record.Item!, pointer_ttl: pointer.Item!['ttl'] };
}
async function storedRun(run: ExecutionRecord): Promise<Record<string, unknown>> {
  const out = await db.doc.send(new GetCommand({ TableName: db.tables.executions, Key: { account_id: run.account_id, execution_id: run.execution_id }, ConsistentRead: true }));
  return out.Item!;
}
async function storedAccount(accountId: string): Promise<Record<string, unknown>> {
  return (await db.doc.send(new GetCommand({ TableName: db.tables.accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item!;
}

/**
 * What must hold whatever a run did or where it stopped: the account's key count is the number of its
 * key records holding a slot, which are exactly the keys of its slot map; its in-flight count is the
 * number of its runs holding a slot still QUEUED or RUNNING; a released key has its TTL, on its record
 * and its pointer.
 */
async function expectConsistent(accountId: string): Promise<void> {
  const keyItems = (await db.doc.send(new ScanCommand({ TableName: db.tables.keys, ConsistentRead: true }))).Items ?? [];
  const records = keyItems.filter((i) => String(i['pk']).startsWith('H#') && i['account_id'] === accountId);
  const holding = records.filter((r) => r['slot_account'] === accountId).map((r) => String(r['key_id'])).sort();
  const account = await storedAccount(accountId);
  expect(account['active_keys']).toBe(holding.length);
  expect(Object.keys(account['slot_keys'] as Record<string, unknown>).sort()).toEqual(holding);
  for (const r of records.filter((r) => r['released_at'] !== undefined)) {
    expect(r['slot_account']).toBeUndefined();
    expect(r['ttl']).toEqual(expect.any(Number));
    expect(keyItems.find((p) => p['pk'] === `K#${String(r['key_id'])}`)?.['ttl']).toBe(r['ttl']);
  }
  // Every release by expiry has exactly one `key.expired` event, by the system, and every such event its
  // release: never one without the other, never two.
  const expiredReleases = records.filter((r) => r['released_at'] !== undefined && r['revoked_at'] === undefined);
  const events = await expiredEvents(accountId);
  expect(events.map((e) => (e['target'] as { id: string }).id).sort()).toEqual(expiredReleases.map((r) => String(r['key_id'])).sort());
  for (const e of events) {
    const released = expiredReleases.find((r) => r['key_id'] === (e['target'] as { id: string }).id)!;
    expect(e).toMatchObject({
      account_id: accountId,
      actor: { kind: 'system' },
      target: { kind: 'key' },
      changes: { released_at: { from: null, to: released['released_at'] } },
      request_id: null,
      source_ip: null,
      user_agent: null,
    });
    // Never a key, a hash or a secret.
    expect(JSON.stringify(e)).not.toMatch(/knouds_(live|test)_|key_hash|[0-9a-f]{64}/);
  }
  const runs = (await db.doc.send(new QueryCommand({ TableName: db.tables.executions, KeyConditionExpression: 'account_id = :a', ExpressionAttributeValues: { ':a': accountId }, ConsistentRead: true }))).Items ?? [];
  const inFlight = runs.filter((r) => r['async_slot'] === true && (r['status'] === 'QUEUED' || r['status'] === 'RUNNING'));
  expect(account[IN_FLIGHT_ATTRIBUTE] ?? 0).toBe(inFlight.length);
  for (const r of runs.filter((r) => r['status'] === 'FAILED')) {
    expect(r).toMatchObject({ error: TIMED_OUT, finished_at: expect.any(String), account_status: `${accountId}#FAILED` });
    if (r['webhook_url']) expect(r['webhook']).toMatchObject({ status: expect.stringMatching(/^(pending|delivered)$/) });
  }
}

const total = (runs: SweepResult[]) => ({
  released_keys: runs.reduce((n, r) => n + r.released_keys, 0),
  failed_executions: runs.reduce((n, r) => n + r.failed_executions, 0),
});

describe('keys', () => {
  it('releases the slot of every key past its expiry or its rotation’s grace, with its TTL, and nothing else', async () => {
    const accountId = await account();
    const expired = await expiredKey(accountId);
    const { old, next } = await rotatedPastGrace(accountId);
    // Full: the expired key, the rotated one (its grace over) and its replacement.
    expect(await storedAccount(accountId)).toMatchObject({ active_keys: 3 });
    const other = await account();
    const live = await liveKey(other);
    const revoked = await expiredKey(other);
    // Revoked two days ago, before it expired: revoking gave its slot back, there is nothing to release.
    await revokeKey(keyDeps(ago(2 * DAY)), other, revoked);

    const run = await sweep(housekeeping());
    expect(run).toEqual({ released_keys: 2, failed_executions: 0, sealed_secrets: 0, seal_failures: 0, accounts: 2, complete: true });
    for (const keyId of [expired, old]) {
      const stored = await storedKey(keyId);
      expect(stored).toMatchObject({ released_at: expect.any(String), ttl: expect.any(Number), pointer_ttl: stored['ttl'] });
      expect(stored['slot_account']).toBeUndefined();
      // Kept 30 days for the audit trail, then removed by TTL.
      expect(stored['ttl'] as number).toBeGreaterThan(Date.now() / 1000 + 29 * 86_400);
    }
    for (const keyId of [next, live]) expect(await storedKey(keyId)).not.toHaveProperty('released_at');
    expect(await storedKey(revoked)).not.toHaveProperty('released_at');
    expect(await storedAccount(accountId)).toMatchObject({ active_keys: 1, slot_keys: { [next]: true } });
    expect((await expiredEvents(accountId)).map((e) => (e['target'] as { id: string }).id).sort()).toEqual([expired, old].sort());
    expect(await expiredEvents(other)).toEqual([]);
    await expectConsistent(accountId);
    await expectConsistent(other);
    // Nothing left: a second run changes nothing.
    expect(await sweep(housekeeping())).toEqual({ released_keys: 0, failed_executions: 0, sealed_secrets: 0, seal_failures: 0, accounts: 2, complete: true });
  });

  it('gives a full account its slots back: creates succeed after one run without anything else releasing', async () => {
    const accountId = await account();
    await expiredKey(accountId);
    await expiredKey(accountId);
    await liveKey(accountId);
    const full = await storedAccount(accountId);
    expect(full['active_keys']).toBe(3);
    expect((await sweep(housekeeping())).released_keys).toBe(2);
    expect(await storedAccount(accountId)).toMatchObject({ active_keys: 1 });
    await liveKey(accountId, 'second');
    await liveKey(accountId, 'third');
    expect(await storedAccount(accountId)).toMatchObject({ active_keys: 3 });
    await expectConsistent(accountId);
  });

  it('a create on a full account, which releases expired slots itself, writes the same key.expired event', async () => {
    const accountId = await account();
    const expired = await expiredKey(accountId);
    await liveKey(accountId, 'one');
    await liveKey(accountId, 'two');
    // Full (3): this create finds the expired key's slot and releases it on the way.
    await liveKey(accountId, 'three');
    expect(await expiredEvents(accountId)).toEqual([expect.objectContaining({ actor: { kind: 'system' }, target: { kind: 'key', id: expired } })]);
    await expectConsistent(accountId);
    expect((await sweep(housekeeping())).released_keys).toBe(0);
  });
});

describe('executions', () => {
  it('fails every run past its deadline "timed out", frees its in-flight slot, and leaves runs within it alone', async () => {
    const accountId = await account();
    const overdue = [
      await execution(accountId, 'queued-overdue'),
      await execution(accountId, 'running-overdue'),
      await execution(accountId, 'sync-stuck'),
      await execution(accountId, 'running-legacy'),
    ];
    const inTime = [await execution(accountId, 'queued-fresh'), await execution(accountId, 'running-live')];
    expect(await storedAccount(accountId)).toMatchObject({ [IN_FLIGHT_ATTRIBUTE]: 5 });

    const before = Date.now();
    const run = await sweep(housekeeping());
    expect(run).toEqual({ released_keys: 0, failed_executions: 4, sealed_secrets: 0, seal_failures: 0, accounts: 1, complete: true });
    const pending = { webhook: expect.objectContaining({ status: 'pending', attempts: 0 }), due: 'number' };
    for (const r of overdue) {
      const stored = await storedRun(r);
      expect(stored).toMatchObject({ status: 'FAILED', error: 'timed out', account_status: `${accountId}#FAILED`, ttl: expect.any(Number) });
      expect(Date.parse(String(stored['finished_at']))).toBeGreaterThanOrEqual(before - 1000);
      expect(stored['owner']).not.toBe('att_gone');
      // Its webhook pending from the same write, due now, for the scheduled sender (the sync run has none).
      expect({ webhook: stored['webhook'] ?? null, due: typeof stored['webhook_due'] }).toEqual(
        r.webhook_url ? pending : { webhook: null, due: 'undefined' },
      );
    }
    for (const r of inTime) expect(await storedRun(r)).toMatchObject({ status: r.status });
    // The three async overdue runs gave their slots back; the two in time keep theirs.
    expect(await storedAccount(accountId)).toMatchObject({ [IN_FLIGHT_ATTRIBUTE]: 2 });
    await expectConsistent(accountId);
    expect(await sweep(housekeeping())).toMatchObject({ failed_executions: 0 });
  });

  it('their webhooks reach the receiver: execution.failed with error "timed out", sent by the scheduled sender', async () => {
    const accountId = await account();
    await new AccountsRepository(db.doc, db.tables.accounts, box).webhookSecret(accountId, firstWebhookSecret(db.audit, accountId, OPERATOR_ACTOR, new Date()));
    const queued = await execution(accountId, 'queued-overdue');
    const running = await execution(accountId, 'running-overdue');
    expect((await sweep(housekeeping())).failed_executions).toBe(2);
    const sender = { executions: new ExecutionsRepository(db.doc, db.tables.executions), accounts: new AccountsRepository(db.doc, db.tables.accounts, box) };
    const sent = await sendDueWebhooks(sender, Date.now() + 20_000);
    expect(sent.results).toMatchObject({ delivered: 2 });
    for (const r of [queued, running]) {
      const deliveries = receiver.received.filter((d) => String(d.headers['webhook-id']) === `msg_${r.execution_id}_failed`);
      expect(deliveries).toHaveLength(1);
      const body = JSON.parse(deliveries[0]!.body) as { type: string; data: Record<string, unknown> };
      expect(body).toMatchObject({ type: 'execution.failed', data: { execution_id: r.execution_id, status: 'FAILED', error: 'timed out' } });
      expect(await storedRun(r)).toMatchObject({ webhook: { status: 'delivered', attempts: 1 } });
    }
  });

  it('a run finishing at the same moment as the housekeeping fails it: exactly one of the two writes lands', async () => {
    const accountId = await account();
    const runs = await Promise.all(Array.from({ length: 12 }, () => execution(accountId, 'running-overdue')));
    const repo = executions();
    const hk = housekeeping();
    const outcomes = await Promise.all(
      runs.map(async (r) => {
        const now = new Date();
        const [finished, failed] = await Promise.all([
          repo.finish(accountId, r.execution_id, { status: 'SUCCEEDED', output: { ok: true } }, now, 'att_gone', ['RUNNING'], r),
          hk.executions.failOverdue(r, 'att_housekeeping', now, overdueCutoffs(now)),
        ]);
        return { r, finished, failed };
      }),
    );
    for (const { r, finished, failed } of outcomes) {
      // One winner; the stored run is the winner's.
      expect([finished, failed].filter(Boolean)).toHaveLength(1);
      const stored = await storedRun(r);
      expect(stored).toMatchObject(
        finished ? { status: 'SUCCEEDED', owner: 'att_gone', output: { ok: true } } : { status: 'FAILED', owner: 'att_housekeeping', error: 'timed out' },
      );
      expect(stored['webhook']).toMatchObject({ status: 'pending' });
    }
    // Each run's slot freed once: by whichever write landed.
    expect(await storedAccount(accountId)).toMatchObject({ [IN_FLIGHT_ATTRIBUTE]: 0 });
    await expectConsistent(accountId);
  });
});

describe('webhook secrets an earlier release kept in the clear', () => {
  const legacy = 'whsec_bGVnYWN5LXNlY3JldC1mcm9tLWFuLW9sZGVyLXJlbGVhc2U=';
  const plaintextSecret = async (accountId: string) => {
    await db.doc.send(
      new UpdateCommand({ TableName: db.tables.accounts, Key: { account_id: accountId }, UpdateExpression: 'SET webhook_secret = :s', ExpressionAttributeValues: { ':s': legacy } }),
    );
  };
  /** The housekeeping function's: its box may only seal (kms:Encrypt). */
  const sealing = (): HousekeepingDeps => ({
    ...housekeeping(),
    accounts: new AccountsRepository(db.doc, db.tables.accounts, new LocalSecretBox(key, new Set(['seal']))),
    sealPlaintextSecrets: true,
  });
  const key = LocalSecretBox.newKey();

  it('are sealed in place by one run (the same secret, which still signs), the plaintext removed; accounts with a sealed one or none are left alone', async () => {
    const [old, sealedOne, none] = [await account(), await account(), await account()];
    await plaintextSecret(old);
    const opener = new AccountsRepository(db.doc, db.tables.accounts, new LocalSecretBox(key));
    const current = await opener.webhookSecret(sealedOne, firstWebhookSecret(db.audit, sealedOne, OPERATOR_ACTOR, new Date()));
    const before = await storedAccount(sealedOne);

    expect(await sweep(sealing())).toMatchObject({ sealed_secrets: 1, complete: true });
    const item = await storedAccount(old);
    expect(item).not.toHaveProperty('webhook_secret');
    expect(item[SECRET_ATTRIBUTE]).toMatch(/^local:v1:/);
    expect(JSON.stringify(item)).not.toContain(legacy.slice('whsec_'.length));
    expect(await opener.webhookSecret(old, NO_NEW_SECRET)).toBe(legacy);
    expect(await storedAccount(sealedOne)).toEqual(before);
    expect(await opener.webhookSecret(sealedOne, NO_NEW_SECRET)).toBe(current);
    expect(await storedAccount(none)).not.toHaveProperty(SECRET_ATTRIBUTE);
    // Nothing left: the next run seals nothing.
    expect(await sweep(sealing())).toMatchObject({ sealed_secrets: 0 });
  });

  it('a sweep without the key (the admin CLI’s) leaves them to the function, never reads them, and still does the rest', async () => {
    const accountId = await account();
    await plaintextSecret(accountId);
    await expiredKey(accountId);
    expect(await sweep(housekeeping())).toMatchObject({ released_keys: 1, sealed_secrets: 0, complete: true });
    expect(await storedAccount(accountId)).toMatchObject({ webhook_secret: legacy });
    // Its scan does not ask for the plaintext; the function's does.
    const accounts = new AccountsRepository(db.doc, db.tables.accounts);
    expect((await accounts.scanPage(100)).items).toContainEqual({ account_id: accountId, active_keys: 0, plaintext_secret: false });
    expect((await accounts.scanPage(100, undefined, undefined, { plaintextSecrets: true })).items).toContainEqual({ account_id: accountId, active_keys: 0, plaintext_secret: true });
  });

  it('sealing that fails (KMS refusing) stops nothing else: the account’s expired key is released, the run is not complete, and the next run seals it', async () => {
    const accountId = await account();
    await plaintextSecret(accountId);
    await expiredKey(accountId);
    const refusing = { ...sealing(), accounts: new AccountsRepository(db.doc, db.tables.accounts, new LocalSecretBox(key, new Set(['open']))) };
    expect(await sweep(refusing)).toMatchObject({ released_keys: 1, sealed_secrets: 0, seal_failures: 1, complete: false });
    expect(await storedAccount(accountId)).toMatchObject({ webhook_secret: legacy, active_keys: 0 });
    expect(await sweep(sealing())).toMatchObject({ sealed_secrets: 1, seal_failures: 0, complete: true });
    expect(await storedAccount(accountId)).not.toHaveProperty('webhook_secret');
  });

  it('at most secretsPerRun a run: the rest are left for the next (the run not complete)', async () => {
    const ids = [await account(), await account(), await account()];
    for (const id of ids) await plaintextSecret(id);
    const bounded = { ...sealing(), limits: { secretsPerRun: 2 } };
    expect(await sweep(bounded)).toMatchObject({ sealed_secrets: 2, complete: false });
    expect(await sweep(bounded)).toMatchObject({ sealed_secrets: 1, complete: true });
    for (const id of ids) expect(await storedAccount(id)).not.toHaveProperty('webhook_secret');
  });

  it('a plaintext secret written beside a sealed one (a rollback to an earlier release) is removed; the sealed one, in force, stays', async () => {
    const accountId = await account();
    const opener = new AccountsRepository(db.doc, db.tables.accounts, new LocalSecretBox(key));
    const current = await opener.webhookSecret(accountId, firstWebhookSecret(db.audit, accountId, OPERATOR_ACTOR, new Date()));
    await plaintextSecret(accountId);
    expect(await opener.webhookSecret(accountId, NO_NEW_SECRET)).toBe(current);
    expect(await sweep(sealing())).toMatchObject({ sealed_secrets: 1, complete: true });
    const item = await storedAccount(accountId);
    expect(item).not.toHaveProperty('webhook_secret');
    expect(await opener.webhookSecret(accountId, NO_NEW_SECRET)).toBe(current);
  });

  it('a function that may only open (the workflows function) signs with the plaintext as it is; one that may seal but was not told it may not fails as KMS would', async () => {
    const accountId = await account();
    await plaintextSecret(accountId);
    const openOnly = new AccountsRepository(db.doc, db.tables.accounts, new LocalSecretBox(key, new Set(['open'])), { openOnly: true });
    expect(await openOnly.webhookSecret(accountId, NO_NEW_SECRET)).toBe(legacy);
    expect(await storedAccount(accountId)).toMatchObject({ webhook_secret: legacy });
    const miswired = new AccountsRepository(db.doc, db.tables.accounts, new LocalSecretBox(key, new Set(['open'])));
    await expect(miswired.webhookSecret(accountId, NO_NEW_SECRET)).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });
});

describe('safety', () => {
  async function mess(accounts: number) {
    const made = { keys: 0, runs: 0, ids: [] as string[] };
    for (let i = 0; i < accounts; i++) {
      const accountId = await account();
      made.ids.push(accountId);
      await expiredKey(accountId);
      await rotatedPastGrace(accountId);
      made.keys += 2;
      await execution(accountId, 'queued-overdue');
      await execution(accountId, 'running-overdue');
      await execution(accountId, 'sync-stuck');
      await execution(accountId, 'running-live');
      made.runs += 3;
    }
    return made;
  }

  it('one account whose transactions always fail (its busy account item conflicting, say) does not keep the accounts after it from being swept', async () => {
    const made = await mess(3);
    // The first account a transaction is sent for fails every one of its own from then on.
    let bad: string | undefined;
    const original = DynamoDBDocumentClient.prototype.send;
    jest.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (this: DynamoDBDocumentClient, command: unknown) {
      if ((command as object).constructor.name === 'TransactWriteCommand') {
        const text = JSON.stringify((command as { input: unknown }).input);
        bad ??= made.ids.find((id) => text.includes(`"${id}"`));
        if (bad !== undefined && text.includes(`"${bad}"`)) {
          return Promise.reject(
            new TransactionCanceledException({ message: 'Transaction cancelled', $metadata: { httpStatusCode: 400 }, CancellationReasons: [{ Code: 'TransactionConflict' }] }),
          );
        }
      }
      return (original as (c: unknown) => Promise<unknown>).call(this, command);
    } as never);
    let stopped: SweepStopped | undefined;
    try {
      await sweep(housekeeping(db.doc, { concurrency: 1 }));
    } catch (error) {
      stopped = error as SweepStopped;
    } finally {
      jest.restoreAllMocks();
    }
    // Still reported as an error (the function's errors alarm), with what it did: the two others swept.
    expect(stopped).toBeInstanceOf(SweepStopped);
    expect(stopped!.partial.complete).toBe(false);
    expect(bad).toBeDefined();
    for (const id of made.ids.filter((id) => id !== bad)) expect(await expiredEvents(id)).toHaveLength(2);
    expect(await expiredEvents(bad!)).toHaveLength(0);
    for (const id of made.ids) await expectConsistent(id);
    // The next run sweeps it.
    await sweep(housekeeping());
    expect(await expiredEvents(bad!)).toHaveLength(2);
    for (const id of made.ids) await expectConsistent(id);
  }, 60_000);

  it('two runs at once release and fail each thing exactly once', async () => {
    const made = await mess(4);
    const runs = await Promise.all([sweep(housekeeping()), sweep(housekeeping())]);
    expect(total(runs)).toEqual({ released_keys: made.keys, failed_executions: made.runs });
    // One event per released key (expectConsistent pairs each event with its release).
    for (const id of made.ids) expect(await expiredEvents(id)).toHaveLength(2);
    for (const id of made.ids) await expectConsistent(id);
    expect(await sweep(housekeeping())).toMatchObject({ released_keys: 0, failed_executions: 0, complete: true });
  });

  it('is bounded per run (keys, executions, executions of one account), and the next runs do the rest', async () => {
    const first = await account();
    for (let i = 0; i < 3; i++) await expiredKey(first);
    for (let i = 0; i < 4; i++) await execution(first, 'queued-overdue');
    const second = await account();
    await expiredKey(second);
    await expiredKey(second);
    await execution(second, 'sync-stuck');
    const limits = { keysPerRun: 2, executionsPerRun: 3, executionsPerAccount: 2 };
    const runs: SweepResult[] = [];
    for (let i = 0; i < 10; i++) {
      const run = await sweep(housekeeping(db.doc, limits));
      runs.push(run);
      expect(run.released_keys).toBeLessThanOrEqual(2);
      expect(run.failed_executions).toBeLessThanOrEqual(3);
      if (run.complete) break;
      expect(run.released_keys + run.failed_executions).toBeGreaterThan(0);
    }
    expect(total(runs)).toEqual({ released_keys: 5, failed_executions: 5 });
    // 5 keys at 2 a run, and the first account's 4 runs at 2 a run: three runs at least.
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(runs.at(-1)!.complete).toBe(true);
    await expectConsistent(first);
    await expectConsistent(second);
  });

  describe('under a failing DynamoDB', () => {
    let proxy: CountingProxy;
    beforeAll(async () => {
      proxy = await startCountingProxy(testEndpoint());
    });
    afterEach(() => proxy.clearFaults());
    afterAll(async () => {
      await proxy?.close();
    });
    const faulty = (limits: Partial<HousekeepingLimits> = {}) =>
      housekeeping(createDocumentClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }), limits);

    const faults: [string, () => FaultRule][] = [
      ['transactions fail (500) after three', () => ({ operation: 'TransactWriteItems', fault: 'server-error', skip: 3 })],
      ['transactions are throttled after two', () => ({ operation: 'TransactWriteItems', fault: 'throttle', skip: 2 })],
      ['the releases’ transactions (they write the audit table) fail', () => ({ operation: 'TransactWriteItems', table: db.tables.audit, fault: 'server-error', skip: 1 })],
      ['a sync run’s update gets no answer', () => ({ operation: 'UpdateItem', fault: 'hang' })],
      ['index queries are throttled after four', () => ({ operation: 'Query', fault: 'throttle', skip: 4 })],
      ['the accounts scan fails', () => ({ operation: 'Scan', fault: 'server-error' })],
    ];
    it.each(faults)('%s: the run stops with what it did, nothing is half done, and the next run completes', async (_name, rule) => {
      const made = await mess(3);
      proxy.inject(rule());
      let stopped: SweepStopped | undefined;
      try {
        await sweep(faulty({ concurrency: 2 }));
      } catch (error) {
        stopped = error as SweepStopped;
      }
      expect(stopped).toBeInstanceOf(SweepStopped);
      const partial = stopped!.partial;
      expect(partial.complete).toBe(false);
      for (const id of made.ids) await expectConsistent(id);
      proxy.clearFaults();
      const next = await sweep(faulty());
      expect(next.complete).toBe(true);
      expect(total([partial, next])).toEqual({ released_keys: made.keys, failed_executions: made.runs });
      for (const id of made.ids) await expectConsistent(id);
    }, 60_000);

    it('a transaction whose answer is lost (it landed) is not counted twice, nor done twice', async () => {
      const made = await mess(2);
      proxy.inject({ operation: 'TransactWriteItems', fault: 'lose-response', times: 3 });
      const runs: SweepResult[] = [];
      try {
        runs.push(await sweep(faulty({ concurrency: 1 })));
      } catch (error) {
        if (!(error instanceof SweepStopped)) throw error;
        runs.push(error.partial);
      }
      proxy.clearFaults();
      runs.push(await sweep(faulty()));
      const sum = total(runs);
      // Every run failed once; a key released by a landed transaction whose answer was lost may go
      // uncounted (its retry meets its own release), never counted twice.
      expect(sum.failed_executions).toBe(made.runs);
      expect(sum.released_keys).toBeLessThanOrEqual(made.keys);
      expect(sum.released_keys).toBeGreaterThanOrEqual(made.keys - 3);
      for (const id of made.ids) await expectConsistent(id);
    }, 60_000);
  });
});
