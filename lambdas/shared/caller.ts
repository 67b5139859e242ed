/**
 * The capability context the authorizer hands to the handlers: an API key, or a person signed in with
 * a session token (API.md §1). API Gateway only carries strings, numbers and booleans in an authorizer
 * context (and the proxy event receives them as strings), so the lists travel JSON-encoded. One codec,
 * used at both ends.
 *
 * A person's request the authorizer could not place in an account (no membership: 403 NOT_A_MEMBER;
 * several and no `Knouds-Account` header: 400) is allowed through API Gateway with a `refusal` in its
 * context, so that it gets the contract's own status and body rather than API Gateway's generic 403:
 * the handler counts the request against the person's own counter (`decodeRefused`, the limit the
 * authorizer put there), then answers that error; no route runs.
 */
import type { KeyEnvironment } from './api-key.js';
import { isRoleName, type Capability, type RoleName } from './capabilities.js';
import { type ApiError, NotAMemberError, ValidationError } from './errors.js';
import { isTierName, type TierName } from './settings.js';

interface CallerBase {
  readonly accountId: string;
  readonly tier: TierName;
  /** In force: the key's own capabilities (or the person's role's) cut to the tier's ceiling. */
  readonly capabilities: readonly Capability[];
  readonly workspaces: readonly string[];
  /** Requests per minute (tier and environment). */
  readonly rateLimit: number;
  /**
   * Whose counter a request is charged to: the key's id, or the person in this account (a person's limit
   * is counted per person and account).
   */
  readonly counterId: string;
  /** The environment of the keys this caller may manage: a person manages both, like a live key. */
  readonly environment: KeyEnvironment;
}

export interface KeyCaller extends CallerBase {
  readonly kind: 'key';
  readonly keyId: string;
  readonly name: string;
  readonly prefix: string;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  /** Who made the key (`null` for keys made before it was recorded). */
  readonly createdBy: Principal | null;
  /** The key that replaced it, while a rotation's grace lets it work; else null. */
  readonly rotatedTo: string | null;
}

export interface PersonCaller extends CallerBase {
  readonly kind: 'person';
  /** The identity provider's `sub`. */
  readonly subject: string;
  /** `null` for a person added by subject alone (see MembershipRecord). */
  readonly email: string | null;
  readonly role: RoleName;
}

export type Caller = KeyCaller | PersonCaller;

/** The principal a record names as its author (`created_by`, an execution's starter, an audit actor). */
export type Principal = { kind: 'key'; key_id: string } | { kind: 'person'; subject: string; email: string | null } | { kind: 'operator' };

export function principalOf(caller: Caller): Principal {
  return caller.kind === 'key' ? { kind: 'key', key_id: caller.keyId } : { kind: 'person', subject: caller.subject, email: caller.email };
}

/** A person's counter: per person and account. */
export const personCounterId = (accountId: string, subject: string) => `person#${accountId}#${subject}`;

export type AuthorizerContext = Record<string, string | number | boolean>;

/** Why the authorizer placed a person in no account; the handler answers with the matching error. */
export type Refusal = { code: 'NOT_A_MEMBER'; account_id: string | null } | { code: 'ACCOUNT_REQUIRED' };

export function encodeCaller(caller: Caller): AuthorizerContext {
  const common = {
    kind: caller.kind,
    account_id: caller.accountId,
    tier: caller.tier,
    environment: caller.environment,
    capabilities: JSON.stringify(caller.capabilities),
    workspaces: JSON.stringify(caller.workspaces),
    rate_limit: caller.rateLimit,
    counter_id: caller.counterId,
  };
  // A context holds no null: a person without an email has no `email` entry.
  if (caller.kind === 'person') return { ...common, subject: caller.subject, ...(caller.email !== null ? { email: caller.email } : {}), role: caller.role };
  return {
    ...common,
    key_id: caller.keyId,
    name: caller.name,
    prefix: caller.prefix,
    created_at: caller.createdAt,
    expires_at: caller.expiresAt ?? '',
    created_by: JSON.stringify(caller.createdBy),
    rotated_to: caller.rotatedTo ?? '',
  };
}

/**
 * A person placed in no account: the refusal, and the rate limit their refused requests are counted
 * against (per person: `refusedCounterId`), so that they carry the rate-limit headers as every answer
 * past the authorizer does, and a flood of them is refused like any other.
 */
export function encodeRefusal(refusal: Refusal, subject: string, rateLimit: number): AuthorizerContext {
  return { kind: 'refused', refusal: JSON.stringify(refusal), subject, rate_limit: rateLimit };
}

/** The counter of a person's requests that acted for no account (`-` is no account id). */
/**
 * Apart from every account's counters: `person#-#…` was a real account's when an operator made an
 * account named `-` (a valid id), and that person's refused and admitted requests then shared one count.
 */
export const refusedCounterId = (subject: string) => `person-refused#${subject}`;

/**
 * A refused person's context: who, the limit to count them against and the error to answer with;
 * undefined for any other context. A context from an authorizer deployed before refusals were counted
 * has no limit: `rateLimit` is then undefined (answered uncounted, as then).
 */
export function decodeRefused(ctx: Record<string, unknown> | null | undefined): { subject: string; rateLimit: number | undefined; error: ApiError } | undefined {
  if (!ctx || ctx['kind'] !== 'refused') return undefined;
  const limit = ctx['rate_limit'] === undefined ? undefined : Number(text(ctx, 'rate_limit'));
  if (limit !== undefined && !Number.isInteger(limit)) throw new Error('authorizer context is malformed');
  return { subject: text(ctx, 'subject'), rateLimit: limit, error: refusalError(ctx) };
}

function text(ctx: Record<string, unknown>, name: string): string {
  const value = ctx[name];
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    throw new Error(`authorizer context lacks ${name}`);
  }
  return String(value);
}

function list(ctx: Record<string, unknown>, name: string): string[] {
  const value: unknown = JSON.parse(text(ctx, name));
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new Error(`authorizer context ${name} is not a list of strings`);
  }
  return value;
}

export const ACCOUNT_HEADER = 'Knouds-Account';

function refusalError(ctx: Record<string, unknown>): ApiError {
  const refusal = JSON.parse(text(ctx, 'refusal')) as Refusal;
  if (refusal.code === 'NOT_A_MEMBER') return new NotAMemberError(refusal.account_id);
  if (refusal.code === 'ACCOUNT_REQUIRED') {
    return ValidationError.field(ACCOUNT_HEADER, 'name the account to act for: you are a member of several');
  }
  throw new Error('authorizer context holds an unknown refusal');
}

/**
 * Throws on anything malformed: a handler must never act on a context it does not understand. A
 * refused person's context throws its contract error (NOT_A_MEMBER, VALIDATION_ERROR).
 */
export function decodeCaller(ctx: Record<string, unknown> | null | undefined): Caller {
  if (!ctx) throw new Error('no authorizer context');
  // Contexts of an authorizer deployed before people existed carry no kind: they are keys.
  const kind = ctx['kind'] === undefined ? 'key' : text(ctx, 'kind');
  if (kind === 'refused') throw refusalError(ctx);
  const tier = text(ctx, 'tier');
  const environment = text(ctx, 'environment');
  const rateLimit = Number(text(ctx, 'rate_limit'));
  if (!isTierName(tier) || (environment !== 'live' && environment !== 'test') || !Number.isInteger(rateLimit)) {
    throw new Error('authorizer context is malformed');
  }
  const base = {
    accountId: text(ctx, 'account_id'),
    tier,
    environment,
    capabilities: list(ctx, 'capabilities'),
    workspaces: list(ctx, 'workspaces'),
    rateLimit,
  } as const;
  if (kind === 'person') {
    const role = text(ctx, 'role');
    if (!isRoleName(role)) throw new Error('authorizer context is malformed');
    const subject = text(ctx, 'subject');
    return { kind, ...base, subject, email: ctx['email'] === undefined ? null : text(ctx, 'email'), role, counterId: text(ctx, 'counter_id') };
  }
  if (kind !== 'key') throw new Error('authorizer context is malformed');
  const keyId = text(ctx, 'key_id');
  const expiresAt = text(ctx, 'expires_at');
  return {
    kind,
    ...base,
    keyId,
    counterId: ctx['counter_id'] === undefined ? keyId : text(ctx, 'counter_id'),
    name: text(ctx, 'name'),
    prefix: text(ctx, 'prefix'),
    createdAt: text(ctx, 'created_at'),
    expiresAt: expiresAt === '' ? null : expiresAt,
    // Contexts of an authorizer deployed before it carried created_by: null, as for keys made before it.
    createdBy: ctx['created_by'] === undefined ? null : (JSON.parse(text(ctx, 'created_by')) as Principal | null),
    // Absent from contexts of an authorizer deployed before it carried rotated_to.
    rotatedTo: ctx['rotated_to'] === undefined || ctx['rotated_to'] === '' ? null : text(ctx, 'rotated_to'),
  };
}
