/**
 * The admin CLI as a user runs it (`npm run --silent admin -- …`), against a running local stack found
 * through its state file, with the keys it creates then used over HTTP.
 */
import { jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CONSOLE_CLIENT_ID } from '../../local-runner/oidc/index.js';
import { startLocalStack, type LocalStack } from '../../local-runner/stack.js';
import { testEndpoint, uniquePrefix } from '../support/dynamodb.js';
import { call, expectError, type Reply } from '../support/http.js';
import { signIn } from '../support/oidc.js';
import { TEST_CDK_OUT } from '../support/paths.js';
import { runTs } from '../support/processes.js';

// Each command is a process of its own (tsx): a test running a dozen takes long on a loaded machine.
jest.setTimeout(120_000);

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
      metadata: {},
      enabled: true,
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

  it('applies the tier ceiling and set-tier, with the contract error codes and exit codes 5 (refused) and 4 (conflict)', async () => {
    await adminJson('account', 'create', '--id', 'acct_cli_pro', '--tier', 'pro');
    const denied = await adminJson('key', 'create', '--account', 'acct_cli_pro', '--name', 'x', '--scope', 'admin');
    expect(denied).toEqual({
      code: 5,
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
    expect(await adminJson('account', 'create', '--id', 'acct_cli_pro', '--tier', 'pro')).toEqual({
      code: 4,
      body: { error: "Account 'acct_cli_pro' already exists", code: 'ALREADY_EXISTS' },
    });
  });

  it('applies the key limit', async () => {
    await adminJson('account', 'create', '--id', 'acct_cli_full', '--tier', 'pro');
    for (let i = 0; i < 10; i++) {
      expect((await adminJson('key', 'create', '--account', 'acct_cli_full', '--name', `k${i}`, '--preset', 'read-only')).code).toBe(0);
    }
    const eleventh = await adminJson('key', 'create', '--account', 'acct_cli_full', '--name', 'k10', '--preset', 'read-only');
    expect(eleventh).toEqual({ code: 4, body: { error: expect.any(String), code: 'KEY_LIMIT_REACHED', limit: 10, active: 10 } });
  }, 120_000); // twelve CLI processes, one after the other: seconds each on a loaded 2-core machine

  it('names the bad flag and value (exit 2), and refuses a bad value of the API (exit 5)', async () => {
    const badTier = await admin('account', 'create', '--id', 'acct_x', '--tier', 'gold');
    expect(badTier.code).toBe(2);
    expect(badTier.stderr).toMatch(/--tier 'gold'/);
    const badDays = await adminJson('key', 'create', '--account', 'acct_cli', '--name', 'x', '--preset', 'read-only', '--expires-in-days', '5');
    expect(badDays.code).toBe(5);
    expect(badDays.body).toMatchObject({ code: 'VALIDATION_ERROR', error: expect.stringMatching(/^--expires-in-days/) });
    const two = await adminJson('key', 'create', '--account', 'acct_cli', '--name', 'x', '--preset', 'read-only', '--scope', 'free');
    expect(two).toMatchObject({ code: 5, body: { code: 'VALIDATION_ERROR' } });
    const unknown = await admin('key', 'create', '--acount', 'acct_cli');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^admin: Unknown option '--acount': did you mean --account\?/);
  });

  it('says how to start a stack when none runs', async () => {
    const result = await runTs('admin-cli/main.ts', ['key', 'list', '--account', 'acct_cli'], {
      KNOUDS_STATE_FILE: path.join(dir, 'missing.json'),
    });
    expect(result.code).toBe(6);
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
    const commands = [
      'account create', 'account set-tier', 'account list', 'account get',
      'key create', 'key get', 'key rotate', 'key revoke', 'key list',
      'user add', 'user list', 'user set-role', 'user remove', 'user reset-password', 'sweep',
    ];
    for (const command of commands) {
      expect(top.stdout).toContain(command);
      const help = await admin(...command.split(' '), '--help');
      expect({ command, code: help.code }).toEqual({ command, code: 0 });
      expect(help.stdout).toMatch(new RegExp(`^Usage: npm run --silent admin -- ${command}`));
      expect(help.stdout).toContain('Exit codes: 0 done, 1 unexpected, 2 bad usage, 3 not found, 4 conflict or limit, 5 refused, 6 cannot reach the stack.');
    }
  }, 240_000); // fifteen CLI processes, one after the other
});

/** A person's access token from the local provider, signed in through its login page as the console does. */
async function accessToken(email: string, password: string): Promise<string> {
  const tokens = await signIn(`${stack.url}/oidc`, { email, password, clientId: CONSOLE_CLIENT_ID, redirectUri: `${stack.url}/auth/callback` });
  return tokens.access_token;
}

const as = (token: string, method: string, path: string, options: { account?: string; body?: unknown } = {}): Promise<Reply> =>
  call(`${stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(options.account ? { 'knouds-account': options.account } : {}) },
    ...(options.body !== undefined ? { body: options.body } : {}),
  });

describe('admin CLI: the people of an account (user …)', () => {
  beforeAll(async () => {
    for (const [id, tier] of [['acct_people', 'business'], ['acct_people_2', 'pro']] as const) {
      const created = await admin('account', 'create', '--id', id, '--tier', tier);
      if (created.code !== 0) throw new Error(`account create ${id}: ${created.stderr}`);
    }
  }, 60_000);

  it('adds a new person whose password signs in and whose token works on GET /me; added again, nothing changes', async () => {
    const added = await adminJson('user', 'add', '--account', 'acct_people', '--email', 'Ada@Example.com', '--role', 'admin');
    expect(added).toEqual({
      code: 0,
      body: { subject: expect.any(String), email: 'ada@example.com', account_id: 'acct_people', role: 'admin', password: expect.any(String) },
    });
    const { subject, password } = added.body as { subject: string; password: string };
    const token = await accessToken('ada@example.com', password);
    const me = await as(token, 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      kind: 'person',
      account: { account_id: 'acct_people' },
      person: { subject, email: 'ada@example.com', role: 'admin' },
    });

    // Again, same role: harmless, the same membership, no new password (the first one still works).
    const again = await adminJson('user', 'add', '--account', 'acct_people', '--email', 'ada@example.com', '--role', 'admin');
    expect(again).toEqual({ code: 0, body: { subject, email: 'ada@example.com', account_id: 'acct_people', role: 'admin', password: null } });
    const againText = await admin('user', 'add', '--account', 'acct_people', '--email', 'ada@example.com', '--role', 'admin');
    expect(againText.stdout).toMatch(/was already admin of acct_people: nothing changed/);
    // Another role: that is set-role.
    const otherRole = await adminJson('user', 'add', '--account', 'acct_people', '--email', 'ada@example.com', '--role', 'viewer');
    expect(otherRole).toEqual({ code: 4, body: { code: 'ALREADY_EXISTS', error: expect.stringMatching(/already an admin of 'acct_people'.*user set-role/) } });

    // Known to the provider, added to another account: a membership, no new password.
    const second = await adminJson('user', 'add', '--account', 'acct_people_2', '--email', 'ada@example.com', '--role', 'viewer');
    expect(second).toEqual({ code: 0, body: { subject, email: 'ada@example.com', account_id: 'acct_people_2', role: 'viewer', password: null } });
    const token2 = await accessToken('ada@example.com', password);
    expect((await as(token2, 'GET', '/keys', { account: 'acct_people_2' })).status).toBe(200);
    expectError(await as(token2, 'POST', '/keys', { account: 'acct_people_2', body: { name: 'x', preset: 'read-only' } }), 403, 'CAPABILITY_DENIED');
    expect((await as(token2, 'POST', '/keys', { account: 'acct_people', body: { name: 'x', preset: 'read-only' } })).status).toBe(201);
  }, 120_000);

  it('lists by email, changes a role and removes a person, each from their next request', async () => {
    const zed = await adminJson('user', 'add', '--account', 'acct_people', '--email', 'zed@example.com', '--role', 'admin');
    const amy = await adminJson('user', 'add', '--account', 'acct_people', '--email', 'amy@example.com', '--role', 'viewer');
    expect([zed.code, amy.code]).toEqual([0, 0]);
    const listed = await adminJson('user', 'list', '--account', 'acct_people');
    expect(listed.code).toBe(0);
    const items = listed.body['items'] as { email: string }[];
    expect(items.map((m) => m.email)).toEqual([...items.map((m) => m.email)].sort());
    expect(items).toEqual(
      expect.arrayContaining([
        { subject: amy.body['subject'], email: 'amy@example.com', role: 'viewer', added_at: expect.any(String) },
        { subject: zed.body['subject'], email: 'zed@example.com', role: 'admin', added_at: expect.any(String) },
      ]),
    );
    expect(JSON.stringify(listed.body)).not.toContain(String(zed.body['password']));

    const token = await accessToken('zed@example.com', String(zed.body['password']));
    expect((await as(token, 'POST', '/keys', { body: { name: 'by zed', preset: 'read-only' } })).status).toBe(201);

    const demoted = await adminJson('user', 'set-role', '--account', 'acct_people', '--email', 'ZED@example.com', '--role', 'viewer');
    expect(demoted).toEqual({
      code: 0,
      body: { subject: zed.body['subject'], email: 'zed@example.com', account_id: 'acct_people', role: 'viewer', previous_role: 'admin' },
    });
    // The same token, from its next request.
    expectError(await as(token, 'POST', '/keys', { body: { name: 'by zed', preset: 'read-only' } }), 403, 'CAPABILITY_DENIED', { required: 'keys:write' });
    expect((await as(token, 'GET', '/keys')).status).toBe(200);
    const promoted = await admin('user', 'set-role', '--account', 'acct_people', '--subject', String(zed.body['subject']), '--role', 'admin');
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toMatch(/zed@example\.com in acct_people: viewer → admin, from their next request/);
    expect((await as(token, 'POST', '/keys', { body: { name: 'by zed again', preset: 'read-only' } })).status).toBe(201);

    const removed = await adminJson('user', 'remove', '--account', 'acct_people', '--email', 'zed@example.com');
    expect(removed).toEqual({
      code: 0,
      body: { subject: zed.body['subject'], email: 'zed@example.com', account_id: 'acct_people', role: 'admin', removed: true },
    });
    expectError(await as(token, 'GET', '/keys'), 403, 'NOT_A_MEMBER');
    expect(((await adminJson('user', 'list', '--account', 'acct_people')).body['items'] as { email: string }[]).map((m) => m.email)).not.toContain('zed@example.com');
    // The sign-in is kept (they may belong to other accounts): added back, no new password.
    expect(await stack.oidc.people.findPerson('zed@example.com')).toMatchObject({ subject: zed.body['subject'] });
    const back = await adminJson('user', 'add', '--account', 'acct_people', '--email', 'zed@example.com', '--role', 'viewer');
    expect(back.body).toMatchObject({ subject: zed.body['subject'], password: null });

    // Someone who is not a member: not found, exit 3.
    const notMember = await adminJson('user', 'remove', '--account', 'acct_people_2', '--email', 'zed@example.com');
    expect(notMember).toEqual({ code: 3, body: { code: 'NOT_FOUND', error: "zed@example.com is not a member of 'acct_people_2'" } });
    expect((await adminJson('user', 'set-role', '--account', 'acct_people_2', '--subject', 'nobody', '--role', 'admin')).body['code']).toBe('NOT_FOUND');
  }, 120_000);

  it('a person whose password answer was lost (the provider made them, the CLI never said) gets a new one with user reset-password', async () => {
    // What a killed `user add` leaves: the person at the provider, their password shown to nobody.
    const lost = await stack.oidc.people.addPerson('lost@example.com');
    const retried = await adminJson('user', 'add', '--account', 'acct_people', '--email', 'lost@example.com', '--role', 'viewer');
    expect(retried).toEqual({ code: 0, body: { subject: lost.subject, email: 'lost@example.com', account_id: 'acct_people', role: 'viewer', password: null } });
    const again = await admin('user', 'add', '--account', 'acct_people', '--email', 'lost@example.com', '--role', 'viewer');
    expect(again.stdout).toMatch(/already knew them: they sign in as before \(no new password\); if they never got their password: user reset-password --email lost@example\.com$/m);

    const reset = await adminJson('user', 'reset-password', '--email', 'Lost@Example.com');
    expect(reset).toEqual({ code: 0, body: { subject: lost.subject, email: 'lost@example.com', password: expect.stringMatching(/^[A-Za-z0-9_-]{24}$/) } });
    const password = String(reset.body['password']);
    const me = await as(await accessToken('lost@example.com', password), 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ person: { subject: lost.subject, email: 'lost@example.com', role: 'viewer' } });
    await expect(accessToken('lost@example.com', lost.password!)).rejects.toThrow();

    // In words: the new password once, what is kept; the one before it no longer signs in.
    const inWords = await admin('user', 'reset-password', '--email', 'lost@example.com');
    expect(inWords.code).toBe(0);
    const shown = /^New password for lost@example\.com \(shown once, hand it over safely\): ([A-Za-z0-9_-]{24})$/m.exec(inWords.stdout)?.[1];
    expect(shown).toBeDefined();
    expect(inWords.stdout).toMatch(/Their old password no longer works; sessions they already have at the local provider .* are kept until they run out/);
    expect(await stack.oidc.people.authenticate('lost@example.com', password)).toBeUndefined();
    expect(await stack.oidc.people.authenticate('lost@example.com', shown!)).toMatchObject({ subject: lost.subject });
    expect(inWords.stderr).not.toContain(shown!);

    // An email the provider does not know: not found (exit 3), and nobody is made.
    const unknown = await adminJson('user', 'reset-password', '--email', 'nobody@example.com');
    expect(unknown).toEqual({
      code: 3,
      body: { code: 'NOT_FOUND', error: expect.stringMatching(/^nobody@example\.com is not a person of the local provider at .*: add them with user add --account <id> --email nobody@example\.com --role <role>$/) },
    });
    expect(await stack.oidc.people.findPerson('nobody@example.com')).toBeUndefined();
  }, 120_000);

  it('refuses an unknown account (exit 3, NOT_FOUND) before creating anyone', async () => {
    const add = await adminJson('user', 'add', '--account', 'acct_nope', '--email', 'ghost@example.com', '--role', 'viewer');
    expect(add).toEqual({ code: 3, body: { code: 'NOT_FOUND', error: "Account 'acct_nope' does not exist" } });
    expect(await stack.oidc.people.findPerson('ghost@example.com')).toBeUndefined();
    for (const args of [
      ['user', 'list', '--account', 'acct_nope'],
      ['user', 'set-role', '--account', 'acct_nope', '--email', 'ghost@example.com', '--role', 'admin'],
      ['user', 'remove', '--account', 'acct_nope', '--email', 'ghost@example.com'],
    ]) {
      expect({ args, ...(await adminJson(...args)) }).toEqual({ args, code: 3, body: { code: 'NOT_FOUND', error: "Account 'acct_nope' does not exist" } });
    }
  }, 60_000);

  it('names a bad flag (exit 2), before looking for a stack', async () => {
    const none = { KNOUDS_STATE_FILE: path.join(dir, 'missing.json') };
    const cases: [string[], RegExp][] = [
      [['user', 'add', '--account', 'acct_people', '--email', 'a@example.com', '--role', 'owner'], /^--role 'owner' is not a role; use one of admin, viewer/],
      [['user', 'add', '--account', 'acct_people', '--email', 'not-an-email', '--role', 'admin'], /^--email 'not-an-email' is not an email address/],
      [['user', 'add', '--account', 'acct_people', '--role', 'admin'], /^name the person by --email \(or, with your own identity provider, by --subject\)/],
      [['user', 'add', '--account', 'acct people', '--email', 'a@example.com', '--role', 'admin'], /^--account 'acct people' is not a valid account id/],
      [['user', 'add', '--account', 'acct_people', '--email', 'a@example.com', '--role', 'admin', '--subject', 'has space'], /^--subject 'has space' is not a subject/],
      [['user', 'set-role', '--account', 'acct_people', '--email', 'a@example.com'], /^--role is required/],
      [['user', 'set-role', '--account', 'acct_people', '--role', 'admin'], /^name the person by --email or by --subject/],
      [['user', 'remove', '--account', 'acct_people', '--email', 'a@example.com', '--subject', 's'], /^name the person by --email or by --subject/],
      [['user', 'list'], /^--account is required/],
      [['user', 'list', '--account', 'acct_people', '--role', 'admin'], /^Unknown option '--role': `user list` takes --account\./],
      [['user', 'add', '--account', 'acct_people', '--email', 'a@example.com', '--role', 'admni'], /^--role 'admni' is not a role; use one of admin, viewer \(did you mean admin\?\)/],
      [['user', 'set-role', '--acount', 'acct_people', '--email', 'a@example.com', '--role', 'admin'], /^Unknown option '--acount': did you mean --account\?/],
      [['user', 'reset-password'], /^--email is required/],
      [['user', 'reset-password', '--email', 'not-an-email'], /^--email 'not-an-email' is not an email address/],
      [['user', 'reset-password', '--email', 'a@example.com', '--account', 'acct_people'], /^Unknown option '--account': `user reset-password` takes --email\./],
    ];
    for (const [args, message] of cases) {
      const result = await runTs('admin-cli/main.ts', [...args, '--json'], none);
      expect({ args, code: result.code, body: JSON.parse(result.stdout) as unknown }).toEqual({
        args,
        code: 2,
        body: { code: 'USAGE', error: expect.stringMatching(message) },
      });
    }
  }, 120_000);

  it('refuses --subject on a stack whose people are in its own provider (exit 2)', async () => {
    const result = await admin('user', 'add', '--account', 'acct_people', '--email', 'a@example.com', '--role', 'admin', '--subject', 'abc');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--subject is for a stack with its own identity provider; this one's people are in the local provider/);
    expect(await stack.oidc.people.findPerson('a@example.com')).toBeUndefined();
  });
});
