/**
 * IAM end to end (issue #19, item 1): the local runner holds each function to its role's policies from
 * the synthesized template. With the template as synthesized, a tour of the API is refused nothing; with
 * a grant removed from a copy of the template (served as `--skip-synth` serves cdk.out), exactly the
 * calls that needed it fail, with AccessDeniedException, while the rest work (kms:GenerateMac on the page
 * token key too, which the runner decides when it starts the function); a table ARN with a typo
 * in a policy is named at start-up and allows nothing.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findStack } from '../../local-runner/template.js';
import type { IamRefusal } from '../../local-runner/iam/enforcer.js';
import { SLEEPY } from '../support/definitions.js';
import { uniquePrefix } from '../support/dynamodb.js';
import { expectError } from '../support/http.js';
import { TEST_CDK_OUT } from '../support/paths.js';
import { startTestStack, type TestStack } from '../support/stack.js';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}
interface Template {
  Resources: Record<string, { Type: string; Properties: { Roles?: { Ref: string }[]; PolicyDocument?: { Statement: Statement[] } } }>;
}

const LOCAL = 'arn:aws:dynamodb:us-east-1:000000000000';
const folders: string[] = [];
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** A copy of cdk.out.test (the bundles linked, not copied) whose template `edit` has changed. */
function assemblyWith(edit: (template: Template) => void): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'knouds-iam-assembly-'));
  folders.push(dir);
  const templateFile = path.basename(findStack(TEST_CDK_OUT).templateFile);
  for (const entry of readdirSync(TEST_CDK_OUT)) {
    const from = path.join(TEST_CDK_OUT, entry);
    if (entry.startsWith('asset.')) symlinkSync(from, path.join(dir, entry));
    else if (entry.endsWith('.json') && entry !== templateFile) copyFileSync(from, path.join(dir, entry));
  }
  const template = JSON.parse(readFileSync(path.join(TEST_CDK_OUT, templateFile), 'utf8')) as Template;
  edit(template);
  writeFileSync(path.join(dir, templateFile), JSON.stringify(template));
  return dir;
}

/** The statements of the default policy of the role whose logical id starts with `rolePrefix`. */
function statementsOf(template: Template, rolePrefix: string): Statement[] {
  const found = Object.values(template.Resources).find((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles?.some((x) => x.Ref.startsWith(rolePrefix)));
  if (!found?.Properties.PolicyDocument) throw new Error(`no policy of ${rolePrefix}`);
  return found.Properties.PolicyDocument.Statement;
}
/** The one statement of that policy that grants something on the resource whose logical id starts with `resourcePrefix`. */
function grantOn(template: Template, rolePrefix: string, resourcePrefix: string, action: string): Statement {
  const matches = statementsOf(template, rolePrefix).filter((s) => JSON.stringify(s.Resource).includes(`"${resourcePrefix}`) && ([] as string[]).concat(s.Action).includes(action));
  if (matches.length !== 1) throw new Error(`${matches.length} statements of ${rolePrefix} grant ${action} on ${resourcePrefix}`);
  return matches[0]!;
}
const logicalId = (template: Template, prefix: string) => Object.keys(template.Resources).find((id) => id.startsWith(prefix))!;

/** A refusal as `<function prefix> <action> <table or function logical-id prefix>`, comparable across runs. */
const shortly = (r: IamRefusal) => {
  const fn = r.functionId.replace(/[0-9A-F]{8}$/, '');
  const target = /(?:table\/[^/]*-|function:)([A-Za-z]+?)(?:[0-9A-F]{8})/.exec(r.resource)?.[1] ?? r.resource;
  return `${fn} ${r.action} ${target}`;
};

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the template as synthesized', () => {
  let t: TestStack;
  beforeAll(async () => {
    t = await startTestStack('e2e-iam', { schedules: 'manual' });
  }, 60_000);
  afterAll(() => t?.close());

  it('enforces IAM by default and refuses nothing on a tour of the API', async () => {
    expect(t.stack.iam.enabled).toBe(true);
    // The functions reach DynamoDB through the checking proxy, not directly.
    expect(t.stack.iam.dynamodbEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(t.stack.iam.dynamodbEndpoint).not.toBe(t.stack.dynamodbEndpoint);
    const { key, keyId } = await t.account('business');
    expect((await t.api(key, 'GET', '/keys/verify')).status).toBe(200);
    const created = await t.api(key, 'POST', '/keys', { name: 'tour', preset: 'read-only' });
    expect(created.status).toBe(201);
    const id = created.body['key_id'] as string;
    expect((await t.api(key, 'PATCH', `/keys/${id}`, { name: 'tour 2' })).status).toBe(200);
    expect((await t.api(key, 'POST', `/keys/${id}/rotate`, { grace_period_seconds: 60 }, { 'idempotency-key': 'rot-1' })).status).toBe(201);
    expect((await t.api(key, 'GET', `/keys/${keyId}/usage`)).status).toBe(200);
    expect((await t.api(key, 'GET', '/audit-events?action=key.created')).status).toBe(200);
    expect((await t.api(key, 'GET', '/webhooks/secret')).status).toBe(200);
    expect((await t.api(key, 'POST', '/webhooks/secret/rotate', {})).status).toBe(200);
    expect((await t.api(key, 'POST', '/workflows', { slug: 'nap', name: 'Nap', definition: SLEEPY })).status).toBe(201);
    expect((await t.api(key, 'POST', '/workflows/nap/deploy')).status).toBe(200);
    expect((await t.api(key, 'POST', '/workflows/nap/run', { input: { ms: 1 } }, { 'idempotency-key': 'run-1' })).body['status']).toBe('SUCCEEDED');
    const queued = await t.api(key, 'POST', '/workflows/nap/run?async=true', { input: { ms: 3000 }, webhook_url: 'http://127.0.0.1:9/hook' });
    expect(queued.status).toBe(202);
    const executionId = queued.body['execution_id'] as string;
    await waitFor('the run to start', async () => ((await t.api(key, 'GET', `/executions/${executionId}`)).body['status'] === 'RUNNING' ? true : undefined));
    expect((await t.api(key, 'POST', `/executions/${executionId}/cancel`)).body['status']).toBe('CANCELLED');
    expect((await t.api(key, 'GET', '/executions?status=CANCELLED')).status).toBe(200);
    expect((await t.api(key, 'POST', '/models/reverse/run', { input: { text: 'abc' } })).body).toEqual({ model: 'reverse', output: { text: 'cba' } });
    await t.stack.runSchedules();
    expect(t.stack.iam.refusals()).toEqual([]);
  });
});

describe('a grant removed from the template', () => {
  let t: TestStack;
  let prefix: string;
  const functionLogs: string[] = [];
  beforeAll(async () => {
    prefix = uniquePrefix('e2e-iam-removed');
    const cdkOut = assemblyWith((template) => {
      // The keys function may no longer query the audit trail (reading it), but still writes it.
      // (Query on the table, in its statement, and on its indexes, in the Query-only statement CDK merges
      // with the other tables' and indexes' Query: those keep it.)
      const audit = grantOn(template, 'KeysFunctionRole', 'DataAuditTable', 'dynamodb:PutItem');
      audit.Action = ([] as string[]).concat(audit.Action).filter((a) => a !== 'dynamodb:Query');
      const queries = statementsOf(template, 'KeysFunctionRole').find((s) => Array.isArray(s.Resource) && JSON.stringify(s.Resource).includes('"DataAuditTable'))!;
      queries.Resource = (queries.Resource as unknown[]).filter((r) => !JSON.stringify(r).includes('"DataAuditTable'));
      // The executions function loses its only PutItem: the cancellation signal (dynamodb:LeadingKeys "*#signal").
      const policy = statementsOf(template, 'ExecutionsFunctionRole');
      policy.splice(policy.indexOf(grantOn(template, 'ExecutionsFunctionRole', 'DataExecutionsTable', 'dynamodb:PutItem')), 1);
      // And kms:GenerateMac on the page token key (the local stand-in is given the key, refused).
      policy.splice(policy.indexOf(grantOn(template, 'ExecutionsFunctionRole', 'PageTokenKey', 'kms:GenerateMac')), 1);
      // Housekeeping may no longer seal a plaintext webhook secret (kms:Encrypt on the secrets key).
      const housekeeping = statementsOf(template, 'HousekeepingFunctionRole');
      housekeeping.splice(housekeeping.indexOf(grantOn(template, 'HousekeepingFunctionRole', 'WebhookSecretsKey', 'kms:Encrypt')), 1);
      // And the usage grant names its table by a hand-written ARN, correctly: it still works.
      grantOn(template, 'KeysFunctionRole', 'DataUsageTable', 'dynamodb:Query').Resource = `${LOCAL}:table/${prefix}-${logicalId(template, 'DataUsageTable')}`;
    });
    t = await startTestStack('e2e-iam-removed', {
      cdkOut,
      tableNamePrefix: prefix,
      schedules: 'manual',
      expectIamRefusals: true,
      onFunctionLog: (fn, line) => functionLogs.push(`${fn} ${line}`),
    });
  }, 60_000);
  afterAll(() => t?.close());

  it('fails exactly the calls that needed it, with AccessDeniedException, and nothing else', async () => {
    const { key, keyId } = await t.account('business');
    // What still has its grants works.
    expect((await t.api(key, 'POST', '/keys', { name: 'still written', preset: 'read-only' })).status).toBe(201);
    expect((await t.api(key, 'GET', '/keys')).status).toBe(200);
    expect((await t.api(key, 'GET', `/keys/${keyId}/usage`)).status).toBe(200);
    // Reading the audit trail needed dynamodb:Query on it.
    expectError(await t.api(key, 'GET', '/audit-events'), 500, 'INTERNAL_ERROR');
    // A cancel writes its signal item in the same transaction as the state change: refused, nothing changes.
    expect((await t.api(key, 'POST', '/workflows', { slug: 'nap', name: 'Nap', definition: SLEEPY })).status).toBe(201);
    expect((await t.api(key, 'POST', '/workflows/nap/deploy')).status).toBe(200);
    const executionId = (await t.api(key, 'POST', '/workflows/nap/run?async=true', { input: { ms: 2000 } })).body['execution_id'] as string;
    await waitFor('the run to start', async () => ((await t.api(key, 'GET', `/executions/${executionId}`)).body['status'] === 'RUNNING' ? true : undefined));
    expectError(await t.api(key, 'POST', `/executions/${executionId}/cancel`), 500, 'INTERNAL_ERROR');
    const finished = await waitFor('the run to end', async () => {
      const status = (await t.api(key, 'GET', `/executions/${executionId}`)).body['status'];
      return status === 'RUNNING' ? undefined : status;
    });
    expect(finished).toBe('SUCCEEDED');
    // A page with more to come needs a page token, which needed kms:GenerateMac: refused. A page with
    // nothing after it needs none; the keys function kept its grant.
    expect((await t.api(key, 'POST', '/workflows/nap/run', { input: { ms: 1 } })).body['status']).toBe('SUCCEEDED');
    expect(await t.api(key, 'GET', '/executions?limit=2')).toMatchObject({ status: 200, body: { next_token: null } });
    expectError(await t.api(key, 'GET', '/executions?limit=1'), 500, 'INTERNAL_ERROR');
    expect(functionLogs.some((l) => l.startsWith('ExecutionsFunction') && l.includes('AccessDeniedException') && l.includes('kms:GenerateMac'))).toBe(true);
    expect(await t.api(key, 'GET', '/keys?limit=1')).toMatchObject({ status: 200, body: { next_token: expect.any(String) } });

    expect([...new Set(t.stack.iam.refusals().map(shortly))].sort()).toEqual([
      'ExecutionsFunction dynamodb:PutItem DataExecutionsTable',
      'KeysFunction dynamodb:Query DataAuditTable',
    ]);
    for (const r of t.stack.iam.refusals()) {
      expect(r.effect).toBe('implicit-deny');
      expect(r.message).toMatch(/^User: arn:aws:sts::000000000000:assumed-role\/\w+\/\w+ is not authorized to perform: dynamodb:\w+ on resource: arn:aws:dynamodb:us-east-1:000000000000:table\/\S+ because no identity-based policy allows the dynamodb:\w+ action$/);
    }
    // The function got DynamoDB's AccessDeniedException, as it would on AWS.
    expect(functionLogs.some((l) => l.startsWith('KeysFunction') && l.includes('AccessDeniedException') && l.includes('is not authorized to perform: dynamodb:Query'))).toBe(true);
  });

  it('a housekeeping run that may not seal a plaintext secret does the rest, then fails, so that Lambda counts it (once: it is not retried)', async () => {
    const { accountId } = await t.account('business');
    const legacy = 'whsec_bGVnYWN5LXNlY3JldC1mcm9tLWFuLWVhcmxpZXItcmVsZWFzZQ==';
    const accounts = t.stack.state.tables.accounts;
    await t.stack.doc.send(
      new UpdateCommand({ TableName: accounts, Key: { account_id: accountId }, UpdateExpression: 'SET webhook_secret = :s', ExpressionAttributeValues: { ':s': legacy } }),
    );
    const from = functionLogs.length;
    await t.stack.runSchedules();
    const item = (await t.stack.doc.send(new GetCommand({ TableName: accounts, Key: { account_id: accountId }, ConsistentRead: true }))).Item!;
    expect(item['webhook_secret']).toBe(legacy);
    const own = () =>
      functionLogs
        .slice(from)
        .filter((l) => l.startsWith('HousekeepingFunction') && l.includes(' {'))
        .map((l) => JSON.parse(l.slice(l.indexOf(' {') + 1)) as Record<string, unknown>);
    // The run went through every account and says what it could not do, as an error.
    expect(own().filter((l) => l['message'] === 'housekeeping run')).toEqual([
      expect.objectContaining({ level: 'ERROR', seal_failures: 1, sealed_secrets: 0, complete: false }),
    ]);
    // One count of HousekeepingErrors for the run (its metric lines reach the runner on another channel
    // than its log lines, so perhaps after the invocation has ended), and Lambda saw the invocation fail:
    // once, as the function's EventInvokeConfig (MaximumRetryAttempts 0) says, not retried.
    await waitFor('the run’s HousekeepingErrors count', async () => (own().some((l) => 'HousekeepingErrors' in l) ? true : undefined));
    expect(own().filter((l) => 'HousekeepingErrors' in l).map((l) => l['HousekeepingErrors'])).toEqual([1]);
    expect(functionLogs.slice(from).filter((l) => l.startsWith('lambda-api') && l.includes('HousekeepingFunction'))).toEqual([
      expect.stringMatching(/async invocation of HousekeepingSchedule\w* → HousekeepingFunction\w* failed 1 time\(s\); given up .*could not be sealed/),
    ]);
  });
});

describe('a function invocation not granted, and a typo in a table ARN', () => {
  let t: TestStack;
  let prefix: string;
  const progress: string[] = [];
  beforeAll(async () => {
    prefix = uniquePrefix('e2e-iam-typo');
    const cdkOut = assemblyWith((template) => {
      // The workflows function may still invoke the example model, but no longer the worker (async runs).
      const invoke = grantOn(template, 'WorkflowsFunctionRole', 'WorkerFunction', 'lambda:InvokeFunction');
      invoke.Resource = (invoke.Resource as unknown[]).filter((r) => !JSON.stringify(r).includes('WorkerFunction'));
      // The usage grant names its table by a hand-written ARN with a typo.
      grantOn(template, 'KeysFunctionRole', 'DataUsageTable', 'dynamodb:Query').Resource = `${LOCAL}:table/${prefix}-DataUsageTabel`;
    });
    t = await startTestStack('e2e-iam-typo', { cdkOut, tableNamePrefix: prefix, schedules: 'manual', expectIamRefusals: true, onProgress: (l) => progress.push(l) });
  }, 60_000);
  afterAll(() => t?.close());

  it('names the ARN that matches no table at start-up', () => {
    expect(progress).toContainEqual(expect.stringContaining(`${LOCAL}:table/${prefix}-DataUsageTabel names no table of the template`));
  });

  it('refuses the invocation and the typo’d grant, and only those', async () => {
    const { key, keyId } = await t.account('business');
    expectError(await t.api(key, 'GET', `/keys/${keyId}/usage`), 500, 'INTERNAL_ERROR');
    expect((await t.api(key, 'POST', '/workflows', { slug: 'echo', name: 'Echo', definition: { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' } })).status).toBe(201);
    expect((await t.api(key, 'POST', '/workflows/echo/deploy')).status).toBe(200);
    // A sync run needs no other function; the example model's function is still granted.
    expect((await t.api(key, 'POST', '/workflows/echo/run', { input: { a: 1 } })).body['status']).toBe('SUCCEEDED');
    expect((await t.api(key, 'POST', '/models/reverse/run', { input: { text: 'ab' } })).status).toBe(200);
    // An async run is handed to the worker function: no longer allowed.
    const queued = await t.api(key, 'POST', '/workflows/echo/run?async=true', { input: { a: 2 } });
    expect(queued.status).toBeGreaterThanOrEqual(500);
    expect([...new Set(t.stack.iam.refusals().map(shortly))].sort()).toEqual([
      // Its first call on the usage table (the typo'd grant covers Query and UpdateItem) was refused.
      'KeysFunction dynamodb:UpdateItem DataUsageTable',
      'WorkflowsFunction lambda:InvokeFunction WorkerFunction',
    ]);
    const invoke = t.stack.iam.refusals().find((r) => r.action === 'lambda:InvokeFunction')!;
    expect(invoke.message).toMatch(
      /^User: arn:aws:sts::000000000000:assumed-role\/WorkflowsFunctionRole\w+\/WorkflowsFunction\w+ is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:000000000000:function:WorkerFunction\w+ because no identity-based policy allows the lambda:InvokeFunction action$/,
    );
  });
});
