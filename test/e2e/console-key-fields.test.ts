/**
 * The console's key fields (#21 item 5, API.md §6) in a real browser: metadata entered at creation and
 * edited, an exact expiration day ("Custom date"), and "Disable"/"Enable" from a key's menu, with the
 * API refusing the disabled key (curl, 401) until it is enabled again. Axe on every new dialog; the
 * disable and enable flows by keyboard alone.
 */
import { jest } from '@jest/globals';
import type { Locator, Page } from 'playwright-core';
import { createKey, setAccountTier } from '../../lambdas/shared/services/keys.js';
import {
  accessibleDescription,
  ConsoleSuite,
  closeKeyDialog,
  createAndReadKey,
  curlStatus,
  expectAccessible,
  gone,
  isFocused,
  openCreateDialog,
  rowAction,
  signIn,
  visible,
} from '../support/browser.js';

jest.setTimeout(120_000);

const suite = new ConsoleSuite('e2e-console-key-fields');
beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

const openDialog = (page: Page): Locator => page.getByRole('dialog').last();
const actionsButton = (page: Page, name: string) => page.getByRole('button', { name: `Actions for ${name}`, exact: true });
/** A key's row by its Actions button (a disabled key's row header also reads "Disabled"). */
const row = (page: Page, name: string) => page.getByRole('row').filter({ has: actionsButton(page, name) });

async function operatorKey(accountId: string, body: Record<string, unknown>): Promise<{ keyId: string; key: string }> {
  const { key, apiKey } = await createKey(suite.t.deps(), accountId, body);
  return { keyId: key.key_id, key: apiKey };
}

/**
 * Metadata valid for the API that a careless form breaks: a key with spaces around it, a key holding `=`,
 * and a value of 300 emoji (300 characters, 600 UTF-16 units).
 */
const oddMetadata = (): Record<string, string> => ({ ' spaced ': 's', 'a=b': 'c', note: '😀'.repeat(300) });

/** The local calendar day `days` from now, as a date input takes it. */
function dayFromNow(days: number): { iso: string; end: Date } {
  const at = new Date(Date.now() + days * 86_400_000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return { iso: `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`, end: new Date(at.getFullYear(), at.getMonth(), at.getDate(), 23, 59, 59) };
}

describe('metadata and expiration in the dialogs', () => {
  it(
    'Create with metadata rows and a custom expiration day: the API holds both, and the key works',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'meta');
      await signIn(page, suite.url, admin);
      const dialog = await openCreateDialog(page, 'tagged key');

      await dialog.getByRole('combobox', { name: 'Expiration' }).selectOption({ label: 'Custom date' });
      const day = dayFromNow(40);
      await dialog.getByLabel('Expiration date').fill(day.iso);
      await dialog.getByRole('button', { name: 'Add metadata' }).click();
      // The new row's key field has the focus.
      expect(await isFocused(dialog.getByRole('textbox', { name: 'Metadata key 1' }))).toBe(true);
      await dialog.getByRole('textbox', { name: 'Metadata key 1' }).fill('team');
      await dialog.getByRole('textbox', { name: 'Metadata value 1' }).fill('platform');
      await dialog.getByRole('button', { name: 'Add metadata' }).click();
      await dialog.getByRole('textbox', { name: 'Metadata key 2' }).fill('ticket');
      await dialog.getByRole('textbox', { name: 'Metadata value 2' }).fill('OPS-7');
      await dialog.getByRole('button', { name: 'Add metadata' }).click();
      await dialog.getByRole('textbox', { name: 'Metadata value 3' }).fill('orphan');
      await expectAccessible(page, 'the Create dialog with metadata rows and a custom date');

      // A value without a key is refused in words before anything is sent.
      await dialog.getByRole('button', { name: 'Create', exact: true }).click();
      await visible(dialog.getByText('Metadata entry 3 has a value but no key'));
      await dialog.getByRole('button', { name: 'Remove metadata entry 3' }).click();
      await gone(dialog.getByRole('textbox', { name: 'Metadata value 3' }));

      const key = await createAndReadKey(dialog);
      await closeKeyDialog(page);
      const listed = (await suite.api(account.adminKey!, 'GET', '/keys?limit=100')).body['items'] as Record<string, unknown>[];
      const made = listed.find((k) => k['name'] === 'tagged key');
      expect(made).toMatchObject({ metadata: { team: 'platform', ticket: 'OPS-7' }, enabled: true, expires_at: day.end.toISOString() });
      expect(await curlStatus(`${suite.t.stack.apiUrl}/keys/verify`, key)).toBe(200);
    }),
  );

  it(
    'Edit shows the key’s metadata, and saving replaces the map',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const { keyId } = await operatorKey(account.accountId, { name: 'meta edit', preset: 'read-only', metadata: { keep: 'yes', drop: 'me' } });
      const admin = await suite.person([[account.accountId, 'admin']], 'metaedit');
      await signIn(page, suite.url, admin);
      await actionsButton(page, 'meta edit').click();
      await page.getByRole('menuitem', { name: 'Edit', exact: true }).click();
      const dialog = openDialog(page);
      await visible(dialog);
      // In the key's order: drop, keep.
      expect(await dialog.getByRole('textbox', { name: 'Metadata key 1' }).inputValue()).toBe('drop');
      expect(await dialog.getByRole('textbox', { name: 'Metadata value 2' }).inputValue()).toBe('yes');
      await expectAccessible(page, 'the Edit dialog with metadata');
      await dialog.getByRole('button', { name: 'Remove metadata entry 1' }).click();
      await dialog.getByRole('textbox', { name: 'Metadata value 1' }).fill('still');
      await dialog.getByRole('button', { name: 'Add metadata' }).click();
      await dialog.getByRole('textbox', { name: 'Metadata key 2' }).fill('owner');
      await dialog.getByRole('textbox', { name: 'Metadata value 2' }).fill('ada');
      await dialog.getByRole('button', { name: /^save/i }).click();
      await gone(dialog);
      const stored = await suite.api(account.adminKey!, 'GET', `/keys/${keyId}`);
      expect(stored.body['metadata']).toEqual({ keep: 'still', owner: 'ada' });
    }),
  );

  it(
    'Edit sends only what the person changed: a rename keeps metadata set elsewhere meanwhile, whatever its keys and characters',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const { keyId } = await operatorKey(account.accountId, { name: 'odd meta', preset: 'read-only', metadata: oddMetadata() });
      const stored = (await suite.api(account.adminKey!, 'GET', `/keys/${keyId}`)).body['metadata'];
      expect(Object.keys(stored as object).sort()).toEqual([' spaced ', 'a=b', 'note'].sort());
      const admin = await suite.person([[account.accountId, 'admin']], 'oddmeta');
      await signIn(page, suite.url, admin);
      await actionsButton(page, 'odd meta').click();
      await page.getByRole('menuitem', { name: 'Edit', exact: true }).click();
      const dialog = openDialog(page);
      await visible(dialog);
      // Meanwhile, someone else changes the metadata through the API.
      const elsewhere = await suite.api(account.adminKey!, 'PATCH', `/keys/${keyId}`, { metadata: { owner: 'cli' } });
      expect(elsewhere.status).toBe(200);
      await dialog.getByRole('textbox', { name: 'Name' }).fill('odd meta renamed');
      await dialog.getByRole('button', { name: /^save/i }).click();
      await gone(dialog);
      const after = await suite.api(account.adminKey!, 'GET', `/keys/${keyId}`);
      expect(after.body).toMatchObject({ name: 'odd meta renamed', metadata: { owner: 'cli' } });
    }),
  );

  it(
    'Edit saves a key whose metadata has spaced keys and long emoji values, unchanged',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const { keyId } = await operatorKey(account.accountId, { name: 'odd meta 2', preset: 'read-only', metadata: oddMetadata() });
      const before = (await suite.api(account.adminKey!, 'GET', `/keys/${keyId}`)).body['metadata'];
      const admin = await suite.person([[account.accountId, 'admin']], 'oddmeta2');
      await signIn(page, suite.url, admin);
      await actionsButton(page, 'odd meta 2').click();
      await page.getByRole('menuitem', { name: 'Edit', exact: true }).click();
      const dialog = openDialog(page);
      await visible(dialog);
      // A new entry: the form's whole map is checked as the API checks it, and sent.
      await dialog.getByRole('button', { name: 'Add metadata' }).click();
      await dialog.getByRole('textbox', { name: 'Metadata key 4' }).fill('owner');
      await dialog.getByRole('textbox', { name: 'Metadata value 4' }).fill('ada');
      await dialog.getByRole('button', { name: /^save/i }).click();
      await gone(dialog);
      const after = (await suite.api(account.adminKey!, 'GET', `/keys/${keyId}`)).body['metadata'];
      expect(after).toEqual({ ...(JSON.parse(JSON.stringify(before)) as object), owner: 'ada' });
    }),
  );
});

describe('disable and enable', () => {
  it(
    'by keyboard: "Disable" refuses the key at the API (401) and the table says Disabled; "Enable" brings it back',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const { key } = await operatorKey(account.accountId, { name: 'deploy bot', preset: 'read-only' });
      const verify = `${suite.t.stack.apiUrl}/keys/verify`;
      expect(await curlStatus(verify, key)).toBe(200);
      const admin = await suite.person([[account.accountId, 'admin']], 'toggle');
      await signIn(page, suite.url, admin);
      await visible(row(page, 'deploy bot'));
      expect(await row(page, 'deploy bot').getByText('Disabled', { exact: true }).count()).toBe(0);

      /** Opens the key's menu and chooses `item`, keys only. */
      const choose = async (item: string) => {
        await actionsButton(page, 'deploy bot').focus();
        await page.keyboard.press('Enter');
        const menuItem = page.getByRole('menuitem', { name: item, exact: true });
        await visible(menuItem);
        for (let i = 0; i < 8 && !(await isFocused(menuItem)); i++) await page.keyboard.press('ArrowDown');
        expect(await isFocused(menuItem)).toBe(true);
        await page.keyboard.press('Enter');
      };

      await choose('Disable');
      const dialog = page.getByRole('dialog', { name: 'Disable API key' });
      await visible(dialog);
      expect(await dialog.innerText()).toMatch(/refused from now on/);
      await expectAccessible(page, 'the Disable dialog');
      await dialog.getByRole('button', { name: 'Disable key' }).focus();
      await page.keyboard.press('Enter');
      await gone(dialog);
      await visible(row(page, 'deploy bot').getByText('Disabled', { exact: true }));
      expect(await curlStatus(verify, key)).toBe(401);
      // Still listed and counted.
      await visible(page.getByText('2 of 10 keys'));
      await expectAccessible(page, 'the table with a disabled key');

      await choose('Enable');
      const enableDialog = page.getByRole('dialog', { name: 'Enable API key' });
      await visible(enableDialog);
      await expectAccessible(page, 'the Enable dialog');
      await enableDialog.getByRole('button', { name: 'Enable key' }).focus();
      await page.keyboard.press('Enter');
      await gone(enableDialog);
      await gone(row(page, 'deploy bot').getByText('Disabled', { exact: true }));
      expect(await curlStatus(verify, key)).toBe(200);
    }),
  );
});

describe('a person without an email (added by subject alone, a deployer’s own provider)', () => {
  it(
    'is named by subject in the header and as the creator of the keys they make',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const person = await suite.person([], 'subject-only');
      // The membership the admin CLI's `user add --subject` makes: no email.
      await suite.t.member(person.subject, account.accountId, null, 'admin');
      await signIn(page, suite.url, person);
      await visible(page.getByText(`Person ${person.subject}`, { exact: true }).first());
      await expect(page.getByText('null', { exact: true }).count()).resolves.toBe(0);
      const dialog = await openCreateDialog(page, 'made by sub');
      await createAndReadKey(dialog);
      await closeKeyDialog(page);
      await visible(row(page, 'made by sub').getByRole('cell', { name: `Person ${person.subject}` }));
    }),
  );
});

describe('a permission the tier no longer allows', () => {
  it(
    'Edit removes it (checkbox, "Run one model"): only adding is limited; the reason stays beside it and the keyboard keeps its place',
    suite.withPage(async ({ page }) => {
      // Keys made on Business, then the account moved to Pro (no model:run) with the admin CLI's set-tier.
      const account = await suite.account('business');
      const legacy = await operatorKey(account.accountId, { name: 'legacy model key', capabilities: ['workflow:read', 'model:run'] });
      const oneModel = await operatorKey(account.accountId, { name: 'one model key', capabilities: ['workflow:read', 'model:echo:run'] });
      await setAccountTier(suite.t.deps(), account.accountId, 'pro');
      const admin = await suite.person([[account.accountId, 'admin']], 'lowered-tier');
      await signIn(page, suite.url, admin);

      await rowAction(page, 'legacy model key', 'Edit');
      let dialog = page.getByRole('dialog', { name: 'Edit API key' });
      await visible(dialog);
      const modelRun = dialog.getByRole('checkbox', { name: 'model:run', exact: true });
      expect(await modelRun.isChecked()).toBe(true);
      expect(await modelRun.isEnabled()).toBe(true);
      expect(await accessibleDescription(modelRun)).toMatch(/Not available on the Pro tier\. The key holds it: you can remove it, but not add it back\./);
      await expectAccessible(page, 'Edit of a key holding a permission its tier no longer allows');
      // Kept while another permission is added: the API refuses, in words that say who changes a tier.
      await dialog.getByRole('checkbox', { name: 'execution:read', exact: true }).check();
      await dialog.getByRole('button', { name: 'Save changes', exact: true }).click();
      const refused = dialog.getByRole('alert').filter({ hasText: 'model:run' });
      await visible(refused);
      expect(await refused.innerText()).toContain('Choose other permissions, or have the account upgraded: ask whoever manages your Knouds subscription.');

      // The keyboard unticks it; it stays focused, and cannot be ticked again.
      await modelRun.focus();
      await page.keyboard.press('Space');
      expect(await modelRun.isChecked()).toBe(false);
      expect(await isFocused(modelRun)).toBe(true);
      expect(await modelRun.getAttribute('aria-disabled')).toBe('true');
      await page.keyboard.press('Space');
      expect(await modelRun.isChecked()).toBe(false);
      expect(await accessibleDescription(modelRun)).toMatch(/Not available on the Pro tier\./);
      await dialog.getByRole('button', { name: 'Save changes', exact: true }).click();
      await gone(dialog);
      expect([...((await suite.api(legacy.key, 'GET', '/keys/verify')).body['capabilities'] as string[])].sort()).toEqual(['execution:read', 'workflow:read']);

      // "Run one model" holding a model: "None" removes it.
      await rowAction(page, 'one model key', 'Edit');
      dialog = page.getByRole('dialog', { name: 'Edit API key' });
      await visible(dialog);
      const model = dialog.getByRole('combobox', { name: 'Run one model', exact: true });
      expect(await model.inputValue()).toBe('echo');
      expect(await model.isEnabled()).toBe(true);
      expect(await accessibleDescription(model)).toMatch(/Not available on the Pro tier\. The key holds it: you can remove it, but not add it back\./);
      // Only "None" and the model held: no other model can be added.
      expect(await model.locator('option').allInnerTexts()).toEqual(['None', 'echo']);
      await model.focus();
      await model.selectOption('');
      expect(await isFocused(model)).toBe(true);
      expect(await model.getAttribute('aria-disabled')).toBe('true');
      await dialog.getByRole('button', { name: 'Save changes', exact: true }).click();
      await gone(dialog);
      expect((await suite.api(oneModel.key, 'GET', '/keys/verify')).body['capabilities']).toEqual(['workflow:read']);
    }),
  );
});

describe('a name of emoji', () => {
  it(
    'is not cut short (100 characters as the API counts them); a longer one is refused on the field, in words',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'emoji-name');
      await signIn(page, suite.url, admin);
      const dialog = await openCreateDialog(page, '');
      const name = dialog.getByRole('textbox', { name: 'Name' });

      // 101 characters: refused before it is sent, on the field.
      await name.fill('🔑'.repeat(101));
      expect([...(await name.inputValue())].length).toBe(101);
      await dialog.getByRole('button', { name: 'Create', exact: true }).click();
      await visible(dialog.getByRole('alert'));
      expect(await name.getAttribute('aria-invalid')).toBe('true');
      expect(await accessibleDescription(name)).toContain('A name can have at most 100 characters; this one has 101. Shorten it.');
      await expectAccessible(page, 'Create with a name too long');
      expect((await suite.api(account.adminKey!, 'GET', '/keys')).body['items']).toHaveLength(1);

      // 60 emoji (120 UTF-16 units), typed or pasted: all kept, and the key is made with them.
      await name.fill('');
      await name.focus();
      await page.keyboard.insertText('🔑'.repeat(60));
      expect([...(await name.inputValue())].length).toBe(60);
      await createAndReadKey(dialog);
      await closeKeyDialog(page);
      const names = ((await suite.api(account.adminKey!, 'GET', '/keys')).body['items'] as { name: string }[]).map((k) => k.name);
      expect(names).toContain('🔑'.repeat(60));
    }),
  );
});
