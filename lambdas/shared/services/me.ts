/**
 * `GET /me` (API.md §4): who is calling, in which account, with what in force. The console asks it
 * first. For a person, also every account they belong to (at most MAX_LISTED_ACCOUNTS, by account id).
 */
import type { Caller } from '../caller.js';
import type { Capability } from '../capabilities.js';
import { NotFoundError } from '../errors.js';
import type { AccountRecord, AccountsRepository } from '../repositories/accounts.js';
import type { KeysRepository } from '../repositories/keys.js';
import type { MembershipsRepository } from '../repositories/memberships.js';
import type { Hit } from '../repositories/usage.js';
import type { Settings, TierName } from '../settings.js';

export interface MeDeps {
  readonly accounts: AccountsRepository;
  readonly keys: Pick<KeysRepository, 'countExpiredHoldingSlots'>;
  readonly memberships: MembershipsRepository;
  readonly settings: Settings;
}

export const MAX_LISTED_ACCOUNTS = 100;

export interface Me {
  kind: 'key' | 'person';
  account: { account_id: string; tier: TierName; ceiling: Capability[]; active_keys: number; max_active_keys: number };
  capabilities: Capability[];
  workspaces: string[];
  rate_limit: { limit: number; remaining: number; reset: number };
  key: { key_id: string; name: string; prefix: string; environment: 'live' | 'test' } | null;
  person: { subject: string; email: string | null; role: string; accounts: { account_id: string; role: string; tier: TierName }[] } | null;
}

/**
 * How many of the account's keys are active: those holding a slot (`active_keys`), less those past their
 * expiry or grace whose slot a create on a full account or housekeeping has not released yet (they no
 * longer work, and GET /keys does not list them). A key in a rotation's grace is active.
 */
export async function activeKeyCount(keys: MeDeps['keys'], account: Pick<AccountRecord, 'account_id' | 'active_keys'>, now: Date): Promise<number> {
  return activeOf(account, await keys.countExpiredHoldingSlots(account.account_id, now));
}

/** The slots held less the expired keys holding one (read apart, so never below zero). */
const activeOf = (account: Pick<AccountRecord, 'active_keys'>, expired: number) => Math.max(0, (account.active_keys ?? 0) - expired);

export async function me(deps: MeDeps, caller: Caller, hit: Hit): Promise<Me> {
  const [account, memberships, expired] = await Promise.all([
    deps.accounts.get(caller.accountId),
    caller.kind === 'person' ? deps.memberships.ofPerson(caller.subject, MAX_LISTED_ACCOUNTS) : Promise.resolve([]),
    // Read beside the account rather than after it (activeKeyCount's rule, in one round trip).
    deps.keys.countExpiredHoldingSlots(caller.accountId, hit.now),
  ]);
  if (!account) throw new NotFoundError(`Account '${caller.accountId}' does not exist`);
  const tiers = await Promise.all(memberships.map(async (m) => (m.account_id === account.account_id ? account : deps.accounts.get(m.account_id))));
  return {
    kind: caller.kind,
    account: {
      account_id: account.account_id,
      tier: account.tier,
      ceiling: [...deps.settings.tiers[account.tier].ceiling],
      active_keys: activeOf(account, expired),
      max_active_keys: deps.settings.maxActiveKeysPerAccount,
    },
    capabilities: [...caller.capabilities],
    workspaces: [...caller.workspaces],
    rate_limit: { limit: hit.limit, remaining: hit.remaining, reset: hit.reset },
    key: caller.kind === 'key' ? { key_id: caller.keyId, name: caller.name, prefix: caller.prefix, environment: caller.environment } : null,
    person:
      caller.kind === 'person'
        ? {
            subject: caller.subject,
            email: caller.email,
            role: caller.role,
            // An account removed since leaves its membership unlisted.
            accounts: memberships.flatMap((m, i) => {
              const tier = tiers[i]?.tier;
              return tier ? [{ account_id: m.account_id, role: m.role, tier }] : [];
            }),
          }
        : null,
  };
}
