/**
 * The admin CLI's reading and rotating commands (`account list|get`, `key get|rotate`), its suggestions
 * for a mistyped command or flag, and its exit codes, one per class of error (API.md §5), run as a user
 * runs it (`npm run --silent admin -- …`) against a running local stack found through its state file.
 */
import { jest } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { AccountsRepository } from '../../lambdas/shared/repositories/accounts.js';
import { AuditRepository } from '../../lambdas/shared/repositories/audit.js';
import { KeysRepository } from '../../lambdas/shared/repositories/keys.js';
import { createAccount, createKey } from '../../lambdas/shared/services/keys.js';
import { startCliStack, type CliStack } from '../support/admin-cli.js';
import { call } from '../support/http.js';
import { runTs } from '../support/processes.js';

// Each command is a process of its own (tsx): a test running a dozen takes long on a loaded machine.
jest.setTimeout(120_000);

let cli: CliStack;
let dir: string;

beforeAll(async () => {
  cli = await startCliStack('e2e-admin-commands');
  dir = mkdtempSync(path.join(tmpdir(), 'knouds-admin-commands-'));
});

afterAll(async () => {
  await cli?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const admin = (...args: string[]) => cli.admin(...args);
/** `--json`: one JSON object and nothing else, on stdout, whatever the outcome. */
async function adminJson(...args: string[]) {
  const result = await cli.admin(...args, '--json');
  expect({ args, lines: result.stdout.trim().split('\n').length, stderr: result.stderr }).toEqual({ args, lines: 1, stderr: '' });
  return { code: result.code, body: JSON.parse(result.stdout) as Record<string, unknown> };
}
/** The same without a stack: the state file names none. */
const noStack = (...args: string[]) => runTs('admin-cli/main.ts', args, { KNOUDS_STATE_FILE: path.join(dir, 'missing.json') });

/** The operator's own service functions on the stack's tables, as the CLI calls them, without a process per call. */
function operator() {
  const { doc, state } = cli.stack;
  const accounts = new AccountsRepository(doc, state.tables.accounts);
  const audit = new AuditRepository(doc, state.tables.audit, state.settings.auditRetentionDays);
  return { accounts, audit, keys: new KeysRepository(doc, { keys: state.tables.keys, accounts: state.tables.accounts }), settings: state.settings };
}

const api = (key: string, method: string, route: string, body?: unknown) =>
  call(`${cli.stack.apiUrl}${route}`, { method, headers: { 'x-api-key': key }, ...(body !== undefined ? { body } : {}) });

async function newAccount(id: string, tier: string): Promise<void> {
  expect((await adminJson('account', 'create', '--id', id, '--tier', tier)).code).toBe(0);
}
async function newKey(account: string, ...flags: string[]): Promise<{ keyId: string; apiKey: string }> {
  const created = await adminJson('key', 'create', '--account', account, '--name', `k-${flags.join('')}`, ...flags);
  expect(created.code).toBe(0);
  return { keyId: String(created.body['key_id']), apiKey: String(created.body['api_key']) };
}

describe('a mistyped command or flag is named with the one meant (exit 2, nothing done)', () => {
  it.each([
    [['key', 'lst', '--account', 'acct_x'], "unknown command 'key lst' (did you mean `key list`?)"],
    [['key', 'rotat', 'key_x'], "unknown command 'key rotat' (did you mean `key rotate`?)"],
    [['acount', 'list'], "unknown command 'acount list' (did you mean `account list`?)"],
    [['swep'], "unknown command 'swep' (did you mean `sweep`?)"],
    [['key', 'create', '--acount', 'acct_x', '--name', 'n', '--preset', 'read-only'], "Unknown option '--acount': did you mean --account?"],
    [['key', 'rotate', 'key_x', '--grace-period-second', '5'], "Unknown option '--grace-period-second': did you mean --grace-period-seconds?"],
    [['account', 'get', '--id', 'acct_x', '--jsno'], "Unknown option '--jsno': did you mean --json?"],
    [['account', 'create', '--id', 'acct_x', '--tier', 'buisness'], "--tier 'buisness' is not a tier; use one of free, pro, business, enterprise (did you mean business?)"],
  ])('%j', async (args, message) => {
    // Without a stack: a usage error is found before looking for one.
    const text = await noStack(...args);
    expect({ code: text.code, stdout: text.stdout }).toEqual({ code: 2, stdout: '' });
    expect(text.stderr).toContain(`admin: ${message}`);
    const json = await noStack(...args, '--json');
    expect({ code: json.code, body: JSON.parse(json.stdout) as unknown }).toEqual({ code: 2, body: { code: 'USAGE', error: expect.stringContaining(message) } });
  });

  it('suggests nothing when nothing is near, and says what there is', async () => {
    const far = await noStack('key', 'destroy', 'key_x');
    expect(far.code).toBe(2);
    expect(far.stderr).toMatch(/^admin: unknown command 'key destroy'\. Run with --help for the list\./);
    const bare = await noStack('key');
    expect(bare.stderr).toMatch(/^admin: 'key' needs one of: create, get, rotate, disable, enable, revoke, list\./);
    const other = await noStack('user', 'list', '--account', 'acct_x', '--role', 'admin');
    expect(other.stderr).toMatch(/^admin: Unknown option '--role': `user list` takes --account\./);
  });

  it('an unknown command changes nothing on a running stack', async () => {
    const mistyped = await adminJson('acount', 'create', '--id', 'acct_typo', '--tier', 'pro');
    expect(mistyped).toEqual({ code: 2, body: { code: 'USAGE', error: expect.stringContaining('did you mean `account create`?') } });
    expect((await adminJson('account', 'get', '--id', 'acct_typo')).code).toBe(3);
  });
});

describe('account list and account get', () => {
  beforeAll(async () => {
    await newAccount('acct_list_b', 'pro');
    await newAccount('acct_list_a', 'business');
    await newKey('acct_list_a', '--preset', 'read-only');
    await newKey('acct_list_a', '--preset', 'workflow-deploy');
    const added = await admin('user', 'add', '--account', 'acct_list_a', '--email', 'ops@example.com', '--role', 'viewer');
    if (added.code !== 0) throw new Error(`user add: ${added.stderr}`);
  });

  it('lists every account by id with its tier and active key count (--json)', async () => {
    const listed = await adminJson('account', 'list');
    expect(listed.code).toBe(0);
    const items = listed.body['items'] as { account_id: string }[];
    expect(Object.keys(listed.body)).toEqual(['items']);
    expect(items.map((a) => a.account_id)).toEqual([...items.map((a) => a.account_id)].sort());
    expect(items).toEqual(
      expect.arrayContaining([
        { account_id: 'acct_list_a', tier: 'business', active_keys: 2, max_active_keys: 10, created_at: expect.any(String) },
        { account_id: 'acct_list_b', tier: 'pro', active_keys: 0, max_active_keys: 10, created_at: expect.any(String) },
      ]),
    );
  });

  it('lists them in words, one line each', async () => {
    const text = await admin('account', 'list');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^acct_list_a {2}business {2}2 of 10 keys {2}created \d{4}-/m);
    expect(text.stdout).toMatch(/^acct_list_b {2}pro {2}0 of 10 keys {2}created \d{4}-/m);
  });

  it('reads past a page of the table: all of 130 more accounts', async () => {
    // Made by the operator's own service function, as `account create` does, without 130 processes.
    const deps = operator();
    const ids = Array.from({ length: 130 }, (_, i) => `acct_page_${String(i).padStart(3, '0')}`);
    for (let i = 0; i < ids.length; i += 10) await Promise.all(ids.slice(i, i + 10).map((id) => createAccount(deps, id, 'free')));
    const listed = await adminJson('account', 'list');
    const got = (listed.body['items'] as { account_id: string; tier: string }[]).filter((a) => a.account_id.startsWith('acct_page_'));
    expect(got.map((a) => a.account_id)).toEqual(ids);
    expect(new Set(got.map((a) => a.tier))).toEqual(new Set(['free']));
  });

  it('gets one account: tier, ceiling, keys of the limit, people (--json and in words)', async () => {
    const got = await adminJson('account', 'get', '--id', 'acct_list_a');
    expect(got).toEqual({
      code: 0,
      body: {
        account_id: 'acct_list_a',
        tier: 'business',
        ceiling: expect.arrayContaining(['model:run', 'keys:write', 'audit:read']),
        active_keys: 2,
        max_active_keys: 10,
        member_count: 1,
        created_at: expect.any(String),
        updated_at: expect.any(String),
      },
    });
    const pro = await adminJson('account', 'get', '--id', 'acct_list_b');
    expect(pro.body['ceiling']).not.toContain('model:run');
    expect(pro.body['member_count']).toBe(0);
    const text = await admin('account', 'get', '--id', 'acct_list_a');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^acct_list_a {2}tier business\n {2}ceiling: .*model:run.*\n {2}keys: 2 of 10\n {2}people: 1\n/);
    expect(await adminJson('account', 'get', '--id', 'acct_list_none')).toEqual({ code: 3, body: { code: 'NOT_FOUND', error: "Account 'acct_list_none' does not exist" } });
  });
});

describe('key get and key rotate', () => {
  let adminKey: string;
  beforeAll(async () => {
    await newAccount('acct_keys', 'business');
    ({ apiKey: adminKey } = await newKey('acct_keys', '--scope', 'admin'));
  });

  it('gets a key as the API shows it (GET /keys/{key_id}), never its hash or plaintext', async () => {
    const { keyId, apiKey } = await newKey('acct_keys', '--preset', 'workflow-deploy', '--workspace', 'ws-a', '--expires-in-days', '30');
    const got = await adminJson('key', 'get', keyId);
    const viaApi = await api(adminKey, 'GET', `/keys/${keyId}`);
    expect(viaApi.status).toBe(200);
    expect(got).toEqual({ code: 0, body: viaApi.body });
    expect(got.body).toMatchObject({ key_id: keyId, account_id: 'acct_keys', workspaces: ['ws-a'], created_by: { kind: 'operator' } });
    expect(JSON.stringify(got.body)).not.toContain(apiKey);
    expect(JSON.stringify(got.body)).not.toMatch(/hash/);

    const text = await admin('key', 'get', keyId);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`${keyId}  k-`);
    expect(text.stdout).toMatch(/capabilities: workflow:read, workflow:run\n/);
    expect(text.stdout).toMatch(/created by: an operator \(admin CLI\)/);
    expect(text.stdout).not.toContain(apiKey);

    expect(await adminJson('key', 'get', 'key_00000000000000000000')).toEqual({ code: 3, body: { code: 'NOT_FOUND', error: "Key 'key_00000000000000000000' not found" } });
  });

  it('creates a key with metadata, an exact expiry and disabled; key enable and key disable switch it as the API does', async () => {
    const expiresAt = new Date(Date.now() + 10 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const created = await adminJson(
      'key', 'create', '--account', 'acct_keys', '--name', 'nightly export', '--preset', 'read-only',
      '--metadata', 'owner=data-team', '--metadata', 'query=a=b', '--expires-at', expiresAt, '--disabled',
    );
    expect(created.code).toBe(0);
    // Kept in UTC with milliseconds, as every time the API answers.
    const stored = new Date(expiresAt).toISOString();
    expect(created.body).toMatchObject({ metadata: { owner: 'data-team', query: 'a=b' }, enabled: false, expires_at: stored });
    const keyId = String(created.body['key_id']);
    const apiKey = String(created.body['api_key']);
    // Disabled from its creation: refused, yet it holds its slot and reads as the API shows it.
    expect((await api(apiKey, 'GET', '/keys/verify')).status).toBe(401);
    const viaApi = await api(adminKey, 'GET', `/keys/${keyId}`);
    expect(viaApi.body).toMatchObject({ enabled: false, metadata: { owner: 'data-team', query: 'a=b' }, expires_at: stored });

    const enabled = await adminJson('key', 'enable', keyId);
    expect(enabled).toEqual({ code: 0, body: { ...(viaApi.body as object), enabled: true } });
    expect((await api(apiKey, 'GET', '/keys/verify')).status).toBe(200);
    const text = await admin('key', 'disable', keyId);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Disabled key_\w+ of acct_keys/);
    expect(text.stdout).toMatch(/enabled: no/);
    expect(text.stdout).toMatch(/metadata owner: data-team/);
    expect((await api(apiKey, 'GET', '/keys/verify')).status).toBe(401);
    // Each switch is one key.updated by the operator.
    // Newest first.
    const updates = await operator().audit.list('acct_keys', { targetId: keyId, action: 'key.updated' }, 100);
    expect(updates.items.map((e) => [e.actor.kind, e.changes])).toEqual([
      ['operator', { enabled: { from: true, to: false } }],
      ['operator', { enabled: { from: false, to: true } }],
    ]);

    // A bad entry is a usage error (nothing made); the map's limits are the API's (exit 5).
    expect((await adminJson('key', 'create', '--account', 'acct_keys', '--name', 'x', '--preset', 'read-only', '--metadata', 'no-equals')).code).toBe(2);
    const tooLong = await adminJson('key', 'create', '--account', 'acct_keys', '--name', 'x', '--preset', 'read-only', '--metadata', `${'k'.repeat(41)}=v`);
    expect(tooLong.code).toBe(5);
    expect(tooLong.body).toMatchObject({ code: 'VALIDATION_ERROR' });
  });

  it('rotates without grace: the new plaintext once, the old key refused at once, key.rotated and the replacement’s key.created by the operator', async () => {
    const old = await newKey('acct_keys', '--preset', 'read-only');
    expect((await api(old.apiKey, 'GET', '/keys/verify')).status).toBe(200);
    const rotated = await adminJson('key', 'rotate', old.keyId);
    expect(rotated.code).toBe(0);
    const next = rotated.body as { key_id: string; api_key: string };
    expect(rotated.body).toMatchObject({
      key_id: expect.stringMatching(/^key_/),
      api_key: expect.stringMatching(/^knouds_live_/),
      name: 'k---presetread-only',
      capabilities: ['workflow:read'],
      account_id: 'acct_keys',
      created_by: { kind: 'operator' },
    });
    expect(next.key_id).not.toBe(old.keyId);

    const refused = await api(old.apiKey, 'GET', '/keys/verify');
    expect(refused.status).toBe(401);
    expect((await api(next.api_key, 'GET', '/keys/verify')).body).toMatchObject({ key_id: next.key_id });
    // Shown once: the key as read afterwards has no plaintext.
    expect(JSON.stringify((await adminJson('key', 'get', next.key_id)).body)).not.toContain(next.api_key);

    const events = await api(adminKey, 'GET', `/audit-events?target_id=${old.keyId}&action=key.rotated`);
    expect(events.status).toBe(200);
    expect(events.body['items']).toEqual([
      expect.objectContaining({
        action: 'key.rotated',
        actor: { kind: 'operator' },
        target: { kind: 'key', id: old.keyId },
        changes: { rotated_to: { from: null, to: next.key_id }, revoked_at: { from: null, to: expect.any(String) } },
      }),
    ]);
    // The replacement's own history begins with its creation, naming the key it replaces.
    const made = await api(adminKey, 'GET', `/audit-events?target_id=${next.key_id}`);
    expect(made.body['items']).toEqual([
      expect.objectContaining({
        action: 'key.created',
        actor: { kind: 'operator' },
        target: { kind: 'key', id: next.key_id },
        changes: expect.objectContaining({ rotated_from: { from: null, to: old.keyId }, name: { from: null, to: 'k---presetread-only' } }),
      }),
    ]);

    // A key is rotated once: again is a conflict naming its replacement (exit 4), as in the API.
    expect(await adminJson('key', 'rotate', old.keyId)).toEqual({
      code: 4,
      body: { code: 'ALREADY_EXISTS', error: expect.any(String), rotated_to: next.key_id },
    });
  });

  it('rotates with a grace period, in words: the old key works on through it', async () => {
    const old = await newKey('acct_keys', '--preset', 'webhook-receiver');
    const text = await admin('key', 'rotate', old.keyId, '--grace-period-seconds', '600');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^Rotated ${old.keyId} of acct_keys on the local stack at .*: the new key is key_\\w+\\.\\n {2}The old key keeps working for 600 s, then never again\\.\\n`));
    const plaintext = /^API key \(shown once, store it now\): (knouds_live_\w+)$/m.exec(text.stdout)?.[1];
    expect(plaintext).toEqual(expect.any(String));
    expect((await api(plaintext!, 'GET', '/keys/verify')).status).toBe(200);
    expect((await api(old.apiKey, 'GET', '/keys/verify')).status).toBe(200);
    const oldNow = await api(adminKey, 'GET', `/keys/${old.keyId}`);
    expect(Date.parse(String(oldNow.body['expires_at'])) - Date.now()).toBeGreaterThan(500_000);
    // Read in words during the grace, the old key says what replaced it.
    const newId = /the new key is (key_\w+)\./.exec(text.stdout)![1]!;
    expect(oldNow.body['rotated_to']).toBe(newId);
    expect((await admin('key', 'get', old.keyId)).stdout).toContain(`  replaced by: ${newId} (rotated; works until ${String(oldNow.body['expires_at'])})`);
    const listed = (await admin('key', 'list', '--account', 'acct_keys')).stdout.split('\n');
    expect(listed.find((line) => line.startsWith(old.keyId))).toMatch(new RegExp(`  replaced by ${newId}$`));
    expect(listed.find((line) => line.startsWith(newId))).not.toContain('replaced by');
  });

  it('keeps the API rules: the grace range (exit 5) and the key limit with a grace period (exit 4)', async () => {
    await newAccount('acct_keys_full', 'pro');
    const keys = [];
    for (let i = 0; i < 10; i++) keys.push({ keyId: (await createKey(operator(), 'acct_keys_full', { name: `k${i}`, preset: 'read-only' })).key.key_id });
    const tooLong = await adminJson('key', 'rotate', keys[0]!.keyId, '--grace-period-seconds', '86401');
    expect(tooLong).toEqual({
      code: 5,
      body: { code: 'VALIDATION_ERROR', error: expect.stringMatching(/^--grace-period-seconds: /), details: [expect.objectContaining({ field: 'grace_period_seconds', flag: '--grace-period-seconds' })] },
    });
    expect(await adminJson('key', 'rotate', keys[0]!.keyId, '--grace-period-seconds', '60')).toEqual({
      code: 4,
      body: { code: 'KEY_LIMIT_REACHED', error: expect.any(String), limit: 10, active: 10 },
    });
    // Without grace the slot is handed over: it always works.
    expect((await adminJson('key', 'rotate', keys[0]!.keyId)).code).toBe(0);
    expect((await adminJson('key', 'rotate', keys[1]!.keyId, '--grace-period-seconds', 'soon')).code).toBe(2);
  });
});

describe('one exit code per class of error', () => {
  it('0 done, 2 usage, 3 not found, 4 conflict or limit, 5 refused, 6 no stack', async () => {
    await newAccount('acct_exit', 'pro');
    const cases: [string[], number, string | undefined][] = [
      [['account', 'get', '--id', 'acct_exit'], 0, undefined],
      [['account', 'get'], 2, 'USAGE'],
      [['key', 'get'], 2, 'USAGE'],
      [['key', 'revoke', 'key_00000000000000000000'], 3, 'NOT_FOUND'],
      [['user', 'list', '--account', 'acct_exit_none'], 3, 'NOT_FOUND'],
      [['account', 'create', '--id', 'acct_exit', '--tier', 'pro'], 4, 'ALREADY_EXISTS'],
      [['key', 'create', '--account', 'acct_exit', '--name', 'x', '--scope', 'admin'], 5, 'TIER_CEILING_EXCEEDED'],
      [['key', 'create', '--account', 'acct_exit', '--name', 'x', '--preset', 'read-only', '--expires-in-days', '5'], 5, 'VALIDATION_ERROR'],
    ];
    for (const [args, code, errorCode] of cases) {
      const result = await adminJson(...args);
      expect({ args, code: result.code, errorCode: result.body['code'] }).toEqual({ args, code, errorCode });
    }
  });

  it('6: no local stack, or the one that wrote the state file is gone', async () => {
    const none = await noStack('account', 'list');
    expect(none.code).toBe(6);
    expect(none.stderr).toMatch(/No local stack is running .*npm start/);
    // A state file whose process ended (npm start killed without its cleanup).
    const stale = path.join(dir, 'stale.json');
    writeFileSync(stale, JSON.stringify({ ...cli.stack.state, pid: 2 ** 22 + 7 }));
    const gone = await runTs('admin-cli/main.ts', ['account', 'list', '--json'], { KNOUDS_STATE_FILE: stale });
    expect({ code: gone.code, body: JSON.parse(gone.stdout) as unknown }).toEqual({ code: 6, body: { code: 'NO_STACK', error: expect.stringMatching(/is not running/) } });
  });

  it('6: the stack does not answer (its DynamoDB is unreachable)', async () => {
    const dead = path.join(dir, 'dead.json');
    writeFileSync(dead, JSON.stringify({ ...cli.stack.state, pid: process.pid, dynamodbEndpoint: 'http://127.0.0.1:9' }));
    const result = await runTs('admin-cli/main.ts', ['account', 'get', '--id', 'acct_exit', '--json'], { KNOUDS_STATE_FILE: dead });
    expect({ code: result.code, body: JSON.parse(result.stdout) as unknown }).toEqual({ code: 6, body: { code: 'AWS_ERROR', error: expect.any(String) } });
  });

  it('1 OUTCOME_UNKNOWN: a change whose request got no answer may have been made (not 6, which scripts retry); a read is 6', async () => {
    // A DynamoDB that takes each request and never answers. It reads (and drops) what comes, so a client
    // that gives up and closes is seen closing; whatever is left is destroyed at the end.
    const sockets: Socket[] = [];
    let closing = false;
    const hung = createNetServer((socket) => {
      if (closing) return void socket.destroy();
      sockets.push(socket);
      socket.resume();
      socket.on('end', () => socket.destroy());
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    try {
      const state = path.join(dir, 'hung.json');
      writeFileSync(state, JSON.stringify({ ...cli.stack.state, pid: process.pid, dynamodbEndpoint: `http://127.0.0.1:${(hung.address() as AddressInfo).port}` }));
      const write = await runTs('admin-cli/main.ts', ['account', 'create', '--id', 'acct_hung', '--tier', 'pro', '--json'], { KNOUDS_STATE_FILE: state });
      expect({ code: write.code, body: JSON.parse(write.stdout) as unknown }).toEqual({
        code: 1,
        body: { code: 'OUTCOME_UNKNOWN', error: expect.stringContaining('the change may have been made') },
      });
      const read = await runTs('admin-cli/main.ts', ['account', 'get', '--id', 'acct_hung', '--json'], { KNOUDS_STATE_FILE: state });
      expect({ code: read.code, body: JSON.parse(read.stdout) as unknown }).toEqual({ code: 6, body: { code: 'AWS_ERROR', error: expect.stringMatching(/^TimeoutError/) } });
    } finally {
      closing = true;
      for (const socket of sockets) socket.destroy();
      hung.close();
    }
    // Two commands, each giving up after three 5 s attempts: about 45 s on an idle machine.
  }, 240_000);

  it('--help lists the classes, for the whole CLI and for a command', async () => {
    const top = await noStack('--help');
    expect(top.code).toBe(0);
    for (const line of ['0  done', '1  unexpected', '2  bad usage', '3  not found', '4  conflict or limit', '5  refused', '6  cannot reach the stack']) {
      expect(top.stdout).toContain(line);
    }
    // Each command's own help says them in one line (admin-cli.test.ts reads every command's help).
    const help = await noStack('key', 'rotate', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run --silent admin -- key rotate <key_id> \[--grace-period-seconds <0-86400>\]/);
    expect(help.stdout).toContain('Exit codes: 0 done, 1 unexpected, 2 bad usage, 3 not found, 4 conflict or limit, 5 refused, 6 cannot reach the stack.');
  });
});
