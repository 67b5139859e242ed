/** The audit feature's call: one page of the account's events (API.md §7), newest first. */
import { api, type Schemas } from '../../api/client';
import { call } from '../../api/errors';
import type { operations } from '../../api/schema';

export type AuditEvent = Schemas['AuditEvent'];
/**
 * The actions this console knows (the filter's, typed on the query parameter's list). An event's
 * `action` is an extensible enum: one this console does not know is shown as it is.
 */
export type AuditAction = NonNullable<NonNullable<operations['listAuditEvents']['parameters']['query']>['action']>;

export interface AuditQuery {
  readonly action?: AuditAction;
  /** A key id (its history), a member's subject, or the account id. */
  readonly target_id?: string;
  /** Events at or after this instant (ISO-8601). */
  readonly since?: string;
  /** Events before this instant (ISO-8601). */
  readonly until?: string;
}

/** Events per page. */
export const PAGE_SIZE = 25;

export function listAuditEvents(query: AuditQuery, nextToken: string | null): Promise<Schemas['AuditEventList']> {
  return call(api().GET('/audit-events', { params: { query: { ...query, limit: PAGE_SIZE, ...(nextToken ? { next_token: nextToken } : {}) } } }));
}

/** The Audit log page filtered to one key: its history. */
export const historyHref = (keyId: string) => `/audit?target_id=${encodeURIComponent(keyId)}`;
