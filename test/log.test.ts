/**
 * The functions' logs (Powertools Logger) as the stack's props configure them: the level, and debug
 * sampling redrawn per invocation (not once per cold start).
 */
import { runTs } from './support/processes.js';

const run = async (env: Record<string, string>) => {
  const result = await runTs('test/support/log-fixture.ts', [], { AWS_LAMBDA_FUNCTION_NAME: 'fixture', LOG_LEVEL: '', ...env });
  expect(result.code).toBe(0);
  return result.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
};

it('logs JSON at INFO by default: no debug lines, service and level on each line', async () => {
  const lines = await run({ POWERTOOLS_LOG_LEVEL: 'INFO' });
  expect(lines.map((l) => l['message'])).toEqual(['request', 'request', 'request']);
  expect(lines[0]).toMatchObject({ level: 'INFO', service: 'knouds-api', i: 0, key_id: 'key_x', timestamp: expect.any(String) });
});

it('a sample rate of 1 logs every invocation at DEBUG, a rate of 0 none', async () => {
  const all = await run({ POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_LOGGER_SAMPLE_RATE: '1' });
  expect(all.filter((l) => l['message'] === 'debug line').map((l) => l['i'])).toEqual([0, 1, 2]);
  const none = await run({ POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_LOGGER_SAMPLE_RATE: '0' });
  expect(none.filter((l) => l['message'] === 'debug line')).toEqual([]);
});

it('POWERTOOLS_LOG_LEVEL=WARN drops the request lines', async () => {
  expect(await run({ POWERTOOLS_LOG_LEVEL: 'WARN' })).toEqual([]);
});

it('publishes each count as one EMF line with only its own dimension, also after a count that was refused', async () => {
  const result = await runTs('test/support/metrics-fixture.ts', [], { AWS_LAMBDA_FUNCTION_NAME: 'fixture', POWERTOOLS_METRICS_NAMESPACE: 'Test' });
  expect(result.code).toBe(0);
  expect(result.stderr).toContain('refused: many is not a valid number');
  const lines = result.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] } });
  const shape = lines.map((l) => {
    const [directive] = l._aws.CloudWatchMetrics;
    const name = directive!.Metrics.map((m) => m.Name).join(',');
    return { name, dimensions: directive!.Dimensions, value: l[name], reason: l['reason'], status: l['status'] };
  });
  expect(shape).toEqual([
    { name: 'AuthorizerDecisions', dimensions: [['service', 'reason']], value: 1, reason: 'allowed', status: undefined },
    { name: 'ServerErrors', dimensions: [['service']], value: 1, reason: undefined, status: undefined },
    { name: 'RateLimited', dimensions: [['service']], value: 1, reason: undefined, status: undefined },
    { name: 'ExecutionsFinished', dimensions: [['service', 'status']], value: 2, reason: undefined, status: 'SUCCEEDED' },
  ]);
});
