/**
 * The compiler of users' JSON Schemas (workflows' `input_schema`, models' input schemas): Ajv with RE2
 * for patterns. workflow-definition.ts loads this module on first use (loadUserSchemaCompiler), so a
 * cold start of the functions that hold it does not load Ajv's compiler and RE2 (about 280 KB).
 */
import { Ajv, type AnySchemaObject, type CodeOptions, type ErrorObject, type KeywordDefinition, type Options, type ValidateFunction } from 'ajv';
import { RE2JS } from 're2js';
import { CheckTooCostly, MAX_INPUT_PROBLEMS, SchemaTooComplex, UnsafePattern } from './workflow-definition.js';

/**
 * The RE2 instructions a schema's patterns may compile to, in all. What a compiled schema holds grows
 * with them (about 80 bytes each: the compiled-schema cache counts them), and so does the time to compile
 * (about 2.6 µs each): a repetition such as `.{1000}` counts a thousand times. At this bound a schema's
 * patterns hold about 20 MB and compile in under a second, and its compiled form fits the cache (whose
 * entries may be at most its 64 MiB), so it is compiled once, not on every run.
 */
export const MAX_PATTERN_INSTRUCTIONS = 250_000;

/**
 * What the states RE2's DFA caches while a schema's patterns match values may hold, in all, by re2js's own
 * account of them (which the heap's growth matched within 4 %: 20 patterns with exponentially many states,
 * matched against 100 KB each, held 155 MB when re2js's default of 8 MiB a pattern applied). Shared
 * equally by the schema's patterns, at most `MAX_DFA_BYTES_PER_PATTERN` each. A pattern whose DFA fills
 * its share starts its cache afresh, and one that would start it too often is matched without a DFA (RE2's
 * NFA: linear in the input times the program's size, which MAX_VALIDATION_WORK counts; the same answer).
 * The compiled-schema cache counts this bound, so a schema's patterns cannot grow what the cache holds
 * past what it counted.
 */
export const DFA_BYTES_PER_SCHEMA = 2 * 1024 * 1024;
export const MAX_DFA_BYTES_PER_PATTERN = 256 * 1024;

/**
 * Gives the pattern's DFA a budget of `bytes` (re2js's is 8 MiB, and its compile API takes none), when
 * re2js makes it: on the pattern's first match, not here (making it reads the whole program's character
 * classes: 200 patterns of `\p{L}{1000}` took 2.5 s more to save when it was made at once).
 */
function boundDfa(re2: RE2JS, bytes: number): void {
  type Dfa = { maxMem: number; stateBudget: number; memBudget: number };
  const input = (re2 as unknown as { re2Input?: object }).re2Input;
  const made = input && Object.getOwnPropertyDescriptor(Object.getPrototypeOf(input), 'dfa')?.get;
  // Fail closed: without the bound, one schema's patterns could hold hundreds of MB (see above).
  if (!input || !made) throw new Error('re2js no longer makes its DFA in re2Input.dfa: see DFA_BYTES_PER_SCHEMA');
  Object.defineProperty(input, 'dfa', {
    configurable: true,
    get(): Dfa {
      const dfa = made.call(this) as Dfa;
      if (typeof dfa.memBudget !== 'number' || typeof dfa.stateBudget !== 'number') {
        throw new Error('re2js no longer exposes its DFA budget (memBudget): see DFA_BYTES_PER_SCHEMA');
      }
      // Once, when it is made (re2js keeps it): set again, the budget would start over.
      if (dfa.maxMem !== bytes) dfa.maxMem = dfa.stateBudget = dfa.memBudget = bytes;
      return dfa;
    },
  });
}

const tooManyInstructions = () =>
  new SchemaTooComplex(
    `its patterns compile to more than ${MAX_PATTERN_INSTRUCTIONS} instructions of the linear-time engine (a repetition such as {1000} counts a thousand times): use fewer or shorter patterns`,
  );

/**
 * How Ajv runs every pattern of a user's schema (`pattern`, `patternProperties`, and the patterns
 * `additionalProperties` and `propertyNames` check through them): RE2, whose matching takes time linear
 * in the input, never JavaScript's backtracking engine. The pattern must be valid ECMAScript (as JSON
 * Schema says) and within what RE2 runs: backreferences and lookaround are refused, as is a program
 * RE2 finds too large. Differences left: RE2's `.` matches `\r`, `\u2028` and `\u2029`, and its `\s`
 * is ASCII whitespace only. `programs` learns the size of each pattern's RE2 program (its instructions):
 * what a compiled schema holds in memory grows with it (the compiled-schema cache counts it); `compiled`
 * learns every RE2 used, whose DFAs compileIsolated then bounds. `precompiled` holds the RE2 compileIsolated
 * already made of a pattern, to count its cost: it is used rather than compiled again.
 */
const linearRegExp = (programs: Map<string, number>, compiled: Set<RE2JS>, precompiled: ReadonlyMap<string, RE2JS | undefined>): NonNullable<CodeOptions['regExp']> => Object.assign(
  (pattern: string, flags: string) => {
    try {
      new RegExp(pattern, flags); // parses only: never matched against anything
    } catch (error) {
      throw new UnsafePattern(pattern, `not a valid regular expression (${(error as Error).message})`);
    }
    // Escape by escape, the way the translation below reads it: after the parse above, in Unicode
    // mode, `\1`–`\9` and `\k` can only be backreferences (which the translation would turn into
    // literals rather than refuse).
    for (let i = 0; i < pattern.length; i++) {
      if (pattern[i] !== '\\') continue;
      const next = pattern[++i] ?? '';
      if (/[1-9k]/.test(next)) throw new UnsafePattern(pattern, 'backreferences cannot run in linear time');
    }
    let re2: RE2JS;
    try {
      re2 = precompiled.get(pattern) ?? RE2JS.compile(RE2JS.translateRegExp(pattern));
    } catch (error) {
      throw new UnsafePattern(pattern, `RE2, the linear-time engine, cannot run it (${(error as Error).message})`);
    }
    // By pattern: Ajv asks again for each place a pattern recurs, and keeps the first.
    programs.set(pattern, re2.programSize());
    compiled.add(re2);
    const total = [...programs.values()].reduce((sum, n) => sum + n, 0);
    if (total > MAX_PATTERN_INSTRUCTIONS) throw tooManyInstructions();
    return { test: (s: string) => re2.test(s), toString: () => pattern };
  },
  // The name generated standalone code would call; Knouds never generates any.
  { code: 'linearRegExp' },
);

/**
 * Checks user schemas against the draft-07 meta-schema. Never compiles a user schema, so never holds
 * one: the only schemas it knows are its own meta-schemas, compiled once per instance (the ~25 ms a
 * fresh Ajv would spend on them for every schema).
 */
const metaSchemas = /* @__PURE__ */ new Ajv({ strict: false, logger: false });

/**
 * What each user schema is compiled with: an Ajv of its own (no `$id` or `$ref` target shared with
 * another schema; without meta-schemas, so nothing but the schema itself can be `$ref`erenced, and
 * nothing is loaded from anywhere), draft-07 keywords, no strict-mode surprises, no `$data` (a
 * pattern taken from the input), no formats (an unknown `format` is ignored, silently), every
 * `$ref` its own function (inlining copies the target at every `$ref`: a 15 KB schema made 26 MB of
 * code), and patterns on RE2 (linearRegExp, given by compileIsolated).
 */
const USER_SCHEMA_OPTIONS: Options = {
  allErrors: true,
  strict: false,
  meta: false,
  validateSchema: false,
  $data: false,
  logger: false,
  inlineRefs: false,
  allowMatchingProperties: true,
};

/**
 * The work one check of a value against a user's schema may take, in steps: each subschema applied to a
 * value is a step, plus the value's own size (an object's keys, an array's items, a string's length / 16,
 * which the keywords loop over), plus the size of its `const` and `enum` / 64 (compared with the value),
 * plus its `required` names and `dependencies` lists (each missing name is an error object), plus, for
 * `uniqueItems` on an array whose items' type is not declared a scalar, every pair of items (Ajv
 * compares them all), plus a pattern's matching: the string's length × its RE2 program's instructions /
 * 128 (RE2's NFA, when a DFA overflows its budget, costs both: 40 KB against a 20,000-instruction pattern
 * took 11.7 s), and for `patternProperties` each key against every pattern, the same way. The static bound on `$ref`s (MAX_SCHEMA_EXPANSION) is per value; this one is
 * for the whole input, which multiplies it: a 1 KB schema of a 7-way `anyOf` nested four deep, checked
 * against a 2 KB array of 1,000 zeros, took 48 s of CPU and 1.8 GB before it. Past the bound the check
 * stops at once, with a 400 saying so. Legitimate inputs stay far below: about one step per value and
 * per level of nesting, and a 256 KB body holds at most about 128,000 values.
 */
export const MAX_VALIDATION_WORK = 500_000;

/** The keyword added to every subschema a user's schema compiles to; its value is the subschema's own cost. */
const WORK_KEYWORD = 'x-knouds-work';
let work = 0;
let workLimit = Number.POSITIVE_INFINITY;

/** Whether Ajv checks `uniqueItems` by value (linear) rather than comparing every pair: it does when `items` declares only scalar types. */
function uniqueByValue(schema: AnySchemaObject): boolean {
  const items: unknown = schema['items'];
  if (items === null || typeof items !== 'object' || Array.isArray(items)) return false;
  const declared: unknown = (items as AnySchemaObject)['type'];
  const types = (Array.isArray(declared) ? declared : [declared]).filter((t): t is string => typeof t === 'string');
  return types.length > 0 && !types.some((t) => t === 'object' || t === 'array');
}

/** What a subschema costs per application, found when it is copied (withWork): its own steps, and its patterns' instructions. */
type Cost = [own: number, patternInstructions: number, patternPropertiesCount: number, patternPropertiesInstructions: number];

/** Steps to match a string of `length` against a pattern of `instructions` (see MAX_VALIDATION_WORK). */
const matching = (length: number, instructions: number) => Math.ceil((length * instructions) / 128);

/** What checking `data` against `schema` loops over, in steps (see MAX_VALIDATION_WORK). */
function dataWork(schema: AnySchemaObject, [, patternInstructions, ppCount, ppInstructions]: Cost, data: unknown): number {
  if (typeof data === 'string') return Math.ceil(data.length / 16) + (patternInstructions ? matching(data.length, patternInstructions) : 0);
  // Each value of an enum (and a const) is compared with an object or array by its keys or items.
  const compared = (Array.isArray(schema['enum']) ? schema['enum'].length : 0) + ('const' in schema ? 1 : 0);
  if (Array.isArray(data)) {
    const n = data.length;
    return (1 + compared) * n + (schema['uniqueItems'] === true && !uniqueByValue(schema) ? (n * (n - 1)) / 2 : 0);
  }
  if (data !== null && typeof data === 'object') {
    const keys = Object.keys(data);
    if (!ppCount) return (1 + compared) * keys.length;
    let keyLengths = 0;
    for (const key of keys) keyLengths += key.length;
    return keys.length * (1 + compared + ppCount) + matching(keyLengths, ppInstructions);
  }
  return 0;
}

/**
 * Counted before the subschema's other keywords, so a check past the bound never starts: the keywords of
 * any type come first, and this one first among them (before `$ref`, `const`, `enum`, `anyOf`, …).
 */
const workKeyword: KeywordDefinition = {
  keyword: WORK_KEYWORD,
  schemaType: 'array',
  errors: false,
  before: '$ref',
  validate: (cost: Cost, data: unknown, parentSchema?: AnySchemaObject) => {
    work += 1 + dataWork(parentSchema ?? {}, cost, data) + (cost[0] > 0 ? cost[0] : 0);
    if (work > workLimit) {
      throw new CheckTooCostly(
        `checking it against input_schema would take more than ${MAX_VALIDATION_WORK.toLocaleString('en-US')} steps (an anyOf, allOf, oneOf or $ref that fans out over many values, uniqueItems on a long array of objects, or long strings against long patterns): send a smaller input, or simplify input_schema`,
      );
    }
    return true;
  },
};

const isSchemaObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
/** Keywords whose value is data, compared with the input: copied as they are. */
const DATA_KEYWORDS = new Set(['const', 'enum']);
/** Keywords whose value maps names to subschemas (`dependencies` may also map a name to a list of names). */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions', '$defs', 'dependencies']);

/**
 * Whether a `$ref`'s JSON pointer (its fragment), read as withWork reads a schema, leads into the value
 * of a `const` or `enum`: data withWork leaves without counters, which Ajv would compile as a subschema.
 * A pointer it cannot decode counts as one (Ajv could not resolve it either).
 */
function pointsIntoData(ref: string): boolean {
  const hash = ref.indexOf('#');
  if (hash < 0 || ref[hash + 1] !== '/') return false;
  let name = false; // the segment after a map keyword is a name, not a keyword
  for (const raw of ref.slice(hash + 2).split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    } catch {
      return true;
    }
    if (name) name = false;
    else if (DATA_KEYWORDS.has(segment)) return true;
    else name = SCHEMA_MAPS.has(segment);
  }
  return false;
}

/**
 * A copy of the schema with WORK_KEYWORD in every subschema (booleans excepted: they cost one check). Every
 * object is taken for a subschema but the values of `const` and `enum`: a `$ref` can point anywhere
 * (`#/anything/d4`), and an object it reaches that had no counter would be checked uncounted.
 */
function withWork(schema: unknown, instructions: (pattern: string) => number): unknown {
  if (Array.isArray(schema)) return schema.map((item) => withWork(item, instructions));
  if (!isSchemaObject(schema)) return schema;
  const ref = schema['$ref'];
  if (typeof ref === 'string' && pointsIntoData(ref)) {
    throw new SchemaTooComplex(`its $ref ${JSON.stringify(ref.slice(0, 200))} points into a const or enum value: a $ref may point only to a subschema`);
  }
  // Entries, not assignments: a key `__proto__` stays a key.
  const entries = Object.entries(schema).map(([k, v]): [string, unknown] => {
    if (DATA_KEYWORDS.has(k)) return [k, v];
    if (SCHEMA_MAPS.has(k) && isSchemaObject(v)) return [k, Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, withWork(sub, instructions)]))];
    return [k, withWork(v, instructions)];
  });
  const compared = ('const' in schema ? JSON.stringify(schema['const']).length : 0) + (Array.isArray(schema['enum']) ? JSON.stringify(schema['enum']).length : 0);
  const required = Array.isArray(schema['required']) ? schema['required'].length : 0;
  // A boolean branch has no counter of its own (`false` makes an error each time): the parent counts it.
  const booleanBranches = ['allOf', 'anyOf', 'oneOf'].reduce((n, k) => n + (Array.isArray(schema[k]) ? (schema[k] as unknown[]).filter((b) => typeof b === 'boolean').length : 0), 0);
  const dependencies = isSchemaObject(schema['dependencies']) ? Object.values(schema['dependencies']).reduce((n: number, d) => n + (Array.isArray(d) ? d.length : 0), 0) : 0;
  const pattern = typeof schema['pattern'] === 'string' ? instructions(schema['pattern']) : 0;
  const patterns = isSchemaObject(schema['patternProperties']) ? Object.keys(schema['patternProperties']) : [];
  const cost: Cost = [Math.ceil(compared / 64) + required + dependencies + booleanBranches, pattern, patterns.length, patterns.reduce((n, p) => n + instructions(p), 0)];
  return Object.fromEntries([...entries.filter(([k]) => k !== WORK_KEYWORD), [WORK_KEYWORD, cost]]);
}

/** The validator and every one compiled for its `$ref`s (inlineRefs is off): each keeps its last call's errors. */
function validatorsOf(validate: ValidateFunction): ValidateFunction[] {
  type Env = { validate?: ValidateFunction; refs?: Record<string, unknown>; root?: Env };
  const seen = new Set<Env>();
  const out: ValidateFunction[] = [validate];
  const visit = (env: Env | undefined) => {
    if (!env || typeof env !== 'object' || seen.has(env)) return;
    seen.add(env);
    if (typeof env.validate === 'function') out.push(env.validate);
    visit(env.root);
    for (const ref of Object.values(env.refs ?? {})) visit(ref as Env);
  };
  visit((validate as unknown as { schemaEnv?: Env }).schemaEnv);
  return out;
}

/**
 * Checks `data` with a validator compileIsolated made, within MAX_VALIDATION_WORK (throws CheckTooCostly
 * past it); answers whether it is valid and, if not, its first `maxErrors` errors. Nothing stays on the
 * validators (which the cache shares): their errors are cleared, those of its `$ref`s' validators too.
 */
export function checkWithinWork(validate: ValidateFunction, data: unknown, maxErrors = MAX_INPUT_PROBLEMS): { valid: boolean; errors: ErrorObject[] } {
  work = 0;
  workLimit = MAX_VALIDATION_WORK;
  try {
    const valid = validate(data) as boolean;
    return { valid, errors: valid ? [] : (validate.errors ?? []).slice(0, maxErrors) };
  } finally {
    workLimit = Number.POSITIVE_INFINITY;
    work = 0;
    for (const fn of validatorsOf(validate)) fn.errors = null;
  }
}

/**
 * The pairs of values the schema's enums may hold, in all. The meta-schema's `uniqueItems` compares every
 * pair of each enum's values when the schema is checked (each save, each compile): one enum of 4,000
 * objects took 6.6 s, one of 1,000 objects 1.5 s. 250,000 pairs is one enum of about 700 values.
 */
export const MAX_ENUM_PAIRS = 250_000;

/** Throws SchemaTooComplex when the schema's enums (anywhere but in a const's value) hold more than MAX_ENUM_PAIRS pairs of values. */
function assertFewEnumPairs(schema: unknown): void {
  let pairs = 0;
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    if (!isSchemaObject(value)) return;
    for (const [k, v] of Object.entries(value)) {
      if (k === 'const') continue;
      if (k === 'enum' && Array.isArray(v)) pairs += (v.length * (v.length - 1)) / 2;
      visit(v);
    }
  };
  visit(schema);
  if (pairs > MAX_ENUM_PAIRS) {
    throw new SchemaTooComplex(
      `its enums list too many values: each enum's values are compared pair by pair, ${MAX_ENUM_PAIRS.toLocaleString('en-US')} pairs at the most in all (one enum of about 700 values): use a pattern, or fewer values`,
    );
  }
}

/** Throws an Error saying why, for a schema that is not valid draft-07 JSON Schema (SchemaTooComplex for enums too long to check). */
export function checkAgainstMetaSchema(schema: Record<string, unknown>): void {
  assertFewEnumPairs(schema);
  if (!metaSchemas.validateSchema(schema)) throw new Error(`schema is invalid: ${metaSchemas.errorsText(metaSchemas.errors)}`);
}

/** A user's schema compiled, and what its patterns compiled to. */
export interface CompiledSchema {
  readonly validate: ValidateFunction;
  /** The size of the RE2 program (instructions) of each distinct pattern the validator holds. */
  readonly patternPrograms: readonly number[];
  /** What the patterns' DFAs may hold at the most, in bytes (DFA_BYTES_PER_SCHEMA at the most). */
  readonly dfaBytes: number;
}

/** A user's schema compiled in isolation (an Ajv of its own); throws UnsafePattern for a pattern RE2 cannot run. */
export function compileIsolated(schema: Record<string, unknown>): CompiledSchema {
  const programs = new Map<string, number>();
  const compiled = new Set<RE2JS>();
  // A pattern's instructions, for its cost: compiled here, and linearRegExp uses that RE2 (it refuses what
  // RE2 cannot compile: undefined here). Past MAX_PATTERN_INSTRUCTIONS in all, the schema is refused
  // before another pattern is compiled.
  const precompiled = new Map<string, RE2JS | undefined>();
  let total = 0;
  const instructions = (pattern: string) => {
    if (!precompiled.has(pattern)) {
      let re2: RE2JS | undefined;
      try {
        re2 = RE2JS.compile(RE2JS.translateRegExp(pattern));
      } catch {
        re2 = undefined;
      }
      precompiled.set(pattern, re2);
      total += re2?.programSize() ?? 0;
      if (total > MAX_PATTERN_INSTRUCTIONS) throw tooManyInstructions();
    }
    return precompiled.get(pattern)?.programSize() ?? 0;
  };
  const ajv = new Ajv({ ...USER_SCHEMA_OPTIONS, code: { regExp: linearRegExp(programs, compiled, precompiled) } });
  ajv.addKeyword(workKeyword);
  const validate = ajv.compile(withWork(schema, instructions) as Record<string, unknown>);
  // An async validator's answer is a promise (truthy, so every value would pass) whose refusal nobody
  // awaits: an unhandled rejection, which ends the process.
  if ((validate as { $async?: unknown }).$async) throw new Error('"$async" is not supported: inputs are checked synchronously');
  // Shared by the distinct patterns (Ajv keeps one RE2 for each); every RE2 made is bounded, once each.
  const share = programs.size === 0 ? 0 : Math.min(MAX_DFA_BYTES_PER_PATTERN, Math.floor(DFA_BYTES_PER_SCHEMA / programs.size));
  for (const re2 of compiled) boundDfa(re2, share);
  return { validate, patternPrograms: [...programs.values()], dfaBytes: share * programs.size };
}
