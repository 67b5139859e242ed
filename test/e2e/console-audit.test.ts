/**
 * The console's Audit log page in a real browser (issue #18, API.md §6 and §7): a key created, edited,
 * rotated and deleted in the console is on the page with its author, as GET /audit-events has it; the
 * filters by action and by key (a key's History from its menu, a key named in the table), kept in the
 * URL; pages of 25, with the keyboard; who may read the log and who is told why not.
 */
import { jest } from '@jest/globals';
import type { Locator, Page } from 'playwright-core';
import {
  API_KEY_PATTERN,
  ConsoleSuite,
  closeKeyDialog,
  createAndReadKey,
  eventually,
  expectAccessible,
  fillLogin,
  gone,
  isFocused,
  keyRow,
  openCreateDialog,
  pressUntilFocused,
  rowAction,
  signIn,
  visible,
} from '../support/browser.js';
import { createKey } from '../../lambdas/shared/services/keys.js';

jest.setTimeout(150_000);

const suite = new ConsoleSuite('e2e-console-audit');
beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

interface ApiEvent {
  event_id: string;
  action: string;
  actor: { kind: string; email?: string; key_id?: string };
  target: { kind: string; id: string };
  changes: Record<string, { from: unknown; to: unknown }> | null;
}

/** Every event of the account, newest first, through the API with an admin key. */
async function apiEvents(adminKey: string, query = ''): Promise<ApiEvent[]> {
  const all: ApiEvent[] = [];
  let token: string | null = null;
  do {
    const sep = query ? '&' : '';
    const page = await suite.api(adminKey, 'GET', `/audit-events?limit=100${sep}${query}${token ? `&next_token=${encodeURIComponent(token)}` : ''}`);
    expect(page.status).toBe(200);
    all.push(...(page.body['items'] as ApiEvent[]));
    token = page.body['next_token'] as string | null;
  } while (token);
  return all;
}

const auditTable = (page: Page): Locator => page.getByRole('table', { name: /audit events/i });
const bodyRows = (page: Page): Locator => auditTable(page).locator('tbody tr');

interface Row {
  action: string;
  target: string;
  by: string;
  text: string;
}

/** The page's rows as {action, target, by}, by their column names. */
async function rowsOf(page: Page): Promise<Row[]> {
  await visible(auditTable(page));
  return bodyRows(page).evaluateAll((rows) =>
    rows.map((row) => {
      const cell = (label: string) => (row.querySelector(`[data-label="${label}"]`)?.textContent ?? '').trim();
      return { action: cell('Action'), target: cell('Target'), by: cell('By'), text: (row.textContent ?? '').trim() };
    }),
  );
}

async function openAuditLog(page: Page): Promise<void> {
  await page.getByRole('link', { name: 'Audit log', exact: true }).click();
  await visible(page.getByRole('heading', { name: 'Audit log', exact: true }));
}

describe('the Audit log page', () => {
  it(
    'a key created, edited, rotated and deleted in the console: each change is on the page with its author, as GET /audit-events has it',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'auditor');
      await signIn(page, suite.url, admin);

      const plaintexts = [await createAndReadKey(await openCreateDialog(page, 'audited key'))];
      await closeKeyDialog(page);
      await visible(keyRow(page, 'audited key'));

      await rowAction(page, 'audited key', 'Edit');
      let dialog = page.getByRole('dialog').last();
      await dialog.getByRole('textbox', { name: 'Name' }).fill('audited key v2');
      await dialog.getByRole('button', { name: /^save/i }).click();
      await gone(dialog);
      await visible(keyRow(page, 'audited key v2'));

      await rowAction(page, 'audited key v2', 'Rotate');
      dialog = page.getByRole('dialog').last();
      await dialog.getByRole('radio', { name: /^none/i }).check();
      await dialog.getByRole('button', { name: /^rotate/i }).click();
      const replacement = page.getByRole('textbox', { name: 'API key' });
      await visible(replacement);
      plaintexts.push(await replacement.inputValue());
      const prefix = plaintexts[1]!.slice(0, 16);
      await closeKeyDialog(page);
      // The list shows the replacement (the row a menu acts on) once it has reloaded.
      await eventually(async () => expect(await keyRow(page, 'audited key v2').innerText()).toContain(prefix));

      await rowAction(page, 'audited key v2', 'Delete');
      dialog = page.getByRole('dialog', { name: 'Delete API key' });
      await dialog.getByRole('button', { name: 'Delete key', exact: true }).click();
      await gone(dialog);
      await gone(keyRow(page, 'audited key v2'));

      // The API: the five changes, newest first, each by this person, with the request's id and agent. A
      // rotation is two, in one transaction at one time: the key rotated, then its replacement created.
      const events = await apiEvents(account.adminKey!);
      expect(events.slice(0, 5).map((e) => e.action)).toEqual(['key.revoked', 'key.created', 'key.rotated', 'key.updated', 'key.created']);
      for (const event of events.slice(0, 5)) expect(event.actor).toEqual({ kind: 'person', subject: admin.subject, email: admin.email });
      const [revoked, replacementCreated, rotated, updated, created] = events as [ApiEvent, ApiEvent, ApiEvent, ApiEvent, ApiEvent];
      expect(updated.target.id).toBe(created.target.id);
      expect(rotated.target.id).toBe(created.target.id);
      // The rotation's replacement is the key deleted, and its creation names the key it replaced.
      expect(revoked.target.id).not.toBe(created.target.id);
      expect(replacementCreated.target.id).toBe(revoked.target.id);
      expect(replacementCreated.changes?.['rotated_from']).toEqual({ from: null, to: created.target.id });

      // The page: the same five on top, in words, by the same person.
      await openAuditLog(page);
      expect(page.url()).toBe(`${suite.url}/audit`);
      const rows = await rowsOf(page);
      expect(rows.slice(0, 5).map((r) => r.action)).toEqual(['Key deleted', 'Key created', 'Key rotated', 'Key edited', 'Key created']);
      for (const row of rows.slice(0, 5)) expect(row.by).toBe(admin.email);
      expect(rows[3]!.text).toMatch(/audited key\b.*→.*audited key v2/s);
      expect(rows[0]!.target).toContain('audited key v2');
      // The two keys of the rotation name each other by name, not by a raw id alone.
      const [, replacementRow, rotatedRow] = rows as [Row, Row, Row];
      expect(rotatedRow.text).toMatch(/Replaced by\s*“audited key v2”/);
      expect(replacementRow.text).toMatch(/Replaces\s*“audited key v2”/);
      expect(replacementRow.text).not.toMatch(/rotated_from/);
      // Neither key is listed any more, so no prefix: each link carries its key's id, and the two differ.
      const links = await bodyRows(page).nth(1).getByRole('link').allTextContents();
      expect(links).toHaveLength(2);
      expect(links[0]).toContain(replacementCreated.target.id);
      expect(links[1]).toContain(created.target.id);
      // Earlier: the operator made the account, its first key and this membership.
      expect(rows.map((r) => r.action)).toEqual(expect.arrayContaining(['Account created', 'Member added']));
      expect(rows.find((r) => r.action === 'Account created')!.by).toBe('Operator (admin CLI)');
      // A member by their email (their subject beside it), not by the subject alone.
      expect(rows.find((r) => r.action === 'Member added')!.target).toContain(admin.email);
      // Fields and values in words, not as the API names them.
      expect(rows.find((r) => r.action === 'Account created')!.text).toMatch(/Tier\s*Business/);
      expect(rows[4]!.text).toMatch(/State\s*Enabled/);
      // Permissions as the keys page names them: the preset, with what it holds.
      expect(rows[4]!.text).toMatch(/Permissions\s*Read-only \(workflow:read\)/);
      expect(rows[4]!.text).toMatch(/Metadata\s*none/);
      expect(rows[4]!.text).not.toMatch(/\bmetadata\b|\benabled\b|\{\}/);
      expect(rows).toHaveLength(events.length);
      // No key or secret anywhere in the page (prefixes, as in the Key filter, are not secrets).
      const html = await page.content();
      for (const plaintext of plaintexts) expect(html.includes(plaintext)).toBe(false);
      expect(html).not.toMatch(new RegExp(`${API_KEY_PATTERN.source}|whsec_`));
      await expectAccessible(page, 'the Audit log page');

      // A key that never expired, rotated with a grace: its end is a change from "Never", not a value set.
      const forever = await suite.api(account.adminKey!, 'POST', '/keys', { name: 'forever', preset: 'read-only' });
      expect(forever.body['expires_at']).toBeNull();
      const foreverNext = await suite.api(account.adminKey!, 'POST', `/keys/${String(forever.body['key_id'])}/rotate`, { grace_period_seconds: 3600 });
      expect(foreverNext.status).toBe(201);
      await page.reload();
      const top = await rowsOf(page);
      expect(top.slice(0, 3).map((r) => r.action)).toEqual(['Key created', 'Key rotated', 'Key created']);
      const foreverRotated = top[1]!;
      expect(foreverRotated.text).toMatch(/Expires\s*Never\s*→/);
      // Both keys are listed (the old one in its grace): each is named with its prefix, which tells them apart.
      expect(foreverRotated.text).toContain(`Replaced by“forever” (${String(foreverNext.body['prefix'])}…)`);
      expect(top[2]!.text).not.toMatch(/Expires/);

      // The replacement's History begins with its creation, which names the key it replaced.
      await page.getByRole('link', { name: 'API Keys', exact: true }).click();
      await rowAction(page, 'forever', 'History');
      await visible(page.getByRole('heading', { name: 'Audit log', exact: true }));
      expect(new URL(page.url()).searchParams.get('target_id')).toBe(foreverNext.body['key_id']);
      const history = await rowsOf(page);
      expect(history.map((r) => r.action)).toEqual(['Key created']);
      expect(history[0]!.text).toContain(`Replaces“forever” (${String(forever.body['prefix'])}…)`);
      // …and leads to that key's own history.
      await page.getByRole('link', { name: new RegExp(`^“forever” \\(${String(forever.body['prefix'])}…\\)\\s*: its history$`) }).click();
      await eventually(async () => expect(new URL(page.url()).searchParams.get('target_id')).toBe(forever.body['key_id']));
      await eventually(async () => expect((await rowsOf(page)).map((r) => r.action)).toEqual(['Key rotated', 'Key created']));
    }),
  );

  it(
    'filters by action and by key: a key’s History from its menu, a key named in the table; the URL keeps them through a reload',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const alpha = await suite.api(account.adminKey!, 'POST', '/keys', { name: 'alpha', preset: 'read-only' });
      const beta = await suite.api(account.adminKey!, 'POST', '/keys', { name: 'beta', preset: 'read-only' });
      expect([alpha.status, beta.status]).toEqual([201, 201]);
      const alphaId = String(alpha.body['key_id']);
      for (const name of ['alpha 2', 'alpha 3']) expect((await suite.api(account.adminKey!, 'PATCH', `/keys/${alphaId}`, { name })).status).toBe(200);
      const viewer = await suite.person([[account.accountId, 'viewer']], 'filters');
      await signIn(page, suite.url, viewer);

      // A viewer's menu offers History; it opens the Audit log filtered to the key.
      await rowAction(page, 'alpha 3', 'History');
      await visible(page.getByRole('heading', { name: 'Audit log', exact: true }));
      expect(new URL(page.url()).searchParams.get('target_id')).toBe(alphaId);
      const key = page.getByRole('combobox', { name: 'Key', exact: true });
      await expect(key.inputValue()).resolves.toBe(alphaId);
      let rows = await rowsOf(page);
      expect(rows.map((r) => r.action)).toEqual(['Key edited', 'Key edited', 'Key created']);
      // Made with the operator's key: the author is that key, by name.
      for (const row of rows) expect(row.by).toBe('Key “Operator key”');

      await page.getByRole('combobox', { name: 'Action', exact: true }).selectOption({ label: 'Key edited' });
      await eventually(async () => expect(await rowsOf(page)).toHaveLength(2));
      expect(new URL(page.url()).searchParams.get('action')).toBe('key.updated');
      await page.reload();
      await visible(page.getByRole('heading', { name: 'Audit log', exact: true }));
      rows = await rowsOf(page);
      expect(rows.map((r) => r.action)).toEqual(['Key edited', 'Key edited']);
      await expect(page.getByRole('combobox', { name: 'Action', exact: true }).inputValue()).resolves.toBe('key.updated');

      // No match: said in words.
      await key.selectOption({ label: `beta (${String(beta.body['prefix'])}…)` });
      await visible(page.getByText('No events match these filters.'));
      await expectAccessible(page, 'the Audit log page with no match');

      // With the keyboard: the button goes with the filters, and the focus goes to the first filter.
      await page.getByRole('button', { name: 'Clear filters', exact: true }).focus();
      await page.keyboard.press('Enter');
      rows = await rowsOf(page);
      expect(rows.map((r) => r.target).some((t) => t.includes('beta'))).toBe(true);
      expect(new URL(page.url()).search).toBe('');
      await eventually(async () => expect(await page.getByRole('combobox', { name: 'Action', exact: true }).evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true));

      // A key named in the table leads to its history. From the keyboard: the link goes with the table it
      // was in, and the focus goes to the page's heading, not to the document's body.
      await auditTable(page).getByRole('link', { name: /beta.*history/ }).first().focus();
      await page.keyboard.press('Enter');
      await eventually(() => expect(new URL(page.url()).searchParams.get('target_id')).toBe(String(beta.body['key_id'])));
      await eventually(async () => expect((await rowsOf(page)).map((r) => r.action)).toEqual(['Key created']));
      const heading = page.getByRole('heading', { name: 'Audit log', exact: true });
      await eventually(async () => expect(await heading.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true));
      // The key's own link here leads where the page is: nothing moves, then or later (a filter chosen
      // next keeps the focus on the filter).
      const self = auditTable(page).getByRole('link', { name: /beta.*history/ }).first();
      await self.focus();
      await page.keyboard.press('Enter');
      const actionFilter = page.getByRole('combobox', { name: 'Action', exact: true });
      await actionFilter.focus();
      await actionFilter.selectOption({ label: 'Key created' });
      await eventually(() => expect(new URL(page.url()).searchParams.get('action')).toBe('key.created'));
      await eventually(async () => expect((await rowsOf(page)).map((r) => r.action)).toEqual(['Key created']));
      expect(await actionFilter.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    }),
  );

  it(
    'filters by dates: whole days in the reader’s time zone, both included, kept in the URL; From after To is said in words and asks nothing',
    suite.withPage(
      async ({ page }) => {
        const account = await suite.account('business');
        // Keys made at chosen instants (the key service with its clock set). In Auckland (UTC+13 in March
        // 2026) the first two fall on 10 March, the third on 11 March although it is still 10 March in UTC.
        const made: [string, string][] = [
          ['made on the 10th, early', '2026-03-09T12:00:00Z'],
          ['made on the 10th, late', '2026-03-10T10:30:00Z'],
          ['made on the 11th', '2026-03-10T11:30:00Z'],
          ['made on the 12th', '2026-03-12T00:00:00Z'],
        ];
        for (const [name, at] of made) await createKey(suite.t.deps(() => new Date(at)), account.accountId, { name, preset: 'read-only' });
        const admin = await suite.person([[account.accountId, 'admin']], 'dates');
        await signIn(page, suite.url, admin);
        await openAuditLog(page);
        const named = async () => (await rowsOf(page)).map((r) => /“(made on [^”]+)”/.exec(r.target)?.[1] ?? r.action);
        await visible(page.getByText('Dates are whole days in your time zone (Pacific/Auckland), both included.'));
        const from = page.getByLabel('From', { exact: true });
        const to = page.getByLabel('To', { exact: true });
        // Every request for events from here on, by its `since` and `until`.
        const asked: { since: string | null; until: string | null }[] = [];
        page.on('request', (r) => {
          const url = new URL(r.url());
          if (url.pathname.endsWith('/audit-events')) asked.push({ since: url.searchParams.get('since'), until: url.searchParams.get('until') });
        });
        const historyLength = () => page.evaluate<number>('history.length');
        const entries = await historyLength();

        // With the keyboard: Tab from the Key filter to From, the date typed as en-US writes it. The year
        // typed digit by digit is one date, one request, no entry in the browser's history.
        await page.getByRole('combobox', { name: 'Key', exact: true }).focus();
        await page.keyboard.press('Tab');
        expect(await isFocused(from)).toBe(true);
        await page.keyboard.type('03102026');
        await eventually(() => expect(new URL(page.url()).searchParams.get('from')).toBe('2026-03-10'));
        await to.fill('2026-03-10');
        await eventually(async () => expect(await named()).toEqual(['made on the 10th, late', 'made on the 10th, early']));
        expect(Object.fromEntries(new URL(page.url()).searchParams)).toEqual({ from: '2026-03-10', to: '2026-03-10' });
        expect(asked.filter((a) => a.since !== null).map((a) => a.since!.slice(0, 4))).toEqual(['2026', '2026']);
        expect(await historyLength()).toBe(entries);
        // Times are shown in the same zone: 10:30 UTC is 11:30 PM in Auckland.
        expect((await rowsOf(page))[0]!.text).toMatch(/Mar 10, 2026.*11:30\sPM/);
        await page.reload();
        await visible(page.getByRole('heading', { name: 'Audit log', exact: true }));
        expect(await named()).toEqual(['made on the 10th, late', 'made on the 10th, early']);
        await eventually(async () => expect([await from.inputValue(), await to.inputValue()]).toEqual(['2026-03-10', '2026-03-10']));

        // A part of the date erased (the field reports "" then) is no date erased: the filter stays, nothing
        // is asked, and leaving the field puts the date back.
        const before = asked.length;
        await from.focus();
        await page.keyboard.press('Backspace');
        await expect(from.inputValue()).resolves.toBe('');
        await from.blur();
        await eventually(async () => expect(await from.inputValue()).toBe('2026-03-10'));
        expect(new URL(page.url()).searchParams.get('from')).toBe('2026-03-10');
        expect(asked.length).toBe(before);

        // From alone: that day and everything after it (the account and its operator key are from today).
        await to.fill('');
        await from.fill('2026-03-11');
        await eventually(async () => expect((await named()).slice(-2)).toEqual(['made on the 12th', 'made on the 11th']));
        expect(await named()).not.toContain('made on the 10th, late');
        // To alone: that day and everything before it; nothing is that old here.
        await from.fill('');
        await to.fill('2026-03-09');
        await visible(page.getByText('No events match these filters.'));

        // From after To: the page says so, marks both, and asks the API nothing.
        const asking = asked.length;
        await from.fill('2026-03-12');
        await visible(page.getByRole('alert').filter({ hasText: '“From” is after “To”: choose a From date on or before the To date.' }));
        await expect(from.getAttribute('aria-invalid')).resolves.toBe('true');
        await expect(to.getAttribute('aria-invalid')).resolves.toBe('true');
        expect(await auditTable(page).count()).toBe(0);
        await expectAccessible(page, 'the Audit log page with From after To');
        await to.fill('2026-03-12');
        await eventually(async () => expect(await named()).toEqual(['made on the 12th']));
        // One request since From went past To: the one for the dates put right. Auckland's 12 March, 00:00
        // to 13 March, 00:00 (the API's `until` is excluded).
        expect(asked.slice(asking)).toEqual([{ since: '2026-03-11T11:00:00.000Z', until: '2026-03-12T11:00:00.000Z' }]);

        // Clear filters takes the dates too.
        await page.getByRole('button', { name: 'Clear filters', exact: true }).click();
        await eventually(() => expect(new URL(page.url()).search).toBe(''));
        await eventually(async () => expect(await from.inputValue()).toBe(''));
        await eventually(async () => expect(await named()).toContain('made on the 10th, early'));
      },
      { timezoneId: 'Pacific/Auckland', locale: 'en-US' },
    ),
  );

  it(
    'a link to a filtered Audit log survives the sign-in: the filters are still there after it',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'link');
      await page.goto(`${suite.url}/audit?action=key.created`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await fillLogin(page, admin);
      await visible(page.getByRole('heading', { name: 'Audit log', exact: true }));
      expect(new URL(page.url()).searchParams.get('action')).toBe('key.created');
      expect(await page.getByRole('combobox', { name: 'Action', exact: true }).inputValue()).toBe('key.created');
    }),
  );

  it(
    'pages of 25, newest first: "Older events" and "Newer events" with the keyboard alone, no event twice',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const admin = await suite.person([[account.accountId, 'admin']], 'pager');
      const made = await suite.api(account.adminKey!, 'POST', '/keys', { name: 'renamed often', preset: 'read-only' });
      const keyId = String(made.body['key_id']);
      for (let i = 1; i <= 30; i++) expect((await suite.api(account.adminKey!, 'PATCH', `/keys/${keyId}`, { name: `renamed ${i}` })).status).toBe(200);
      const events = await apiEvents(account.adminKey!);
      expect(events.length).toBeGreaterThan(25);
      expect(events.length).toBeLessThanOrEqual(50);
      await signIn(page, suite.url, admin);
      await page.goto(`${suite.url}/audit`);

      const first = await rowsOf(page);
      expect(first).toHaveLength(25);
      expect(first[0]!.text).toContain('renamed 30');
      const newer = page.getByRole('button', { name: 'Newer events', exact: true });
      await expect(newer.getAttribute('aria-disabled')).resolves.toBe('true');

      const older = page.getByRole('button', { name: 'Older events', exact: true });
      await pressUntilFocused(page, older, 'Tab', 120);
      await page.keyboard.press('Enter');
      await eventually(async () => expect((await rowsOf(page))[0]?.text).not.toBe(first[0]!.text));
      const second = await rowsOf(page);
      expect(second).toHaveLength(events.length - 25);
      await expect(older.getAttribute('aria-disabled')).resolves.toBe('true');
      // The keyboard's place is kept: the button pressed still has the focus once the page has loaded.
      expect(await isFocused(older)).toBe(true);
      const seen = [...first, ...second].map((r) => r.text);
      expect(new Set(seen).size).toBe(seen.length);
      // The last page ends with the oldest event: the account's creation.
      expect(second[second.length - 1]!.action).toBe('Account created');

      await pressUntilFocused(page, newer, 'Shift+Tab', 5);
      await page.keyboard.press('Enter');
      await eventually(async () => expect((await rowsOf(page))[0]?.text).toBe(first[0]!.text));
      expect(await isFocused(newer)).toBe(true);

      // Other filters start at their first page, and so does coming back to these.
      await older.click();
      await eventually(async () => expect(await rowsOf(page)).toHaveLength(events.length - 25));
      const action = page.getByRole('combobox', { name: 'Action', exact: true });
      await action.selectOption({ label: 'Key created' });
      await eventually(async () => expect((await rowsOf(page)).map((r) => r.action)).toEqual(['Key created', 'Key created']));
      expect(await page.getByRole('navigation', { name: 'Audit log pages' }).count()).toBe(0);
      await action.selectOption({ label: 'All actions' });
      await eventually(async () => expect((await rowsOf(page))[0]?.text).toBe(first[0]!.text));
      expect(await rowsOf(page)).toHaveLength(25);
    }),
  );

  it(
    'a free account’s person is told the log needs the Pro tier; another account’s events never show, even asked for by id',
    suite.withPage(async ({ page }) => {
      const free = await suite.account('free');
      const person = await suite.person([[free.accountId, 'admin']], 'free-audit');
      await signIn(page, suite.url, person);
      await openAuditLog(page);
      await visible(page.getByText(/audit log needs the Pro tier or higher/));
      expect(await auditTable(page).count()).toBe(0);
      await expectAccessible(page, 'the Audit log page of a free account');

      // A paid account's admin asks, by URL, for another account's key: as target and as actor.
      const mine = await suite.account('business');
      const other = await suite.account('business');
      const theirs = await suite.api(other.adminKey!, 'POST', '/keys', { name: 'someone else’s key', preset: 'read-only' });
      expect(theirs.status).toBe(201);
      expect((await apiEvents(other.adminKey!, `actor_id=${other.adminKeyId!}`)).length).toBeGreaterThan(0);
      const admin = await suite.person([[mine.accountId, 'admin']], 'other-audit');
      const next = await suite.browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        const own = await next.newPage();
        await signIn(own, suite.url, admin);
        for (const query of [`target_id=${String(theirs.body['key_id'])}`, `target_id=${other.adminKeyId!}`]) {
          await own.goto(`${suite.url}/audit?${query}`);
          await visible(own.getByText('No events match these filters.'));
        }
        // The unfiltered log holds this account's events only.
        await own.goto(`${suite.url}/audit`);
        const text = (await rowsOf(own)).map((r) => r.text).join('\n');
        expect(text).not.toContain('someone else');
        expect(text).not.toContain(other.accountId);
        expect(text).not.toContain(String(theirs.body['key_id']));
      } finally {
        await next.close();
      }
    }),
  );
});
