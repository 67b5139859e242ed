/** Execution use cases (API.md §4 "Executions"): read, list newest first, cancel. */
import { workspaceAllowed } from '../capabilities.js';
import { ConflictError, NotFoundError, ValidationError, WorkspaceDeniedError } from '../errors.js';
import { EXECUTION_STATUSES, type ExecutionStatus, type ExecutionsRepository } from '../repositories/executions.js';
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
    if (await deps.executions.cancel(actor.accountId, executionId, record.status, now, record.async_slot === true)) {
      return toExecutionObject({ ...record, status: 'CANCELLED', finished_at: now.toISOString() });
    }
    const moved = await deps.executions.get(actor.accountId, executionId);
    if (!moved) throw new NotFoundError(`Execution '${executionId}' not found`);
    record = moved;
  }
}
