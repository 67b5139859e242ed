/**
 * examples/webhook-receiver.mjs, the receiver the README's walkthrough runs: a webhook whose body is large
 * and not ASCII arrives in several chunks, and a character split between two must not break the
 * signature (it did: each chunk was decoded apart, and a 280 KB body of 'é€日本語' was refused 401).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { PROJECT_ROOT } from '../local-runner/state.js';
import { ALLOW_LOOPBACK_ENV, deliverWebhook } from '../lambdas/shared/webhooks.js';

const SECRET = 'whsec_' + Buffer.alloc(24, 7).toString('base64');
let receiver: ChildProcess | undefined;
let url = '';

beforeAll(async () => {
  process.env[ALLOW_LOOPBACK_ENV] = 'true';
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as { port: number };
  await new Promise((r) => probe.close(r));
  receiver = spawn(process.execPath, [path.join(PROJECT_ROOT, 'examples/webhook-receiver.mjs'), String(port)], { env: { ...process.env, WEBHOOK_SECRET: SECRET } });
  await new Promise<void>((resolve, reject) => {
    receiver!.stdout!.on('data', (c: Buffer) => c.toString().includes('webhook receiver on') && resolve());
    receiver!.once('exit', (code) => reject(new Error(`the receiver exited (${code})`)));
  });
  url = `http://127.0.0.1:${port}/hooks`;
});
afterAll(() => {
  delete process.env[ALLOW_LOOPBACK_ENV];
  receiver?.kill();
});

it('verifies a large webhook whose characters are split between chunks (401 before), and still refuses a wrong secret', async () => {
  const body = JSON.stringify({ type: 'execution.succeeded', timestamp: new Date().toISOString(), data: { execution_id: 'exe_x', status: 'SUCCEEDED', output: 'é€日本語'.repeat(40_000) } });
  expect(Buffer.byteLength(body)).toBeGreaterThan(280_000);
  expect(await deliverWebhook(url, [SECRET], 'msg_big', body)).toEqual({ delivered: true, status: 204 });
  const other = 'whsec_' + Buffer.alloc(24, 8).toString('base64');
  expect(await deliverWebhook(url, [other], 'msg_wrong', body)).toMatchObject({ delivered: false, status: 401 });
});
