/**
 * A deployer's model (a Lambda function of theirs) may fail with any message and answer any output up to
 * Lambda's 6 MB. What the platform keeps of either is bounded: a run's record must stay within DynamoDB's
 * 400 KB item (a 300 KB message beside a 120 KB input made the final write fail: a 500, the run RUNNING
 * until housekeeping), and a direct model run's answer within what the function may answer.
 * The model is served by a local HTTP server standing in for the Lambda API (the SDK's endpoint variable).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ModelFailedError } from '../lambdas/shared/errors.js';
import { boundedMessage, MAX_ERROR_CHARS, ModelRegistry } from '../lambdas/shared/models/registry.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { ExecutionsRepository } from '../lambdas/shared/repositories/executions.js';
import { WorkflowsRepository } from '../lambdas/shared/repositories/workflows.js';
import { LocalSecretBox } from '../lambdas/shared/secret-box.js';
import { createAccount } from '../lambdas/shared/services/keys.js';
import { cancelExecution, listExecutions } from '../lambdas/shared/services/executions.js';
import { createWorkflow, deployWorkflow, runModel, runWorkflow, type WorkflowDeps } from '../lambdas/shared/services/workflows.js';
import { createTestDb, type TestDb } from './support/dynamodb.js';

let db: TestDb;
let server: Server;
const saved = { ...process.env };

beforeAll(async () => {
  db = await createTestDb('custom-model-limits');
  // The model's answer follows its input: {fail: n} fails with a message of n characters, {big: n} answers
  // n bytes, {hang: ms} answers after ms.
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { input } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input: { fail?: number; big?: number; hang?: number } };
      if (input.hang !== undefined) {
        const timer = setTimeout(() => res.end('{"slept":true}'), input.hang);
        res.on('close', () => clearTimeout(timer));
      } else if (input.fail !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled' });
        res.end(JSON.stringify({ errorType: 'Error', errorMessage: `bad input: ${'E'.repeat(input.fail)}` }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ blob: 'x'.repeat(input.big ?? 0) }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  process.env['AWS_ENDPOINT_URL_LAMBDA'] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env['AWS_REGION'] ??= 'us-east-1';
  process.env['AWS_ACCESS_KEY_ID'] ??= 'local';
  process.env['AWS_SECRET_ACCESS_KEY'] ??= 'local';
});
afterAll(async () => {
  process.env = saved;
  server?.close();
  db?.close();
});

function deps(): WorkflowDeps {
  return {
    workflows: new WorkflowsRepository(db.doc, db.tables.workflows),
    executions: new ExecutionsRepository(db.doc, db.tables.executions, db.tables.accounts),
    accounts: new AccountsRepository(db.doc, db.tables.accounts, new LocalSecretBox(LocalSecretBox.newKey())),
    models: new ModelRegistry([{ id: 'theirs', description: 'a deployer model', input_schema: {}, function_name: 'theirs' }]),
  };
}

/** A business account with workflow `wf` deployed: one step of the deployer's model, on the run's input. */
async function withWorkflow() {
  const d = deps();
  const accountId = `acct_cml_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  await createAccount({ accounts: d.accounts, audit: db.audit }, accountId, 'business');
  const actor = { accountId, principal: { kind: 'key' as const, key_id: 'key_cml' }, workspaces: ['*'] };
  await createWorkflow(d, actor, { slug: 'wf', name: 'wf', definition: { input_schema: {}, steps: [{ id: 'm', model: 'theirs', input: '$.input' }], output: '$.steps.m.output' } });
  await deployWorkflow(d, actor, 'wf');
  return { d, actor, accountId };
}

it('boundedMessage keeps a short message, cuts a long one to MAX_ERROR_CHARS saying so, never inside a surrogate pair', () => {
  expect(boundedMessage('short')).toBe('short');
  const cut = boundedMessage('E'.repeat(300_000));
  expect(cut.length).toBeLessThanOrEqual(MAX_ERROR_CHARS);
  expect(cut).toMatch(/^E+ … \(300,000 characters, cut\)$/);
  for (let shift = 0; shift < 2; shift++) {
    const emoji = boundedMessage('x'.repeat(shift) + '😀'.repeat(1000));
    expect(emoji.length).toBeLessThanOrEqual(MAX_ERROR_CHARS);
    expect(encodeURIComponent(emoji)).toContain('cut'); // throws URIError on a lone surrogate
  }
});

it('a run whose model fails with a 300 KB message beside a 120 KB input ends FAILED, stored, its error cut (a 500 and RUNNING before)', async () => {
  const { d, actor, accountId } = await withWorkflow();
  const { execution } = await runWorkflow(d, actor, 'wf', { input: { fail: 300_000, pad: 'x'.repeat(120_000) } }, { async: false, startAsync: async () => {} });
  expect(execution.status).toBe('FAILED');
  expect(execution.error).toMatch(/^bad input: E+ … \(300,011 characters, cut\)$/);
  const item = (await db.doc.send(new GetCommand({ TableName: db.tables.executions, Key: { account_id: accountId, execution_id: execution.execution_id }, ConsistentRead: true }))).Item;
  expect(item).toMatchObject({ status: 'FAILED', ttl: expect.any(Number), error: execution.error });
}, 60_000);

it('a run cancelled while its step waits for the model stops within a poll or two, CANCELLED (it waited for the model: a cancel freed the async slot while the worker stayed busy)', async () => {
  const { d, actor } = await withWorkflow();
  const running = runWorkflow(d, actor, 'wf', { input: { hang: 15_000 } }, { async: false, startAsync: async () => {} });
  let id: string | undefined;
  while (!id) {
    await new Promise((r) => setTimeout(r, 100));
    id = (await listExecutions({ executions: d.executions }, actor, null, 10)).items[0]?.execution_id;
  }
  await new Promise((r) => setTimeout(r, 300)); // the model is called
  const cancelled = Date.now();
  expect(await cancelExecution({ executions: d.executions }, actor, id)).toMatchObject({ status: 'CANCELLED' });
  const { execution } = await running;
  expect(Date.now() - cancelled).toBeLessThan(5_000);
  expect(execution.status).toBe('CANCELLED');
}, 60_000);

it('a direct run of that model is 422 MODEL_FAILED with the message cut; an output past a step output\'s 256 KiB is 422 saying so', async () => {
  const d = deps();
  const failed = await runModel(d, 'acct_cml_direct', 'theirs', { input: { fail: 300_000 } }).catch((error: unknown) => error);
  expect(failed).toBeInstanceOf(ModelFailedError);
  expect((failed as Error).message.length).toBeLessThanOrEqual(MAX_ERROR_CHARS);
  const big = await runModel(d, 'acct_cml_direct', 'theirs', { input: { big: 1_000_000 } }).catch((error: unknown) => error);
  expect(big).toBeInstanceOf(ModelFailedError);
  expect((big as Error).message).toBe("the output of model theirs is 1000011 bytes, over the limit of 256 KB (a step's output may be as large)");
  await expect(runModel(d, 'acct_cml_direct', 'theirs', { input: { big: 200_000 } })).resolves.toMatchObject({ model: 'theirs', output: { blob: expect.any(String) } });
}, 60_000);
