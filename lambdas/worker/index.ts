/**
 * Worker Lambda: runs asynchronous executions. Invoked asynchronously by the workflows function with
 * `{account_id, execution_id}`; Lambda retries a failed invocation, then sends it to the dead-letter
 * queue, and may deliver an event more than once. Each invocation is an attempt of its own (a random
 * id), which claims the run with a lease lasting until it is certainly gone: its timeout, and a margin.
 * It is not reachable through the API.
 */
import type { Context } from 'aws-lambda';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv } from '../shared/env.js';
import { log, startInvocation } from '../shared/log.js';
import { ModelRegistry } from '../shared/models/registry.js';
import { AccountsRepository } from '../shared/repositories/accounts.js';
import { AuditRepository } from '../shared/repositories/audit.js';
import { settingsFromEnv } from '../shared/settings.js';
import { secretBoxFromEnv } from '../shared/secret-box.js';
import { retryScheduleFromEnv } from '../shared/webhook-schedule.js';
import { ExecutionsRepository, newAttemptId } from '../shared/repositories/executions.js';
import { LEASE_MARGIN_MS, WORKER_RESERVE_MS } from '../shared/run-budget.js';
import { WorkflowsRepository } from '../shared/repositories/workflows.js';
import { workExecution, type WorkflowDeps } from '../shared/services/workflows.js';

const doc = createDocumentClient();
const deps: WorkflowDeps = {
  workflows: new WorkflowsRepository(doc, requireEnv(TABLE_ENV.workflows)),
  executions: new ExecutionsRepository(doc, requireEnv(TABLE_ENV.executions), requireEnv(TABLE_ENV.accounts)),
  accounts: new AccountsRepository(doc, requireEnv(TABLE_ENV.accounts), secretBoxFromEnv()),
  // A run's webhook may make the account's first secret: its webhook_secret.created event (by the system) goes here.
  audit: new AuditRepository(doc, requireEnv(TABLE_ENV.audit), settingsFromEnv().auditRetentionDays),
  models: ModelRegistry.fromEnv(),
  // The webhook retry schedule, validated at cold start.
  retrySchedule: retryScheduleFromEnv(),
};

export async function handler(event: { account_id?: unknown; execution_id?: unknown }, context: Context): Promise<void> {
  startInvocation();
  const accountId = event.account_id;
  const executionId = event.execution_id;
  if (typeof accountId !== 'string' || typeof executionId !== 'string') {
    log('error', 'worker event without account_id and execution_id', { keys: Object.keys(event ?? {}) });
    return;
  }
  const attempt = newAttemptId();
  const end = Date.now() + context.getRemainingTimeInMillis();
  // The steps stop WORKER_RESERVE_MS before the timeout, keeping that long to record the outcome and
  // send the webhook; the lease outlasts the timeout itself.
  const record = await workExecution(deps, accountId, executionId, end - WORKER_RESERVE_MS, {}, { owner: attempt, leaseUntil: end + LEASE_MARGIN_MS });
  log('info', 'execution handled', {
    account_id: accountId,
    execution_id: executionId,
    attempt,
    request_id: context.awsRequestId,
    status: record?.status ?? 'missing',
    owner: record?.owner === attempt ? 'this attempt' : 'another attempt',
  });
}
