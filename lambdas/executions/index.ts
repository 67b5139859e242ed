/** Executions Lambda: /executions (read, list, cancel). */
import { principalOf } from '../shared/caller.js';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv } from '../shared/env.js';
import { authenticatedHandler, json, type RequestContext, type RouteDef } from '../shared/http.js';
import { ExecutionsRepository } from '../shared/repositories/executions.js';
import { UsageRepository } from '../shared/repositories/usage.js';
import { parsePageParams } from '../shared/schemas.js';
import { cancelExecution, getExecution, listExecutions, type ExecutionDeps } from '../shared/services/executions.js';
import type { Actor } from '../shared/services/workflows.js';

const doc = createDocumentClient();
const usage = new UsageRepository(doc, requireEnv(TABLE_ENV.usage));
// A cancel frees the run's in-flight slot in the accounts table.
const deps: ExecutionDeps = { executions: new ExecutionsRepository(doc, requireEnv(TABLE_ENV.executions), requireEnv(TABLE_ENV.accounts)) };

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
    handle: async (ctx) => json(200, await cancelExecution(deps, actor(ctx), ctx.param('execution_id'))),
  },
};

export const handler = authenticatedHandler(usage, routes);
