/**
 * The console in a real browser (issue #17, API.md §6), part 3: who sees what, the webhook secret, and
 * the keyboard alone. A free account's admin sees that keys need Pro; a viewer sees everything
 * read-only; a person of two accounts switches between them (the console then sends Knouds-Account);
 * the Webhooks page reveals, copies and rotates the signing secret; a key is created and deleted with
 * the keyboard only (no click reaches the page).
 */
import { jest } from '@jest/globals';
import type { Locator, Page } from 'playwright-core';
import { createKey } from '../../lambdas/shared/services/keys.js';
import { setMemberRole } from '../../admin-cli/members.js';
import {
  answerUnavailable,
  ConsoleSuite,
  clipboardText,
  eventually,
  expectAccessible,
  fillLogin,
  gone,
  openCreateDialog,
  isFocused,
  keyRow,
  loseFirstAnswer,
  placesHolding,
  pressUntilFocused,
  rowAction,
  signIn,
  visible,
} from '../support/browser.js';

jest.setTimeout(120_000);

const suite = new ConsoleSuite('e2e-console-access');
beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

const enabledCount = async (locator: Locator): Promise<number> => {
  let n = 0;
  for (const one of await locator.all()) if (await one.isEnabled()) n++;
  return n;
};

describe('what each person may do', () => {
  it(
    'a free account’s admin sees that keys need the Pro tier or higher, and no usable "Create key"',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('free');
      const admin = await suite.person([[account.accountId, 'admin']], 'free');
      await signIn(page, suite.url, admin);
      const main = page.getByRole('main');
      await eventually(async () => expect(await main.innerText()).toMatch(/\bPro\b.{0,40}(or higher|or above)/i));
      expect(await main.innerText()).toMatch(/free/i);
      // In words, never a raw code.
      expect(await main.innerText()).not.toMatch(/CAPABILITY_DENIED|TIER_CEILING_EXCEEDED|\b403\b/);
      expect(await enabledCount(page.getByRole('button', { name: 'Create key', exact: true }))).toBe(0);
      await expectAccessible(page, 'the API Keys page of a free account');
      // A tier is changed by whoever manages the account's subscription, not by its admins (this person is one).
      expect(await main.innerText()).toContain('have the account upgraded to Pro or higher: ask whoever manages your Knouds subscription.');
      expect(await main.innerText()).not.toMatch(/ask an admin/i);
      await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
      await visible(page.getByRole('heading', { name: 'Webhooks', exact: true }));
      await eventually(async () => expect(await main.innerText()).toContain('To use them, have the account upgraded: ask whoever manages your Knouds subscription.'));
      expect(await main.innerText()).not.toMatch(/ask an admin/i);
    }),
  );

  it(
    'a free account’s viewer is told to ask an admin of the account (on API Keys and Webhooks)',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('free');
      const viewer = await suite.person([[account.accountId, 'viewer']], 'free-viewer');
      await signIn(page, suite.url, viewer);
      const main = page.getByRole('main');
      await eventually(async () => expect(await main.innerText()).toContain('ask an admin of the account, or whoever manages your Knouds subscription.'));
      await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
      await visible(page.getByRole('heading', { name: 'Webhooks', exact: true }));
      await eventually(async () => expect(await main.innerText()).toContain('Ask an admin of the account to have it upgraded.'));
    }),
  );

  it(
    'a viewer sees the keys read-only: no "Create key", no Edit, Rotate or Delete, no "Rotate secret"',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      await createKey(suite.t.deps(), account.accountId, { name: 'shared reader', preset: 'read-only' });
      const viewer = await suite.person([[account.accountId, 'viewer']], 'viewer');
      await signIn(page, suite.url, viewer);
      await visible(keyRow(page, 'shared reader'));
      await visible(keyRow(page, 'Operator key'));
      expect(await enabledCount(page.getByRole('button', { name: 'Create key', exact: true }))).toBe(0);
      await expectAccessible(page, 'the API Keys page of a viewer');

      // The row's menu, if any, offers nothing that changes the key.
      const actions = page.getByRole('button', { name: 'Actions for shared reader', exact: true });
      const offered: string[] = [];
      if ((await enabledCount(actions)) > 0) {
        await actions.click();
        await visible(page.getByRole('menu'));
        for (const item of ['Edit', 'Disable', 'Enable', 'Rotate', 'Delete']) {
          if ((await enabledCount(page.getByRole('menuitem', { name: item, exact: true }))) > 0) offered.push(item);
        }
        await page.keyboard.press('Escape');
      }
      expect(offered).toEqual([]);

      await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
      await visible(page.getByRole('heading', { name: 'Webhooks', exact: true }));
      // Loaded (a viewer may read the secret), and no way to change it.
      await visible(page.getByRole('button', { name: 'Reveal' }));
      expect(await enabledCount(page.getByRole('button', { name: 'Rotate secret' }))).toBe(0);
      await expectAccessible(page, 'the Webhooks page of a viewer');
    }),
  );

  it(
    'a person of two accounts chooses another account (arrow keys change nothing yet), switches with "Switch", and sees its keys; the console sends Knouds-Account and says so',
    suite.withPage(async ({ page }) => {
      const a = await suite.account('business');
      const b = await suite.account('pro');
      await createKey(suite.t.deps(), a.accountId, { name: 'alpha key', preset: 'read-only' });
      await createKey(suite.t.deps(), b.accountId, { name: 'beta key', preset: 'read-only' });
      const both = await suite.person([[a.accountId, 'admin'], [b.accountId, 'viewer']], 'two-accounts');
      const sentAccounts = new Set<string>();
      page.on('request', (request) => {
        if (!request.url().startsWith(`${suite.t.stack.apiUrl}/`)) return;
        const header = request.headers()['knouds-account'];
        if (header) sentAccounts.add(header);
      });
      await signIn(page, suite.url, both);
      // The first of their accounts (by id) comes first.
      const [first, second] = [a, b].sort((x, y) => x.accountId.localeCompare(y.accountId)) as [typeof a, typeof b];
      const [firstKey, secondKey] = first === a ? ['alpha key', 'beta key'] : ['beta key', 'alpha key'];
      await visible(keyRow(page, firstKey));
      expect(await keyRow(page, secondKey).count()).toBe(0);

      // With the keyboard alone: the arrow key chooses, and nothing changes until "Switch".
      const switcher = page.getByRole('combobox', { name: /account/i });
      const switchButton = page.getByRole('button', { name: 'Switch', exact: true });
      expect(await switchButton.getAttribute('aria-disabled')).toBe('true');
      await switcher.focus();
      await page.keyboard.press('ArrowDown');
      expect(await switcher.inputValue()).toBe(second.accountId);
      // The choice says it is not shown yet, beside the select and as its description.
      await visible(page.getByText('Not shown yet: press Switch.', { exact: true }));
      expect(await switcher.evaluate((el) => el.ownerDocument.getElementById(el.getAttribute('aria-describedby') ?? '')?.textContent)).toBe('Not shown yet: press Switch.');
      await new Promise((r) => setTimeout(r, 500));
      expect(sentAccounts.has(second.accountId)).toBe(false);
      await visible(keyRow(page, firstKey));
      await page.keyboard.press('Tab');
      expect(await switchButton.evaluate((b) => b === b.ownerDocument.activeElement)).toBe(true);
      await page.keyboard.press('Enter');
      await visible(keyRow(page, secondKey));
      await gone(keyRow(page, firstKey));
      expect(sentAccounts.has(second.accountId)).toBe(true);
      await gone(page.getByText('Not shown yet: press Switch.', { exact: true }));
      expect(await switcher.getAttribute('aria-describedby')).toBeNull();
      await eventually(async () => expect(await page.getByRole('status').filter({ hasText: `Now showing account ${second.accountId}` }).count()).toBe(1));
      // Nothing more to switch to, and the keyboard's focus is where it was.
      expect(await switchButton.getAttribute('aria-disabled')).toBe('true');
      expect(await switchButton.evaluate((b) => b === b.ownerDocument.activeElement)).toBe(true);
      // The tier shown follows the account.
      await eventually(async () => expect(await page.getByRole('main').innerText()).toMatch(second === b ? /\bpro\b/i : /business/i));

      // A page's filters belong to the account they were chosen in: a key's history, then a switch back,
      // shows the Audit log of the other account unfiltered (not the first account's key as "deleted").
      await rowAction(page, secondKey, 'History');
      await eventually(async () => expect(new URL(page.url()).searchParams.get('target_id')).toMatch(/^key_/));
      await switcher.selectOption(first.accountId);
      await switchButton.click();
      await eventually(async () => expect(new URL(page.url()).search).toBe(''));
      expect(new URL(page.url()).pathname).toBe('/audit');
      await eventually(async () => expect(await page.getByRole('combobox', { name: 'Key', exact: true }).inputValue()).toBe(''));
    }),
  );

  it(
    'a switch that fails changes nothing: the select goes back, an alert says why, and every call stays with the account shown',
    suite.withPage(async ({ page }) => {
      const a = await suite.account('business');
      const b = await suite.account('business');
      await createKey(suite.t.deps(), a.accountId, { name: 'gamma key', preset: 'read-only' });
      await createKey(suite.t.deps(), b.accountId, { name: 'delta key', preset: 'read-only' });
      const both = await suite.person([[a.accountId, 'admin'], [b.accountId, 'admin']], 'switch-fails');
      await signIn(page, suite.url, both);
      const [first, second] = [a, b].sort((x, y) => x.accountId.localeCompare(y.accountId)) as [typeof a, typeof b];
      const firstKey = first === a ? 'gamma key' : 'delta key';
      await visible(keyRow(page, firstKey));
      // The other account's details cannot be had (a network blip, a rate limit): 503 for its GET /me.
      await page.route(`${suite.t.stack.apiUrl}/me`, (route) =>
        route.request().headers()['knouds-account'] === second.accountId
          ? answerUnavailable(route, 7)
          : route.continue(),
      );
      const sent: string[] = [];
      page.on('request', (request) => {
        if (request.url().startsWith(`${suite.t.stack.apiUrl}/`)) sent.push(request.headers()['knouds-account'] ?? '');
      });
      const switcher = page.getByRole('combobox', { name: /account/i });
      await switcher.selectOption(second.accountId);
      await page.getByRole('button', { name: 'Switch', exact: true }).click();
      await visible(page.getByRole('alert').filter({ hasText: `Could not switch to ${second.accountId}` }));
      // A 503 with Retry-After says when to try again.
      expect(await page.getByRole('alert').filter({ hasText: `Could not switch to ${second.accountId}` }).innerText()).toContain('try again in 7 seconds');
      await eventually(async () => expect(await switcher.inputValue()).toBe(first.accountId));
      expect(await page.evaluate("sessionStorage.getItem('knouds.account')")).toBe(first.accountId);
      // The page still shows the first account, and what it does goes there.
      sent.length = 0;
      await page.getByRole('button', { name: `Actions for ${firstKey}` }).click();
      await page.getByRole('menuitem', { name: 'Usage' }).click();
      await visible(page.getByRole('dialog', { name: `Usage of ${firstKey}` }));
      await eventually(async () => expect(sent.length).toBeGreaterThan(0));
      expect(new Set(sent)).toEqual(new Set([first.accountId]));
      await page.keyboard.press('Escape');
      await gone(page.getByRole('dialog', { name: `Usage of ${firstKey}` }));

      // The alert is about that attempt: choosing again puts it away (the new choice stays, marked not shown yet)…
      const failed = page.getByRole('alert').filter({ hasText: `Could not switch to ${second.accountId}` });
      await switcher.selectOption(second.accountId);
      await gone(failed);
      expect(await switcher.inputValue()).toBe(second.accountId);
      await visible(page.getByText('Not shown yet: press Switch.', { exact: true }));
      // …and so does going to another page.
      await page.getByRole('button', { name: 'Switch', exact: true }).click();
      await visible(failed);
      await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
      await visible(page.getByRole('heading', { name: 'Webhooks', exact: true }));
      await gone(failed);
    }),
  );
});

describe('access that changes while the page is open', () => {
  it(
    'an admin made viewer meanwhile: "Create" is refused in words, and the page turns read-only without a reload',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const person = await suite.person([[account.accountId, 'admin']], 'demoted');
      await signIn(page, suite.url, person);
      const dialog = await openCreateDialog(page, 'too late');
      await setMemberRole(suite.t.members(), account.accountId, { subject: person.subject }, 'viewer', new Date());
      await dialog.getByRole('button', { name: 'Create', exact: true }).click();
      await visible(dialog.getByRole('alert'));
      expect(await dialog.getByRole('alert').innerText()).not.toMatch(/CAPABILITY_DENIED|\b403\b/);
      await page.keyboard.press('Escape');
      await gone(dialog);
      // /me read again: the viewer's page, with its reason, and nothing that changes a key.
      await visible(page.getByText('your role in this account is viewer', { exact: false }));
      expect(await enabledCount(page.getByRole('button', { name: 'Create key', exact: true }))).toBe(0);
      expect((await suite.api(account.adminKey!, 'GET', '/keys')).body['items']).toHaveLength(1);
    }),
  );
});

describe('a person of no account', () => {
  it(
    'is told so in words after signing in, not with a raw code',
    suite.withPage(async ({ page }) => {
      const nobody = await suite.person([], 'nobody');
      await page.goto(`${suite.url}/`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await fillLogin(page, nobody);
      await eventually(async () => expect(await page.locator('body').innerText()).toMatch(/not a member|no account|belong to no|any account/i));
      expect(await page.locator('body').innerText()).not.toMatch(/NOT_A_MEMBER/);
      expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(1);
    }),
  );
});

describe('the Webhooks page', () => {
  it(
    'the signing secret is hidden until "Reveal", equals GET /webhooks/secret, copies, and "Rotate secret" (confirmed) replaces it',
    suite.withPage(
      async ({ page }) => {
        const account = await suite.account('business');
        const admin = await suite.person([[account.accountId, 'admin']], 'webhooks');
        const secretOf = async () => {
          const reply = await suite.api(account.adminKey!, 'GET', '/webhooks/secret');
          expect(reply.status).toBe(200);
          return String(reply.body['secret']);
        };
        const before = await secretOf();
        await signIn(page, suite.url, admin);
        await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
        await visible(page.getByRole('heading', { name: 'Webhooks', exact: true }));
        await visible(page.getByRole('button', { name: 'Reveal' }));
        expect(await placesHolding(page, before)).toEqual([]);
        await expectAccessible(page, 'the Webhooks page');

        await page.getByRole('button', { name: 'Reveal' }).click();
        await eventually(async () => expect((await placesHolding(page, before)).length).toBeGreaterThan(0));
        await expectAccessible(page, 'the Webhooks page, secret revealed');
        await page.getByRole('button', { name: 'Copy', exact: true }).first().click();
        await eventually(async () => expect((await clipboardText(page)) === before).toBe(true));

        await page.getByRole('button', { name: 'Rotate secret' }).click();
        const confirm = page.getByRole('dialog');
        await visible(confirm);
        await expectAccessible(page, 'the Rotate secret confirmation');
        // Nothing changes until it is confirmed.
        expect((await secretOf()) === before).toBe(true);
        const noGrace = confirm.getByRole('radio', { name: /^none\b/i });
        if ((await noGrace.count()) > 0) await noGrace.check();
        await confirm.getByRole('button', { name: /^rotate/i }).click();
        const after = await eventually(async () => {
          const now = await secretOf();
          expect(now === before).toBe(false);
          return now;
        });
        expect(after).toMatch(/^whsec_/);
        // The confirmation may show the new secret before it closes: the new one, never the old.
        await eventually(async () => expect(await placesHolding(page, before)).toEqual([]));
        const done = confirm.getByRole('button', { name: /^(done|close)\b/i });
        if ((await done.count()) > 0) await done.first().click();
        await gone(confirm);
        // The page shows the new secret (after "Reveal" if it hid it again), not the old one.
        const reveal = page.getByRole('button', { name: 'Reveal' });
        if (await reveal.isVisible()) await reveal.click();
        await eventually(async () => expect((await placesHolding(page, after)).length).toBeGreaterThan(0));
        expect(await placesHolding(page, before)).toEqual([]);
      },
      { clipboard: true },
    ),
  );

  it(
    'a rotation whose answer was lost, sent again: rotated once (the secret it replaced keeps its grace), and the dialog shows the new secret',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'webhooks-replay');
      const before = await suite.api(account.adminKey!, 'GET', '/webhooks/secret');
      expect(before.status).toBe(200);
      await signIn(page, suite.url, admin);
      await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
      await visible(page.getByRole('button', { name: 'Rotate secret' }));
      // The first rotation reaches the API and is done there; its answer never reaches the page.
      const rotations = await loseFirstAnswer(page, '/webhooks/secret/rotate');
      await page.getByRole('button', { name: 'Rotate secret' }).click();
      const confirm = page.getByRole('dialog');
      await confirm.getByRole('radio', { name: '24 hours' }).check();
      await confirm.getByRole('button', { name: /^rotate/i }).click();
      await visible(confirm.getByRole('alert'));
      await confirm.getByRole('button', { name: /^rotate/i }).click();
      const shown = confirm.getByRole('textbox', { name: 'Signing secret' });
      await visible(shown);
      const now = await suite.api(account.adminKey!, 'GET', '/webhooks/secret');
      expect(rotations()).toBe(2);
      // One rotation: its secret is the one shown, and the secret it replaced still signs for a day.
      expect((await shown.inputValue()) === now.body['secret']).toBe(true);
      expect(now.body['secret'] === before.body['secret']).toBe(false);
      const left = Date.parse(String(now.body['previous_secret_expires_at'])) - Date.now();
      expect(left).toBeGreaterThan(23 * 3_600_000);
      expect((await confirm.innerText()).includes('also signs until')).toBe(true);
      const events = await suite.api(account.adminKey!, 'GET', '/audit-events?action=webhook_secret.rotated');
      expect(events.body['items']).toHaveLength(1);
    }),
  );
});

describe('the keyboard alone', () => {
  it(
    'creates a key and deletes it with Tab, arrows, Enter, Space and Escape, no click',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'keyboard');
      await keyboardSignIn(page, admin);

      // Create: "Create key" → Name → Permissions (arrows) → Create.
      const createButton = page.getByRole('button', { name: 'Create key', exact: true });
      await pressUntilFocused(page, createButton);
      await page.keyboard.press('Enter');
      const dialog = page.getByRole('dialog', { name: 'Create API key' });
      await visible(dialog);
      // The focus moved into the dialog.
      expect(await dialog.evaluate((el) => el.contains(el.ownerDocument.activeElement))).toBe(true);
      await pressUntilFocused(page, dialog.getByRole('textbox', { name: 'Name' }));
      await page.keyboard.type('typed by keyboard');
      await reachRadioGroup(page, dialog);
      const deploy = dialog.getByRole('radio', { name: 'Workflow Deploy', exact: true });
      for (let i = 0; i < 6 && !(await deploy.isChecked()); i++) await page.keyboard.press('ArrowDown');
      expect(await deploy.isChecked()).toBe(true);
      await pressUntilFocused(page, dialog.getByRole('button', { name: 'Create', exact: true }));
      await page.keyboard.press('Enter');
      const shown = page.getByRole('textbox', { name: 'API key' });
      await visible(shown);
      const key = await shown.inputValue();
      // The shown key's own dialog: its Copy and close buttons are reachable; Escape or its close button closes it.
      await pressUntilFocused(page, page.getByRole('button', { name: 'Copy', exact: true }));
      await page.keyboard.press('Escape');
      if (await shown.isVisible()) {
        await pressUntilFocused(page, page.getByRole('dialog').last().getByRole('button', { name: /^(done|close)\b/i }).first());
        await page.keyboard.press('Enter');
      }
      await gone(shown);
      await visible(keyRow(page, 'typed by keyboard'));
      const made = await suite.api(key, 'GET', '/keys/verify');
      expect(made.status).toBe(200);
      expect([...(made.body['capabilities'] as string[])].sort()).toEqual(['workflow:read', 'workflow:run']);

      // Delete: "Actions for …" (Space opens the menu) → arrows to "Delete" → Enter → Escape cancels; again → "Delete key".
      const actions = page.getByRole('button', { name: 'Actions for typed by keyboard', exact: true });
      const openDelete = async () => {
        await pressUntilFocused(page, actions);
        await page.keyboard.press('Space');
        await visible(page.getByRole('menu'));
        const item = page.getByRole('menuitem', { name: 'Delete', exact: true });
        for (let i = 0; i < 6 && !(await isFocused(item)); i++) await page.keyboard.press('ArrowDown');
        expect(await isFocused(item)).toBe(true);
        await page.keyboard.press('Enter');
        const confirm = page.getByRole('dialog', { name: 'Delete API key' });
        await visible(confirm);
        return confirm;
      };
      let confirm = await openDelete();
      await page.keyboard.press('Escape');
      await gone(confirm);
      expect((await suite.api(key, 'GET', '/keys/verify')).status).toBe(200);
      // The focus went back to the menu's button (or stays reachable from it).
      confirm = await openDelete();
      await pressUntilFocused(page, confirm.getByRole('button', { name: 'Delete key' }));
      await page.keyboard.press('Enter');
      await gone(confirm);
      await gone(keyRow(page, 'typed by keyboard'));
      expect((await suite.api(key, 'GET', '/keys/verify')).status).toBe(401);
    }),
  );
});

/** Signs in with the keyboard: Tab to "Sign in", Enter; on the provider's page type, Tab, Enter. */
async function keyboardSignIn(page: Page, person: { email: string; password: string }): Promise<void> {
  await page.goto(`${suite.url}/`);
  await pressUntilFocused(page, page.getByRole('button', { name: 'Sign in' }));
  await page.keyboard.press('Enter');
  const email = page.getByLabel('Email');
  await visible(email);
  await pressUntilFocused(page, email);
  await page.keyboard.type(person.email);
  await pressUntilFocused(page, page.getByLabel('Password'));
  await page.keyboard.type(person.password);
  await page.keyboard.press('Enter');
  await visible(page.getByRole('heading', { name: 'API Keys', exact: true }));
}

/** Tabs until the focus is on one of the dialog's Permissions radio buttons. */
async function reachRadioGroup(page: Page, dialog: Locator): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const onRadio = await dialog.evaluate((el) => {
      const active = el.ownerDocument.activeElement;
      return !!active && el.contains(active) && (active.getAttribute('type') === 'radio' || active.getAttribute('role') === 'radio');
    });
    if (onRadio) return;
    await page.keyboard.press('Tab');
  }
  throw new Error('Tab never reached the Permissions radio buttons');
}

describe('the keyboard keeps its place when what it was on goes away', () => {
  /** What has the focus: the element's role or tag and its text, or "body" when nothing does. */
  const focusOf = (page: Page): Promise<string> =>
    page.evaluate(`(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return 'body';
      return (el.getAttribute('role') ?? el.tagName.toLowerCase()) + ': ' + (el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 40);
    })()`);

  it(
    'Webhooks: Reveal hands the focus to the secret, Hide to Reveal, and Copy keeps it',
    suite.withPage(
      async ({ page }) => {
        const account = await suite.account('business');
        const admin = await suite.person([[account.accountId, 'admin']], 'focus-webhooks');
        await keyboardSignIn(page, admin);
        await pressUntilFocused(page, page.getByRole('link', { name: 'Webhooks', exact: true }));
        await page.keyboard.press('Enter');
        await visible(page.getByRole('heading', { name: 'Webhooks', exact: true }));
        const reveal = page.getByRole('button', { name: 'Reveal' });
        await pressUntilFocused(page, reveal);
        await page.keyboard.press('Enter');
        const field = page.getByRole('textbox', { name: 'Signing secret' });
        await visible(field);
        await eventually(async () => expect(await isFocused(field)).toBe(true));
        const hide = page.getByRole('button', { name: 'Hide' });
        await pressUntilFocused(page, hide);
        await page.keyboard.press('Enter');
        await eventually(async () => expect(await focusOf(page)).toBe('button: Reveal'));
        const copy = page.getByRole('button', { name: 'Copy', exact: true });
        await pressUntilFocused(page, copy);
        await page.keyboard.press('Enter');
        await visible(page.getByRole('status').filter({ hasText: 'Copied' }));
        expect(await focusOf(page)).toBe('button: Copy');
      },
      { clipboard: true },
    ),
  );

  it(
    '"Try again" on API Keys and on the Audit log hands the focus to the page’s heading once it has loaded',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'focus-retry');
      await keyboardSignIn(page, admin);
      for (const [link, heading, path] of [
        ['API Keys', 'API Keys', '/keys'],
        ['Audit log', 'Audit log', '/audit-events'],
      ] as const) {
        // The list's first request fails (a blip); the next ones go through.
        let failures = 1;
        const pattern = new RegExp(`^${suite.t.stack.apiUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${path}(\\?|$)`);
        await page.route(pattern, (route) =>
          route.request().method() === 'GET' && failures-- > 0
            ? route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: 'Internal server error', code: 'INTERNAL_ERROR', request_id: 'req-1' }) })
            : route.continue(),
        );
        await pressUntilFocused(page, page.getByRole('link', { name: link, exact: true }));
        await page.keyboard.press('Enter');
        if (link === 'API Keys') await page.reload();
        const retry = page.getByRole('button', { name: 'Try again' });
        await visible(retry);
        await pressUntilFocused(page, retry);
        await page.keyboard.press('Enter');
        await gone(retry);
        await eventually(async () => expect(await focusOf(page)).toBe(`h1: ${heading}`));
        await page.unroute(pattern);
      }
    }),
  );

  it(
    'a key rotated without grace: closing the dialog before the list reloads leaves the focus on the page, not its body',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      await createKey(suite.t.deps(), account.accountId, { name: 'turnover', preset: 'read-only' });
      const admin = await suite.person([[account.accountId, 'admin']], 'focus-rotate');
      await signIn(page, suite.url, admin);
      await visible(keyRow(page, 'turnover'));
      // The list's reload after the rotation is held back until the dialog has closed.
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => (release = resolve));
      let hold = false;
      await page.route((url) => url.href.startsWith(`${suite.t.stack.apiUrl}/keys?`), async (route) => {
        if (hold && route.request().method() === 'GET') await held;
        await route.continue();
      });
      const prefixBefore = await keyRow(page, 'turnover').locator('td').first().innerText();
      await rowAction(page, 'turnover', 'Rotate');
      const dialog = page.getByRole('dialog');
      await visible(dialog);
      await dialog.getByRole('radio', { name: /^None/ }).check();
      hold = true;
      await dialog.getByRole('button', { name: /^rotate/i }).click();
      const done = dialog.getByRole('button', { name: /^(done|close)\b/i });
      await visible(done);
      await done.focus();
      await page.keyboard.press('Enter');
      await gone(dialog);
      // The dialog gave the focus back to the row's Actions button; the reload then removes that row.
      expect(await focusOf(page)).toBe('button: Actions for turnover');
      release();
      await eventually(async () => expect(await keyRow(page, 'turnover').locator('td').first().innerText()).not.toBe(prefixBefore));
      await eventually(async () => expect(await focusOf(page)).not.toBe('body'));
    }),
  );
});

describe('a session that ends under the keyboard', () => {
  it(
    'the API answers 401: "Session ended" replaces the page, says so, and its heading takes the focus',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'focus-ended');
      await keyboardSignIn(page, admin);
      await page.route(
        (url) => url.href.startsWith(`${suite.t.stack.apiUrl}/audit-events`),
        (route) => route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ error: 'Unauthorized', code: 'UNAUTHORIZED', request_id: 'r' }) }),
      );
      await pressUntilFocused(page, page.getByRole('link', { name: 'Audit log', exact: true }));
      await page.keyboard.press('Enter');
      const heading = page.getByRole('heading', { name: 'Session ended', exact: true });
      await visible(heading);
      await visible(page.getByRole('alert').filter({ hasText: 'Your session has ended. Sign in again.' }));
      await eventually(async () => expect(await isFocused(heading)).toBe(true));
      await expectAccessible(page, 'Session ended');
    }),
  );
});
