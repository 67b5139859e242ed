/**
 * The console in a real browser (API.md §6): Debian's Chromium driven by playwright-core against a local
 * stack of the test file's own. One Chromium per test file, a fresh browser context (cookies, storage,
 * permissions) per test; on a failure the test's page is saved as a PNG and its path printed.
 *
 * People sign in as a person would: the console's "Sign in" button, the local provider's login page
 * (Email, Password, "Sign in"), back on the API Keys page. Locators are accessible names and roles,
 * which the contract promises (scripts and screen readers rely on them).
 *
 * Plaintext keys and secrets never go into an assertion's message: a failing `expect(text).toContain(key)`
 * would print the key. Checks for a secret use `placesHolding`, which names only where it was found.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type Locator, type Page, type Route } from 'playwright-core';
import type { RoleName } from '../../lambdas/shared/capabilities.js';
import { MembershipsRepository } from '../../lambdas/shared/repositories/memberships.js';
import { createAccount } from '../../lambdas/shared/services/keys.js';
import type { TierName } from '../../lambdas/shared/settings.js';
import type { Reply } from './http.js';
import { startTestStack, type TestStack } from './stack.js';

// The page's globals, as far as the functions these helpers run in the page use them (the project's
// tsconfig has no DOM library: the Node code must not see browser globals). Module scope, not global.
interface PageElement {
  readonly tagName: string;
  readonly id: string;
  readonly textContent: string | null;
  readonly value?: string;
  getAttribute(name: string): string | null;
}
interface PageStorage {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
}
declare const document: {
  readonly documentElement: { readonly outerHTML: string };
  readonly body: { readonly innerText: string };
  readonly activeElement: PageElement | null;
  readonly title: string;
  querySelectorAll(selector: string): { forEach(fn: (el: PageElement, i: number) => void): void };
  getElementById(id: string): PageElement | null;
};
declare const sessionStorage: PageStorage;
declare const localStorage: PageStorage;
declare const location: { readonly href: string };
declare const navigator: { readonly clipboard: { readText(): Promise<string> } };

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** One Chromium; fails with the way to get one when it is missing (a skipped browser test would hide a regression). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `No Chromium at ${CHROMIUM_PATH}. The console's browser tests drive Debian's Chromium through playwright-core: ` +
        'install it with `sudo apt-get install -y chromium` (.ci/run does this in CI), or set CHROMIUM_PATH to a Chromium or Chrome binary.',
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
}

/** A key's plaintext as the API prints it (API.md §1). */
export const API_KEY_PATTERN = /knouds_(?:live|test)_[A-Za-z0-9]{38,}/;

export interface SignedInPerson {
  readonly subject: string;
  readonly email: string;
  readonly password: string;
}

export interface AccountWithKey {
  readonly accountId: string;
  /** An admin-scope key of the account (created as an operator would), for checking what the API does; null on free. */
  readonly adminKey: string | null;
  readonly adminKeyId: string | null;
}

export interface ConsoleTestContext {
  readonly page: Page;
  readonly context: BrowserContext;
}

const PRO_ADMIN_CAPABILITIES = [
  'workflow:run',
  'workflow:read',
  'workflow:write',
  'webhook:receive',
  'execution:read',
  'execution:cancel',
  'keys:read',
  'keys:write',
  'audit:read',
];

let peopleCount = 0;
let freeAccounts = 0;

/**
 * A test file's local stack (seeded: acct_demo and demo@knouds.local) and Chromium. The file calls
 * `beforeAll(() => suite.start(), 120_000)` and `afterAll(() => suite.stop())`, and wraps each test's
 * body in `suite.withPage(...)`.
 */
export class ConsoleSuite {
  private stackValue: TestStack | undefined;
  private browserValue: Browser | undefined;
  private membershipsValue: MembershipsRepository | undefined;

  constructor(readonly name: string) {}

  async start(): Promise<void> {
    const [stack, launched] = await Promise.allSettled([startTestStack(this.name, { seed: true }), launchChromium()]);
    if (stack.status === 'fulfilled') this.stackValue = stack.value;
    if (launched.status === 'fulfilled') this.browserValue = launched.value;
    if (stack.status === 'rejected') throw stack.reason;
    if (launched.status === 'rejected') throw launched.reason;
    this.membershipsValue = new MembershipsRepository(stack.value.stack.doc, stack.value.stack.state.tables.memberships);
  }

  async stop(): Promise<void> {
    await this.browserValue?.close();
    await this.stackValue?.close();
  }

  get t(): TestStack {
    return need(this.stackValue, 'the local stack');
  }

  get browser(): Browser {
    return need(this.browserValue, 'Chromium');
  }

  /** `http://localhost:<port>` of the local stack (console at `/`, API at `/v1`, provider at `/oidc`). */
  get url(): string {
    return this.t.stack.url;
  }

  get memberships(): MembershipsRepository {
    return need(this.membershipsValue, 'the local stack');
  }

  /** The seeded demo person (admin of acct_demo, business), as `npm start` prints them. */
  get demo(): SignedInPerson {
    return need(this.t.stack.demoPerson, 'the demo person');
  }

  /** A new account of the tier; on a paid tier with a key named "Operator key" holding all the tier allows (one of its 10). */
  async account(tier: TierName): Promise<AccountWithKey> {
    if (tier === 'free') {
      const accountId = `acct_${this.name.replace(/[^a-z0-9]/gi, '')}_free${++freeAccounts}_${Date.now().toString(36)}`;
      await createAccount(this.t.deps(), accountId, tier);
      return { accountId, adminKey: null, adminKeyId: null };
    }
    // Everything the tier allows: the admin scope but for model:run on pro.
    const body = tier === 'pro' ? { capabilities: PRO_ADMIN_CAPABILITIES } : { scope: 'admin' };
    const { accountId, key, keyId } = await this.t.account(tier, { name: 'Operator key', ...body });
    return { accountId, adminKey: key, adminKeyId: keyId };
  }

  /** A new person of the local provider with these memberships. */
  async person(memberships: readonly (readonly [string, RoleName])[], emailHint = 'person'): Promise<SignedInPerson> {
    const email = `${emailHint}.${++peopleCount}.${Date.now().toString(36)}@example.com`;
    const added = await this.t.stack.oidc.people.addPerson(email);
    if (!added.password) throw new Error(`${email} already existed`);
    for (const [accountId, role] of memberships) await this.t.member(added.subject, accountId, added.email, role);
    return { subject: added.subject, email: added.email, password: added.password };
  }

  /** Calls the API with a key (x-api-key). */
  api(key: string, method: string, apiPath: string, body?: unknown): Promise<Reply> {
    return this.t.api(key, method, apiPath, body);
  }

  /**
   * A test body with a fresh browser context (1280×800; `timezoneId` and `locale` when given, else this
   * machine's) and page, clipboard permissions when asked. It
   * fails on any Content-Security-Policy violation; on failure a screenshot is written under the temp
   * folder and its path printed, with the page's errors.
   */
  withPage(fn: (c: ConsoleTestContext) => Promise<void>, options: { clipboard?: boolean; timezoneId?: string; locale?: string } = {}): () => Promise<void> {
    return async () => {
      const { timezoneId, locale } = options;
      const context = await this.browser.newContext({ viewport: { width: 1280, height: 800 }, ...(timezoneId ? { timezoneId } : {}), ...(locale ? { locale } : {}) });
      if (options.clipboard) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: this.url });
      const page = await context.newPage();
      const problems = watchPage(page);
      try {
        await fn({ page, context });
        // A CSP violation is a console that breaks deployed (lib/console-security.ts): no inline scripts or styles.
        expect(problems.csp).toEqual([]);
      } catch (error) {
        await saveFailure(page, this.name, expect.getState().currentTestName ?? 'test', problems.all);
        throw error;
      } finally {
        await context.close();
      }
    };
  }
}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} did not start (see beforeAll)`);
  return value;
}

/** Collects what the page says went wrong: its errors, and Content-Security-Policy violations separately. */
function watchPage(page: Page): { csp: string[]; all: string[] } {
  const csp: string[] = [];
  const all: string[] = [];
  page.on('console', (message) => {
    if (message.type() !== 'error' && message.type() !== 'warning') return;
    const text = redact(message.text());
    all.push(`console.${message.type()}: ${text}`);
    if (/Content Security Policy/i.test(text)) csp.push(text);
  });
  page.on('pageerror', (error) => all.push(`page error: ${redact(error.message)}`));
  return { csp, all };
}

const redact = (text: string): string =>
  text.replace(new RegExp(API_KEY_PATTERN.source, 'g'), '<api key>').replace(/whsec_[A-Za-z0-9+/=]+/g, '<webhook secret>').replace(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g, '<jwt>');

async function saveFailure(page: Page, suiteName: string, title: string, problems: readonly string[]): Promise<void> {
  const dir = path.join(tmpdir(), 'knouds-console-failures');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${suiteName}-${title.replace(/[^a-z0-9]+/gi, '-').slice(0, 80)}-${Date.now()}.png`);
  let where: string;
  try {
    await page.screenshot({ path: file, fullPage: true, timeout: 5_000 });
    where = `${file} (page ${redact(page.url())})`;
  } catch (error) {
    where = `no screenshot (${(error as Error).message.split('\n')[0]}); page ${redact(page.url())}`;
  }
  process.stderr.write(`\n[console test failed] ${title}\n  screenshot: ${where}\n${problems.map((p) => `  ${p}\n`).join('')}`);
}

/** Opens the console, signs in through the local provider's login page, and waits for the API Keys page. */
export async function signIn(page: Page, url: string, person: { email: string; password: string }): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await fillLogin(page, person);
  await page.getByRole('heading', { name: 'API Keys' }).waitFor();
}

/** The local provider's login page: Email, Password, "Sign in". */
export async function fillLogin(page: Page, person: { email: string; password: string }): Promise<void> {
  await page.getByLabel('Email').fill(person.email);
  await page.getByLabel('Password').fill(person.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The signed-in person's access token, from oidc-client-ts's entry in the tab's session storage. */
export async function sessionAccessToken(page: Page): Promise<string | undefined> {
  return page.evaluate(() => {
    for (let i = 0; i < sessionStorage.length; i++) {
      const key = sessionStorage.key(i)!;
      if (!key.startsWith('oidc.user:')) continue;
      try {
        const user = JSON.parse(sessionStorage.getItem(key) ?? '{}') as { access_token?: string };
        if (user.access_token) return user.access_token;
      } catch {
        // not oidc-client-ts's entry
      }
    }
    return undefined;
  });
}

/**
 * Where in the page a secret is held: the document's markup and text, every input's, textarea's and
 * select's value, the URL, the title, session and local storage, and the context's cookies. Empty when
 * nowhere. The page's contents are read out and searched here, so the secret is never sent into the page
 * (which would put it in the heap `heapHolds` searches) and never returned.
 */
export async function placesHolding(page: Page, secret: string): Promise<string[]> {
  const seen = await page.evaluate(() => {
    const storage = (s: PageStorage) => {
      const entries: [string, string][] = [];
      for (let i = 0; i < s.length; i++) {
        const key = s.key(i)!;
        entries.push([key, s.getItem(key) ?? '']);
      }
      return entries;
    };
    const values: [string, string][] = [];
    document.querySelectorAll('input, textarea, select').forEach((el, i) => {
      values.push([`${el.tagName.toLowerCase()} #${i} ${el.getAttribute('aria-label') ?? el.id}`, el.value ?? '']);
    });
    return {
      markup: document.documentElement.outerHTML,
      text: document.body.innerText,
      values,
      url: location.href,
      title: document.title,
      sessionStorage: storage(sessionStorage),
      localStorage: storage(localStorage),
    };
  });
  const found: string[] = [];
  if (seen.markup.includes(secret)) found.push('the page markup');
  if (seen.text.includes(secret)) found.push('the page text');
  for (const [name, value] of seen.values) if (value.includes(secret)) found.push(`the value of ${name}`);
  if (seen.url.includes(secret)) found.push('the URL');
  if (seen.title.includes(secret)) found.push('the title');
  for (const area of ['sessionStorage', 'localStorage'] as const) {
    for (const [key, value] of seen[area]) if (key.includes(secret) || value.includes(secret)) found.push(`${area}[${key.slice(0, 60)}]`);
  }
  for (const c of await page.context().cookies()) {
    if (c.value.includes(secret) || safeDecode(c.value).includes(secret)) found.push(`cookie ${c.name} (${c.domain}${c.path})`);
  }
  return found;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Whether the page's JavaScript heap holds the string (a V8 heap snapshot after garbage collection,
 * through the DevTools protocol): "once closed, the plaintext is gone from the page and from memory".
 */
export async function heapHolds(page: Page, secret: string): Promise<boolean> {
  const cdp = await page.context().newCDPSession(page);
  try {
    await cdp.send('HeapProfiler.enable');
    await cdp.send('HeapProfiler.collectGarbage');
    await cdp.send('HeapProfiler.collectGarbage');
    const chunks: string[] = [];
    cdp.on('HeapProfiler.addHeapSnapshotChunk', ({ chunk }) => chunks.push(chunk));
    await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false, captureNumericValue: false });
    await cdp.send('HeapProfiler.disable');
    return chunks.join('').includes(secret);
  } finally {
    await cdp.detach();
  }
}

/** The text on the clipboard (the context needs the clipboard permissions). */
export function clipboardText(page: Page): Promise<string> {
  return page.evaluate(() => navigator.clipboard.readText());
}

/**
 * `curl` (the real binary) GET `<url>` with the key in x-api-key, given on standard input so it is in no
 * process list; resolves to the HTTP status.
 */
export function curlStatus(url: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = execFile('curl', ['--silent', '--show-error', '--output', '/dev/null', '--write-out', '%{http_code}', '--header', '@-', url], { timeout: 15_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`curl failed: ${stderr || error.message}`));
      else resolve(Number(stdout.trim()));
    });
    child.stdin?.end(`x-api-key: ${key}\n`);
  });
}

/** axe-core on the page as it is now: fails on any serious or critical violation, naming rule, impact, target and help. */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const lines = bad.flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}) at ${JSON.stringify(n.target)}: ${v.help} — ${v.helpUrl}`));
  expect({ page: what, violations: lines }).toEqual({ page: what, violations: [] });
}

/** Retries an assertion until it passes or `timeoutMs` pass (then throws its last failure). */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Waits until the locator is visible (10 s). */
export function visible(locator: Locator, timeout = 10_000): Promise<void> {
  return locator.waitFor({ state: 'visible', timeout });
}

/** Waits until the locator is hidden or gone (10 s). */
export function gone(locator: Locator, timeout = 10_000): Promise<void> {
  return locator.waitFor({ state: 'hidden', timeout });
}

/** Whether the element is the focused one. */
export function isFocused(locator: Locator): Promise<boolean> {
  return locator.evaluate((el) => el === (document.activeElement as unknown));
}

/**
 * Presses `key` (Tab by default) until the locator has the focus; fails after `max` presses. Keyboard
 * only: no click reaches the page.
 */
export async function pressUntilFocused(page: Page, locator: Locator, key = 'Tab', max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    if ((await locator.count()) === 1 && (await isFocused(locator))) return;
    await page.keyboard.press(key);
  }
  const focused = await page.evaluate(() => {
    const el = document.activeElement;
    return el ? `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 60)}"` : 'nothing';
  });
  throw new Error(`${max} presses of ${key} never reached ${locator.toString()}; the focus is on ${focused}`);
}

/** The accessible description of an element: its aria-describedby texts, else its title. */
export function accessibleDescription(locator: Locator): Promise<string> {
  return locator.evaluate((el) => {
    const ids: string[] = (el.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
    const text = ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ').trim();
    return text || el.getAttribute('title') || '';
  });
}

// The console's pages, by the names API.md §6 promises.

/** The table row of a key, by its name (names are unique within each test). */
export function keyRow(page: Page, name: string): Locator {
  const named = page.getByRole('rowheader', { name, exact: true }).or(page.getByRole('cell', { name, exact: true }));
  return page.getByRole('row').filter({ has: named });
}

/** "Create key" → the dialog "Create API key", its Name filled. */
export async function openCreateDialog(page: Page, name: string): Promise<Locator> {
  await page.getByRole('button', { name: 'Create key', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Create API key' });
  await visible(dialog);
  await dialog.getByRole('textbox', { name: 'Name' }).fill(name);
  return dialog;
}

/** Presses "Create" and reads the key shown once (a read-only textbox "API key", the warning beside it). */
export async function createAndReadKey(dialog: Locator): Promise<string> {
  await dialog.getByRole('button', { name: 'Create', exact: true }).click();
  return readShownKey(dialog);
}

/** Reads the key shown once in `dialog` (a read-only textbox "API key", the warning beside it). */
export async function readShownKey(dialog: Locator): Promise<string> {
  const shown = dialog.page().getByRole('textbox', { name: 'API key' });
  await visible(shown);
  expect(await shown.evaluate((el) => (el as unknown as { readOnly: boolean }).readOnly)).toBe(true);
  const key = await shown.inputValue();
  expect(API_KEY_PATTERN.test(key)).toBe(true);
  // The warning that it cannot be shown again, in the same dialog.
  const dialogText = await dialog.page().getByRole('dialog').last().innerText();
  expect(dialogText).toMatch(/(cannot|can't|can not|won't|will not) be shown again|only (be shown )?once/i);
  return key;
}

/** Closes the dialog that shows a key (its close button: "Done" or "Close"), and waits for it to go. */
export async function closeKeyDialog(page: Page): Promise<void> {
  const dialog = page.getByRole('dialog').last();
  await dialog.getByRole('button', { name: /^(done|close)\b/i }).first().click();
  await gone(page.getByRole('textbox', { name: 'API key' }));
}

/** "Actions for <name>" → the menu item (Edit, Rotate, Usage, History, Delete). */
export async function rowAction(page: Page, name: string, item: 'Edit' | 'Rotate' | 'Usage' | 'History' | 'Delete'): Promise<void> {
  await page.getByRole('button', { name: `Actions for ${name}`, exact: true }).click();
  await page.getByRole('menuitem', { name: item, exact: true }).click();
}

/**
 * The first POST to a path ending in `pathEnd` reaches the API and is done there, and its answer never
 * reaches the page (the connection is cut); later ones go through. Returns how many were sent so far.
 */
export async function loseFirstAnswer(page: Page, pathEnd: string): Promise<() => number> {
  let sent = 0;
  await page.route(
    (url) => url.pathname.endsWith(pathEnd),
    async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      sent += 1;
      if (sent > 1) return route.continue();
      await route.fetch();
      return route.abort('connectionreset');
    },
  );
  return () => sent;
}

/** Answers an intercepted API call as an overloaded gateway would: 503 SERVICE_UNAVAILABLE, with Retry-After when given. */
export function answerUnavailable(route: Route, retryAfterSeconds?: number): Promise<void> {
  return route.fulfill({
    status: 503,
    contentType: 'application/json',
    ...(retryAfterSeconds !== undefined ? { headers: { 'Retry-After': String(retryAfterSeconds) } } : {}),
    json: { error: 'Service unavailable', code: 'SERVICE_UNAVAILABLE', request_id: 'r' },
  });
}
