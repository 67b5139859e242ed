/**
 * `npm run soak`: a bounded soak of the whole stack on loopback (not part of `npm test`).
 *
 * Starts the local runner on its own in-memory DynamoDB Local, makes several accounts with keys of
 * different limits, then for `--seconds` (default 60) keeps `--concurrency` (default 32) requests in
 * flight, mixing every route: key reads, edits, creates with revokes and rotations, usage, the webhook
 * secret, workflow reads, sync runs, async runs with signed webhooks to a receiver in this process,
 * cancels, execution reads, models. It stops by itself, waits for the async runs to finish, and checks:
 * - no 5xx;
 * - every rate limit exact: in each key's minute window, admitted ≤ limit, and = limit where any request
 *   was refused with 429;
 * - each key's usage counters in DynamoDB equal the requests the soak saw admitted with that key;
 * - each account's active-key count equals its active keys;
 * - no execution left QUEUED or RUNNING, and every webhook signature valid.
 * Faults, as on AWS (issue #13): a share of DynamoDB writes lose their answer after taking effect
 * (`--lost-responses`, default 0.01: through the fault proxy of test/support), and a share of Lambda's
 * asynchronous events are delivered twice (`--duplicates`, default 0.3). Then a 5xx is only allowed
 * where a fault was injected (never more 5xx than faults), a request is counted at most once (the
 * counters lie between what the soak saw admitted and that plus its 5xx), no run is failed as
 * "interrupted" by a duplicate, and no execution gets webhooks of two different end states.
 * Prints the figures, writes them to soak/results.json, and exits 1 when a check fails.
 * `--skip-synth` reuses soak/cdk.out.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { AuditRepository } from '../lambdas/shared/repositories/audit.js';
import { KeysRepository } from '../lambdas/shared/repositories/keys.js';
import { isExecutionItem, TERMINAL, type ExecutionStatus } from '../lambdas/shared/repositories/executions.js';
import { createAccount, createKey } from '../lambdas/shared/services/keys.js';
import { PROJECT_ROOT } from '../local-runner/state.js';
import { startDynamoDbLocal } from '../local-runner/dynamodb-local.js';
import { startLocalStack, synthesize } from '../local-runner/stack.js';
import { startCountingProxy } from '../test/support/counting-proxy.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '32' },
    'lost-responses': { type: 'string', default: '0.01' },
    duplicates: { type: 'string', default: '0.3' },
    'skip-synth': { type: 'boolean' },
  },
});
const SECONDS = Number(args.seconds);
const CONCURRENCY = Number(args.concurrency);
const LOST = Number(args['lost-responses']);
const DUPLICATES = Number(args.duplicates);
const share = (x: number) => x >= 0 && x <= 1;
if (!(SECONDS > 0 && SECONDS <= 3600) || !(CONCURRENCY >= 1 && CONCURRENCY <= 512) || !share(LOST) || !share(DUPLICATES)) {
  process.stderr.write('Usage: npm run soak -- [--seconds 1-3600] [--concurrency 1-512] [--lost-responses 0-1] [--duplicates 0-1] [--skip-synth]\n');
  process.exit(2);
}
const CDK_OUT = path.join(PROJECT_ROOT, 'soak', 'cdk.out');
const ACCOUNTS = 4;
const say = (line: string) => process.stdout.write(`${line}\n`);

const agent = new Agent({ keepAlive: true, maxSockets: 512 });
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}
function send(url: string, method: string, key: string, body?: unknown): Promise<Answer> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: { 'x-api-key': key, ...(text ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let data = '';
      res.on('data', (c: Buffer) => (data += c.toString()));
      res.on('end', () => {
        let parsed: Record<string, unknown>;
        try {
          parsed = data ? (JSON.parse(data) as Record<string, unknown>) : {};
        } catch {
          parsed = { unparsed: data };
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

interface KeyInfo {
  readonly key: string;
  readonly keyId: string;
  readonly accountId: string;
  readonly limit: number;
}

/** Per key: admitted requests, by window (X-RateLimit-Reset) admitted and refused. */
class Ledger {
  readonly statuses = new Map<number, number>();
  readonly admitted = new Map<string, number>();
  readonly windows = new Map<string, { admitted: number; limited: number; limit: number }>();
  readonly fiveHundreds: string[] = [];
  /** 5xx by key, and by key and minute window (a 5xx of the counter carries no X-RateLimit-Reset). */
  readonly fiveHundredsByKey = new Map<string, number>();
  readonly fiveHundredsByWindow = new Map<string, number>();
  readonly latencies = new Map<string, number[]>();

  record(info: KeyInfo, what: string, answer: Answer): void {
    this.statuses.set(answer.status, (this.statuses.get(answer.status) ?? 0) + 1);
    if (answer.status >= 500) {
      this.fiveHundreds.push(`${what} → ${answer.status} ${JSON.stringify(answer.body)}`);
      this.fiveHundredsByKey.set(info.keyId, (this.fiveHundredsByKey.get(info.keyId) ?? 0) + 1);
      const reset = (Math.floor(Date.now() / 60_000) + 1) * 60;
      for (const r of [reset - 60, reset, reset + 60]) {
        const k = `${info.keyId} ${r}`;
        this.fiveHundredsByWindow.set(k, (this.fiveHundredsByWindow.get(k) ?? 0) + 1);
      }
      // Counted or not, depending on where the fault struck: the checks allow for both.
      return;
    }
    if (answer.status === 401) return; // refused by the authorizer: never counted
    const reset = String(answer.headers['x-ratelimit-reset'] ?? '?');
    const w = this.windows.get(`${info.keyId} ${reset}`) ?? { admitted: 0, limited: 0, limit: info.limit };
    // A run refused for the account's runs in flight (429 CONCURRENCY_LIMIT_EXCEEDED) was admitted by the
    // key's rate limit, and counted: it is no refusal of the limiter's.
    if (answer.status === 429 && answer.body['code'] !== 'CONCURRENCY_LIMIT_EXCEEDED') w.limited++;
    else {
      w.admitted++;
      this.admitted.set(info.keyId, (this.admitted.get(info.keyId) ?? 0) + 1);
    }
    this.windows.set(`${info.keyId} ${reset}`, w);
  }
}

async function main() {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  say(`Knouds API soak — ${machine}: ${SECONDS} s at concurrency ${CONCURRENCY}, ${ACCOUNTS} accounts`);
  if (!args['skip-synth']) {
    say('Synthesizing…');
    await synthesize(CDK_OUT);
  }
  say('Starting DynamoDB Local (in memory), the fault proxy and the local stack…');
  const ddb = await startDynamoDbLocal();
  const proxy = await startCountingProxy(ddb.endpoint);
  const stack = await startLocalStack({
    port: 0,
    cdkOut: CDK_OUT,
    skipSynth: true,
    tableNamePrefix: 'soak',
    seed: false,
    dynamodbEndpoint: proxy.endpoint,
    duplicateDeliveryRate: DUPLICATES,
  });
  const { tables, settings } = stack.state;
  const deps = {
    keys: new KeysRepository(stack.doc, { keys: tables.keys, accounts: tables.accounts }),
    accounts: new AccountsRepository(stack.doc, tables.accounts),
    audit: new AuditRepository(stack.doc, tables.audit, settings.auditRetentionDays),
    settings,
  };
  const api = stack.apiUrl;

  // The webhook receiver: checks every signature with the account's secret.
  const secrets = new Map<string, Buffer>();
  const webhooks = { delivered: 0, badSignature: 0, byExecution: new Set<string>(), types: new Map<string, Set<string>>() };
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const account = new URL(req.url ?? '/', 'http://x').searchParams.get('account') ?? '';
      const id = String(req.headers['webhook-id']);
      const ts = String(req.headers['webhook-timestamp']);
      const expected = createHmac('sha256', secrets.get(account) ?? Buffer.alloc(0)).update(`${id}.${ts}.${body}`).digest();
      const ok = String(req.headers['webhook-signature'] ?? '')
        .split(' ')
        .some((s) => {
          const given = Buffer.from(s.replace(/^v1,/, ''), 'base64');
          return given.length === expected.length && timingSafeEqual(given, expected);
        });
      webhooks.delivered++;
      if (!ok) webhooks.badSignature++;
      const parsed = JSON.parse(body) as { type?: string; data?: { execution_id?: string } };
      const data = parsed.data;
      if (data?.execution_id) {
        webhooks.byExecution.add(data.execution_id);
        webhooks.types.set(data.execution_id, (webhooks.types.get(data.execution_id) ?? new Set()).add(String(parsed.type)));
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookUrl = (accountId: string) => `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook?account=${accountId}`;

  const ledger = new Ledger();
  const keyInfos: KeyInfo[] = [];
  const workhorses: KeyInfo[][] = [];
  const limitedKeys: KeyInfo[] = [];
  const asyncRuns = new Map<string, KeyInfo>();
  const call = async (info: KeyInfo, method: string, p: string, body?: unknown) => {
    const t0 = performance.now();
    const answer = await send(`${api}${p}`, method, info.key, body);
    const route = `${method} ${p.replace(/\?.*$/, '').replace(/key_\w+|exe_\w+/g, '{id}')}`;
    ledger.latencies.set(route, [...(ledger.latencies.get(route) ?? []), performance.now() - t0]);
    ledger.record(info, `${method} ${p}`, answer);
    return answer;
  };

  try {
    say('Making accounts, keys and workflows…');
    for (let a = 0; a < ACCOUNTS; a++) {
      const accountId = `acct_soak_${a}`;
      await createAccount(deps, accountId, 'business');
      const mine: KeyInfo[] = [];
      for (let k = 0; k < 3; k++) {
        const c = await createKey(deps, accountId, { name: `workhorse ${k}`, scope: 'admin' });
        mine.push({ key: c.apiKey, keyId: c.key.key_id, accountId, limit: settings.tiers.business.liveRateLimit });
      }
      const limited = await createKey(deps, accountId, { name: 'limited', scope: 'admin', environment: 'test' });
      limitedKeys.push({ key: limited.apiKey, keyId: limited.key.key_id, accountId, limit: settings.tiers.business.testRateLimit });
      workhorses.push(mine);
      keyInfos.push(...mine, limitedKeys[a]!);
      const w = mine[0]!;
      const echo = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
      const nap = { input_schema: {}, steps: [{ id: 's', model: 'sleep', input: { ms: 300 } }, { id: 'u', model: 'uppercase', input: { text: 'done' } }], output: '$.steps.u.output' };
      for (const [slug, definition] of [['echo', echo], ['nap', nap]] as const) {
        await call(w, 'POST', '/workflows', { slug, name: slug, definition });
        await call(w, 'POST', `/workflows/${slug}/deploy`);
      }
      const secret = await call(w, 'GET', '/webhooks/secret');
      secrets.set(accountId, Buffer.from(String(secret.body['secret']).slice('whsec_'.length), 'base64'));
    }

    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
    const someExecution = new Map<string, string>();
    // One iteration: a route chosen by weight, as a workhorse key of a random account.
    const operations: [number, (w: KeyInfo, a: number) => Promise<unknown>][] = [
      [14, (w) => call(w, 'GET', '/keys/verify')],
      [10, (_w, a) => call(limitedKeys[a]!, 'GET', '/keys/verify')],
      [5, (w) => call(w, 'GET', '/keys?limit=5')],
      [4, (w) => call(w, 'GET', `/keys/${w.keyId}`)],
      [4, (w) => call(w, 'PATCH', `/keys/${w.keyId}`, { name: `workhorse ${Math.random().toString(36).slice(2, 6)}` })],
      [4, (w) => call(w, 'GET', `/keys/${w.keyId}/usage`)],
      [
        4,
        async (w) => {
          const created = await call(w, 'POST', '/keys', { name: 'churn', preset: 'read-only' });
          if (created.status === 201) await call(w, 'DELETE', `/keys/${String(created.body['key_id'])}`);
        },
      ],
      [
        3,
        async (w) => {
          const created = await call(w, 'POST', '/keys', { name: 'rotating', preset: 'read-only' });
          if (created.status !== 201) return;
          const rotated = await call(w, 'POST', `/keys/${String(created.body['key_id'])}/rotate`, {});
          const last = rotated.status === 201 ? String(rotated.body['key_id']) : String(created.body['key_id']);
          await call(w, 'DELETE', `/keys/${last}`);
        },
      ],
      [3, (w) => call(w, 'GET', '/webhooks/secret')],
      [4, (w) => call(w, 'GET', '/workflows')],
      [5, (w) => call(w, 'GET', '/workflows/echo')],
      [
        10,
        async (w) => {
          const run = await call(w, 'POST', '/workflows/echo/run', { input: { n: Math.random() } });
          if (run.status === 200) someExecution.set(w.accountId, String(run.body['execution_id']));
        },
      ],
      [
        5,
        async (w) => {
          const run = await call(w, 'POST', '/workflows/nap/run?async=true', { input: {}, webhook_url: hookUrl(w.accountId) });
          if (run.status === 202) asyncRuns.set(String(run.body['execution_id']), w);
          if (run.status === 202 && Math.random() < 0.3) await call(w, 'POST', `/executions/${String(run.body['execution_id'])}/cancel`);
        },
      ],
      [4, (w) => call(w, 'GET', '/executions?limit=10')],
      [
        4,
        async (w) => {
          const id = someExecution.get(w.accountId);
          if (id) await call(w, 'GET', `/executions/${id}`);
        },
      ],
      [3, (w) => call(w, 'GET', '/models')],
      [5, (w) => call(w, 'POST', '/models/uppercase/run', { input: { text: 'soak' } })],
    ];
    const totalWeight = operations.reduce((s, [w]) => s + w, 0);
    const choose = () => {
      let r = Math.random() * totalWeight;
      for (const [weight, op] of operations) if ((r -= weight) < 0) return op;
      return operations[0]![1];
    };

    if (LOST > 0) {
      for (const operation of ['PutItem', 'UpdateItem', 'DeleteItem', 'TransactWriteItems']) {
        proxy.inject({ operation, fault: 'lose-response', probability: LOST });
      }
    }
    proxy.reset();
    say(`Soaking for ${SECONDS} s (lost responses ${LOST * 100} % of writes, duplicate deliveries ${DUPLICATES * 100} % of async events)…`);
    const started = performance.now();
    const deadline = started + SECONDS * 1000;
    let iterations = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < deadline) {
          const a = Math.floor(Math.random() * ACCOUNTS);
          try {
            await choose()(pick(workhorses[a]!), a);
          } catch (error) {
            failures.push(String(error));
          }
          iterations++;
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;

    say('Waiting for the async runs to finish…');
    const settleBy = Date.now() + 60_000;
    let open: { id: string; status: string }[] = [];
    do {
      const out = await stack.doc.send(new ScanCommand({ TableName: tables.executions, ConsistentRead: true }));
      open = (out.Items ?? [])
        // Executions only: cancels' signals, sync slots and redelivery counters have no status.
        .filter((i) => isExecutionItem(i) && !TERMINAL.includes(i['status'] as ExecutionStatus))
        .map((i) => ({ id: String(i['execution_id']), status: String(i['status']) }));
      if (open.length > 0) await new Promise((r) => setTimeout(r, 500));
    } while (open.length > 0 && Date.now() < settleBy);
    // Webhooks of the last runs may still be on their way.
    const hooksBy = Date.now() + 15_000;
    while (webhooks.byExecution.size < asyncRuns.size && Date.now() < hooksBy) await new Promise((r) => setTimeout(r, 200));

    proxy.clearFaults();
    const injected = proxy.injected();
    say('Checking…');
    const requests = [...ledger.statuses.values()].reduce((s, n) => s + n, 0);
    const limited = ledger.statuses.get(429) ?? 0;
    const admitted = [...ledger.admitted.values()].reduce((s, n) => s + n, 0);
    const limitViolations: string[] = [];
    for (const [window, w] of ledger.windows) {
      if (w.admitted > w.limit) limitViolations.push(`${window}: ${w.admitted} admitted over a limit of ${w.limit}`);
      // A request whose counter answer was lost was counted (once) and answered 500.
      const lost = ledger.fiveHundredsByWindow.get(window) ?? 0;
      if (w.limited > 0 && w.admitted + lost < w.limit) limitViolations.push(`${window}: ${w.limited} refused but only ${w.admitted} of ${w.limit} admitted`);
    }
    const limitedWindows = [...ledger.windows.values()].filter((w) => w.limited > 0).length;
    const counterMismatches: string[] = [];
    for (const info of keyInfos) {
      const out = await stack.doc.send(new QueryCommand({ TableName: tables.usage, KeyConditionExpression: 'key_id = :k', ExpressionAttributeValues: { ':k': info.keyId } }));
      const counted = (out.Items ?? []).reduce((s, i) => s + Number(i['requests'] ?? 0), 0);
      const seen = ledger.admitted.get(info.keyId) ?? 0;
      const failed = ledger.fiveHundredsByKey.get(info.keyId) ?? 0;
      // Counted at most once each: never less than the admitted requests, never more than those and the 5xx.
      if (counted < seen || counted > seen + failed) {
        counterMismatches.push(`${info.keyId}: DynamoDB counted ${counted}, the soak saw ${seen} admitted and ${failed} 5xx`);
      }
    }
    const keyCountDrift: string[] = [];
    for (let a = 0; a < ACCOUNTS; a++) {
      const accountId = `acct_soak_${a}`;
      const active = (await deps.keys.listActive(accountId, new Date(), 100)).items.length;
      const counted = (await deps.accounts.get(accountId))?.active_keys;
      if (active !== counted) keyCountDrift.push(`${accountId}: active_keys ${counted}, active keys ${active}`);
    }
    const missingWebhooks = [...asyncRuns.keys()].filter((id) => !webhooks.byExecution.has(id)).length;
    const conflictingWebhooks = [...webhooks.types.values()].filter((types) => types.size > 1).length;
    const all = await stack.doc.send(new ScanCommand({ TableName: tables.executions, ConsistentRead: true }));
    const interrupted = (all.Items ?? []).filter((i) => i['error'] === 'the run was interrupted').length;
    const unexplained5xx = Math.max(0, ledger.fiveHundreds.length - injected);
    const non_generic_5xx = ledger.fiveHundreds.filter((line) => !line.includes('"code":"INTERNAL_ERROR"')).length;

    const figures = {
      machine,
      seconds: Number(elapsed.toFixed(1)),
      concurrency: CONCURRENCY,
      accounts: ACCOUNTS,
      iterations,
      requests,
      requests_per_second: Math.round(requests / elapsed),
      admitted,
      limited_429: limited,
      windows_with_429: limitedWindows,
      statuses: Object.fromEntries([...ledger.statuses.entries()].sort(([x], [y]) => x - y)),
      faults_injected: injected,
      duplicate_delivery_rate: DUPLICATES,
      five_hundreds: ledger.fiveHundreds.length,
      unexplained_5xx: unexplained5xx,
      non_generic_5xx,
      client_errors: failures.length,
      limit_violations: limitViolations.length,
      counter_mismatches: counterMismatches.length,
      key_count_drift: keyCountDrift.length,
      async_runs: asyncRuns.size,
      stuck_executions: open.length,
      webhooks_delivered: webhooks.delivered,
      webhooks_missing: missingWebhooks,
      webhook_bad_signatures: webhooks.badSignature,
      webhooks_of_two_end_states: conflictingWebhooks,
      runs_failed_as_interrupted: interrupted,
    };
    say('\n  p50 latency by route (ms, n):');
    for (const [route, xs] of [...ledger.latencies.entries()].sort()) {
      const sorted = [...xs].sort((x, y) => x - y);
      say(`    ${route.padEnd(40)} ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1).padStart(8)} ${String(xs.length).padStart(6)}`);
    }
    say('');
    for (const [k, v] of Object.entries(figures)) say(`  ${k.padEnd(24)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    for (const line of [...ledger.fiveHundreds, ...failures, ...limitViolations, ...counterMismatches, ...keyCountDrift].slice(0, 20)) say(`  ! ${line}`);
    for (const o of open.slice(0, 5)) say(`  ! execution ${o.id} still ${o.status}`);
    writeFileSync(path.join(PROJECT_ROOT, 'soak', 'results.json'), `${JSON.stringify(figures, null, 2)}\n`);
    const failed =
      figures.unexplained_5xx +
        figures.non_generic_5xx +
        figures.client_errors +
        figures.limit_violations +
        figures.counter_mismatches +
        figures.key_count_drift +
        figures.stuck_executions +
        figures.webhook_bad_signatures +
        figures.webhooks_missing +
        figures.webhooks_of_two_end_states +
        figures.runs_failed_as_interrupted >
        0 || limitedWindows === 0;
    say(
      failed
        ? '\nSOAK FAILED'
        : '\nSoak passed: no 5xx but where a fault was injected, limits exact, each request counted at most once, no key-count drift, no stuck or interrupted execution. Wrote soak/results.json',
    );
    process.exitCode = failed ? 1 : 0;
  } finally {
    receiver.close();
    agent.destroy();
    await stack.close();
    await proxy.close();
    await ddb.stop();
  }
}

await main();
