/**
 * DynamoDB cancels a transaction that touches an item another transaction is writing at the same moment
 * (`TransactionCanceledException` with a `TransactionConflict` reason). Such a transaction took no effect,
 * and the SDK does not send it again: every transaction of the code is sent through `transactWrite`
 * (ddb.ts), or a loop of its own, that does. Here each one that went straight to the SDK before is
 * cancelled by an injected conflict (DynamoDB Local serialises transactions, so it never produces one) and
 * must still take effect, once, with its one audit event: the account's creation, a member added, a
 * member's role changed, a member removed, a workflow created and a workflow's new version (two PUTs of
 * one workflow at once on AWS: one of them got a 500 before). A plain write on an item a transaction is
 * writing is refused with `TransactionConflictException`, which the SDK does not retry either: the
 * functions' client sends it again too (a deploy while a PUT writes the workflow's head).
 */
import { addMember, removeMember, setMemberRole, type MemberDeps } from '../admin-cli/members.js';
import { createDocumentClient } from '../lambdas/shared/ddb.js';
import { ModelRegistry } from '../lambdas/shared/models/registry.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { AuditRepository } from '../lambdas/shared/repositories/audit.js';
import { ExecutionsRepository } from '../lambdas/shared/repositories/executions.js';
import { MembershipsRepository } from '../lambdas/shared/repositories/memberships.js';
import { WorkflowsRepository } from '../lambdas/shared/repositories/workflows.js';
import { createAccount } from '../lambdas/shared/services/keys.js';
import { createWorkflow, deployWorkflow, getWorkflow, listWorkflowVersions, updateWorkflow } from '../lambdas/shared/services/workflows.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../local-runner/stack.js';
import { startCountingProxy, type CountingProxy } from './support/counting-proxy.js';
import { createTestDb, testEndpoint, type TestDb } from './support/dynamodb.js';

let db: TestDb;
let proxy: CountingProxy;
/** The repositories through the fault proxy, with the functions' own client settings. */
let accounts: AccountsRepository;
let audit: AuditRepository;
let memberships: MembershipsRepository;
let workflows: WorkflowsRepository;
let executions: ExecutionsRepository;
let n = 0;

beforeAll(async () => {
  db = await createTestDb('transaction-conflicts');
  proxy = await startCountingProxy(testEndpoint());
  const doc = createDocumentClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  accounts = new AccountsRepository(doc, db.tables.accounts);
  audit = new AuditRepository(doc, db.tables.audit, 365);
  memberships = new MembershipsRepository(doc, db.tables.memberships);
  workflows = new WorkflowsRepository(doc, db.tables.workflows);
  executions = new ExecutionsRepository(doc, db.tables.executions);
});
afterEach(() => proxy.clearFaults());
afterAll(async () => {
  await proxy?.close();
  db?.close();
});

/** The next TransactWriteItems naming `table` is cancelled `times` times by a conflict. */
function conflict(table: string, times = 1): void {
  proxy.reset();
  proxy.inject({ operation: 'TransactWriteItems', table, fault: 'transaction-conflict', times });
}

const eventsOf = async (accountId: string, action: Parameters<AuditRepository['list']>[1]['action']) => (await audit.list(accountId, { action }, 10)).items;

async function newAccount(): Promise<string> {
  const id = `acct_conflict_${++n}_${Date.now().toString(36)}`;
  await createAccount({ accounts, audit }, id, 'business');
  return id;
}

it('an account’s creation cancelled by a conflict is sent again: the account and one account.created event', async () => {
  const id = `acct_conflict_${++n}_${Date.now().toString(36)}`;
  conflict(db.tables.accounts, 2);
  await createAccount({ accounts, audit }, id, 'pro');
  expect(proxy.injected()).toBe(2);
  expect(await accounts.get(id)).toMatchObject({ account_id: id, tier: 'pro' });
  expect(await eventsOf(id, 'account.created')).toHaveLength(1);
});

describe('members (the admin CLI)', () => {
  const deps = (): MemberDeps => ({ accounts, memberships, audit, people: undefined });

  it('added, role changed and removed, each cancelled once by a conflict: each applied once, with its one event', async () => {
    const id = await newAccount();
    const who = { email: 'ada@example.com' };
    conflict(db.tables.memberships);
    await addMember(deps(), { accountId: id, email: who.email, subject: 'sub-ada', role: 'viewer' }, new Date());
    expect(proxy.injected()).toBe(1);
    expect(await memberships.get('sub-ada', id)).toMatchObject({ role: 'viewer' });

    conflict(db.tables.memberships);
    expect((await setMemberRole(deps(), id, who, 'admin', new Date())).after).toMatchObject({ role: 'admin' });
    expect(proxy.injected()).toBe(1);
    expect(await memberships.get('sub-ada', id)).toMatchObject({ role: 'admin' });

    conflict(db.tables.memberships);
    await removeMember(deps(), id, who);
    expect(proxy.injected()).toBe(1);
    expect(await memberships.get('sub-ada', id)).toBeUndefined();

    for (const action of ['member.added', 'member.role_changed', 'member.removed'] as const) expect(await eventsOf(id, action)).toHaveLength(1);
  });
});

describe('workflows', () => {
  const definition = (model: string) => ({ input_schema: {}, steps: [{ id: 'e', model, input: 1 }], output: '$.steps.e.output' });
  /** A new account, the workflow services' repositories (through the fault proxy), and a key of the account acting. */
  const newWorkflowAccount = async () => ({
    deps: { workflows, executions, accounts, models: new ModelRegistry() },
    actor: { accountId: await newAccount(), principal: { kind: 'key' as const, key_id: 'key_a' }, workspaces: ['*'] },
  });

  it('a creation and a new version, each cancelled once by a conflict: the workflow at version 1, then 2, no version twice', async () => {
    const { deps, actor } = await newWorkflowAccount();

    conflict(db.tables.workflows);
    await createWorkflow(deps, actor, { slug: 'wf', name: 'wf', definition: definition('echo') });
    expect(proxy.injected()).toBe(1);
    expect(await getWorkflow(deps, actor, 'wf')).toMatchObject({ version: 1, name: 'wf' });

    conflict(db.tables.workflows);
    await updateWorkflow(deps, actor, 'wf', { name: 'wf v2', definition: definition('uppercase') });
    expect(proxy.injected()).toBe(1);
    expect(await getWorkflow(deps, actor, 'wf')).toMatchObject({ version: 2, name: 'wf v2' });
    const versions = await listWorkflowVersions(deps, actor, 'wf', 10);
    expect(versions.items.map((v) => v.version)).toEqual([2, 1]);
  });

  it('twelve PUTs of one workflow at once: each a version of its own, none refused (each loser reads again after a jittered wait)', async () => {
    const { deps, actor } = await newWorkflowAccount();
    await createWorkflow(deps, actor, { slug: 'busy', name: 'busy', definition: definition('echo') });
    const puts = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => updateWorkflow(deps, actor, 'busy', { name: `busy ${i}`, definition: definition('echo') })));
    expect(puts.filter((p) => p.status === 'rejected').map((p) => String((p as PromiseRejectedResult).reason))).toEqual([]);
    const versions = await listWorkflowVersions(deps, actor, 'busy', 20);
    expect(versions.items.map((v) => v.version)).toEqual(Array.from({ length: 13 }, (_, i) => 13 - i));
  });

  it('a deploy refused twice because a transaction was writing the head (TransactionConflictException) is sent again: deployed', async () => {
    const { deps, actor } = await newWorkflowAccount();
    await createWorkflow(deps, actor, { slug: 'wf', name: 'wf', definition: definition('echo') });
    proxy.reset();
    proxy.inject({ operation: 'UpdateItem', table: db.tables.workflows, fault: 'transaction-conflict', times: 2 });
    expect(await deployWorkflow(deps, actor, 'wf')).toMatchObject({ status: 'deployed', deployed_version: 1 });
    expect(proxy.injected()).toBe(2);
    expect(proxy.counts()['UpdateItem']).toBe(3);
  });

  // The SDK's retry strategy counts TransactionInProgressException as throttling (@smithy/core's
  // THROTTLING_ERROR_CODES): pinned here, since a request whose transaction committed would otherwise get
  // a 500 and lose its Idempotency-Key, and a retry would do the work twice.
  it('a transaction answered TransactionInProgressException (a retry of one still being executed) is sent again: created once', async () => {
    const id = `acct_inprogress_${++n}_${Date.now().toString(36)}`;
    proxy.reset();
    proxy.inject({ operation: 'TransactWriteItems', table: db.tables.accounts, fault: 'transaction-in-progress', times: 2 });
    await createAccount({ accounts, audit }, id, 'business');
    expect(proxy.injected()).toBe(2);
    expect(proxy.counts()['TransactWriteItems']).toBe(3);
    expect(await accounts.get(id)).toMatchObject({ account_id: id, tier: 'business' });
    expect(await eventsOf(id, 'account.created')).toHaveLength(1);
  });

  it('a plain write refused on every attempt fails (a 500 for its request), after as many attempts as a throttled one', async () => {
    const { deps, actor } = await newWorkflowAccount();
    await createWorkflow(deps, actor, { slug: 'wf', name: 'wf', definition: definition('echo') });
    const attempts = async (fault: 'throttle' | 'transaction-conflict') => {
      proxy.clearFaults();
      proxy.reset();
      proxy.inject({ operation: 'UpdateItem', table: db.tables.workflows, fault });
      const failed = await deployWorkflow(deps, actor, 'wf').then(
        () => undefined,
        (error: unknown) => error,
      );
      return { name: (failed as Error | undefined)?.name, calls: proxy.counts()['UpdateItem'] };
    };
    const throttled = await attempts('throttle');
    expect(throttled.name).toBe('ProvisionedThroughputExceededException');
    // The SDK's attempts for DynamoDB (4 with its 2026 retry behaviour).
    expect(throttled.calls).toBeGreaterThanOrEqual(3);
    expect(await attempts('transaction-conflict')).toEqual({ name: 'TransactionConflictException', calls: throttled.calls });
    proxy.clearFaults();
    expect(await getWorkflow(deps, actor, 'wf')).toMatchObject({ status: 'draft', deployed_version: null });
  });
});
