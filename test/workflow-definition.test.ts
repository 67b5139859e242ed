/**
 * Input schemas (API.md §4 "Workflows"): each compiled on its own, never sharing `$id`s or `$ref`
 * targets with another workflow or account, nothing remote; the compiled-schema cache stays bounded.
 */
import { ValidationError } from '../lambdas/shared/errors.js';
// A namespace import, so a missing export fails its own test rather than the whole file.
import * as definitions from '../lambdas/shared/workflow-definition.js';
import { checkInput, validateDefinition } from '../lambdas/shared/workflow-definition.js';

const definition = (input_schema: Record<string, unknown>) => ({
  input_schema,
  steps: [{ id: 'echo', model: 'echo', input: '$.input' }],
  output: '$.steps.echo.output',
});
const known = () => true;

/** The ValidationError a call throws (fails the test when it throws nothing or something else). */
function refusal(call: () => void): ValidationError {
  try {
    call();
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw new Error(`expected a ValidationError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

/** Milliseconds a call takes, whatever it throws. */
function timed(call: () => void): number {
  const started = performance.now();
  try {
    call();
  } catch {
    // timing only
  }
  return performance.now() - started;
}

describe('input schemas are compiled in isolation', () => {
  const withId = (id: string) => ({
    $id: id,
    type: 'object',
    required: ['secret_field'],
    properties: { secret_field: { type: 'string', pattern: '^sk_[a-z]+$' } },
  });

  it('a schema with an $id can be saved and run again and again (it jams nothing)', () => {
    const schema = withId('https://example.com/input.json');
    // Each save and each run compiles a fresh copy, as one read from the database would be.
    for (let i = 0; i < 3; i++) expect(() => validateDefinition(definition(structuredClone(schema)), known)).not.toThrow();
    for (let i = 0; i < 3; i++) expect(() => checkInput(structuredClone(schema), { secret_field: 'sk_abc' })).not.toThrow();
    expect(refusal(() => checkInput(structuredClone(schema), { secret_field: 'nope' })).details).toEqual([
      { field: 'input.secret_field', message: 'must match pattern "^sk_[a-z]+$"' },
    ]);
  });

  it("another schema cannot $ref a schema seen before, nor learn anything of it", () => {
    const a = withId('https://tenant-a.example/input.json');
    validateDefinition(definition(a), known);
    checkInput(a, { secret_field: 'sk_abc' });
    const b = { $ref: 'https://tenant-a.example/input.json' };
    const saved = refusal(() => validateDefinition(definition(b), known));
    expect(saved.details).toEqual([{ field: 'definition.input_schema', message: expect.stringContaining("can't resolve reference") }]);
    expect(JSON.stringify(saved.details)).not.toContain('secret_field');
    // A schema saved before this was refused: its runs are a 400 too, and reveal nothing of A's.
    const run = refusal(() => checkInput(b, {}));
    expect(run.details).toEqual([{ field: 'input_schema', message: expect.stringContaining("can't resolve reference") }]);
    expect(JSON.stringify(run.details)).not.toContain('secret_field');
  });

  it.each([
    ['a remote URL', { $ref: 'https://schemas.example.net/remote.json' }],
    ['the meta-schema', { $ref: 'http://json-schema.org/draft-07/schema#' }],
    ['a relative file', { $ref: 'other.json#/definitions/x' }],
  ])('nothing remote can be referenced: %s is refused', (_what, schema) => {
    expect(refusal(() => validateDefinition(definition(schema), known)).details).toEqual([
      { field: 'definition.input_schema', message: expect.stringMatching(/^is not a valid JSON Schema: can't resolve reference/) },
    ]);
  });

  it('references within the schema itself still resolve, by pointer and by its own $id', () => {
    const schema = {
      $id: 'https://example.com/self.json',
      definitions: { name: { type: 'string', minLength: 1 } },
      type: 'object',
      properties: { a: { $ref: '#/definitions/name' }, b: { $ref: 'https://example.com/self.json#/definitions/name' } },
    };
    validateDefinition(definition(schema), known);
    expect(() => checkInput(schema, { a: 'x', b: 'y' })).not.toThrow();
    expect(refusal(() => checkInput(schema, { a: '', b: 1 })).details.map((d) => d.field)).toEqual(['input.a', 'input.b']);
  });

  it('an invalid schema is still refused with the reason', () => {
    expect(refusal(() => validateDefinition(definition({ type: 5 }), known)).details).toEqual([
      { field: 'definition.input_schema', message: expect.stringMatching(/^is not a valid JSON Schema: schema is invalid: data\/type/) },
    ]);
  });

  it('a $ref used many times is compiled once, not copied at each use (no blow-up in compile time)', () => {
    // 120 references to a 120-property definition: about 9 KB. Copied at every $ref this compiled to
    // about 10 MB of code over several seconds; as one function per $ref it takes milliseconds.
    const properties = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`p${i}`, { type: 'string', maxLength: 10 }]));
    const refs = Object.fromEntries(Array.from({ length: 120 }, (_, i) => [`r${i}`, { $ref: '#/definitions/big' }]));
    const schema = { definitions: { big: { type: 'object', properties } }, type: 'object', properties: refs };
    expect(timed(() => validateDefinition(definition(schema), known))).toBeLessThan(2000);
    expect(refusal(() => checkInput(schema, { r0: { p0: 'far too long for ten' } })).details).toEqual([
      { field: 'input.r0.p0', message: 'must NOT have more than 10 characters' },
    ]);
  });
});

describe('the compiled-schema cache is bounded', () => {
  it('by count: at most its maximum number of schemas, the least recently used leaving first', () => {
    const cache = () => definitions.compiledSchemaCache();
    const { maxEntries } = cache();
    expect(maxEntries).toBeGreaterThan(0);
    const kept = { type: 'object', properties: { kept: { const: true } } };
    for (let i = 0; i < maxEntries + 50; i++) {
      checkInput({ type: 'object', properties: { [`field${i}`]: { type: 'integer' } } }, {});
      if (i % 10 === 0) checkInput(kept, { kept: true }); // recently used: stays
      expect(cache().entries).toBeLessThanOrEqual(maxEntries);
    }
    expect(cache().entries).toBe(maxEntries);
    expect(() => checkInput(kept, { kept: true })).not.toThrow();
  });

  it('by size: large schemas push others out rather than piling up (30 of 229 KB once held 106 MB)', () => {
    const cache = () => definitions.compiledSchemaCache();
    const { maxBytes } = cache();
    for (let i = 0; i < 30; i++) {
      checkInput({ type: 'string', description: `${i}`.padEnd(229 * 1024, 'x') }, 'fine');
      expect(cache().estimatedBytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(cache().entries).toBeLessThan(30);
    expect(maxBytes).toBeLessThanOrEqual(128 * 1024 * 1024);
  });
});
