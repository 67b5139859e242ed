/**
 * Workflow definitions (API.md §4 "Workflows"): `{input_schema, steps: [{id, model, input}], output}`.
 * In a step's `input`, any string starting with `$.` is a reference into
 * `{input, steps: {<id>: {output}}}`, resolved at run time; `output` is one such reference.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import type * as UserSchemaCompiler from './user-schema-compiler.js';
import { LRUCache } from 'lru-cache';
import type { FieldError } from './errors.js';
import { ValidationError } from './errors.js';

export interface Step {
  id: string;
  model: string;
  input: unknown;
}

export interface Definition {
  input_schema: Record<string, unknown>;
  steps: Step[];
  output: string;
}

export const STEP_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const MAX_STEPS = 20;

/** A schema's `pattern` (or `patternProperties` key) that cannot run in linear time. */
export class UnsafePattern extends Error {
  constructor(
    readonly pattern: string,
    why: string,
  ) {
    const shown = pattern.length > 200 ? `${pattern.slice(0, 200)}…` : pattern;
    super(`pattern ${JSON.stringify(shown)} is refused: ${why}`);
  }
}

/**
 * The compiler of users' schemas (Ajv and RE2, user-schema-compiler.ts), loaded by the first request that
 * compiles a schema rather than at every cold start: most requests of the functions that hold it (reads,
 * lists, deploys) never compile one. Every caller of validateDefinition and checkInput awaits
 * loadUserSchemaCompiler() first.
 */
let compiler: typeof UserSchemaCompiler | undefined;
export async function loadUserSchemaCompiler(): Promise<void> {
  compiler ??= await import('./user-schema-compiler.js');
}

/** A user's schema compiled in isolation; throws UnsafePattern, SchemaTooComplex, or Error for an invalid schema. */
function compileUserSchema(schema: Record<string, unknown>): UserSchemaCompiler.CompiledSchema {
  if (!compiler) throw new Error('the user-schema compiler is not loaded: await loadUserSchemaCompiler() first');
  compiler.checkAgainstMetaSchema(schema);
  assertBoundedExpansion(schema);
  return compiler.compileIsolated(schema);
}

/** How many subschemas one value may be checked against once every `$ref` is followed. */
export const MAX_SCHEMA_EXPANSION = 20_000;

/** A schema whose `$ref`s multiply the work of a validation past MAX_SCHEMA_EXPANSION. */
export class SchemaTooComplex extends Error {
  override readonly name = 'SchemaTooComplex';
}

/** A value whose check against a user's schema would take more than MAX_VALIDATION_WORK (user-schema-compiler.ts). */
export class CheckTooCostly extends Error {
  override readonly name = 'CheckTooCostly';
}

/**
 * Counts the subschemas a validation may visit with every local `$ref` followed (each target counted
 * once per reference, memoized by pointer): `$ref`s that each reference the previous level twice double
 * the work per level, so 27 levels in 2 KB cost seconds per run. A cycle counts once (its depth is
 * bounded by the data, which the body limits bound). Throws SchemaTooComplex past the bound.
 */
function assertBoundedExpansion(root: unknown): void {
  const byPointer = new Map<string, number>();
  const inProgress = new Set<string>();
  const target = (ref: string): unknown => {
    let node: unknown = root;
    for (const raw of ref.slice(2).split('/').filter((p) => p !== '')) {
      const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return undefined;
      node = (node as Record<string, unknown>)[part];
    }
    return node;
  };
  const count = (node: unknown): number => {
    if (node === null || typeof node !== 'object') return 0;
    let total = 1;
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string' && (value === '#' || value.startsWith('#/'))) {
        if (inProgress.has(value)) continue; // a cycle: bounded by the data
        let size = byPointer.get(value);
        if (size === undefined) {
          inProgress.add(value);
          size = count(target(value));
          inProgress.delete(value);
          byPointer.set(value, size);
        }
        total += size;
      } else if (key !== 'const' && key !== 'enum' && key !== 'default' && key !== 'examples') {
        total += count(value);
      }
      if (total > MAX_SCHEMA_EXPANSION) {
        throw new SchemaTooComplex(`its $refs expand to more than ${MAX_SCHEMA_EXPANSION} subschemas to check a value against; reference each definition fewer times`);
      }
    }
    return total;
  };
  count(root);
}

/** Why a user's schema cannot be used, as a field error. */
function schemaProblem(error: unknown, field: string): FieldError {
  if (error instanceof UnsafePattern || error instanceof SchemaTooComplex) return { field, message: error.message };
  return { field, message: `is not a valid JSON Schema: ${(error as Error).message}` };
}

/** Every `$.` reference inside a value, with where it sits. */
function references(value: unknown, path: string, out: { path: string; ref: string }[] = []): { path: string; ref: string }[] {
  if (typeof value === 'string') {
    if (value.startsWith('$.')) out.push({ path, ref: value });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => references(v, `${path}.${i}`, out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) references(v, `${path}.${k}`, out);
  }
  return out;
}

/** Why a reference cannot resolve given the steps before it, or undefined when it can. */
export function referenceProblem(ref: string, earlierSteps: ReadonlySet<string>): string | undefined {
  const parts = ref.slice(2).split('.');
  if (parts.some((p) => p === '')) return `'${ref}' has an empty path segment`;
  if (parts[0] === 'input') return undefined;
  if (parts[0] === 'steps') {
    // `$.steps` (every earlier step), `$.steps.<id>`, or `$.steps.<id>.output…`
    const id = parts[1];
    if (id === undefined) return undefined;
    if (!earlierSteps.has(id)) return `'${ref}' names step '${id}', which does not run before this point`;
    if (parts.length > 2 && parts[2] !== 'output') return `'${ref}' must look like $.steps.<id>.output…`;
    return undefined;
  }
  return `'${ref}' must start with $.input or $.steps`;
}

/**
 * Checks a definition as it is saved: the shape, a valid JSON Schema, unique step ids, known models,
 * and references that resolve to the input or an earlier step. Throws ValidationError listing each
 * problem with its field (`definition.steps.1.model`).
 */
export function validateDefinition(definition: Definition, knownModel: (id: string) => boolean, field = 'definition'): void {
  const problems: FieldError[] = [];
  try {
    const { validate } = compileUserSchema(definition.input_schema);
    try {
      compiler!.checkWithinWork(validate, null); // a schema that refers to itself with no data in between recurses on any value
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      throw new SchemaTooComplex('refers to itself without end (a $ref cycle that checks no data)');
    }
  } catch (error) {
    problems.push(schemaProblem(error, `${field}.input_schema`));
  }
  const seen = new Set<string>();
  definition.steps.forEach((step, i) => {
    const at = `${field}.steps.${i}`;
    if (seen.has(step.id)) problems.push({ field: `${at}.id`, message: `'${step.id}' is used by an earlier step` });
    if (!knownModel(step.model)) problems.push({ field: `${at}.model`, message: `'${step.model}' is not a known model` });
    for (const { path, ref } of references(step.input, `${at}.input`)) {
      const problem = referenceProblem(ref, seen);
      if (problem) problems.push({ field: path, message: problem });
    }
    seen.add(step.id);
  });
  const outputProblem = referenceProblem(definition.output, seen);
  if (outputProblem) problems.push({ field: `${field}.output`, message: outputProblem });
  if (problems.length > 0) throw new ValidationError(problems, `${problems[0]!.field}: ${problems[0]!.message}`);
}

/** What a user's schema compiled to (with what its patterns hold, estimated), or why it did not. */
type Compiled = { validate: ValidateFunction; patternBytes: number } | { problem: unknown };

/**
 * What a pattern compiled to RE2 holds: a part of its own (the RE2 object, and Ajv's code that calls it)
 * and a part per instruction of its RE2 program, which repetition multiplies: `\p{L}{1000}` is 11
 * characters and a thousand instructions. Measured with node --expose-gc, as the heap's growth over
 * compiling a schema of many distinct patterns of one kind and validating a value with it once, divided
 * by the patterns: `s0_17a` (14 instructions, 500 patterns) held 7.9 KiB a pattern, `s0_17\p{L}{1000}`
 * (1,013, 500 patterns) 81 KiB, `s0_17` and a hundred `.{1000}` (100,009, 10 patterns) 7.0 MiB: about
 * 7 KiB plus 74 bytes an instruction, rounded up here. Counted by the schema's text alone (32 bytes a character), a
 * schema of a thousand patterns like the second was estimated about 40 times too small. The states RE2's
 * DFA caches as the patterns match values are counted at their bound (`dfaBytes`, DFA_BYTES_PER_SCHEMA at
 * the most: user-schema-compiler.ts).
 */
const PATTERN_BYTES = 8 * 1024;
const PATTERN_INSTRUCTION_BYTES = 80;

const patternBytes = (programs: readonly number[]) => programs.reduce((sum, instructions) => sum + PATTERN_BYTES + PATTERN_INSTRUCTION_BYTES * instructions, 0);

/**
 * Schemas compiled for runs, least recently used first out: at most 500, and at most 64 MiB by an
 * estimate of what each holds (measured: a compiled schema holds about 20–25 times its JSON text in
 * memory, plus about 6 KiB, plus what its patterns hold). Keyed by the schema's JSON text: the same text
 * compiles to the same, self-contained validator whoever wrote it.
 */
let compiledCache: LRUCache<string, Compiled> | undefined;
// Made on first use, so the functions that only import this module's constants bundle no cache.
const compiled = () =>
  (compiledCache ??= new LRUCache<string, Compiled>({
    max: 500,
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: (value, key) => 8 * 1024 + 32 * key.length + ('patternBytes' in value ? value.patternBytes : 0),
  }));

/**
 * How full the compiled-schema cache is, and its bounds; given a schema, also what the cache counts it at
 * (undefined when it does not hold it). Read only; for tests and diagnostics.
 */
export function compiledSchemaCache(schema?: Record<string, unknown>): {
  entries: number;
  estimatedBytes: number;
  maxEntries: number;
  maxBytes: number;
  entryBytes?: number | undefined;
} {
  const cache = compiled();
  return {
    entries: cache.size,
    estimatedBytes: cache.calculatedSize,
    maxEntries: cache.max,
    maxBytes: cache.maxSize,
    ...(schema ? { entryBytes: cache.info(JSON.stringify(schema))?.size } : {}),
  };
}

/** The problems a refused input's 400 lists at the most (the first ones found). */
export const MAX_INPUT_PROBLEMS = 100;

/**
 * Validates a run's input against an input schema (compiled once per schema text). A schema that no
 * longer compiles (saved before it would have been refused) is a 400 saying why, never a 500.
 */
export function checkInput(schema: Record<string, unknown>, input: unknown, field = 'input'): void {
  const key = JSON.stringify(schema);
  let entry = compiled().get(key);
  if (!entry) {
    try {
      const { validate, patternPrograms, dfaBytes } = compileUserSchema(schema);
      entry = { validate, patternBytes: patternBytes(patternPrograms) + dfaBytes };
    } catch (problem) {
      entry = { problem };
    }
    compiled().set(key, entry);
  }
  if (!('validate' in entry)) {
    const problem = schemaProblem(entry.problem, 'input_schema');
    throw new ValidationError([problem], `${problem.field}: ${problem.message}`);
  }
  const validate = entry.validate;
  let checked: { valid: boolean; errors: readonly ErrorObject[] };
  try {
    checked = compiler!.checkWithinWork(validate, input);
  } catch (error) {
    if (error instanceof CheckTooCostly) throw ValidationError.field(field, error.message);
    // A schema that refers to itself with no data in between (`{"$ref": "#"}`) recurses without end.
    if (!(error instanceof RangeError)) throw error;
    throw ValidationError.field('input_schema', 'refers to itself without end (a $ref cycle that checks no data)');
  }
  if (checked.valid) return;
  const details = checked.errors.map((e) => ({
    field: [field, ...e.instancePath.split('/').filter(Boolean)].join('.') +
      (e.keyword === 'required' ? `.${String(e.params['missingProperty'])}` : ''),
    message: e.message ?? 'is not valid',
  }));
  throw new ValidationError(details, `${details[0]?.field ?? field}: ${details[0]?.message ?? 'is not valid'}`);
}
