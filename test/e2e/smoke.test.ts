/**
 * `npm run smoke` (smoke/) against a local stack, run as a user runs it: it passes on a healthy stack,
 * leaves no key or workflow behind, and when a step fails (a wrong key, a key without a capability a
 * step needs, a run stopped half-way) it exits non-zero and still removes what it made.
 */
import { jest } from '@jest/globals';
import { runSmoke, type StepResult } from '../../smoke/smoke.js';
import { runTs, type Finished } from '../support/processes.js';
import { startTestStack, type TestStack } from '../support/stack.js';

jest.setTimeout(120_000);

let t: TestStack;
let admin: string;
let url: string;

beforeAll(async () => {
  t = await startTestStack('smoke');
  ({ key: admin } = await t.account('business'));
  url = t.stack.apiUrl;
});
afterAll(() => t?.close());

/** The account's keys and workflows as the API lists them (ids only: last_used moves). */
async function inventory(): Promise<{ keys: string[]; workflows: string[] }> {
  const keys = await t.api(admin, 'GET', '/keys?limit=100');
  const workflows = await t.api(admin, 'GET', '/workflows?limit=100');
  expect([keys.status, workflows.status]).toEqual([200, 200]);
  const ids = (reply: typeof keys, field: string) => (reply.body['items'] as Record<string, string>[]).map((i) => i[field]!).sort();
  return { keys: ids(keys, 'key_id'), workflows: ids(workflows, 'slug') };
}

/** The audit trail's events for keys named by `runId` (what the smoke's key went through). */
async function keyEvents(runId: string): Promise<string[]> {
  const reply = await t.api(admin, 'GET', '/audit-events?limit=100');
  expect(reply.status).toBe(200);
  const events = reply.body['items'] as { action: string; target: { id: string }; changes: Record<string, { to: unknown }> | null }[];
  const created = events.find((e) => e.action === 'key.created' && e.changes?.['name']?.to === `${runId}-key`);
  if (!created) return [];
  return events.filter((e) => e.target.id === created.target.id).map((e) => e.action).reverse();
}

const smoke = (args: string[], env: Record<string, string | undefined> = {}) =>
  runTs('smoke/run.ts', args, { KNOUDS_API_URL: undefined, KNOUDS_API_KEY: undefined, ...env });

/** Each step's name and result, read from the printed table. */
function table(run: Finished): Record<string, string> {
  const rows = run.stdout.split('\n').map((line) => /^(\S.*?)\s{2,}(PASS|FAIL|SKIP)\s+\d+ ms/.exec(line)).filter((m) => m !== null);
  return Object.fromEntries(rows.map((m) => [m[1]!, m[2]!]));
}

const runIdOf = (run: Finished) => /\((smoke-[0-9a-f]{8})\)$/m.exec(run.stdout)?.[1] ?? '';

/** No plaintext key in what it printed: a key shows as its 16-character display prefix at most. */
function expectNoKeys(run: Finished): void {
  expect(`${run.stdout}${run.stderr}`).not.toMatch(/knouds_(live|test)_[A-Za-z0-9]{5,}/);
}

describe('npm run smoke', () => {
  it('passes against a healthy stack, prints a table with timings, and leaves no key or workflow behind', async () => {
    const before = await inventory();
    const run = await smoke([], { KNOUDS_API_URL: url, KNOUDS_API_KEY: admin });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    expect(table(run)).toEqual({
      health: 'PASS',
      openapi: 'PASS',
      verify: 'PASS',
      'rate-limit headers': 'PASS',
      me: 'PASS',
      'bearer refusal': 'PASS',
      'key: create': 'PASS',
      'key: use': 'PASS',
      'workflow: create': 'PASS',
      'workflow: deploy': 'PASS',
      'workflow: run sync': 'PASS',
      'workflow: run async': 'PASS',
      'workflow: delete': 'PASS',
      'key: revoke': 'PASS',
    });
    expect(run.stdout).toMatch(/^smoke passed: 14 passed, 0 failed, 0 skipped in [\d.]+ s \(smoke-[0-9a-f]{8}\)$/m);
    expectNoKeys(run);
    expect(await inventory()).toEqual(before);
    // It did make and remove them: the key's trail, and the two runs of its workflow.
    const runId = runIdOf(run);
    expect(await keyEvents(runId)).toEqual(['key.created', 'key.revoked']);
    const runs = await t.api(admin, 'GET', `/executions?workflow=${runId}`);
    expect((runs.body['items'] as { status: string }[]).map((e) => e.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
  });

  it('takes --url and --key as flags too, and fails with exit status 1 on a wrong key, making nothing', async () => {
    const before = await inventory();
    const wrong = `${admin.slice(0, -6)}AAAAAA`;
    const run = await smoke(['--url', `${url}/`, '--key', wrong]);
    expect(run.code).toBe(1);
    const steps = table(run);
    expect(steps).toMatchObject({ health: 'PASS', openapi: 'PASS', verify: 'FAIL', 'bearer refusal': 'PASS', 'key: create': 'SKIP', 'workflow: create': 'SKIP' });
    expect(steps).not.toHaveProperty('key: revoke');
    expect(run.stdout).toMatch(/GET \/keys\/verify: expected 200, got 401 UNAUTHORIZED/);
    expect(run.stdout).toMatch(/^smoke FAILED: /m);
    expectNoKeys(run);
    expect(await inventory()).toEqual(before);
  });

  it('still removes its key and workflow when a step fails half-way (a key without execution:read cannot poll its async run)', async () => {
    const { key: partial } = await t.account('business', {
      name: 'no execution:read',
      capabilities: ['keys:read', 'keys:write', 'workflow:read', 'workflow:write', 'workflow:run'],
    });
    const before = await inventory();
    const run = await smoke([], { KNOUDS_API_URL: url, KNOUDS_API_KEY: partial });
    expect(run.code).toBe(1);
    expect(table(run)).toMatchObject({
      'workflow: run sync': 'PASS',
      'workflow: run async': 'FAIL',
      'workflow: delete': 'PASS',
      'key: revoke': 'PASS',
    });
    expect(run.stdout).toMatch(/GET \/executions\/exe_\w+: expected 200, got 403 CAPABILITY_DENIED/);
    expect(run.stdout).not.toMatch(/Left behind/);
    // That key's account is another one: what it made is gone from there.
    const keys = await t.api(partial, 'GET', '/keys?limit=100');
    const workflows = await t.api(partial, 'GET', '/workflows?limit=100');
    expect((keys.body['items'] as { name: string }[]).map((k) => k.name)).toEqual(['no execution:read']);
    expect(workflows.body['items']).toEqual([]);
    expect(await inventory()).toEqual(before);
  });

  it('stopped half-way (Ctrl-C), skips the remaining checks and still cleans up', async () => {
    const before = await inventory();
    const stop = new AbortController();
    const seen: StepResult[] = [];
    const report = await runSmoke({
      url,
      key: admin,
      signal: stop.signal,
      onStep: (r) => {
        seen.push(r);
        if (r.name === 'workflow: deploy') stop.abort();
      },
    });
    expect(report.ok).toBe(false);
    expect(Object.fromEntries(report.results.slice(-4).map((r) => [r.name, r.status]))).toEqual({
      'workflow: run sync': 'skip',
      'workflow: run async': 'skip',
      'workflow: delete': 'pass',
      'key: revoke': 'pass',
    });
    expect(report.leftovers).toEqual([]);
    expect(seen).toEqual(report.results);
    expect(await inventory()).toEqual(before);
  });

  it('exits 2 on bad usage, naming what is wrong', async () => {
    const none = await smoke([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no API URL: give --url or KNOUDS_API_URL/);
    const noKey = await smoke(['--url', url]);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/no API key/);
    const unknown = await smoke(['--url', url, '--key', admin, '--verbose']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--verbose'/);
    const badTimeout = await smoke(['--url', url, '--key', admin, '--timeout', 'soon']);
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toMatch(/--timeout must be whole seconds/);
    expect(`${none.stderr}${noKey.stderr}${unknown.stderr}${badTimeout.stderr}`).not.toContain(admin);
  });
});
