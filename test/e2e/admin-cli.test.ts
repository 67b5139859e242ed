/**
 * The admin CLI as a user runs it (`npm run --silent admin -- …`), against a running local stack found
 * through its state file, with the keys it creates then used over HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLocalStack, type LocalStack } from '../../local-runner/stack.js';
import { testEndpoint, uniquePrefix } from '../support/dynamodb.js';
import { call } from '../support/http.js';
import { TEST_CDK_OUT } from '../support/paths.js';
import { runTs } from '../support/processes.js';

let stack: LocalStack;
let dir: string;
let stateFile: string;

const admin = (...args: string[]) => runTs('admin-cli/main.ts', args, { KNOUDS_STATE_FILE: stateFile });
const adminJson = async (...args: string[]) => {
  const result = await admin(...args, '--json');
  // One JSON object and nothing else.
  expect(result.stdout.trim().split('\n')).toHaveLength(1);
  return { code: result.code, body: JSON.parse(result.stdout) as Record<string, unknown> };
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'knouds-admin-'));
  stateFile = path.join(dir, 'state.json');
  stack = await startLocalStack({
    port: 0,
    cdkOut: TEST_CDK_OUT,
    skipSynth: true,
    dynamodbEndpoint: testEndpoint(),
    tableNamePrefix: uniquePrefix('e2e-admin'),
    seed: false,
    stateFile,
  });
});

afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('admin CLI against the local stack', () => {
  it('creates an account, a key that works over HTTP, lists it and revokes it', async () => {
    expect(await adminJson('account', 'create', '--id', 'acct_cli', '--tier', 'business')).toEqual({
      code: 0,
      body: { account_id: 'acct_cli', tier: 'business', created_at: expect.any(String) },
    });
    const created = await adminJson(
      'key', 'create', '--account', 'acct_cli', '--name', 'deploy bot', '--preset', 'workflow-deploy',
      '--workspace', 'ws-a', '--workspace', 'ws-b', '--expires-in-days', '90', '--test',
    );
    expect(created.code).toBe(0);
    expect(created.body).toEqual({
      key_id: expect.stringMatching(/^key_/),
      api_key: expect.stringMatching(/^knouds_test_/),
      name: 'deploy bot',
      account_id: 'acct_cli',
      workspaces: ['ws-a', 'ws-b'],
      capabilities: ['workflow:read', 'workflow:run'],
      environment: 'test',
      created_at: expect.any(String),
      expires_at: expect.any(String),
    });
    const apiKey = String(created.body['api_key']);
    const verified = await call(`${stack.apiUrl}/keys/verify`, { headers: { 'x-api-key': apiKey } });
    expect(verified.status).toBe(200);
    expect(verified.body).toMatchObject({ key_id: created.body['key_id'], workspaces: ['ws-a', 'ws-b'] });

    const listed = await adminJson('key', 'list', '--account', 'acct_cli');
    expect(listed.body['items']).toEqual([expect.objectContaining({ key_id: created.body['key_id'], prefix: apiKey.slice(0, 16) })]);
    // The plaintext is shown once, never again.
    expect(JSON.stringify(listed.body)).not.toContain(apiKey);

    const revoked = await adminJson('key', 'revoke', String(created.body['key_id']));
    expect(revoked).toEqual({ code: 0, body: { key_id: created.body['key_id'], account_id: 'acct_cli', revoked: true } });
    expect((await call(`${stack.apiUrl}/keys/verify`, { headers: { 'x-api-key': apiKey } })).status).toBe(401);
    expect((await adminJson('key', 'list', '--account', 'acct_cli')).body['items']).toEqual([]);
  });

  it('applies the tier ceiling and set-tier, with the contract error codes and exit code 1', async () => {
    await adminJson('account', 'create', '--id', 'acct_cli_pro', '--tier', 'pro');
    const denied = await adminJson('key', 'create', '--account', 'acct_cli_pro', '--name', 'x', '--scope', 'admin');
    expect(denied).toEqual({
      code: 1,
      body: { error: expect.any(String), code: 'TIER_CEILING_EXCEEDED', tier: 'pro', capability: 'model:run' },
    });
    expect(await adminJson('account', 'set-tier', '--id', 'acct_cli_pro', '--tier', 'enterprise')).toEqual({
      code: 0,
      body: { account_id: 'acct_cli_pro', tier: 'enterprise', keys_updated: 0 },
    });
    expect((await adminJson('key', 'create', '--account', 'acct_cli_pro', '--name', 'x', '--scope', 'admin')).code).toBe(0);
    expect(await adminJson('account', 'set-tier', '--id', 'acct_cli_pro', '--tier', 'business')).toEqual({
      code: 0,
      body: { account_id: 'acct_cli_pro', tier: 'business', keys_updated: 1 },
    });
    expect((await adminJson('account', 'create', '--id', 'acct_cli_pro', '--tier', 'pro')).body['code']).toBe('ALREADY_EXISTS');
  });

  it('applies the key limit', async () => {
    await adminJson('account', 'create', '--id', 'acct_cli_full', '--tier', 'pro');
    for (let i = 0; i < 10; i++) {
      expect((await adminJson('key', 'create', '--account', 'acct_cli_full', '--name', `k${i}`, '--preset', 'read-only')).code).toBe(0);
    }
    const eleventh = await adminJson('key', 'create', '--account', 'acct_cli_full', '--name', 'k10', '--preset', 'read-only');
    expect(eleventh).toEqual({ code: 1, body: { error: expect.any(String), code: 'KEY_LIMIT_REACHED' } });
  }, 120_000); // twelve CLI processes, one after the other: seconds each on a loaded 2-core machine

  it('names the bad flag and value', async () => {
    const badTier = await admin('account', 'create', '--id', 'acct_x', '--tier', 'gold');
    expect(badTier.code).toBe(2);
    expect(badTier.stderr).toMatch(/--tier 'gold'/);
    const badDays = await adminJson('key', 'create', '--account', 'acct_cli', '--name', 'x', '--preset', 'read-only', '--expires-in-days', '5');
    expect(badDays.code).toBe(1);
    expect(badDays.body).toMatchObject({ code: 'VALIDATION_ERROR', error: expect.stringMatching(/^--expires-in-days/) });
    const two = await adminJson('key', 'create', '--account', 'acct_cli', '--name', 'x', '--preset', 'read-only', '--scope', 'free');
    expect(two.body['code']).toBe('VALIDATION_ERROR');
    const unknown = await admin('key', 'create', '--acount', 'acct_cli');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--acount/);
  });

  it('says how to start a stack when none runs', async () => {
    const result = await runTs('admin-cli/main.ts', ['key', 'list', '--account', 'acct_cli'], {
      KNOUDS_STATE_FILE: path.join(dir, 'missing.json'),
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/npm start/);
  });

  it('names a bad flag before looking for a stack (exit 2, even with none running)', async () => {
    const none = { KNOUDS_STATE_FILE: path.join(dir, 'missing.json') };
    const badTier = await runTs('admin-cli/main.ts', ['account', 'create', '--id', 'acct_x', '--tier', 'gold', '--json'], none);
    expect(badTier.code).toBe(2);
    expect(JSON.parse(badTier.stdout)).toEqual({ error: expect.stringMatching(/^--tier 'gold' is not a tier/), code: 'USAGE' });
    const badId = await runTs('admin-cli/main.ts', ['key', 'list', '--account', 'not an id'], none);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toMatch(/--account 'not an id'/);
  });

  it('has help for every command, with the exit codes', async () => {
    const top = await admin('--help');
    expect(top.code).toBe(0);
    for (const command of ['account create', 'account set-tier', 'key create', 'key revoke', 'key list']) {
      expect(top.stdout).toContain(command);
      const help = await admin(...command.split(' '), '--help');
      expect({ command, code: help.code }).toEqual({ command, code: 0 });
      expect(help.stdout).toMatch(new RegExp(`^Usage: npm run --silent admin -- ${command}`));
      expect(help.stdout).toMatch(/Exit codes: 0 done, 1 refused, 2 bad usage, 3 no stack/);
    }
  });
});
