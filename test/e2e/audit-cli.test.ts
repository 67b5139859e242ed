/**
 * The admin CLI's changes in the audit trail (API.md §5, §7), run as a user runs it against a running
 * local stack: each command that changes something leaves exactly one event by the operator, read back
 * through GET /audit-events; commands that change nothing, or are refused, leave none.
 */
import { jest } from '@jest/globals';
import { startCliStack, type CliStack } from '../support/admin-cli.js';
import { call } from '../support/http.js';

jest.setTimeout(120_000);

let cli: CliStack;

const admin = async (...args: string[]) => {
  const result = await cli.admin(...args, '--json');
  return { code: result.code, body: JSON.parse(result.stdout) as Record<string, unknown> };
};

beforeAll(async () => {
  cli = await startCliStack('e2e-audit-cli');
});

afterAll(async () => {
  await cli?.close();
});

type Event = { action: string; actor: unknown; target: { kind: string; id: string }; changes: unknown; request_id: unknown };

it('every change by the CLI is one event by the operator; a repeat or a refusal adds none', async () => {
  const account = `acct_audit_cli_${Date.now().toString(36)}`;
  expect((await admin('account', 'create', '--id', account, '--tier', 'business')).code).toBe(0);
  // Taken: refused, nothing recorded.
  expect((await admin('account', 'create', '--id', account, '--tier', 'pro')).code).toBe(4);
  const key = await admin('key', 'create', '--account', account, '--name', 'auditor', '--scope', 'admin');
  expect(key.code).toBe(0);
  const keyId = String(key.body['key_id']);
  const apiKey = String(key.body['api_key']);
  expect((await admin('account', 'set-tier', '--id', account, '--tier', 'enterprise')).code).toBe(0);
  expect((await admin('account', 'set-tier', '--id', account, '--tier', 'enterprise')).code).toBe(0);
  const added = await admin('user', 'add', '--account', account, '--email', 'ops@example.com', '--role', 'viewer');
  expect(added.code).toBe(0);
  const subject = String(added.body['subject']);
  // The same again changes nothing.
  expect((await admin('user', 'add', '--account', account, '--email', 'ops@example.com', '--role', 'viewer')).code).toBe(0);
  expect((await admin('user', 'set-role', '--account', account, '--email', 'ops@example.com', '--role', 'admin')).code).toBe(0);
  expect((await admin('user', 'set-role', '--account', account, '--email', 'ops@example.com', '--role', 'admin')).code).toBe(0);
  expect((await admin('user', 'remove', '--account', account, '--email', 'ops@example.com')).code).toBe(0);
  expect((await admin('user', 'remove', '--account', account, '--subject', subject)).code).toBe(3);
  const other = await admin('key', 'create', '--account', account, '--name', 'short-lived', '--preset', 'read-only');
  expect((await admin('key', 'revoke', String(other.body['key_id']))).code).toBe(0);

  const reply = await call(`${cli.stack.apiUrl}/audit-events?limit=100`, { headers: { 'x-api-key': apiKey } });
  expect(reply.status).toBe(200);
  const events = [...(reply.body['items'] as Event[])].reverse();
  const operator = { kind: 'operator' };
  expect(events.map((e) => [e.action, e.target])).toEqual([
    ['account.created', { kind: 'account', id: account }],
    ['key.created', { kind: 'key', id: keyId }],
    ['account.tier_changed', { kind: 'account', id: account }],
    ['member.added', { kind: 'member', id: subject }],
    ['member.role_changed', { kind: 'member', id: subject }],
    ['member.removed', { kind: 'member', id: subject }],
    ['key.created', { kind: 'key', id: other.body['key_id'] }],
    ['key.revoked', { kind: 'key', id: other.body['key_id'] }],
  ]);
  for (const e of events) expect({ actor: e.actor, request_id: e.request_id }).toEqual({ actor: operator, request_id: null });
  expect(events[0]!.changes).toEqual({ tier: { from: null, to: 'business' } });
  expect(events[2]!.changes).toEqual({ tier: { from: 'business', to: 'enterprise' } });
  expect(events[4]!.changes).toEqual({ role: { from: 'viewer', to: 'admin' } });
  // The CLI printed the key once; the trail never holds it.
  expect(reply.text).not.toContain(apiKey);
  expect(reply.text).not.toContain(String(added.body['password']));
});
