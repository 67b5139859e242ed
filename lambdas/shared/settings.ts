/**
 * Deployment settings shared by the CDK stack (which sets them from its props) and the Lambdas
 * (which read them from the `KNOUDS_SETTINGS` environment variable). Plain data, no AWS imports,
 * so `lib/` and `lambdas/` agree on one set of defaults: the contract's (API.md §2).
 */
import { ALL_CAPABILITIES, isCapability, type Capability } from './capabilities.js';

export const TIER_NAMES = ['free', 'pro', 'business', 'enterprise'] as const;
export type TierName = (typeof TIER_NAMES)[number];

export interface TierSettings {
  /** Capabilities a key of this tier may hold (coverage rules apply: `workflow:run` covers `workflow:<slug>:run`). */
  readonly ceiling: readonly Capability[];
  /** Requests per minute for a `live` key. */
  readonly liveRateLimit: number;
  /** Requests per minute for a `test` key. */
  readonly testRateLimit: number;
  /**
   * Asynchronous executions an account of this tier may have in flight (`QUEUED` or `RUNNING`) at once;
   * past it `?async=true` is 429 CONCURRENCY_LIMIT_EXCEEDED (API.md §4). 0 admits none.
   */
  readonly maxAsyncInFlight: number;
  /**
   * Synchronous executions an account of this tier may have running at once, with its direct runs of models
   * that wait (`sleep`, a deployment's own). Each holds a workflows-function instance for up to its 25 s
   * budget, from the Lambda pool every tenant's requests share: past it, a sync run (or such a model run)
   * is 429 CONCURRENCY_LIMIT_EXCEEDED. 0 admits none.
   */
  readonly maxSyncInFlight: number;
}

export interface Settings {
  readonly keyPrefix: string;
  readonly maxActiveKeysPerAccount: number;
  readonly tiers: Readonly<Record<TierName, TierSettings>>;
  /** Days an audit event is kept (API.md §7) before DynamoDB TTL removes it. */
  readonly auditRetentionDays: number;
}

const EVERYTHING: readonly Capability[] = ALL_CAPABILITIES;
const EVERYTHING_BUT_MODELS: readonly Capability[] = ALL_CAPABILITIES.filter((c) => c !== 'model:run');

export const DEFAULT_SETTINGS: Settings = {
  keyPrefix: 'knouds',
  maxActiveKeysPerAccount: 10,
  tiers: {
    // free holds no usable key, so its in-flight limits are never reached in practice.
    free: { ceiling: [], liveRateLimit: 10, testRateLimit: 10, maxAsyncInFlight: 0, maxSyncInFlight: 0 },
    pro: { ceiling: EVERYTHING_BUT_MODELS, liveRateLimit: 100, testRateLimit: 10, maxAsyncInFlight: 10, maxSyncInFlight: 10 },
    business: { ceiling: EVERYTHING, liveRateLimit: 1000, testRateLimit: 10, maxAsyncInFlight: 50, maxSyncInFlight: 50 },
    enterprise: { ceiling: EVERYTHING, liveRateLimit: 1000, testRateLimit: 10, maxAsyncInFlight: 200, maxSyncInFlight: 100 },
  },
  auditRetentionDays: 365,
};

export const SETTINGS_ENV = 'KNOUDS_SETTINGS';

export const KEY_PREFIX_PATTERN = /^[a-z][a-z0-9]{1,15}$/;

export function isTierName(value: unknown): value is TierName {
  return typeof value === 'string' && (TIER_NAMES as readonly string[]).includes(value);
}

export interface SettingsOverrides {
  readonly keyPrefix?: string;
  readonly maxActiveKeysPerAccount?: number;
  readonly tiers?: Partial<Record<TierName, Partial<TierSettings>>>;
  /**
   * How many days audit events are kept (API.md §7), then removed by DynamoDB TTL (within a few days
   * after: TTL deletes in the background). An integer from 1 to 3650.
   * @default 365
   */
  readonly auditRetentionDays?: number;
}

/** Merges overrides over the defaults (the caller wins) and validates the result; throws with the bad value. */
export function resolveSettings(overrides: SettingsOverrides = {}): Settings {
  const tiers = {} as Record<TierName, TierSettings>;
  for (const name of TIER_NAMES) {
    tiers[name] = { ...DEFAULT_SETTINGS.tiers[name], ...overrides.tiers?.[name] };
  }
  const settings: Settings = {
    keyPrefix: overrides.keyPrefix ?? DEFAULT_SETTINGS.keyPrefix,
    maxActiveKeysPerAccount: overrides.maxActiveKeysPerAccount ?? DEFAULT_SETTINGS.maxActiveKeysPerAccount,
    tiers,
    auditRetentionDays: overrides.auditRetentionDays ?? DEFAULT_SETTINGS.auditRetentionDays,
  };
  validateSettings(settings);
  return settings;
}

function validateSettings(settings: Settings): void {
  if (!KEY_PREFIX_PATTERN.test(settings.keyPrefix)) {
    throw new Error(`keyPrefix must match ${KEY_PREFIX_PATTERN}, got '${settings.keyPrefix}'`);
  }
  // A tier change updates the account, every key of it and writes its audit event in one transaction
  // (at most 100 items).
  if (!Number.isInteger(settings.maxActiveKeysPerAccount) || settings.maxActiveKeysPerAccount < 1 || settings.maxActiveKeysPerAccount > 98) {
    throw new Error(`maxActiveKeysPerAccount must be an integer from 1 to 98, got ${settings.maxActiveKeysPerAccount}`);
  }
  if (!Number.isInteger(settings.auditRetentionDays) || settings.auditRetentionDays < 1 || settings.auditRetentionDays > 3650) {
    throw new Error(`auditRetentionDays must be an integer from 1 to 3650, got ${settings.auditRetentionDays}`);
  }
  for (const name of TIER_NAMES) {
    const tier = settings.tiers[name];
    for (const limit of [tier.liveRateLimit, tier.testRateLimit]) {
      if (!Number.isInteger(limit) || limit < 1) {
        throw new Error(`tier '${name}' rate limits must be positive integers, got ${limit}`);
      }
    }
    for (const field of ['maxAsyncInFlight', 'maxSyncInFlight'] as const) {
      if (!Number.isInteger(tier[field]) || tier[field] < 0) {
        throw new Error(`tier '${name}' ${field} must be a non-negative integer, got ${tier[field]}`);
      }
    }
    for (const capability of tier.ceiling) {
      if (!isCapability(capability)) {
        throw new Error(`tier '${name}' ceiling holds an unknown capability '${capability}'`);
      }
    }
  }
}

let cached: Settings | undefined;

/** The settings of this function, parsed once per cold start from `KNOUDS_SETTINGS` (defaults where unset). */
export function settingsFromEnv(): Settings {
  if (!cached) {
    const raw = process.env[SETTINGS_ENV];
    cached = raw ? resolveSettings(JSON.parse(raw) as SettingsOverrides) : DEFAULT_SETTINGS;
  }
  return cached;
}

export function rateLimitFor(settings: Settings, tier: TierName, environment: 'live' | 'test'): number {
  const t = settings.tiers[tier];
  return environment === 'live' ? t.liveRateLimit : t.testRateLimit;
}
