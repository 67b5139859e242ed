/**
 * Input schemas (API.md §4 "Workflows"): each compiled on its own, never sharing `$id`s or `$ref`
 * targets with another workflow or account, nothing remote; patterns run in linear time or the
 * definition is refused naming the pattern; the compiled-schema cache stays bounded.
 */
import { execFileSync } from 'node:child_process';
import { ValidationError } from '../lambdas/shared/errors.js';
import { assertStorable, ValueLimitExceeded } from '../lambdas/shared/references.js';
import { ModelRegistry } from '../lambdas/shared/models/registry.js';
// A namespace import, so a missing export fails its own test rather than the whole file.
import * as definitions from '../lambdas/shared/workflow-definition.js';
import { checkInput, loadUserSchemaCompiler, validateDefinition } from '../lambdas/shared/workflow-definition.js';
import { PROJECT_ROOT } from '../local-runner/state.js';

// The compiler of users' schemas is loaded on first use; the services await it before validating.
beforeAll(() => loadUserSchemaCompiler());

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

  // Measured with node --expose-gc (see PATTERN_BYTES): a distinct pattern like `s0_17\p{L}{1000}` held
  // 81 KiB once compiled; one of a hundred `.{1000}` held 7.0 MiB.
  const HEAVY_PATTERN_BYTES = 81 * 1024;
  const HUNDRED_REPEATS_BYTES = 7 * 1024 * 1024;

  it('by size, counting what patterns hold: 200 patterns anywhere in a schema at their measured weight at least (they held 16 MiB)', () => {
    const heavy = (i: number) => `s${i}_17\\p{L}{1000}`;
    const strings = (from: number, count: number) =>
      Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${from + i}`, { type: 'string', pattern: heavy(from + i) }]));
    const schema = {
      type: 'object',
      properties: { ...strings(0, 80), nested: { type: 'array', items: { type: 'object', properties: strings(80, 60) } } },
      // Each key of patternProperties is a pattern too.
      patternProperties: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [heavy(140 + i), { type: 'string' }])),
    };
    checkInput(schema, {});
    expect(definitions.compiledSchemaCache(schema).entryBytes).toBeGreaterThanOrEqual(200 * HEAVY_PATTERN_BYTES);
  });

  it('by size, counting what a pattern holds by its RE2 program: a hundred repetitions of 1,000 in one pattern', () => {
    const schema = { type: 'object', properties: { s: { type: 'string', pattern: '.{1000}'.repeat(100) } } };
    checkInput(schema, {});
    expect(definitions.compiledSchemaCache(schema).entryBytes).toBeGreaterThanOrEqual(HUNDRED_REPEATS_BYTES);
  });

  // 20 patterns whose DFAs have exponentially many states (`^(a|b)*a(a|b){n}…$`: each a/b it reads may be
  // a state never seen), with a 3,000-character random a/b string for each: about 60 KB, under the body limit.
  const exponential = (i: number) => `^(a|b)*a(a|b){${12 + (i % 12)}}(b|a){${Math.floor(i / 12)}}$`;
  const dfaSchema = { type: 'object', properties: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`s${i}`, { type: 'string', pattern: exponential(i) }])) };

  it("by size, counting what the patterns' DFAs may hold: their whole budget, whatever values they have matched", () => {
    checkInput(dfaSchema, {});
    expect(definitions.compiledSchemaCache(dfaSchema).entryBytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
  });

  it('what the patterns hold as they match values stays within what the cache counts (with re2js’s own 8 MiB a pattern, three such runs held 84 MB; now about 4 MB)', () => {
    // In a process of its own, for a heap measured after a full collection.
    const script = `
      import { checkInput, compiledSchemaCache, loadUserSchemaCompiler } from './lambdas/shared/workflow-definition.ts';
      await loadUserSchemaCompiler();
      const schema = ${JSON.stringify(dfaSchema)};
      const random = () => Array.from({ length: 3000 }, () => (Math.random() < 0.5 ? 'a' : 'b')).join('');
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let run = 0; run < 3; run++) {
        try { checkInput(schema, Object.fromEntries(Object.keys(schema.properties).map((k) => [k, random()]))); } catch {}
      }
      gc();
      console.log(JSON.stringify({ grew: process.memoryUsage().heapUsed - before, counted: compiledSchemaCache(schema).entryBytes }));`;
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT_ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    const { grew, counted } = JSON.parse(out.toString()) as { grew: number; counted: number };
    expect(counted).toBeGreaterThan(0);
    // The slack covers what the cache's estimate of the compiled code misses, and what collecting leaves
    // behind (measured: 1.5–1.6 MB over the count).
    expect(grew).toBeLessThan(counted + 4 * 1024 * 1024);
  });

  it('a schema whose patterns compile past the bound (three of a hundred repetitions of 1,000) is refused, naming input_schema, so none is compiled on every run', () => {
    const patterns = ['a', 'b', 'c'].map((c) => `${c}${'.{1000}'.repeat(100)}`);
    const schema = { type: 'object', properties: Object.fromEntries(patterns.map((p, i) => [`s${i}`, { type: 'string', pattern: p }])) };
    let refused: ValidationError | undefined;
    try {
      validateDefinition(definition(schema), known);
    } catch (error) {
      refused = error as ValidationError;
    }
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused!.details).toEqual([{ field: 'definition.input_schema', message: expect.stringContaining('instructions of the linear-time engine') }]);
    // Two of them fit.
    validateDefinition(definition({ type: 'object', properties: { s0: { type: 'string', pattern: patterns[0] }, s1: { type: 'string', pattern: patterns[1] } } }), known);
  });
});

describe('patterns run in linear time', () => {
  const REDOS = '^(a+)+$';
  const evil = `${'a'.repeat(30)}!`;

  it('an exponentially backtracking pattern answers at once (a+ nested in +, "a"×30 + "!")', () => {
    const schema = { type: 'object', required: ['s'], properties: { s: { type: 'string', pattern: REDOS } } };
    validateDefinition(definition(schema), known);
    let error: ValidationError | undefined;
    const ms = timed(() => {
      error = refusal(() => checkInput(schema, { s: evil }));
    });
    expect(ms).toBeLessThan(1000);
    expect(error?.details).toEqual([{ field: 'input.s', message: `must match pattern "${REDOS}"` }]);
    expect(() => checkInput(schema, { s: 'a'.repeat(30) })).not.toThrow();
  });

  it.each([
    ['patternProperties', { type: 'object', patternProperties: { [REDOS]: { type: 'number' } }, additionalProperties: false }, { [evil]: 1 }],
    ['propertyNames', { type: 'object', propertyNames: { pattern: REDOS } }, { [evil]: 1 }],
    ['a pattern behind a $ref', { definitions: { s: { type: 'string', pattern: REDOS } }, items: { $ref: '#/definitions/s' } }, [evil]],
  ])('%s run on the same engine', (_where, schema, input) => {
    validateDefinition(definition(schema), known);
    expect(timed(() => checkInput(schema, input))).toBeLessThan(1000);
    expect(() => checkInput(schema, input)).toThrow(ValidationError);
  });

  it.each([
    ['a backreference', '^(a)\\1$'],
    ['a named backreference', '^(?<x>a)\\k<x>$'],
    ['a lookahead', '^(?=a)a$'],
    ['a negative lookbehind', '(?<!a)b'],
    ['an invalid expression', '(a'],
  ])('%s is refused at definition time, naming the pattern', (_what, pattern) => {
    const error = refusal(() => validateDefinition(definition({ type: 'string', pattern }), known));
    expect(error.details).toEqual([{ field: 'definition.input_schema', message: expect.stringContaining(JSON.stringify(pattern)) }]);
    expect(error.message).toContain(JSON.stringify(pattern));
  });

  it('a refused pattern in a patternProperties key is named too', () => {
    const schema = { type: 'object', patternProperties: { '^(a)\\1$': { type: 'number' } } };
    expect(refusal(() => validateDefinition(definition(schema), known)).details).toEqual([
      { field: 'definition.input_schema', message: expect.stringContaining('"^(a)\\\\1$"') },
    ]);
  });

  it('a schema saved before its pattern was refused makes its runs a 400 naming it, never a backtracking match', () => {
    const error = refusal(() => checkInput({ type: 'string', pattern: '^(a)\\1$' }, 'aa'));
    expect(error.details).toEqual([{ field: 'input_schema', message: expect.stringContaining('"^(a)\\\\1$"') }]);
  });

  it.each([
    ['^\\d{3}-\\d{4}$', '555-1234', '5551234'],
    ['^[\\w.+-]+@[\\w-]+\\.[a-z]{2,}$', 'a.b+c@example.com', 'a@b'],
    ['^\\u00e9t\\u00e9$', 'été', 'ete'],
    ['^\\p{L}+$', 'Ωmega', 'abc1'],
    ['^(?<year>\\d{4})-(?<month>\\d{2})$', '2026-11', '2026-1'],
    ['^a\\/b$', 'a/b', 'a\\b'],
    ['^[^]$', '\n', ''],
    ['^\\x41\\cJ$', 'A\n', 'A'],
    ['^(?:ab|cd)*$', 'abcdab', 'abc'],
  ])('ECMAScript pattern %s keeps its meaning', (pattern, matching, failing) => {
    const schema = { type: 'string', pattern };
    validateDefinition(definition(schema), known);
    expect(() => checkInput(schema, matching)).not.toThrow();
    expect(() => checkInput(schema, failing)).toThrow(ValidationError);
  });

  it("the built-in models' input schemas keep working", () => {
    const inputs: Record<string, { good: unknown; bad?: unknown }> = {
      echo: { good: { anything: [1, 'two'] } },
      uppercase: { good: { text: 'hi' }, bad: { text: 1 } },
      'word-count': { good: { text: 'two words' }, bad: {} },
      sleep: { good: { ms: 10 }, bad: { ms: -1 } },
      fail: { good: { message: 'no' }, bad: { message: 'no', extra: true } },
    };
    const models = new ModelRegistry().list();
    expect(models.map((m) => m.id).sort()).toEqual(Object.keys(inputs).sort());
    for (const model of models) expect(() => checkInput(model.input_schema, inputs[model.id]!.good)).not.toThrow();
    for (const model of models.filter((m) => 'bad' in inputs[m.id]!)) {
      expect(() => checkInput(model.input_schema, inputs[model.id]!.bad)).toThrow(ValidationError);
    }
  });
});

describe('schemas whose $refs multiply the work (CPU)', () => {
  const known = () => true;
  const definitionWith = (input_schema: Record<string, unknown>) => ({
    input_schema,
    steps: [{ id: 'e', model: 'echo', input: '$.input' }],
    output: '$.steps.e.output',
  });

  it('refuses a schema whose $refs double the work at every level (27 levels in about 2 KB), quickly', () => {
    const defs: Record<string, unknown> = { l0: { type: 'string' } };
    for (let i = 1; i <= 27; i++) defs[`l${i}`] = { allOf: [{ $ref: `#/definitions/l${i - 1}` }, { $ref: `#/definitions/l${i - 1}` }] };
    const schema = { definitions: defs, $ref: '#/definitions/l27' };
    const started = Date.now();
    expect(() => validateDefinition(definitionWith(schema), known)).toThrow(/expand to more than 20000 subschemas/);
    expect(() => checkInput(schema, 'x')).toThrow(/expand to more than 20000 subschemas/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('keeps schemas that reference a definition a few times, and recursive ones bounded by the data', () => {
    const tree = {
      definitions: { node: { type: 'object', properties: { children: { type: 'array', items: { $ref: '#/definitions/node' } } } } },
      $ref: '#/definitions/node',
    };
    expect(() => validateDefinition(definitionWith(tree), known)).not.toThrow();
    expect(() => checkInput(tree, { children: [{ children: [] }] })).not.toThrow();
  });

  it('refuses a schema that refers to itself with no data in between ({"$ref": "#"}): 400, never a 500', () => {
    expect(() => validateDefinition(definitionWith({ $ref: '#' }), known)).toThrow(/refers to itself without end/);
    expect(() => checkInput({ $ref: '#' }, 1)).toThrow(expect.objectContaining({ status: 400 }));
  });
});

describe('checking one input is bounded: its CPU by the work the check takes, its memory by what the check keeps', () => {
  // A 7-way anyOf nested four deep (about 1 KB, well under the $ref bound): each value is checked against
  // 2,801 subschemas, every one of them failing for a number.
  const fanOut = (tag = '') => {
    const defs: Record<string, unknown> = { d0: { type: 'string' } };
    for (let i = 1; i <= 4; i++) defs[`d${i}`] = { anyOf: Array.from({ length: 7 }, () => ({ $ref: `#/definitions/d${i - 1}` })) };
    return { description: `fan-out ${tag}`, definitions: defs, type: 'object', properties: { a: { type: 'array', items: { $ref: '#/definitions/d4' } } } };
  };

  it('a fan-out over many values is refused with a 400 saying why, after at most MAX_VALIDATION_WORK steps (1,000 zeros took 48 s of CPU and 1.8 GB before)', () => {
    validateDefinition(definition(fanOut()), known);
    const error = refusal(() => checkInput(fanOut(), { a: Array(1000).fill(0) }));
    expect(error.details).toEqual([{ field: 'input', message: expect.stringContaining('would take more than 500,000 steps') }]);
    // The same schema with a few values is checked as before.
    expect(refusal(() => checkInput(fanOut(), { a: [0] })).details[0]).toMatchObject({ field: 'input.a.0' });
    expect(() => checkInput(fanOut(), { a: ['fine', 'also fine'] })).not.toThrow();
  });

  it('a fan-out a $ref reaches anywhere is counted too (under an unknown keyword, under default); a $ref into a const or enum value is refused', () => {
    const fanDefs = (base: string) => {
      const defs: Record<string, unknown> = { d0: { type: 'string' } };
      for (let i = 1; i <= 4; i++) defs[`d${i}`] = { anyOf: Array.from({ length: 7 }, () => ({ $ref: `${base}/d${i - 1}` })) };
      return defs;
    };
    const under = (where: string) => ({ [where]: fanDefs(`#/${where}`), type: 'object', properties: { a: { type: 'array', items: { $ref: `#/${where}/d4` } } } });
    for (const where of ['x', 'default']) {
      expect(refusal(() => checkInput(under(where), { a: Array(300).fill(0) })).details).toEqual([{ field: 'input', message: expect.stringContaining('would take more than 500,000 steps') }]);
    }
    for (const into of ['const', 'enum/0']) {
      const defs = fanDefs(`#/properties/z/${into}`);
      const schema = { type: 'object', properties: { z: into === 'const' ? { const: defs } : { enum: [defs] }, a: { type: 'array', items: { $ref: `#/properties/z/${into}/d4` } } } };
      expect(refusal(() => validateDefinition(definition(schema), known)).details).toEqual([{ field: 'definition.input_schema', message: expect.stringContaining('points into a const or enum value') }]);
    }
    // A property named const or enum is a subschema like any other.
    const named = { type: 'object', properties: { enum: { type: 'string' }, const: { type: 'number' }, e: { $ref: '#/properties/enum' }, c: { $ref: '#/properties/const' } } };
    validateDefinition(definition(named), known);
    expect(refusal(() => checkInput(named, { e: 1, c: 'x' })).details.map((d) => d.field)).toEqual(['input.e', 'input.c']);
  });

  it('uniqueItems costs every pair where Ajv compares them (items of undeclared type), one step per item where it does not', () => {
    const objects = (n: number) => Array.from({ length: n }, (_, i) => ({ i }));
    expect(() => checkInput({ type: 'array', uniqueItems: true }, objects(900))).not.toThrow();
    expect(refusal(() => checkInput({ type: 'array', uniqueItems: true }, objects(2000))).details[0]!.message).toContain('uniqueItems');
    expect(() => checkInput({ type: 'array', uniqueItems: true, items: { type: 'number' } }, Array.from({ length: 60_000 }, (_, i) => i))).not.toThrow();
  });

  it('what the keywords loop over is counted: required names (an error object each), a long string against a long pattern, many keys against many patternProperties', () => {
    const names = Array.from({ length: 200 }, (_, i) => `p${i}`);
    // 83,333 empty objects each missing 200 names: 17.5 s of CPU and 3.4 GB of errors before.
    expect(refusal(() => checkInput({ type: 'array', items: { required: names } }, Array.from({ length: 83_333 }, () => ({})))).details[0]!.field).toBe('input');
    // 40 KB against 20,000 instructions: RE2's NFA took 11.7 s once the DFA overflowed its budget.
    const long = { type: 'string', pattern: `a${'[^b]{1000}'.repeat(20)}b` };
    expect(refusal(() => checkInput(long, `${'a'.repeat(40_000)}b`)).details[0]!.message).toContain('long strings against long patterns');
    // A shorter one is checked as usual (2,000 characters: about 310,000 steps).
    expect(refusal(() => checkInput(long, `a${'c'.repeat(2_000)}b`)).details[0]!.message).toContain('must match pattern');
    // 20,000 keys against 1,000 patterns that none matches: 6.6 s before.
    const patterns = { patternProperties: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`^z${i}$`, { type: 'string' }])) };
    expect(refusal(() => checkInput(patterns, Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 0])))).details[0]!.field).toBe('input');
    expect(() => checkInput(patterns, { z1: 'a', other: 0 })).not.toThrow();
  });

  it('what a third review found: false branches (an error each), an enum of objects against many keys, enums too long to check when saved, patterns compiled past their bound', () => {
    // 1,000 false branches per item: 165 MB for 1,000 items, and out of heap for 10,000, before.
    expect(refusal(() => checkInput({ type: 'array', items: { anyOf: Array(1000).fill(false) } }, Array(1000).fill(0))).details[0]!.field).toBe('input');
    // Each of 500 objects compared with 25,000 keys: 3.0 s before.
    const objects = { enum: Array.from({ length: 500 }, (_, i) => ({ [i]: 0 })) };
    validateDefinition(definition(objects), known);
    expect(refusal(() => checkInput(objects, Object.fromEntries(Array.from({ length: 25_000 }, (_, i) => [`k${i}`, 0])))).details[0]!.field).toBe('input');
    expect(() => checkInput(objects, { 7: 0 })).not.toThrow();
    // 4,000 objects in one enum took 6.6 s to save (the meta-schema compares every pair).
    expect(refusal(() => validateDefinition(definition({ enum: Array.from({ length: 4000 }, (_, i) => ({ [i]: 0 })) }), known)).details[0]!.message).toContain('enums list too many values');
    // Ten patterns of a million instructions each: all ten were compiled (12.6 s) before the first was refused.
    const huge = { anyOf: Array.from({ length: 10 }, (_, i) => ({ pattern: `a${i}${'.{1000}'.repeat(1000)}` })) };
    let message = '';
    expect(timed(() => (message = refusal(() => validateDefinition(definition(huge), known)).message))).toBeLessThan(8000);
    expect(message).toContain('instructions of the linear-time engine');
  });

  it('large ordinary inputs stay well within the bound: 125,000 integers, 6,000 records of three fields', () => {
    expect(() => checkInput({ type: 'object', properties: { a: { type: 'array', items: { type: 'integer' } } } }, { a: Array(125_000).fill(0) })).not.toThrow();
    const record = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[a-z0-9]+$' }, name: { type: 'string', maxLength: 50 }, n: { type: 'number' } }, additionalProperties: false };
    expect(() => checkInput({ type: 'array', items: record }, Array.from({ length: 6000 }, (_, i) => ({ id: `abc${i}`, name: 'some name here', n: i })))).not.toThrow();
  });

  it('a refused input lists its first 100 problems, not all of them', () => {
    const error = refusal(() => checkInput({ type: 'array', items: { type: 'string' } }, Array(500).fill(0)));
    expect(error.details).toHaveLength(100);
    expect(error.details[0]).toEqual({ field: 'input.0', message: 'must be string' });
  });

  it('an "$async" schema is refused when saved, and a saved one is a 400 on run (its validator answered a promise: every input passed, and a refusal ended the process)', () => {
    const schema = { $async: true, type: 'object', required: ['x'] };
    expect(refusal(() => validateDefinition(definition(schema), known)).details).toEqual([{ field: 'definition.input_schema', message: expect.stringContaining('"$async" is not supported') }]);
    expect(refusal(() => checkInput(schema, {})).details).toEqual([{ field: 'input_schema', message: expect.stringContaining('"$async" is not supported') }]);
  });

  it('a cached validator keeps no errors past its check, nor do its $refs\' validators (six refused fan-outs of 120 values held 36 MB each before; a $ref\'s validator refusing 125,000 items, 16.5 MB)', () => {
    // In a process of its own, for a heap measured after a full collection.
    const script = `
      import { checkInput, loadUserSchemaCompiler } from './lambdas/shared/workflow-definition.ts';
      await loadUserSchemaCompiler();
      // Six fan-outs, and four whose errors a $ref's own validator made (inlineRefs is off): 16.5 MB each before.
      const schemas = [
        ...${JSON.stringify(Array.from({ length: 6 }, (_, i) => fanOut(String(i))))},
        ...[0, 1, 2, 3].map((i) => ({ $comment: String(i), $ref: '#/definitions/d', definitions: { d: { type: 'array', items: { type: 'string' } } } })),
      ];
      gc();
      const before = process.memoryUsage().heapUsed;
      for (const schema of schemas) {
        try { checkInput(schema, schema.$ref ? Array(125000).fill(0) : { a: Array(120).fill(0) }); } catch {}
      }
      gc();
      console.log(JSON.stringify({ grew: process.memoryUsage().heapUsed - before }));`;
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT_ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    const { grew } = JSON.parse(out.toString()) as { grew: number };
    // Measured: about 0.7 MB a fan-out (its compiled code), against 36 MB when its errors were kept.
    expect(grew).toBeLessThan(10 * 4 * 1024 * 1024);
  });
});

describe('a value a run stores holds only numbers DynamoDB can hold', () => {
  it('a model output with 1e126 or 1e-131 fails its step naming where; 0, 1e-130 and 9.99e125 are kept', () => {
    expect(() => assertStorable({ a: [0, -0, 1e-130, -9.99e125, 2 ** 64] }, 1024, "step 'm': its output")).not.toThrow();
    expect(() => assertStorable({ a: [1, { b: 1e126 }] }, 1024, "step 'm': its output")).toThrow(
      new ValueLimitExceeded("step 'm': its output holds a number outside the range this API accepts (magnitudes from 1e-130 to 9.99e125, or 0: what DynamoDB can store), at $.a.1.b"),
    );
    expect(() => assertStorable(-1e-131, 1024, 'the execution output')).toThrow(/^the execution output holds a number outside .*, at \$$/);
    expect(() => assertStorable(Number.POSITIVE_INFINITY, 1024, 'x')).toThrow(ValueLimitExceeded);
  });

  it('a model output with a member named "" (which DynamoDB refuses) fails its step naming where; "0" and " " are names', () => {
    expect(() => assertStorable({ '0': 1, ' ': 2 }, 1024, "step 'm': its output")).not.toThrow();
    expect(() => assertStorable({ a: [{ '': 1 }] }, 1024, "step 'm': its output")).toThrow(
      new ValueLimitExceeded(`step 'm': its output has a member whose name is empty (""), which this API cannot store: give it a name, at $.a.0`),
    );
  });
});
