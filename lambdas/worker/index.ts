/**
 * Worker Lambda: runs asynchronous executions. Invoked asynchronously by the workflows function with
 * `{account_id, execution_id}`; Lambda retries a failed invocation, then sends it to the dead-letter
 * queue. It is not reachable through the API.
 */
import type { Context } from 'aws-lambda';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv } from '../shared/env.js';
import { log, startInvocation } from '../shared/log.js';
import { ModelRegistry } from '../shared/models/registry.js';
import { AccountsRepository } from '../shared/repositories/accounts.js';
import { secretBoxFromEnv } from '../shared/secret-box.js';
import { ExecutionsRepository } from '../shared/repositories/executions.js';
import { WorkflowsRepository } from '../shared/repositories/workflows.js';
import { workExecution, type WorkflowDeps } from '../shared/services/workflows.js';

const doc = createDocumentClient();
const deps: WorkflowDeps = {
  workflows: new WorkflowsRepository(doc, requireEnv(TABLE_ENV.workflows)),
  executions: new ExecutionsRepository(doc, requireEnv(TABLE_ENV.executions)),
  accounts: new AccountsRepository(doc, requireEnv(TABLE_ENV.accounts), secretBoxFromEnv()),
  models: ModelRegistry.fromEnv(),
};

/** Time kept back from the Lambda timeout to record the outcome and send the webhook. */
const RESERVE_MS = 60_000;

export async function handler(event: { account_id?: unknown; execution_id?: unknown }, context: Context): Promise<void> {
  startInvocation();
  const accountId = event.account_id;
  const executionId = event.execution_id;
  if (typeof accountId !== 'string' || typeof executionId !== 'string') {
    log('error', 'worker event without account_id and execution_id', { keys: Object.keys(event ?? {}) });
    return;
  }
  const deadline = Date.now() + context.getRemainingTimeInMillis() - RESERVE_MS;
  const record = await workExecution(deps, accountId, executionId, deadline);
  log('info', 'execution finished', { account_id: accountId, execution_id: executionId, status: record?.status ?? 'missing' });
}
