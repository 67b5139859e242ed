/**
 * No secret in any log: an end-to-end run through every kind of route that handles a secret (key
 * creation and rotation return plaintext keys; the webhook secret is read, rotated and used to sign
 * deliveries; failing runs and refused keys log errors), with the functions at LOG_LEVEL=debug, every
 * function log line and access-log entry captured. None may hold a plaintext key, a key's SHA-256, a
 * webhook secret (whole or its base64 body) or a sealed secret.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { SECRET_ATTRIBUTE } from '../../lambdas/shared/repositories/accounts.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
const lines: string[] = [];
let receiver: Server;
let hookUrl: string;
let deliveries = 0;

beforeAll(async () => {
  t = await startTestStack('e2e-log-secrets', {
    functionEnv: { LOG_LEVEL: 'debug' },
    onFunctionLog: (fn, line) => lines.push(`${fn} ${line}`),
    onAccessLog: (entry) => lines.push(JSON.stringify(entry)),
  });
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      deliveries++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
});
afterAll(async () => {
  receiver?.close();
  await t?.close();
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

it('an end-to-end run through every secret-handling route logs no key, hash or webhook secret', async () => {
  const { accountId, key: admin } = await t.account('business');
  const secrets: string[] = [admin];

  const created = await t.api(admin, 'POST', '/keys', { name: 'made', scope: 'admin' });
  expect(created.status).toBe(201);
  const made = String(created.body['api_key']);
  secrets.push(made);
  const rotated = await t.api(admin, 'POST', `/keys/${String(created.body['key_id'])}/rotate`, { grace_period_seconds: 60 });
  expect(rotated.status).toBe(201);
  secrets.push(String(rotated.body['api_key']));
  for (const k of [made, String(rotated.body['api_key'])]) expect((await t.api(k, 'GET', '/keys/verify')).status).toBe(200);
  await t.api(admin, 'PATCH', `/keys/${String(rotated.body['key_id'])}`, { name: 'renamed' });
  await t.api(admin, 'GET', '/keys');
  // Refused keys: a mistyped one and a revoked one.
  await t.api(`${admin.slice(0, -1)}${admin.endsWith('a') ? 'b' : 'a'}`, 'GET', '/keys/verify');
  expect((await t.api(admin, 'DELETE', `/keys/${String(rotated.body['key_id'])}`)).status).toBe(204);
  expect((await t.api(String(rotated.body['api_key']), 'GET', '/keys/verify')).status).toBe(401);

  const first = String((await t.api(admin, 'GET', '/webhooks/secret')).body['secret']);
  const second = String((await t.api(admin, 'POST', '/webhooks/secret/rotate')).body['secret']);
  secrets.push(first, second, first.slice('whsec_'.length), second.slice('whsec_'.length));
  const account = (await t.stack.doc.send(new GetCommand({ TableName: t.stack.state.tables.accounts, Key: { account_id: accountId } }))).Item!;
  secrets.push(String(account[SECRET_ATTRIBUTE]));

  const definition = { input_schema: {}, steps: [{ id: 'f', model: 'fail', input: { message: '$.input.why' } }], output: '$.steps.f.output' };
  await t.api(admin, 'POST', '/workflows', { slug: 'failing', name: 'f', definition });
  await t.api(admin, 'POST', '/workflows/failing/deploy');
  await t.api(admin, 'POST', '/workflows/failing/run', { input: { why: 'no' } });
  const queued = await t.api(admin, 'POST', '/workflows/failing/run?async=true', { input: { why: 'later' }, webhook_url: hookUrl });
  expect(queued.status).toBe(202);
  const deadline = Date.now() + 15_000;
  while (deliveries < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(deliveries).toBe(1);

  // The capture is not empty, and it saw the requests (by their ids) and the webhook.
  const all = lines.join('\n');
  expect(lines.length).toBeGreaterThan(30);
  expect(all).toContain(String(created.body['key_id']));
  expect(all).toMatch(/webhook/i);
  for (const secret of secrets) {
    expect({ secret: secret.slice(0, 12), found: all.includes(secret) }).toEqual({ secret: secret.slice(0, 12), found: false });
  }
  for (const key of secrets.filter((s) => s.startsWith('knouds_'))) {
    expect(all.includes(sha256(key))).toBe(false);
    // Not even the key's random body without its prefix.
    expect(all.includes(key.split('_')[2]!)).toBe(false);
  }
  expect(all).not.toMatch(/[0-9a-f]{64}/);
});
