/**
 * A local stack for one test file: its own tables, the shared DynamoDB Local, a free port. Its functions'
 * log lines, its access log and anything IAM refused go to a log file of this test file's (under the
 * run's log folder, see testLogDir), not to the test output; the run's reporter prints where it is, with
 * its last lines, when a test of the file fails. IAM is enforced as with `npm start`: a call refused
 * that the test did not say it expects (`expectIamRefusals`) fails the file when the stack closes.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { AccountsRepository } from '../../lambdas/shared/repositories/accounts.js';
import { AuditRepository, memberAddedEvent } from '../../lambdas/shared/repositories/audit.js';
import type { RoleName } from '../../lambdas/shared/capabilities.js';
import { MembershipsRepository } from '../../lambdas/shared/repositories/memberships.js';
import type { MemberDeps } from '../../admin-cli/members.js';
import { KeysRepository } from '../../lambdas/shared/repositories/keys.js';
import { UsageRepository } from '../../lambdas/shared/repositories/usage.js';
import { createAccount, createKey, type KeyServiceDeps } from '../../lambdas/shared/services/keys.js';
import type { TierName } from '../../lambdas/shared/settings.js';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../local-runner/stack.js';
import { PROJECT_ROOT } from '../../local-runner/state.js';
import { startCountingProxy, type CountingProxy } from './counting-proxy.js';
import { testEndpoint, uniquePrefix } from './dynamodb.js';
import { call, type Reply } from './http.js';
import { TEST_CDK_OUT } from './paths.js';

/**
 * This test file's folder under the run's log folder (KNOUDS_TEST_LOG_DIR, made by the global setup):
 * `<run folder>/<test path from the project root, / as __>`. test/support/global-log-reporter.mjs finds
 * a failed file's logs by the same name.
 */
export function testLogDir(): string {
  const root = process.env['KNOUDS_TEST_LOG_DIR'] ?? path.join(tmpdir(), 'knouds-test-logs');
  const testPath = expect.getState().testPath ?? 'unknown-test';
  const dir = path.join(root, path.relative(PROJECT_ROOT, testPath).replace(/[\\/]/g, '__'));
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface TestStackOptions extends Partial<LocalStackOptions> {
  /** The test makes calls IAM refuses on purpose: do not fail the file for them. @default false */
  readonly expectIamRefusals?: boolean;
}

export interface TestStack {
  readonly stack: LocalStack;
  /** Where this stack's function logs, access log and IAM refusals go. */
  readonly logFile: string;
  deps(now?: () => Date): KeyServiceDeps;
  /** Calls `<stage url><path>` with the key in x-api-key, and any other headers given. */
  api(key: string | undefined, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply>;
  /**
   * Reads `GET /executions/{id}` every 100 ms until `until` holds for its status (by default a terminal
   * one: SUCCEEDED, FAILED, CANCELLED) or `timeoutMs` has passed; the last reply either way.
   */
  execution(key: string, executionId: string, until?: (status: string) => boolean, timeoutMs?: number): Promise<Reply>;
  /** A new account and a key of it with the given capabilities (created as an operator would). */
  account(tier: TierName, keyBody?: Record<string, unknown>): Promise<{ accountId: string; key: string; keyId: string }>;
  /** A person's membership, added as an operator would (with its member.added event), whether or not the account exists. */
  member(subject: string, accountId: string, email: string | null, role: RoleName): Promise<void>;
  /** The admin CLI's `user …` dependencies on this stack (no identity provider: people are named by subject). */
  members(): MemberDeps;
  /**
   * Every item of every table of this stack, sorted, as one string: equal before and after means nothing
   * was written. The usage counters are left out unless asked for (a refused request past the authorizer
   * is still counted).
   */
  snapshot(options?: { withUsage?: boolean }): Promise<string>;
  close(): Promise<void>;
}

let accounts = 0;

export async function startTestStack(name: string, options: TestStackOptions = {}): Promise<TestStack> {
  const { expectIamRefusals = false, ...stackOptions } = options;
  const prefix = uniquePrefix(name);
  const logFile = path.join(testLogDir(), `${prefix}.log`);
  const logStream = createWriteStream(logFile, { flags: 'a' });
  const write = (line: string) => logStream.write(`${line}\n`);
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      port: 0,
      cdkOut: TEST_CDK_OUT,
      skipSynth: true,
      dynamodbEndpoint: testEndpoint(),
      tableNamePrefix: prefix,
      seed: false,
      ...stackOptions,
      // The test's own listeners, if any, and the log file.
      onProgress: (line) => {
        write(line);
        stackOptions.onProgress?.(line);
      },
      onFunctionLog: (fn, line) => {
        write(`[${fn}] ${line}`);
        stackOptions.onFunctionLog?.(fn, line);
      },
      onAccessLog: (e) => {
        write(`${e.httpMethod} ${e.path} ${e.status} ${e.latencyMs}ms${e.errorType ? ` ${e.errorType}` : ''} (${e.requestId})`);
        stackOptions.onAccessLog?.(e);
      },
      onIamRefusal: (r) => {
        write(`IAM refused: ${r.functionId} ${r.action} on ${r.resource} (${r.effect}${r.detail ? `: ${r.detail}` : ''})`);
        stackOptions.onIamRefusal?.(r);
      },
    });
  } catch (error) {
    write(`the stack did not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    logStream.end();
    throw error;
  }
  const { tables, settings } = stack.state;
  const audit = new AuditRepository(stack.doc, tables.audit, settings.auditRetentionDays);
  const memberships = new MembershipsRepository(stack.doc, tables.memberships);
  const deps = (now?: () => Date): KeyServiceDeps => ({
    keys: new KeysRepository(stack.doc, { keys: tables.keys, accounts: tables.accounts }),
    accounts: new AccountsRepository(stack.doc, tables.accounts),
    usage: new UsageRepository(stack.doc, tables.usage),
    audit,
    settings,
    ...(now ? { now } : {}),
  });
  return {
    stack,
    logFile,
    deps,
    api: (key, method, path, body, headers = {}) =>
      call(`${stack.apiUrl}${path}`, { method, headers: { ...headers, ...(key === undefined ? {} : { 'x-api-key': key }) }, body }),
    execution: async (key, executionId, until = (status) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(status), timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const reply = await call(`${stack.apiUrl}/executions/${executionId}`, { method: 'GET', headers: { 'x-api-key': key } });
        if (until(String(reply.body['status'])) || Date.now() > deadline) return reply;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    account: async (tier, keyBody = { name: 'admin', scope: 'admin' }) => {
      const accountId = `acct_${name.replace(/[^a-z0-9]/gi, '')}_${++accounts}_${Date.now().toString(36)}`;
      await createAccount(deps(), accountId, tier);
      const { key, apiKey } = await createKey(deps(), accountId, keyBody);
      return { accountId, key: apiKey, keyId: key.key_id };
    },
    member: async (subject, accountId, email, role) => {
      const now = new Date();
      const event = memberAddedEvent(accountId, subject, email, role, now);
      await memberships.add(subject, accountId, email, role, now, audit.putItem(event));
    },
    members: () => ({ accounts: deps().accounts, memberships, audit, people: undefined }),
    snapshot: async ({ withUsage = false } = {}) => {
      const out: Record<string, string[]> = {};
      for (const [name, table] of Object.entries(tables)) {
        if (name === 'usage' && !withUsage) continue;
        const items: string[] = [];
        let start: Record<string, unknown> | undefined;
        do {
          const page = await stack.doc.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
          items.push(...(page.Items ?? []).map((i) => JSON.stringify(i)));
          start = page.LastEvaluatedKey;
        } while (start);
        out[name] = items.sort();
      }
      return JSON.stringify(out);
    },
    close: async () => {
      await stack.close();
      const refused = stack.iam.refusals();
      write(stack.iam.summary());
      await new Promise<void>((resolve) => logStream.end(() => resolve()));
      if (refused.length > 0 && !expectIamRefusals) {
        const list = refused.slice(0, 5).map((r) => `  ${r.functionId} ${r.action} on ${r.resource} (${r.effect})`);
        throw new Error(`IAM refused ${stack.iam.refusalCount()} call(s) of this stack's functions: a grant is missing from the template\n${list.join('\n')}\n(log: ${logFile})`);
      }
    },
  };
}

/**
 * A test stack whose DynamoDB calls all pass through a counting, fault-injecting proxy (see
 * counting-proxy.ts); `close` stops both.
 */
export async function startTestStackBehindProxy(
  name: string,
  options: TestStackOptions = {},
): Promise<{ t: TestStack; proxy: CountingProxy; close(): Promise<void> }> {
  const proxy = await startCountingProxy(testEndpoint());
  const t = await startTestStack(name, { ...options, dynamodbEndpoint: proxy.endpoint });
  return {
    t,
    proxy,
    close: async () => {
      try {
        await t.close();
      } finally {
        await proxy.close();
      }
    },
  };
}
