/**
 * The console in a real browser (issue #17, API.md §6), part 1: signing in and out, and creating keys.
 * Issue #17's "done when" is the first test: the printed demo person signs in, creates a key, copies it,
 * uses it with curl, deletes it, and curl gets 401.
 *
 * Every step asserts what the person sees (by the accessible names the contract promises) and what the
 * API then does (through the account's own keys, or the person's own access token).
 */
import { randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import type { Locator } from 'playwright-core';
import { DEMO_ACCOUNT_ID } from '../../local-runner/stack.js';
import {
  answerUnavailable,
  ConsoleSuite,
  closeKeyDialog,
  createAndReadKey,
  keyRow,
  openCreateDialog,
  rowAction,
  clipboardText,
  curlStatus,
  eventually,
  expectAccessible,
  fillLogin,
  gone,
  heapHolds,
  placesHolding,
  sessionAccessToken,
  signIn,
  visible,
  accessibleDescription,
} from '../support/browser.js';
import { call } from '../support/http.js';

jest.setTimeout(120_000);

const suite = new ConsoleSuite('e2e-console-keys');
beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

const sorted = (values: readonly string[]) => [...values].sort();
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The key's record through the API, found by name with the account's operator key. */
async function keyByName(adminKey: string, name: string): Promise<Record<string, unknown> | undefined> {
  const listed = await suite.api(adminKey, 'GET', '/keys?limit=100');
  expect(listed.status).toBe(200);
  return (listed.body['items'] as Record<string, unknown>[]).find((k) => k['name'] === name);
}

describe('signing in and out', () => {
  it(
    'the signed-out landing offers "Sign in"; the local provider signs the person in; the tokens live in session storage only',
    suite.withPage(async ({ page }) => {
      await page.goto(`${suite.url}/`);
      const signInButton = page.getByRole('button', { name: 'Sign in' });
      await visible(signInButton);
      await expectAccessible(page, 'the signed-out landing');

      await signInButton.click();
      // The provider's login page (same origin, under /oidc).
      await page.waitForURL((u) => u.pathname.startsWith('/oidc/'));
      await fillLogin(page, suite.demo);
      await visible(page.getByRole('heading', { name: 'API Keys', exact: true }));

      // Back in the console: no code, state or token in the URL.
      const after = new URL(page.url());
      expect(after.origin).toBe(suite.url);
      expect([...after.searchParams.keys()]).toEqual([]);
      expect(after.hash).toBe('');

      // The access token is in the tab's session storage, works on the API as this person, and is nowhere else.
      const token = await sessionAccessToken(page);
      expect(token).toEqual(expect.stringMatching(/^eyJ/));
      const me = await call(`${suite.t.stack.apiUrl}/me`, { headers: { authorization: `Bearer ${token!}` } });
      expect(me.status).toBe(200);
      expect(me.body['person']).toMatchObject({ email: suite.demo.email, role: 'admin' });
      const places = await placesHolding(page, token!);
      expect(places.length).toBeGreaterThan(0);
      expect(places.filter((p) => !p.startsWith('sessionStorage['))).toEqual([]);

      // The navigation: each page has its heading and its own URL (a reload stays there).
      for (const name of ['Webhooks', 'Audit log', 'API Keys']) {
        await page.getByRole('link', { name, exact: true }).click();
        await visible(page.getByRole('heading', { name, exact: true }));
        const here = page.url();
        await page.reload();
        await visible(page.getByRole('heading', { name, exact: true }));
        expect(page.url()).toBe(here);
      }
    }),
  );

  it(
    'a refresh token from the provider (Cognito issues one with every sign-in) is not kept: only the access token is in the tab',
    suite.withPage(async ({ page }) => {
      // The local provider issues none: its token answer gets one here, as Cognito's carries one.
      const refreshToken = `rt-${randomUUID()}`;
      await page.route(
        (url) => url.pathname.endsWith('/oidc/token'),
        async (route) => {
          const answer = await route.fetch();
          const body = (await answer.json()) as Record<string, unknown>;
          expect(body['access_token']).toEqual(expect.any(String));
          await route.fulfill({ response: answer, json: { ...body, refresh_token: refreshToken } });
        },
      );
      await signIn(page, suite.url, suite.demo);
      const token = await sessionAccessToken(page);
      expect(token).toEqual(expect.stringMatching(/^eyJ/));
      expect(await placesHolding(page, refreshToken)).toEqual([]);
      // Still signed in after a reload, from what was kept.
      await page.reload();
      await visible(page.getByRole('heading', { name: 'API Keys', exact: true }));
      expect(await sessionAccessToken(page)).toBe(token);
    }),
  );

  it(
    '"Sign out" forgets the session: no token in the tab, the pages ask to sign in, and signing in again needs the password',
    suite.withPage(async ({ page }) => {
      await signIn(page, suite.url, suite.demo);
      const keysUrl = page.url();
      expect(await sessionAccessToken(page)).toBeDefined();
      const requested: string[] = [];
      page.on('request', (request) => requested.push(request.url()));

      await page.getByRole('button', { name: 'Sign out' }).click();
      // The provider may ask to confirm (RP-initiated logout); confirming ends its session too.
      const confirm = page.getByRole('heading', { name: 'Sign out of Knouds' });
      const signInAgain = page.getByRole('button', { name: 'Sign in' });
      await visible(confirm.or(signInAgain));
      if (await confirm.isVisible()) await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await visible(signInAgain);
      expect(new URL(page.url()).origin).toBe(suite.url);
      expect(await sessionAccessToken(page)).toBeUndefined();
      expect(await page.getByRole('heading', { name: 'API Keys', exact: true }).count()).toBe(0);
      // No token in any URL after sign-in (API.md §6): the provider's sign-out page is asked by client_id.
      const endSession = requested.filter((u) => new URL(u).pathname.endsWith('/session/end'));
      expect(endSession.length).toBeGreaterThan(0);
      expect(new URL(endSession[0]!).searchParams.get('client_id')).toBe('knouds-console');
      expect(requested.filter((u) => /id_token_hint|eyJ/.test(u))).toEqual([]);

      // The API Keys page's own URL, opened again, asks to sign in and shows no keys.
      await page.goto(keysUrl);
      await visible(page.getByRole('button', { name: 'Sign in' }));
      expect(await page.getByRole('table').count()).toBe(0);

      // Signing in again goes through the login page (the provider's session ended too).
      await page.getByRole('button', { name: 'Sign in' }).click();
      await visible(page.getByLabel('Password'));
      await fillLogin(page, suite.demo);
      await visible(page.getByRole('heading', { name: 'API Keys', exact: true }));
    }),
  );

  it(
    '"Sign out", then "Stay signed in" at the provider: the landing says the person is signed out of the console and that Sign in may not ask for the password (once; never on a first visit)',
    suite.withPage(async ({ page }) => {
      const notice = page.getByRole('status').filter({ hasText: 'You are signed out of the Knouds console.' });
      const signInButton = page.getByRole('button', { name: 'Sign in' });
      // A first visit: the landing as it always was.
      await page.goto(`${suite.url}/`);
      await visible(signInButton);
      expect(await notice.count()).toBe(0);
      expect(await page.title()).toBe('Sign in · Knouds console');

      await signInButton.click();
      await fillLogin(page, suite.demo);
      await visible(page.getByRole('heading', { name: 'API Keys', exact: true }));
      await page.getByRole('button', { name: 'Sign out' }).click();
      await visible(page.getByRole('heading', { name: 'Sign out of Knouds' }));
      await page.getByRole('button', { name: 'Stay signed in', exact: true }).click();

      // Back on the console's landing: signed out of the console, and what Sign in will do.
      await visible(notice);
      expect(new URL(page.url()).origin).toBe(suite.url);
      expect(await sessionAccessToken(page)).toBeUndefined();
      expect(await notice.innerText()).toMatch(/still signed in there: Sign in below brings you back to the console without asking for your password/);
      expect(await page.title()).toBe('Signed out · Knouds console');
      await expectAccessible(page, 'the landing after sign-out');

      // Said once: a reload shows the landing as on a first visit.
      await page.reload();
      await visible(signInButton);
      expect(await notice.count()).toBe(0);

      // And it is so: Sign in comes straight back, the provider's session signing in without the form.
      await signInButton.click();
      const keysHeading = page.getByRole('heading', { name: 'API Keys', exact: true });
      await visible(keysHeading.or(page.getByLabel('Password')));
      expect(await keysHeading.isVisible()).toBe(true);
    }),
  );

  it(
    'opened at http://127.0.0.1:<port>/ (its redirect_uri is on localhost): the console moves to the same page on localhost first, and the sign-in completes',
    suite.withPage(async ({ page }) => {
      const loopback = suite.url.replace('//localhost:', '//127.0.0.1:');
      expect(loopback).not.toBe(suite.url);
      await page.goto(`${loopback}/webhooks`);
      const signInButton = page.getByRole('button', { name: 'Sign in' });
      await visible(signInButton);
      expect(page.url()).toBe(`${suite.url}/webhooks`);
      await signInButton.click();
      await fillLogin(page, suite.demo);
      await visible(page.getByRole('heading', { name: 'Webhooks', exact: true }).or(page.getByText('The sign-in did not complete')));
      expect(await page.getByText('The sign-in did not complete').count()).toBe(0);
      expect(page.url()).toBe(`${suite.url}/webhooks`);
      expect(await sessionAccessToken(page)).toEqual(expect.stringMatching(/^eyJ/));
    }),
  );
});

describe('done when (#17): create, copy, curl, delete, curl gets 401', () => {
  it(
    'the demo person creates a key, copies it, curl verifies it (200); once the dialog closes the plaintext is gone; deleted, curl gets 401',
    suite.withPage(
      async ({ page }) => {
        await signIn(page, suite.url, suite.demo);
        const name = `curl demo ${Date.now().toString(36)}`;
        const dialog = await openCreateDialog(page, name);
        await expectAccessible(page, 'the Create API key dialog');
        await dialog.getByRole('radio', { name: 'Workflow Deploy' }).check();
        const shown = await createAndReadKey(dialog);
        await expectAccessible(page, 'the key shown once');

        await page.getByRole('button', { name: 'Copy', exact: true }).click();
        const copied = await eventually(async () => {
          const text = await clipboardText(page);
          expect(text === shown).toBe(true);
          return text;
        });
        // The heap search sees the key while it is shown (so its "not found" later means something).
        expect(await heapHolds(page, copied)).toBe(true);

        // The real curl, with the copied key.
        expect(await curlStatus(`${suite.t.stack.apiUrl}/keys/verify`, copied)).toBe(200);

        await closeKeyDialog(page);
        const theRow = keyRow(page, name);
        await visible(theRow);
        // The row shows the key's prefix (its first 16 characters), never more of it.
        expect(await theRow.innerText()).toContain(copied.slice(0, 16));
        expect(await placesHolding(page, copied)).toEqual([]);
        // "Once closed, the plaintext is gone from the page and from memory": not in the JavaScript heap either.
        expect(await heapHolds(page, copied)).toBe(false);

        // Delete: "Actions for <name>" → "Delete" → the dialog "Delete API key" → "Delete key".
        await rowAction(page, name, 'Delete');
        const confirm = page.getByRole('dialog', { name: 'Delete API key' });
        await visible(confirm);
        expect(await confirm.innerText()).toMatch(/immediately/i);
        await expectAccessible(page, 'the Delete API key dialog');
        await confirm.getByRole('button', { name: 'Delete key' }).click();
        await gone(confirm);
        await gone(theRow);

        expect(await curlStatus(`${suite.t.stack.apiUrl}/keys/verify`, copied)).toBe(401);
        const demoKey = suite.t.stack.adminKey!;
        expect((await keyByName(demoKey, name))).toBeUndefined();
        expect((await suite.api(demoKey, 'GET', '/me')).body['account']).toMatchObject({ account_id: DEMO_ACCOUNT_ID });
      },
      { clipboard: true },
    ),
  );
});

describe('creating keys', () => {
  const presets: [label: string, capabilities: string[], badge: RegExp][] = [
    ['Read-only', ['workflow:read'], /read[- ]only/i],
    ['Workflow Deploy', ['workflow:read', 'workflow:run'], /workflow[- ]deploy/i],
    ['Webhook receiver', ['webhook:receive'], /webhook[- ]receiver/i],
    ['Full deploy', ['workflow:read', 'workflow:run', 'workflow:write'], /full[- ]deploy/i],
  ];

  it(
    'each preset makes a key with exactly its capabilities, which works, shown in the table with the preset\'s badge; "N of 10 keys" and the tier above',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'presets');
      await signIn(page, suite.url, admin);
      await expectAccessible(page, 'the API Keys page');
      const main = page.getByRole('main');
      await eventually(async () => expect(await main.innerText()).toMatch(/\b1 of 10 keys\b/));
      expect(await main.innerText()).toMatch(/business/i);

      for (const [index, [label, capabilities, badge]] of presets.entries()) {
        const name = `${label} key`;
        const dialog = await openCreateDialog(page, name);
        await dialog.getByRole('radio', { name: label, exact: true }).check();
        await dialog.getByRole('combobox', { name: 'Expiration' }).selectOption({ label: 'Never' });
        const key = await createAndReadKey(dialog);
        const verified = await suite.api(key, 'GET', '/keys/verify');
        expect(verified.status).toBe(200);
        expect(sorted(verified.body['capabilities'] as string[])).toEqual(capabilities);
        expect(verified.body).toMatchObject({ name, environment: 'live', workspaces: ['*'], expires_at: null });
        expect(verified.body['created_by']).toEqual({ kind: 'person', subject: admin.subject, email: admin.email });
        await closeKeyDialog(page);

        const theRow = keyRow(page, name);
        await visible(theRow);
        const text = await theRow.innerText();
        expect(text).toMatch(badge);
        expect(text).toContain(String(verified.body['prefix']));
        expect(text).toMatch(/\blive\b/i);
        expect(text).toMatch(/\bnever\b/i);
        expect(text).toContain(admin.email);
        await eventually(async () => expect(await main.innerText()).toMatch(new RegExp(`\\b${index + 2} of 10 keys\\b`)));
      }
    }),
  );

  it(
    'Custom on a pro account: model capabilities are disabled with the reason; one workflow\'s run and other capabilities make a key with exactly those',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('pro');
      const slug = 'nightly-report';
      const workflow = await suite.api(account.adminKey!, 'POST', '/workflows', {
        slug,
        name: 'Nightly report',
        definition: { input_schema: { type: 'object' }, steps: [{ id: 'echo', model: 'echo', input: '$.input' }], output: '$.steps.echo.output' },
      });
      expect(workflow.status).toBe(201);
      const admin = await suite.person([[account.accountId, 'admin']], 'custom');
      await signIn(page, suite.url, admin);

      const name = 'report runner';
      const dialog = await openCreateDialog(page, name);
      await dialog.getByRole('radio', { name: 'Custom', exact: true }).check();
      await expectAccessible(page, 'the Create API key dialog with Custom');

      // Above the pro ceiling: model:run, disabled, and the reason said where a screen reader reads it.
      const modelRun = dialog.getByRole('checkbox', { name: /model:run\b/ });
      await visible(modelRun);
      expect(await modelRun.isDisabled()).toBe(true);
      const reason = `${await accessibleDescription(modelRun)} ${await modelRun.evaluate((el) => (el as unknown as { closest(s: string): { textContent: string } | null }).closest('label, li, div')?.textContent ?? '')}`;
      expect(reason).toMatch(/business|enterprise|tier/i);
      // One model's run is above the ceiling too.
      // The choices come from the account's workflows and models (loaded after the dialog opens).
      await eventually(async () => expect(await canChooseOne(dialog, 'workflow', slug)).toBe(true));
      expect(await canChooseOne(dialog, 'model', 'echo')).toBe(false);

      // Within it: execution:read and keys:read, and the one workflow.
      await dialog.getByRole('checkbox', { name: /execution:read\b/ }).check();
      await dialog.getByRole('checkbox', { name: /keys:read\b/ }).check();
      await chooseOne(dialog, 'workflow', slug);
      const key = await createAndReadKey(dialog);
      const verified = await suite.api(key, 'GET', '/keys/verify');
      expect(verified.status).toBe(200);
      expect(sorted(verified.body['capabilities'] as string[])).toEqual(['execution:read', 'keys:read', `workflow:${slug}:run`]);
      await closeKeyDialog(page);

      // One badge per capability (the set is no preset).
      const text = await keyRow(page, name).innerText();
      for (const capability of ['execution:read', 'keys:read', `workflow:${slug}:run`]) expect(text).toContain(capability);
      // The key runs that workflow, and no other.
      expect((await suite.api(key, 'POST', `/workflows/${slug}/deploy`)).status).toBe(403);
    }),
  );

  it(
    'Custom on a business account: one model\'s run, expiry in 30 days, a test key',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'models');
      await signIn(page, suite.url, admin);
      const name = 'echo only';
      const dialog = await openCreateDialog(page, name);
      await dialog.getByRole('radio', { name: 'Custom', exact: true }).check();
      expect(await dialog.getByRole('checkbox', { name: /model:run\b/ }).isDisabled()).toBe(false);
      await eventually(async () => expect(await canChooseOne(dialog, 'model', 'echo')).toBe(true));
      await chooseOne(dialog, 'model', 'echo');
      await dialog.getByRole('combobox', { name: 'Expiration' }).selectOption({ label: '30 days' });
      await chooseEnvironment(dialog, 'test');
      const key = await createAndReadKey(dialog);
      expect(key.startsWith('knouds_test_')).toBe(true);
      const verified = await suite.api(key, 'GET', '/keys/verify');
      expect(verified.status).toBe(200);
      expect(verified.body['capabilities']).toEqual(['model:echo:run']);
      expect(verified.body['environment']).toBe('test');
      const days = (Date.parse(String(verified.body['expires_at'])) - Date.parse(String(verified.body['created_at']))) / 86_400_000;
      expect(Math.round(days)).toBe(30);
      expect((await suite.api(key, 'POST', '/models/echo/run', { input: { hello: 1 } })).status).toBe(200);
      expect((await suite.api(key, 'POST', '/models/uppercase/run', { input: { text: 'a' } })).status).toBe(403);
      await closeKeyDialog(page);
      const text = await keyRow(page, name).innerText();
      expect(text).toContain('model:echo:run');
      expect(text).toMatch(/\btest\b/i);
    }),
  );
});

describe('choices that cannot be read', () => {
  it(
    'the workflows list failing (503): "Run one workflow" says it could not be loaded and what to do, not that there are none; opened again, the list is there',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const definition = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
      expect((await suite.api(account.adminKey!, 'POST', '/workflows', { slug: 'nightly-report', name: 'Nightly report', definition })).status).toBe(201);
      const admin = await suite.person([[account.accountId, 'admin']], 'choices');
      let failing = true;
      await page.route(
        (url) => url.pathname.endsWith('/workflows'),
        (route) =>
          failing && route.request().method() === 'GET'
            ? answerUnavailable(route)
            : route.continue(),
      );
      await signIn(page, suite.url, admin);
      let dialog = await openCreateDialog(page, 'report runner');
      await dialog.getByRole('radio', { name: 'Custom', exact: true }).check();
      const workflow = () => dialog.getByRole('combobox', { name: 'Run one workflow', exact: true });
      await eventually(async () =>
        expect(await accessibleDescription(workflow())).toBe('The workflows could not be loaded. Close this dialog and open it again to try again.'),
      );
      expect(await dialog.innerText()).not.toContain('No workflows to choose from yet.');
      // The models answered: their list is offered as usual.
      await eventually(async () => expect(await canChooseOne(dialog, 'model', 'echo')).toBe(true));

      failing = false;
      await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
      await gone(dialog);
      dialog = await openCreateDialog(page, 'report runner');
      await dialog.getByRole('radio', { name: 'Custom', exact: true }).check();
      await eventually(async () => expect(await canChooseOne(dialog, 'workflow', 'nightly-report')).toBe(true));
      expect(await accessibleDescription(workflow())).toBe('Gives workflow:<slug>:run for that workflow only.');
    }),
  );
});

/**
 * Picks the run-one-workflow or run-one-model choice for `id`: a checkbox named after it, or an option
 * of a select named after workflows or models (the contract names neither).
 */
async function chooseOne(dialog: Locator, kind: 'workflow' | 'model', id: string): Promise<void> {
  const checkbox = dialog.getByRole('checkbox', { name: new RegExp(`${kind}:${escapeRegExp(id)}:run|\\b${escapeRegExp(id)}\\b`) });
  if ((await checkbox.count()) > 0) {
    await checkbox.first().check();
    return;
  }
  const select = dialog.getByRole('combobox', { name: new RegExp(kind, 'i') });
  await select.selectOption(id);
}

/** Whether the run-one choice for `id` is offered and enabled (see chooseOne). */
async function canChooseOne(dialog: Locator, kind: 'workflow' | 'model', id: string): Promise<boolean> {
  const checkbox = dialog.getByRole('checkbox', { name: new RegExp(`${kind}:${escapeRegExp(id)}:run|\\b${escapeRegExp(id)}\\b`) });
  if ((await checkbox.count()) > 0) return checkbox.first().isEnabled();
  const select = dialog.getByRole('combobox', { name: new RegExp(kind, 'i') });
  if ((await select.count()) === 0 || (await select.isDisabled())) return false;
  return select.evaluate((el, value) => {
    const options = (el as unknown as { options: ArrayLike<{ value: string; disabled: boolean }> }).options;
    return Array.from(options).some((o) => o.value === value && !o.disabled);
  }, id);
}

/** Environment: radio buttons or a select, "live" or "test". */
async function chooseEnvironment(dialog: Locator, environment: 'live' | 'test'): Promise<void> {
  const radio = dialog.getByRole('radio', { name: new RegExp(`^${environment}\\b`, 'i') });
  if ((await radio.count()) > 0) await radio.first().check();
  else await dialog.getByRole('combobox', { name: 'Environment' }).selectOption({ label: environment });
}
