/**
 * `npm run --silent admin -- <command>`: manages what the API cannot bootstrap (accounts, the first
 * keys), through the same domain code as the Lambdas, so the same rules apply (tier ceiling, key limit).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ROLES, ROLE_NAMES, isRoleName, type RoleName } from '../lambdas/shared/capabilities.js';
import { ApiError, NotFoundError, ValidationError } from '../lambdas/shared/errors.js';
import { ACCOUNT_ID_PATTERN, type AccountRecord } from '../lambdas/shared/repositories/accounts.js';
import { sweep, SweepStopped, type SweepResult } from '../lambdas/shared/services/housekeeping.js';
import { createAccount, createKey, getKey, listKeys, revokeKey, rotateKey, setAccountTier, updateKey, type KeyObject } from '../lambdas/shared/services/keys.js';
import { activeKeyCount } from '../lambdas/shared/services/me.js';
import { TIER_NAMES, isTierName, type TierName } from '../lambdas/shared/settings.js';
import { LocalOidcAdminError } from '../local-runner/oidc/admin-client.js';
import { InvalidEmailError, normalizeEmail } from '../local-runner/oidc/people.js';
import { EXIT, EXIT_CODES_HELP, EXIT_CODES_LINE, exitOfStatus, isUnreachable, mayHaveLanded } from './exit-codes.js';
import { MemberUsageError, addMember, listMembers, memberName, removeMember, resetPassword, setMemberRole, type Who } from './members.js';
import { suggest } from './suggest.js';
import { TargetError, awsTarget, localTarget, type Target } from './target.js';

// The SDK's notice that it will need Node 22 in 2027 is noise for a CLI run on Node 20.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

export { EXIT };

const GLOBAL_HELP = `Usage: npm run --silent admin -- <command> [options]

Commands:
  account create --id <id> --tier <tier>
  account set-tier --id <id> --tier <tier>
  account list
  account get --id <id>
  key create --account <id> --name <name> (--capabilities a,b | --preset <p> | --scope <s>)
             [--workspace <w>]... [--expires-in-days <n> | --expires-at <time>] [--test]
             [--metadata <key=value>]... [--disabled]
  key get <key_id>
  key disable <key_id> · key enable <key_id>
  key rotate <key_id> [--grace-period-seconds <0-86400>]
  key revoke <key_id>
  key list --account <id>
  user add --account <id> (--email <email> | --subject <sub> [--email <email>]) --role <admin|viewer>
  user list --account <id>
  user set-role --account <id> (--email <email> | --subject <sub>) --role <admin|viewer>
  user remove --account <id> (--email <email> | --subject <sub>)
  user reset-password --email <email>
  sweep

Options for every command:
  --json                 print one JSON object and nothing else
  --stack-name <name>    work on a deployed stack (with --region or AWS_REGION) instead of the local one
  --region <region>
  -h, --help             this help, or a command's help

A mistyped command or flag is named with the one meant ("did you mean --account?").

${EXIT_CODES_HELP}`;

class UsageError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>;
interface Command {
  readonly usage: string;
  /** More words for the command's --help. */
  readonly about?: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  readonly positionals?: number;
  /** It changes something: a lost answer leaves its outcome unknown (exit 1, OUTCOME_UNKNOWN), not "no stack". */
  readonly writes?: boolean;
  /** Flag checks that need no stack: run before connecting, so a bad flag is named even with no stack up. */
  check?(values: Values, positionals: string[]): void;
  run(target: Target, values: Values, positionals: string[]): Promise<{ json: unknown; text: string }>;
}

const str = (values: Values, name: string): string => {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
};
const accountId = (values: Values, name: string): string => {
  const v = str(values, name);
  if (!ACCOUNT_ID_PATTERN.test(v)) throw new UsageError(`--${name} '${v}' is not a valid account id (letters, digits, _ and -, at most 64)`);
  return v;
};
/** " (did you mean x?)" when one of `candidates` is near `word`, else nothing. */
const didYouMean = (word: string, candidates: readonly string[], show: (c: string) => string = (c) => c): string => {
  const near = suggest(word, candidates);
  return near === undefined ? '' : ` (did you mean ${show(near)}?)`;
};
const tier = (values: Values): TierName => {
  const v = str(values, 'tier');
  if (!isTierName(v)) throw new UsageError(`--tier '${v}' is not a tier; use one of ${TIER_NAMES.join(', ')}${didYouMean(v, TIER_NAMES)}`);
  return v;
};

const role = (values: Values): RoleName => {
  const v = str(values, 'role');
  if (!isRoleName(v)) throw new UsageError(`--role '${v}' is not a role; use one of ${ROLE_NAMES.join(', ')}${didYouMean(v, ROLE_NAMES)}`);
  return v;
};
/** The one positional of `key get|rotate|revoke`. */
const keyIdOf = (positionals: string[], command: string): string => {
  const v = positionals[0];
  if (!v) throw new UsageError(`give the key id: key ${command} <key_id>`);
  return v;
};
/**
 * The account of a key of any account, by id (operators only), for the service functions, which then
 * decide as for the API: 404 for a key no longer active, 409 naming the replacement of a rotated one.
 */
async function accountOfKey(target: Target, keyId: string): Promise<string> {
  const record = await target.deps.keys.findById(keyId);
  if (!record) throw new NotFoundError(`Key '${keyId}' not found`);
  return record.account_id;
}
/** `--grace-period-seconds`: digits here; its range (0–86400) is the API's rule, checked by the service. */
const graceSeconds = (values: Values): number | undefined => {
  const v = values['grace-period-seconds'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new UsageError(`--grace-period-seconds '${String(v)}' is not a number of seconds`);
  return Number(v);
};
const keyLines = (k: KeyObject): string =>
  [
    `${k.key_id}  ${k.name}`,
    `  account: ${k.account_id} (tier ${k.tier})  environment: ${k.environment}  prefix: ${k.prefix}…`,
    `  capabilities: ${k.capabilities.join(', ') || '(none)'}`,
    `  workspaces: ${k.workspaces.join(', ')}`,
    `  created: ${k.created_at}  expires: ${k.expires_at ?? 'never'}  last used: ${k.last_used ?? 'never'}`,
    `  created by: ${createdBy(k.created_by)}`,
    `  enabled: ${k.enabled ? 'yes' : 'no (disabled: refused until enabled)'}`,
    ...(k.rotated_to ? [`  replaced by: ${k.rotated_to} (rotated; works until ${k.expires_at ?? 'its grace ends'})`] : []),
    ...Object.entries(k.metadata).map(([name, value]) => `  metadata ${name}: ${value}`),
  ].join('\n');
const createdBy = (p: KeyObject['created_by']): string => {
  if (!p) return 'unknown';
  if (p.kind === 'person') return p.email === null ? `person ${p.subject}` : `${p.email} (person ${p.subject})`;
  if (p.kind === 'key') return `key ${p.key_id}`;
  return 'an operator (admin CLI)';
};
/**
 * `--metadata key=value`, repeatable, as the map POST /keys takes (the split is at the first `=`, so a
 * value may hold one); the map's own limits (20 entries, 40/500 characters) are the API's rule, checked by
 * the service.
 */
const metadataOf = (values: Values): Record<string, string> | undefined => {
  const entries = values['metadata'];
  if (!Array.isArray(entries)) return undefined;
  // A Map: a key named `__proto__` or `constructor` is a key like any other.
  const map = new Map<string, string>();
  for (const entry of entries) {
    const at = String(entry).indexOf('=');
    if (at <= 0) throw new UsageError(`--metadata '${String(entry)}' is not key=value`);
    const name = String(entry).slice(0, at);
    if (map.has(name)) throw new UsageError(`--metadata gives '${name}' twice`);
    map.set(name, String(entry).slice(at + 1));
  }
  return Object.fromEntries(map);
};
/** `key disable|enable <key_id>`: PATCH /keys/{key_id} `{enabled}` through the same service function. */
function enabledCommand(enabled: boolean): Command {
  const verb = enabled ? 'enable' : 'disable';
  return {
    usage: `key ${verb} <key_id>`,
    about: enabled
      ? 'Makes a disabled key work again from its next request (PATCH /keys/{key_id} {"enabled": true}).'
      : 'Stops a key from its next request (401) without revoking it: it stays listed and keeps its slot\n' +
        '(PATCH /keys/{key_id} {"enabled": false}); key enable brings it back. Recorded as key.updated by the operator.',
    writes: true,
    options: {},
    positionals: 1,
    check(_values, positionals) {
      keyIdOf(positionals, verb);
    },
    async run(target, _values, positionals) {
      const keyId = keyIdOf(positionals, verb);
      const key = await updateKey(target.deps, await accountOfKey(target, keyId), keyId, { enabled });
      return { json: key, text: `${enabled ? 'Enabled' : 'Disabled'} ${keyId} of ${key.account_id} on the ${target.description}.\n${keyLines(key)}` };
    },
  };
}
/** How many account reads `account list` has in flight at once. */
const ACCOUNT_READS = 10;
const email = (values: Values): string => {
  const v = str(values, 'email');
  try {
    return normalizeEmail(v);
  } catch (error) {
    if (error instanceof InvalidEmailError) throw new UsageError(`--email '${v}' is not an email address`);
    throw error;
  }
};
/** An OpenID Connect `sub`: at most 255 ASCII characters (OpenID Connect Core §2), printable, no spaces. */
const SUBJECT_PATTERN = /^[\x21-\x7e]{1,255}$/;
const subject = (values: Values): string => {
  const v = str(values, 'subject');
  if (!SUBJECT_PATTERN.test(v)) throw new UsageError(`--subject '${v}' is not a subject (1–255 printable ASCII characters, no spaces)`);
  return v;
};
/** Exactly one of --email and --subject. */
const who = (values: Values): Who => {
  const hasEmail = values['email'] !== undefined;
  const hasSubject = values['subject'] !== undefined;
  if (hasEmail === hasSubject) throw new UsageError('name the person by --email or by --subject (one of them)');
  return hasEmail ? { email: email(values) } : { subject: subject(values) };
};

const USER_ADD_ABOUT = `Adds a person to an account with a role, cut to the account's tier ceiling:
  admin: every capability; viewer: ${ROLES.viewer.join(', ')}.
  Local stack: creates the person in the local provider; --json's "password" is their password, shown
  once ("null" for a person the provider already knew, who keeps theirs; if they never got it, give
  them a new one with user reset-password --email <email>).
  Deployed, with the stack's Cognito user pool: creates the user (the email is the username; Cognito
  emails a temporary password: "password" is null); a user already in the pool is found, not re-invited.
  Deployed, with your own identity provider (no UserPoolId output): give --subject <sub> (the sub of the
  person's tokens) instead of --email; add --email too to keep it with the membership (shown as the
  person's email, and set-role and remove then find them by it), else their email is null.
The same person with the same role again changes nothing; with another role, use user set-role.`;

/** Body fields of POST /keys → the flags that set them, so errors name the flag. */
const FLAG_OF_FIELD: Record<string, string> = {
  name: '--name',
  capabilities: '--capabilities',
  preset: '--preset',
  scope: '--scope',
  workspaces: '--workspace',
  expires_in_days: '--expires-in-days',
  expires_at: '--expires-at',
  metadata: '--metadata',
  enabled: '--disabled',
  environment: '--test',
  grace_period_seconds: '--grace-period-seconds',
};

const COMMANDS: Record<string, Command> = {
  'account create': {
    writes: true,
    usage: 'account create --id <id> --tier <free|pro|business|enterprise>',
    options: { id: { type: 'string' }, tier: { type: 'string' } },
    check(values) {
      accountId(values, 'id');
      tier(values);
    },
    async run(target, values) {
      const account = await createAccount(target.deps, accountId(values, 'id'), tier(values));
      return {
        json: { account_id: account.account_id, tier: account.tier, created_at: account.created_at },
        text: `Created account ${account.account_id} (tier ${account.tier}) on the ${target.description}.`,
      };
    },
  },
  'account set-tier': {
    writes: true,
    usage: 'account set-tier --id <id> --tier <free|pro|business|enterprise>',
    options: { id: { type: 'string' }, tier: { type: 'string' } },
    check(values) {
      accountId(values, 'id');
      tier(values);
    },
    async run(target, values) {
      const id = accountId(values, 'id');
      const t = tier(values);
      const { keys } = await setAccountTier(target.deps, id, t);
      return {
        json: { account_id: id, tier: t, keys_updated: keys },
        text: `Account ${id} is now on tier ${t}, and so are its ${keys} active key(s), from their next request (one transaction: all or nothing).`,
      };
    },
  },
  'account list': {
    usage: 'account list',
    about:
      'Lists every account, by id: its tier and how many of its keys are active (active_keys, as GET /me counts\n' +
      "them: keys in a rotation's grace included, keys past their expiry or grace not) of the limit. Reads the\n" +
      'whole accounts table, page by page.',
    options: {},
    async run(target) {
      const max = target.deps.settings.maxActiveKeysPerAccount;
      const ids: string[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await target.deps.accounts.scanPage(100, start);
        ids.push(...page.items.map((a) => a.account_id));
        start = page.next;
      } while (start);
      // The scan has no tier: each account read (consistently), a few at a time.
      const accounts: AccountRecord[] = [];
      for (let i = 0; i < ids.length; i += ACCOUNT_READS) {
        const read = await Promise.all(ids.slice(i, i + ACCOUNT_READS).map((id) => target.deps.accounts.get(id)));
        accounts.push(...read.filter((a): a is AccountRecord => a !== undefined));
      }
      accounts.sort((a, b) => (a.account_id < b.account_id ? -1 : a.account_id > b.account_id ? 1 : 0));
      const now = new Date();
      const active: number[] = [];
      for (let i = 0; i < accounts.length; i += ACCOUNT_READS) {
        active.push(...(await Promise.all(accounts.slice(i, i + ACCOUNT_READS).map((a) => activeKeyCount(target.deps.keys, a, now)))));
      }
      const items = accounts.map((a, i) => ({ account_id: a.account_id, tier: a.tier, active_keys: active[i]!, max_active_keys: max, created_at: a.created_at }));
      const lines = items.map((a) => `${a.account_id}  ${a.tier}  ${a.active_keys} of ${max} keys  created ${a.created_at}`);
      return { json: { items }, text: lines.length ? lines.join('\n') : `The ${target.description} has no accounts.` };
    },
  },
  'account get': {
    usage: 'account get --id <id>',
    about:
      "Shows an account: its tier and that tier's ceiling, how many keys are active of the limit, how many people\n" +
      'belong to it (user list --account <id> names them), and when it was created and last changed.',
    options: { id: { type: 'string' } },
    check(values) {
      accountId(values, 'id');
    },
    async run(target, values) {
      const id = accountId(values, 'id');
      const account = await target.deps.accounts.get(id);
      if (!account) throw new NotFoundError(`Account '${id}' does not exist`);
      const members = await listMembers(target.members, id);
      const json = {
        account_id: account.account_id,
        tier: account.tier,
        ceiling: [...target.deps.settings.tiers[account.tier].ceiling],
        active_keys: await activeKeyCount(target.deps.keys, account, new Date()),
        max_active_keys: target.deps.settings.maxActiveKeysPerAccount,
        member_count: members.length,
        created_at: account.created_at,
        updated_at: account.updated_at,
      };
      return {
        json,
        text: [
          `${json.account_id}  tier ${json.tier}`,
          `  ceiling: ${json.ceiling.join(', ') || '(none: this tier holds no usable key)'}`,
          `  keys: ${json.active_keys} of ${json.max_active_keys}`,
          `  people: ${json.member_count}`,
          `  created: ${json.created_at}  updated: ${json.updated_at}`,
        ].join('\n'),
      };
    },
  },
  'key create': {
    writes: true,
    usage:
      'key create --account <id> --name <name> (--capabilities a,b | --preset <p> | --scope <s>) ' +
      '[--workspace <w>]... [--expires-in-days <7|30|60|90|180|365> | --expires-at <ISO-8601 time>] [--test] ' +
      '[--metadata <key=value>]... [--disabled]',
    options: {
      account: { type: 'string' },
      name: { type: 'string' },
      capabilities: { type: 'string' },
      preset: { type: 'string' },
      scope: { type: 'string' },
      workspace: { type: 'string', multiple: true },
      'expires-in-days': { type: 'string' },
      'expires-at': { type: 'string' },
      metadata: { type: 'string', multiple: true },
      disabled: { type: 'boolean' },
      test: { type: 'boolean' },
    },
    check(values) {
      accountId(values, 'account');
      str(values, 'name');
      const days = values['expires-in-days'];
      if (typeof days === 'string' && !/^\d+$/.test(days)) throw new UsageError(`--expires-in-days '${days}' is not a number of days`);
      metadataOf(values);
    },
    async run(target, values) {
      const account = accountId(values, 'account');
      const body: Record<string, unknown> = { name: str(values, 'name') };
      if (typeof values['capabilities'] === 'string') {
        body['capabilities'] = values['capabilities'].split(',').map((c) => c.trim()).filter(Boolean);
      }
      if (values['preset'] !== undefined) body['preset'] = values['preset'];
      if (values['scope'] !== undefined) body['scope'] = values['scope'];
      if (Array.isArray(values['workspace'])) body['workspaces'] = values['workspace'];
      const days = values['expires-in-days'];
      if (typeof days === 'string') {
        if (!/^\d+$/.test(days)) throw new UsageError(`--expires-in-days '${days}' is not a number of days`);
        body['expires_in_days'] = Number(days);
      }
      if (typeof values['expires-at'] === 'string') body['expires_at'] = values['expires-at'];
      const metadata = metadataOf(values);
      if (metadata) body['metadata'] = metadata;
      if (values['disabled']) body['enabled'] = false;
      if (values['test']) body['environment'] = 'test';
      const { key, apiKey } = await createKey(target.deps, account, body);
      const json = {
        key_id: key.key_id,
        api_key: apiKey,
        name: key.name,
        account_id: key.account_id,
        workspaces: key.workspaces,
        capabilities: key.capabilities,
        environment: key.environment,
        created_at: key.created_at,
        expires_at: key.expires_at,
        metadata: key.metadata,
        enabled: key.enabled,
      };
      return {
        json,
        text:
          `Created ${key.environment} key ${key.key_id} for ${key.account_id} on the ${target.description}.\n` +
          `  capabilities: ${key.capabilities.join(', ') || '(none)'}\n  workspaces: ${key.workspaces.join(', ')}\n` +
          `  expires: ${key.expires_at ?? 'never'}${key.enabled ? '' : '\n  disabled (enable it with key enable)'}\n` +
          `API key (shown once, store it now): ${apiKey}`,
      };
    },
  },
  'key get': {
    usage: 'key get <key_id>',
    about: 'Shows an active key of any account as the API shows it (GET /keys/{key_id}): never its hash or plaintext.',
    options: {},
    positionals: 1,
    check(_values, positionals) {
      keyIdOf(positionals, 'get');
    },
    async run(target, _values, positionals) {
      const keyId = keyIdOf(positionals, 'get');
      const key = await getKey(target.deps, await accountOfKey(target, keyId), keyId);
      return { json: key, text: keyLines(key) };
    },
  },
  'key rotate': {
    writes: true,
    usage: 'key rotate <key_id> [--grace-period-seconds <0-86400>]',
    about:
      'Rotates a key as POST /keys/{key_id}/rotate does: a new key with the same name, capabilities, workspaces,\n' +
      'environment and expiry, its plaintext printed once; the old key stops at once, or after the grace period\n' +
      "(it keeps its slot meanwhile, so a grace period on a full account is KEY_LIMIT_REACHED). A key is rotated\n" +
      'once (ALREADY_EXISTS after, naming its replacement). Recorded as key.rotated (the old key) and key.created\n' +
      '(the replacement, with rotated_from) by the operator.',
    options: { 'grace-period-seconds': { type: 'string' } },
    positionals: 1,
    check(values, positionals) {
      keyIdOf(positionals, 'rotate');
      graceSeconds(values);
    },
    async run(target, values, positionals) {
      const keyId = keyIdOf(positionals, 'rotate');
      const grace = graceSeconds(values);
      const { key, apiKey } = await rotateKey(target.deps, await accountOfKey(target, keyId), keyId, grace === undefined ? {} : { grace_period_seconds: grace });
      return {
        // The API's answer: the new key object plus its plaintext.
        json: { ...key, api_key: apiKey },
        text:
          `Rotated ${keyId} of ${key.account_id} on the ${target.description}: the new key is ${key.key_id}.\n` +
          `  ${grace ? `The old key keeps working for ${grace} s, then never again.` : 'The old key stopped working at once.'}\n` +
          `API key (shown once, store it now): ${apiKey}`,
      };
    },
  },
  'key disable': enabledCommand(false),
  'key enable': enabledCommand(true),
  'key revoke': {
    writes: true,
    usage: 'key revoke <key_id>',
    options: {},
    positionals: 1,
    check(_values, positionals) {
      keyIdOf(positionals, 'revoke');
    },
    async run(target, _values, positionals) {
      const keyId = keyIdOf(positionals, 'revoke');
      const account = await accountOfKey(target, keyId);
      await revokeKey(target.deps, account, keyId);
      return { json: { key_id: keyId, account_id: account, revoked: true }, text: `Revoked ${keyId} of ${account}; it stops working at once.` };
    },
  },
  'key list': {
    usage: 'key list --account <id>',
    options: { account: { type: 'string' } },
    check(values) {
      accountId(values, 'account');
    },
    async run(target, values) {
      const id = accountId(values, 'account');
      if (!(await target.deps.accounts.get(id))) throw new NotFoundError(`Account '${id}' does not exist`);
      const items = [];
      let token: string | undefined;
      do {
        const page = await listKeys(target.deps, id, 100, token);
        items.push(...page.items);
        token = page.next_token ?? undefined;
      } while (token);
      const lines = items.map(
        (k) =>
          `${k.key_id}  ${k.prefix}…  ${k.environment}  ${k.name}  [${k.capabilities.join(', ')}]  expires ${k.expires_at ?? 'never'}${k.rotated_to ? `  replaced by ${k.rotated_to}` : ''}`,
      );
      return { json: { account_id: id, items }, text: lines.length ? lines.join('\n') : `Account ${id} has no active keys.` };
    },
  },
  'user add': {
    writes: true,
    usage: 'user add --account <id> (--email <email> | --subject <sub> [--email <email>]) --role <admin|viewer>',
    about: USER_ADD_ABOUT,
    options: { account: { type: 'string' }, email: { type: 'string' }, role: { type: 'string' }, subject: { type: 'string' } },
    check(values) {
      accountId(values, 'account');
      if (values['subject'] === undefined && values['email'] === undefined) throw new UsageError('name the person by --email (or, with your own identity provider, by --subject)');
      if (values['email'] !== undefined) email(values);
      role(values);
      if (values['subject'] !== undefined) subject(values);
    },
    async run(target, values) {
      const added = await addMember(
        target.members,
        {
          accountId: accountId(values, 'account'),
          ...(values['email'] !== undefined ? { email: email(values) } : {}),
          role: role(values),
          ...(values['subject'] !== undefined ? { subject: subject(values) } : {}),
        },
        new Date(),
      );
      const json = { subject: added.subject, email: added.email, account_id: added.account_id, role: added.role, password: added.password };
      const people = target.members.people;
      const lines = [
        added.alreadyMember
          ? `${memberName(added)} was already ${added.role} of ${added.account_id}: nothing changed.`
          : `Added ${memberName(added)} to ${added.account_id} as ${added.role} on the ${target.description}; in force from their next request.`,
        `  subject: ${added.subject}`,
      ];
      if (added.password !== null) lines.push(`Password for ${added.email} (shown once, hand it over safely): ${added.password}`);
      else if (added.newPerson && people) lines.push(`  ${people.newPersonNote}.`);
      else if (people) {
        const lost = people.resetPassword ? `; if they never got their password: user reset-password --email ${added.email ?? ''}` : '.';
        lines.push(`  ${people.description} already knew them: they sign in as before (no new password)${lost}`);
      }
      else lines.push('  they sign in at your own identity provider.');
      return { json, text: lines.join('\n') };
    },
  },
  'user list': {
    usage: 'user list --account <id>',
    about: 'Lists the people of an account, by email: subject, email, role, when added.',
    options: { account: { type: 'string' } },
    check(values) {
      accountId(values, 'account');
    },
    async run(target, values) {
      const id = accountId(values, 'account');
      const items = (await listMembers(target.members, id)).map((m) => ({ subject: m.subject, email: m.email, role: m.role, added_at: m.added_at }));
      const lines = items.map((m) => `${m.email ?? '(no email)'}  ${m.role}  ${m.subject}  added ${m.added_at}`);
      return { json: { account_id: id, items }, text: lines.length ? lines.join('\n') : `Account ${id} has no people.` };
    },
  },
  'user set-role': {
    writes: true,
    usage: 'user set-role --account <id> (--email <email> | --subject <sub>) --role <admin|viewer>',
    about: "Changes a person's role in an account; it applies from their next request.",
    options: { account: { type: 'string' }, email: { type: 'string' }, subject: { type: 'string' }, role: { type: 'string' } },
    check(values) {
      accountId(values, 'account');
      who(values);
      role(values);
    },
    async run(target, values) {
      const id = accountId(values, 'account');
      const { before, after } = await setMemberRole(target.members, id, who(values), role(values), new Date());
      const json = { subject: after.subject, email: after.email, account_id: id, role: after.role, previous_role: before };
      const text =
        before === after.role
          ? `${memberName(after)} is already ${after.role} of ${id}: nothing changed.`
          : `${memberName(after)} in ${id}: ${before} → ${after.role}, from their next request.`;
      return { json, text };
    },
  },
  'user remove': {
    writes: true,
    usage: 'user remove --account <id> (--email <email> | --subject <sub>)',
    about:
      'Removes a person from an account: from their next request the API answers them 403 NOT_A_MEMBER there.\n' +
      'Their sign-in (local provider or Cognito user) is kept: they may belong to other accounts.',
    options: { account: { type: 'string' }, email: { type: 'string' }, subject: { type: 'string' } },
    check(values) {
      accountId(values, 'account');
      who(values);
    },
    async run(target, values) {
      const id = accountId(values, 'account');
      const removed = await removeMember(target.members, id, who(values));
      const where = target.members.people?.description ?? 'your identity provider';
      return {
        json: { subject: removed.subject, email: removed.email, account_id: id, role: removed.role, removed: true },
        text:
          `Removed ${memberName(removed)} (${removed.role}) from ${id}; refused there from their next request.\n` +
          `  Their sign-in at ${where} is kept (they may belong to other accounts).`,
      };
    },
  },
  'user reset-password': {
    writes: true,
    usage: 'user reset-password --email <email>',
    about:
      'Gives a person of the local provider a new random password, shown once (--json: {subject, email, password}),\n' +
      'for one whose password was lost (a user add whose answer never arrived answers "password": null when run\n' +
      'again). Their old password stops working from their next sign-in; their subject and accounts are kept, and so\n' +
      'are their sessions at the provider (up to 8 hours) and tokens already issued (up to an hour). An unknown\n' +
      'email is exit 3. Only for the local stack: with Cognito or your own identity provider, passwords are reset\n' +
      'at that provider (the CLI says how, exit 2).',
    options: { email: { type: 'string' } },
    check(values) {
      email(values);
    },
    async run(target, values) {
      const reset = await resetPassword(target.members, email(values));
      return {
        json: { subject: reset.subject, email: reset.email, password: reset.password },
        text:
          `New password for ${reset.email} (shown once, hand it over safely): ${reset.password}\n` +
          `  subject: ${reset.subject}\n` +
          `  Their old password no longer works; sessions they already have at ${target.members.people?.description ?? 'the provider'} and tokens already issued are kept until they run out.`,
      };
    },
  },
  sweep: {
    usage: 'sweep',
    about:
      'Runs the housekeeping once now, as its schedule does: releases the slots of keys past their expiry or their\n' +
      'rotation\'s grace (each gets its TTL and a key.expired event), and fails runs still QUEUED or RUNNING past\n' +
      'their deadline ("timed out", their webhooks sent as for any end). Bounded like a scheduled run: what is left\n' +
      'waits for the next one. Safe at any time, also while the schedule runs.\n' +
      'Against a deployed stack it runs here, with your credentials, on the stack\'s tables.',
    options: {},
    async run(target) {
      let run: SweepResult;
      try {
        // Quiet: the summary below (or the one JSON object) is the whole output.
        run = await sweep({ ...target.housekeeping, report: () => undefined });
      } catch (error) {
        if (!(error instanceof SweepStopped)) throw error;
        throw new SweepIncomplete(error);
      }
      const json = { released_keys: run.released_keys, failed_executions: run.failed_executions };
      return {
        json,
        text:
          `Housekeeping on the ${target.description}: released ${run.released_keys} expired key slot(s), failed ${run.failed_executions} overdue execution(s) ("timed out"); ${run.accounts} account(s) looked at.` +
          (run.complete ? '' : '\nThe run reached its bounds: run it again (or let the schedule) for the rest.'),
      };
    },
  },
};

/** A sweep that stopped on an error after doing part of its work: said with what it did. */
class SweepIncomplete extends Error {
  constructor(readonly stopped: SweepStopped) {
    super(`${stopped.message}: ${stopped.cause instanceof Error ? `${stopped.cause.name}: ${stopped.cause.message}` : String(stopped.cause)}`);
  }
}

/** The command the first positionals name, or why none does, with the one most likely meant. */
function findCommand(positionals: readonly string[]): { name: string; command: Command } | { error: string } {
  const [first = '', second = ''] = positionals;
  for (const name of [`${first} ${second}`, first]) {
    const command = COMMANDS[name];
    if (command) return { name, command };
  }
  if (first === '') return { error: 'give a command.' };
  const names = Object.keys(COMMANDS);
  const groups = [...new Set(names.map((n) => n.split(' ')[0] ?? n))];
  const subcommands = (group: string) => names.filter((n) => n.startsWith(`${group} `)).map((n) => n.slice(group.length + 1));
  const quote = (words: string) => `\`${words}\``;
  if (groups.includes(first)) {
    const subs = subcommands(first);
    if (second === '') return { error: `'${first}' needs one of: ${subs.join(', ')}.` };
    return { error: `unknown command '${first} ${second}'${didYouMean(second, subs, (s) => quote(`${first} ${s}`))}.` };
  }
  const group = suggest(first, groups);
  const meant = group === undefined ? undefined : COMMANDS[group] ? group : COMMANDS[`${group} ${second}`] ? `${group} ${second}` : `${group} …`;
  const words = [first, second].filter(Boolean).join(' ');
  return { error: `unknown command '${words}'${meant === undefined ? '' : ` (did you mean ${quote(meant)}?)`}.` };
}

/** parseArgs' refusal, said with the flag meant when the unknown one is a typo of one of the command's. */
function optionError(error: Error, name: string, command: Command): string {
  const unknown = /^Unknown option '(-{1,2}[^']+)'/.exec(error.message)?.[1];
  if ((error as { code?: unknown }).code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || unknown === undefined) return error.message;
  // Compared without the dashes, which every flag shares.
  const near = suggest(unknown.replace(/^-+/, ''), Object.keys({ ...command.options, ...GLOBAL_OPTIONS }));
  if (near !== undefined) return `Unknown option '${unknown}': did you mean --${near}?`;
  const own = Object.keys(command.options).map((f) => `--${f}`);
  return `Unknown option '${unknown}': \`${name}\` takes ${own.length ? own.join(', ') : 'no options of its own'}.`;
}

const bodyOf = (error: ApiError) => ({ error: error.message, code: error.code, ...error.extra() });

const GLOBAL_OPTIONS = {
  json: { type: 'boolean' },
  'stack-name': { type: 'string' },
  region: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const fail = (code: number, body: Record<string, unknown>) => {
    if (json) out(JSON.stringify(body));
    else process.stderr.write(`admin: ${String(body['error'])}\n`);
    return code;
  };

  // The command words are the first positionals (two, or one for `sweep`), wherever the flags are.
  const allOptions = Object.assign({}, GLOBAL_OPTIONS, ...Object.values(COMMANDS).map((c) => c.options)) as ParseArgsConfig['options'];
  const loose = parseArgs({ args: argv, options: allOptions, allowPositionals: true, strict: false });
  const found = findCommand(loose.positionals);
  if (!('command' in found)) {
    if (argv.length === 0 || ((argv.includes('--help') || argv.includes('-h')) && loose.positionals.length === 0)) {
      out(GLOBAL_HELP);
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    return fail(EXIT.usage, { error: `${found.error} Run with --help for the list.`, code: 'USAGE' });
  }
  const { name, command } = found;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return fail(EXIT.usage, { error: `${optionError(error as Error, name, command)}\nUsage: ${command.usage}`, code: 'USAGE' });
  }
  const values = parsed.values as Values;
  if (values['help']) {
    out(
      `Usage: npm run --silent admin -- ${command.usage} [--json] [--stack-name <name> --region <region>]\n\n` +
        (command.about ? `${command.about}\n\n` : '') +
        `--json prints one JSON object (errors too: {error, code}). ${EXIT_CODES_LINE}`,
    );
    return EXIT.ok;
  }
  const positionals = parsed.positionals.slice(name.split(' ').length);
  if (positionals.length > (command.positionals ?? 0)) {
    return fail(EXIT.usage, { error: `unexpected argument '${positionals[command.positionals ?? 0]}'\nUsage: ${command.usage}`, code: 'USAGE' });
  }

  let target: Target | undefined;
  try {
    command.check?.(values, positionals);
    const stackName = values['stack-name'];
    if (typeof stackName === 'string') {
      const region = (values['region'] as string | undefined) ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'];
      if (!region) throw new UsageError('--stack-name needs --region (or AWS_REGION)');
      target = await awsTarget(stackName, region);
    } else {
      target = localTarget();
    }
    const result = await command.run(target, values, positionals);
    out(json ? JSON.stringify(result.json) : result.text);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError || error instanceof MemberUsageError) {
      return fail(EXIT.usage, { error: `${error.message}\nUsage: ${command.usage}`, code: 'USAGE' });
    }
    if (error instanceof LocalOidcAdminError) {
      // Status 0: the provider did not answer (npm start stopped between the state file and now).
      if (error.status === 0) return fail(EXIT.unreachable, { error: error.message, code: 'NO_STACK' });
      return fail(exitOfStatus(error.status), { error: `the local provider refused: ${error.message}`, code: 'IDENTITY_PROVIDER_ERROR' });
    }
    if (error instanceof TargetError) return fail(EXIT.unreachable, { error: error.message, code: 'NO_STACK' });
    if (error instanceof SweepIncomplete) {
      const { released_keys, failed_executions } = error.stopped.partial;
      const cause = error.stopped.cause;
      const code = cause instanceof Error && isUnreachable(cause) ? EXIT.unreachable : EXIT.unexpected;
      return fail(code, { error: error.message, code: 'SWEEP_INCOMPLETE', released_keys, failed_executions });
    }
    if (error instanceof ValidationError) {
      const details = error.details.map((d) => ({ ...d, flag: FLAG_OF_FIELD[d.field.split('.')[0] ?? ''] ?? d.field }));
      const first = details[0];
      const message = first ? `${first.flag}: ${first.message}` : error.message;
      return fail(EXIT.refused, { ...bodyOf(error), error: message, details });
    }
    if (error instanceof ApiError) return fail(exitOfStatus(error.status), bodyOf(error));
    if (command.writes && error instanceof Error && mayHaveLanded(error)) {
      // The request went out and no answer said whether it was applied (none came, a 5xx, a transaction
      // still in progress, a failure after an earlier attempt): it may have been. Not "cannot reach the
      // stack" (6), which a script would retry blindly (a rotation retried is 409, its plaintext lost).
      return fail(EXIT.unexpected, {
        error: `${error.name}: ${error.message}. No answer said whether it was made: the change may have been made. Look before trying again (key get, key list, user list, account get).`,
        code: 'OUTCOME_UNKNOWN',
      });
    }
    if (error instanceof Error && isUnreachable(error)) {
      // No credentials, an IAM refusal (AccessDeniedException names the missing action), a table that is
      // not there, no answer: said as it is.
      return fail(EXIT.unreachable, { error: `${error.name}: ${error.message}`, code: 'AWS_ERROR' });
    }
    // Any other refusal of an AWS service.
    if (error instanceof Error && '$fault' in error) return fail(EXIT.unexpected, { error: `${error.name}: ${error.message}`, code: 'AWS_ERROR' });
    return fail(EXIT.unexpected, { error: error instanceof Error ? error.message : String(error), code: 'INTERNAL_ERROR' });
  } finally {
    target?.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
