/**
 * The README's keys, workflows, webhook, retries and audit trail walkthroughs, run as written: every ```sh block
 * between "## Keys walkthrough" and "## Troubleshooting", then those of "## Audit trail", in one bash session
 * against a local stack, with only the base URL, the admin key and the receiver's port filled in. If a command of the README stops working,
 * this fails. The walkthrough uses curl and jq; CI installs jq (.ci/run). Without jq (a developer machine)
 * the test says so and fails, unless KNOUDS_SKIP_README=1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { PROJECT_ROOT } from '../../local-runner/state.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const skip = process.env['KNOUDS_SKIP_README'] === '1';
const hasJq = spawnSync('jq', ['--version']).status === 0;

let t: TestStack;
beforeAll(async () => {
  t = await startTestStack('e2e-readme');
});
afterAll(() => t?.close());

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** The walkthrough's shell blocks, in order. */
function walkthrough(): string[] {
  const readme = readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8');
  const between = (from: string, to: string) => {
    const start = readme.indexOf(from);
    const end = readme.indexOf(to, start);
    if (start < 0 || end < 0) throw new Error(`the README has no section between "${from}" and "${to}"`);
    return [...readme.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  };
  // Through "## Webhook delivery", whose redelivery block continues the workflows walkthrough; then the
  // audit trail of what they did.
  return [...between('## Keys walkthrough', '## Troubleshooting'), ...between('## Audit trail', '## Housekeeping')];
}

it('every command of the keys, workflows and retries walkthroughs works as the README says', async () => {
  if (skip) {
    process.stderr.write('KNOUDS_SKIP_README=1: the README walkthrough was not run\n');
    return;
  }
  if (!hasJq) throw new Error('jq is not installed: the README walkthrough uses it (apt-get install jq), or set KNOUDS_SKIP_README=1');
  const { key: admin } = await t.account('business');
  const port = await freePort();
  const blocks = walkthrough();
  expect(blocks.length).toBeGreaterThanOrEqual(5);
  const script = [
    'set -euo pipefail',
    'cleanup() { kill $(jobs -p) 2>/dev/null || true; }',
    'trap cleanup EXIT',
    ...blocks.map((b) =>
      b
        .replace('API=http://localhost:3000/v1', `API=${t.stack.apiUrl}`)
        .replace(/^ADMIN=knouds_live_….*$/m, `ADMIN=${admin}`)
        .replace(/\b4000\b/g, String(port))
        // The receiver runs in the background of this one session (the README gives it a terminal).
        .replace(/^(WEBHOOK_SECRET=\$SECRET node examples\/webhook-receiver\.mjs \d+)$/m, '$1 > "$RECEIVER_LOG" 2>&1 &\nsleep 1'),
    ),
    'sleep 2',
  ].join('\n');
  expect(script).not.toContain('localhost:3000');
  const receiverLog = path.join(PROJECT_ROOT, 'cdk.out.test', `receiver-${port}.log`);
  const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd: PROJECT_ROOT, env: { ...process.env, RECEIVER_LOG: receiverLog } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
  expect({ code: run.code, tail: run.out.slice(-2000) }).toEqual({ code: 0, tail: expect.any(String) });
  // What the README says the commands print.
  for (const expected of [
    '"code": "CAPABILITY_DENIED"',
    // The old key during its rotation's grace names its replacement.
    '{"replaced_by_new":true,"expires_at":"',
    '"UNAUTHORIZED"',
    // Metadata, an exact expiry, a disabled key refused and enabled again.
    '{"metadata":{"owner":"data-team"},"enabled":true}',
    'disabled: 401',
    'enabled: 200',
    'X-RateLimit-Limit: 10',
    '"definition.output"',
    '"status": "SUCCEEDED"',
    '"HELLO WEBHOOKS"',
    'HTTP/1.1 202 Accepted',
    '"RUNNING"',
    '"CANCELLED"',
    '{"model":"word-count","output":{"count":3}}',
    // Workflow versions: a PUT with If-Match, the same ETag stale, the versions, a rollback run.
    '{"version":2,"deployed_version":1}',
    '"PRECONDITION_FAILED"',
    '[{"version":2,"deployed":true},{"version":1,"deployed":false}]',
    '{"workflow_version":1,"output":{"name":"ada"}}',
    // The cancelled run's webhook: delivered, redelivered (pending), delivered again.
    '"status": "delivered"',
    '"pending"',
    '"attempts": 2',
    // Retries and idempotency: the replay, without the plaintext, and the reused key refused.
    'Idempotent-Replayed: true',
    '"api_key":null}',
    '"IDEMPOTENCY_KEY_REUSED"',
    // The audit trail names what was done, to what and by whom (the admin key: it made the others).
    '{"action":"key.created","target":"key_',
  ]) {
    expect({ expected, found: run.out.includes(expected) }).toEqual({ expected, found: true });
  }
  expect(run.out).toMatch(/^(?:(?:200|429) ){12}$/m);
  // A retried key creation answers the same key_id twice; a retried async run, the same execution twice.
  const created = [...run.out.matchAll(/\{"key_id":"(key_\w+)","api_key":(?:"knouds_live_\w+"|null)\}$/gm)].map((m) => m[1]);
  expect(created).toEqual([created[0], created[0]]);
  expect(run.out).toMatch(/^(exe_\w+)\n\1$/m);
  const receiver = readFileSync(receiverLog, 'utf8');
  expect(receiver).toMatch(/verified execution\.succeeded: exe_\w+ SUCCEEDED/);
  expect(receiver).toMatch(/verified execution\.cancelled: exe_\w+ CANCELLED/);
  // Redelivered: the cancelled run's webhook twice.
  expect(receiver.match(/verified execution\.cancelled/g)).toHaveLength(2);
}, 120_000);
