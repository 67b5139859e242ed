/**
 * Evaluates identity-based IAM policies as AWS does for a role session in its own account: an explicit
 * `Deny` wins, then any `Allow`, else the call is implicitly denied. `Action`/`NotAction` match without
 * case, `Resource`/`NotResource` with it, both with the `*` and `?` wildcards; `Condition` blocks are
 * ANDed, their keys ANDed, a key's values ORed, with the `ForAllValues:`/`ForAnyValue:` set operators and
 * the `…IfExists` suffix.
 *
 * What it cannot decide it never allows: a condition operator or key it does not know, a policy variable
 * (`${aws:username}`), a value the template could not resolve locally, a policy whose statements are not
 * in the template (an AWS managed policy, a permissions boundary). Such a call is refused with a reason
 * naming the thing, unless a statement it can evaluate allows it (and no Deny it cannot evaluate matches).
 */

/** A condition key's values in one request: `undefined` when the request has no such key. */
export type ContextValues = readonly string[] | undefined;

/**
 * What the caller knows of a request's condition keys (lower-case names). A key it lists is present (its
 * values) or known absent (`undefined`); a key it does not list is one it cannot compute, so a condition
 * on it cannot be evaluated.
 */
export type RequestContext = ReadonlyMap<string, ContextValues>;

export interface AccessRequest {
  /** e.g. `dynamodb:PutItem` */
  readonly action: string;
  /** The resource's ARN, or `*` for actions without one. */
  readonly resource: string;
  readonly context: RequestContext;
}

/** A statement with where it came from, for messages. */
export interface SourcedStatement {
  readonly policy: string;
  readonly index: number;
  readonly statement: unknown;
}

export type Decision =
  | { readonly effect: 'allow' }
  | { readonly effect: 'implicit-deny' }
  | { readonly effect: 'explicit-deny'; readonly statement: string }
  /** Not allowed because something that could decide it cannot be evaluated here; `reason` names it. */
  | { readonly effect: 'unsupported'; readonly reason: string };

/** Multivalued condition keys (a request may carry several values): they need a set operator. */
const MULTIVALUED = new Set(['dynamodb:leadingkeys', 'dynamodb:attributes']);

type Tri = true | false | { readonly unsupported: string };
const isUnsupported = (t: Tri): t is { readonly unsupported: string } => typeof t === 'object';

/** `*` and `?` as IAM reads them, everything else literal. */
function globToRegExp(pattern: string, ignoreCase: boolean): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, ignoreCase ? 'is' : 's');
}

const asList = (value: unknown): unknown[] | undefined =>
  value === undefined ? undefined : Array.isArray(value) ? value : [value];

const POLICY_VARIABLE = /\$\{[^}]*\}/;

interface Matcher {
  /** undefined: the pattern cannot be used (why, in `problem`). */
  readonly test: (value: string) => boolean;
  readonly problem?: string;
}

function matcher(patterns: unknown[], ignoreCase: boolean, what: string): Matcher {
  const regexps: RegExp[] = [];
  for (const p of patterns) {
    if (typeof p !== 'string') return { test: () => false, problem: `a ${what} that has no local value (${JSON.stringify(p).slice(0, 120)})` };
    if (POLICY_VARIABLE.test(p)) return { test: () => false, problem: `the policy variable ${POLICY_VARIABLE.exec(p)![0]} in ${what} ${p}` };
    regexps.push(globToRegExp(p, ignoreCase));
  }
  return { test: (value) => regexps.some((r) => r.test(value)) };
}

type Operator = 'StringEquals' | 'StringNotEquals' | 'StringEqualsIgnoreCase' | 'StringNotEqualsIgnoreCase' | 'StringLike' | 'StringNotLike' | 'Null';
const OPERATORS = new Set<string>(['StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike', 'Null']);
const NEGATED = new Set<string>(['StringNotEquals', 'StringNotEqualsIgnoreCase', 'StringNotLike']);

interface ConditionTest {
  readonly text: string;
  readonly key: string;
  evaluate(context: RequestContext): Tri;
}

/** One `"<operator>": {"<key>": <values>}` entry, compiled. */
function compileCondition(operatorText: string, key: string, rawValues: unknown): ConditionTest {
  const text = `${operatorText} ${key}`;
  const unsupported = (why: string): ConditionTest => ({ text, key, evaluate: () => ({ unsupported: why }) });
  const m = /^(ForAllValues:|ForAnyValue:)?([A-Za-z]+?)(IfExists)?$/.exec(operatorText);
  const base = m?.[2];
  if (!m || !base || !OPERATORS.has(base)) return unsupported(`the condition operator ${operatorText}`);
  const set = m[1]?.slice(0, -1) as 'ForAllValues' | 'ForAnyValue' | undefined;
  const ifExists = m[3] !== undefined;
  const op = base as Operator;
  const lowerKey = key.toLowerCase();
  const values = (asList(rawValues) ?? []).map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
  const variable = values.find((v) => POLICY_VARIABLE.test(v));
  if (variable !== undefined) return unsupported(`the policy variable ${POLICY_VARIABLE.exec(variable)![0]} in condition ${text}`);
  if (op === 'Null') {
    if (set || ifExists) return unsupported(`the condition operator ${operatorText}`);
    return {
      text,
      key,
      evaluate: (context) => {
        if (!context.has(lowerKey)) return { unsupported: `the condition key ${key}` };
        const present = context.get(lowerKey) !== undefined;
        // "true": the key must be absent; "false": present. Several values are ORed.
        return values.some((v) => (v.toLowerCase() === 'true' ? !present : present));
      },
    };
  }
  if (MULTIVALUED.has(lowerKey) && !set) return unsupported(`${operatorText} on the multivalued key ${key} (it needs ForAllValues: or ForAnyValue:)`);
  const ignoreCase = op.endsWith('IgnoreCase');
  const like = op === 'StringLike' || op === 'StringNotLike';
  const compiled = like ? values.map((v) => globToRegExp(v, false)) : undefined;
  const folded = ignoreCase ? values.map((v) => v.toLowerCase()) : values;
  const matchesAny = (requestValue: string): boolean =>
    compiled ? compiled.some((r) => r.test(requestValue)) : folded.includes(ignoreCase ? requestValue.toLowerCase() : requestValue);
  const negated = NEGATED.has(op);
  const one = (requestValue: string) => (negated ? !matchesAny(requestValue) : matchesAny(requestValue));
  return {
    text,
    key,
    evaluate: (context) => {
      if (!context.has(lowerKey)) return { unsupported: `the condition key ${key}` };
      const requestValues = context.get(lowerKey);
      if (set === 'ForAllValues') return (requestValues ?? []).every(one);
      if (set === 'ForAnyValue') return requestValues === undefined ? ifExists : requestValues.some(one);
      // A single-valued key: absent matches only `…IfExists` and the negated operators.
      if (requestValues === undefined || requestValues.length === 0) return ifExists || negated;
      return requestValues.every(one);
    },
  };
}

/** A statement compiled once: its effect, what it matches, and its conditions. */
export interface CompiledStatement {
  readonly effect: 'Allow' | 'Deny';
  readonly name: string;
  /** Why the statement cannot be used at all (a malformed one), if so. */
  readonly problem?: string;
  matchesAction(action: string): boolean;
  /** true, false, or why it cannot be told (a resource with no local value). */
  matchesResource(resource: string): Tri;
  readonly conditions: readonly ConditionTest[];
}

export function compileStatement({ policy, index, statement }: SourcedStatement): CompiledStatement {
  const s = (statement ?? {}) as Record<string, unknown>;
  const sid = typeof s['Sid'] === 'string' && s['Sid'] ? ` (${s['Sid']})` : '';
  const name = `${policy} statement ${index + 1}${sid}`;
  const effect = s['Effect'] === 'Deny' ? 'Deny' : 'Allow';
  const broken = (problem: string): CompiledStatement => ({
    effect,
    name,
    problem,
    matchesAction: () => false,
    matchesResource: () => false,
    conditions: [],
  });
  if (s['Effect'] !== 'Allow' && s['Effect'] !== 'Deny') return broken(`its Effect ${JSON.stringify(s['Effect'])}`);
  const actions = asList(s['Action']);
  const notActions = asList(s['NotAction']);
  if ((actions === undefined) === (notActions === undefined)) return broken('it has not exactly one of Action and NotAction');
  const resources = asList(s['Resource']);
  const notResources = asList(s['NotResource']);
  if ((resources === undefined) === (notResources === undefined)) return broken('it has not exactly one of Resource and NotResource');
  const action = matcher((actions ?? notActions)!, true, actions ? 'Action' : 'NotAction');
  const resource = matcher((resources ?? notResources)!, false, resources ? 'Resource' : 'NotResource');
  const conditions: ConditionTest[] = [];
  const block = s['Condition'];
  if (block !== undefined) {
    if (!block || typeof block !== 'object') return broken('its Condition is not an object');
    for (const [operator, keys] of Object.entries(block as Record<string, unknown>)) {
      if (!keys || typeof keys !== 'object') return broken(`its condition ${operator} is not an object`);
      for (const [key, values] of Object.entries(keys as Record<string, unknown>)) conditions.push(compileCondition(operator, key, values));
    }
  }
  return {
    effect,
    name,
    ...(action.problem ? { problem: action.problem } : {}),
    matchesAction: (a) => (action.problem ? false : actions ? action.test(a) : !action.test(a)),
    matchesResource: (r) => (resource.problem ? { unsupported: resource.problem } : resources ? resource.test(r) : !resource.test(r)),
    conditions,
  };
}

/** The statements of one action on one resource, found once (the cached part of a decision). */
export interface Candidates {
  /** Statements whose action and resource match, with their conditions still to evaluate. */
  readonly statements: readonly CompiledStatement[];
  /** Statements that might match but cannot be told (why). */
  readonly undecidable: readonly { readonly statement: CompiledStatement; readonly reason: string }[];
  /** Whether the decision depends on the request's condition keys. */
  readonly conditional: boolean;
}

export function candidates(statements: readonly CompiledStatement[], action: string, resource: string): Candidates {
  const matching: CompiledStatement[] = [];
  const undecidable: { statement: CompiledStatement; reason: string }[] = [];
  for (const statement of statements) {
    if (statement.problem) {
      // A malformed statement could be about anything: it matters only if it could deny or allow this call.
      undecidable.push({ statement, reason: `${statement.name}: ${statement.problem}` });
      continue;
    }
    if (!statement.matchesAction(action)) continue;
    const r = statement.matchesResource(resource);
    if (isUnsupported(r)) undecidable.push({ statement, reason: `${statement.name}: ${r.unsupported}` });
    else if (r) matching.push(statement);
  }
  return { statements: matching, undecidable, conditional: matching.some((s) => s.conditions.length > 0) };
}

export interface EvaluationLimits {
  /** Policies that may allow more, whose statements are unknown here (AWS managed policies). */
  readonly unknownAllows?: readonly string[];
  /** What may deny although the statements allow (a permissions boundary not evaluated here). */
  readonly unknownLimits?: readonly string[];
}

export function decide(found: Candidates, context: RequestContext, limits: EvaluationLimits = {}): Decision {
  const results = found.statements.map((statement) => {
    let outcome: Tri = true;
    for (const condition of statement.conditions) {
      const r = condition.evaluate(context);
      if (r === false) return { statement, outcome: false as Tri };
      if (isUnsupported(r)) outcome = { unsupported: `${r.unsupported} (${statement.name})` };
    }
    return { statement, outcome };
  });
  const denied = results.find((r) => r.statement.effect === 'Deny' && r.outcome === true);
  if (denied) return { effect: 'explicit-deny', statement: denied.statement.name };
  const unknownDeny = results.find((r) => r.statement.effect === 'Deny' && isUnsupported(r.outcome));
  if (unknownDeny && isUnsupported(unknownDeny.outcome)) return { effect: 'unsupported', reason: unknownDeny.outcome.unsupported };
  const undecidableDeny = found.undecidable.find((u) => u.statement.effect === 'Deny');
  if (undecidableDeny) return { effect: 'unsupported', reason: undecidableDeny.reason };
  if (results.some((r) => r.statement.effect === 'Allow' && r.outcome === true)) {
    const limit = limits.unknownLimits?.[0];
    return limit ? { effect: 'unsupported', reason: limit } : { effect: 'allow' };
  }
  const unknownAllow = results.find((r) => r.statement.effect === 'Allow' && isUnsupported(r.outcome));
  if (unknownAllow && isUnsupported(unknownAllow.outcome)) return { effect: 'unsupported', reason: unknownAllow.outcome.unsupported };
  const undecidableAllow = found.undecidable.find((u) => u.statement.effect === 'Allow');
  if (undecidableAllow) return { effect: 'unsupported', reason: undecidableAllow.reason };
  const unknownPolicy = limits.unknownAllows?.[0];
  if (unknownPolicy) return { effect: 'unsupported', reason: `the managed policy ${unknownPolicy}, whose statements are not in the template` };
  return { effect: 'implicit-deny' };
}

/** The statements of a policy document, in order (a single statement object counts as a list of one). */
export function statementsOf(policy: string, document: unknown): SourcedStatement[] {
  const raw = (document as { Statement?: unknown } | undefined)?.Statement;
  const list = asList(raw) ?? [];
  return list.map((statement, index) => ({ policy, index, statement }));
}
