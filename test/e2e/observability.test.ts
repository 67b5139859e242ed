/**
 * Logs and metrics as an on-call engineer reads them, from an end-to-end run with every function log
 * line captured: one JSON line per request (request id, route, status, latency, key id, account, and
 * never the key), and embedded-metric-format lines for authorizer decisions by reason, 429s, executions
 * by terminal status and webhook deliveries.
 */
import { createServer, type Server } from 'node:http';
import { createKey } from '../../lambdas/shared/services/keys.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
const lines: { fn: string; json: Record<string, unknown> }[] = [];
let receiver: Server;
let hookUrl: string;

beforeAll(async () => {
  t = await startTestStack('e2e-observability', {
    onFunctionLog: (fn, line) => {
      try {
        lines.push({ fn, json: JSON.parse(line) as Record<string, unknown> });
      } catch {
        lines.push({ fn, json: { unparsed: line } });
      }
    },
  });
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
});
afterAll(async () => {
  receiver?.close();
  await t?.close();
});

/** The EMF lines for one metric: `{_aws: {CloudWatchMetrics: [{Metrics: [{Name}]}]}, <dimension>: …}`. */
const metricLines = (name: string) =>
  lines
    .map((l) => l.json)
    .filter((j) => JSON.stringify((j['_aws'] as { CloudWatchMetrics?: unknown } | undefined)?.CloudWatchMetrics ?? []).includes(`"Name":"${name}"`));

async function eventually(check: () => boolean) {
  const deadline = Date.now() + 10_000;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

it('logs one JSON line per request, with its id, route, status, latency, key and account, never the key', async () => {
  const { key, keyId, accountId } = await t.account('business');
  const reply = await t.api(key, 'GET', '/keys/verify');
  const requestId = reply.headers.get('x-amzn-requestid');
  await t.api(key, 'GET', '/keys/key_nope');
  await eventually(() => lines.filter((l) => l.json['message'] === 'request').length >= 2);
  const requests = lines.filter((l) => l.json['message'] === 'request').map((l) => l.json);
  expect(requests).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ level: 'INFO', service: 'knouds-api', request_id: requestId, route: 'GET /keys/verify', status: 200, latency_ms: expect.any(Number), key_id: keyId, account_id: accountId }),
      expect.objectContaining({ route: 'GET /keys/{key_id}', status: 404, key_id: keyId }),
    ]),
  );
  expect(requests.filter((r) => r['request_id'] === requestId)).toHaveLength(1);
  expect(JSON.stringify(lines)).not.toContain(key);
});

it('publishes authorizer decisions by reason, 429s, executions by terminal status and webhook deliveries', async () => {
  const { accountId, key } = await t.account('business');
  const limited = (await createKey(t.deps(), accountId, { name: 'test', scope: 'admin', environment: 'test' })).apiKey;
  await t.api('knouds_live_nonsense', 'GET', '/keys/verify');
  for (let i = 0; i < 11; i++) await t.api(limited, 'GET', '/keys/verify');
  const definition = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
  await t.api(key, 'POST', '/workflows', { slug: 'echo', name: 'e', definition });
  await t.api(key, 'POST', '/workflows/echo/deploy');
  await t.api(key, 'POST', '/workflows/echo/run', { input: 1 });
  await t.api(key, 'POST', '/workflows/echo/run?async=true', { input: 2, webhook_url: hookUrl });
  await eventually(() => metricLines('WebhookDeliveries').length > 0);

  const reasons = metricLines('AuthorizerDecisions').map((j) => j['reason']);
  expect(reasons).toEqual(expect.arrayContaining(['allowed', 'malformed']));
  expect(metricLines('RateLimited').length).toBeGreaterThanOrEqual(1);
  expect(metricLines('ExecutionsFinished').map((j) => j['status'])).toEqual(expect.arrayContaining(['SUCCEEDED']));
  expect(metricLines('WebhookDeliveries')).toHaveLength(1);
  // Every metric line carries the namespace and the service dimension the alarms read.
  const sample = metricLines('RateLimited')[0]!;
  expect(sample).toMatchObject({ service: 'knouds-api', RateLimited: 1 });
  expect(JSON.stringify(sample['_aws'])).toMatch(/"Namespace":"Knouds\/KnoudsApi"/);
});
