/**
 * `npm run bench`: measures the hot path against its physical floor, in one run, on this machine.
 *
 *   npm run bench [-- --skip-synth] [--quick]
 *
 * It starts its own DynamoDB Local, serves the synthesized stack with the local runner (function logs
 * off, as with `npm start -- --quiet-logs`), counts every DynamoDB call of the functions and of the floor
 * where they arrive, the runner's IAM proxy (bench/meter.ts), and prints one table; the same figures go
 * to bench/results.json. Latency figures are medians of three interleaved rounds.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { BatchWriteItemCommand, DynamoDBClient, type BatchWriteItemCommandOutput, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { hashApiKey } from '../lambdas/shared/api-key.js';
import { createAccount, createKey } from '../lambdas/shared/services/keys.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { AuditRepository } from '../lambdas/shared/repositories/audit.js';
import { KeysRepository } from '../lambdas/shared/repositories/keys.js';
import { UsageRepository } from '../lambdas/shared/repositories/usage.js';
import { createDocumentClient } from '../lambdas/shared/ddb.js';
import { LOCAL_CREDENTIALS, startDynamoDbLocal } from '../local-runner/dynamodb-local.js';
import { PROJECT_ROOT } from '../local-runner/state.js';
import { LOCAL_REGION, startLocalStack, synthesize } from '../local-runner/stack.js';
import { invocationStats, resetInvocationStats } from '../local-runner/functions.js';
import { MembershipsRepository } from '../lambdas/shared/repositories/memberships.js';
import { memberAddedEvent } from '../lambdas/shared/repositories/audit.js';
import { startTestIssuer } from '../test/support/issuer.js';
import { buildReferenceBundle, bundleBytes, loadedAtInit } from './bundle-size.js';
import { createMeter } from './meter.js';
import { costPerMillion, PRICES, PRICES_READ, type Measured } from './prices.js';

const { values: args } = parseArgs({ options: { 'skip-synth': { type: 'boolean' }, quick: { type: 'boolean' } } });
const QUICK = args.quick ?? false;
const CDK_OUT = path.join(PROJECT_ROOT, 'bench', 'cdk.out');
const say = (line: string) => process.stdout.write(`${line}\n`);
const HEALTH = 'GET /v1/health (gateway alone)';
const FLOOR = "floor: verify's 2 calls, from the bench";
const PLAIN_FLOOR = 'floor before: simpler GetItem + UpdateItem';

// ——— HTTP client with keep-alive, as a real client library would use ———
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
function send(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (res) => {
      let data = '';
      res.on('data', (c: Buffer) => (data += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Figures {
  p50: number;
  p99: number;
  rps: number;
  n: number;
  errors: number;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/** `total` calls with `concurrency` in flight; latency per call in ms. */
async function load(concurrency: number, total: number, call: (i: number) => Promise<boolean>): Promise<Figures> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const t0 = performance.now();
        const ok = await call(i);
        latencies.push(performance.now() - t0);
        if (!ok) errors++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), rps: total / seconds, n: total, errors };
}

interface CpuByPlace {
  /** CPU ms of this process's main thread (the gateway, the IAM proxy, the bench's own client). */
  main: number;
  /** … of its other threads: the functions' worker threads, V8's and libuv's helpers. */
  otherThreads: number;
  /** … of DynamoDB Local (its JVM). */
  dynamodbLocal: number;
}
interface CpuSnapshot {
  readonly threads: ReadonlyMap<string, number>;
  readonly dynamodbLocal: number;
}
/** Clock ticks per second, the unit of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux as built). */
const TICKS_PER_SECOND = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(out.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
})();
/**
 * CPU time used so far, per thread of this process and by DynamoDB Local, from Linux's /proc (utime +
 * stime in clock ticks: at 100 per second, 10 ms resolution per thread and reading); undefined elsewhere.
 */
function cpuSnapshot(dynamodbPid: number | undefined): CpuSnapshot | undefined {
  const ms = (stat: string) => {
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  };
  try {
    const threads = new Map<string, number>();
    for (const task of readdirSync('/proc/self/task')) threads.set(task, ms(readFileSync(`/proc/self/task/${task}/stat`, 'utf8')));
    return { threads, dynamodbLocal: dynamodbPid === undefined ? 0 : ms(readFileSync(`/proc/${dynamodbPid}/stat`, 'utf8')) };
  } catch {
    return undefined;
  }
}
/** CPU used between two snapshots, by place: a thread started meanwhile counts whole, one that ended is lost. */
function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): CpuByPlace {
  let main = 0;
  let otherThreads = 0;
  for (const [task, ms] of after.threads) {
    const used = ms - (before.threads.get(task) ?? 0);
    if (task === String(process.pid)) main += used;
    else otherThreads += used;
  }
  return { main, otherThreads, dynamodbLocal: after.dynamodbLocal - before.dynamodbLocal };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function main() {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  say(`Knouds API benchmark — ${machine}`);
  if (!args['skip-synth']) {
    say('Synthesizing…');
    await synthesize(CDK_OUT);
  }
  say('Starting DynamoDB Local and the local stack…');
  const ddb = await startDynamoDbLocal();
  if (ddb.warning) say(ddb.warning);
  const meter = createMeter();
  // People's access tokens for the session request: a test issuer the authorizer trusts.
  const issuer = await startTestIssuer();
  const stack = await startLocalStack({
    identity: issuer.config,
    port: 0,
    cdkOut: CDK_OUT,
    skipSynth: true,
    dynamodbEndpoint: ddb.endpoint,
    dynamodbObserver: meter.observer,
    tableNamePrefix: 'bench',
    seed: false,
    // No scheduled sweep or webhook retry lands in a measurement.
    schedules: 'manual',
  });
  const { tables, settings } = stack.state;
  const deps = {
    keys: new KeysRepository(stack.doc, { keys: tables.keys, accounts: tables.accounts }),
    accounts: new AccountsRepository(stack.doc, tables.accounts),
    audit: new AuditRepository(stack.doc, tables.audit, settings.auditRetentionDays),
    settings,
  };
  try {
    // Ten keys of one account share the verify load (1,000 requests per minute each). Enterprise: its 100
    // sync runs at once stay above the bench's 64 (business allows 50, and 429s would count as errors
    // wherever the local runner has that many instances).
    await createAccount(deps, 'acct_bench', 'enterprise');
    const keys: string[] = [];
    const keyIds: string[] = [];
    for (let i = 0; i < 10; i++) {
      const created = await createKey(deps, 'acct_bench', { name: `bench ${i}`, scope: 'admin' });
      keys.push(created.apiKey);
      keyIds.push(created.key.key_id);
    }
    // Verify gets ten keys of its own (another account), so the routes never share a rate limit.
    await createAccount(deps, 'acct_bench_verify', 'business');
    const verifyKeys: string[] = [];
    for (let i = 0; i < 10; i++) verifyKeys.push((await createKey(deps, 'acct_bench_verify', { name: `verify ${i}`, preset: 'read-only' })).apiKey);
    const api = stack.apiUrl;
    const key = (i: number) => keys[i % keys.length]!;
    const json = { 'content-type': 'application/json' };
    const call = async (i: number, method: string, p: string, body?: unknown) =>
      (await send(`${api}${p}`, method, { ...json, 'x-api-key': key(i) }, body === undefined ? undefined : JSON.stringify(body))).status < 400;

    const oneStep = { input_schema: {}, steps: [{ id: 'e', model: 'echo', input: '$.input' }], output: '$.steps.e.output' };
    await send(`${api}/workflows`, 'POST', { ...json, 'x-api-key': key(0) }, JSON.stringify({ slug: 'one-step', name: 'One step', definition: oneStep }));
    await send(`${api}/workflows/one-step/deploy`, 'POST', { 'x-api-key': key(0) });

    // ——— DynamoDB calls per request, by operation ———
    const routes: [string, string, unknown?][] = [
      ['GET', '/health'],
      ['GET', '/keys/verify'],
      ['GET', '/keys'],
      ['POST', '/keys', { name: 'b', preset: 'read-only' }],
      ['GET', `/keys/${keyIds[1]}`],
      ['PATCH', `/keys/${keyIds[1]}`, { name: 'renamed' }],
      ['GET', `/keys/${keyIds[1]}/usage`],
      ['GET', '/webhooks/secret'],
      ['GET', '/workflows'],
      ['GET', '/workflows/one-step'],
      ['POST', '/workflows/one-step/run', { input: { a: 1 } }],
      ['GET', '/models'],
      ['POST', '/models/echo/run', { input: 1 }],
      ['GET', '/executions?limit=10'],
    ];
    const calls: Record<string, Record<string, number>> = {};
    for (const [method, p, body] of routes) {
      await call(0, method, p, body); // warm the function instance
      meter.reset();
      await call(0, method, p, body);
      calls[`${method} ${p.replace(/key_\w+/, '{key_id}')}`] = meter.counts();
    }

    // ——— Cost per million requests, from measured units ———
    await createAccount(deps, 'acct_bench_person', 'business');
    const memberships = new MembershipsRepository(stack.doc, tables.memberships);
    const joined = new Date();
    await memberships.add('bench-person', 'acct_bench_person', 'person@bench.test', 'admin', joined, deps.audit.putItem(memberAddedEvent('acct_bench_person', 'bench-person', 'person@bench.test', 'admin', joined)));
    const token = await issuer.sign('bench-person');
    const priced: [string, (i: number) => Promise<boolean>, { cloudFront: boolean }][] = [
      ['GET /v1/keys/verify', async (i) => (await send(`${api}/keys/verify`, 'GET', { 'x-api-key': verifyKeys[i % verifyKeys.length]! })).status === 200, { cloudFront: false }],
      ['GET /v1/workflows/{slug}', (i) => call(i, 'GET', '/workflows/one-step'), { cloudFront: false }],
      ['POST /v1/workflows/{slug}/run (sync, 1 step)', (i) => call(i, 'POST', '/workflows/one-step/run', { input: { i } }), { cloudFront: false }],
      [
        'session: GET /v1/models, Bearer (console, via CloudFront)',
        async () => (await send(`${api}/models`, 'GET', { authorization: `Bearer ${token}`, 'knouds-account': 'acct_bench_person' })).status === 200,
        { cloudFront: true },
      ],
    ];
    const memoryOf = (id: string) => stack.model.functions.get(id)?.memoryMb ?? 512;
    const costs: { name: string; measured: Measured; perMillion: ReturnType<typeof costPerMillion> }[] = [];
    const pricedRequests = QUICK ? 20 : 100;
    for (const [name, fn, { cloudFront }] of priced) {
      for (let i = 0; i < 5; i++) await fn(i);
      meter.reset();
      resetInvocationStats();
      meter.metering(true);
      let failed = 0;
      for (let i = 0; i < pricedRequests; i++) if (!(await fn(i))) failed++;
      meter.metering(false);
      if (failed) say(`  (${name}: ${failed} of ${pricedRequests} failed)`);
      const { readUnits, writeUnits } = meter.capacity();
      const functions = [...invocationStats()].map(([id, s]) => ({
        id: id.replace(/[0-9A-F]{8}$/, ''),
        invocations: s.invocations / pricedRequests,
        billedMs: s.billedMs / pricedRequests,
        memoryMb: memoryOf(id),
      }));
      const measured: Measured = { readUnits: readUnits / pricedRequests, writeUnits: writeUnits / pricedRequests, functions, apiRequests: 1, cloudFrontRequests: cloudFront ? 1 : 0 };
      costs.push({ name, measured, perMillion: costPerMillion(measured) });
    }

    // ——— Latency: the gateway alone, the floor, and three routes ———
    // The floor is verify's own DynamoDB work with nothing around it: the same two calls (the key's record
    // by its hash, the usage counter's conditional write) made by the same code the functions run (the
    // repositories, on the functions' document client), through the same endpoint (the IAM proxy, which
    // passes the runner's own credentials unchecked), from the bench process. What verify takes beyond
    // health + floor is the local runner's hand-offs, the functions' own code and the IAM check.
    const floorDoc = createDocumentClient({ endpoint: stack.iam.dynamodbEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const floorKeys = new KeysRepository(floorDoc, { keys: tables.keys, accounts: tables.accounts });
    const floorUsage = new UsageRepository(floorDoc, tables.usage);
    const hashes = verifyKeys.map((k) => hashApiKey(k));
    const floor = async (i: number) => {
      const record = await floorKeys.getByHash(hashes[i % 10]!);
      const hit = await floorUsage.hit(`floor-${i % 10}`, record?.account_id ?? 'acct_bench_verify', 1_000_000, new Date());
      return record !== undefined && hit.admitted;
    };
    // The floor as the bench measured it before: two simpler calls (an unconditional ADD, UPDATED_NEW) on
    // the low-level client. Shown beside, for comparison with earlier runs.
    const plainClient = new DynamoDBClient({ endpoint: stack.iam.dynamodbEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const plainFloor = async (i: number) => {
      await plainClient.send(new GetItemCommand({ TableName: tables.keys, Key: { pk: { S: `H#${hashes[i % 10]!}` } }, ConsistentRead: true }));
      await plainClient.send(
        new UpdateItemCommand({
          TableName: tables.usage,
          Key: { key_id: { S: `plain-${i % 10}` }, hour: { S: new Date().toISOString().slice(0, 13) } },
          UpdateExpression: 'ADD m0 :one, requests :one SET last_used = :now',
          ExpressionAttributeValues: { ':one': { N: '1' }, ':now': { S: new Date().toISOString() } },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return true;
    };
    const health = async () => (await send(`${api}/health`, 'GET', {})).status === 200;
    const verify = async (i: number) =>
      (await send(`${api}/keys/verify`, 'GET', { 'x-api-key': verifyKeys[i % verifyKeys.length]! })).status === 200;
    const scenarios: [string, (i: number) => Promise<boolean>][] = [
      [HEALTH, health],
      [FLOOR, floor],
      [PLAIN_FLOOR, plainFloor],
      ['GET /v1/keys/verify', verify],
      ['GET /v1/workflows/{slug}', (i) => call(i, 'GET', '/workflows/one-step')],
      ['POST /v1/workflows/{slug}/run (sync, 1 step)', (i) => call(i, 'POST', '/workflows/one-step/run', { input: { i } })],
    ];
    const levels = [1, 16, 64];
    const totalFor = (c: number) => (QUICK ? 100 : c === 1 ? 250 : 500);
    // Each figure is the median of ROUNDS runs, the scenarios interleaved round by round, so a slow
    // moment of the machine does not land on one scenario only.
    const ROUNDS = QUICK ? 1 : 3;
    const runs: Record<string, Record<number, Figures[]>> = {};
    for (const c of levels) {
      for (const [, fn] of scenarios) await load(c, Math.min(50, totalFor(c)), fn); // warm-up
      for (let round = 0; round < ROUNDS; round++) {
        for (const [name, fn] of scenarios) ((runs[name] ??= {})[c] ??= []).push(await load(c, totalFor(c), fn));
      }
    }
    const latency: Record<string, Record<number, Figures>> = {};
    for (const [name] of scenarios) {
      latency[name] = {};
      for (const c of levels) {
        const rs = runs[name]![c]!;
        latency[name]![c] = {
          p50: median(rs.map((r) => r.p50)),
          p99: median(rs.map((r) => r.p99)),
          rps: median(rs.map((r) => r.rps)),
          n: rs.reduce((sum, r) => sum + r.n, 0),
          errors: rs.reduce((sum, r) => sum + r.errors, 0),
        };
      }
    }
    const ratio = (c: number, floorName = FLOOR) => latency['GET /v1/keys/verify']![c]!.p50 / (latency[HEALTH]![c]!.p50 + latency[floorName]![c]!.p50);

    // ——— 10 keys vs 100,000 keys ———
    // Five rounds after a warm-up: DynamoDB Local's JVM is still collecting and compiling just after the
    // seeding, and three rounds at c=16 on two cores moved the ratio by ±0.15 between runs.
    const verifyAt = async () => {
      await load(16, QUICK ? 100 : 400, verify);
      const runs = [];
      for (let r = 0; r < 5; r++) runs.push((await load(16, QUICK ? 100 : 400, verify)).p50);
      return { p50: median(runs), min: Math.min(...runs), max: Math.max(...runs) };
    };
    // ——— Where verify's time goes beyond the floor, at c=1: CPU by place, and each function's hand-off ———
    const where: { name: string; wallMs: number; cpu: CpuByPlace | undefined; functions: { id: string; perRequest: number; invokeMs: number; handlerMs: number }[] }[] = [];
    {
      const measured = [
        [FLOOR, floor],
        ['GET /v1/keys/verify', verify],
      ] as const;
      const perRound = QUICK ? 50 : 150;
      const totals = measured.map(() => ({ ms: 0, n: 0, cpu: { main: 0, otherThreads: 0, dynamodbLocal: 0 } as CpuByPlace | undefined, stats: new Map<string, { invocations: number; invokeMs: number; handlerMs: number }>() }));
      // Four rounds, the two interleaved, so that DynamoDB Local's and V8's background work (garbage
      // collection, compilation) falls on both alike.
      for (let round = 0; round < 4; round++) {
        for (const [m, [, fn]] of measured.entries()) {
          for (let i = 0; i < 20; i++) await fn(i);
          resetInvocationStats();
          const before = cpuSnapshot(ddb.process.pid);
          const t0 = performance.now();
          for (let i = 0; i < perRound; i++) await fn(i);
          const total = totals[m]!;
          total.ms += performance.now() - t0;
          total.n += perRound;
          const after = cpuSnapshot(ddb.process.pid);
          if (before && after && total.cpu) {
            const used = cpuBetween(before, after);
            total.cpu.main += used.main;
            total.cpu.otherThreads += used.otherThreads;
            total.cpu.dynamodbLocal += used.dynamodbLocal;
          } else total.cpu = undefined;
          for (const [id, st] of invocationStats()) {
            const acc = total.stats.get(id) ?? { invocations: 0, invokeMs: 0, handlerMs: 0 };
            acc.invocations += st.invocations;
            acc.invokeMs += st.invokeMs;
            acc.handlerMs += st.handlerMs;
            total.stats.set(id, acc);
          }
        }
      }
      for (const [m, [name]] of measured.entries()) {
        const { ms, n, cpu, stats } = totals[m]!;
        where.push({
          name,
          wallMs: ms / n,
          cpu: cpu && { main: cpu.main / n, otherThreads: cpu.otherThreads / n, dynamodbLocal: cpu.dynamodbLocal / n },
          functions: [...stats].map(([id, st]) => ({ id: id.replace(/[0-9A-F]{8}$/, ''), perRequest: st.invocations / n, invokeMs: st.invokeMs / st.invocations, handlerMs: st.handlerMs / st.invocations })),
        });
      }
    }

    const with10 = await verifyAt();
    const bulk = QUICK ? 10_000 : 100_000;
    say(`Seeding ${bulk.toLocaleString()} keys straight into DynamoDB Local…`);
    const direct = new DynamoDBClient({ endpoint: ddb.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const batches = Array.from({ length: bulk / 25 }, (_, b) => b);
    let cursor = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (;;) {
          const b = cursor++;
          if (b >= batches.length) return;
          let items: NonNullable<ConstructorParameters<typeof BatchWriteItemCommand>[0]['RequestItems']>[string] | undefined = Array.from(
            { length: 25 },
            (_, j) => ({
              PutRequest: {
                Item: {
                  pk: { S: `H#${randomBytes(32).toString('hex')}` },
                  key_id: { S: `key_seed${b}_${j}` },
                  account_id: { S: `acct_seed_${b % 1000}` },
                  created_at: { S: new Date().toISOString() },
                  name: { S: 'seeded' },
                  tier: { S: 'pro' },
                  environment: { S: 'live' },
                  capabilities: { L: [{ S: 'workflow:run' }] },
                  workspaces: { L: [{ S: '*' }] },
                },
              },
            }),
          );
          while (items && items.length > 0) {
            const out: BatchWriteItemCommandOutput = await direct.send(new BatchWriteItemCommand({ RequestItems: { [tables.keys]: items } }));
            items = out.UnprocessedItems?.[tables.keys];
          }
        }
      }),
    );
    const with100k = await verifyAt();

    // ——— Bundles: size and module initialisation, beside a bare GetItem bundle ———
    say('Measuring bundles…');
    const dir = mkdtempSync(path.join(tmpdir(), 'knouds-bench-'));
    const refOut = await buildReferenceBundle(dir);
    const bundles: { name: string; file: string; env: Record<string, string> }[] = [...stack.model.functions.values()]
      .filter((f) => f.modulePath.endsWith('.mjs'))
      .sort((a, b) => (a.logicalId.startsWith('Authorizer') ? -1 : b.logicalId.startsWith('Authorizer') ? 1 : a.logicalId.localeCompare(b.logicalId)))
      .map((f) => ({ name: f.logicalId.replace(/[0-9A-F]{8}$/, ''), file: f.modulePath, env: f.environment }));
    bundles.push({ name: 'reference: bare GetItemCommand + SDK', file: refOut, env: {} });
    const coldRuns = QUICK ? 5 : 11;
    // Round by round across the bundles, so a slow moment of the machine does not land on one bundle only.
    const times = bundles.map(() => [] as number[]);
    for (let r = 0; r < coldRuns; r++) {
      bundles.forEach(({ file, env }, b) => {
        const out = spawnSync(
          process.execPath,
          ['--input-type=module', '-e', `const t = performance.now(); await import(${JSON.stringify(`file://${file}`)}); console.log(performance.now() - t);`],
          { env: { PATH: process.env['PATH'] ?? '', AWS_REGION: LOCAL_REGION, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env }, encoding: 'utf8' },
        );
        times[b]!.push(Number(out.stdout.trim().split('\n').pop()));
      });
    }
    const bundleFigures = bundles.map(({ name, file }, b) => ({ name, bytes: loadedAtInit(file), allBytes: bundleBytes(file), initMs: median(times[b]!) }));
    const reference = bundleFigures.at(-1)!;
    const authorizer = bundleFigures[0]!;

    // ——— Print ———
    const rows: string[] = [];
    rows.push('', 'DynamoDB calls per request (counted at the proxy)', '');
    for (const [route, ops] of Object.entries(calls)) {
      const text = Object.entries(ops).map(([op, n]) => `${op} ${n}`).join(', ') || '—';
      rows.push(`  ${route.padEnd(36)} ${text}`);
    }
    rows.push('', 'Latency (ms) and throughput (requests/s)', '');
    rows.push(`  ${'scenario'.padEnd(46)} ${levels.map((c) => `c=${c}: p50 / p99 / rps`.padEnd(26)).join('')}`);
    for (const [name] of scenarios) {
      const cells = levels.map((c) => {
        const f = latency[name]![c]!;
        return `${f.p50.toFixed(2)} / ${f.p99.toFixed(2)} / ${Math.round(f.rps)}${f.errors ? ` (${f.errors} err)` : ''}`.padEnd(26);
      });
      rows.push(`  ${name.padEnd(46)} ${cells.join('')}`);
    }
    rows.push('', `  verify p50 / (health p50 + floor p50): ${levels.map((c) => `c=${c}: ${ratio(c).toFixed(2)}`).join('   ')}   (target ≤ 1.3 at c=1 and 16)`);
    rows.push(`  the same against the floor before:     ${levels.map((c) => `c=${c}: ${ratio(c, PLAIN_FLOOR).toFixed(2)}`).join('   ')}`);
    rows.push(
      `  verify p50 at c=16 with 10 keys: ${with10.p50.toFixed(2)} ms (rounds ${with10.min.toFixed(1)}–${with10.max.toFixed(1)}); with ${bulk.toLocaleString()} keys: ${with100k.p50.toFixed(2)} ms (rounds ${with100k.min.toFixed(1)}–${with100k.max.toFixed(1)}); ratio ${(with100k.p50 / with10.p50).toFixed(2)} (target ≤ 1.10)`,
    );
    rows.push('', `Where the time goes at c=1 (${QUICK ? 200 : 600} requests each, one after another, in four interleaved rounds; mean ms per request; CPU from /proc in ${1000 / TICKS_PER_SECOND} ms ticks: within about ±${((4 * 1000) / TICKS_PER_SECOND / (QUICK ? 200 : 600)).toFixed(2)} ms per request for each thread)`, '');
    for (const w of where) {
      const cpu = w.cpu
        ? `CPU: runner main thread ${w.cpu.main.toFixed(2)}, runner's other threads (functions, V8 helpers) ${w.cpu.otherThreads.toFixed(2)}, DynamoDB Local ${w.cpu.dynamodbLocal.toFixed(2)}`
        : 'CPU: not available (no /proc)';
      rows.push(`  ${w.name.padEnd(46)} mean ${w.wallMs.toFixed(2)} ms; ${cpu}`);
      for (const f of w.functions) {
        rows.push(
          `    ${f.id.padEnd(44)} ${f.perRequest.toFixed(2)} per request × invocation ${f.invokeMs.toFixed(2)} ms = handler ${f.handlerMs.toFixed(2)} + hand-off there and back ${(f.invokeMs - f.handlerMs).toFixed(2)}`,
        );
      }
    }
    rows.push('', 'Bundles (minified bytes, module initialisation: median of cold loads in a fresh process)', '');
    rows.push(`  ${'function'.padEnd(40)} ${'loaded at init'.padStart(15)} ${'whole bundle'.padStart(14)} ${'init'.padStart(10)}   init / reference`);
    for (const b of bundleFigures) {
      rows.push(
        `  ${b.name.padEnd(40)} ${String(b.bytes).padStart(13)} B ${String(b.allBytes).padStart(12)} B ${b.initMs.toFixed(1).padStart(7)} ms   ${(b.initMs / reference.initMs).toFixed(2)}`,
      );
    }
    const worst = bundleFigures.slice(0, -1).reduce((w, b) => (b.initMs > w.initMs ? b : w));
    rows.push(
      '',
      `  authorizer / reference: loaded at init ${(authorizer.bytes / reference.bytes).toFixed(2)}, init ${(authorizer.initMs / reference.initMs).toFixed(2)} (target ≤ 0.80); slowest function ${worst.name} ${(worst.initMs / reference.initMs).toFixed(2)} (target ≤ 1.00)`,
    );
    rows.push('', `Cost per million requests (us-east-1 list prices read ${PRICES_READ}; units measured per request here)`, '');
    rows.push(`  ${'request'.padEnd(58)} ${'RRU'.padStart(5)} ${'WRU'.padStart(5)}  Lambda (invocations × billed ms @ MB)${' '.repeat(20)} ${'Lambda'.padStart(7)} ${'APIGW'.padStart(7)} ${'DDB'.padStart(7)} ${'CF'.padStart(6)} ${'total'.padStart(8)}`);
    for (const c of costs) {
      const fns = c.measured.functions.map((f) => `${f.id.replace(/Function$/, '')} ${f.invocations.toFixed(2)}×${f.billedMs.toFixed(1)}ms@${f.memoryMb}`).join(', ');
      const d = (x: number) => `$${x.toFixed(2)}`;
      rows.push(
        `  ${c.name.padEnd(58)} ${c.measured.readUnits.toFixed(1).padStart(5)} ${c.measured.writeUnits.toFixed(1).padStart(5)}  ${fns.padEnd(56)} ${d(c.perMillion.lambda).padStart(7)} ${d(c.perMillion.apiGateway).padStart(7)} ${d(c.perMillion.dynamoDb).padStart(7)} ${d(c.perMillion.cloudFront).padStart(6)} ${d(c.perMillion.total).padStart(8)}`,
      );
    }
    rows.push(
      `  ${'comparison: API Gateway usage-plan API key (any request)'.padEnd(58)} ${'—'.padStart(5)} ${'—'.padStart(5)}  ${'— (checked by API Gateway itself; keys and plans cost nothing)'.padEnd(56)} ${'$0.00'.padStart(7)} ${'$3.50'.padStart(7)} ${'$0.00'.padStart(7)} ${'$0.00'.padStart(6)} ${'$3.50'.padStart(8)}`,
    );
    say(rows.join('\n'));
    const results = {
      machine,
      date: new Date().toISOString(),
      quick: QUICK,
      calls,
      latency,
      ratioToFloor: Object.fromEntries(levels.map((c) => [c, ratio(c)])),
      ratioToFloorBefore: Object.fromEntries(levels.map((c) => [c, ratio(c, PLAIN_FLOOR)])),
      where,
      keys: { with10: with10.p50, withMany: with100k.p50, many: bulk, ratio: with100k.p50 / with10.p50 },
      bundles: bundleFigures,
      costs: { pricesRead: PRICES_READ, prices: PRICES, requests: costs },
    };
    writeFileSync(path.join(PROJECT_ROOT, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    say('\nWrote bench/results.json');
    floorDoc.destroy();
    plainClient.destroy();
    direct.destroy();
  } finally {
    await stack.close();
    await issuer.close();
    await ddb.stop();
    agent.destroy();
  }
}

await main();
