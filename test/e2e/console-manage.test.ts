/**
 * The console in a real browser (issue #17, API.md §6), part 2: a key's life after creation. Edit,
 * Rotate (with and without a grace period), Usage, and the account's limit of 10 active keys. Each test
 * checks what the person sees and what the API then does.
 */
import { jest } from '@jest/globals';
import type { Locator, Page } from 'playwright-core';
import { createKey } from '../../lambdas/shared/services/keys.js';
import {
  answerUnavailable,
  ConsoleSuite,
  closeKeyDialog,
  createAndReadKey,
  curlStatus,
  eventually,
  expectAccessible,
  gone,
  keyRow,
  loseFirstAnswer,
  openCreateDialog,
  readShownKey,
  rowAction,
  signIn,
  visible,
} from '../support/browser.js';

jest.setTimeout(120_000);

const suite = new ConsoleSuite('e2e-console-manage');
beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

const sorted = (values: readonly string[]) => [...values].sort();

/**
 * Presses "Create" in `dialog` with the create request held (it has reached the page's network, not yet
 * the API); the function returned lets it go on.
 */
async function createHeld(page: Page, dialog: Locator): Promise<() => void> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let creates = 0;
  await page.route(
    (url) => url.pathname.endsWith('/keys'),
    async (route) => {
      if (route.request().method() !== 'POST') return route.fallback();
      creates += 1;
      await held;
      return route.continue();
    },
  );
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  await eventually(() => expect(creates).toBe(1));
  return release;
}

/** A key made as an operator would (not through the console), with its plaintext. */
async function operatorKey(accountId: string, body: Record<string, unknown>): Promise<{ keyId: string; key: string }> {
  const { key, apiKey } = await createKey(suite.t.deps(), accountId, body);
  return { keyId: key.key_id, key: apiKey };
}

/** The dialog open now (the last one, when one opens another). */
const openDialog = (page: Page): Locator => page.getByRole('dialog').last();

describe('a key’s life in the console', () => {
  it(
    'Edit changes the name and permissions: the table shows them, and the API holds them',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const { keyId, key } = await operatorKey(account.accountId, { name: 'billing sync', preset: 'read-only' });
      const admin = await suite.person([[account.accountId, 'admin']], 'edit');
      await signIn(page, suite.url, admin);
      await visible(keyRow(page, 'billing sync'));
      expect(await keyRow(page, 'billing sync').innerText()).toMatch(/read[- ]only/i);

      await rowAction(page, 'billing sync', 'Edit');
      const dialog = openDialog(page);
      await visible(dialog);
      // The form starts from the key as it is.
      const nameBox = dialog.getByRole('textbox', { name: 'Name' });
      expect(await nameBox.inputValue()).toBe('billing sync');
      expect(await dialog.getByRole('radio', { name: 'Read-only', exact: true }).isChecked()).toBe(true);
      await expectAccessible(page, 'the Edit dialog');
      await nameBox.fill('billing sync v2');
      await dialog.getByRole('radio', { name: 'Workflow Deploy', exact: true }).check();
      await dialog.getByRole('button', { name: /^save/i }).click();
      await gone(dialog);

      await visible(keyRow(page, 'billing sync v2'));
      expect(await keyRow(page, 'billing sync v2').innerText()).toMatch(/workflow[- ]deploy/i);
      expect(await keyRow(page, 'billing sync').count()).toBe(0);
      const stored = await suite.api(account.adminKey!, 'GET', `/keys/${keyId}`);
      expect(stored.status).toBe(200);
      expect(stored.body['name']).toBe('billing sync v2');
      expect(sorted(stored.body['capabilities'] as string[])).toEqual(['workflow:read', 'workflow:run']);
      // From the next request: the same key now runs workflows.
      expect(sorted((await suite.api(key, 'GET', '/keys/verify')).body['capabilities'] as string[])).toEqual(['workflow:read', 'workflow:run']);
    }),
  );

  it(
    'Escape while a key is being created does not close the dialog: the new key, shown only there, is not lost',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'escape');
      await signIn(page, suite.url, admin);
      await visible(page.getByRole('button', { name: 'Create key', exact: true }));
      // The create request is held until the person has pressed Escape, again and again.
      const dialog = await openCreateDialog(page, 'escape artist');
      const release = await createHeld(page, dialog);
      // Chromium honours a prevented Escape once between two user activations; the second closes a
      // dialog that does not open itself again.
      for (let i = 0; i < 3; i++) {
        await page.keyboard.press('Escape');
        await page.waitForTimeout(100);
      }
      expect(await dialog.isVisible()).toBe(true);
      // Opened again where the focus was, not at its first control.
      expect(await dialog.getByRole('button', { name: 'Create', exact: true }).evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
      release();
      const key = await readShownKey(dialog);
      expect((await suite.api(key, 'GET', '/keys/verify')).body).toMatchObject({ name: 'escape artist' });
      await closeKeyDialog(page);
    }),
  );

  it(
    'Back while a key is being made, or while its secret is shown, stays on the page; reloading asks first; after Done, Back goes back',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'back');
      await signIn(page, suite.url, admin);
      // A page before this one, for Back to go to once the key is stored.
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
      await visible(page.getByRole('heading', { name: 'Webhooks', level: 1 }));
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API Keys' }).click();
      await visible(page.getByRole('button', { name: 'Create key', exact: true }));
      const dialog = await openCreateDialog(page, 'homeward');
      const release = await createHeld(page, dialog);
      // The console's history entry that holds the page (its state names the guard) is in place.
      type Window = { history: { state: Record<string, unknown> | null }; location: { reload(): void } };
      const guarded = () => page.evaluate(() => Boolean((globalThis as unknown as Window).history.state?.['knoudsLeaveGuard']));
      await eventually(async () => expect(await guarded()).toBe(true));
      // Back while the key is being made: the page stays, the request goes on.
      await page.goBack({ waitUntil: 'commit' }).catch(() => undefined);
      await page.waitForTimeout(200);
      expect(new URL(page.url()).pathname).toBe('/keys');
      expect(await dialog.isVisible()).toBe(true);
      release();
      const key = await readShownKey(dialog);
      const stayed = dialog.getByRole('status').filter({ hasText: 'You are still on this page' });
      expect(await stayed.count()).toBe(0);
      // Back while the secret is shown: it stays, and the dialog says why.
      await page.goBack({ waitUntil: 'commit' }).catch(() => undefined);
      await visible(stayed);
      expect(new URL(page.url()).pathname).toBe('/keys');
      expect(await dialog.getByRole('textbox', { name: 'API key' }).inputValue()).toBe(key);
      // Reloading asks first (the browser's own question); staying keeps the secret.
      const asked = new Promise<string>((resolve) => page.once('dialog', (question) => void question.dismiss().then(() => resolve(question.type()))));
      await page.evaluate(() => setTimeout(() => (globalThis as unknown as Window).location.reload(), 0));
      expect(await asked).toBe('beforeunload');
      expect(await dialog.getByRole('textbox', { name: 'API key' }).inputValue()).toBe(key);
      await closeKeyDialog(page);
      // Stored, and nothing holds the page: its entry is taken off, and Back goes to the page before.
      await eventually(async () => expect(await guarded()).toBe(false));
      await page.goBack();
      await visible(page.getByRole('heading', { name: 'Webhooks', level: 1 }));
      expect((await suite.api(key, 'GET', '/keys/verify')).body).toMatchObject({ name: 'homeward' });
    }),
  );

  it(
    'a rotation whose answer was lost, sent again: the replayed answer has no secret, and the dialog says to rotate the new key',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const old = await operatorKey(account.accountId, { name: 'flaky network', preset: 'read-only' });
      const admin = await suite.person([[account.accountId, 'admin']], 'replay');
      await signIn(page, suite.url, admin);
      // The first rotation reaches the API and is done there; its answer never reaches the page.
      const rotations = await loseFirstAnswer(page, '/rotate');
      await rowAction(page, 'flaky network', 'Rotate');
      const dialog = openDialog(page);
      await visible(dialog);
      await chooseGrace(dialog, 'none');
      const rotate = dialog.getByRole('button', { name: /^rotate/i });
      await rotate.click();
      // The page says the request failed (in words of its own), and the key was rotated all the same.
      await visible(dialog.getByRole('alert'));
      expect(rotations()).toBe(1);
      expect(await curlStatus(`${suite.t.stack.apiUrl}/keys/verify`, old.key)).toBe(401);
      await rotate.click();
      await visible(dialog.getByText('Rotate the new key (it has the same name, permissions and workspaces) to get a secret you can copy.'));
      expect(await dialog.innerText()).not.toMatch(/Delete it from the list/);
      expect(rotations()).toBe(2);
      await dialog.getByRole('button', { name: 'Done', exact: true }).click();
      await gone(dialog);
      // One replacement, made by the first attempt.
      const listed = await suite.api(account.adminKey!, 'GET', '/keys');
      expect((listed.body['items'] as { name: string }[]).filter((k) => k.name === 'flaky network')).toHaveLength(1);
    }),
  );

  it(
    'Rotate with a 1-hour grace shows the new key once; both work during the grace. Without grace, the old key stops at once',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const graceful = await operatorKey(account.accountId, { name: 'deploy bot', preset: 'workflow-deploy' });
      const abrupt = await operatorKey(account.accountId, { name: 'leaked key', preset: 'read-only' });
      const admin = await suite.person([[account.accountId, 'admin']], 'rotate');
      await signIn(page, suite.url, admin);
      const verify = `${suite.t.stack.apiUrl}/keys/verify`;

      await rowAction(page, 'deploy bot', 'Rotate');
      let dialog = openDialog(page);
      await visible(dialog);
      await expectAccessible(page, 'the Rotate dialog');
      await chooseGrace(dialog, '1 hour');
      await dialog.getByRole('button', { name: /^rotate/i }).click();
      const rotated = await createdKeyShown(page);
      expect(rotated === graceful.key).toBe(false);
      expect(await curlStatus(verify, rotated)).toBe(200);
      expect(await curlStatus(verify, graceful.key)).toBe(200);
      await closeKeyDialog(page);
      const replacement = await suite.api(rotated, 'GET', '/keys/verify');
      expect(replacement.body).toMatchObject({ name: 'deploy bot' });
      expect(sorted(replacement.body['capabilities'] as string[])).toEqual(['workflow:read', 'workflow:run']);
      // The old key's end is about an hour away.
      const old = await suite.api(account.adminKey!, 'GET', `/keys/${graceful.keyId}`);
      const left = Date.parse(String(old.body['expires_at'])) - Date.now();
      expect(left).toBeGreaterThan(55 * 60_000);
      expect(left).toBeLessThanOrEqual(60 * 60_000);
      // Both keys are listed under the same name during the grace; the old one is told apart: its row
      // says it was replaced, by which prefix, and its button has its own name. Its menu offers only
      // what the API allows on it (edit, disable and rotate go to the replacement).
      const replacedButton = page.getByRole('button', { name: 'Actions for deploy bot (replaced)', exact: true });
      await visible(replacedButton);
      expect(await page.getByRole('button', { name: 'Actions for deploy bot', exact: true }).count()).toBe(1);
      const oldRow = page.getByRole('row').filter({ has: replacedButton });
      expect(await oldRow.innerText()).toMatch(new RegExp(`Replaced[\\s\\S]*by ${rotated.slice(0, 16)}…; works until`));
      expect(await keyRow(page, 'deploy bot').innerText()).toContain(rotated.slice(0, 16));
      await replacedButton.click();
      expect(await page.getByRole('menuitem').allInnerTexts()).toEqual(['Usage', 'History', 'Delete']);
      await page.keyboard.press('Escape');
      await page.getByRole('button', { name: 'Actions for deploy bot', exact: true }).click();
      expect(await page.getByRole('menuitem').allInnerTexts()).toEqual(['Edit', 'Disable', 'Rotate', 'Usage', 'History', 'Delete']);
      await page.keyboard.press('Escape');
      await expectAccessible(page, 'the API Keys page during a rotation’s grace');

      await rowAction(page, 'leaked key', 'Rotate');
      dialog = openDialog(page);
      await visible(dialog);
      await chooseGrace(dialog, 'none');
      await dialog.getByRole('button', { name: /^rotate/i }).click();
      const fresh = await createdKeyShown(page);
      expect(await curlStatus(verify, fresh)).toBe(200);
      expect(await curlStatus(verify, abrupt.key)).toBe(401);
      await closeKeyDialog(page);
    }),
  );

  it(
    'Usage shows the requests made today and this month, the limit per minute, last used, and a 30-day chart',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const { keyId, key } = await operatorKey(account.accountId, { name: 'metered key', preset: 'read-only' });
      const today = new Date().toISOString().slice(0, 10);
      for (let i = 0; i < 7; i++) expect((await suite.api(key, 'GET', '/workflows')).status).toBe(200);
      const usage = await suite.api(account.adminKey!, 'GET', `/keys/${keyId}/usage`);
      expect(usage.body).toMatchObject({ requests_today: 7, requests_this_month: 7, rate_limit: 1000 });
      const admin = await suite.person([[account.accountId, 'admin']], 'usage');
      await signIn(page, suite.url, admin);

      await rowAction(page, 'metered key', 'Usage');
      const panel = openDialog(page).or(page.getByRole('region', { name: /usage/i })).first();
      await visible(panel);
      const text = await eventually(async () => {
        const t = await panel.innerText();
        expect(t).toMatch(/today\D{0,40}\b7\b|\b7\b\D{0,40}today/i);
        return t;
      });
      expect(text).toMatch(/month\D{0,40}\b7\b|\b7\b\D{0,40}month/i);
      expect(text).toMatch(/1,?000/);
      expect(text).toMatch(/minute/i);
      expect(text).toMatch(/last used/i);
      expect(text).not.toMatch(/last used\W*never/i);
      // The chart of the last 30 days, named for those who cannot see it.
      await visible(panel.getByRole('img', { name: /30 days/i }));
      // Each day's number, from the keyboard too (a bar's own number shows on a pointer's hover only).
      await panel.getByText('Show the requests of each day', { exact: true }).focus();
      await page.keyboard.press('Enter');
      const table = panel.getByRole('table', { name: /30 days/i });
      await visible(table);
      expect(await table.getByRole('row', { name: new RegExp(`^${today} 7$`) }).count()).toBe(1);
      expect(await table.getByRole('row').count()).toBe(31);
      await expectAccessible(page, 'the Usage view');
    }),
  );

  it(
    'Usage that fails to load offers "Try again" (the focus stays in the dialog); for a key deleted meanwhile it says so and the list drops it',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      await operatorKey(account.accountId, { name: 'wobbly', preset: 'read-only' });
      const doomed = await operatorKey(account.accountId, { name: 'doomed', preset: 'read-only' });
      const admin = await suite.person([[account.accountId, 'admin']], 'usage-fails');
      await signIn(page, suite.url, admin);

      // The first usage request fails as a gateway would (503); the second goes through.
      let failures = 0;
      await page.route(
        (url) => url.pathname.endsWith('/usage'),
        async (route) => {
          if (route.request().method() !== 'GET' || failures > 0) return route.continue();
          failures += 1;
          return answerUnavailable(route);
        },
      );
      await rowAction(page, 'wobbly', 'Usage');
      let dialog = page.getByRole('dialog', { name: 'Usage of wobbly', exact: true });
      await visible(dialog.getByRole('alert'));
      const again = dialog.getByRole('button', { name: 'Try again', exact: true });
      await again.focus();
      await page.keyboard.press('Enter');
      await visible(dialog.getByRole('img', { name: /30 days/i }));
      expect(failures).toBe(1);
      expect(await dialog.getByRole('button', { name: 'Close', exact: true }).evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
      await page.keyboard.press('Escape');
      await gone(dialog);

      // Deleted by someone else after the list was shown.
      expect((await suite.api(account.adminKey!, 'DELETE', `/keys/${doomed.keyId}`)).status).toBe(204);
      await rowAction(page, 'doomed', 'Usage');
      dialog = page.getByRole('dialog', { name: 'Usage of doomed', exact: true });
      await visible(dialog.getByRole('alert'));
      expect(await dialog.getByRole('button', { name: 'Try again' }).count()).toBe(0);
      await page.keyboard.press('Escape');
      await gone(keyRow(page, 'doomed'));
      await visible(keyRow(page, 'wobbly'));
    }),
  );

  it(
    '"N of 10 keys": creating past 10 says to delete one first, in words; the count follows',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      for (let i = 2; i <= 9; i++) await operatorKey(account.accountId, { name: `fleet ${i}`, preset: 'read-only' });
      const admin = await suite.person([[account.accountId, 'admin']], 'limit');
      await signIn(page, suite.url, admin);
      const main = page.getByRole('main');
      await eventually(async () => expect(await main.innerText()).toMatch(/\b9 of 10 keys\b/));

      // The 10th is made elsewhere while the dialog is open: the console's create then meets the limit.
      const dialog = await openCreateDialog(page, 'one too many');
      await dialog.getByRole('radio', { name: 'Read-only', exact: true }).check();
      await operatorKey(account.accountId, { name: 'fleet 10', preset: 'read-only' });
      await dialog.getByRole('button', { name: 'Create', exact: true }).click();
      const alert = page.getByRole('alert').filter({ hasText: /delete one first/i });
      await visible(alert);
      expect(await alert.innerText()).toMatch(/10 of 10 keys/i);
      expect(await alert.innerText()).not.toMatch(/KEY_LIMIT_REACHED/);
      expect(await page.getByRole('textbox', { name: 'API key' }).count()).toBe(0);

      await page.keyboard.press('Escape');
      await gone(dialog);
      await page.reload();
      await eventually(async () => expect(await main.innerText()).toMatch(/\b10 of 10 keys\b/));
      // At the limit, trying again says it again.
      const retry = await openCreateDialog(page, 'still too many');
      await retry.getByRole('button', { name: 'Create', exact: true }).click();
      await visible(page.getByRole('alert').filter({ hasText: /delete one first/i }));
      await page.keyboard.press('Escape');
      await gone(retry);
      // Deleting one frees a slot.
      await rowAction(page, 'fleet 10', 'Delete');
      await page.getByRole('dialog', { name: 'Delete API key' }).getByRole('button', { name: 'Delete key' }).click();
      await eventually(async () => expect(await main.innerText()).toMatch(/\b9 of 10 keys\b/));
      const again = await openCreateDialog(page, 'room again');
      await again.getByRole('radio', { name: 'Read-only', exact: true }).check();
      const created = await createAndReadKey(again);
      expect((await suite.api(created, 'GET', '/keys/verify')).status).toBe(200);
    }),
  );
});

/** The rotation's grace period: "none", "1 hour" or "24 hours", as radio buttons or a select. */
async function chooseGrace(dialog: Locator, grace: 'none' | '1 hour' | '24 hours'): Promise<void> {
  const name = new RegExp(`^${grace === 'none' ? '(none|no grace)' : grace}`, 'i');
  const radio = dialog.getByRole('radio', { name });
  if ((await radio.count()) > 0) await radio.first().check();
  else await dialog.getByRole('combobox', { name: /grace/i }).selectOption({ label: grace === 'none' ? 'None' : grace });
}

/** The new key shown once after a rotation (the textbox "API key"). */
async function createdKeyShown(page: Page): Promise<string> {
  const shown = page.getByRole('textbox', { name: 'API key' });
  await visible(shown);
  return shown.inputValue();
}
