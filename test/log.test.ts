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
