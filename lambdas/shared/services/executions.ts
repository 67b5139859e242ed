/** Execution use cases (API.md §4 "Executions"): read, list newest first, cancel, redeliver the webhook. */
import { workspaceAllowed } from '../capabilities.js';
import { ConflictError, NotFoundError, ValidationError, WorkspaceDeniedError } from '../errors.js';
import { log } from '../log.js';
import { EXECUTION_STATUSES, TERMINAL, type ExecutionRecord, type ExecutionStatus, type ExecutionsRepository } from '../repositories/executions.js';
import { SLUG_PATTERN } from '../capabilities.js';
import { toExecutionObject, type Actor, type ExecutionObject } from './workflows.js';

export interface ExecutionDeps {
  readonly executions: ExecutionsRepository;
  readonly now?: () => Date;
}

async function reachable(deps: ExecutionDeps, actor: Actor, executionId: string) {
  const record = await deps.executions.get(actor.accountId, executionId);
  if (!record) throw new NotFoundError(`Execution '${executionId}' not found`);
  if (!workspaceAllowed(actor.workspaces, record.workspace_id)) throw new WorkspaceDeniedError(record.workspace_id);
  return record;
}

export async function getExecution(deps: ExecutionDeps, actor: Actor, executionId: string): Promise<ExecutionObject> {
  return toExecutionObject(await reachable(deps, actor, executionId));
}

export async function listExecutions(
  deps: ExecutionDeps,
  actor: Actor,
  query: Record<string, string | undefined> | null,
  limit: number,
  nextToken?: string,
): Promise<{ items: ExecutionObject[]; next_token: string | null }> {
  const workflow = query?.['workflow'];
  const status = query?.['status'];
  if (workflow !== undefined && !SLUG_PATTERN.test(workflow)) throw ValidationError.field('workflow', 'is not a workflow slug');
  if (status !== undefined && !EXECUTION_STATUSES.includes(status as ExecutionStatus)) {
    throw ValidationError.field('status', `must be one of ${EXECUTION_STATUSES.join(', ')}`);
  }
  const page = await deps.executions.list(
    actor.accountId,
    {
      ...(workflow !== undefined ? { workflow } : {}),
      ...(status !== undefined ? { status: status as ExecutionStatus } : {}),
      ...(actor.workspaces.includes('*') ? {} : { workspaces: actor.workspaces }),
    },
    limit,
    nextToken,
  );
  return { items: page.items.map(toExecutionObject), next_token: page.nextToken };
}

/**
 * Cancels a QUEUED or RUNNING execution: 200 with it CANCELLED, also when it already was (a retried
 * cancel, or one whose first answer was lost, is harmless); 409 EXECUTION_FINISHED once it SUCCEEDED or
 * FAILED. The cancel is conditioned on the status just read, so the answer is the execution as the cancel
 * left it; when the status moved in between (a worker took the run, or it ended), it is read again. A
 * status changes at most twice (QUEUED → RUNNING → terminal), so this ends.
 */
export async function cancelExecution(deps: ExecutionDeps, actor: Actor, executionId: string): Promise<ExecutionObject> {
  let record = await reachable(deps, actor, executionId);
  for (;;) {
    if (record.status === 'CANCELLED') return toExecutionObject(record);
    if (record.status === 'SUCCEEDED' || record.status === 'FAILED') {
      throw new ConflictError('EXECUTION_FINISHED', `Execution '${executionId}' has already finished`);
    }
    const now = (deps.now ?? (() => new Date()))();
    if (await deps.executions.cancel(actor.accountId, executionId, record.status, now, record.async_slot === true, record.webhook_url !== undefined)) {
      const cancelled: ExecutionRecord = { ...record, status: 'CANCELLED', finished_at: now.toISOString() };
      // Its webhook is pending from this write on (the worker that notices, or the scheduled sender, sends it).
      return toExecutionObject(
        record.webhook_url
          ? { ...cancelled, webhook: { status: 'pending', attempts: 0, last_attempt_at: null, last_response_status: null, next_attempt_at: now.toISOString() } }
          : cancelled,
      );
    }
    const moved = await deps.executions.get(actor.accountId, executionId);
    if (!moved) throw new NotFoundError(`Execution '${executionId}' not found`);
    record = moved;
  }
}

/** Asks the webhook sender to make a redelivered webhook's attempt now (an asynchronous invocation). */
export type SendWebhookNow = (ids: { account_id: string; execution_id: string }) => Promise<void>;

/**
 * POST /executions/{id}/webhook/redeliver: the run's webhook pending again and due now, its retry
 * schedule restarted (`attempts` keeps counting; the same `webhook-id`), and the sender asked to send it
 * at once (at most REDELIVERIES_SENT_AT_ONCE of an account's per 5 s window; the scheduled sender sends
 * the others, within about a minute). 404 for a run that asked for no webhook, 409
 * EXECUTION_NOT_FINISHED for one still in flight.
 * While an attempt is in flight it changes nothing: that attempt is the one sent now.
 * Answers the execution as this left it; if the sender cannot be asked, the scheduled one sends it
 * within about a minute.
 */
export async function redeliverWebhook(deps: ExecutionDeps, actor: Actor, executionId: string, sendNow: SendWebhookNow): Promise<ExecutionObject> {
  let record = await reachable(deps, actor, executionId);
  for (let attempt = 1; ; attempt++) {
    if (!record.webhook_url) throw new NotFoundError(`Execution '${executionId}' has no webhook: it was not run with a webhook_url`);
    if (!TERMINAL.includes(record.status)) {
      throw new ConflictError('EXECUTION_NOT_FINISHED', `Execution '${executionId}' has not finished yet; its webhook is sent when it does`);
    }
    const now = (deps.now ?? (() => new Date()))();
    // An attempt in flight (a live claim) is this redelivery: it is being sent now, and is left to finish
    // (its outcome recorded, the schedule going on from it). Else redeliveries in a loop would each take
    // the webhook over and start a POST of their own, as many at once as they were sent.
    if (record.webhook_claim !== undefined && (record.webhook_due ?? 0) > now.getTime()) return toExecutionObject(record);
    const requeued = await deps.executions.requeueWebhook(actor.accountId, executionId, now, record);
    if (requeued) {
      try {
        // At most REDELIVERIES_SENT_AT_ONCE of an account's redeliveries in a window are sent at once; the
        // others are due now, for the scheduled sender.
        if (await deps.executions.takeImmediateSend(actor.accountId, now.getTime())) await sendNow({ account_id: actor.accountId, execution_id: executionId });
      } catch (error) {
        log('warn', 'the webhook sender could not be invoked; the scheduled run will send the webhook', {
          account_id: actor.accountId,
          execution_id: executionId,
          error: error instanceof Error ? error.name : 'Error',
        });
      }
      return toExecutionObject(requeued);
    }
    // Changed between the read and the write (another redelivery gave it its first webhook record): read again.
    const again = await deps.executions.get(actor.accountId, executionId);
    if (!again) throw new NotFoundError(`Execution '${executionId}' not found`);
    if (attempt >= 3) throw new Error('the webhook could not be marked for redelivery: the execution kept changing');
    record = again;
  }
}
