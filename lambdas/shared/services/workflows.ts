/**
 * Workflow, model and run use cases (API.md §4 "Workflows", "Models"). Plain functions over the
 * repositories and the model registry; they know nothing of API Gateway.
 */
import { countMetric, log, METRIC } from '../log.js';
import { workspaceAllowed } from '../capabilities.js';
import { ConflictError, ModelFailedError, NotFoundError, ValidationError, WorkspaceDeniedError, type ApiError } from '../errors.js';
import { DeadlineExceeded, ModelFailure, StepCancelled, type ModelRegistry, type StepContext } from '../models/registry.js';
import type { AccountsRepository } from '../repositories/accounts.js';
import { newExecutionId, TERMINAL, type ExecutionRecord, type ExecutionsRepository } from '../repositories/executions.js';
import { SYNC_BUDGET_MS } from '../run-budget.js';
import type { WorkflowHead, WorkflowsRepository } from '../repositories/workflows.js';
import {
  parseCreateWorkflowBody,
  parseModelRunBody,
  parseRunBody,
  parseUpdateWorkflowBody,
} from '../schemas.js';
import { checkInput, validateDefinition, type Definition } from '../workflow-definition.js';
import {
  assertStorable,
  MAX_EXECUTION_OUTPUT_BYTES,
  MAX_RUN_INPUT_BYTES,
  MAX_STEP_VALUE_BYTES,
  kib,
  jsonBytes,
  resolveReferences,
  ValueLimitExceeded,
} from '../references.js';
import { checkWebhookUrl, deliverWebhook, newWebhookSecret, WebhookUrlError, type DeliveryOptions } from '../webhooks.js';

export interface WorkflowDeps {
  readonly workflows: WorkflowsRepository;
  readonly executions: ExecutionsRepository;
  readonly accounts: AccountsRepository;
  readonly models: ModelRegistry;
  readonly now?: () => Date;
}

/** Who is asking: the account, the key, and the workspaces it may reach. */
export interface Actor {
  readonly accountId: string;
  readonly keyId: string;
  readonly workspaces: readonly string[];
}

const clock = (deps: { now?: () => Date }) => (deps.now ?? (() => new Date()))();

export interface WorkflowObject {
  slug: string;
  name: string;
  workspace_id: string;
  description: string;
  definition: Definition;
  version: number;
  status: 'draft' | 'deployed';
  deployed_version: number | null;
  created_at: string;
  updated_at: string;
}

function toWorkflowObject(head: WorkflowHead, definition: Definition): WorkflowObject {
  return {
    slug: head.slug,
    name: head.name,
    workspace_id: head.workspace_id,
    description: head.description,
    definition,
    version: head.version,
    status: head.deployed_version != null ? 'deployed' : 'draft',
    deployed_version: head.deployed_version ?? null,
    created_at: head.created_at,
    updated_at: head.updated_at,
  };
}

function assertWorkspace(actor: Actor, workspaceId: string): void {
  if (!workspaceAllowed(actor.workspaces, workspaceId)) throw new WorkspaceDeniedError(workspaceId);
}

/** The head of a workflow the actor may reach: 404 when absent, 403 WORKSPACE_DENIED outside its workspaces. */
async function reachableHead(deps: WorkflowDeps, actor: Actor, slug: string): Promise<WorkflowHead> {
  const head = await deps.workflows.getHead(actor.accountId, slug);
  if (!head) throw new NotFoundError(`Workflow '${slug}' not found`);
  assertWorkspace(actor, head.workspace_id);
  return head;
}

async function versionOf(deps: WorkflowDeps, head: WorkflowHead, version: number): Promise<Definition> {
  const found = await deps.workflows.getVersion(head.account_id, head.slug, version);
  if (!found) throw new NotFoundError(`Workflow '${head.slug}' not found`);
  return found.definition;
}

const knownModel = (deps: WorkflowDeps) => (id: string) => deps.models.get(id) !== undefined;

export async function createWorkflow(deps: WorkflowDeps, actor: Actor, rawBody: unknown): Promise<WorkflowObject> {
  const body = parseCreateWorkflowBody(rawBody);
  validateDefinition(body.definition, knownModel(deps));
  const workspaceId = body.workspace_id ?? 'default';
  assertWorkspace(actor, workspaceId);
  const now = clock(deps).toISOString();
  const head: WorkflowHead = {
    account_id: actor.accountId,
    slug: body.slug,
    name: body.name,
    description: body.description ?? '',
    workspace_id: workspaceId,
    version: 1,
    deployed_version: null,
    created_at: now,
    updated_at: now,
  };
  await deps.workflows.create(head, body.definition);
  return toWorkflowObject(head, body.definition);
}

export async function getWorkflow(deps: WorkflowDeps, actor: Actor, slug: string): Promise<WorkflowObject> {
  const head = await reachableHead(deps, actor, slug);
  return toWorkflowObject(head, await versionOf(deps, head, head.version));
}

export async function listWorkflows(
  deps: WorkflowDeps,
  actor: Actor,
  limit: number,
  nextToken?: string,
): Promise<{ items: Omit<WorkflowObject, 'definition'>[]; next_token: string | null }> {
  const workspaces = actor.workspaces.includes('*') ? undefined : actor.workspaces;
  const page = await deps.workflows.list(actor.accountId, workspaces, limit, nextToken);
  return {
    items: page.items.map((head) => {
      const { definition: _d, ...rest } = toWorkflowObject(head, undefined as unknown as Definition);
      return rest;
    }),
    next_token: page.nextToken,
  };
}

const MAX_UPDATE_RETRIES = 5;

export async function updateWorkflow(deps: WorkflowDeps, actor: Actor, slug: string, rawBody: unknown): Promise<WorkflowObject> {
  const body = parseUpdateWorkflowBody(rawBody);
  validateDefinition(body.definition, knownModel(deps));
  for (let attempt = 0; ; attempt++) {
    const head = await reachableHead(deps, actor, slug);
    const updated = await deps.workflows.addVersion(
      head,
      { name: body.name ?? head.name, description: body.description ?? head.description },
      body.definition,
      clock(deps),
    );
    if (updated) return toWorkflowObject(updated, body.definition);
    if (attempt >= MAX_UPDATE_RETRIES) throw new ConflictError('ALREADY_EXISTS', `Workflow '${slug}' is being updated concurrently; try again`);
  }
}

export async function deployWorkflow(deps: WorkflowDeps, actor: Actor, slug: string): Promise<WorkflowObject> {
  await reachableHead(deps, actor, slug);
  const head = await deps.workflows.deploy(actor.accountId, slug, clock(deps));
  if (!head) throw new NotFoundError(`Workflow '${slug}' not found`);
  return toWorkflowObject(head, await versionOf(deps, head, head.version));
}

export async function deleteWorkflow(deps: WorkflowDeps, actor: Actor, slug: string): Promise<void> {
  await reachableHead(deps, actor, slug);
  await deps.workflows.delete(actor.accountId, slug);
}

// ——— Executions ———

export interface ExecutionObject {
  execution_id: string;
  workflow_slug: string;
  workflow_version: number;
  workspace_id: string;
  status: ExecutionRecord['status'];
  input: unknown;
  output: unknown;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
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
    created_at: r.created_at,
    started_at: r.started_at ?? null,
    finished_at: r.finished_at ?? null,
  };
}

export { SYNC_BUDGET_MS };
export const TOO_LONG_FOR_SYNC =
  'The run would take longer than a synchronous request may last (29 s); run it asynchronously with POST /workflows/{slug}/run?async=true and poll GET /executions/{execution_id}';

/**
 * Runs the steps of an execution that is RUNNING and records the terminal state, unless a cancel
 * won (then the record stays CANCELLED). Returns the record as it ends.
 */
export async function executeSteps(
  deps: WorkflowDeps,
  execution: ExecutionRecord,
  definition: Definition,
  deadline: number,
  tooLong: string,
): Promise<ExecutionRecord> {
  const { account_id: accountId, execution_id: executionId } = execution;
  const context: StepContext = {
    deadline,
    isCancelled: async () => (await deps.executions.status(accountId, executionId)) === 'CANCELLED',
  };
  const scope = { input: execution.input, steps: {} as Record<string, { output: unknown }> };
  let outcome: { status: 'SUCCEEDED'; output: unknown } | { status: 'FAILED'; error: string };
  try {
    for (const step of definition.steps) {
      if (await context.isCancelled()) throw new StepCancelled('cancelled');
      const model = deps.models.get(step.model);
      if (!model) throw new ModelFailure(`step '${step.id}': model '${step.model}' is not available`);
      const input = resolveReferences(step.input, scope, MAX_STEP_VALUE_BYTES, `step '${step.id}': its resolved input`);
      try {
        checkInput(model.input_schema, input, `steps.${step.id}.input`);
      } catch (error) {
        throw new ModelFailure(`step '${step.id}': ${(error as ApiError).message}`);
      }
      if (Date.now() >= deadline) throw new DeadlineExceeded('out of time');
      const output = await model.run(input, context);
      assertStorable(output, MAX_STEP_VALUE_BYTES, `step '${step.id}': its output`);
      scope.steps[step.id] = { output };
    }
    outcome = {
      status: 'SUCCEEDED',
      output: resolveReferences(definition.output, scope, MAX_EXECUTION_OUTPUT_BYTES, 'the execution output'),
    };
  } catch (error) {
    if (error instanceof StepCancelled) outcome = { status: 'FAILED', error: 'cancelled' };
    else if (error instanceof DeadlineExceeded) outcome = { status: 'FAILED', error: tooLong };
    else if (error instanceof ModelFailure || error instanceof ValueLimitExceeded) outcome = { status: 'FAILED', error: error.message };
    else throw error;
  }
  const finished = await deps.executions.finish(accountId, executionId, outcome, clock(deps));
  // A cancel won the race: the execution stays CANCELLED.
  return finished ?? (await deps.executions.get(accountId, executionId)) ?? execution;
}

/** A run's `input` (`null` when absent): 400 past its size limit, so every execution stays storable. */
function runInput(input: unknown): unknown {
  const bytes = jsonBytes(input ?? null);
  if (bytes > MAX_RUN_INPUT_BYTES) {
    throw ValidationError.field('input', `is ${bytes} bytes; a run's input may be at most ${kib(MAX_RUN_INPUT_BYTES)}`);
  }
  return input ?? null;
}

export type StartAsync = (execution: ExecutionRecord) => Promise<void>;

export interface RunResult {
  readonly execution: ExecutionRecord;
  readonly async: boolean;
}

/** POST /workflows/{slug}/run: checks, then runs now (sync) or queues for the worker (async). */
export async function runWorkflow(
  deps: WorkflowDeps,
  actor: Actor,
  slug: string,
  rawBody: unknown,
  options: { async: boolean; startAsync: StartAsync },
): Promise<RunResult> {
  // A sync run's budget counts from here: API Gateway's 29 s run from the request, not from the put.
  const started = Date.now();
  const body = parseRunBody(rawBody);
  const head = await reachableHead(deps, actor, slug);
  if (head.deployed_version == null) {
    throw new ConflictError('WORKFLOW_NOT_DEPLOYED', `Workflow '${slug}' has no deployed version; deploy it first`);
  }
  const definition = await versionOf(deps, head, head.deployed_version);
  const input = runInput(body.input);
  checkInput(definition.input_schema, input);
  if (body.webhook_url !== undefined) {
    if (!options.async) throw ValidationError.field('webhook_url', 'is only for asynchronous runs (?async=true)');
    try {
      await checkWebhookUrl(body.webhook_url);
    } catch (error) {
      if (error instanceof WebhookUrlError) throw ValidationError.field('webhook_url', error.message);
      throw error;
    }
  }
  const now = clock(deps);
  const record: ExecutionRecord = {
    account_id: actor.accountId,
    execution_id: newExecutionId(now),
    workflow_slug: slug,
    workflow_version: head.deployed_version,
    workspace_id: head.workspace_id,
    status: options.async ? 'QUEUED' : 'RUNNING',
    input,
    created_at: now.toISOString(),
    ...(options.async ? {} : { started_at: now.toISOString() }),
    key_id: actor.keyId,
    ...(body.webhook_url !== undefined ? { webhook_url: body.webhook_url } : {}),
    async: options.async,
  };
  await deps.executions.create(record);
  if (options.async) {
    try {
      await options.startAsync(record);
    } catch (error) {
      // Never leave an execution QUEUED that no worker will pick up.
      await deps.executions.finish(actor.accountId, record.execution_id, { status: 'FAILED', error: 'the run could not be started' }, clock(deps), ['QUEUED']);
      throw error;
    }
    return { execution: record, async: true };
  }
  return { execution: await executeSteps(deps, record, definition, started + SYNC_BUDGET_MS, TOO_LONG_FOR_SYNC), async: false };
}

/**
 * The worker's part of an async run: claim the QUEUED execution, run it, then send the webhook for its
 * terminal state. A retry after a crash finds it RUNNING and fails it rather than running twice.
 */
export async function workExecution(
  deps: WorkflowDeps,
  accountId: string,
  executionId: string,
  deadline: number,
  delivery: DeliveryOptions = {},
): Promise<ExecutionRecord | undefined> {
  let record = await deps.executions.start(accountId, executionId, clock(deps));
  if (record) {
    const definition = (await deps.workflows.getVersion(accountId, record.workflow_slug, record.workflow_version))?.definition;
    record = definition
      ? await executeSteps(deps, record, definition, deadline, 'The run outlasted the worker’s time limit')
      : await deps.executions.finish(accountId, executionId, { status: 'FAILED', error: 'the workflow version no longer exists' }, clock(deps));
  } else {
    const current = await deps.executions.get(accountId, executionId);
    if (current?.status === 'RUNNING') {
      // An earlier attempt died mid-run (Lambda retries async invocations): do not run the steps twice.
      record = await deps.executions.finish(accountId, executionId, { status: 'FAILED', error: 'the run was interrupted' }, clock(deps));
    } else {
      record = current;
    }
  }
  if (record?.webhook_url && TERMINAL.includes(record.status)) {
    const secret = await deps.accounts.webhookSecret(accountId, newWebhookSecret);
    const type = `execution.${record.status.toLowerCase()}`;
    const result = await deliverWebhook(record.webhook_url, secret, `msg_${record.execution_id}_${record.status.toLowerCase()}`, {
      type,
      data: toExecutionObject(record),
    }, delivery);
    countMetric(result.delivered ? METRIC.webhookDeliveries : METRIC.webhookFailures);
    log(result.delivered ? 'info' : 'warn', result.delivered ? 'webhook delivered' : 'webhook failed', {
      account_id: accountId,
      execution_id: record.execution_id,
      attempts: result.attempts,
      last_status: result.lastStatus,
    });
  }
  return record;
}

// ——— Models ———

export function listModels(deps: WorkflowDeps) {
  return { items: deps.models.list() };
}

export async function runModel(deps: WorkflowDeps, modelId: string, rawBody: unknown): Promise<{ model: string; output: unknown }> {
  const model = deps.models.get(modelId);
  if (!model) throw new NotFoundError(`Model '${modelId}' not found`);
  const body = parseModelRunBody(rawBody);
  const input = runInput(body.input);
  checkInput(model.input_schema, input);
  try {
    const output = await model.run(input, { deadline: Date.now() + SYNC_BUDGET_MS, isCancelled: async () => false });
    return { model: modelId, output };
  } catch (error) {
    if (error instanceof DeadlineExceeded) throw new ModelFailedError(TOO_LONG_FOR_SYNC);
    if (error instanceof ModelFailure) throw new ModelFailedError(error.message);
    throw error;
  }
}
