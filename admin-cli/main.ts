/**
 * `npm run --silent admin -- <command>`: manages what the API cannot bootstrap (accounts, the first
 * keys), through the same domain code as the Lambdas, so the same rules apply (tier ceiling, key limit).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ROLES, ROLE_NAMES, isRoleName, type RoleName } from '../lambdas/shared/capabilities.js';
import { ApiError, NotFoundError, ValidationError } from '../lambdas/shared/errors.js';
import { ACCOUNT_ID_PATTERN } from '../lambdas/shared/repositories/accounts.js';
import { sweep, SweepStopped, type SweepResult } from '../lambdas/shared/services/housekeeping.js';
import { createAccount, createKey, listKeys, revokeKey, setAccountTier } from '../lambdas/shared/services/keys.js';
import { TIER_NAMES, isTierName, type TierName } from '../lambdas/shared/settings.js';
import { LocalOidcAdminError } from '../local-runner/oidc/admin-client.js';
import { InvalidEmailError, normalizeEmail } from '../local-runner/oidc/people.js';
import { MemberUsageError, addMember, listMembers, removeMember, setMemberRole, type Who } from './members.js';
import { TargetError, awsTarget, localTarget, type Target } from './target.js';

// The SDK's notice that it will need Node 22 in 2027 is noise for a CLI run on Node 20.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

const GLOBAL_HELP = `Usage: npm run --silent admin -- <command> [options]

Commands:
  account create --id <id> --tier <tier>
  account set-tier --id <id> --tier <tier>
  key create --account <id> --name <name> (--capabilities a,b | --preset <p> | --scope <s>)
             [--workspace <w>]... [--expires-in-days <n>] [--test]
  key revoke <key_id>
  key list --account <id>
  user add --account <id> --email <email> --role <admin|viewer> [--subject <sub>]
  user list --account <id>
  user set-role --account <id> (--email <email> | --subject <sub>) --role <admin|viewer>
  user remove --account <id> (--email <email> | --subject <sub>)
  sweep

Options for every command:
  --json                 print one JSON object and nothing else
  --stack-name <name>    work on a deployed stack (with --region or AWS_REGION) instead of the local one
  --region <region>
  -h, --help             this help, or a command's help

Exit codes: 0 done, 1 refused (invalid input, limit, ceiling, not found), 2 bad usage, 3 no stack to talk to.`;

class UsageError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>;
interface Command {
  readonly usage: string;
  /** More words for the command's --help. */
  readonly about?: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  readonly positionals?: number;
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
const tier = (values: Values): TierName => {
  const v = str(values, 'tier');
  if (!isTierName(v)) throw new UsageError(`--tier '${v}' is not a tier; use one of ${TIER_NAMES.join(', ')}`);
  return v;
};

const role = (values: Values): RoleName => {
  const v = str(values, 'role');
  if (!isRoleName(v)) throw new UsageError(`--role '${v}' is not a role; use one of ${ROLE_NAMES.join(', ')}`);
  return v;
};
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
  once ("null" for a person the provider already knew, who keeps theirs).
  Deployed, with the stack's Cognito user pool: creates the user (the email is the username; Cognito
  emails a temporary password: "password" is null); a user already in the pool is found, not re-invited.
  Deployed, with your own identity provider (no UserPoolId output): give --subject <sub> (the sub of the
  person's tokens) and --email (kept with the membership for display and for set-role and remove).
The same person with the same role again changes nothing; with another role, use user set-role.`;

/** Body fields of POST /keys → the flags that set them, so errors name the flag. */
const FLAG_OF_FIELD: Record<string, string> = {
  name: '--name',
  capabilities: '--capabilities',
  preset: '--preset',
  scope: '--scope',
  workspaces: '--workspace',
  expires_in_days: '--expires-in-days',
  environment: '--test',
};

const COMMANDS: Record<string, Command> = {
  'account create': {
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
  'key create': {
    usage:
      'key create --account <id> --name <name> (--capabilities a,b | --preset <p> | --scope <s>) ' +
      '[--workspace <w>]... [--expires-in-days <7|30|60|90|180|365>] [--test]',
    options: {
      account: { type: 'string' },
      name: { type: 'string' },
      capabilities: { type: 'string' },
      preset: { type: 'string' },
      scope: { type: 'string' },
      workspace: { type: 'string', multiple: true },
      'expires-in-days': { type: 'string' },
      test: { type: 'boolean' },
    },
    check(values) {
      accountId(values, 'account');
      str(values, 'name');
      const days = values['expires-in-days'];
      if (typeof days === 'string' && !/^\d+$/.test(days)) throw new UsageError(`--expires-in-days '${days}' is not a number of days`);
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
      };
      return {
        json,
        text:
          `Created ${key.environment} key ${key.key_id} for ${key.account_id} on the ${target.description}.\n` +
          `  capabilities: ${key.capabilities.join(', ') || '(none)'}\n  workspaces: ${key.workspaces.join(', ')}\n` +
          `  expires: ${key.expires_at ?? 'never'}\nAPI key (shown once, store it now): ${apiKey}`,
      };
    },
  },
  'key revoke': {
    usage: 'key revoke <key_id>',
    options: {},
    positionals: 1,
    check(_values, positionals) {
      if (!positionals[0]) throw new UsageError('give the key id: key revoke <key_id>');
    },
    async run(target, _values, positionals) {
      const keyId = positionals[0];
      if (!keyId) throw new UsageError('give the key id: key revoke <key_id>');
      const record = await target.deps.keys.findById(keyId);
      if (!record || record.revoked_at) throw new NotFoundError(`Key '${keyId}' not found (or already revoked)`);
      await revokeKey(target.deps, record.account_id, keyId);
      return { json: { key_id: keyId, account_id: record.account_id, revoked: true }, text: `Revoked ${keyId} of ${record.account_id}; it stops working at once.` };
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
        (k) => `${k.key_id}  ${k.prefix}…  ${k.environment}  ${k.name}  [${k.capabilities.join(', ')}]  expires ${k.expires_at ?? 'never'}`,
      );
      return { json: { account_id: id, items }, text: lines.length ? lines.join('\n') : `Account ${id} has no active keys.` };
    },
  },
  'user add': {
    usage: 'user add --account <id> --email <email> --role <admin|viewer> [--subject <sub>]',
    about: USER_ADD_ABOUT,
    options: { account: { type: 'string' }, email: { type: 'string' }, role: { type: 'string' }, subject: { type: 'string' } },
    check(values) {
      accountId(values, 'account');
      email(values);
      role(values);
      if (values['subject'] !== undefined) subject(values);
    },
    async run(target, values) {
      const added = await addMember(
        target.members,
        {
          accountId: accountId(values, 'account'),
          email: email(values),
          role: role(values),
          ...(values['subject'] !== undefined ? { subject: subject(values) } : {}),
        },
        new Date(),
      );
      const json = { subject: added.subject, email: added.email, account_id: added.account_id, role: added.role, password: added.password };
      const people = target.members.people;
      const lines = [
        added.alreadyMember
          ? `${added.email} was already ${added.role} of ${added.account_id}: nothing changed.`
          : `Added ${added.email} to ${added.account_id} as ${added.role} on the ${target.description}; in force from their next request.`,
        `  subject: ${added.subject}`,
      ];
      if (added.password !== null) lines.push(`Password for ${added.email} (shown once, hand it over safely): ${added.password}`);
      else if (added.newPerson && people) lines.push(`  ${people.newPersonNote}.`);
      else if (people) lines.push(`  ${people.description} already knew them: they sign in as before (no new password).`);
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
      const lines = items.map((m) => `${m.email}  ${m.role}  ${m.subject}  added ${m.added_at}`);
      return { json: { account_id: id, items }, text: lines.length ? lines.join('\n') : `Account ${id} has no people.` };
    },
  },
  'user set-role': {
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
          ? `${after.email} is already ${after.role} of ${id}: nothing changed.`
          : `${after.email} in ${id}: ${before} → ${after.role}, from their next request.`;
      return { json, text };
    },
  },
  'user remove': {
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
          `Removed ${removed.email} (${removed.role}) from ${id}; refused there from their next request.\n` +
          `  Their sign-in at ${where} is kept (they may belong to other accounts).`,
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

  // The command words are the first two positionals, wherever the flags are.
  const allOptions = Object.assign({}, GLOBAL_OPTIONS, ...Object.values(COMMANDS).map((c) => c.options)) as ParseArgsConfig['options'];
  const loose = parseArgs({ args: argv, options: allOptions, allowPositionals: true, strict: false });
  const words = loose.positionals.slice(0, 2).join(' ');
  const command = COMMANDS[words];
  if (!command) {
    if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
      out(GLOBAL_HELP);
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    return fail(EXIT.usage, { error: `unknown command '${words}'. Run with --help for the list.`, code: 'USAGE' });
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...GLOBAL_OPTIONS, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return fail(EXIT.usage, { error: `${(error as Error).message}\nUsage: ${command.usage}`, code: 'USAGE' });
  }
  const values = parsed.values as Values;
  if (values['help']) {
    out(
      `Usage: npm run --silent admin -- ${command.usage} [--json] [--stack-name <name> --region <region>]\n\n` +
        (command.about ? `${command.about}\n\n` : '') +
        `--json prints one JSON object (errors too: {error, code}). Exit codes: 0 done, 1 refused, 2 bad usage, 3 no stack to talk to.`,
    );
    return EXIT.ok;
  }
  const positionals = parsed.positionals.slice(2);
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
      return fail(EXIT.refused, { error: `the local provider refused: ${error.message}`, code: 'IDENTITY_PROVIDER_ERROR' });
    }
    if (error instanceof TargetError) return fail(EXIT.unreachable, { error: error.message, code: 'NO_STACK' });
    if (error instanceof SweepIncomplete) {
      const { released_keys, failed_executions } = error.stopped.partial;
      return fail(EXIT.refused, { error: error.message, code: 'SWEEP_INCOMPLETE', released_keys, failed_executions });
    }
    if (error instanceof ValidationError) {
      const details = error.details.map((d) => ({ ...d, flag: FLAG_OF_FIELD[d.field.split('.')[0] ?? ''] ?? d.field }));
      const first = details[0];
      const message = first ? `${first.flag}: ${first.message}` : error.message;
      return fail(EXIT.refused, { ...bodyOf(error), error: message, details });
    }
    if (error instanceof ApiError) return fail(EXIT.refused, bodyOf(error));
    // An AWS service's refusal (AccessDeniedException names the missing IAM action): said as it is.
    if (error instanceof Error && '$fault' in error) return fail(EXIT.refused, { error: `${error.name}: ${error.message}`, code: 'AWS_ERROR' });
    return fail(EXIT.refused, { error: error instanceof Error ? error.message : String(error), code: 'INTERNAL_ERROR' });
  } finally {
    target?.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
