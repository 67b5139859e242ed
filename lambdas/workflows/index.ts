/** Workflows Lambda: /workflows (CRUD, deploy, run) and /models (list, run). */
import { principalOf } from '../shared/caller.js';
import type { InvokeCommand as InvokeCommandClass, LambdaClient } from '@aws-sdk/client-lambda';
import { SLUG_PATTERN, covers } from '../shared/capabilities.js';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv, WORKER_FUNCTION_ENV } from '../shared/env.js';
import { CapabilityDeniedError } from '../shared/errors.js';
import { authenticatedHandler, json, type RequestContext, type RouteDef } from '../shared/http.js';
import { ModelRegistry } from '../shared/models/registry.js';
import { AccountsRepository } from '../shared/repositories/accounts.js';
import { ExecutionsRepository } from '../shared/repositories/executions.js';
import { IdempotencyRepository } from '../shared/repositories/idempotency.js';
import { UsageRepository } from '../shared/repositories/usage.js';
import { WorkflowsRepository } from '../shared/repositories/workflows.js';
import { parseAsyncParam, parsePageParams, parseVersionParam } from '../shared/schemas.js';
import { secretBoxFromEnv } from '../shared/secret-box.js';
import { retryScheduleFromEnv } from '../shared/webhook-schedule.js';
import { settingsFromEnv } from '../shared/settings.js';
import {
  createWorkflow,
  deleteWorkflow,
  deployWorkflow,
  getWorkflow,
  listModels,
  listWorkflowVersions,
  listWorkflows,
  parseIfMatch,
  runModel,
  runWorkflow,
  toExecutionObject,
  updateWorkflow,
  workflowEtag,
  type Actor,
  type WorkflowDeps,
  type WorkflowObject,
} from '../shared/services/workflows.js';

const doc = createDocumentClient();
const usage = new UsageRepository(doc, requireEnv(TABLE_ENV.usage));
const deps: WorkflowDeps = {
  workflows: new WorkflowsRepository(doc, requireEnv(TABLE_ENV.workflows)),
  // The accounts table holds the in-flight counters an async run takes a slot of and frees.
  executions: new ExecutionsRepository(doc, requireEnv(TABLE_ENV.executions), requireEnv(TABLE_ENV.accounts)),
  // Opens (never makes) the webhook secret: a run this function fails because it could not start it gets
  // its first webhook attempt from here (on an account with no secret yet, the scheduled sender's next
  // attempt makes it). kms:Decrypt only: a secret an earlier release kept in the clear is used as it is
  // (housekeeping seals it).
  accounts: new AccountsRepository(doc, requireEnv(TABLE_ENV.accounts), secretBoxFromEnv(), { openOnly: true }),
  models: ModelRegistry.fromEnv(),
  // The webhook retry schedule, validated at cold start.
  retrySchedule: retryScheduleFromEnv(),
};
const workerFunction = requireEnv(WORKER_FUNCTION_ENV);
/** The Lambda client, loaded by the first async run (sync runs, reads and writes of workflows never need it). */
let lambda: Promise<{ client: LambdaClient; InvokeCommand: typeof InvokeCommandClass }> | undefined;
const lambdaClient = () =>
  (lambda ??= import('@aws-sdk/client-lambda').then(({ LambdaClient, InvokeCommand }) => ({ client: new LambdaClient({}), InvokeCommand })));

/** Hands an async execution to the worker: an asynchronous invocation (Lambda retries it, then its DLQ). */
async function startAsync(execution: { account_id: string; execution_id: string }): Promise<void> {
  const { client, InvokeCommand } = await lambdaClient();
  await client.send(
    new InvokeCommand({
      FunctionName: workerFunction,
      InvocationType: 'Event',
      Payload: Buffer.from(JSON.stringify({ account_id: execution.account_id, execution_id: execution.execution_id })),
    }),
  );
}

const actor = ({ caller }: RequestContext): Actor => ({
  accountId: caller.accountId,
  principal: principalOf(caller),
  workspaces: caller.workspaces,
});

/** A workflow's answer, with its ETag (the state an If-Match on PUT, deploy or DELETE names). */
const withEtag = (status: number, workflow: WorkflowObject) => json(status, workflow, { ETag: workflowEtag(workflow) });
const created = (workflow: WorkflowObject) => withEtag(201, workflow);

/** The request's If-Match (API.md §4 "Workflow versions"), whatever the case of its name. */
function ifMatchOf({ event }: RequestContext) {
  const multi = event.multiValueHeaders ?? {};
  const values =
    Object.keys(multi).length > 0
      ? Object.entries(multi).flatMap(([k, v]) => (k.toLowerCase() === 'if-match' ? (v ?? []) : []))
      : Object.entries(event.headers ?? {}).flatMap(([k, v]) => (k.toLowerCase() === 'if-match' && v !== undefined ? [v] : []));
  return parseIfMatch(values);
}

const slugOf = (event: { pathParameters: Record<string, string | undefined> | null }) => event.pathParameters?.['slug'] ?? '';
const idOf = (event: { pathParameters: Record<string, string | undefined> | null }) => event.pathParameters?.['model_id'] ?? '';

const routes: Record<string, RouteDef> = {
  'POST /workflows': {
    needs: 'workflow:write',
    idempotent: {},
    handle: async (ctx) => created(await createWorkflow(deps, actor(ctx), ctx.body(), ctx.keepAs(created))),
  },
  'GET /workflows': {
    needs: 'workflow:read',
    handle: async (ctx) => {
      const { limit, nextToken } = parsePageParams(ctx.event.queryStringParameters);
      return json(200, await listWorkflows(deps, actor(ctx), limit, nextToken));
    },
  },
  'GET /workflows/{slug}': {
    needs: 'workflow:read',
    handle: async (ctx) => {
      const version = parseVersionParam(ctx.event.multiValueQueryStringParameters, ctx.event.queryStringParameters);
      return withEtag(200, await getWorkflow(deps, actor(ctx), ctx.param('slug'), version));
    },
  },
  'GET /workflows/{slug}/versions': {
    needs: 'workflow:read',
    handle: async (ctx) => {
      const { limit, nextToken } = parsePageParams(ctx.event.queryStringParameters);
      return json(200, await listWorkflowVersions(deps, actor(ctx), ctx.param('slug'), limit, nextToken));
    },
  },
  'PUT /workflows/{slug}': {
    needs: 'workflow:write',
    handle: async (ctx) => withEtag(200, await updateWorkflow(deps, actor(ctx), ctx.param('slug'), ctx.body(), ifMatchOf(ctx))),
  },
  'POST /workflows/{slug}/deploy': {
    needs: 'workflow:write',
    handle: async (ctx) => withEtag(200, await deployWorkflow(deps, actor(ctx), ctx.param('slug'), ctx.body(), ifMatchOf(ctx))),
  },
  'DELETE /workflows/{slug}': {
    needs: 'workflow:write',
    noBody: true,
    handle: async (ctx) => {
      await deleteWorkflow(deps, actor(ctx), ctx.param('slug'), ifMatchOf(ctx));
      return { statusCode: 204, headers: {}, body: '' };
    },
  },
  'POST /workflows/{slug}/run': {
    // workflow:run covers workflow:<slug>:run.
    needs: (event) => (SLUG_PATTERN.test(slugOf(event)) ? `workflow:${slugOf(event)}:run` : 'workflow:run'),
    // A sync run and an async one are different requests.
    idempotent: { query: ['async'] },
    handle: async (ctx) => {
      const isAsync = parseAsyncParam(ctx.event.multiValueQueryStringParameters, ctx.event.queryStringParameters);
      const body = ctx.body();
      const wantsWebhook = body !== null && typeof body === 'object' && 'webhook_url' in body;
      if (wantsWebhook && !covers(ctx.caller.capabilities, 'webhook:receive')) {
        throw new CapabilityDeniedError('webhook:receive', [...ctx.caller.capabilities]);
      }
      const { execution } = await runWorkflow(deps, actor(ctx), ctx.param('slug'), body, {
        async: isAsync,
        startAsync,
        // The tier as the authorizer saw it on this request (a tier change counts from the next one).
        asyncLimit: settingsFromEnv().tiers[ctx.caller.tier].maxAsyncInFlight,
        syncLimit: settingsFromEnv().tiers[ctx.caller.tier].maxSyncInFlight,
      });
      if (isAsync) {
        const stage = ctx.event.requestContext.stage;
        return json(
          202,
          { execution_id: execution.execution_id, status: execution.status },
          { Location: `/${stage}/executions/${execution.execution_id}` },
        );
      }
      return json(200, toExecutionObject(execution));
    },
  },
  'GET /models': {
    handle: async (ctx) => {
      const { limit, nextToken } = parsePageParams(ctx.event.queryStringParameters);
      return json(200, await listModels(deps, ctx.caller.accountId, limit, nextToken));
    },
  },
  'POST /models/{model_id}/run': {
    needs: (event) => (SLUG_PATTERN.test(idOf(event)) ? `model:${idOf(event)}:run` : 'model:run'),
    // A model that ran and failed is the run's answer, replayed like a 200: a retry does not run it again.
    idempotent: { keepErrors: ['MODEL_FAILED'] },
    unstored: true,
    handle: async (ctx) =>
      json(200, await runModel(deps, ctx.caller.accountId, ctx.param('model_id'), ctx.body(), { syncLimit: settingsFromEnv().tiers[ctx.caller.tier].maxSyncInFlight })),
  },
};

export const handler = authenticatedHandler(usage, routes, {
  maxBodyBytes: 256 * 1024,
  idempotency: { records: new IdempotencyRepository(doc, requireEnv(TABLE_ENV.idempotency)) },
});
