/**
 * The local OpenID Connect provider inside the local stack (`npm start`'s startLocalStack): on the API's
 * own server and origin at /oidc, the demo person seeded with a fresh password (subject kept with a
 * persist folder), the admin endpoint's URL and token in the state file (mode 0600), and the API at /v1
 * untouched beside it.
 */
import { jest } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { LocalOidcAdminClient } from '../../local-runner/oidc/index.js';
import type { LocalState } from '../../local-runner/state.js';
import { call } from '../support/http.js';
import { discover, signIn } from '../support/oidc.js';
import { startTestStack, type TestStack } from '../support/stack.js';

jest.setTimeout(60_000);

let dir: string;
let t: TestStack;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'knouds-e2e-oidc-'));
  t = await startTestStack('e2e-oidc', { seed: true, persistDir: dir, stateFile: path.join(dir, 'state.json') });
});
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the local stack with its OpenID Connect provider', () => {
  it('serves discovery at <origin>/oidc beside the API at /v1, with the settings the authorizer needs', async () => {
    const { stack } = t;
    const d = await discover(`${stack.url}/oidc`);
    expect(d.issuer).toBe(`${stack.url}/oidc`);
    expect(stack.oidc.authorizerSettings).toEqual({
      issuer: d.issuer,
      jwksUri: d.jwks_uri,
      audience: stack.apiUrl,
      clientId: 'knouds-console',
      algorithms: ['RS256'],
    });
    expect((await call(`${stack.apiUrl}/health`)).status).toBe(200);
    // A path that only starts like the provider's is the API gateway's, not the provider's.
    // A path that only starts like the provider's is not the provider's: the console's (outside the stage).
    const near = await call(`${stack.url}/oidcx`);
    expect(near.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(near.text).not.toContain('oidc-provider');
  });

  it('seeds demo@knouds.local, who signs in and gets an access token for this API', async () => {
    const { stack } = t;
    const demo = stack.demoPerson!;
    expect(demo.email).toBe('demo@knouds.local');
    const tokens = await signIn(stack.oidc.issuer, {
      email: demo.email,
      password: demo.password,
      clientId: stack.oidc.consoleClient.clientId,
      redirectUri: stack.oidc.consoleClient.redirectUri,
    });
    expect(stack.oidc.consoleClient.redirectUri).toBe(`${stack.url}/auth/callback`);
    const { authorizerSettings: s } = stack.oidc;
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(s.jwksUri)), {
      issuer: s.issuer,
      audience: s.audience,
      typ: 'at+jwt',
      algorithms: [...s.algorithms],
    });
    expect(payload).toMatchObject({ sub: demo.subject, email: 'demo@knouds.local', client_id: 'knouds-console', aud: stack.apiUrl });
  });

  it('writes the admin endpoint and its token to the state file (0600), which the CLI uses to add people', async () => {
    const file = path.join(dir, 'state.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const state = JSON.parse(readFileSync(file, 'utf8')) as LocalState;
    expect(state.oidc).toEqual({ issuer: t.stack.oidc.issuer, adminUrl: `${t.stack.url}/oidc/admin/people`, adminToken: expect.any(String) });
    const admin = new LocalOidcAdminClient(state.oidc!);
    const added = await admin.addPerson('viewer@example.com');
    expect(added.password).toEqual(expect.any(String));
    expect(await t.stack.oidc.people.findPerson('viewer@example.com')).toMatchObject({ subject: added.subject });
  });

  it('keeps the demo person\'s subject across a restart with the same persist folder, with a new password', async () => {
    const before = t.stack.demoPerson!;
    await t.close();
    t = await startTestStack('e2e-oidc', { seed: true, persistDir: dir, stateFile: path.join(dir, 'state.json') });
    const after = t.stack.demoPerson!;
    expect(after.subject).toBe(before.subject);
    expect(after.password).not.toBe(before.password);
    expect(await t.stack.oidc.people.findPerson('viewer@example.com')).toBeDefined();
  });
});
