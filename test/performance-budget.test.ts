/**
 * The performance budget CI can hold without timing anything (issue #20): what each function's cold start
 * loads, against a bare `GetItemCommand` bundle built here the way the bench builds it, and what stays out
 * of it until first use. Timings are the bench's (`npm run bench`), never asserted here. The DynamoDB calls
 * per route are pinned exactly by test/e2e/budget.test.ts and test/e2e/performance-budget.test.ts.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildReferenceBundle, filesLoadedAtInit, loadedAtInit } from '../bench/bundle-size.js';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from '../local-runner/stack.js';
import { loadApiModel } from '../local-runner/template.js';
import { TEST_CDK_OUT } from './support/paths.js';

let reference: number;
let functions: Map<string, string>;

beforeAll(async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'knouds-budget-'));
  const out = await buildReferenceBundle(dir);
  reference = loadedAtInit(out);
  const model = loadApiModel(TEST_CDK_OUT, { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID });
  functions = new Map([...model.functions.values()].filter((f) => f.modulePath.endsWith('.mjs')).map((f) => [f.logicalId.replace(/[0-9A-F]{8}$/, ''), f.modulePath]));
});

const initText = (name: string) => filesLoadedAtInit(functions.get(name)!).map((f) => readFileSync(f, 'utf8')).join('\n');

describe('what a cold start loads', () => {
  // What each function's cold start reads, as a share of the reference bundle (itself the SDK's CommonJS
  // build, not tree-shaken), pinned a little above what it was on 2026-11-30 (Authorizer 0.55, Keys 0.75,
  // Executions 0.85, Workflows 0.82, Worker 0.67, WebhookSender 0.59, Housekeeping 0.58, OpenApi 0.17).
  // Workflows and Worker load the compiler of users' schemas (Ajv, RE2) and the Lambda client on first use.
  const CEILING: Record<string, number> = { AuthorizerFunction: 0.6, KeysFunction: 0.8, ExecutionsFunction: 0.9, WorkflowsFunction: 0.88, WorkerFunction: 0.75 };
  it('every function loads no more code than its pinned share of the bare-SDK reference', () => {
    expect(functions.size).toBeGreaterThanOrEqual(8);
    const over = [...functions]
      .map(([name, file]) => ({ name, ratio: Math.round((loadedAtInit(file) / reference) * 100) / 100, ceiling: CEILING[name] ?? 0.65 }))
      .filter(({ ratio, ceiling }) => ratio > ceiling);
    expect(over).toEqual([]);
  });

  it('the authorizer’s key path leaves the session code (jose, the identity provider) to the first session', () => {
    const loaded = initText('AuthorizerFunction');
    const bundle = functions.get('AuthorizerFunction')!;
    const chunks = readdirSync(path.join(path.dirname(bundle), 'chunks')).map((f) => readFileSync(path.join(path.dirname(bundle), 'chunks', f), 'utf8'));
    expect(chunks.some((text) => text.includes('ERR_JWT_EXPIRED'))).toBe(true);
    // jose's error codes: in the bundle, not in what a cold start loads.
    expect(loaded).not.toContain('ERR_JWT_EXPIRED');
  });

  it('request bodies are checked by code generated at build time: no function compiles a request schema at load', () => {
    for (const name of ['AuthorizerFunction', 'KeysFunction', 'ExecutionsFunction', 'WorkflowsFunction', 'WorkerFunction', 'OpenApiFunction', 'HousekeepingFunction', 'WebhookSenderFunction']) {
      // Ajv's compiler (its option handling) is not loaded at all by these.
      expect({ name, ajvCompiler: initText(name).includes('strictRequired') }).toEqual({ name, ajvCompiler: false });
    }
    // The compiler of users' schemas is in the bundles that need it, in a chunk read on first use.
    for (const name of ['WorkflowsFunction', 'WorkerFunction']) {
      const dir = path.join(path.dirname(functions.get(name)!), 'chunks');
      const chunks = readdirSync(dir).map((f) => readFileSync(path.join(dir, f), 'utf8'));
      expect({ name, compilerInAChunk: chunks.some((text) => text.includes('strictRequired')) }).toEqual({ name, compilerInAChunk: true });
    }
    // The generated validators (schemas.ts's request schemas, Ajv's messages) are in the bundles that check bodies.
    expect(initText('KeysFunction')).toContain('must NOT have additional properties');
  });
});
