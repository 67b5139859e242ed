/**
 * A client generated from the previous release's OpenAPI document keeps working against this release
 * (issue #21 item 1; docs/api.md "Versions and breaking changes"). The previous document is
 * test/fixtures/openapi-previous.json, the document main 331fa08 served, committed before this
 * release changed anything. Here: openapi-typescript generates its types, a small program calls the API
 * through openapi-fetch with them, tsc type-checks that program (typed calls only: a call the old
 * document does not allow would not compile), and node runs it against the new stack.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript';
import ts from 'typescript';
import { PROJECT_ROOT } from '../../local-runner/state.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const run = promisify(execFile);
const PREVIOUS = path.join(PROJECT_ROOT, 'test', 'fixtures', 'openapi-previous.json');

/** The program an integrator wrote against the previous release, its calls typed by that document. */
const PROGRAM = `
import createClient from 'openapi-fetch';
import type { paths } from './schema.js';

const api = createClient<paths>({ baseUrl: process.env['BASE_URL']!, headers: { 'x-api-key': process.env['API_KEY']! } });
const out: Record<string, unknown> = {};
function must<T>(what: string, r: { data?: T; error?: unknown; response: Response }): T {
  if (r.data === undefined) throw new Error(what + ': ' + r.response.status + ' ' + JSON.stringify(r.error));
  return r.data;
}

const me = must('GET /me', await api.GET('/me'));
out['me'] = { kind: me.kind, account: me.account.account_id, tier: me.account.tier };
const verify = must('GET /keys/verify', await api.GET('/keys/verify'));
out['verify'] = { key_id: verify.key_id, limit: verify.rate_limit.limit };

// A key with the legacy scope (deprecated now, still accepted), retried with the same Idempotency-Key.
const createdReply = await api.POST('/keys', { body: { name: 'old client', scope: 'free' }, params: { header: { 'Idempotency-Key': 'previous-client-1' } } });
const created = must('POST /keys', createdReply);
const replay = must('POST /keys again', await api.POST('/keys', { body: { name: 'old client', scope: 'free' }, params: { header: { 'Idempotency-Key': 'previous-client-1' } } }));
out['created'] = { status: createdReply.response.status, plaintext: 'api_key' in created, replayed_plaintext: 'api_key' in replay, same: created.key_id === replay.key_id };
const got = must('GET /keys/{key_id}', await api.GET('/keys/{key_id}', { params: { path: { key_id: created.key_id } } }));
const edited = must('PATCH /keys/{key_id}', await api.PATCH('/keys/{key_id}', { params: { path: { key_id: got.key_id } }, body: { name: 'old client, renamed' } }));
out['edited'] = edited.name;

// Paging as the old document describes it: until next_token is null.
const sizes: number[] = [];
let token: string | undefined;
do {
  const page = must('GET /keys', await api.GET('/keys', { params: { query: { limit: 1, ...(token ? { next_token: token } : {}) } } }));
  sizes.push(page.items.length);
  token = page.next_token ?? undefined;
} while (token !== undefined && sizes.length < 10);
out['key_pages'] = sizes;

// Errors, typed by the old document's Error.
const missing = await api.GET('/keys/{key_id}', { params: { path: { key_id: 'key_missing' } } });
out['missing'] = { status: missing.response.status, code: missing.error?.code };
const invalid = await api.POST('/keys', { body: { name: '', scope: 'free' } });
out['invalid'] = { status: invalid.response.status, code: invalid.error?.code, fields: invalid.error?.details?.map((d) => d.field) };

// Workflows, runs and executions, a failed run among them.
// The old document typed input_schema as an empty object (1.1.0 types it as an open map): {} it is.
const definition = { input_schema: {}, steps: [{ id: 'up', model: 'uppercase', input: { text: '$.input.text' } }], output: '$.steps.up.output.text' };
must('POST /workflows', await api.POST('/workflows', { body: { slug: 'old-shout', name: 'Old shout', definition } }));
must('POST /workflows/{slug}/deploy', await api.POST('/workflows/{slug}/deploy', { params: { path: { slug: 'old-shout' } } }));
const ran = must('POST /workflows/{slug}/run', await api.POST('/workflows/{slug}/run', { params: { path: { slug: 'old-shout' } }, body: { input: { text: 'hi' } } }));
const failed = must('POST /workflows/{slug}/run (fails)', await api.POST('/workflows/{slug}/run', { params: { path: { slug: 'old-shout' } }, body: { input: { text: 5 } } }));
// A run answers 200 with the execution, or 202 with the queued one: the old types say so.
if (!('output' in ran) || !('error' in failed)) throw new Error('a sync run answered as an async one');
out['runs'] = [{ status: ran.status, output: ran.output }, { status: failed.status, error: typeof failed.error }];
const queued = await api.POST('/workflows/{slug}/run', { params: { path: { slug: 'old-shout' }, query: { async: 'true' } }, body: { input: { text: 'later' } } });
out['queued'] = { status: queued.response.status, location: queued.response.headers.get('Location') !== null };
const executions = must('GET /executions', await api.GET('/executions', { params: { query: { workflow: 'old-shout', limit: 2 } } }));
out['executions'] = executions.items.map((e) => e.workflow_slug);
const one = must('GET /executions/{execution_id}', await api.GET('/executions/{execution_id}', { params: { path: { execution_id: ran.execution_id } } }));
out['execution'] = one.status;

const models = must('GET /models', await api.GET('/models'));
out['models'] = models.items.map((m) => m.id).slice(0, 5);
const model = must('POST /models/{model_id}/run', await api.POST('/models/{model_id}/run', { params: { path: { model_id: 'word-count' } }, body: { input: { text: 'a b c' } } }));
out['model'] = model.output;
const events = must('GET /audit-events', await api.GET('/audit-events', { params: { query: { action: 'key.created', limit: 5 } } }));
out['events'] = events.items.every((e) => e.action === 'key.created');
const secret = must('GET /webhooks/secret', await api.GET('/webhooks/secret'));
out['secret'] = secret.secret.startsWith('whsec_');
const revoked = await api.DELETE('/keys/{key_id}', { params: { path: { key_id: created.key_id } } });
out['revoked'] = revoked.response.status;

process.stdout.write(JSON.stringify(out));
`;

/** A call the old document does not allow: it must not compile (so the type check above can fail). */
const WRONG = `
import createClient from 'openapi-fetch';
import type { paths } from './schema.js';
const api = createClient<paths>({ baseUrl: 'http://localhost' });
await api.GET('/keys', { params: { query: { limit: 'ten' } } });
await api.POST('/keys', { body: { name: 'x', scope: 'root' } });
`;

let t: TestStack;
let dir: string;

beforeAll(async () => {
  t = await startTestStack('e2e-previous-client');
  // Inside the project, so `openapi-fetch` resolves from its node_modules.
  const cache = path.join(PROJECT_ROOT, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  dir = mkdtempSync(path.join(cache, 'previous-client-'));
  const schema = astToString(await openapiTS(JSON.parse(readFileSync(PREVIOUS, 'utf8')) as OpenAPI3));
  writeFileSync(path.join(dir, 'schema.ts'), schema);
  writeFileSync(path.join(dir, 'client.ts'), PROGRAM);
  writeFileSync(path.join(dir, 'wrong.ts'), WRONG);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
});
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await t?.close();
});

/** tsc on one entry file of the program: its diagnostics, emitting JavaScript when there are none. */
function compile(entry: string): string[] {
  const program = ts.createProgram([path.join(dir, entry)], {
    strict: true,
    noUncheckedIndexedAccess: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: ['node'],
    outDir: dir,
    rootDir: dir,
    noEmitOnError: true,
  });
  const emitted = program.emit();
  return [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics].map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

it('the previous document is the one main 331fa08 served: before this release’s additions', () => {
  const previous = JSON.parse(readFileSync(PREVIOUS, 'utf8')) as { info: { version: string }; components: { schemas: { Execution: { properties: Record<string, unknown> } } } };
  expect(previous.info.version).toBe('1.0.0');
  expect(previous.components.schemas.Execution.properties).not.toHaveProperty('failure');
});

it('the generated types reject a call the old document does not allow (the type check is real)', () => {
  const errors = compile('wrong.ts');
  expect(errors.length).toBeGreaterThanOrEqual(2);
});

it('a client generated from it type-checks, and works against this release', async () => {
  expect(compile('client.ts')).toEqual([]);
  const { stdout } = await run(process.execPath, [path.join(dir, 'client.js')], {
    env: { ...process.env, BASE_URL: t.stack.apiUrl, API_KEY: (await t.account('business')).key },
    timeout: 60_000,
  });
  const out = JSON.parse(stdout) as Record<string, unknown>;
  expect(out).toEqual({
    me: { kind: 'key', account: expect.stringMatching(/^acct_/), tier: 'business' },
    verify: { key_id: expect.stringMatching(/^key_/), limit: 1000 },
    created: { status: 201, plaintext: true, replayed_plaintext: false, same: true },
    edited: 'old client, renamed',
    // Two keys, one a page: the last page is full and says nothing follows.
    key_pages: [1, 1],
    missing: { status: 404, code: 'NOT_FOUND' },
    invalid: { status: 400, code: 'VALIDATION_ERROR', fields: expect.arrayContaining(['name']) },
    runs: [
      { status: 'SUCCEEDED', output: 'HI' },
      { status: 'FAILED', error: 'string' },
    ],
    queued: { status: 202, location: true },
    executions: ['old-shout', 'old-shout'],
    execution: 'SUCCEEDED',
    models: ['echo', 'uppercase', 'word-count', 'sleep', 'fail'],
    model: { count: 3 },
    events: true,
    secret: true,
    revoked: 204,
  });
}, 120_000);
