/**
 * Key use cases, shared by the keys Lambda, the admin CLI and the local runner's seeding. They know
 * nothing of API Gateway; they take repositories and plain inputs and throw the errors of errors.ts.
 */
import { displayPrefix, generateApiKey, hashApiKey, newId } from '../api-key.js';
import {
  PRESETS,
  SCOPES,
  firstUncovered,
  isCapability,
  normalizeCapabilities,
  workspacesCover,
  type Capability,
} from '../capabilities.js';
import {
  CapabilityDeniedError,
  NotFoundError,
  TierCeilingExceededError,
  ValidationError,
  WorkspaceDeniedError,
} from '../errors.js';
import type { AccountsRepository } from '../repositories/accounts.js';
import { KeyCreateConflict, keyLimitReached, type KeyRecord, type KeysRepository } from '../repositories/keys.js';
import { parseCreateKeyBody } from '../schemas.js';
import type { Settings } from '../settings.js';

export interface KeyServiceDeps {
  readonly keys: KeysRepository;
  readonly accounts: AccountsRepository;
  readonly settings: Settings;
  readonly now?: () => Date;
}

/** The caller's own grant, when a key (rather than an operator) creates or edits a key. */
export interface Grant {
  readonly capabilities: readonly Capability[];
  readonly workspaces: readonly string[];
}

/** The key object of API.md §4. */
export interface KeyObject {
  key_id: string;
  name: string;
  prefix: string;
  environment: 'live' | 'test';
  capabilities: Capability[];
  workspaces: string[];
  account_id: string;
  tier: string;
  created_at: string;
  expires_at: string | null;
  last_used: string | null;
}

export function toKeyObject(record: KeyRecord, lastUsed: string | null = null): KeyObject {
  return {
    key_id: record.key_id,
    name: record.name,
    prefix: record.prefix,
    environment: record.environment,
    capabilities: record.capabilities,
    workspaces: record.workspaces,
    account_id: record.account_id,
    tier: record.tier,
    created_at: record.created_at,
    expires_at: record.expires_at ?? null,
    last_used: lastUsed,
  };
}

function requestedCapabilities(body: { capabilities?: string[]; preset?: keyof typeof PRESETS; scope?: keyof typeof SCOPES }): Capability[] {
  if (body.capabilities) {
    const bad = body.capabilities.findIndex((c) => !isCapability(c));
    if (bad >= 0) {
      throw ValidationError.field(`capabilities.${bad}`, `'${body.capabilities[bad]}' is not a known capability`);
    }
    return normalizeCapabilities(body.capabilities);
  }
  if (body.preset) return normalizeCapabilities(PRESETS[body.preset]);
  if (body.scope) return normalizeCapabilities(SCOPES[body.scope]);
  throw ValidationError.field('capabilities', 'give exactly one of capabilities, preset or scope');
}

/**
 * Checks a capability and workspace set against the tier ceiling first (TIER_CEILING_EXCEEDED), then
 * against the caller's own grant (CAPABILITY_DENIED, WORKSPACE_DENIED), per API.md §2.
 */
export function assertGrantable(
  settings: Settings,
  tier: keyof Settings['tiers'],
  capabilities: readonly Capability[],
  workspaces: readonly string[],
  caller?: Grant,
): void {
  const overCeiling = firstUncovered(settings.tiers[tier].ceiling, capabilities);
  if (overCeiling) throw new TierCeilingExceededError(tier, overCeiling);
  if (!caller) return;
  const denied = firstUncovered(caller.capabilities, capabilities);
  if (denied) throw new CapabilityDeniedError(denied, [...caller.capabilities]);
  const outside = workspacesCover(caller.workspaces, workspaces);
  if (outside) throw new WorkspaceDeniedError(outside);
}

export interface CreatedKey {
  readonly key: KeyObject;
  /** The plaintext, returned once and never stored. */
  readonly apiKey: string;
}

const MAX_TIER_RACE_RETRIES = 3;

export async function createKey(
  deps: KeyServiceDeps,
  accountId: string,
  rawBody: unknown,
  caller?: Grant,
): Promise<CreatedKey> {
  const body = parseCreateKeyBody(rawBody);
  const capabilities = requestedCapabilities(body);
  const workspaces = body.workspaces ? [...body.workspaces].sort() : ['*'];
  const normalizedWorkspaces = workspaces.includes('*') ? ['*'] : workspaces;
  const environment = body.environment ?? 'live';
  const now = (deps.now ?? (() => new Date()))();

  for (let attempt = 0; ; attempt++) {
    const account = await deps.accounts.get(accountId);
    if (!account) throw new NotFoundError(`Account '${accountId}' does not exist`);
    assertGrantable(deps.settings, account.tier, capabilities, normalizedWorkspaces, caller);

    const apiKey = generateApiKey(deps.settings.keyPrefix, environment);
    const record: KeyRecord = {
      key_id: newId('key'),
      key_hash: hashApiKey(apiKey),
      account_id: accountId,
      name: body.name,
      prefix: displayPrefix(apiKey),
      environment,
      capabilities,
      workspaces: normalizedWorkspaces,
      tier: account.tier,
      created_at: now.toISOString(),
      ...(body.expires_in_days
        ? { expires_at: new Date(now.getTime() + body.expires_in_days * 86_400_000).toISOString() }
        : {}),
    };
    try {
      await deps.keys.create(record, deps.settings.maxActiveKeysPerAccount);
      return { key: toKeyObject(record), apiKey };
    } catch (error) {
      if (!(error instanceof KeyCreateConflict)) throw error;
      // The account condition failed: find out which part, from a fresh read.
      const fresh = await deps.accounts.get(accountId);
      if (!fresh) throw new NotFoundError(`Account '${accountId}' does not exist`);
      if (fresh.tier === account.tier || attempt >= MAX_TIER_RACE_RETRIES) {
        throw keyLimitReached(deps.settings.maxActiveKeysPerAccount);
      }
      // The tier changed under us: check the grant again against the new tier and retry.
    }
  }
}

export async function setAccountTier(
  deps: KeyServiceDeps,
  accountId: string,
  tier: keyof Settings['tiers'],
): Promise<void> {
  const now = (deps.now ?? (() => new Date()))();
  await deps.accounts.setTier(accountId, tier, now);
  await deps.keys.propagateTier(accountId, tier);
}

/** Revokes an active key of the account at once; 404 when it is not one (also another account's). */
export async function revokeKey(deps: KeyServiceDeps, accountId: string, keyId: string): Promise<void> {
  await deps.keys.revoke(accountId, keyId, (deps.now ?? (() => new Date()))());
}

/** A page of the account's active keys, oldest first. */
export async function listKeys(
  deps: KeyServiceDeps,
  accountId: string,
  limit: number,
  nextToken?: string,
): Promise<{ items: KeyObject[]; next_token: string | null }> {
  const page = await deps.keys.listActive(accountId, (deps.now ?? (() => new Date()))(), limit, nextToken);
  return { items: page.items.map((r) => toKeyObject(r)), next_token: page.nextToken };
}
