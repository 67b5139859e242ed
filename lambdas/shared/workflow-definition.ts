/**
 * Workflow definitions (API.md §4 "Workflows"): `{input_schema, steps: [{id, model, input}], output}`.
 * In a step's `input`, any string starting with `$.` is a reference into
 * `{input, steps: {<id>: {output}}}`, resolved at run time; `output` is one such reference.
 */
import { Ajv } from 'ajv';
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

/** One Ajv for input schemas written by users: draft 2020-12 keywords, no strict-mode surprises. */
const userSchemas = new Ajv({ allErrors: true, strict: false });

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
    userSchemas.compile(definition.input_schema);
  } catch (error) {
    problems.push({ field: `${field}.input_schema`, message: `is not a valid JSON Schema: ${(error as Error).message}` });
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

// Resolution at run time, within the run's limits, lives in references.ts.
export { resolveReferences } from './references.js';

const compiled = new Map<string, ReturnType<typeof userSchemas.compile>>();

/** Validates a run's input against an input schema (compiled once per schema text). */
export function checkInput(schema: Record<string, unknown>, input: unknown, field = 'input'): void {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (!validate) {
    validate = userSchemas.compile(schema);
    if (compiled.size > 500) compiled.clear();
    compiled.set(key, validate);
  }
  if (validate(input)) return;
  const details = (validate.errors ?? []).map((e) => ({
    field: [field, ...e.instancePath.split('/').filter(Boolean)].join('.') +
      (e.keyword === 'required' ? `.${String(e.params['missingProperty'])}` : ''),
    message: e.message ?? 'is not valid',
  }));
  throw new ValidationError(details, `${details[0]?.field ?? field}: ${details[0]?.message ?? 'is not valid'}`);
}
