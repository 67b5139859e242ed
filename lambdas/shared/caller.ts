/**
 * The capability context the authorizer hands to the handlers. API Gateway only carries strings,
 * numbers and booleans in an authorizer context (and the proxy event receives them as strings), so
 * the lists travel JSON-encoded. One codec, used at both ends.
 */
import type { KeyEnvironment } from './api-key.js';
import type { Capability } from './capabilities.js';
import { isTierName, type TierName } from './settings.js';

export interface Caller {
  readonly keyId: string;
  readonly accountId: string;
  readonly tier: TierName;
  readonly environment: KeyEnvironment;
  readonly name: string;
  readonly prefix: string;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  /** In force: the key's own capabilities cut to its tier's ceiling. */
  readonly capabilities: readonly Capability[];
  readonly workspaces: readonly string[];
  /** Requests per minute for this key (tier and environment). */
  readonly rateLimit: number;
}

export type AuthorizerContext = Record<string, string | number | boolean>;

export function encodeCaller(caller: Caller): AuthorizerContext {
  return {
    key_id: caller.keyId,
    account_id: caller.accountId,
    tier: caller.tier,
    environment: caller.environment,
    name: caller.name,
    prefix: caller.prefix,
    created_at: caller.createdAt,
    expires_at: caller.expiresAt ?? '',
    capabilities: JSON.stringify(caller.capabilities),
    workspaces: JSON.stringify(caller.workspaces),
    rate_limit: caller.rateLimit,
  };
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

/** Throws on anything malformed: a handler must never act on a context it does not understand. */
export function decodeCaller(ctx: Record<string, unknown> | null | undefined): Caller {
  if (!ctx) throw new Error('no authorizer context');
  const tier = text(ctx, 'tier');
  const environment = text(ctx, 'environment');
  const rateLimit = Number(text(ctx, 'rate_limit'));
  if (!isTierName(tier) || (environment !== 'live' && environment !== 'test') || !Number.isInteger(rateLimit)) {
    throw new Error('authorizer context is malformed');
  }
  const expiresAt = text(ctx, 'expires_at');
  return {
    keyId: text(ctx, 'key_id'),
    accountId: text(ctx, 'account_id'),
    tier,
    environment,
    name: text(ctx, 'name'),
    prefix: text(ctx, 'prefix'),
    createdAt: text(ctx, 'created_at'),
    expiresAt: expiresAt === '' ? null : expiresAt,
    capabilities: list(ctx, 'capabilities'),
    workspaces: list(ctx, 'workspaces'),
    rateLimit,
  };
}
