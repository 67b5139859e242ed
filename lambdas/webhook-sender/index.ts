/**
 * Webhook sender Lambda. Two kinds of event:
 * - the EventBridge schedule (`rate(1 minute)`, a "Scheduled Event"): every webhook due now, bounded per
 *   run and per account (services/webhooks.ts `sendDueWebhooks`);
 * - `{account_id, execution_id}`, an asynchronous invocation by the executions function on a redelivery:
 *   that webhook, at once.
 * Either may be delivered more than once, and runs may overlap: every attempt is claimed first. It opens
 * the accounts' webhook secrets, and makes an account's first one (with its webhook_secret.created event,
 * by the system) when a run ended before anything made it. It is not reachable through the API.
 */
import type { Context } from 'aws-lambda';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv } from '../shared/env.js';
import { log, startInvocation } from '../shared/log.js';
import { AccountsRepository } from '../shared/repositories/accounts.js';
import { AuditRepository } from '../shared/repositories/audit.js';
import { ExecutionsRepository } from '../shared/repositories/executions.js';
import { secretBoxFromEnv } from '../shared/secret-box.js';
import { settingsFromEnv } from '../shared/settings.js';
import { sendDueWebhooks, sendNow, type WebhookDeps } from '../shared/services/webhooks.js';
import { retryScheduleFromEnv } from '../shared/webhook-schedule.js';
import { WEBHOOK_ATTEMPT_TIMEOUT_MS } from '../shared/webhooks.js';

const doc = createDocumentClient();
const deps: WebhookDeps = {
  executions: new ExecutionsRepository(doc, requireEnv(TABLE_ENV.executions)),
  accounts: new AccountsRepository(doc, requireEnv(TABLE_ENV.accounts), secretBoxFromEnv()),
  // An account's first secret, made by an attempt: its webhook_secret.created event (by the system) goes here.
  audit: new AuditRepository(doc, requireEnv(TABLE_ENV.audit), settingsFromEnv().auditRetentionDays),
  // Validated at cold start.
  retrySchedule: retryScheduleFromEnv(),
};

/** Kept back from the timeout: no attempt starts later than this before it (an attempt, then its record). */
const RESERVE_MS = WEBHOOK_ATTEMPT_TIMEOUT_MS + 10_000;

export async function handler(event: Record<string, unknown> | null, context: Context): Promise<void> {
  startInvocation();
  if (event?.['source'] === 'aws.events' && event['detail-type'] === 'Scheduled Event') {
    const run = await sendDueWebhooks(deps, Date.now() + context.getRemainingTimeInMillis() - RESERVE_MS);
    // A line only when there was something to do: every minute of nothing would be noise.
    if (run.due > 0) log('info', 'webhook sender run', { request_id: context.awsRequestId, due: run.due, deferred: run.deferred, postponed: run.postponed, ...run.results });
    return;
  }
  const accountId = event?.['account_id'];
  const executionId = event?.['execution_id'];
  if (typeof accountId === 'string' && typeof executionId === 'string') {
    const result = await sendNow(deps, accountId, executionId);
    log('info', 'webhook redelivery', { account_id: accountId, execution_id: executionId, result: result ?? 'nothing pending' });
    return;
  }
  log('error', 'webhook sender event of an unknown kind', { keys: Object.keys(event ?? {}) });
}
