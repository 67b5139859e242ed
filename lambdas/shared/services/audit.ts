/**
 * The audit trail (API.md §7): who changed what, when and from where. Events are written by the services
 * that make the changes, each in its change's own transaction (repositories/audit.ts `putItem`); this
 * module names the actor and reads the trail (`GET /audit-events`).
 */
import { queryParameterNames } from '../query-parameters.js';
import type { Principal } from '../caller.js';
import { ValidationError } from '../errors.js';
import { isCalendarDate } from '../dates.js';
import {
  AUDIT_ACTIONS,
  isAuditAction,
  OPERATOR_ACTOR,
  type AuditActor,
  type AuditEvent,
  type AuditFilters,
  type AuditRepository,
} from '../repositories/audit.js';

export interface AuditDeps {
  readonly audit: AuditRepository;
}

/** The actor of a change: the calling key or person, or an operator (the admin CLI) when there is none. */
export function actorOf(principal: Principal | undefined): AuditActor {
  return principal ?? OPERATOR_ACTOR;
}

/** Each field `{from, to}` whose value differs (compared as JSON: lists are kept in a canonical order). */
export function diff(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, { from: unknown; to: unknown }> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const [field, to] of Object.entries(after)) {
    if (to === undefined) continue;
    const from = before[field] ?? null;
    if (JSON.stringify(from) !== JSON.stringify(to)) changes[field] = { from, to };
  }
  return changes;
}

/** The route's parameters, from the one list the HTTP layer enforces and the OpenAPI document publishes. */
const QUERY_PARAMETERS = queryParameterNames('GET /audit-events');
/** An ISO-8601 date (`2026-03-01`, midnight UTC) or date-time with `Z` or an offset. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;
/** A key id, a subject (1–255 printable ASCII characters, OpenID Connect Core §2) or an account id. */
const ID = /^[\x21-\x7e]{1,255}$/;

function time(name: string, value: string): Date {
  const [year, month, day] = value.slice(0, 10).split('-').map(Number);
  const at = ISO_8601.test(value) && isCalendarDate(year!, month!, day!) ? new Date(value.length === 10 ? `${value}T00:00:00Z` : value) : undefined;
  if (!at || Number.isNaN(at.getTime())) throw ValidationError.field(name, 'must be an ISO-8601 date or date-time (e.g. 2026-03-01T12:00:00Z)');
  return at;
}

/**
 * The query of GET /audit-events, validated: unknown or repeated parameters, an unknown action, a
 * malformed time or `since` after `until` are 400 VALIDATION_ERROR naming the parameter.
 */
export function parseAuditQuery(query: Readonly<Record<string, readonly string[] | undefined>> | null | undefined): {
  filters: AuditFilters;
  limit: number;
  nextToken?: string;
} {
  const given = Object.entries(query ?? {}).filter(([, v]) => v !== undefined) as [string, readonly string[]][];
  const unknown = given.map(([name]) => name).filter((name) => !QUERY_PARAMETERS.includes(name));
  if (unknown.length > 0) {
    throw new ValidationError(
      unknown.map((field) => ({ field, message: `is not a parameter of this list (use ${QUERY_PARAMETERS.join(', ')})` })),
      `Unknown query parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`,
    );
  }
  const one: Record<string, string> = {};
  for (const [name, values] of given) {
    if (values.length !== 1) throw ValidationError.field(name, 'must be given once');
    one[name] = values[0]!;
  }
  const { action, target_id: targetId, actor_id: actorId, since, until, limit: rawLimit, next_token: nextToken } = one;
  if (action !== undefined && !isAuditAction(action)) throw ValidationError.field('action', `must be one of ${AUDIT_ACTIONS.join(', ')}`);
  if (targetId !== undefined && !ID.test(targetId)) throw ValidationError.field('target_id', 'must be 1 to 255 printable characters');
  if (actorId !== undefined && !ID.test(actorId)) throw ValidationError.field('actor_id', 'must be 1 to 255 printable characters (a key id or a subject)');
  const sinceAt = since === undefined ? undefined : time('since', since);
  const untilAt = until === undefined ? undefined : time('until', until);
  if (sinceAt && untilAt && sinceAt.getTime() > untilAt.getTime()) throw ValidationError.field('since', 'must not be after until');
  let limit = 50;
  if (rawLimit !== undefined) {
    if (!/^\d{1,3}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 100) throw ValidationError.field('limit', 'must be an integer from 1 to 100');
    limit = Number(rawLimit);
  }
  if (nextToken !== undefined && (nextToken === '' || nextToken.length > 2048)) throw ValidationError.field('next_token', 'is not a valid page token');
  return {
    filters: {
      ...(action !== undefined ? { action } : {}),
      ...(targetId !== undefined ? { targetId } : {}),
      ...(actorId !== undefined ? { actorId } : {}),
      ...(sinceAt ? { since: sinceAt } : {}),
      ...(untilAt ? { until: untilAt } : {}),
    },
    limit,
    ...(nextToken !== undefined ? { nextToken } : {}),
  };
}

/** GET /audit-events: a page of the account's events, newest first. */
export async function listAuditEvents(
  deps: AuditDeps,
  accountId: string,
  query: Readonly<Record<string, readonly string[] | undefined>> | null | undefined,
): Promise<{ items: AuditEvent[]; next_token: string | null }> {
  const { filters, limit, nextToken } = parseAuditQuery(query);
  const page = await deps.audit.list(accountId, filters, limit, nextToken);
  return { items: page.items, next_token: page.nextToken };
}
