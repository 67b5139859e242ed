/**
 * The console in a real browser: a session that ends while a new key's secret is being made or shown.
 * The README promises "While the key is being made and while it is shown … the page holds it": the
 * session's end (the access token's hour, or a 401 from the API) must not replace the page and lose the
 * plaintext. The dialog stays with the key and says the session ended; "Session ended" follows "Done".
 */
import { jest } from '@jest/globals';
import type { Locator, Page, Route } from 'playwright-core';
import { createKey } from '../../lambdas/shared/services/keys.js';
import { ConsoleSuite, expectAccessible, isFocused, keyRow, openCreateDialog, placesHolding, readShownKey, rowAction, signIn, visible, eventually } from '../support/browser.js';

jest.setTimeout(120_000);

const suite = new ConsoleSuite('e2e-console-session-hold');
beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

/** What the API answers an access token it refuses. */
const refuse = (route: Route) =>
  route.fulfill({
    status: 401,
    contentType: 'application/json',
    headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    body: JSON.stringify({ error: 'The token has expired: sign in again.', code: 'UNAUTHORIZED', request_id: 'r' }),
  });

/**
 * The dialog still shows `key` and says the session ended; "Done" (by keyboard) then shows "Session
 * ended", and the plaintext is gone from the page. The key works.
 */
async function keyKeptThenSessionEnded(page: Page, dialog: Locator, key: string): Promise<void> {
  const notice = dialog.getByRole('alert').filter({ hasText: 'Your session has ended.' });
  await visible(notice);
  expect(await notice.innerText()).toMatch(/copy it, then choose Done and sign in again/);
  const shown = dialog.getByRole('textbox', { name: 'API key' });
  await visible(shown);
  expect((await shown.inputValue()) === key).toBe(true);
  expect(await page.getByRole('heading', { name: 'Session ended', exact: true }).count()).toBe(0);
  await expectAccessible(page, 'a new key shown after the session ended');

  const done = dialog.getByRole('button', { name: 'Done', exact: true });
  await done.focus();
  await page.keyboard.press('Enter');
  const heading = page.getByRole('heading', { name: 'Session ended', exact: true });
  await visible(heading);
  await eventually(async () => expect(await isFocused(heading)).toBe(true));
  await visible(page.getByRole('button', { name: 'Sign in' }));
  expect(await placesHolding(page, key)).toEqual([]);
  expect((await suite.api(key, 'GET', '/keys/verify')).status).toBe(200);
}

describe('a session that ends while a new key is shown', () => {
  it(
    'the access token’s hour ends while the key is on screen: the key stays, with a notice; "Session ended" after Done',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'held-hour');
      // The page's own clock, which the console's expiry timer runs on.
      await page.clock.install();
      await signIn(page, suite.url, admin);
      const dialog = await openCreateDialog(page, 'made at the hour');
      await dialog.getByRole('button', { name: 'Create', exact: true }).click();
      const key = await readShownKey(dialog);
      expect(await dialog.getByRole('alert').count()).toBe(0);
      // The person reads the key until the token's hour is up.
      await page.clock.fastForward('01:00:00');
      await keyKeptThenSessionEnded(page, dialog, key);
    }),
  );

  it(
    'Create succeeds but the list’s refresh after it gets 401: the key is shown, with a notice; "Session ended" after Done',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'held-create');
      await signIn(page, suite.url, admin);
      let created = false;
      await page.route(
        (url) => url.href.startsWith(`${suite.t.stack.apiUrl}/keys`),
        async (route) => {
          if (route.request().method() === 'POST') {
            const answer = await route.fetch();
            created = answer.status() === 201;
            return route.fulfill({ response: answer });
          }
          return created ? refuse(route) : route.continue();
        },
      );
      const dialog = await openCreateDialog(page, 'made as it ended');
      await dialog.getByRole('button', { name: 'Create', exact: true }).click();
      const key = await readShownKey(dialog);
      expect(created).toBe(true);
      await keyKeptThenSessionEnded(page, dialog, key);
    }),
  );

  it(
    'Rotate succeeds but the list’s refresh after it gets 401: the new key is shown, with a notice; "Session ended" after Done',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      await createKey(suite.t.deps(), account.accountId, { name: 'turning over', preset: 'read-only' });
      const admin = await suite.person([[account.accountId, 'admin']], 'held-rotate');
      await signIn(page, suite.url, admin);
      await visible(keyRow(page, 'turning over'));
      let rotated = false;
      await page.route(
        (url) => url.href.startsWith(`${suite.t.stack.apiUrl}/`),
        async (route) => {
          if (route.request().method() === 'POST' && new URL(route.request().url()).pathname.endsWith('/rotate')) {
            const answer = await route.fetch();
            rotated = answer.ok();
            return route.fulfill({ response: answer });
          }
          return rotated ? refuse(route) : route.continue();
        },
      );
      await rowAction(page, 'turning over', 'Rotate');
      const dialog = page.getByRole('dialog', { name: 'Rotate API key' });
      await visible(dialog);
      await dialog.getByRole('radio', { name: /^None/ }).check();
      await dialog.getByRole('button', { name: 'Rotate key', exact: true }).click();
      const key = await readShownKey(dialog);
      expect(rotated).toBe(true);
      await keyKeptThenSessionEnded(page, dialog, key);
    }),
  );
});
