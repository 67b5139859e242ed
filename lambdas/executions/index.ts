/** Executions Lambda: /executions (read, list, cancel, redeliver the webhook). */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { principalOf } from '../shared/caller.js';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv, WEBHOOK_SENDER_FUNCTION_ENV } from '../shared/env.js';
import { authenticatedHandler, json, type RequestContext, type RouteDef } from '../shared/http.js';
import { ExecutionsRepository } from '../shared/repositories/executions.js';
import { UsageRepository } from '../shared/repositories/usage.js';
import { parsePageParams } from '../shared/schemas.js';
import { cancelExecution, getExecution, listExecutions, redeliverWebhook, type ExecutionDeps, type SendWebhookNow } from '../shared/services/executions.js';
import type { Actor } from '../shared/services/workflows.js';

const doc = createDocumentClient();
const usage = new UsageRepository(doc, requireEnv(TABLE_ENV.usage));
// A cancel frees the run's in-flight slot in the accounts table.
const deps: ExecutionDeps = { executions: new ExecutionsRepository(doc, requireEnv(TABLE_ENV.executions), requireEnv(TABLE_ENV.accounts)) };
const senderFunction = requireEnv(WEBHOOK_SENDER_FUNCTION_ENV);
const lambda = new LambdaClient({});

/** An asynchronous invocation of the webhook sender with `{account_id, execution_id}`. */
const sendNow: SendWebhookNow = async (ids) => {
  await lambda.send(new InvokeCommand({ FunctionName: senderFunction, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(ids)) }));
};

const actor = ({ caller }: RequestContext): Actor => ({ accountId: caller.accountId, principal: principalOf(caller), workspaces: caller.workspaces });

const routes: Record<string, RouteDef> = {
  'GET /executions': {
    needs: 'execution:read',
    handle: async (ctx) => {
      const query = ctx.event.queryStringParameters;
      const { limit, nextToken } = parsePageParams(query);
      return json(200, await listExecutions(deps, actor(ctx), query, limit, nextToken));
    },
  },
  'GET /executions/{execution_id}': {
    needs: 'execution:read',
    handle: async (ctx) => json(200, await getExecution(deps, actor(ctx), ctx.param('execution_id'))),
  },
  'POST /executions/{execution_id}/cancel': {
    needs: 'execution:cancel',
    noBody: true,
    handle: async (ctx) => json(200, await cancelExecution(deps, actor(ctx), ctx.param('execution_id'))),
  },
  'POST /executions/{execution_id}/webhook/redeliver': {
    noBody: true,
    // Reading the run, and receiving its webhook.
    needs: ['execution:read', 'webhook:receive'],
    handle: async (ctx) => json(202, await redeliverWebhook(deps, actor(ctx), ctx.param('execution_id'), sendNow)),
  },
};

export const handler = authenticatedHandler(usage, routes);
