/**
 * Resolving a step's `$.` references at run time, within the limits that keep one tenant from hurting
 * the others and every execution storable (API.md §4 "Workflows"): a DynamoDB item holds 400 KB and
 * nests 32 levels; a function has 512 MB. References share objects, so a few steps that each reference
 * the previous output twice double it every step: resolution measures as it goes and stops as soon as
 * a resolved value passes its limit, before it is built, copied or stored.
 */

/** A run's `input` (else 400). */
export const MAX_RUN_INPUT_BYTES = 128 * 1024;
/** A step's resolved input, and a step's output (else the step fails). */
export const MAX_STEP_VALUE_BYTES = 256 * 1024;
/** An execution's `output` (else the execution fails). */
export const MAX_EXECUTION_OUTPUT_BYTES = 128 * 1024;
/**
 * JSON nesting a body may have (API.md §4); the values a run stores sit one level below the body (as
 * `input`, `output`), so a stored value may nest one level less and stays within DynamoDB's 32.
 */
export const MAX_BODY_DEPTH = 32;
export const MAX_VALUE_DEPTH = MAX_BODY_DEPTH - 1;

export const kib = (bytes: number) => `${bytes / 1024} KB`;

/** A value passed a limit; `message` names the limit and is what the failed execution records. */
export class ValueLimitExceeded extends Error {
  override readonly name = 'ValueLimitExceeded';
}

/** How deep a JSON value nests: 0 for a scalar, 1 for `[]` or `{}`, … Iterative: any depth is safe. */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth]);
  }
  return max;
}

/**
 * Whether DynamoDB can hold a number: 0, or a magnitude from 1e-130 up to (not including) 1e126. JSON
 * allows more (a double reaches 1.8e308); past that range a write is refused (a 500 if not caught first).
 */
export function isStorableNumber(n: number): boolean {
  const magnitude = Math.abs(n);
  return magnitude === 0 || (magnitude >= 1e-130 && magnitude < 1e126);
}

export const UNSTORABLE_NUMBER = 'holds a number outside the range this API accepts (magnitudes from 1e-130 to 9.99e125, or 0: what DynamoDB can store)';
/** DynamoDB refuses an empty attribute name, at any depth (`{"": 1}` is JSON, but not an item). */
export const EMPTY_MEMBER_NAME = 'has a member whose name is empty (""), which this API cannot store: give it a name';

/** What is wrong with a value DynamoDB cannot hold (`name`: a member name), or undefined. */
export const unstorable = (v: unknown, name: boolean): string | undefined => (name ? (v === '' ? EMPTY_MEMBER_NAME : undefined) : unstorableNumber(v));

/**
 * The first place in a JSON value where `problemOf` finds something wrong with a value (`name` false) or
 * a member name (`name` true), with what it said; `path` holds the member names and array indexes down
 * to it (for a member name, to the object that has it). Iterative: any depth is safe.
 */
export function firstProblem(
  value: unknown,
  problemOf: (v: unknown, name: boolean) => string | undefined,
): { readonly path: readonly string[]; readonly problem: string } | undefined {
  const stack: [unknown, string[]][] = [[value, []]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    const problem = problemOf(v, false);
    if (problem !== undefined) return { path, problem };
    if (Array.isArray(v)) {
      v.forEach((child, i) => stack.push([child, [...path, String(i)]]));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const named = problemOf(k, true);
        if (named !== undefined) return { path, problem: named };
        stack.push([child, [...path, k]]);
      }
    }
  }
  return undefined;
}

/** What is wrong with a number DynamoDB cannot hold, or undefined for any other value. */
export const unstorableNumber = (v: unknown): string | undefined => (typeof v === 'number' && !isStorableNumber(v) ? UNSTORABLE_NUMBER : undefined);

/** The UTF-8 size of a value as JSON (`undefined` counts as `null`). */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');
}

/**
 * Throws ValueLimitExceeded when `value` is larger than `maxBytes` as JSON, nests deeper than the
 * stored values may, or holds a number DynamoDB cannot; `what` starts the message (`step 'a': its output`).
 */
export function assertStorable(value: unknown, maxBytes: number, what: string): void {
  const bytes = jsonBytes(value);
  if (bytes > maxBytes) throw new ValueLimitExceeded(`${what} is ${bytes} bytes, over the limit of ${kib(maxBytes)}`);
  if (jsonDepth(value) > MAX_VALUE_DEPTH) {
    throw new ValueLimitExceeded(`${what} nests deeper than the limit of ${MAX_VALUE_DEPTH} levels`);
  }
  const found = firstProblem(value, unstorable);
  if (found !== undefined) throw new ValueLimitExceeded(`${what} ${found.problem}, at ${['$', ...found.path].join('.')}`);
}

export interface Scope {
  readonly input: unknown;
  readonly steps: Record<string, { output: unknown }>;
}

/**
 * The value a reference points at in the run's scope, or undefined when that path holds nothing. Only
 * own properties: `$.steps.__proto__` or `$.input.constructor` must not reach JavaScript's internals.
 */
function lookup(scope: Scope, ref: string): unknown {
  let value: unknown = scope;
  for (const part of ref.slice(2).split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * Replaces every `$.` string in `template` by what it references (`null` where the path holds nothing).
 * The result is measured while it is built, its JSON size and nesting, without copying what references
 * share: each referenced object is measured once (by identity), so the work stays proportional to the
 * limit whatever the template does. Past `maxBytes` or the nesting limit it throws ValueLimitExceeded
 * (`what` starts the message); without `maxBytes` it only resolves.
 */
export function resolveReferences(template: unknown, scope: Scope, maxBytes = Infinity, what = 'the value'): unknown {
  const sizes = new WeakMap<object, { bytes: number; depth: number }>();
  let total = 0;
  const charge = (bytes: number, depth: number) => {
    total += bytes;
    if (total > maxBytes) throw new ValueLimitExceeded(`${what} is over the limit of ${kib(maxBytes)}`);
    if (depth > MAX_VALUE_DEPTH) throw new ValueLimitExceeded(`${what} nests deeper than the limit of ${MAX_VALUE_DEPTH} levels`);
  };
  const measure = (value: unknown): { bytes: number; depth: number } => {
    if (value === null || typeof value !== 'object') return { bytes: jsonBytes(value), depth: 0 };
    let size = sizes.get(value);
    if (!size) {
      size = { bytes: jsonBytes(value), depth: jsonDepth(value) };
      sizes.set(value, size);
    }
    return size;
  };
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') {
      if (!value.startsWith('$.')) {
        charge(jsonBytes(value), depth);
        return value;
      }
      const resolved = lookup(scope, value) ?? null;
      const size = measure(resolved);
      charge(size.bytes, depth + size.depth);
      return resolved;
    }
    if (Array.isArray(value)) {
      charge(2 + Math.max(0, value.length - 1), depth + 1); // [ ] and the commas
      return value.map((v) => walk(v, depth + 1));
    }
    if (value && typeof value === 'object') {
      const entries = Object.entries(value);
      charge(2 + Math.max(0, entries.length - 1), depth + 1); // { } and the commas
      return Object.fromEntries(
        entries.map(([k, v]) => {
          charge(jsonBytes(k) + 1, depth + 1); // "key":
          return [k, walk(v, depth + 1)];
        }),
      );
    }
    charge(jsonBytes(value), depth);
    return value;
  };
  return walk(template, 0);
}
