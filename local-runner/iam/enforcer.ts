/**
 * Holds each function to its execution role's policies, read from the synthesized template: decides
 * each call, words a refusal as AWS does, and keeps count. A decision is cached per function, action and
 * resource (the statements that match them); only conditions are evaluated again per call.
 */
import type { LocalApiModel } from '../template.js';
import { candidates, compileStatement, decide, statementsOf, type AccessRequest, type Candidates, type CompiledStatement, type Decision } from './policy.js';

export interface IamRefusal {
  /** The calling function's logical id. */
  readonly functionId: string;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<function>` */
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  /** `implicit-deny` (no statement allows), `explicit-deny`, or `unsupported` (something the runner cannot evaluate). */
  readonly effect: 'implicit-deny' | 'explicit-deny' | 'unsupported';
  /** What decided it: the Deny statement, or what could not be evaluated. */
  readonly detail?: string;
  /** The AccessDeniedException's message, as AWS words it. */
  readonly message: string;
}

interface FunctionRole {
  readonly principal: string;
  readonly statements: readonly CompiledStatement[];
  readonly unknownAllows: readonly string[];
  readonly unknownLimits: readonly string[];
  readonly cache: Map<string, Candidates>;
}

/** Entries kept per function before the cache starts again (resource names come from requests). */
const CACHE_LIMIT = 10_000;
/**
 * Refusals kept for `refusals()`, the newest; older ones are only counted. A caller refused in a loop
 * (resource names and actions come from its requests) must not grow the runner's memory without bound.
 */
export const REFUSALS_KEPT = 1_000;
/** Function × action pairs counted apart in `summary()`; refusals of any further pair are counted together. */
const COUNTED_PAIRS = 100;
const OTHER_PAIRS = 'other calls';

export interface IamEnforcerOptions {
  readonly region: string;
  readonly accountId: string;
  readonly onRefusal?: (refusal: IamRefusal) => void;
}

export class IamEnforcer {
  private readonly roles = new Map<string, FunctionRole>();
  /** The newest refusals (at most REFUSALS_KEPT), oldest first. */
  private readonly refused: IamRefusal[] = [];
  private refusedTotal = 0;
  /** Refusals by `<function> <action>`, for the summary (at most COUNTED_PAIRS + 1 entries). */
  private readonly refusedBy = new Map<string, number>();
  /** Findings about the template's policies, worth saying at start-up (a grant that names no local table). */
  readonly warnings: string[] = [];

  constructor(
    model: LocalApiModel,
    private readonly options: IamEnforcerOptions,
  ) {
    const { accountId } = options;
    for (const fn of model.functions.values()) {
      const role = fn.role ? model.roles.get(fn.role) : undefined;
      const roleName = role?.name ?? (fn.role ? fn.role.replace(/^.*:role\/(?:.*\/)?/, '') : 'no-role');
      const principal = `arn:aws:sts::${accountId}:assumed-role/${roleName}/${fn.logicalId}`;
      if (!role) {
        this.roles.set(fn.logicalId, {
          principal,
          statements: [],
          unknownAllows: [fn.role ? `the role ${fn.role}` : 'no role'],
          unknownLimits: [],
          cache: new Map(),
        });
        this.warnings.push(`${fn.logicalId}: its role ${fn.role ?? '(none)'} is not in the template, so every call it makes to DynamoDB or the Lambda API is refused`);
        continue;
      }
      const statements = role.policies
        .flatMap((p) => statementsOf(p.name, p.document))
        .map((x) => compileStatement({ ...x, statement: functionNamesAsArns(x.statement, model) }));
      this.roles.set(fn.logicalId, {
        principal,
        statements,
        unknownAllows: role.externalManagedPolicies,
        unknownLimits: role.permissionsBoundary ? [`the permissions boundary ${role.permissionsBoundary} of role ${role.name}`] : [],
        cache: new Map(),
      });
      for (const s of statements) if (s.problem) this.warnings.push(`${fn.logicalId}: ${s.name}: cannot be evaluated (${s.problem}); calls it could decide are refused`);
    }
    this.lintResources(model);
  }

  /** The principal a function's calls are made as, for messages. */
  principalOf(functionId: string): string {
    return this.roles.get(functionId)?.principal ?? `arn:aws:sts::${this.options.accountId}:assumed-role/unknown/${functionId}`;
  }

  /** Whether the function's role allows this call, asked at start-up: nothing is counted or reported. */
  allows(functionId: string, request: AccessRequest): boolean {
    const role = this.roles.get(functionId);
    return role !== undefined && this.decision(role, request).effect === 'allow';
  }

  /** The role's decision on a call (the statements that match its action and resource cached per role). */
  private decision(role: FunctionRole, request: AccessRequest): Decision {
    const key = `${request.action}\u0000${request.resource}`;
    let found = role.cache.get(key);
    if (!found) {
      if (role.cache.size >= CACHE_LIMIT) role.cache.clear();
      found = candidates(role.statements, request.action, request.resource);
      role.cache.set(key, found);
    }
    return decide(found, request.context, { unknownAllows: role.unknownAllows, unknownLimits: role.unknownLimits });
  }

  /** Whether the function may make this call; a refusal is counted and reported before it is returned. */
  authorize(functionId: string, request: AccessRequest & { readonly unsupported?: string }): { readonly ok: true } | { readonly ok: false; readonly refusal: IamRefusal } {
    const role = this.roles.get(functionId);
    let decision: Decision;
    if (!role) decision = { effect: 'unsupported', reason: `the function ${functionId}, which is not in the template` };
    else if (request.unsupported) decision = { effect: 'unsupported', reason: request.unsupported };
    else decision = this.decision(role, request);
    if (decision.effect === 'allow') return { ok: true };
    const principal = this.principalOf(functionId);
    const { action, resource } = request;
    const head = `User: ${principal} is not authorized to perform: ${action} on resource: ${resource}`;
    const message =
      decision.effect === 'explicit-deny'
        ? `${head} with an explicit deny in an identity-based policy`
        : decision.effect === 'implicit-deny'
          ? `${head} because no identity-based policy allows the ${action} action`
          : `${head} because the local runner cannot evaluate ${decision.reason}, and refuses what it cannot evaluate (npm start -- --no-iam turns these checks off)`;
    const refusal: IamRefusal = {
      functionId,
      principal,
      action,
      resource,
      effect: decision.effect,
      ...(decision.effect === 'explicit-deny' ? { detail: decision.statement } : decision.effect === 'unsupported' ? { detail: decision.reason } : {}),
      message,
    };
    this.refused.push(refusal);
    if (this.refused.length > REFUSALS_KEPT) this.refused.splice(0, this.refused.length - REFUSALS_KEPT);
    this.refusedTotal++;
    const pair = `${functionId} ${action}`;
    const counted = this.refusedBy.has(pair) || this.refusedBy.size < COUNTED_PAIRS ? pair : OTHER_PAIRS;
    this.refusedBy.set(counted, (this.refusedBy.get(counted) ?? 0) + 1);
    this.options.onRefusal?.(refusal);
    return { ok: false, refusal };
  }

  /** The newest refusals (all of them, up to REFUSALS_KEPT), oldest first. */
  refusals(): readonly IamRefusal[] {
    return [...this.refused];
  }

  /** How many calls were refused so far, including those no longer kept by `refusals()`. */
  refusalCount(): number {
    return this.refusedTotal;
  }

  /** One line: how many calls were refused, by function and action (for the runner's summary). */
  summary(): string {
    const total = this.refusedTotal;
    if (total === 0) return 'IAM: no call was refused';
    const parts = [...this.refusedBy].map(([k, n]) => `${k} ×${n}`);
    return `IAM: ${total} call${total === 1 ? '' : 's'} refused (${parts.join(', ')})`;
  }

  /**
   * A grant whose ARN names a table or function the template does not have (a typo in a hand-written
   * ARN) allows nothing here, as on AWS: said once at start-up, so it is found before a call fails.
   */
  private lintResources(model: LocalApiModel): void {
    const { region, accountId } = this.options;
    const tables = new Set(model.tables.map((t) => t.tableName));
    const functions = new Set(model.functions.keys());
    const local = (r: string, a: string) => (r === region || r === '*') && (a === accountId || a === '*');
    const seen = new Set<string>();
    const used = new Set([...model.functions.values()].map((f) => f.role));
    for (const role of model.roles.values()) {
      if (!used.has(role.logicalId)) continue;
      for (const policy of role.policies) {
        for (const { statement, index } of statementsOf(policy.name, policy.document)) {
          const s = (statement ?? {}) as Record<string, unknown>;
          if (s['Effect'] !== 'Allow') continue;
          for (const resource of ([] as unknown[]).concat(s['Resource'] ?? [])) {
            if (typeof resource !== 'string' || seen.has(resource)) continue;
            seen.add(resource);
            const table = /^arn:aws:dynamodb:([^:]*):([^:]*):table\/([^/*?]+)(?:\/|$)/.exec(resource);
            if (table && local(table[1]!, table[2]!) && !tables.has(table[3]!)) {
              this.warnings.push(`${policy.name} statement ${index + 1} (role ${role.name}): ${resource} names no table of the template; it allows nothing (a typo?)`);
            }
            const fn = /^arn:aws:lambda:([^:]*):([^:]*):function:([^:*?]+)(?::[^:]*)?$/.exec(resource);
            if (fn && local(fn[1]!, fn[2]!) && !functions.has(fn[3]!)) {
              this.warnings.push(`${policy.name} statement ${index + 1} (role ${role.name}): ${resource} names no function the runner runs; it allows nothing here (a typo?)`);
            }
          }
        }
      }
    }
  }
}

/**
 * A function's name resolves locally to `local-<logical id>` (its Ref) but its ARN ends with the logical id
 * (its GetAtt): on AWS both name the same function, so a statement's ARNs built from the Ref are read as
 * the ARN the Lambda API checks.
 */
function functionNamesAsArns(statement: unknown, model: LocalApiModel): unknown {
  if (!statement || typeof statement !== 'object') return statement;
  const fix = (value: unknown): unknown =>
    typeof value === 'string'
      ? value.replace(/(:function:)local-([^:]+)/, (whole, prefix: string, id: string) => (model.functions.has(id) ? `${prefix}${id}` : whole))
      : Array.isArray(value)
        ? value.map(fix)
        : value;
  const s = statement as Record<string, unknown>;
  return { ...s, ...('Resource' in s ? { Resource: fix(s['Resource']) } : {}), ...('NotResource' in s ? { NotResource: fix(s['NotResource']) } : {}) };
}
