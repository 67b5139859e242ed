/**
 * Key use cases, shared by the keys Lambda, the admin CLI and the local runner's seeding. They know
 * nothing of API Gateway; they take repositories and plain inputs and throw the errors of errors.ts.
 */
import type { Principal } from '../caller.js';
import { displayPrefix, generateApiKey, hashApiKey, newId, type KeyEnvironment } from '../api-key.js';
import { isCalendarDate } from '../dates.js';
import { conflictBackoff } from '../ddb.js';
import {
  PRESETS,
  SCOPES,
  firstUncovered,
  inForce,
  isCapability,
  normalizeCapabilities,
  workspacesCover,
  type Capability,
} from '../capabilities.js';
import {
  CapabilityDeniedError,
  EnvironmentDeniedError,
  KeyRotatedError,
  NotFoundError,
  TierCeilingExceededError,
  ValidationError,
  WorkspaceDeniedError,
} from '../errors.js';
import type { AccountRecord, AccountsRepository } from '../repositories/accounts.js';
import { inOrder, newAuditEvent, type AuditAction, type AuditChanges, type AuditRepository, type RequestMeta, type TransactItem } from '../repositories/audit.js';
import { graceExpiry, KeyChanged, KeyCreateConflict, keyLimitReached, type KeyRecord, type KeysRepository } from '../repositories/keys.js';
import type { UsageRepository } from '../repositories/usage.js';
import { MAX_EXPIRY_DAYS, parseCreateKeyBody, parseRotateKeyBody, parseUpdateKeyBody, type KeyMetadata } from '../schemas.js';
import { rateLimitFor, type Settings, type TierName } from '../settings.js';
import { actorOf, diff } from './audit.js';

export interface KeyServiceDeps {
  readonly keys: KeysRepository;
  readonly accounts: AccountsRepository;
  /** For `last_used` and usage figures; without it they read as null and zero. */
  readonly usage?: UsageRepository;
  /** Where every change records its event, in the change's own transaction (API.md §7). */
  readonly audit: AuditRepository;
  readonly settings: Settings;
  readonly now?: () => Date;
}

/** The caller's own grant, when a key (rather than an operator) creates or edits a key. */
export interface Grant {
  readonly capabilities: readonly Capability[];
  readonly workspaces: readonly string[];
  /** A `test` key manages only `test` keys (API.md §2). */
  readonly environment: KeyEnvironment;
  /** Who the caller is, recorded as `created_by` on the keys it creates. @default an operator */
  readonly principal?: Principal;
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
  /** `null` for keys made before it was recorded. */
  created_by: Principal | null;
  /** `{}` for keys made before it existed; its keys in order. */
  metadata: KeyMetadata;
  /** `true` for keys made before it existed. */
  enabled: boolean;
  /** The replacement of a key rotated with a grace period (which lists it until the grace ends); else null. */
  rotated_to: string | null;
}

/** A metadata map with its keys in order, so equal maps compare (and read) the same whatever DynamoDB returns. */
function sortedMetadata(metadata: KeyMetadata | null | undefined): KeyMetadata {
  return Object.fromEntries(Object.entries(metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A record as the API reads it: keys made before `metadata` and `enabled` existed read as `{}` and `true`. */
function withDefaults(record: KeyRecord): KeyRecord & { metadata: KeyMetadata; enabled: boolean } {
  return { ...record, metadata: sortedMetadata(record.metadata), enabled: record.enabled ?? true };
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
    created_by: record.created_by ?? null,
    metadata: sortedMetadata(record.metadata),
    enabled: record.enabled ?? true,
    rotated_to: record.rotated_to ?? null,
  };
}

/**
 * The instant an RFC 3339 date-time (the schema checked its shape) names, or undefined for one that names
 * none: a day the month lacks (Date.parse would roll 02-30 over to 03-02), hour 24, minute or second 60.
 */
function instantOf(text: string): number | undefined {
  const [y, mo, d, h, mi, s] = (/^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})/.exec(text) ?? []).slice(1).map(Number);
  if (y === undefined || mo === undefined || d === undefined || h === undefined || mi === undefined || s === undefined) return undefined;
  if (!isCalendarDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return undefined;
  const at = Date.parse(text.toUpperCase());
  return Number.isNaN(at) ? undefined : at;
}

/**
 * The expiry of a new key: `expires_in_days` from now, or `expires_at` (an exact instant, in the future and
 * at most MAX_EXPIRY_DAYS ahead), as an ISO-8601 UTC time; undefined for a key that never expires.
 */
function expiryOf(body: { expires_in_days?: number | null; expires_at?: string | null }, now: Date): string | undefined {
  if (body.expires_in_days) return new Date(now.getTime() + body.expires_in_days * 86_400_000).toISOString();
  if (body.expires_at == null) return undefined;
  const at = instantOf(body.expires_at);
  if (at === undefined) throw ValidationError.field('expires_at', 'is not a valid date-time');
  if (at <= now.getTime()) throw ValidationError.field('expires_at', 'must be in the future');
  if (at > now.getTime() + MAX_EXPIRY_DAYS * 86_400_000) throw ValidationError.field('expires_at', `must be at most ${MAX_EXPIRY_DAYS} days ahead`);
  return new Date(at).toISOString();
}

function requestedCapabilities(body: { capabilities?: string[] | null; preset?: keyof typeof PRESETS | null; scope?: keyof typeof SCOPES | null }): Capability[] {
  if (body.capabilities) return checkedCapabilities(body.capabilities);
  if (body.preset) return normalizeCapabilities(PRESETS[body.preset]);
  if (body.scope) return normalizeCapabilities(SCOPES[body.scope]);
  throw ValidationError.field('capabilities', 'give exactly one of capabilities, preset or scope');
}

/** A test key may create or manage only test keys: 403 ENVIRONMENT_DENIED for a live one. */
function assertEnvironment(environment: KeyEnvironment, caller?: Grant): void {
  if (caller?.environment === 'test' && environment !== 'test') throw new EnvironmentDeniedError(environment);
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

/**
 * How often a key's write that met a concurrent change reads again and retries (after conflictBackoff):
 * 16, about 2.8 s of waits on average and 5.6 s at most, within the keys function's 10 s. With 10, forty
 * edits of one key at once on a loaded machine left one failing (500) after its last try.
 */
const MAX_CONFLICT_RETRIES = 16;

const clock = (deps: KeyServiceDeps) => (deps.now ?? (() => new Date()))();

/**
 * A key.created event's changes: what the key was made with (never its plaintext, hash or prefix); a
 * replacement also names the key it replaces (`rotated_from`).
 */
function madeWith(record: KeyRecord, rotatedFrom?: string): AuditChanges {
  return diff({}, {
    name: record.name,
    capabilities: record.capabilities,
    workspaces: record.workspaces,
    environment: record.environment,
    expires_at: record.expires_at ?? null,
    metadata: record.metadata ?? {},
    enabled: record.enabled ?? true,
    ...(rotatedFrom === undefined ? {} : { rotated_from: rotatedFrom }),
  });
}

/** The event of a change to a key of the account, by the caller (an operator when there is none). */
function keyEvent(
  action: AuditAction,
  record: Pick<KeyRecord, 'account_id' | 'key_id'>,
  changes: AuditChanges | null,
  now: Date,
  caller: Grant | undefined,
  request: RequestMeta | undefined,
) {
  return newAuditEvent({
    accountId: record.account_id,
    action,
    actor: actorOf(caller?.principal),
    target: { kind: 'key', id: record.key_id },
    changes,
    ...(request ? { request } : {}),
    now,
  });
}

function normalizeWorkspaces(workspaces: readonly string[] | null | undefined): string[] {
  if (!workspaces) return ['*'];
  return workspaces.includes('*') ? ['*'] : [...new Set(workspaces)].sort();
}

function checkedCapabilities(capabilities: readonly string[]): Capability[] {
  const bad = capabilities.findIndex((c) => !isCapability(c));
  if (bad >= 0) throw ValidationError.field(`capabilities.${bad}`, `'${capabilities[bad]}' is not a known capability`);
  return normalizeCapabilities(capabilities);
}

function newKeyRecord(
  deps: KeyServiceDeps,
  now: Date,
  fields: Pick<KeyRecord, 'account_id' | 'name' | 'environment' | 'capabilities' | 'workspaces' | 'tier'> & {
    metadata: KeyMetadata;
    enabled: boolean;
    expires_at?: string | undefined;
    created_by?: Principal | undefined;
  },
): { record: KeyRecord; apiKey: string } {
  const apiKey = generateApiKey(deps.settings.keyPrefix, fields.environment);
  const { expires_at, created_by, ...rest } = fields;
  return {
    apiKey,
    record: {
      ...rest,
      key_id: newId('key'),
      key_hash: hashApiKey(apiKey),
      prefix: displayPrefix(apiKey),
      created_at: now.toISOString(),
      version: 1,
      ...(expires_at ? { expires_at } : {}),
      ...(created_by ? { created_by } : {}),
    },
  };
}

/**
 * The account condition of a create failed: the tier changed (check the grant again), or the account
 * looked full. Expired keys keep their slot until released, so release them (each exactly once, by
 * this request or a concurrent one) and read the count again: retry while a slot is free, otherwise the
 * account is full.
 */
async function afterConflict(deps: KeyServiceDeps, accountId: string, seenTier: string, attempt: number, now: Date): Promise<void> {
  const max = deps.settings.maxActiveKeysPerAccount;
  // Full at every attempt: at least `max` keys held a slot each time.
  if (attempt >= MAX_CONFLICT_RETRIES) throw keyLimitReached(max, max);
  const fresh = await deps.accounts.get(accountId);
  if (!fresh) throw new NotFoundError(`Account '${accountId}' does not exist`);
  if (fresh.tier !== seenTier) return;
  await deps.keys.releaseExpired(accountId, now, deps.audit);
  const after = await deps.accounts.get(accountId);
  if (after && after.active_keys < max) return;
  throw keyLimitReached(max, after?.active_keys ?? max);
}

/**
 * What the request's answer for its Idempotency-Key needs written with the key (http.ts keepAs): the
 * key's transaction keeps it, so a request that dies after the key committed is replayed, not run again.
 */
export type KeepAnswer = (created: CreatedKey) => TransactItem | undefined;

/** `request`: where an API request came from, for the audit event (absent for the admin CLI). */
export async function createKey(
  deps: KeyServiceDeps,
  accountId: string,
  rawBody: unknown,
  caller?: Grant,
  request?: RequestMeta,
  keep?: KeepAnswer,
): Promise<CreatedKey> {
  const body = parseCreateKeyBody(rawBody);
  const capabilities = requestedCapabilities(body);
  const workspaces = normalizeWorkspaces(body.workspaces);
  const environment = body.environment ?? 'live';
  const metadata = sortedMetadata(body.metadata);
  const enabled = body.enabled !== false;
  const now = clock(deps);
  const expiresAt = expiryOf(body, now);

  for (let attempt = 0; ; attempt++) {
    const account = await deps.accounts.get(accountId);
    if (!account) throw new NotFoundError(`Account '${accountId}' does not exist`);
    assertGrantable(deps.settings, account.tier, capabilities, workspaces, caller);
    assertEnvironment(environment, caller);
    const { record, apiKey } = newKeyRecord(deps, now, {
      account_id: accountId,
      name: body.name,
      environment,
      capabilities,
      workspaces,
      tier: account.tier,
      metadata,
      enabled,
      expires_at: expiresAt,
      created_by: caller?.principal ?? { kind: 'operator' },
    });
    const created = { key: toKeyObject(record), apiKey };
    try {
      await deps.keys.create(
        record,
        deps.settings.maxActiveKeysPerAccount,
        deps.audit.putItem(keyEvent('key.created', record, madeWith(record), now, caller, request)),
        keep?.(created),
      );
      return created;
    } catch (error) {
      if (!(error instanceof KeyCreateConflict)) throw error;
      await afterConflict(deps, accountId, account.tier, attempt, now);
    }
  }
}

const isActive = (record: KeyRecord, now: Date) =>
  !record.revoked_at && (!record.expires_at || Date.parse(record.expires_at) > now.getTime());

/** An active key of the account; 404 for anything else, including another account's key. */
async function activeKey(deps: KeyServiceDeps, accountId: string, keyId: string, now: Date): Promise<KeyRecord> {
  const record = await deps.keys.getById(accountId, keyId);
  if (!record || !isActive(record, now)) throw new NotFoundError(`Key '${keyId}' not found`);
  return record;
}

/**
 * A key to edit or rotate: 409 (`code`) naming its replacement once it has been rotated, whether it still
 * works through a grace period or not; otherwise an active key of the account (404 for anything else).
 */
async function unrotatedKey(
  deps: KeyServiceDeps,
  accountId: string,
  keyId: string,
  now: Date,
  code: 'KEY_ROTATED' | 'ALREADY_EXISTS',
): Promise<KeyRecord> {
  const record = await deps.keys.getById(accountId, keyId);
  if (record?.rotated_to) throw new KeyRotatedError(code, keyId, record.rotated_to);
  if (!record || !isActive(record, now)) throw new NotFoundError(`Key '${keyId}' not found`);
  return record;
}

/**
 * A key may only manage (edit, rotate, revoke) a key within its own capabilities and workspaces, and a
 * test key only test keys. To stop a key (`stopping`: revoke it, disable it, or replace its capabilities
 * by ones the caller may grant) its capabilities count as they are in force under `tier` (the account's):
 * after a downgrade the caller's own are cut to the new ceiling too, and a key holding more than the
 * ceiling must still be stoppable by whoever holds keys:write (a leaked key is stopped at once). Any
 * other change (enabling it again, a new name, metadata, workspaces) counts all it holds: else a caller
 * who never held them could switch a key's dormant capabilities back on, in force the day the tier goes
 * back up. Rotating hands out its secret, and checks more (rotateKey).
 */
function assertManageable(settings: Settings, tier: TierName, target: KeyRecord, caller: Grant | undefined, stopping: boolean): void {
  if (!caller) return;
  assertEnvironment(target.environment, caller);
  // Counting all it holds, the tier ceiling comes first (API.md §2), as for a new key: the caller's own
  // capabilities are cut to it anyway, and "the tier does not allow X" says what to do where "you lack
  // X" would not.
  const overCeiling = stopping ? undefined : firstUncovered(settings.tiers[tier].ceiling, target.capabilities);
  if (overCeiling) throw new TierCeilingExceededError(tier, overCeiling);
  const counted = stopping ? inForce(target.capabilities, settings.tiers[tier].ceiling) : target.capabilities;
  const denied = firstUncovered(caller.capabilities, counted);
  if (denied) throw new CapabilityDeniedError(denied, [...caller.capabilities]);
  const outside = workspacesCover(caller.workspaces, target.workspaces);
  if (outside) throw new WorkspaceDeniedError(outside);
}

async function lastUsedOf(deps: KeyServiceDeps, keyId: string): Promise<string | null> {
  return deps.usage ? deps.usage.lastUsed(keyId) : null;
}

export async function getKey(deps: KeyServiceDeps, accountId: string, keyId: string): Promise<KeyObject> {
  const record = await activeKey(deps, accountId, keyId, clock(deps));
  return toKeyObject(record, await lastUsedOf(deps, keyId));
}

/** A page of the account's active keys, oldest first, each with its last use. */
export async function listKeys(
  deps: KeyServiceDeps,
  accountId: string,
  limit: number,
  nextToken?: string,
): Promise<{ items: KeyObject[]; next_token: string | null }> {
  const page = await deps.keys.listActive(accountId, clock(deps), limit, nextToken);
  const items = await Promise.all(page.items.map(async (r) => toKeyObject(r, await lastUsedOf(deps, r.key_id))));
  return { items, next_token: page.nextToken };
}

/**
 * Edits a key. The edit is conditioned on the key as read (its `version`), so its event's `from` values
 * are exactly what it replaced, and on the tier it was checked against (a tier change leaves `version` as
 * it is): a concurrent edit or tier change makes it read and check again, so an edit that no longer fits
 * the tier's ceiling is 403 TIER_CEILING_EXCEEDED. An edit that changes nothing writes nothing (no
 * change, no event) and answers the key as it is, so a retried PATCH is harmless. `metadata` replaces
 * the whole map (`{}` clears it); `enabled: false` makes the authorizer refuse the key from its next
 * request (it keeps its slot), `true` lets it work again. A rotation is conditioned on the same
 * `version`, so it copies the key as last edited, or fails and reads again.
 */
export async function updateKey(
  deps: KeyServiceDeps,
  accountId: string,
  keyId: string,
  rawBody: unknown,
  caller?: Grant,
  request?: RequestMeta,
): Promise<KeyObject> {
  const body = parseUpdateKeyBody(rawBody);
  const capabilities = body.capabilities ? checkedCapabilities(body.capabilities) : undefined;
  const workspaces = body.workspaces ? normalizeWorkspaces(body.workspaces) : undefined;
  const metadata = body.metadata ? sortedMetadata(body.metadata) : undefined;
  for (let attempt = 0; ; attempt++) {
    const now = clock(deps);
    const record = await unrotatedKey(deps, accountId, keyId, now, 'KEY_ROTATED');
    assertEnvironment(record.environment, caller);
    // The result must be grantable (tier ceiling first, then the caller's own grant) …
    if (capabilities) assertGrantable(deps.settings, record.tier, capabilities, workspaces ?? record.workspaces, caller);
    else if (workspaces) assertGrantable(deps.settings, record.tier, [], workspaces, caller);
    // … and the key as it stands must be within the caller's reach (what is in force, for an edit that
    // only stops it: disables it, or replaces its capabilities by ones just checked as grantable).
    const stopping = body.name == null && !workspaces && !metadata && body.enabled !== true && (capabilities !== undefined || body.enabled === false);
    assertManageable(deps.settings, record.tier, record, caller, stopping);
    const wanted = {
      // A null (the schema's nullable) is a field not given.
      ...(body.name != null ? { name: body.name } : {}),
      ...(capabilities ? { capabilities } : {}),
      ...(workspaces ? { workspaces } : {}),
      ...(metadata ? { metadata } : {}),
      ...(typeof body.enabled === 'boolean' ? { enabled: body.enabled } : {}),
    };
    // Against the key as the API reads it: an old key's missing metadata is `{}`, its enabled `true`.
    const changes = diff(withDefaults(record) as unknown as Record<string, unknown>, wanted);
    if (Object.keys(changes).length === 0) return toKeyObject(record, await lastUsedOf(deps, keyId));
    const changed = Object.fromEntries(Object.keys(changes).map((field) => [field, wanted[field as keyof typeof wanted]]));
    const updated = await deps.keys.update(record, changed, now, deps.audit.putItem(keyEvent('key.updated', record, changes, now, caller, request)));
    if (updated) return toKeyObject(updated, await lastUsedOf(deps, keyId));
    // Edited, moved to another tier, rotated or no longer active meanwhile: read it again (409 KEY_ROTATED, 404, or check and edit anew).
    if (attempt >= MAX_CONFLICT_RETRIES) throw new Error(`key '${keyId}' kept changing while it was being edited`);
    // Read again after a jittered wait: edits racing on one key spread out instead of colliding again.
    await conflictBackoff(attempt);
  }
}

/**
 * Revokes an active key of the account at once; 404 when it is not one (also another account's). Whether
 * the caller may revoke it is checked on the key as read, so the revocation is conditioned on that (its
 * `version` and tier): a key edited meanwhile (say, given capabilities the caller lacks) or moved to
 * another tier is read and checked again, and revoked only if the caller still may.
 */
export async function revokeKey(deps: KeyServiceDeps, accountId: string, keyId: string, caller?: Grant, request?: RequestMeta): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const now = clock(deps);
    const record = await activeKey(deps, accountId, keyId, now);
    assertManageable(deps.settings, record.tier, record, caller, true);
    try {
      await deps.keys.revoke(record, now, deps.audit.putItem(keyEvent('key.revoked', record, { revoked_at: { from: null, to: now.toISOString() } }, now, caller, request)));
      return;
    } catch (error) {
      // Edited, moved to another tier, revoked or rotated meanwhile: read it again (404 once it no longer works).
      if (!(error instanceof KeyChanged)) throw error;
      if (attempt >= MAX_CONFLICT_RETRIES) throw new Error(`key '${keyId}' kept changing while it was being revoked`, { cause: error });
      await conflictBackoff(attempt);
    }
  }
}

/**
 * Issues a replacement with the same name, capabilities, workspaces, environment, expiry, metadata and
 * `enabled` (a disabled key's replacement is disabled too: rotating changes the secret, not the state); the old
 * key stops at once, or after `grace_period_seconds`. A key is rotated once (409 ALREADY_EXISTS after).
 * A key in its grace still counts against the key limit, so a rotation with a grace period needs a free
 * slot (409 KEY_LIMIT_REACHED on a full account); one without grace hands the slot over and always works.
 */
export async function rotateKey(
  deps: KeyServiceDeps,
  accountId: string,
  keyId: string,
  rawBody: unknown,
  caller?: Grant,
  request?: RequestMeta,
  keep?: KeepAnswer,
): Promise<CreatedKey> {
  const body = parseRotateKeyBody(rawBody ?? {});
  const now = clock(deps);
  const grace = body.grace_period_seconds ?? 0;
  const graceEnd = grace > 0 ? new Date(now.getTime() + grace * 1000) : undefined;
  for (let attempt = 0; ; attempt++) {
    const old = await unrotatedKey(deps, accountId, keyId, now, 'ALREADY_EXISTS');
    assertEnvironment(old.environment, caller);
    const account = await deps.accounts.get(accountId);
    if (!account) throw new NotFoundError(`Account '${accountId}' does not exist`);
    // Rotating hands out a secret for everything the key holds, so it needs all the key holds within the
    // ceiling, and within the caller's own: a key a downgrade put over the ceiling is not rotated (403
    // TIER_CEILING_EXCEEDED), else the secret would gain what the caller lacks the day the tier goes back
    // up. Revoke it and create another.
    assertGrantable(deps.settings, account.tier, old.capabilities, old.workspaces, caller);
    assertManageable(deps.settings, account.tier, old, caller, false);
    const { record, apiKey } = newKeyRecord(deps, now, {
      account_id: accountId,
      name: old.name,
      environment: old.environment,
      capabilities: old.capabilities,
      workspaces: old.workspaces,
      tier: account.tier,
      metadata: sortedMetadata(old.metadata),
      enabled: old.enabled ?? true,
      expires_at: old.expires_at,
      created_by: old.created_by,
    });
    // The rotated key's event: its replacement, and when it stops (now, or at its grace's end; nothing
    // more when its own expiry comes first and stays: a change records only what changed).
    const stops = graceExpiry(old, graceEnd);
    const rotated: AuditChanges = {
      rotated_to: { from: null, to: record.key_id },
      ...(stops
        ? stops === old.expires_at
          ? {}
          : { expires_at: { from: old.expires_at ?? null, to: stops } }
        : { revoked_at: { from: null, to: now.toISOString() } }),
    };
    try {
      // Two changes, each with its event: the old key rotated, and its replacement created (so the
      // replacement's own history says where it came from), the creation listed as the later of the two.
      const events = inOrder(keyEvent('key.rotated', old, rotated, now, caller, request), keyEvent('key.created', record, madeWith(record, old.key_id), now, caller, request));
      const created = { key: toKeyObject(record), apiKey };
      await deps.keys.rotate(old, record, graceEnd, now, deps.settings.maxActiveKeysPerAccount, events.map((e) => deps.audit.putItem(e)), keep?.(created));
      return created;
    } catch (error) {
      // Edited, rotated or revoked since it was read: read it again (an edit then reaches the
      // replacement; a concurrent rotation's loser gets 409, a revocation 404).
      if (error instanceof KeyChanged && attempt < MAX_CONFLICT_RETRIES) {
        await conflictBackoff(attempt);
        continue;
      }
      if (!(error instanceof KeyCreateConflict)) throw error;
      // The tier changed (check again), or, with a grace period, the account is full: the key in its
      // grace keeps its slot, so the replacement needs one of its own (409 KEY_LIMIT_REACHED).
      await afterConflict(deps, accountId, account.tier, attempt, now);
    }
  }
}

export interface KeyUsage {
  key_id: string;
  requests_today: number;
  requests_this_month: number;
  rate_limit: number;
  last_used: string | null;
  /** The requests of each of the last `days` UTC days, oldest first, today last. */
  daily: { date: string; requests: number }[];
}

export async function keyUsage(deps: KeyServiceDeps, accountId: string, keyId: string, days = 30): Promise<KeyUsage> {
  const now = clock(deps);
  const record = await activeKey(deps, accountId, keyId, now);
  const summary = deps.usage
    ? await deps.usage.summary(keyId, now, days)
    : { requestsToday: 0, requestsThisMonth: 0, lastUsed: null, daily: [] };
  return {
    key_id: keyId,
    requests_today: summary.requestsToday,
    requests_this_month: summary.requestsThisMonth,
    rate_limit: rateLimitFor(deps.settings, record.tier, record.environment),
    last_used: summary.lastUsed,
    daily: summary.daily,
  };
}

/**
 * Changes the account's tier and, in the same transaction, the tier copied onto each of its keys that
 * can still authenticate, so the change applies to all of them from the next request: all or nothing,
 * so a failure leaves nothing half-done to repair (run it again). Returns how many keys it changed.
 */
export async function setAccountTier(
  deps: KeyServiceDeps,
  accountId: string,
  tier: keyof Settings['tiers'],
): Promise<{ keys: number }> {
  const now = clock(deps);
  // account.tier_changed by an operator (only the admin CLI changes tiers); none when the tier stays. Timed
  // when made, after each read of the account: a change that retries after another's lands after it.
  const event = (from: TierName) =>
    from === tier
      ? undefined
      : deps.audit.putItem(
          newAuditEvent({ accountId, action: 'account.tier_changed', actor: actorOf(undefined), target: { kind: 'account', id: accountId }, changes: { tier: { from, to: tier } }, now: clock(deps) }),
        );
  return { keys: (await deps.keys.setAccountTier(accountId, tier, now, event)).length };
}

/** Creates an account (an operator's act: the admin CLI, the local runner's seed), with its account.created event. */
export async function createAccount(deps: Pick<KeyServiceDeps, 'accounts' | 'audit' | 'now'>, accountId: string, tier: TierName): Promise<AccountRecord> {
  const now = (deps.now ?? (() => new Date()))();
  const event = newAuditEvent({ accountId, action: 'account.created', actor: actorOf(undefined), target: { kind: 'account', id: accountId }, changes: { tier: { from: null, to: tier } }, now });
  return deps.accounts.create(accountId, tier, now, deps.audit.putItem(event));
}
