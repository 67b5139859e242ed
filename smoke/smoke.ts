/**
 * The smoke test of a running Knouds API, deployed or local (`npm run smoke`, smoke/run.ts): a short,
 * non-destructive walk through what a client relies on. It uses only the public API, with Node's
 * global fetch, and the admin key it is given:
 *
 *   health, openapi, verify, rate-limit headers, me, bearer refusal,
 *   key: create, key: use, workflow: create, deploy, run sync, run async (polled to its end),
 *   then, whatever failed before: workflow: delete, key: revoke (the key refused at once afterwards).
 *
 * Everything it makes is named `smoke-<random>…` (a leftover is recognisable) and removed in a
 * `finally`; the temporary key also expires by itself in 7 days. What it cannot remove: the two
 * executions it ran (the API has no delete for executions) and the audit events of its changes.
 * It never prints a key: only a key's display prefix (its first 16 characters, as the API shows it).
 */
import { randomBytes } from 'node:crypto';

export type StepStatus = 'pass' | 'fail' | 'skip';

export interface StepResult {
  readonly name: string;
  readonly status: StepStatus;
  readonly ms: number;
  readonly detail: string;
}

export interface SmokeOptions {
  /** The stage URL, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/v1` or `http://localhost:3000/v1`. */
  readonly url: string;
  /** An API key with keys:write, workflow:read, workflow:write, workflow:run and execution:read (the `admin` scope has them). */
  readonly key: string;
  /** How long the async run may take to end. @default 60 s */
  readonly runTimeoutMs?: number;
  /** The longest it waits out one 429 (Retry-After) before giving up on that request. @default 65 s */
  readonly maxRateLimitWaitMs?: number;
  /** Stops the remaining checks (cleanup still runs). */
  readonly signal?: AbortSignal;
  /** Called as each step ends (to print progress). */
  readonly onStep?: (result: StepResult) => void;
}

export interface SmokeReport {
  readonly results: readonly StepResult[];
  /** `smoke-<random>`: the prefix of everything this run made. */
  readonly runId: string;
  /** What cleanup could not remove (empty when all went): `key <id> (<name>)`, `workflow <slug>`. */
  readonly leftovers: readonly string[];
  readonly ok: boolean;
}

/** A check that did not hold: its message is the step's detail. */
class CheckFailed extends Error {}

interface Reply {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  readonly text: string;
  /** Seconds spent waiting out 429s. */
  readonly waited: number;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `code: error` of an error body, for messages. */
function describe(reply: Reply): string {
  const b = reply.body;
  if (isObject(b) && typeof b['code'] === 'string') return `${reply.status} ${b['code']}: ${String(b['error'] ?? '')}`;
  return `${reply.status} ${reply.text.slice(0, 200)}`;
}

function expectStatus(reply: Reply, status: number): Json {
  if (reply.status !== status) throw new CheckFailed(`${reply.method} ${reply.path}: expected ${status}, got ${describe(reply)}`);
  return isObject(reply.body) ? reply.body : {};
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

/** A key's display prefix (its first 16 characters, what the API itself shows): never the key. */
export const displayPrefix = (key: string) => `${key.slice(0, 16)}…`;

const TERMINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export async function runSmoke(options: SmokeOptions): Promise<SmokeReport> {
  const base = options.url.replace(/\/+$/, '');
  const runTimeoutMs = options.runTimeoutMs ?? 60_000;
  const maxWaitMs = options.maxRateLimitWaitMs ?? 65_000;
  const stop = options.signal;
  const runId = `smoke-${randomBytes(4).toString('hex')}`;
  const results: StepResult[] = [];
  const leftovers: string[] = [];

  /**
   * One request with Node's fetch. `key: null` sends no x-api-key. A 429 (the key's rate limit, the
   * stage's throttle, the account's async limit) is waited out per Retry-After and sent again, up to
   * `maxWaitMs` in all: a refused request did nothing, so sending it again is safe.
   * `cleanup` requests ignore the stop signal: they must run after a Ctrl-C too.
   */
  async function request(
    method: string,
    path: string,
    init: { key?: string | null; headers?: Record<string, string>; body?: unknown; timeoutMs?: number; cleanup?: boolean } = {},
  ): Promise<Reply> {
    const key = init.key === undefined ? options.key : init.key;
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (key !== null) headers['x-api-key'] = key;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    let waited = 0;
    for (;;) {
      const timeout = AbortSignal.timeout(init.timeoutMs ?? 30_000);
      const response = await fetch(`${base}${path}`, {
        method,
        headers,
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        signal: stop && !init.cleanup ? AbortSignal.any([stop, timeout]) : timeout,
      });
      const text = await response.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      if (response.status === 429) {
        const after = Number(response.headers.get('retry-after') ?? '1');
        const seconds = Number.isFinite(after) && after > 0 ? Math.min(after, 60) : 1;
        if ((waited + seconds) * 1000 <= maxWaitMs && !(stop?.aborted && !init.cleanup)) {
          await sleep(seconds * 1000, init.cleanup ? undefined : stop);
          waited += seconds;
          continue;
        }
      }
      return { method, path, status: response.status, headers: response.headers, body, text, waited };
    }
  }

  /**
   * Runs one step and records it: `pass` with the detail it returns, `fail` with the reason, `skip`
   * when `needs` names what it lacks (an earlier step that did not pass) or the run was stopped.
   */
  async function step(name: string, run: () => Promise<string>, needs?: string | false, cleanup = false): Promise<boolean> {
    const started = performance.now();
    const record = (status: StepStatus, detail: string) => {
      const result = { name, status, ms: Math.round(performance.now() - started), detail };
      results.push(result);
      options.onStep?.(result);
      return status === 'pass';
    };
    if (typeof needs === 'string') return record('skip', `needs ${needs}`);
    if (stop?.aborted && !cleanup) return record('skip', 'stopped');
    try {
      return record('pass', await run());
    } catch (error) {
      if (error instanceof CheckFailed) return record('fail', error.message);
      const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
      const message = (error as Error).name === 'TimeoutError' ? 'timed out' : (error as Error).message;
      return record('fail', `${message}${cause?.code ? ` (${cause.code})` : cause?.message ? ` (${cause.message})` : ''}`);
    }
  }

  const passed = (name: string) => results.some((r) => r.name === name && r.status === 'pass');
  /** `false` when every named step passed, else the reason to skip (for `step`'s `needs`). */
  const after = (...names: string[]): string | false => {
    const missing = names.filter((n) => !passed(n));
    return missing.length === 0 ? false : missing.map((n) => `'${n}'`).join(' and ');
  };

  // ——— The stage and the caller ———

  await step('health', async () => {
    const reply = await request('GET', '/health', { key: null });
    if (reply.status === 404 && !/\/v\d+$/.test(base)) throw new CheckFailed(`GET /health: 404; is ${base} the stage URL (ending in /v1)?`);
    const body = expectStatus(reply, 200);
    check(body['status'] === 'ok', `GET /health: expected {"status": "ok"}, got ${reply.text.slice(0, 200)}`);
    return 'status ok';
  });

  await step('openapi', async () => {
    const body = expectStatus(await request('GET', '/openapi.json', { key: null }), 200);
    check(typeof body['openapi'] === 'string' && body['openapi'].startsWith('3.1'), `GET /openapi.json: expected an OpenAPI 3.1 document, got openapi=${JSON.stringify(body['openapi'])}`);
    const paths = isObject(body['paths']) ? body['paths'] : {};
    const wanted = ['/health', '/keys/verify', '/keys', '/workflows/{slug}/run', '/executions/{execution_id}'];
    const missing = wanted.filter((p) => !(p in paths));
    check(missing.length === 0, `GET /openapi.json: no ${missing.join(', ')} among its paths`);
    return `OpenAPI ${body['openapi']}, ${Object.keys(paths).length} paths`;
  });

  let admin: Json = {};
  let verifyReply: Reply | undefined;
  await step('verify', async () => {
    verifyReply = await request('GET', '/keys/verify');
    admin = expectStatus(verifyReply, 200);
    check(typeof admin['key_id'] === 'string' && typeof admin['account_id'] === 'string', 'GET /keys/verify: no key_id or account_id in the answer');
    check(Array.isArray(admin['capabilities']) && Array.isArray(admin['workspaces']), 'GET /keys/verify: no capabilities or workspaces in the answer');
    const limit = isObject(admin['rate_limit']) ? admin['rate_limit'] : {};
    check(Number.isInteger(limit['limit']) && Number.isInteger(limit['remaining']) && Number.isInteger(limit['reset']), 'GET /keys/verify: rate_limit is not {limit, remaining, reset}');
    return `${displayPrefix(options.key)} ${String(admin['key_id'])}, account ${String(admin['account_id'])} (${String(admin['tier'])}, ${String(admin['environment'])})`;
  });

  await step('rate-limit headers', async () => {
    const reply = verifyReply!;
    const values = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'].map((h) => [h, reply.headers.get(h)] as const);
    const absent = values.filter(([, v]) => v === null || !/^\d+$/.test(v)).map(([h]) => h);
    check(absent.length === 0, `GET /keys/verify: no integer ${absent.join(', ')} header`);
    const [limit, remaining, reset] = values.map(([, v]) => Number(v)) as [number, number, number];
    check(remaining <= limit, `X-RateLimit-Remaining ${remaining} is above X-RateLimit-Limit ${limit}`);
    const body = isObject(admin['rate_limit']) ? admin['rate_limit'] : {};
    check(body['limit'] === limit, `X-RateLimit-Limit ${limit} differs from the body's rate_limit.limit ${String(body['limit'])}`);
    check(reset > 1_000_000_000, `X-RateLimit-Reset ${reset} is not Unix epoch seconds`);
    return `limit ${limit}/min, remaining ${remaining}, reset ${reset}`;
  }, after('verify'));

  await step('me', async () => {
    const me = expectStatus(await request('GET', '/me'), 200);
    check(me['kind'] === 'key', `GET /me: expected kind "key", got ${JSON.stringify(me['kind'])}`);
    const key = isObject(me['key']) ? me['key'] : {};
    const account = isObject(me['account']) ? me['account'] : {};
    check(key['key_id'] === admin['key_id'], `GET /me: key.key_id ${String(key['key_id'])} is not the verified key ${String(admin['key_id'])}`);
    check(account['account_id'] === admin['account_id'], `GET /me: account ${String(account['account_id'])} is not the key's ${String(admin['account_id'])}`);
    return `kind key, ${String(account['active_keys'])} of ${String(account['max_active_keys'])} keys active`;
  }, after('verify'));

  await step('bearer refusal', async () => {
    // A well-formed but unsigned JWT: no identity provider issued it.
    const bogus = ['{"alg":"RS256","typ":"JWT"}', `{"sub":"${runId}","exp":4102444800}`, 'c21va2U']
      .map((part, i) => (i < 2 ? Buffer.from(part).toString('base64url') : part))
      .join('.');
    const reply = await request('GET', '/me', { key: null, headers: { authorization: `Bearer ${bogus}` } });
    const body = expectStatus(reply, 401);
    check(body['code'] === 'UNAUTHORIZED', `GET /me with a bogus Bearer token: expected code UNAUTHORIZED, got ${describe(reply)}`);
    return '401 UNAUTHORIZED';
  });

  // ——— What it makes, and removes whatever happens ———

  let tempKey: string | undefined;
  let tempKeyId: string | undefined;
  let slug: string | undefined;
  /** False while a create's outcome is unknown (a 5xx, a lost answer): its delete may then find nothing. */
  let slugConfirmed = false;
  const text = `${runId} says hello`;
  try {
    await step('key: create', async () => {
      const reply = await request('POST', '/keys', {
        body: {
          name: `${runId}-key`,
          preset: 'read-only',
          // Where the admin key can make keys: its own environment and workspaces.
          environment: admin['environment'] === 'test' ? 'test' : 'live',
          workspaces: admin['workspaces'],
          // Should cleanup fail, it stops by itself.
          expires_in_days: 7,
        },
      });
      const created = expectStatus(reply, 201);
      check(typeof created['api_key'] === 'string' && typeof created['key_id'] === 'string', 'POST /keys: no api_key or key_id in the 201');
      tempKey = created['api_key'];
      tempKeyId = created['key_id'];
      check(tempKey.startsWith(String(created['prefix'])), 'POST /keys: the key does not start with its prefix');
      return `${tempKeyId} (${runId}-key), ${displayPrefix(tempKey)}`;
    }, after('verify'));

    await step('key: use', async () => {
      const verify = expectStatus(await request('GET', '/keys/verify', { key: tempKey! }), 200);
      check(verify['key_id'] === tempKeyId, `GET /keys/verify with the new key: key_id ${String(verify['key_id'])}, expected ${tempKeyId}`);
      // Its one capability works …
      expectStatus(await request('GET', '/workflows?limit=1', { key: tempKey! }), 200);
      // … and what it lacks is refused with the capability named.
      const denied = await request('POST', '/workflows', { key: tempKey!, body: {} });
      const body = expectStatus(denied, 403);
      check(body['code'] === 'CAPABILITY_DENIED' && body['required'] === 'workflow:write', `POST /workflows with a read-only key: expected 403 CAPABILITY_DENIED requiring workflow:write, got ${describe(denied)}`);
      // An API key sent as a Bearer token is refused, the message pointing to x-api-key.
      const bearer = await request('GET', '/keys/verify', { key: null, headers: { authorization: `Bearer ${tempKey!}` } });
      const refusal = expectStatus(bearer, 401);
      check(refusal['code'] === 'UNAUTHORIZED' && /x-api-key/.test(String(refusal['error'])), `the key as a Bearer token: expected 401 UNAUTHORIZED naming x-api-key, got ${describe(bearer)}`);
      return 'verify 200, workflow:read 200, workflow:write 403, as Bearer 401';
    }, after('key: create'));

    await step('workflow: create', async () => {
      slug = runId;
      const workspaces = Array.isArray(admin['workspaces']) ? (admin['workspaces'] as string[]) : ['*'];
      const workspace = workspaces.includes('*') || workspaces.includes('default') ? undefined : workspaces[0];
      const reply = await request('POST', '/workflows', {
        body: {
          slug,
          name: `${runId} workflow`,
          description: 'Made by npm run smoke; deleted at the end of its run.',
          ...(workspace ? { workspace_id: workspace } : {}),
          definition: {
            input_schema: { type: 'object', required: ['text'], properties: { text: { type: 'string' } }, additionalProperties: false },
            steps: [{ id: 'up', model: 'uppercase', input: { text: '$.input.text' } }],
            output: '$.steps.up.output',
          },
        },
      });
      // A 4xx made nothing (a 409 is somebody else's workflow: never delete it); after a 5xx it may exist.
      if (reply.status === 201) slugConfirmed = true;
      else if (reply.status < 500) slug = undefined;
      const body = expectStatus(reply, 201);
      check(body['slug'] === runId && body['status'] === 'draft' && body['version'] === 1, `POST /workflows: expected a draft at version 1, got ${reply.text.slice(0, 200)}`);
      return `${runId}, draft v1, workspace ${String(body['workspace_id'])}`;
    }, after('verify'));

    await step('workflow: deploy', async () => {
      const body = expectStatus(await request('POST', `/workflows/${slug}/deploy`), 200);
      check(body['status'] === 'deployed' && body['deployed_version'] === 1, `POST /workflows/${slug}/deploy: expected deployed version 1, got status ${String(body['status'])}, deployed_version ${String(body['deployed_version'])}`);
      return 'deployed v1';
    }, after('workflow: create'));

    const expectOutput = (execution: Json, where: string) => {
      check(execution['status'] === 'SUCCEEDED', `${where}: expected SUCCEEDED, got ${String(execution['status'])}${execution['error'] ? ` (${String(execution['error'])})` : ''}`);
      const output = isObject(execution['output']) ? execution['output'] : {};
      check(output['text'] === text.toUpperCase(), `${where}: expected output {"text": "${text.toUpperCase()}"}, got ${JSON.stringify(execution['output'])}`);
    };

    await step('workflow: run sync', async () => {
      const reply = await request('POST', `/workflows/${slug}/run`, { body: { input: { text } }, timeoutMs: 35_000 });
      const execution = expectStatus(reply, 200);
      expectOutput(execution, `POST /workflows/${slug}/run`);
      return `SUCCEEDED, ${String(execution['execution_id'])}`;
    }, after('workflow: deploy'));

    await step('workflow: run async', async () => {
      const reply = await request('POST', `/workflows/${slug}/run?async=true`, { body: { input: { text } } });
      const queued = expectStatus(reply, 202);
      const id = queued['execution_id'];
      check(typeof id === 'string' && queued['status'] === 'QUEUED', `POST /workflows/${slug}/run?async=true: expected {execution_id, status: "QUEUED"}, got ${reply.text.slice(0, 200)}`);
      const location = reply.headers.get('location') ?? '';
      check(location.endsWith(`/executions/${id}`), `POST /workflows/${slug}/run?async=true: Location ${JSON.stringify(location)} does not name /executions/${id}`);
      const deadline = Date.now() + runTimeoutMs;
      let polls = 0;
      let delay = 250;
      for (;;) {
        polls++;
        const execution = expectStatus(await request('GET', `/executions/${id}`), 200);
        if (TERMINAL.includes(String(execution['status']))) {
          expectOutput(execution, `GET /executions/${id}`);
          return `${id} QUEUED → SUCCEEDED, ${polls} poll${polls === 1 ? '' : 's'}`;
        }
        if (Date.now() + delay > deadline) throw new CheckFailed(`GET /executions/${id}: still ${String(execution['status'])} after ${Math.round(runTimeoutMs / 1000)} s`);
        if (stop?.aborted) throw new CheckFailed(`stopped while ${id} was ${String(execution['status'])}`);
        await sleep(delay, stop);
        delay = Math.min(delay * 2, 2000);
      }
    }, after('workflow: deploy'));
  } finally {
    // Whatever happened above (a failed check, an exception, Ctrl-C): remove what this run made.
    if (slug !== undefined) {
      const [made, confirmed] = [slug, slugConfirmed];
      const gone = await step('workflow: delete', async () => {
        const deleted = await request('DELETE', `/workflows/${made}`, { cleanup: true });
        if (!confirmed && deleted.status === 404) return 'nothing to delete (its create did not complete)';
        expectStatus(deleted, 204);
        const read = await request('GET', `/workflows/${made}`, { cleanup: true });
        check(read.status === 404, `GET /workflows/${made} after its DELETE: expected 404, got ${describe(read)}`);
        return '204, then GET 404';
      }, false, true);
      if (!gone) leftovers.push(`workflow ${made}`);
    }
    if (tempKeyId !== undefined && tempKey !== undefined) {
      const [id, key] = [tempKeyId, tempKey];
      let revoked = false;
      await step('key: revoke', async () => {
        expectStatus(await request('DELETE', `/keys/${id}`, { cleanup: true }), 204);
        revoked = true;
        // Refused on its very next request: no cache lets it through.
        const after = await request('GET', '/keys/verify', { key, cleanup: true });
        const body = expectStatus(after, 401);
        check(body['code'] === 'UNAUTHORIZED', `GET /keys/verify with the revoked key: expected UNAUTHORIZED, got ${describe(after)}`);
        return '204, then the key 401 at once';
      }, false, true);
      if (!revoked) leftovers.push(`key ${id} (${runId}-key, expires in 7 days)`);
    }
  }
  return { results, runId, leftovers, ok: results.every((r) => r.status === 'pass') };
}

/** The pass/fail table: one row per step, with its time. */
export function formatTable(results: readonly StepResult[]): string {
  const rows = results.map((r) => [r.name, r.status.toUpperCase(), `${r.ms} ms`, r.detail]);
  const head = ['step', 'result', 'time', 'detail'];
  const width = (i: number) => Math.max(head[i]!.length, ...rows.map((r) => r[i]!.length));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 2 ? c.padStart(width(i)) : i === cells.length - 1 ? c : c.padEnd(width(i)))).join('  ').trimEnd();
  return [line(head), line(head.map((_, i) => '-'.repeat(i === 3 ? 6 : width(i)))), ...rows.map(line)].join('\n');
}
