/**
 * Page tokens (lambdas/shared/page-tokens.ts): only a token the API wrote, for this account, is a
 * position; the MAC key is derived from the environment as the module says. The KMS path runs against a
 * small HTTP endpoint that answers GenerateMac as KMS does (no KMS runs here); it checks the request the
 * function makes and that a failed derivation is tried again, a successful one never. A workflow's version
 * list (against DynamoDB Local) takes only tokens of the workflow it lists, not of an earlier one of its slug.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValidationError } from '../lambdas/shared/errors.js';
import { ModelRegistry } from '../lambdas/shared/models/registry.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { ExecutionsRepository } from '../lambdas/shared/repositories/executions.js';
import { WorkflowsRepository } from '../lambdas/shared/repositories/workflows.js';
import { createWorkflow, deleteWorkflow, listWorkflowVersions, updateWorkflow, type WorkflowDeps } from '../lambdas/shared/services/workflows.js';
import {
  decodePageToken,
  encodePageToken,
  LOCAL_PAGE_TOKEN_ALLOWED_ENV,
  LOCAL_PAGE_TOKEN_KEY_ENV,
  PAGE_TOKEN_KEY_ARN_ENV,
  PAGE_TOKEN_KEY_LABEL,
  pageTokenKeyFromEnv,
  resetPageTokenKey,
} from '../lambdas/shared/page-tokens.js';
import { createTestDb, type TestDb } from './support/dynamodb.js';

const FIELDS = { k: /^key_[0-9A-Za-z]{20}$/ };
const POSITION = { k: 'key_AAAAAAAAAAAAAAAAAAAA' };
const saved = { ...process.env };

function restoreEnv(): void {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
  resetPageTokenKey();
}

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal');
}

describe('page tokens', () => {
  beforeEach(() => {
    restoreEnv();
    process.env[LOCAL_PAGE_TOKEN_KEY_ENV] = randomBytes(32).toString('base64');
  });
  afterAll(restoreEnv);

  it('give back the position they name, to the list and the account they were issued for', async () => {
    const token = await encodePageToken('keys', 'acct_a', POSITION);
    expect(await decodePageToken('keys', token, 'acct_a', FIELDS)).toEqual(POSITION);
    expect(await refusal(decodePageToken('keys', token, 'acct_b', FIELDS))).toBeInstanceOf(ValidationError);
    // Another list whose fields have the same names and shapes: still not its token.
    expect(await refusal(decodePageToken('workflows', token, 'acct_a', FIELDS))).toBeInstanceOf(ValidationError);
  });

  it('refuse every token the key did not sign: unsigned, altered, signed with another key, or of another deployment', async () => {
    const token = await encodePageToken('keys', 'acct_a', POSITION);
    const [body, mac] = token.split('.') as [string, string];
    const other = Buffer.from(JSON.stringify({ k: 'key_BBBBBBBBBBBBBBBBBBBB', a: 'acct_a', l: 'keys' })).toString('base64url');
    const forgeries = [
      body,
      `${other}.${mac}`,
      `${body}.${createHmac('sha256', randomBytes(32)).update(body).digest('base64url')}`,
      `${body}.${mac}.${mac}`,
      `${body}.${mac.slice(0, -1)}`,
      `${body}.${mac}=`,
      `.${mac}`,
      '',
      'x'.repeat(3000),
    ];
    for (const forged of forgeries) {
      const error = await refusal(decodePageToken('keys', forged, 'acct_a', FIELDS));
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).details).toEqual([{ field: 'next_token', message: 'is not a valid page token' }]);
    }
    // Another deployment (another key) does not take this one's tokens.
    process.env[LOCAL_PAGE_TOKEN_KEY_ENV] = randomBytes(32).toString('base64');
    resetPageTokenKey();
    expect(await refusal(decodePageToken('keys', token, 'acct_a', FIELDS))).toBeInstanceOf(ValidationError);
  });

  it('cannot be written with a position that would hide the account or the list', async () => {
    for (const position of [{ a: 'acct_b' }, { l: 'models' }] as Record<string, string>[]) {
      expect(await refusal(encodePageToken('keys', 'acct_a', position))).toMatchObject({ message: expect.stringContaining('may not name the fields a and l') });
    }
  });

  it('still check the shape of a signed position', async () => {
    const token = await encodePageToken('keys', 'acct_a', { k: 'not a key id' });
    expect(await refusal(decodePageToken('keys', token, 'acct_a', FIELDS))).toBeInstanceOf(ValidationError);
  });
});

describe('the page token key', () => {
  afterEach(restoreEnv);

  it('is the same in every container given the same local key material, as GenerateMac over the label would be', async () => {
    const material = randomBytes(32);
    const env = { [LOCAL_PAGE_TOKEN_KEY_ENV]: material.toString('base64') };
    const expected = createHmac('sha256', material).update(PAGE_TOKEN_KEY_LABEL).digest();
    expect(await pageTokenKeyFromEnv(env)).toEqual(expected);
    expect(await pageTokenKeyFromEnv({ ...env })).toEqual(expected);
  });

  it('is refused as KMS would refuse it when the runner says the role does not allow kms:GenerateMac', async () => {
    const env = { [LOCAL_PAGE_TOKEN_KEY_ENV]: randomBytes(32).toString('base64'), [LOCAL_PAGE_TOKEN_ALLOWED_ENV]: 'false' };
    const error = await refusal(pageTokenKeyFromEnv(env));
    expect(error).toMatchObject({ name: 'AccessDeniedException', message: expect.stringContaining('kms:GenerateMac') });
    // A function so refused answers a list with a token 500, never a token of a key of its own.
    Object.assign(process.env, env);
    resetPageTokenKey();
    expect(await refusal(encodePageToken('keys', 'acct_a', POSITION))).toMatchObject({ name: 'AccessDeniedException' });
  });

  it('needs 32 bytes of local key material', async () => {
    expect(await refusal(pageTokenKeyFromEnv({ [LOCAL_PAGE_TOKEN_KEY_ENV]: randomBytes(16).toString('base64') }))).toMatchObject({
      message: expect.stringContaining('32 bytes'),
    });
  });

  it('is random for a process given neither (the admin CLI pages within one process)', async () => {
    const a = await pageTokenKeyFromEnv({});
    const b = await pageTokenKeyFromEnv({});
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(false);
  });

  it('is refused to a Lambda function given neither: each container would refuse the others’ tokens', async () => {
    expect(await refusal(pageTokenKeyFromEnv({ AWS_LAMBDA_FUNCTION_NAME: 'KeysFunction' }))).toMatchObject({ message: expect.stringContaining(PAGE_TOKEN_KEY_ARN_ENV) });
    delete process.env[LOCAL_PAGE_TOKEN_KEY_ENV];
    process.env['AWS_LAMBDA_FUNCTION_NAME'] = 'KeysFunction';
    resetPageTokenKey();
    const error = await refusal(encodePageToken('keys', 'acct_a', POSITION));
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ValidationError);
  });

  describe('deployed: GenerateMac of the stack’s HMAC key over the label', () => {
    const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/0b9a7f1e-0000-4000-8000-000000000000';
    const material = randomBytes(32);
    let server: Server;
    let requests: { target: string; body: Record<string, unknown> }[];
    let failNext: number;

    beforeAll(async () => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          requests.push({ target: String(req.headers['x-amz-target']), body });
          res.setHeader('content-type', 'application/x-amz-json-1.1');
          if (failNext > 0) {
            failNext--;
            res.statusCode = 400;
            res.end(JSON.stringify({ __type: 'AccessDeniedException', message: 'not allowed' }));
            return;
          }
          const mac = createHmac('sha256', material).update(Buffer.from(String(body['Message']), 'base64')).digest('base64');
          res.end(JSON.stringify({ KeyId: keyArn, MacAlgorithm: body['MacAlgorithm'], Mac: mac }));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
    beforeEach(() => {
      requests = [];
      failNext = 0;
      delete process.env[LOCAL_PAGE_TOKEN_KEY_ENV];
      Object.assign(process.env, {
        [PAGE_TOKEN_KEY_ARN_ENV]: keyArn,
        AWS_ENDPOINT_URL_KMS: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'secret',
      });
      resetPageTokenKey();
    });

    it('asks once per container, with the key, HMAC_SHA_256 and the label, and signs with the MAC', async () => {
      const tokens = await Promise.all(Array.from({ length: 5 }, (_, i) => encodePageToken('keys', 'acct_a', { k: `key_${String(i).repeat(20)}` })));
      expect(requests).toEqual([
        {
          target: 'TrentService.GenerateMac',
          body: { KeyId: keyArn, MacAlgorithm: 'HMAC_SHA_256', Message: Buffer.from(PAGE_TOKEN_KEY_LABEL).toString('base64') },
        },
      ]);
      const key = createHmac('sha256', material).update(PAGE_TOKEN_KEY_LABEL).digest();
      const [body, mac] = tokens[0]!.split('.') as [string, string];
      expect(mac).toBe(createHmac('sha256', key).update(body).digest('base64url'));
      // Another container (the same key in KMS) takes this one's tokens.
      resetPageTokenKey();
      expect(await decodePageToken('keys', tokens[0]!, 'acct_a', FIELDS)).toEqual({ k: 'key_00000000000000000000' });
      expect(requests).toHaveLength(2);
    });

    it('a refusal is a failure of that request (never a 400), and the next request asks again', async () => {
      failNext = 1;
      const error = await refusal(encodePageToken('keys', 'acct_a', POSITION));
      expect(error).not.toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ name: 'AccessDeniedException' });
      const token = await encodePageToken('keys', 'acct_a', POSITION);
      expect(await decodePageToken('keys', token, 'acct_a', FIELDS)).toEqual(POSITION);
      expect(requests).toHaveLength(2);
    });

    it('a token that cannot be one is 400 without asking KMS (an outage does not turn garbage into a 500)', async () => {
      failNext = 1;
      for (const garbage of ['garbage', 'a.b', `x.${'A'.repeat(43)}.y`]) {
        expect(await refusal(decodePageToken('keys', garbage, 'acct_a', FIELDS))).toBeInstanceOf(ValidationError);
      }
      expect(requests).toEqual([]);
    });
  });
});

describe('a workflow’s version list', () => {
  let db: TestDb;
  beforeAll(async () => {
    restoreEnv();
    process.env[LOCAL_PAGE_TOKEN_KEY_ENV] = randomBytes(32).toString('base64');
    db = await createTestDb('page-tokens');
  });
  afterAll(() => {
    db?.close();
    restoreEnv();
  });

  const actor = { accountId: 'acct_versions', principal: { kind: 'key' as const, key_id: 'key_a' }, workspaces: ['*'] };
  const definition = (input: number) => ({ input_schema: {}, steps: [{ id: 'e', model: 'echo', input }], output: '$.steps.e.output' });
  /** The workflow `wf` with three versions, created at `at` (which its `created_at` records). */
  async function threeVersions(at: string): Promise<WorkflowDeps> {
    const deps: WorkflowDeps = {
      workflows: new WorkflowsRepository(db.doc, db.tables.workflows),
      executions: new ExecutionsRepository(db.doc, db.tables.executions),
      accounts: new AccountsRepository(db.doc, db.tables.accounts),
      models: new ModelRegistry(),
      now: () => new Date(at),
    };
    await createWorkflow(deps, actor, { slug: 'wf', name: 'wf', definition: definition(1) });
    for (const input of [2, 3]) await updateWorkflow(deps, actor, 'wf', { name: 'wf', definition: definition(input) });
    return deps;
  }

  it('refuses a token of a workflow since deleted and created again under its slug (400 naming next_token), never resuming inside the new one', async () => {
    const deps = await threeVersions('2026-03-01T10:00:00.000Z');
    const first = await listWorkflowVersions(deps, actor, 'wf', 1);
    expect(first.items.map((v) => v.version)).toEqual([3]);
    // The same workflow resumes where its token says.
    expect((await listWorkflowVersions(deps, actor, 'wf', 1, first.next_token!)).items.map((v) => v.version)).toEqual([2]);
    await deleteWorkflow(deps, actor, 'wf');
    const again = await threeVersions('2026-03-01T11:00:00.000Z');
    const error = await refusal(listWorkflowVersions(again, actor, 'wf', 1, first.next_token!));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).details).toEqual([{ field: 'next_token', message: expect.stringContaining('is not a valid page token') }]);
    // The new workflow's own tokens page through it.
    const own = await listWorkflowVersions(again, actor, 'wf', 1);
    expect((await listWorkflowVersions(again, actor, 'wf', 1, own.next_token!)).items.map((v) => v.version)).toEqual([2]);
  });
});
