/** The execution object of the contract (API.md §4 "Executions"), as every read and run returns it. */
import { legacyFailure, type Failure } from '../execution-failure.js';
import type { ExecutionRecord, WebhookState } from '../repositories/executions.js';

export interface ExecutionObject {
  execution_id: string;
  workflow_slug: string;
  workflow_version: number;
  workspace_id: string;
  status: ExecutionRecord['status'];
  input: unknown;
  output: unknown;
  error: string | null;
  /** Why it FAILED, for programs: `{code, step_id}`; null unless FAILED. */
  failure: Failure | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Null when the run asked for no webhook, or has not ended yet. */
  webhook: WebhookState | null;
}

/** The public part of a run's webhook record (its internal due, claim and round attributes stay inside). */
function webhookOf(r: ExecutionRecord): WebhookState | null {
  const w = r.webhook;
  if (!r.webhook_url || !w) return null;
  return {
    status: w.status,
    attempts: w.attempts,
    last_attempt_at: w.last_attempt_at ?? null,
    last_response_status: w.last_response_status ?? null,
    next_attempt_at: w.next_attempt_at ?? null,
  };
}

/**
 * A FAILED run's failure, its fields in a fixed order (a webhook's bytes are the same at every attempt,
 * whatever order DynamoDB returns a map's keys in); from its error for a run that failed before
 * failures were recorded.
 */
function failureOf(r: ExecutionRecord): Failure {
  const f = r.failure ?? legacyFailure(r.error);
  return { code: f.code, step_id: f.step_id ?? null };
}

export function toExecutionObject(r: ExecutionRecord): ExecutionObject {
  return {
    execution_id: r.execution_id,
    workflow_slug: r.workflow_slug,
    workflow_version: r.workflow_version,
    workspace_id: r.workspace_id,
    status: r.status,
    input: r.input ?? null,
    output: r.output ?? null,
    error: r.error ?? null,
    failure: r.status === 'FAILED' ? failureOf(r) : null,
    created_at: r.created_at,
    started_at: r.started_at ?? null,
    finished_at: r.finished_at ?? null,
    webhook: webhookOf(r),
  };
}
