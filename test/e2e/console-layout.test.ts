/**
 * The console's layout in a real browser (WCAG 1.4.10 reflow): at 320 CSS px nothing scrolls sideways
 * (the account switcher wraps), below 900 px each table row is a card whose cells keep every piece of
 * their content beside the cell's label (a "Disabled" badge, a replacement's line, a key's link) and the
 * label stays out of the cell's accessible name, a long name without spaces wraps instead of widening
 * the page, the table or a dialog, and at 1280 px a full API Keys table fits its page.
 */
import { jest } from '@jest/globals';
import type { Page } from 'playwright-core';
import { createKey } from '../../lambdas/shared/services/keys.js';
import { ConsoleSuite, eventually, expectAccessible, gone, pressUntilFocused, rowAction, signIn, visible } from '../support/browser.js';

jest.setTimeout(120_000);

const suite = new ConsoleSuite('e2e-console-layout');
beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

/** A key's row by its "Actions for <name>" button (in the card layout a cell's name starts with its label). */
const rowOf = (page: Page, name: string) => page.getByRole('row').filter({ has: page.getByRole('button', { name: `Actions for ${name}`, exact: true }) });

/** How far the page scrolls sideways (0 when it does not). */
const sideways = (page: Page): Promise<number> => page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');

/** How far each open dialog's content is wider than the dialog (0 each when none is). */
const dialogOverflow = (page: Page): Promise<number[]> => page.evaluate("[...document.querySelectorAll('dialog[open]')].map((d) => d.scrollWidth - d.clientWidth)");

/**
 * In the tables' card layout (below 900 px): every visible piece of a labelled cell's content (elements
 * and text) that starts left of the cell's label column's end, as "label: text" (empty when none does).
 */
const inLabelColumn = (page: Page): Promise<string[]> =>
  page.evaluate(`(() => {
    const labelColumn = 7.5 * parseFloat(getComputedStyle(document.documentElement).fontSize);
    const bad = [];
    for (const cell of document.querySelectorAll('table.data-table tbody [data-label]')) {
      const start = cell.getBoundingClientRect().left + labelColumn;
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const element = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
        if (element.closest('.visually-hidden')) continue;
        if (node.nodeType === Node.TEXT_NODE && !node.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const rects = node.nodeType === Node.TEXT_NODE ? [...range.getClientRects()] : [node.getBoundingClientRect()];
        if (rects.some((r) => r.width > 0 && r.left < start - 0.5)) bad.push(cell.dataset.label + ': ' + (node.textContent || '').trim().slice(0, 40));
      }
    }
    return bad;
  })()`);

describe('at 320 CSS px', () => {
  it(
    'a person of two accounts: the switcher wraps, "Switch" and "Sign out" are on screen, nothing scrolls sideways',
    suite.withPage(async ({ page }) => {
      const a = await suite.account('business');
      const b = await suite.account('pro');
      const both = await suite.person([[a.accountId, 'admin'], [b.accountId, 'viewer']], 'two-accounts-narrow');
      await page.setViewportSize({ width: 320, height: 640 });
      await signIn(page, suite.url, both);
      await visible(rowOf(page, 'Operator key'));
      expect(await sideways(page)).toBe(0);
      for (const control of [page.getByRole('combobox', { name: 'Account' }), page.getByRole('button', { name: 'Switch', exact: true }), page.getByRole('button', { name: 'Sign out' })]) {
        const box = (await control.boundingBox())!;
        expect({ left: box.x >= 0, right: box.x + box.width <= 320 }).toEqual({ left: true, right: true });
      }
      // Switching by keyboard still works, and the page still fits.
      const second = [a, b].map((x) => x.accountId).sort()[1]!;
      await page.getByRole('combobox', { name: 'Account' }).selectOption(second);
      await pressUntilFocused(page, page.getByRole('button', { name: 'Switch', exact: true }));
      await page.keyboard.press('Enter');
      await eventually(async () => expect(await page.getByRole('status').filter({ hasText: `Now showing account ${second}` }).count()).toBe(1));
      expect(await sideways(page)).toBe(0);
      await expectAccessible(page, 'the API Keys page at 320 px with the account switcher');
    }),
  );
});

describe('the tables as cards (below 900 px)', () => {
  it(
    'a badge, a replacement’s line, a key named as creator and the Audit log’s links stay beside the cell’s label, not under it',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const adminKey = account.adminKey!;
      const paused = await suite.api(adminKey, 'POST', '/keys', { name: 'paused key', preset: 'read-only' });
      expect(paused.status).toBe(201);
      expect((await suite.api(adminKey, 'PATCH', `/keys/${String(paused.body['key_id'])}`, { enabled: false })).status).toBe(200);
      const turned = await suite.api(adminKey, 'POST', '/keys', { name: 'turned key', preset: 'read-only' });
      expect((await suite.api(adminKey, 'POST', `/keys/${String(turned.body['key_id'])}/rotate`, { grace_period_seconds: 3600 })).status).toBe(201);
      const admin = await suite.person([[account.accountId, 'admin']], 'cards');
      await page.setViewportSize({ width: 375, height: 800 });
      await signIn(page, suite.url, admin);
      await visible(rowOf(page, 'paused key').getByText('Disabled', { exact: true }));
      await visible(page.getByText('Replaced', { exact: true }));
      expect(await inLabelColumn(page)).toEqual([]);
      expect(await sideways(page)).toBe(0);
      // The label is shown, not part of the cell's accessible name: a row header is the key's name alone.
      expect(await page.getByRole('rowheader', { name: 'Operator key', exact: true }).count()).toBe(1);
      expect(await page.getByRole('rowheader', { name: /^Name/ }).count()).toBe(0);
      expect(await page.getByRole('cell', { name: /^(Prefix|Permissions|Workspaces|Environment|Created|Expires|Last used)/ }).count()).toBe(0);

      await page.getByRole('link', { name: 'Audit log', exact: true }).click();
      await visible(page.getByRole('table'));
      await visible(page.getByRole('link', { name: /paused key/ }).first());
      expect(await inLabelColumn(page)).toEqual([]);
      expect(await sideways(page)).toBe(0);
      expect(await page.getByRole('rowheader', { name: /^Action/ }).count()).toBe(0);
      expect(await page.getByRole('cell', { name: /^(When|Target|By|Changes|Source)/ }).count()).toBe(0);
    }),
  );
});

describe('the API Keys table at 1280 px', () => {
  it(
    'keys with long-ish names and several permission badges: the table fits in the page’s content box, every Actions button inside it, nothing scrolls sideways',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const adminKey = account.adminKey!;
      // Made with the operator's key: "Created by" names it. As many columns as can be wide at once.
      for (const [name, body] of [
        ['Production deploys, EU region', { preset: 'full-deploy', expires_in_days: 90 }],
        ['Staging smoke tests (nightly)', { capabilities: ['workflow:nightly-report:run', 'execution:read', 'execution:cancel'], environment: 'test', expires_in_days: 7 }],
        ['Support dashboard, read access', { capabilities: ['workflow:read', 'execution:read', 'keys:read', 'audit:read'], workspaces: ['ws-support', 'ws-billing'] }],
        ['Order webhooks receiver', { capabilities: ['webhook:receive', 'workflow:run', 'execution:read'], expires_in_days: 365 }],
        ['Billing export, models', { capabilities: ['model:run', 'workflow:run', 'execution:read', 'execution:cancel'], workspaces: ['ws-billing'] }],
      ] as const) {
        const made = await suite.api(adminKey, 'POST', '/keys', { name, ...body });
        expect({ name, status: made.status }).toEqual({ name, status: 201 });
        // Used once: "Last used" has a date and a time.
        expect((await suite.api(String(made.body['api_key']), 'GET', '/keys/verify')).status).toBe(200);
      }
      const admin = await suite.person([[account.accountId, 'admin']], 'wide-table');
      await signIn(page, suite.url, admin);
      await visible(rowOf(page, 'Billing export, models'));
      const fit = await page.evaluate(`(() => {
        const main = document.querySelector('main');
        const table = main.querySelector('table.data-table');
        const inner = main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight);
        const buttons = [...table.querySelectorAll('button')].map((b) => b.getBoundingClientRect().right);
        return {
          tableBeyondContent: Math.max(0, Math.ceil(table.getBoundingClientRect().right - inner)),
          mainScrolls: main.scrollWidth - main.clientWidth,
          buttonsBeyondTable: buttons.filter((right) => right > table.getBoundingClientRect().right + 0.5).length,
          pageScrolls: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        };
      })()`);
      expect(fit).toEqual({ tableBeyondContent: 0, mainScrolls: 0, buttonsBeyondTable: 0, pageScrolls: 0 });
      for (const name of ['Operator key', 'Production deploys, EU region', 'Staging smoke tests (nightly)', 'Support dashboard, read access', 'Order webhooks receiver', 'Billing export, models']) {
        const box = (await page.getByRole('button', { name: `Actions for ${name}`, exact: true }).boundingBox())!;
        expect({ name, inside: box.x >= 0 && box.x + box.width <= 1280 }).toEqual({ name, inside: true });
      }
    }),
  );
});

describe('a long name without spaces', () => {
  const long = 'A'.repeat(100);

  it(
    'wraps: the API Keys page, its Usage and Delete dialogs and the Audit log do not scroll sideways, at 1280 and at 320 px',
    suite.withPage(async ({ page }) => {
      const account = await suite.account('business');
      const { apiKey } = await createKey(suite.t.deps(), account.accountId, { name: long, capabilities: ['workflow:read', 'keys:read', 'keys:write'] });
      // Made by the long-named key: "Created by" and the Audit log's "By" name it too.
      expect((await suite.api(apiKey, 'POST', '/keys', { name: 'made by the long one', preset: 'read-only' })).status).toBe(201);
      const admin = await suite.person([[account.accountId, 'admin']], 'long-name');
      await signIn(page, suite.url, admin);
      for (const width of [1280, 320]) {
        await page.setViewportSize({ width, height: 800 });
        await page.getByRole('link', { name: 'API Keys', exact: true }).click();
        await visible(rowOf(page, 'made by the long one'));
        expect({ width, page: 'API Keys', sideways: await sideways(page) }).toEqual({ width, page: 'API Keys', sideways: 0 });

        for (const [item, title] of [
          ['Usage', `Usage of ${long}`],
          ['Delete', 'Delete API key'],
        ] as const) {
          await rowAction(page, long, item);
          const dialog = page.getByRole('dialog', { name: title });
          await visible(dialog);
          if (item === 'Usage') await visible(dialog.getByText('Requests today'));
          expect({ width, item, overflow: await dialogOverflow(page) }).toEqual({ width, item, overflow: [0] });
          await page.keyboard.press('Escape');
          await gone(dialog);
        }

        await page.getByRole('link', { name: 'Audit log', exact: true }).click();
        await visible(page.getByRole('table'));
        await visible(page.getByRole('link', { name: new RegExp(long) }).first());
        expect({ width, page: 'Audit log', sideways: await sideways(page) }).toEqual({ width, page: 'Audit log', sideways: 0 });
      }
    }),
  );
});
