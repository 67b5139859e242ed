/**
 * Property-based tests (fast-check) of the pure parts every request leans on: key parsing and its
 * checksum, capability and workspace matching, and `$.` reference resolution.
 */
/* eslint-disable jest/no-conditional-expect -- a property's expectation depends on the generated case */
import fc from 'fast-check';
import { checksum, CHECKSUM_LENGTH, generateApiKey, parseApiKey, RANDOM_LENGTH } from '../lambdas/shared/api-key.js';
import { covers, firstUncovered, FIXED_CAPABILITIES, isCapability, workspaceAllowed, workspacesCover } from '../lambdas/shared/capabilities.js';
import { resolveReferences } from '../lambdas/shared/references.js';
import { referenceProblem } from '../lambdas/shared/workflow-definition.js';

const BASE62 = [...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'];
const base62 = (min: number, max: number) => fc.array(fc.constantFrom(...BASE62), { minLength: min, maxLength: max }).map((a) => a.join(''));
const environment = fc.constantFrom('live' as const, 'test' as const);
const prefix = fc.stringMatching(/^[a-z][a-z0-9]{1,15}$/);

describe('API keys', () => {
  it('every generated key parses, with its environment, under its own prefix only', () => {
    fc.assert(
      fc.property(prefix, prefix, environment, (mine, other, env) => {
        const key = generateApiKey(mine, env);
        expect(parseApiKey(key, mine)).toEqual({ environment: env });
        if (other !== mine) expect(parseApiKey(key, other)).toBeUndefined();
      }),
    );
  });

  it('any one-character change of a key is refused (CRC32 catches every single-character error)', () => {
    fc.assert(
      fc.property(environment, fc.nat(), fc.constantFrom(...BASE62), (env, at, replacement) => {
        const key = generateApiKey('knouds', env);
        const i = `knouds_${env}_`.length + (at % (key.length - `knouds_${env}_`.length));
        fc.pre(key[i] !== replacement);
        const typo = key.slice(0, i) + replacement + key.slice(i + 1);
        expect(parseApiKey(typo, 'knouds')).toBeUndefined();
      }),
    );
  });

  it('a swap of two adjacent different characters is refused', () => {
    fc.assert(
      fc.property(environment, fc.nat(), (env, at) => {
        const key = generateApiKey('knouds', env);
        const start = `knouds_${env}_`.length;
        const i = start + (at % (key.length - start - 1));
        fc.pre(key[i] !== key[i + 1]);
        const swapped = key.slice(0, i) + key[i + 1]! + key[i]! + key.slice(i + 2);
        expect(parseApiKey(swapped, 'knouds')).toBeUndefined();
      }),
    );
  });

  it('arbitrary strings parse only when they are well formed with a matching checksum', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), base62(0, 80).map((b) => `knouds_live_${b}`)), (text) => {
        const parsed = parseApiKey(text, 'knouds');
        if (parsed) {
          const body = text.slice('knouds_live_'.length);
          expect(body.length).toBeGreaterThanOrEqual(RANDOM_LENGTH + CHECKSUM_LENGTH);
          expect(text.slice(-CHECKSUM_LENGTH)).toBe(checksum(text.slice(0, -CHECKSUM_LENGTH)));
        }
      }),
    );
    // A body with a correct checksum does parse: the property above is not vacuous.
    const head = `knouds_live_${'a'.repeat(RANDOM_LENGTH)}`;
    expect(parseApiKey(head + checksum(head), 'knouds')).toEqual({ environment: 'live' });
  });
});

const slug = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/);
const capability = fc.oneof(
  fc.constantFrom(...FIXED_CAPABILITIES),
  slug.map((s) => `workflow:${s}:run`),
  slug.map((s) => `model:${s}:run`),
);
const capabilities = fc.uniqueArray(capability, { maxLength: 8 });

describe('capabilities', () => {
  it('generated capabilities are valid, and a set covers each of its members', () => {
    fc.assert(
      fc.property(capabilities, (held) => {
        for (const c of held) {
          expect(isCapability(c)).toBe(true);
          expect(covers(held, c)).toBe(true);
        }
        expect(firstUncovered(held, held)).toBeUndefined();
      }),
    );
  });

  it('coverage is exactly membership, or the parent workflow:run / model:run for a scoped run', () => {
    fc.assert(
      fc.property(capabilities, capability, (held, wanted) => {
        const parent = /^workflow:.+:run$/.test(wanted) ? 'workflow:run' : /^model:.+:run$/.test(wanted) ? 'model:run' : undefined;
        expect(covers(held, wanted)).toBe(held.includes(wanted) || (parent !== undefined && held.includes(parent)));
      }),
    );
  });

  it('nothing implies anything else: no scoped capability covers the general one, and no other capability covers a fixed one', () => {
    fc.assert(
      fc.property(capabilities, fc.constantFrom(...FIXED_CAPABILITIES), (held, fixed) => {
        fc.pre(!held.includes(fixed));
        expect(covers(held, fixed)).toBe(false);
      }),
    );
  });

  it('firstUncovered finds the first wanted capability not covered, in order', () => {
    fc.assert(
      fc.property(capabilities, capabilities, (held, wanted) => {
        expect(firstUncovered(held, wanted)).toBe(wanted.find((c) => !covers(held, c)));
      }),
    );
  });

  it('strings that are not capabilities are refused, however close', () => {
    // Near misses: a valid capability with one character changed, dropped or added, and random strings.
    const nearMiss = fc
      .tuple(capability, fc.nat(), fc.constantFrom('drop', 'change', 'add'), fc.constantFrom(...'abz:-_*0R '))
      .map(([c, at, how, ch]) => {
        const i = at % c.length;
        return how === 'drop' ? c.slice(0, i) + c.slice(i + 1) : how === 'change' ? c.slice(0, i) + ch + c.slice(i + 1) : c.slice(0, i) + ch + c.slice(i);
      });
    fc.assert(
      fc.property(fc.oneof(nearMiss, fc.string({ maxLength: 40 })), (text) => {
        const valid = (FIXED_CAPABILITIES as readonly string[]).includes(text) || /^(workflow|model):[a-z0-9][a-z0-9-]{0,62}:run$/.test(text);
        expect(isCapability(text)).toBe(valid);
      }),
    );
  });
});

const workspace = fc.stringMatching(/^[a-z0-9-]{1,8}$/);
const workspaces: fc.Arbitrary<string[]> = fc.oneof(fc.constant<string[]>(['*']), fc.uniqueArray(workspace, { minLength: 1, maxLength: 5 }));

describe('workspaces', () => {
  it('`*` covers everything; otherwise wanted must be a subset and never `*`', () => {
    fc.assert(
      fc.property(workspaces, workspaces, (held, wanted) => {
        const uncovered = workspacesCover(held, wanted);
        if (held.includes('*')) expect(uncovered).toBeUndefined();
        else expect(uncovered).toBe(wanted.find((w) => w === '*' || !held.includes(w)));
      }),
    );
  });

  it('a workspace is allowed exactly when held or `*` is held', () => {
    fc.assert(
      fc.property(workspaces, workspace, (held, id) => {
        expect(workspaceAllowed(held, id)).toBe(held.includes('*') || held.includes(id));
      }),
    );
  });
});

/** Null, a boolean, a finite number, a string, or arrays and plain objects of those: nothing else. */
function isJsonValue(v: unknown): boolean {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(isJsonValue);
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v).every(isJsonValue);
  return false;
}

describe('$. references', () => {
  const json = fc.jsonValue({ maxDepth: 4 });
  // Scopes as the runs build them from stored JSON: plain objects (fast-check 4 also makes null-prototype ones).
  const scope = fc.record(
    {
      input: json,
      steps: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), fc.record({ output: json }, { noNullPrototype: true }), { maxKeys: 4, noNullPrototype: true }),
    },
    { noNullPrototype: true },
  );

  // Templates as workflow steps write them: JSON with `$.` references mixed in at any depth.
  const reference = fc.oneof(
    fc.array(fc.stringMatching(/^[a-z]{1,5}$/), { maxLength: 3 }).map((p) => ['$', 'input', ...p].join('.')),
    fc.tuple(fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), fc.constantFrom('', '.output', '.output.x')).map(([id, rest]) => `$.steps.${id}${rest}`),
  );
  const template = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, json, reference, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), tie('value'), { maxKeys: 3, noNullPrototype: true })),
  })).value;

  it('a resolved value is JSON: every `$.` string becomes a value of the scope or null, nothing else changes', () => {
    let withReferences = 0;
    fc.assert(
      fc.property(scope, template, (s, template) => {
        const out = resolveReferences(template, s);
        expect(isJsonValue(out)).toBe(true);
        if (JSON.stringify(template).includes('"$.')) withReferences++;
        if (typeof template === 'string' && !template.startsWith('$.')) expect(out).toBe(template);
        if (typeof template === 'number' || typeof template === 'boolean' || template === null) expect(out).toBe(template);
      }),
    );
    // The templates did hold references (the property is not about plain JSON only).
    expect(withReferences).toBeGreaterThan(20);
  });

  it('a reference to a path that exists yields that value; an unknown one yields null', () => {
    fc.assert(
      fc.property(scope, fc.array(fc.stringMatching(/^[a-z]{1,5}$/), { maxLength: 3 }), (s, path) => {
        const ref = ['$', 'input', ...path].join('.');
        let expected: unknown = s.input;
        for (const p of path) {
          expected = expected !== null && typeof expected === 'object' && Object.hasOwn(expected, p) ? (expected as Record<string, unknown>)[p] : undefined;
        }
        expect(resolveReferences(ref, s)).toEqual(expected ?? null);
        for (const [id, step] of Object.entries(s.steps)) expect(resolveReferences(`$.steps.${id}.output`, s)).toEqual(step.output);
      }),
    );
  });

  it('never reaches past the scope’s own data (prototype and inherited names yield null)', () => {
    fc.assert(
      fc.property(scope, fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', 'length'), (s, name) => {
        expect(resolveReferences(`$.input.${name}`, s)).toEqual(
          s.input !== null && typeof s.input === 'object' && Object.hasOwn(s.input, name) ? (s.input as Record<string, unknown>)[name] : null,
        );
        expect(resolveReferences(`$.steps.${name}`, s)).toEqual(Object.hasOwn(s.steps, name) ? s.steps[name] : null);
      }),
    );
  });

  it('referenceProblem accepts $.input… and earlier steps, and names everything else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), fc.uniqueArray(fc.stringMatching(/^[a-z]{1,4}$/), { maxLength: 3 }), (tail, earlier) => {
        const ref = `$.${tail}`;
        const problem = referenceProblem(ref, new Set(earlier));
        const parts = tail.split('.');
        const ok =
          !parts.includes('') &&
          (parts[0] === 'input' ||
            (parts[0] === 'steps' && (parts[1] === undefined || (earlier.includes(parts[1]) && (parts.length <= 2 || parts[2] === 'output')))));
        expect(problem === undefined).toBe(ok);
      }),
    );
  });
});
