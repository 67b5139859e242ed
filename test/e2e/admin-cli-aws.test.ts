/**
 * The admin CLI's `user …` commands against a deployed stack, run as an operator would
 * (`--stack-name … --region …`), where no AWS is reachable: CloudFormation and Cognito are stand-ins on
 * loopback (test/support/fake-aws.ts) reached through the SDK's endpoint variables, and the tables are
 * in DynamoDB Local. What is checked is what the CLI asks of Cognito (the actions, and so the operator's
 * IAM) and what it stores; the local provider's sign-in is covered in admin-cli.test.ts.
 */
import { DEFAULT_SETTINGS } from '../../lambdas/shared/settings.js';
import { MembershipsRepository } from '../../lambdas/shared/repositories/memberships.js';
import { TEMPORARY_PASSWORD_DAYS } from '../../lib/identity.js';
import { STACK_OUTPUTS } from '../../lib/outputs.js';
import { COGNITO_INVITATION_NOTE } from '../../admin-cli/people.js';
import { LOCAL_REGION } from '../../local-runner/stack.js';
import { deployedCli } from '../support/admin-cli.js';
import { createTestDb, type TestDb } from '../support/dynamodb.js';
import { startFakeAws, type FakeAws } from '../support/fake-aws.js';

const POOL_STACK = 'knouds-with-pool';
const OWN_STACK = 'knouds-own-provider';
const USER_POOL_ID = `${LOCAL_REGION}_Fake0001`;

let db: TestDb;
let aws: FakeAws;
let memberships: MembershipsRepository;

beforeAll(async () => {
  db = await createTestDb('admin-cli-aws');
  aws = await startFakeAws();
  memberships = new MembershipsRepository(db.doc, db.tables.memberships);
  const outputs: Record<string, string> = {
    [STACK_OUTPUTS.keysTable]: db.tables.keys,
    [STACK_OUTPUTS.accountsTable]: db.tables.accounts,
    [STACK_OUTPUTS.usageTable]: db.tables.usage,
    [STACK_OUTPUTS.workflowsTable]: db.tables.workflows,
    [STACK_OUTPUTS.executionsTable]: db.tables.executions,
    [STACK_OUTPUTS.membershipsTable]: db.tables.memberships,
    [STACK_OUTPUTS.idempotencyTable]: db.tables.idempotency,
    [STACK_OUTPUTS.auditTable]: db.tables.audit,
    [STACK_OUTPUTS.settings]: JSON.stringify(DEFAULT_SETTINGS),
    [STACK_OUTPUTS.consoleClientId]: 'console-client',
  };
  aws.stacks.set(POOL_STACK, {
    ...outputs,
    [STACK_OUTPUTS.identityIssuer]: `https://cognito-idp.${LOCAL_REGION}.amazonaws.com/${USER_POOL_ID}`,
    [STACK_OUTPUTS.userPoolId]: USER_POOL_ID,
  });
  aws.stacks.set(OWN_STACK, { ...outputs, [STACK_OUTPUTS.identityIssuer]: 'https://login.example.com/' });
  aws.pools.set(USER_POOL_ID, new Map([['old@example.com', { sub: 'sub-of-old', email: 'old@example.com' }]]));
  for (const [stack, id] of [[POOL_STACK, 'acct_pool'], [OWN_STACK, 'acct_own']] as const) {
    const created = await cli(stack, 'account', 'create', '--id', id, '--tier', 'business');
    if (created.code !== 0) throw new Error(`account create ${id}: ${created.stderr}`);
  }
}, 60_000);

afterAll(async () => {
  await aws?.close();
  db?.close();
});

/** The CLI on a "deployed" stack: the operator's credentials and region, the services' endpoints. */
const cli = (stack: string, ...args: string[]) => deployedCli(aws.endpoint, stack, args);

async function cliJson(stack: string, ...args: string[]) {
  const result = await cli(stack, ...args, '--json');
  expect(result.stdout.trim().split('\n')).toHaveLength(1);
  return { code: result.code, body: JSON.parse(result.stdout) as Record<string, unknown> };
}

const cognitoCalls = () => aws.calls.filter((c) => c.service === 'cognito-idp').map(({ action, input }) => ({ action, input }));

describe('user … on a stack with its Cognito user pool', () => {
  beforeEach(() => {
    aws.calls.length = 0;
    aws.failures.clear();
  });

  it('creates a new person in the pool (Cognito emails the password), then the membership with their sub', async () => {
    const added = await cliJson(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--email', 'New@Example.com', '--role', 'admin');
    const sub = aws.pools.get(USER_POOL_ID)?.get('new@example.com')?.sub;
    expect(sub).toEqual(expect.any(String));
    expect(added).toEqual({ code: 0, body: { subject: sub, email: 'new@example.com', account_id: 'acct_pool', role: 'admin', password: null } });
    expect(cognitoCalls()).toEqual([
      {
        action: 'AdminCreateUser',
        input: {
          UserPoolId: USER_POOL_ID,
          Username: 'new@example.com',
          UserAttributes: [
            { Name: 'email', Value: 'new@example.com' },
            { Name: 'email_verified', Value: 'true' },
          ],
          DesiredDeliveryMediums: ['EMAIL'],
        },
      },
    ]);
    expect(await memberships.get(sub!, 'acct_pool')).toMatchObject({ email: 'new@example.com', role: 'admin' });
    // Deployed too, the change is in the audit trail, by the operator.
    const events = await db.audit.list('acct_pool', { targetId: sub!, action: 'member.added' }, 10);
    expect(events.items).toEqual([expect.objectContaining({ actor: { kind: 'operator' }, changes: { email: { from: null, to: 'new@example.com' }, role: { from: null, to: 'admin' } } })]);
  });

  it('finds a person the pool already has (AdminGetUser by email), with no new invitation', async () => {
    const result = await cli(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--email', 'old@example.com', '--role', 'viewer');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Added old@example\.com to acct_pool as viewer/);
    expect(result.stdout).toMatch(/user pool .*_Fake0001 already knew them: they sign in as before/);
    expect(cognitoCalls().map((c) => c.action)).toEqual(['AdminCreateUser', 'AdminGetUser']);
    expect(cognitoCalls()[1]?.input).toEqual({ UserPoolId: USER_POOL_ID, Username: 'old@example.com' });
    expect(await memberships.get('sub-of-old', 'acct_pool')).toMatchObject({ email: 'old@example.com', role: 'viewer' });
    // Again: the same membership.
    const again = await cliJson(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--email', 'old@example.com', '--role', 'viewer');
    expect(again).toEqual({ code: 0, body: { subject: 'sub-of-old', email: 'old@example.com', account_id: 'acct_pool', role: 'viewer', password: null } });
  });

  it('says in words that Cognito emails a new person their temporary password', async () => {
    const result = await cli(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--email', 'words@example.com', '--role', 'viewer');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${COGNITO_INVITATION_NOTE}.`);
    expect(result.stdout).not.toMatch(/Password for/);
    expect(COGNITO_INVITATION_NOTE).toContain(`valid ${TEMPORARY_PASSWORD_DAYS} days`);
  });

  it('lists, changes a role and removes without calling Cognito (the person stays in the pool)', async () => {
    await cli(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--email', 'list@example.com', '--role', 'viewer');
    aws.calls.length = 0;
    const listed = await cliJson(POOL_STACK, 'user', 'list', '--account', 'acct_pool');
    const emails = (listed.body['items'] as { email: string }[]).map((m) => m.email);
    expect(emails).toEqual([...emails].sort());
    expect(emails).toContain('list@example.com');
    const changed = await cliJson(POOL_STACK, 'user', 'set-role', '--account', 'acct_pool', '--email', 'list@example.com', '--role', 'admin');
    expect(changed.body).toMatchObject({ role: 'admin', previous_role: 'viewer' });
    const removed = await cliJson(POOL_STACK, 'user', 'remove', '--account', 'acct_pool', '--email', 'list@example.com');
    expect(removed).toEqual({ code: 0, body: expect.objectContaining({ email: 'list@example.com', removed: true }) });
    expect(cognitoCalls()).toEqual([]);
    expect(aws.pools.get(USER_POOL_ID)?.has('list@example.com')).toBe(true);
  });

  it('creates nobody for an unknown account, and refuses --subject (its people are in the pool)', async () => {
    const unknown = await cliJson(POOL_STACK, 'user', 'add', '--account', 'acct_nope', '--email', 'ghost@example.com', '--role', 'viewer');
    expect(unknown).toEqual({ code: 3, body: { code: 'NOT_FOUND', error: "Account 'acct_nope' does not exist" } });
    const subject = await cliJson(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--email', 'x@example.com', '--role', 'viewer', '--subject', 'abc');
    expect(subject).toEqual({ code: 2, body: { code: 'USAGE', error: expect.stringMatching(/^--subject is for a stack with its own identity provider; this one's people are in user pool/) } });
    // With the user pool, the email names the person: --subject alone is refused just the same.
    const subjectOnly = await cliJson(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--subject', 'abc', '--role', 'viewer');
    expect(subjectOnly).toEqual({ code: 2, body: { code: 'USAGE', error: expect.stringMatching(/^--subject is for a stack with its own identity provider/) } });
    expect(cognitoCalls()).toEqual([]);
  });

  it('resets no password: says they are reset in Cognito, and how (exit 2), calling nothing', async () => {
    const result = await cliJson(POOL_STACK, 'user', 'reset-password', '--email', 'old@example.com');
    expect(result).toEqual({
      code: 2,
      body: {
        code: 'USAGE',
        error: expect.stringMatching(
          new RegExp(`^passwords of user pool ${USER_POOL_ID} are reset at that provider, not by this CLI: in Cognito: aws cognito-idp admin-reset-user-password --user-pool-id ${USER_POOL_ID} --username old@example\\.com `),
        ),
      },
    });
    expect(String(result.body['error'])).toContain(`--username old@example.com --message-action RESEND`);
    expect(cognitoCalls()).toEqual([]);
  });

  it("passes on Cognito's refusal (exit 6: the operator's credentials may not do it) and adds no membership", async () => {
    aws.failures.set('AdminCreateUser', {
      type: 'AccessDeniedException',
      message: `User: arn:aws:iam::000000000000:user/operator is not authorized to perform: cognito-idp:AdminCreateUser on resource: ${USER_POOL_ID}`,
    });
    const refused = await cliJson(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--email', 'denied@example.com', '--role', 'viewer');
    expect(refused).toEqual({ code: 6, body: { code: 'AWS_ERROR', error: expect.stringMatching(/^AccessDeniedException: .*cognito-idp:AdminCreateUser/) } });
    const emails = (await memberships.ofAccount('acct_pool')).map((m) => m.email);
    expect(emails).not.toContain('denied@example.com');
  });

  it('says an unexpected error of an AWS service as it is (exit 1), and adds no membership', async () => {
    aws.failures.set('AdminCreateUser', { type: 'InvalidLambdaResponseException', message: 'The pre sign-up trigger answered nonsense' });
    const failed = await cliJson(POOL_STACK, 'user', 'add', '--account', 'acct_pool', '--email', 'odd@example.com', '--role', 'viewer');
    expect(failed).toEqual({ code: 1, body: { code: 'AWS_ERROR', error: 'InvalidLambdaResponseException: The pre sign-up trigger answered nonsense' } });
    expect((await memberships.ofAccount('acct_pool')).map((m) => m.email)).not.toContain('odd@example.com');
  });
});

describe('account … and key … on a deployed stack', () => {
  it('lists and gets accounts, gets and rotates a key, with the rotation in the audit trail by the operator', async () => {
    const created = await cliJson(POOL_STACK, 'key', 'create', '--account', 'acct_pool', '--name', 'deployed', '--preset', 'read-only');
    expect(created.code).toBe(0);
    const keyId = String(created.body['key_id']);

    const listed = await cliJson(POOL_STACK, 'account', 'list');
    expect(listed.code).toBe(0);
    expect(listed.body['items']).toEqual(
      expect.arrayContaining([
        { account_id: 'acct_own', tier: 'business', active_keys: 0, max_active_keys: 10, created_at: expect.any(String) },
        { account_id: 'acct_pool', tier: 'business', active_keys: 1, max_active_keys: 10, created_at: expect.any(String) },
      ]),
    );
    const got = await cliJson(POOL_STACK, 'account', 'get', '--id', 'acct_pool');
    expect(got.body).toMatchObject({ account_id: 'acct_pool', tier: 'business', active_keys: 1, max_active_keys: 10, member_count: expect.any(Number) });

    const key = await cliJson(POOL_STACK, 'key', 'get', keyId);
    expect(key).toEqual({ code: 0, body: expect.objectContaining({ key_id: keyId, name: 'deployed', capabilities: ['workflow:read'], created_by: { kind: 'operator' } }) });
    const rotated = await cliJson(POOL_STACK, 'key', 'rotate', keyId);
    expect(rotated.body).toMatchObject({ key_id: expect.stringMatching(/^key_/), api_key: expect.stringMatching(/^knouds_live_/), name: 'deployed' });
    expect(await cliJson(POOL_STACK, 'key', 'get', keyId)).toEqual({ code: 3, body: { code: 'NOT_FOUND', error: `Key '${keyId}' not found` } });
    const events = await db.audit.list('acct_pool', { targetId: keyId, action: 'key.rotated' }, 10);
    expect(events.items).toEqual([expect.objectContaining({ actor: { kind: 'operator' }, changes: expect.objectContaining({ rotated_to: { from: null, to: rotated.body['key_id'] } }) })]);
  });

  it('cannot reach a stack that is not there, or whose tables are gone (exit 6)', async () => {
    const missing = await cliJson('knouds-nowhere', 'account', 'list');
    expect(missing).toEqual({ code: 6, body: { code: 'NO_STACK', error: expect.stringMatching(/^Cannot read stack knouds-nowhere/) } });
    aws.stacks.set('knouds-deleted-tables', { ...aws.stacks.get(OWN_STACK)!, [STACK_OUTPUTS.accountsTable]: 'knouds-no-such-table' });
    const gone = await cliJson('knouds-deleted-tables', 'account', 'get', '--id', 'acct_own');
    expect(gone).toEqual({ code: 6, body: { code: 'AWS_ERROR', error: expect.stringMatching(/^ResourceNotFoundException: /) } });
  });
});

describe("user … on a stack with the deployer's own identity provider (no UserPoolId output)", () => {
  beforeEach(() => {
    aws.calls.length = 0;
  });

  it('adds a person by --subject with their --email, and finds them by either', async () => {
    const added = await cliJson(OWN_STACK, 'user', 'add', '--account', 'acct_own', '--subject', '00u1abcd', '--email', 'Okta.Person@Example.com', '--role', 'viewer');
    expect(added).toEqual({ code: 0, body: { subject: '00u1abcd', email: 'okta.person@example.com', account_id: 'acct_own', role: 'viewer', password: null } });
    expect(await memberships.get('00u1abcd', 'acct_own')).toMatchObject({ email: 'okta.person@example.com', role: 'viewer' });
    // Another subject with the same email: set-role and remove could not tell them apart.
    const clash = await cliJson(OWN_STACK, 'user', 'add', '--account', 'acct_own', '--subject', '00u9other', '--email', 'okta.person@example.com', '--role', 'viewer');
    expect(clash).toEqual({ code: 4, body: { code: 'ALREADY_EXISTS', error: expect.stringMatching(/already the email of another member .*subject 00u1abcd/) } });

    const changed = await cliJson(OWN_STACK, 'user', 'set-role', '--account', 'acct_own', '--subject', '00u1abcd', '--role', 'admin');
    expect(changed.body).toMatchObject({ subject: '00u1abcd', role: 'admin', previous_role: 'viewer' });
    const removed = await cliJson(OWN_STACK, 'user', 'remove', '--account', 'acct_own', '--email', 'okta.person@example.com');
    expect(removed.body).toMatchObject({ subject: '00u1abcd', removed: true });
    expect(await memberships.get('00u1abcd', 'acct_own')).toBeUndefined();
    expect(cognitoCalls()).toEqual([]);
  });

  it('adds a person by --subject alone (API.md §5: it replaces --email): their email is null, and they are found by subject', async () => {
    const added = await cliJson(OWN_STACK, 'user', 'add', '--account', 'acct_own', '--subject', '00u2noemail', '--role', 'viewer');
    expect(added).toEqual({ code: 0, body: { subject: '00u2noemail', email: null, account_id: 'acct_own', role: 'viewer', password: null } });
    const stored = await memberships.get('00u2noemail', 'acct_own');
    expect(stored).toMatchObject({ subject: '00u2noemail', email: null, role: 'viewer' });
    // Again: the same member, nothing changed; the text names them by subject.
    const again = await cli(OWN_STACK, 'user', 'add', '--account', 'acct_own', '--subject', '00u2noemail', '--role', 'viewer');
    expect(again.stdout).toMatch(/^subject 00u2noemail was already viewer of acct_own: nothing changed\./);
    const listed = await cli(OWN_STACK, 'user', 'list', '--account', 'acct_own');
    expect(listed.stdout).toMatch(/^\(no email\) {2}viewer {2}00u2noemail {2}added /m);
    const listedJson = await cliJson(OWN_STACK, 'user', 'list', '--account', 'acct_own');
    expect(listedJson.body['items']).toContainEqual(expect.objectContaining({ subject: '00u2noemail', email: null }));
    // Two people without an email are no clash.
    expect((await cliJson(OWN_STACK, 'user', 'add', '--account', 'acct_own', '--subject', '00u3noemail', '--role', 'viewer')).code).toBe(0);
    const changed = await cli(OWN_STACK, 'user', 'set-role', '--account', 'acct_own', '--subject', '00u2noemail', '--role', 'admin');
    expect(changed.stdout).toMatch(/^subject 00u2noemail in acct_own: viewer → admin/);
    for (const sub of ['00u2noemail', '00u3noemail']) expect((await cliJson(OWN_STACK, 'user', 'remove', '--account', 'acct_own', '--subject', sub)).body).toMatchObject({ subject: sub, email: null, removed: true });
    expect(cognitoCalls()).toEqual([]);
  });

  it('resets no password: they are reset at your provider (exit 2)', async () => {
    const result = await cliJson(OWN_STACK, 'user', 'reset-password', '--email', 'okta.person@example.com');
    expect(result).toEqual({ code: 2, body: { code: 'USAGE', error: expect.stringMatching(/^this stack uses its own identity provider \(it has no UserPoolId output\): passwords are reset at that provider, not by this CLI/) } });
    expect(cognitoCalls()).toEqual([]);
  });

  it('needs --subject: the CLI cannot create people at your provider (exit 2)', async () => {
    const result = await cli(OWN_STACK, 'user', 'add', '--account', 'acct_own', '--email', 'a@example.com', '--role', 'viewer');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/its own identity provider \(it has no UserPoolId output\).*give the person's --subject/);
  });
});
