/**
 * `npm run screenshots`: pictures of the console for the README, taken from the real thing. Starts the
 * whole local stack (synthesized into a temporary folder, on DynamoDB Local in memory, or on
 * DYNAMODB_ENDPOINT under tables of its own), seeds a business account with a few realistic keys, a
 * month of usage, a workflow and a free account, signs in with Chromium through the local provider, and
 * writes PNGs (1280×800) of the main pages into docs/. The one key shown in full (the "shown once"
 * dialog) is replaced by a placeholder before the picture is taken.
 *
 *   --out <dir>        where the PNGs go (default docs/)
 *   --port <n>         the local stack's port (default: any free one)
 *   --assembly <dir>   serve this cloud assembly (e.g. cdk.out.test) instead of synthesizing
 *   CHROMIUM_PATH      Chromium or Chrome to drive (default /usr/bin/chromium)
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { MembershipsRepository } from '../lambdas/shared/repositories/memberships.js';
import { UsageRepository } from '../lambdas/shared/repositories/usage.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { AuditRepository, memberAddedEvent } from '../lambdas/shared/repositories/audit.js';
import { createAccount } from '../lambdas/shared/services/keys.js';
import { DEMO_ACCOUNT_ID, startLocalStack, type LocalStack } from '../local-runner/stack.js';
import { CONSOLE_CLIENT_ID } from '../local-runner/oidc/index.js';
import { PROJECT_ROOT } from '../local-runner/state.js';
import { closeKeyDialog, launchChromium, openCreateDialog, rowAction, signIn } from '../test/support/browser.js';
import { signIn as scriptedSignIn } from '../test/support/oidc.js';

const USAGE = 'Usage: npm run screenshots [-- --out <dir>] [--port <n>] [--assembly <cdk.out dir>]';
/** What the "shown once" dialog shows instead of the real key: the format of a key, plainly an example. */
const PLACEHOLDER_KEY = 'knouds_live_4eC39HqLyjWDarjtT1zdp7dcEXAMPLEonly00';
const VIEWPORT = { width: 1280, height: 800 } as const;

const say = (line: string) => process.stdout.write(`${line}\n`);

function fail(message: string): never {
  process.stderr.write(`\nscreenshots: ${message}\n`);
  process.exit(1);
}

let args;
try {
  args = parseArgs({
    options: {
      out: { type: 'string', default: path.join(PROJECT_ROOT, 'docs') },
      port: { type: 'string', default: '0' },
      assembly: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (error) {
  fail(`${(error as Error).message}\n${USAGE}`);
}
if (args.help) {
  say(USAGE);
  process.exit(0);
}
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number, got '${args.port}'`);
const outDir = path.resolve(args.out);
mkdirSync(outDir, { recursive: true });

const started = Date.now();
const scratch = mkdtempSync(path.join(tmpdir(), 'knouds-screenshots-'));
let stack: LocalStack | undefined;
try {
  stack = await startLocalStack({
    port,
    cdkOut: args.assembly ? path.resolve(args.assembly) : path.join(scratch, 'cdk.out'),
    skipSynth: Boolean(args.assembly),
    ...(process.env['DYNAMODB_ENDPOINT']
      ? { dynamodbEndpoint: process.env['DYNAMODB_ENDPOINT'], tableNamePrefix: `screenshots-${Date.now().toString(36)}` }
      : {}),
    seed: true,
    schedules: 'manual',
    onProgress: say,
  });
  const written = await takePictures(stack, outDir);
  say(`\nWrote ${written.length} pictures in ${Math.round((Date.now() - started) / 1000)} s:`);
  for (const file of written) say(`  ${path.relative(process.cwd(), file)}`);
} catch (error) {
  process.stderr.write(`\nscreenshots: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await stack?.close();
  rmSync(scratch, { recursive: true, force: true });
}

interface Seeded {
  readonly demo: { email: string; password: string };
  readonly hobbyist: { email: string; password: string };
}

/** A business account that has been in use for a while, and a free one. */
async function seed(stack: LocalStack): Promise<Seeded> {
  say('Seeding keys, usage, a workflow and a free account…');
  const demo = stack.demoPerson;
  if (!demo || !stack.adminKey) throw new Error('the stack was not seeded');
  // The demo person makes the keys through the API, so the table says who created them.
  const { access_token: token } = await scriptedSignIn(`${stack.url}/oidc`, {
    email: demo.email,
    password: demo.password,
    clientId: CONSOLE_CLIENT_ID,
    redirectUri: `${stack.url}/auth/callback`,
  });
  const api = async (method: string, apiPath: string, body?: unknown, auth: Record<string, string> = { authorization: `Bearer ${token}` }) => {
    const response = await fetch(`${stack.apiUrl}${apiPath}`, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (response.status >= 300) throw new Error(`${method} ${apiPath} answered ${response.status} ${String(json['code'])}`);
    return json;
  };

  await api('POST', '/workflows', {
    slug: 'nightly-report',
    name: 'Nightly report',
    description: 'Summarises the day’s orders',
    definition: {
      input_schema: { type: 'object', properties: { text: { type: 'string' } } },
      steps: [{ id: 'upper', model: 'uppercase', input: { text: '$.input.text' } }],
      output: '$.steps.upper.output',
    },
  });
  await api('POST', '/workflows/nightly-report/deploy');

  const keys: Record<string, { key_id: string; api_key: string }> = {};
  const make = async (name: string, body: Record<string, unknown>) => {
    keys[name] = (await api('POST', '/keys', { name, ...body })) as { key_id: string; api_key: string };
  };
  await make('Production deploys', { preset: 'full-deploy', expires_in_days: 90 });
  await make('CI pipeline', { preset: 'workflow-deploy', expires_in_days: 30 });
  await make('Analytics dashboard', { preset: 'read-only' });
  await make('Order webhook', { preset: 'webhook-receiver', expires_in_days: 365 });
  await make('Temporary debugging', { preset: 'read-only', expires_in_days: 7 });
  await make('Staging smoke tests', { capabilities: ['workflow:nightly-report:run', 'execution:read'], environment: 'test', expires_in_days: 7 });
  // A little history for the audit log: a rename and a key deleted.
  await api('PATCH', `/keys/${keys['Order webhook']!.key_id}`, { name: 'Order webhooks' });
  await api('DELETE', `/keys/${keys['Temporary debugging']!.key_id}`);

  // A month of traffic for the usage chart (the usage repository's own counter, as the authorizer counts).
  const usage = new UsageRepository(stack.doc, stack.state.tables.usage);
  const now = new Date();
  const ci = keys['CI pipeline']!.key_id;
  const hits: Date[] = [];
  for (let daysAgo = 29; daysAgo >= 1; daysAgo--) {
    const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - daysAgo));
    const weekend = day.getUTCDay() === 0 || day.getUTCDay() === 6;
    const count = Math.round((weekend ? 4 : 18) + 10 * Math.sin(daysAgo / 3) ** 2 + (daysAgo % 5));
    for (let i = 0; i < count; i++) hits.push(new Date(day.getTime() + (8 + (i % 10)) * 3_600_000 + (i * 7 % 60) * 60_000));
  }
  for (let i = 0; i < hits.length; i += 25) {
    await Promise.all(hits.slice(i, i + 25).map((at) => usage.hit(ci, DEMO_ACCOUNT_ID, 1000, at)));
  }
  // Today's calls, made for real.
  for (let i = 0; i < 12; i++) await api('GET', '/workflows', undefined, { 'x-api-key': keys['CI pipeline']!.api_key });
  for (let i = 0; i < 3; i++) await api('GET', '/keys/verify', undefined, { 'x-api-key': keys['Analytics dashboard']!.api_key });

  // A free account and its admin.
  const audit = new AuditRepository(stack.doc, stack.state.tables.audit, stack.state.settings.auditRetentionDays);
  await createAccount({ accounts: new AccountsRepository(stack.doc, stack.state.tables.accounts), audit, now: () => new Date() }, 'acct_hobby', 'free');
  const added = await stack.oidc.people.addPerson('sam@hobby.example');
  if (!added.password) throw new Error('sam@hobby.example already existed');
  const addedAt = new Date();
  await new MembershipsRepository(stack.doc, stack.state.tables.memberships).add(added.subject, 'acct_hobby', added.email, 'admin', addedAt, audit.putItem(memberAddedEvent('acct_hobby', added.subject, added.email, 'admin', addedAt)));
  return { demo, hobbyist: { email: added.email, password: added.password } };
}

async function takePictures(stack: LocalStack, dir: string): Promise<string[]> {
  const seeded = await seed(stack);
  const written: string[] = [];
  const browser = await launchChromium();
  try {
    const shoot = async (page: Page, name: string) => {
      // Let transitions and fonts settle; the pointer is nowhere over the page.
      await page.mouse.move(VIEWPORT.width - 1, VIEWPORT.height - 1);
      await page.waitForTimeout(300);
      const file = path.join(dir, `console-${name}.png`);
      await page.screenshot({ path: file, animations: 'disabled', caret: 'hide' });
      written.push(file);
      const width = await page.evaluate('document.documentElement.scrollWidth');
      say(`  ${name}${Number(width) > VIEWPORT.width ? ` (warning: the page is ${String(width)} px wide, so the picture cuts off its right side)` : ''}`);
    };
    const open = async () => {
      const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, colorScheme: 'light', locale: 'en-US', timezoneId: 'UTC' });
      // tsx names functions with a __name helper that the page lacks; give it one.
      await context.addInitScript('globalThis.__name = (f) => f');
      return { context, page: await context.newPage() };
    };

    say('Taking pictures…');
    const { context, page } = await open();
    // The real (throwaway, local) key never goes into a picture: the console is handed the placeholder
    // in place of the new key's plaintext (only this answer is changed, and only its api_key).
    await page.route(`${stack.apiUrl}/keys`, async (route) => {
      if (route.request().method() !== 'POST') return route.fallback();
      const response = await route.fetch();
      const body = (await response.json()) as Record<string, unknown>;
      if (typeof body['api_key'] === 'string') body['api_key'] = PLACEHOLDER_KEY;
      await route.fulfill({ response, json: body });
    });
    await signIn(page, stack.url, seeded.demo);
    await page.getByRole('row').filter({ hasText: 'CI pipeline' }).waitFor();
    await shoot(page, 'api-keys');

    const dialog = await openCreateDialog(page, 'Deploy bot');
    await dialog.getByRole('radio', { name: 'Workflow Deploy', exact: true }).check();
    await shoot(page, 'create-key');

    await dialog.getByRole('button', { name: 'Create', exact: true }).click();
    const shown = page.getByRole('textbox', { name: 'API key' });
    await shown.waitFor();
    if ((await shown.inputValue()) !== PLACEHOLDER_KEY) throw new Error('the key shown is not the placeholder: no picture of it');
    await shoot(page, 'key-created');
    await closeKeyDialog(page);

    await rowAction(page, 'CI pipeline', 'Usage');
    await page.getByRole('img', { name: /30 days/i }).waitFor();
    await shoot(page, 'usage');
    await page.keyboard.press('Escape');

    await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
    await page.getByRole('heading', { name: 'Webhooks', exact: true }).waitFor();
    await shoot(page, 'webhooks');

    await page.getByRole('link', { name: 'Audit log', exact: true }).click();
    await page.getByRole('table', { name: /audit events/i }).waitFor();
    await shoot(page, 'audit-log');
    await context.close();

    const free = await open();
    await signIn(free.page, stack.url, seeded.hobbyist);
    await free.page.getByText(/pro/i).first().waitFor();
    await shoot(free.page, 'free-tier');
    await free.context.close();
  } finally {
    await browser.close();
  }
  return written;
}
