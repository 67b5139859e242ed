/**
 * The capability vocabulary of API.md §2: fixed capabilities, the slug- and model-specific forms,
 * presets, legacy scopes, and the one coverage rule everything else is built on.
 */

export const FIXED_CAPABILITIES = [
  'workflow:run',
  'workflow:read',
  'workflow:write',
  'model:run',
  'webhook:receive',
  'execution:read',
  'execution:cancel',
  'keys:read',
  'keys:write',
  'audit:read',
] as const;

export type FixedCapability = (typeof FIXED_CAPABILITIES)[number];
/** A fixed capability, or `workflow:<slug>:run` / `model:<id>:run`. */
export type Capability = string;

export const ALL_CAPABILITIES: readonly Capability[] = FIXED_CAPABILITIES;

/** Workflow slugs and model ids. */
export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const WORKFLOW_RUN = /^workflow:([a-z0-9][a-z0-9-]{0,62}):run$/;
const MODEL_RUN = /^model:([a-z0-9][a-z0-9-]{0,62}):run$/;

export function isCapability(value: unknown): value is Capability {
  return (
    typeof value === 'string' &&
    ((FIXED_CAPABILITIES as readonly string[]).includes(value) || WORKFLOW_RUN.test(value) || MODEL_RUN.test(value))
  );
}

/** The capability that implies `capability`, if any (`workflow:run` for `workflow:<slug>:run`). */
function impliedBy(capability: Capability): Capability | undefined {
  if (WORKFLOW_RUN.test(capability)) return 'workflow:run';
  if (MODEL_RUN.test(capability)) return 'model:run';
  return undefined;
}

/** True when `held` holds `capability` or a capability that implies it. */
export function covers(held: ReadonlySet<Capability> | readonly Capability[], capability: Capability): boolean {
  const set = held instanceof Set ? held : new Set(held as readonly Capability[]);
  if (set.has(capability)) return true;
  const parent = impliedBy(capability);
  return parent !== undefined && set.has(parent);
}

/**
 * The capabilities in force: those of `held` that the tier's `ceiling` covers (what the authorizer grants a
 * key or a role; the rest stay stored, out of force, until the ceiling allows them again).
 */
export function inForce(held: readonly Capability[], ceiling: ReadonlySet<Capability> | readonly Capability[]): Capability[] {
  const set = ceiling instanceof Set ? ceiling : new Set(ceiling as readonly Capability[]);
  return held.filter((c) => covers(set, c));
}

/** The first capability of `wanted` that `held` does not cover, or undefined when all are covered. */
export function firstUncovered(
  held: ReadonlySet<Capability> | readonly Capability[],
  wanted: readonly Capability[],
): Capability | undefined {
  const set = held instanceof Set ? held : new Set(held as readonly Capability[]);
  return wanted.find((c) => !covers(set, c));
}

/** Sorted, de-duplicated: the canonical form stored and returned. */
export function normalizeCapabilities(capabilities: Iterable<Capability>): Capability[] {
  return [...new Set(capabilities)].sort();
}

export const PRESETS = {
  'read-only': ['workflow:read'],
  'workflow-deploy': ['workflow:run', 'workflow:read'],
  'webhook-receiver': ['webhook:receive'],
  'full-deploy': ['workflow:run', 'workflow:read', 'workflow:write'],
} as const satisfies Record<string, readonly FixedCapability[]>;
export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

const FREE_SCOPE = ['workflow:run', 'execution:read', 'execution:cancel'] as const;
const DEPLOYMENT_SCOPE = [...FREE_SCOPE, 'workflow:read'] as const;
export const SCOPES = {
  free: FREE_SCOPE,
  deployment: DEPLOYMENT_SCOPE,
  admin: [...DEPLOYMENT_SCOPE, 'workflow:write', 'model:run', 'webhook:receive', 'keys:read', 'keys:write', 'audit:read'],
} as const satisfies Record<string, readonly FixedCapability[]>;
export type ScopeName = keyof typeof SCOPES;
export const SCOPE_NAMES = Object.keys(SCOPES) as ScopeName[];

/** A person's role in an account (API.md §2): `admin` holds every capability, `viewer` reads. Both cut to the tier's ceiling. */
export const ROLES = {
  admin: FIXED_CAPABILITIES,
  viewer: ['keys:read', 'workflow:read', 'execution:read', 'audit:read'],
} as const satisfies Record<string, readonly FixedCapability[]>;
export type RoleName = keyof typeof ROLES;
export const ROLE_NAMES = Object.keys(ROLES) as RoleName[];
export const isRoleName = (value: unknown): value is RoleName => typeof value === 'string' && Object.hasOwn(ROLES, value);

/** Workspaces: `*` for all, or explicit ids. True when `held` includes every one of `wanted`. */
export function workspacesCover(held: readonly string[], wanted: readonly string[]): string | undefined {
  if (held.includes('*')) return undefined;
  return wanted.find((w) => w === '*' || !held.includes(w));
}

export function workspaceAllowed(held: readonly string[], workspaceId: string): boolean {
  return held.includes('*') || held.includes(workspaceId);
}
