/**
 * Workflow, model and run use cases (API.md §4 "Workflows", "Models"). Plain functions over the
 * repositories and the model registry; they know nothing of API Gateway.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Principal } from '../caller.js';
import { conflictBackoff } from '../ddb.js';
import { log } from '../log.js';
import { SLUG_PATTERN, workspaceAllowed } from '../capabilities.js';
import { decodePageToken, encodePageToken } from '../page-tokens.js';
import { failure, type FailureCode } from '../execution-failure.js';
import { ConcurrencyLimitExceededError, ConflictError, ModelFailedError, NotFoundError, ValidationError, WorkspaceDeniedError, type ApiError } from '../errors.js';
import { boundedMessage, DeadlineExceeded, ModelFailure, StepCancelled, type Model, type ModelRegistry, type StepContext } from '../models/registry.js';
import type { AccountsRepository } from '../repositories/accounts.js';
import type { AuditRepository, TransactItem } from '../repositories/audit.js';
import {
  newAttemptId,
  newExecutionId,
  TERMINAL,
  type ExecutionRecord,
  type ExecutionsRepository,
  type ExecutionStatus,
  type Outcome,
} from '../repositories/executions.js';
import {
  FINAL_WRITE_WINDOW_MS,
  LEASE_MARGIN_MS,
  SYNC_BUDGET_MS,
  WORKER_RESERVE_MS,
  WORKER_TIMEOUT_SECONDS,
  WORKFLOWS_TIMEOUT_SECONDS,
} from '../run-budget.js';
import { PreconditionFailedError, type Expected, type WorkflowHead, type WorkflowsRepository, type WorkflowVersion } from '../repositories/workflows.js';
import {
  parseCreateWorkflowBody,
  parseDeployWorkflowBody,
  parseModelRunBody,
  parseRunBody,
  parseUpdateWorkflowBody,
} from '../schemas.js';
import { checkInput, loadUserSchemaCompiler, validateDefinition, type Definition } from '../workflow-definition.js';
import {
  assertStorable,
  MAX_EXECUTION_OUTPUT_BYTES,
  MAX_RUN_INPUT_BYTES,
  MAX_STEP_VALUE_BYTES,
  kib,
  jsonBytes,
  resolveReferences,
  ValueLimitExceeded,
  type Scope,
} from '../references.js';
import { checkWebhookUrl, WebhookUrlError, type DeliveryOptions } from '../webhooks.js';
import { firstAttempt } from './webhooks.js';

export interface WorkflowDeps {
  readonly workflows: WorkflowsRepository;
  readonly executions: ExecutionsRepository;
  readonly accounts: AccountsRepository;
  readonly models: ModelRegistry;
  /** Where the worker records the event of an account's first webhook secret, when a run's webhook makes it. */
  readonly audit?: AuditRepository;
  readonly now?: () => Date;
  /** The delays between webhook attempts, in seconds. @default the environment's (tests) or the default schedule */
  readonly retrySchedule?: readonly number[];
  /** An account's first webhook attempts under way at once (tests). @default FIRST_ATTEMPTS_AT_ONCE */
  readonly firstAttemptsAtOnce?: number;
}

/** Who is asking: the account, the key, and the workspaces it may reach. */
export interface Actor {
  readonly accountId: string;
  /** Who acts: a key, or a person (recorded on the executions they start). */
  readonly principal: Principal;
  readonly workspaces: readonly string[];
}

const clock = (deps: { now?: () => Date }) => (deps.now ?? (() => new Date()))();

export interface WorkflowObject {
  slug: string;
  name: string;
  workspace_id: string;
  description: string;
  definition: Definition;
  /** The version this object shows: the latest, unless a version was asked for (`?version=n`). */
  version: number;
  /** The latest version. */
  latest_version: number;
  status: 'draft' | 'deployed';
  deployed_version: number | null;
  created_at: string;
  updated_at: string;
}

/** One version of a workflow, as GET /workflows/{slug}/versions lists it. */
export interface WorkflowVersionObject {
  slug: string;
  version: number;
  name: string;
  description: string;
  definition: Definition;
  /** Whether this is the deployed version. */
  deployed: boolean;
  created_at: string;
  /** Who saved it; null for versions saved before it was recorded. */
  created_by: Principal | null;
}

/**
 * The name and description of a version: its own, except for versions saved before versions recorded
 * them, which show the head's (the latest version's, exactly; an older one's were not kept).
 */
function versionText(head: WorkflowHead, version: Pick<WorkflowVersion, 'version' | 'name' | 'description'>): { name: string; description: string } {
  if (version.version === head.version) return { name: head.name, description: head.description };
  return { name: version.name ?? head.name, description: version.description ?? head.description };
}

function toWorkflowObject(head: WorkflowHead, version: Pick<WorkflowVersion, 'version' | 'definition' | 'name' | 'description'>): WorkflowObject {
  return {
    slug: head.slug,
    ...versionText(head, version),
    workspace_id: head.workspace_id,
    definition: version.definition,
    version: version.version,
    latest_version: head.version,
    status: head.deployed_version != null ? 'deployed' : 'draft',
    deployed_version: head.deployed_version ?? null,
    created_at: head.created_at,
    updated_at: head.updated_at,
  };
}

function toVersionObject(head: WorkflowHead, version: WorkflowVersion): WorkflowVersionObject {
  return {
    slug: head.slug,
    version: version.version,
    ...versionText(head, version),
    definition: version.definition,
    deployed: head.deployed_version === version.version,
    created_at: version.created_at,
    created_by: version.created_by ?? null,
  };
}

// ——— ETags and If-Match (RFC 9110 §8.8.3, §13.1.1) ———

/**
 * A workflow's strong ETag: a digest of what identifies its state, the workflow (slug and creation time,
 * so a workflow deleted and made again never matches its predecessor's tags) at its latest version and
 * deployed version (which decides `status`). Every change of a workflow changes one of them: a PUT makes
 * a version (name and description change only with one), a deploy pins another version; a PUT that
 * changes nothing and a deploy of the version already deployed write nothing. Quoted, opaque.
 */
export function workflowEtag(state: { slug: string; created_at: string; latest_version: number; deployed_version: number | null }): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([state.slug, state.created_at, state.latest_version, state.deployed_version]))
    .digest('base64url');
  return `"${digest.slice(0, 22)}"`;
}

const headEtag = (head: WorkflowHead) =>
  workflowEtag({ slug: head.slug, created_at: head.created_at, latest_version: head.version, deployed_version: head.deployed_version ?? null });

/** An `If-Match` as parsed: `*` (the workflow exists), or the entity tags listed (weak ones never match). */
export type IfMatch = { readonly any: true } | { readonly any: false; readonly strong: readonly string[] };

const ENTITY_TAG = /^\s*(W\/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)/;

/**
 * The `If-Match` header's values (each may list several tags): undefined when absent; 400
 * VALIDATION_ERROR naming the header when it is neither `*` nor a list of quoted entity tags.
 */
export function parseIfMatch(values: readonly string[]): IfMatch | undefined {
  if (values.length === 0) return undefined;
  const joined = values.join(', ').trim();
  if (joined === '*') return { any: true };
  const strong: string[] = [];
  let rest = joined;
  while (rest.trim() !== '') {
    const m = ENTITY_TAG.exec(rest);
    if (!m) throw ValidationError.field('If-Match', 'must be * or one or more quoted ETags, as the ETag header gives them (e.g. If-Match: "x7Tq…")');
    // Strong comparison (RFC 9110 §13.1.1): a weak tag never matches.
    if (!m[1]) strong.push(m[2]!);
    rest = rest.slice(m[0].length);
  }
  return { any: false, strong };
}

/** 412 PRECONDITION_FAILED unless `ifMatch` (if any) matches the head as read. */
function checkIfMatch(ifMatch: IfMatch | undefined, head: WorkflowHead): void {
  if (ifMatch && !ifMatch.any && !ifMatch.strong.includes(headEtag(head))) throw new PreconditionFailedError(head.slug);
}

/** What a conditional write must find when the request named the state it read (an If-Match with tags). */
const expectedBy = (ifMatch: IfMatch | undefined, head: WorkflowHead): Expected => ({ head, deployed: ifMatch !== undefined && !ifMatch.any });

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

async function versionOf(deps: WorkflowDeps, head: WorkflowHead, version: number): Promise<WorkflowVersion> {
  const found = version >= 1 && version <= head.version ? await deps.workflows.getVersion(head.account_id, head.slug, version) : undefined;
  if (!found) {
    throw new NotFoundError(version === head.version ? `Workflow '${head.slug}' not found` : `Workflow '${head.slug}' has no version ${version} (its latest is ${head.version})`);
  }
  return found;
}

const knownModel = (deps: WorkflowDeps) => (id: string) => deps.models.get(id) !== undefined;

/**
 * POST /workflows. With an Idempotency-Key its answer is kept with the workflow (`keep`, http.ts keepAs):
 * a request that dies after the workflow committed, or answers 500 on an outcome it could not learn, is
 * replayed to its retry, not refused as 409 ALREADY_EXISTS.
 */
export async function createWorkflow(deps: WorkflowDeps, actor: Actor, rawBody: unknown, keep?: (created: WorkflowObject) => TransactItem | undefined): Promise<WorkflowObject> {
  const body = parseCreateWorkflowBody(rawBody);
  await loadUserSchemaCompiler();
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
  const created = toWorkflowObject(head, { version: 1, definition: body.definition });
  await deps.workflows.create(head, body.definition, actor.principal, keep?.(created));
  return created;
}

/** GET /workflows/{slug}: the latest version, or (`?version=n`) version n; 404 for a version it does not have. */
export async function getWorkflow(deps: WorkflowDeps, actor: Actor, slug: string, version?: number): Promise<WorkflowObject> {
  const head = await reachableHead(deps, actor, slug);
  return toWorkflowObject(head, await versionOf(deps, head, version ?? head.version));
}

/** GET /workflows/{slug}/versions: a page of its versions, newest first. */
export async function listWorkflowVersions(
  deps: WorkflowDeps,
  actor: Actor,
  slug: string,
  limit: number,
  nextToken?: string,
): Promise<{ items: WorkflowVersionObject[]; next_token: string | null }> {
  const head = await reachableHead(deps, actor, slug);
  const page = await deps.workflows.listVersions(head, limit, nextToken);
  return { items: page.items.map((v) => toVersionObject(head, v)), next_token: page.nextToken };
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
      const { definition: _d, ...rest } = toWorkflowObject(head, { version: head.version, definition: undefined as unknown as Definition });
      return rest;
    }),
    next_token: page.nextToken,
  };
}

/** Reads and writes again after a conflict, each after `conflictBackoff` (at most 0.5 s): about 2 s of waits in all, at worst. */
const MAX_UPDATE_RETRIES = 9;

/** Canonical JSON (RFC 8785) of what a version holds, to tell an identical PUT; undefined when it has none. */
function versionContent(definition: unknown, name: string, description: string): string | undefined {
  try {
    return canonicalize({ definition, name, description });
  } catch {
    return undefined;
  }
}

/**
 * PUT /workflows/{slug}: a new version, unless the body is identical to the latest version (the same
 * definition, name and description, compared as canonical JSON): then nothing is written and the
 * workflow is answered as it is. With an If-Match, the workflow must still be in the state it names
 * (412 otherwise, enforced by the transaction's condition); without one, a concurrent update makes this
 * one read again and retry, so no version is ever lost and every version gets its own number.
 */
export async function updateWorkflow(deps: WorkflowDeps, actor: Actor, slug: string, rawBody: unknown, ifMatch?: IfMatch): Promise<WorkflowObject> {
  const body = parseUpdateWorkflowBody(rawBody);
  await loadUserSchemaCompiler();
  validateDefinition(body.definition, knownModel(deps));
  for (let attempt = 0; ; attempt++) {
    const head = await reachableHead(deps, actor, slug);
    const latest = await versionOf(deps, head, head.version);
    const changes = { name: body.name ?? head.name, description: body.description ?? head.description };
    const wanted = versionContent(body.definition, changes.name, changes.description);
    // Already so (this very PUT retried after a lost answer, or another writer's same change): 200 whatever
    // the If-Match says, as RFC 9110 §13.1.1 allows for a change already in place.
    if (wanted !== undefined && wanted === versionContent(latest.definition, head.name, head.description)) {
      return toWorkflowObject(head, latest);
    }
    checkIfMatch(ifMatch, head);
    const updated = await deps.workflows.addVersion(expectedBy(ifMatch, head), changes, body.definition, clock(deps), actor.principal);
    if (updated) return toWorkflowObject(updated, { version: updated.version, definition: body.definition });
    // With an If-Match the next read answers: 412 (it changed), or 404 (it is gone).
    if (attempt >= MAX_UPDATE_RETRIES) throw new ConflictError('ALREADY_EXISTS', `Workflow '${slug}' is being updated concurrently; try again`);
    // Another version took the number: read again after a jittered wait, so that writers racing on one
    // workflow spread out rather than collide again on their next read.
    await conflictBackoff(attempt);
  }
}

/**
 * POST /workflows/{slug}/deploy: pins `version` (default: the latest) as the deployed version, so an
 * older one can be deployed again (a rollback). Deploying the version already deployed writes nothing.
 * A version the workflow does not have is 400 naming `version`.
 */
export async function deployWorkflow(deps: WorkflowDeps, actor: Actor, slug: string, rawBody?: unknown, ifMatch?: IfMatch): Promise<WorkflowObject> {
  const body = parseDeployWorkflowBody(rawBody);
  for (let attempt = 0; ; attempt++) {
    const head = await reachableHead(deps, actor, slug);
    if (body.version !== undefined && body.version > head.version) {
      throw ValidationError.field('version', `is not a version of workflow '${slug}': its versions are 1 to ${head.version}`);
    }
    // Already deployed (a deploy retried after a lost answer): 200 whatever the If-Match says (RFC 9110 §13.1.1).
    if ((body.version ?? head.version) === head.deployed_version) return toWorkflowObject(head, await versionOf(deps, head, head.version));
    checkIfMatch(ifMatch, head);
    const deployed = await deps.workflows.deploy(actor.accountId, slug, clock(deps), {
      ...(body.version !== undefined ? { version: body.version } : {}),
      ...(ifMatch && !ifMatch.any ? { expected: expectedBy(ifMatch, head) } : {}),
    });
    if (deployed) return toWorkflowObject(deployed, await versionOf(deps, deployed, deployed.version));
    // Gone (404 on the next read), changed under an If-Match (412), or another workflow of the slug.
    if (attempt >= MAX_UPDATE_RETRIES) throw new NotFoundError(`Workflow '${slug}' not found`);
    await conflictBackoff(attempt);
  }
}

/**
 * 204 once the workflow and all its versions are gone. A workflow an earlier DELETE left half-deleted
 * (404 to every other route) is still found here, so retrying a DELETE that failed finishes it (whatever
 * its If-Match: the deletion was decided); once it is gone, DELETE is 404 like for any missing workflow.
 * With an If-Match, a live workflow must be in the state it names (412 otherwise, nothing deleted).
 */
export async function deleteWorkflow(deps: WorkflowDeps, actor: Actor, slug: string, ifMatch?: IfMatch): Promise<void> {
  const head = await deps.workflows.findHead(actor.accountId, slug);
  if (!head) throw new NotFoundError(`Workflow '${slug}' not found`);
  assertWorkspace(actor, head.workspace_id);
  const live = head.version !== undefined ? (head as WorkflowHead) : undefined;
  if (live) checkIfMatch(ifMatch, live);
  await deps.workflows.delete(head, live !== undefined && ifMatch !== undefined && !ifMatch.any);
}

// ——— Executions ———

export { toExecutionObject, type ExecutionObject } from './execution-object.js';

export { SYNC_BUDGET_MS };
/** A step that could not run (its model missing, its input not what the model takes): failure STEP_FAILED. */
class StepNotRunnable extends ModelFailure {}

export const TOO_LONG_FOR_SYNC = `The run would take longer than a synchronous run may (${SYNC_BUDGET_MS / 1000} s); run it asynchronously with POST /workflows/{slug}/run?async=true and poll GET /executions/{execution_id}`;
/** A direct model run is always synchronous: the way to a longer one is a workflow run asynchronously. */
export const MODEL_TOO_LONG_FOR_SYNC = `The model would run longer than a direct model run may (${SYNC_BUDGET_MS / 1000} s: it is synchronous); make it a step of a workflow and run that asynchronously with POST /workflows/{slug}/run?async=true`;
const TOO_LONG_FOR_WORKER = 'The run outlasted the worker’s time limit';

/** Attempts at a write that ends (or takes) a run, each with the SDK's own retries inside. */
const RUN_WRITE_ATTEMPTS = 3;
const RUN_WRITE_BACKOFF_MS = 250;

const errorName = (error: unknown) => {
  const name = error instanceof Error ? error.name : '';
  return /^\w{1,64}$/.test(name) ? name : 'Error';
};

/**
 * `write`, tried again (past the SDK's own attempts) up to RUN_WRITE_ATTEMPTS times while another
 * attempt may still start before `startBy` (epoch ms); the last error when none succeeded.
 */
async function retried<T>(what: string, ids: Record<string, string>, startBy: number, write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      const delay = RUN_WRITE_BACKOFF_MS * 2 ** (attempt - 1);
      if (attempt >= RUN_WRITE_ATTEMPTS || Date.now() + delay > startBy) throw error;
      log('warn', `${what} failed; trying again`, { ...ids, attempt, error: errorName(error) });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * The run's terminal write by `owner`, retried until `startBy`: the run as it ends in `owner`'s hands
 * (see ExecutionsRepository.finish), undefined when it is not theirs. Throws when no attempt got through.
 */
function endRun(
  deps: WorkflowDeps,
  execution: ExecutionRecord,
  outcome: Outcome,
  owner: string,
  startBy: number,
  from: readonly ExecutionStatus[] = ['RUNNING'],
): Promise<ExecutionRecord | undefined> {
  const { account_id: accountId, execution_id: executionId } = execution;
  return retried('the run’s final write', { account_id: accountId, execution_id: executionId }, startBy, () =>
    deps.executions.finish(accountId, executionId, outcome, clock(deps), owner, from, execution),
  );
}

/**
 * Runs the steps of an execution that `owner` holds (RUNNING) and records the terminal state, unless a
 * cancel won (then the record stays CANCELLED). Every step is bounded by `deadline` (a step that would
 * outlast it fails the run with `tooLong`); any error inside a step fails the run with its reason, so
 * only a failing final write (retried for FINAL_WRITE_WINDOW_MS past the deadline) throws. Returns the
 * record as it ends.
 */
export async function executeSteps(
  deps: WorkflowDeps,
  execution: ExecutionRecord,
  definition: Definition,
  deadline: number,
  tooLong: string,
  owner: string,
): Promise<ExecutionRecord> {
  const { account_id: accountId, execution_id: executionId } = execution;
  const ids = { account_id: accountId, execution_id: executionId };
  const context: StepContext = {
    deadline,
    // The small signal item, bounded by the deadline. A failed check is no cancel: the next check sees
    // it, and the conditional final write keeps a cancelled run CANCELLED whatever the steps did.
    isCancelled: async () => {
      try {
        return await deps.executions.cancelRequested(accountId, executionId, AbortSignal.timeout(Math.max(1, deadline - Date.now())));
      } catch (error) {
        log('warn', 'cancellation check failed', { ...ids, error: errorName(error) });
        return false;
      }
    },
  };
  // Never changed in place: references resolve to the objects they name, not to copies, so a step that
  // took `$.steps` holds the steps as they were; adding its own output to that object would make the
  // value contain itself (and its JSON fail). Each step's output makes a new scope instead.
  let scope: Scope = { input: execution.input, steps: {} };
  let outcome: Outcome;
  let where = 'the run';
  // The step in progress (null outside any step), for the failure's `step_id`.
  let stepId: string | null = null;
  const failed = (error: string, code: FailureCode): Outcome => ({ status: 'FAILED', error: boundedMessage(error), failure: failure(code, stepId) });
  try {
    for (const step of definition.steps) {
      where = `step '${step.id}'`;
      stepId = step.id;
      if (await context.isCancelled()) throw new StepCancelled('cancelled');
      const model = deps.models.get(step.model);
      if (!model) throw new StepNotRunnable(`step '${step.id}': model '${step.model}' is not available`);
      const input = resolveReferences(step.input, scope, MAX_STEP_VALUE_BYTES, `step '${step.id}': its resolved input`);
      try {
        await loadUserSchemaCompiler();
        checkInput(model.input_schema, input, `steps.${step.id}.input`);
      } catch (error) {
        throw new StepNotRunnable(`step '${step.id}': ${(error as ApiError).message}`);
      }
      if (Date.now() >= deadline) throw new DeadlineExceeded('out of time');
      const output = await model.run(input, context);
      assertStorable(output, MAX_STEP_VALUE_BYTES, `step '${step.id}': its output`);
      scope = { input: scope.input, steps: { ...scope.steps, [step.id]: { output } } };
    }
    where = 'the execution output';
    stepId = null;
    outcome = {
      status: 'SUCCEEDED',
      output: resolveReferences(definition.output, scope, MAX_EXECUTION_OUTPUT_BYTES, 'the execution output'),
    };
  } catch (error) {
    if (error instanceof StepCancelled) outcome = failed('cancelled', 'INTERRUPTED');
    else if (error instanceof DeadlineExceeded) outcome = failed(tooLong, 'TIMED_OUT');
    else if (error instanceof StepNotRunnable) outcome = failed(error.message, 'STEP_FAILED');
    else if (error instanceof ModelFailure) outcome = failed(error.message, 'MODEL_FAILED');
    else if (error instanceof ValueLimitExceeded) outcome = failed(error.message, 'VALUE_TOO_LARGE');
    else {
      // A dependency failing under a step (DynamoDB, Lambda, the network): the run ends, with the reason.
      log('error', 'step failed on an internal error', { ...ids, where, error: errorName(error), error_message: (error as Error)?.message });
      outcome = failed(`${where}: stopped by an internal error (${errorName(error)})`, 'INTERNAL_ERROR');
    }
  }
  const ended = await endRun(deps, execution, outcome, owner, deadline + FINAL_WRITE_WINDOW_MS);
  // Not ours (a later attempt found our lease expired and failed it): as it stands.
  return ended ?? (await deps.executions.get(accountId, executionId)) ?? execution;
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

/**
 * The first attempt at the webhook of a run's end, made by whoever ended it (its owner): the terminal
 * write marked it pending, so a crash here loses nothing (the scheduled sender makes it later). `makeSecret`:
 * make the account's secret when it has none (the worker may; the workflows function only opens an
 * existing one, and the scheduled sender makes it for the next attempt). Never throws.
 */
async function notify(deps: WorkflowDeps, record: ExecutionRecord, delivery: DeliveryOptions, makeSecret: boolean): Promise<void> {
  if (!record.webhook_url || !TERMINAL.includes(record.status) || record.webhook?.status !== 'pending') return;
  const ids = { account_id: record.account_id, execution_id: record.execution_id };
  // The run's slot is already given back: the attempt holds this instance on the account's count of
  // first attempts at once (FIRST_ATTEMPTS_AT_ONCE), else the scheduled sender makes it (it is due now).
  let counter: string | undefined;
  try {
    counter = await deps.executions.takeFirstAttempt(record.account_id, clock(deps).getTime(), deps.firstAttemptsAtOnce);
  } catch (error) {
    log('warn', 'first webhook attempt left to the scheduled sender: its count could not be taken', { ...ids, error: errorName(error) });
    return;
  }
  if (counter === undefined) {
    log('info', 'first webhook attempt left to the scheduled sender: the account has its most under way at once', ids);
    return;
  }
  try {
    await firstAttempt(deps, record, { makeSecret, delivery });
  } finally {
    await deps.executions.endFirstAttempt(record.account_id, counter).catch((error: unknown) => {
      log('warn', 'a first webhook attempt’s count could not be given back; it lapses with its window', { ...ids, error: errorName(error) });
    });
  }
}

/** POST /workflows/{slug}/run: checks, then runs now (sync) or queues for the worker (async). */
export async function runWorkflow(
  deps: WorkflowDeps,
  actor: Actor,
  slug: string,
  rawBody: unknown,
  options: {
    async: boolean;
    startAsync: StartAsync;
    /** The account's tier's limit of async runs in flight; an async run takes one of its slots. @default no limit */
    asyncLimit?: number;
    /** The account's tier's limit of sync runs running at once; a sync run holds one of its slots while it runs. @default no limit */
    syncLimit?: number;
  },
): Promise<RunResult> {
  // A sync run's budget counts from here: API Gateway's 29 s run from the request, not from the put.
  const started = Date.now();
  const body = parseRunBody(rawBody);
  const head = await reachableHead(deps, actor, slug);
  if (head.deployed_version == null) {
    throw new ConflictError('WORKFLOW_NOT_DEPLOYED', `Workflow '${slug}' has no deployed version; deploy it first`);
  }
  const { definition, created_at: versionCreatedAt } = await versionOf(deps, head, head.deployed_version);
  const input = runInput(body.input);
  await loadUserSchemaCompiler();
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
  // This request's attempt: it owns a sync run from the start, and an async run it has to fail.
  const owner = newAttemptId();
  const record: ExecutionRecord = {
    account_id: actor.accountId,
    execution_id: newExecutionId(now),
    workflow_slug: slug,
    workflow_version: head.deployed_version,
    workflow_version_created_at: versionCreatedAt,
    workspace_id: head.workspace_id,
    status: options.async ? 'QUEUED' : 'RUNNING',
    input,
    created_at: now.toISOString(),
    ...(options.async
      ? {}
      : { started_at: now.toISOString(), owner, lease_until: started + WORKFLOWS_TIMEOUT_SECONDS * 1000 + LEASE_MARGIN_MS }),
    ...(actor.principal.kind === 'key' ? { key_id: actor.principal.key_id } : {}),
    started_by: actor.principal,
    ...(body.webhook_url !== undefined ? { webhook_url: body.webhook_url } : {}),
    async: options.async,
    ...(options.async && options.asyncLimit !== undefined ? { async_slot: true } : {}),
  };
  if (!options.async) {
    // A sync run holds a slot while it runs, taken before its put (429 when none is free: nothing written).
    return holdingSyncSlot(deps, record.account_id, record.execution_id, options.syncLimit, record.lease_until!, async () => {
      await storeRun(deps, record, owner);
      return { execution: await executeSteps(deps, record, definition, started + SYNC_BUDGET_MS, TOO_LONG_FOR_SYNC, owner), async: false };
    });
  }
  await storeRun(deps, record, owner, options.asyncLimit);
  try {
    await options.startAsync(record);
  } catch (error) {
    // Never leave an execution QUEUED that no worker will pick up; this request ended it, so it makes
    // the webhook's first attempt (one, of at most 5 s; the failing request waits for it).
    const failed = await endRun(deps, record, { status: 'FAILED', error: 'the run could not be started', failure: failure('INTERNAL_ERROR') }, owner, Date.now() + 2 * RUN_WRITE_BACKOFF_MS, ['QUEUED']).catch(
      (cleanup: unknown) => {
        log('error', 'a run that could not be started could not be failed either', { account_id: record.account_id, execution_id: record.execution_id, error: errorName(cleanup) });
        return undefined;
      },
    );
    if (failed?.status === 'FAILED' && failed.owner === owner) {
      await notify(deps, failed, {}, false);
      throw error;
    }
    // Not failed by this request: the run left QUEUED meanwhile. The invocation landed with its answer
    // lost (a worker claimed the run), or the run was cancelled: either way it is in hand, and this
    // request succeeded. Answering 500 would release its Idempotency-Key, and a retry would run it twice.
    const current = await deps.executions.get(record.account_id, record.execution_id).catch(() => undefined);
    if (!current || current.status === 'QUEUED') throw error;
    log('warn', 'the worker’s invocation failed, but the run was taken up', { account_id: record.account_id, execution_id: record.execution_id, status: current.status, error: errorName(error) });
  }
  return { execution: record, async: true };
}

/**
 * Stores a new run (an async run under `asyncLimit` takes one of its account's slots in the same
 * transaction). A put whose every answer was lost may have landed: the run is then ended FAILED, never
 * left QUEUED or RUNNING behind the error. A refusal for want of a slot wrote nothing.
 */
async function storeRun(deps: WorkflowDeps, record: ExecutionRecord, owner: string, asyncLimit?: number): Promise<void> {
  try {
    await deps.executions.create(record, asyncLimit);
  } catch (error) {
    if (error instanceof ConcurrencyLimitExceededError) throw error;
    await endRun(deps, record, { status: 'FAILED', error: 'the run could not be stored', failure: failure('INTERNAL_ERROR') }, owner, Date.now(), ['QUEUED', 'RUNNING']).catch(
      (cleanup: unknown) => log('error', 'a run that could not be stored could not be failed either', { account_id: record.account_id, execution_id: record.execution_id, error: errorName(cleanup) }),
    );
    throw error;
  }
}

export interface WorkOptions {
  /** This attempt's id (the run's owner once claimed). @default a new one */
  readonly owner?: string;
  /** Epoch ms by which this attempt is certainly gone. @default the deadline, the worker's reserve and the margin */
  readonly leaseUntil?: number;
}

/**
 * The worker's part of an async run, for one delivery of its event (Lambda delivers at least once, and
 * retries a failed attempt). It claims the QUEUED run for this attempt with a lease, runs it, and sends
 * the first attempt at the webhook of its end (its terminal write marked it pending). A delivery that finds the run another attempt's leaves it while the lease is
 * live; once the lease has expired that attempt is gone, and the delivery fails the run ("the run was
 * interrupted") rather than running the steps twice. A run cancelled before any attempt took it gets
 * its first webhook attempt from the first delivery to see it. Only whoever ended a run makes that first
 * attempt; the scheduled sender makes the rest.
 */
export async function workExecution(
  deps: WorkflowDeps,
  accountId: string,
  executionId: string,
  deadline: number,
  delivery: DeliveryOptions = {},
  options: WorkOptions = {},
): Promise<ExecutionRecord | undefined> {
  const owner = options.owner ?? newAttemptId();
  const leaseUntil = options.leaseUntil ?? deadline + WORKER_RESERVE_MS + LEASE_MARGIN_MS;
  const ids = { account_id: accountId, execution_id: executionId, attempt: owner };
  const startBy = deadline + FINAL_WRITE_WINDOW_MS;
  // The claim is idempotent for this owner, so retrying it after a lost answer is safe.
  const claimed = await retried('the claim', ids, startBy, () => deps.executions.claim(accountId, executionId, owner, leaseUntil, clock(deps)));
  if (claimed) {
    let definition: Definition | undefined;
    let reason = 'the workflow version no longer exists';
    let code: FailureCode = 'WORKFLOW_DELETED';
    try {
      const version = await retried('reading the workflow version', ids, startBy, () => deps.workflows.getVersion(accountId, claimed.workflow_slug, claimed.workflow_version));
      // The version of that number the run was accepted for, not one of a workflow deleted and made again
      // since (its versions start at 1 anew): that run's workflow no longer exists.
      const same = claimed.workflow_version_created_at === undefined || version?.created_at === claimed.workflow_version_created_at;
      definition = same ? version?.definition : undefined;
    } catch (error) {
      log('error', 'the workflow version could not be read', { ...ids, error: errorName(error) });
      reason = `the workflow version could not be read (${errorName(error)})`;
      code = 'INTERNAL_ERROR';
    }
    const ended = definition
      ? await executeSteps(deps, claimed, definition, deadline, TOO_LONG_FOR_WORKER, owner)
      : await endRun(deps, claimed, { status: 'FAILED', error: reason, failure: failure(code) }, owner, startBy);
    if (ended?.owner === owner) await notify(deps, ended, delivery, true);
    return ended;
  }
  const current = await deps.executions.get(accountId, executionId);
  if (current?.status === 'RUNNING') {
    const now = clock(deps);
    const legacyCutoff = new Date(now.getTime() - WORKER_TIMEOUT_SECONDS * 1000 - LEASE_MARGIN_MS);
    const expired = current.lease_until !== undefined ? current.lease_until < now.getTime() : (current.started_at ?? '') < legacyCutoff.toISOString();
    if (!expired) {
      // A duplicate delivery: the attempt that holds the run is alive (or may be, until its lease ends).
      log('info', 'the run is another attempt’s; this delivery leaves it', { ...ids, holder: current.owner ?? null, lease_until: current.lease_until ?? null });
      return current;
    }
    // That attempt is gone (Lambda ended it): fail the run rather than run the steps twice.
    const failed = await retried('failing an interrupted run', ids, startBy, () =>
      deps.executions.failInterrupted(accountId, executionId, current.owner, owner, clock(deps), legacyCutoff, current),
    );
    if (failed) await notify(deps, failed, delivery, true);
    return failed ?? (await deps.executions.get(accountId, executionId));
  }
  if (current?.status === 'CANCELLED' && current.webhook_url && (current.owner === undefined || current.owner === owner)) {
    // Cancelled before any attempt held it (or while this one's claim was answered late): the first
    // delivery to take it sends the webhook.
    const mine = await retried('taking a cancelled run', ids, startBy, () => deps.executions.claimCancelled(accountId, executionId, owner));
    if (mine) await notify(deps, mine, delivery, true);
    return mine ?? current;
  }
  return current;
}

// ——— Models ———

/**
 * GET /models: a page of the models in the registry's order, the built-in ones first, then the
 * deployment's own in the order of the stack's `models` prop (which Lambda's environment size bounds, so
 * one default page holds them all in practice). The token names the page's last model, for the account
 * that received it; a model gone since (a redeploy) is 400, like any stale token.
 */
export async function listModels(deps: WorkflowDeps, accountId: string, limit: number, nextToken?: string) {
  const all = deps.models.list();
  const from = nextToken === undefined ? undefined : (await decodePageToken('models', nextToken, accountId, { m: SLUG_PATTERN })).m;
  const after = from === undefined ? -1 : all.findIndex((m) => m.id === from);
  if (nextToken !== undefined && after === -1) throw ValidationError.field('next_token', 'is not a valid page token (or its model is gone): list again from the start');
  const rest = all.slice(after + 1);
  const items = rest.slice(0, limit);
  const last = items.at(-1);
  return { items, next_token: rest.length > limit && last ? await encodePageToken('models', accountId, { m: last.id }) : null };
}

/**
 * A direct model run, for `accountId`. A model that waits (`sleep`, a deployer's model) holds one of the
 * account's `syncLimit` sync slots while it runs, as a sync workflow run does: it holds a workflows-function
 * instance (up to 25 s) from the pool every account shares. 429 CONCURRENCY_LIMIT_EXCEEDED when none is free.
 */
export async function runModel(
  deps: WorkflowDeps,
  accountId: string,
  modelId: string,
  rawBody: unknown,
  options: { syncLimit?: number | undefined } = {},
): Promise<{ model: string; output: unknown }> {
  // The budget counts from the request, as a sync run's does: taking a slot may take a moment.
  const deadline = Date.now() + SYNC_BUDGET_MS;
  const model = deps.models.get(modelId);
  if (!model) throw new NotFoundError(`Model '${modelId}' not found`);
  const body = parseModelRunBody(rawBody);
  const input = runInput(body.input);
  await loadUserSchemaCompiler();
  checkInput(model.input_schema, input);
  if (!model.waits) return await modelRun(model, modelId, input, deadline);
  // The slot's holder: this run alone (a direct run has no execution id).
  const holder = `model-run-${newAttemptId()}`;
  const leaseUntil = Date.now() + WORKFLOWS_TIMEOUT_SECONDS * 1000 + LEASE_MARGIN_MS;
  return holdingSyncSlot(deps, accountId, holder, options.syncLimit, leaseUntil, () => modelRun(model, modelId, input, deadline)).catch((error: unknown) => {
    throw error instanceof ConcurrencyLimitExceededError && error.kind === 'sync' ? new ConcurrencyLimitExceededError(error.limit, 'model') : error;
  });
}

/**
 * `work` while `holder` holds one of the account's `limit` sync slots (none taken when `limit` is
 * undefined): 429 CONCURRENCY_LIMIT_EXCEEDED when none is free, before any work. The slot is given back
 * when the work ends; a release that fails only keeps it until its lease, `leaseUntil`.
 */
async function holdingSyncSlot<T>(deps: WorkflowDeps, accountId: string, holder: string, limit: number | undefined, leaseUntil: number, work: () => Promise<T>): Promise<T> {
  if (limit === undefined) return work();
  const slot = await deps.executions.takeSyncSlot(accountId, holder, limit, leaseUntil);
  try {
    return await work();
  } finally {
    await deps.executions.releaseSyncSlot(accountId, slot, holder).catch((error: unknown) =>
      log('warn', 'a sync slot could not be released; its lease frees it', { account_id: accountId, holder, error: errorName(error) }),
    );
  }
}

async function modelRun(model: Model, modelId: string, input: unknown, deadline: number): Promise<{ model: string; output: unknown }> {
  try {
    const output = await model.run(input, { deadline, isCancelled: async () => false });
    // As a step's output may be: a deployer's model could answer up to Lambda's 6 MB, past what the
    // function may answer itself (a 502 instead of the contract's 422).
    const bytes = jsonBytes(output);
    if (bytes > MAX_STEP_VALUE_BYTES) throw new ModelFailure(`the output of model ${modelId} is ${bytes} bytes, over the limit of ${kib(MAX_STEP_VALUE_BYTES)} (a step's output may be as large)`);
    return { model: modelId, output };
  } catch (error) {
    if (error instanceof DeadlineExceeded) throw new ModelFailedError(MODEL_TOO_LONG_FOR_SYNC);
    if (error instanceof ModelFailure) throw new ModelFailedError(boundedMessage(error.message));
    throw error;
  }
}
