/**
 * The query parameters of every route (API.md §4 "Pages and parameters"): the one list that both the
 * handlers (http.ts refuses any other parameter with 400 VALIDATION_ERROR naming it) and the OpenAPI
 * document (openapi.ts publishes these as each operation's query parameters) read, so the two cannot
 * drift. A route not listed takes no query parameter at all. Keyed as API Gateway names a route:
 * `<METHOD> <resource>`.
 */
import { AUDIT_ACTIONS } from './audit-contract.js';
import { EXECUTION_STATUSES } from './execution-status.js';
import { ValidationError } from './errors.js';

export interface QueryParameter {
  readonly name: string;
  /** JSON Schema of the value (query values are strings on the wire; the schema says what they hold). */
  readonly schema: Readonly<Record<string, unknown>>;
  readonly description?: string;
}

/** `?limit=` and `?next_token=`, which every list takes. */
export const PAGE_PARAMETERS: readonly QueryParameter[] = [
  { name: 'limit', schema: { type: 'integer', minimum: 1, maximum: 100, default: 50 }, description: 'Items per page, 1 to 100 (default 50).' },
  {
    name: 'next_token',
    schema: { type: 'string' },
    description: 'The previous page’s `next_token` (with the same filters); a token the API did not issue, or from another account or list, is 400.',
  },
];

export const ROUTE_QUERY_PARAMETERS: Readonly<Record<string, readonly QueryParameter[]>> = {
  'GET /keys': PAGE_PARAMETERS,
  'GET /keys/{key_id}/usage': [
    { name: 'days', schema: { type: 'integer', minimum: 1, maximum: 90, default: 30 }, description: 'How many days `daily` covers, 1 to 90 (default 30).' },
  ],
  'GET /workflows': PAGE_PARAMETERS,
  'GET /workflows/{slug}': [
    { name: 'version', schema: { type: 'integer', minimum: 1 }, description: 'A version to read instead of the latest (404 for a version the workflow does not have).' },
  ],
  'GET /workflows/{slug}/versions': PAGE_PARAMETERS,
  'POST /workflows/{slug}/run': [
    { name: 'async', schema: { enum: ['true', 'false'] }, description: '`true` or `false` (the default), once; anything else is 400.' },
  ],
  'GET /models': PAGE_PARAMETERS,
  'GET /executions': [
    ...PAGE_PARAMETERS,
    { name: 'workflow', schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }, description: 'Only this workflow’s executions (its slug).' },
    { name: 'status', schema: { enum: [...EXECUTION_STATUSES] }, description: 'Only executions in this status.' },
  ],
  'GET /audit-events': [
    ...PAGE_PARAMETERS,
    { name: 'action', schema: { enum: [...AUDIT_ACTIONS] } },
    { name: 'target_id', schema: { type: 'string' }, description: 'A key id, a member’s subject, or the account id (its own and its webhook secret’s events).' },
    { name: 'actor_id', schema: { type: 'string' }, description: 'A key id or a person’s subject.' },
    { name: 'since', schema: { type: 'string' }, description: 'ISO-8601 date or date-time: events at or after it.' },
    { name: 'until', schema: { type: 'string' }, description: 'ISO-8601 date or date-time: events before it.' },
  ],
};

/** The names a route takes (none for a route not listed). */
export function queryParameterNames(route: string): readonly string[] {
  return (ROUTE_QUERY_PARAMETERS[route] ?? []).map((p) => p.name);
}

/**
 * 400 VALIDATION_ERROR naming every query parameter of `given` that `route` does not take (API.md §4:
 * unknown query parameters are refused, never silently ignored).
 */
export function assertKnownQueryParameters(route: string, given: readonly string[]): void {
  const known = queryParameterNames(route);
  const unknown = given.filter((name) => !known.includes(name));
  if (unknown.length === 0) return;
  const takes = known.length > 0 ? `it takes ${known.join(', ')}` : 'it takes none';
  throw new ValidationError(
    unknown.map((field) => ({ field, message: `is not a query parameter of ${route} (${takes})` })),
    `Unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: ${route} takes ${known.length > 0 ? known.join(', ') : 'no query parameters'}`,
  );
}
