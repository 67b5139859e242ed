import { createHash } from 'node:crypto';
import { GetCommand, type DynamoDBDocumentClient, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { randomBase62 } from '../api-key.js';
import { AUDIT_ACTIONS, isAuditAction, type AuditAction } from '../audit-contract.js';
import type { Principal } from '../caller.js';
import { queryPage } from '../ddb.js';
import { decodePageToken, encodePageToken } from '../page-tokens.js';
import { ValidationError } from '../errors.js';

/**
 * Audit table (API.md §7): one item per recorded change, written in the SAME transaction as the change
 * (callers add `putItem(event)` to their TransactWriteItems), so there is no change without its event
 * and no event without its change. Never a plaintext key, a key hash or a webhook secret.
 *
 * Keys: partition `account_id`, sort `sk` = `<occurred_at>#<event_id>` (ISO-8601 UTC sorts as text), so
 * an account's events read newest first with `ScanIndexForward: false`, and `since`/`until` are ranges of
 * the sort key. Three GSIs, each partitioned by account too (`<account_id>#<value>`), sort key `sk`:
 * - `by-target` (`target_key` = `<account_id>#<target.id>`): a key's (a member's, the account's) history;
 * - `by-actor` (`actor_key` = `<account_id>#<key_id | subject>`, sparse: only key and person actors);
 * - `by-action` (`action_key` = `<account_id>#<action>`).
 * Every filter is a Query of one partition of the account: another account's events are never read.
 * `ttl` (epoch seconds) = occurred_at + `auditRetentionDays`: DynamoDB TTL removes the event then.
 */
export const AUDIT_BY_TARGET_INDEX = 'by-target';
export const AUDIT_BY_ACTOR_INDEX = 'by-actor';
export const AUDIT_BY_ACTION_INDEX = 'by-action';

export { AUDIT_ACTIONS, isAuditAction, type AuditAction };

/** Who made a change: a key, a person, an operator (the admin CLI) or the system (housekeeping). */
export type AuditActor = Principal | { kind: 'system' };
export const OPERATOR_ACTOR: AuditActor = { kind: 'operator' };
export const SYSTEM_ACTOR: AuditActor = { kind: 'system' };

/** What changed: a key (`id` its key id), the account or its webhook secret (the account id), a member (their subject). */
export interface AuditTarget {
  readonly kind: 'key' | 'account' | 'webhook_secret' | 'member';
  readonly id: string;
}

/** The changed fields, each `{from, to}` (`null` for a field that did not exist before, or no longer does). */
export type AuditChanges = Record<string, { readonly from: unknown; readonly to: unknown }>;

/** Where an API request came from (all `null` for the admin CLI and housekeeping). */
export interface RequestMeta {
  readonly request_id: string | null;
  readonly source_ip: string | null;
  readonly user_agent: string | null;
}

export const NO_REQUEST: RequestMeta = { request_id: null, source_ip: null, user_agent: null };

/** The event of API.md §7, as the API returns it. */
export interface AuditEvent extends RequestMeta {
  readonly event_id: string;
  readonly account_id: string;
  readonly action: AuditAction;
  readonly occurred_at: string;
  readonly actor: AuditActor;
  readonly target: AuditTarget;
  readonly changes: AuditChanges | null;
}

/** A user agent is kept to this many characters (the item stays small whatever a client sends). */
const MAX_USER_AGENT = 512;
/** `evt_` and 20 base62 characters. */
export const EVENT_ID_PATTERN = /^evt_[0-9A-Za-z]{20}$/;

export function newAuditEvent(input: {
  readonly accountId: string;
  readonly action: AuditAction;
  readonly actor: AuditActor;
  readonly target: AuditTarget;
  readonly changes?: AuditChanges | null;
  readonly request?: RequestMeta;
  readonly now: Date;
}): AuditEvent {
  const request = input.request ?? NO_REQUEST;
  return {
    event_id: `evt_${randomBase62(20)}`,
    account_id: input.accountId,
    action: input.action,
    occurred_at: input.now.toISOString(),
    actor: input.actor,
    target: input.target,
    changes: input.changes ?? null,
    request_id: request.request_id,
    source_ip: request.source_ip,
    user_agent: request.user_agent === null ? null : request.user_agent.slice(0, MAX_USER_AGENT),
  };
}

/**
 * Events of one change recorded at one time, their ids given out again in ascending order, so that every
 * list (which sorts by `occurred_at`, then by id) shows them in the order given: oldest first the first,
 * newest first the last. (Ids are random; base62's `0-9A-Za-z` sorts as DynamoDB compares bytes.)
 */
export function inOrder(...events: readonly AuditEvent[]): AuditEvent[] {
  const ids = events.map((e) => e.event_id).sort();
  return events.map((e, i) => ({ ...e, event_id: ids[i]! }));
}

/** The `member.added` event of a person given `role` in an account by the operator (admin CLI, local runner's seed). */
export function memberAddedEvent(accountId: string, subject: string, email: string | null, role: string, now: Date): AuditEvent {
  return newAuditEvent({
    accountId,
    action: 'member.added',
    actor: OPERATOR_ACTOR,
    target: { kind: 'member', id: subject },
    // A person added by subject alone has no email: nothing changed there.
    changes: { ...(email !== null ? { email: { from: null, to: email } } : {}), role: { from: null, to: role } },
    now,
  });
}

/** The id an actor is found by (`actor_id`): a key id or a person's subject; none for operator and system. */
export function actorId(actor: AuditActor): string | undefined {
  return actor.kind === 'key' ? actor.key_id : actor.kind === 'person' ? actor.subject : undefined;
}

export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

export interface AuditFilters {
  readonly action?: AuditAction;
  readonly targetId?: string;
  readonly actorId?: string;
  /** Inclusive. */
  readonly since?: Date;
  /** Exclusive. */
  readonly until?: Date;
}

export interface AuditPage {
  readonly items: AuditEvent[];
  readonly nextToken: string | null;
}

const sortKey = (event: Pick<AuditEvent, 'occurred_at' | 'event_id'>) => `${event.occurred_at}#${event.event_id}`;
const SORT_KEY_PATTERN = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#evt_[0-9A-Za-z]{20}$/;

const INTERNAL = ['sk', 'ttl', 'target_key', 'actor_key', 'action_key'] as const;

function strip(item: Record<string, unknown>): AuditEvent {
  const event = { ...item };
  for (const name of INTERNAL) delete event[name];
  return event as unknown as AuditEvent;
}

export class AuditRepository {
  /** `retentionDays`: how long an event is kept before TTL removes it (`auditRetentionDays`). */
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly retentionDays: number,
  ) {}

  /**
   * The Put of one event, to go INSIDE the transaction of the change it records (never on its own).
   * Create-only: an event is written once. A transaction the SDK resends after a lost answer carries
   * the same ClientRequestToken and the same item, so DynamoDB applies it once; an event is never
   * written twice.
   */
  putItem(event: AuditEvent): TransactItem {
    const actor = actorId(event.actor);
    return {
      Put: {
        TableName: this.table,
        Item: {
          ...event,
          sk: sortKey(event),
          ttl: Math.floor(Date.parse(event.occurred_at) / 1000) + this.retentionDays * 86_400,
          target_key: `${event.account_id}#${event.target.id}`,
          action_key: `${event.account_id}#${event.action}`,
          ...(actor !== undefined ? { actor_key: `${event.account_id}#${actor}` } : {}),
        },
        ConditionExpression: 'attribute_not_exists(sk)',
      },
    };
  }

  /**
   * A page of the account's events, newest first, with exactly `limit` items unless nothing follows
   * (`nextToken` is null then: it is only given when one more matching event was read).
   *
   * Which partition is read: `target_id` → `by-target`, else `actor_id` → `by-actor`, else `action` →
   * `by-action`, else the account's own; `since`/`until` narrow the sort key. One filter (with or without a
   * time range) is read without any FilterExpression: exactly `limit + 1` items. Page size / filter
   * trade-off: a combination (target with actor or action, actor with action) reads the narrowest
   * partition (one key's or one member's history, one actor's changes) and filters the rest, so a page
   * stays full (never an empty last page) at the cost of reading the items between matches, up to the
   * list pages' read bounds (`queryPage`: 1,000 items, 256 read units): past them the page is short, even
   * empty, with a token (a key that made keys all year, asked for the members it added, would otherwise
   * read its whole history for one page).
   * The token names the page's last event and the filters it was read with; it is valid for that account
   * and those filters only, and the event must still exist (anything else is 400).
   */
  async list(accountId: string, filters: AuditFilters, limit: number, nextToken?: string): Promise<AuditPage> {
    const plan = queryPlan(accountId, filters);
    const fingerprint = filtersFingerprint(filters);
    const start = nextToken ? await this.startAfter(accountId, plan, fingerprint, nextToken) : undefined;
    const names: Record<string, string> = { '#p': plan.partitionAttribute, ...plan.filterNames };
    const values: Record<string, unknown> = { ':p': plan.partition, ...plan.filterValues };
    let range = '';
    if (filters.since && filters.until) {
      // `<until>` sorts before every `<until>#evt_…`: BETWEEN is since ≤ occurred_at < until.
      range = ' AND sk BETWEEN :since AND :until';
    } else if (filters.since) range = ' AND sk >= :since';
    else if (filters.until) range = ' AND sk < :until';
    if (filters.since) values[':since'] = filters.since.toISOString();
    if (filters.until) values[':until'] = filters.until.toISOString();

    const page = await queryPage(
      this.doc,
      {
        TableName: this.table,
        ...(plan.index ? { IndexName: plan.index } : {}),
        KeyConditionExpression: `#p = :p${range}`,
        ...(plan.filter ? { FilterExpression: plan.filter } : {}),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ScanIndexForward: false,
      },
      limit,
      start,
    );
    // A page cut short by the read bounds resumes where the reading stopped: its token names the last event
    // read (one that did not match), which startAfter finds as it finds any.
    const last = page.resumeAfter ?? page.items.at(-1);
    return {
      items: page.items.map(strip),
      nextToken: page.more && last ? await encodePageToken('audit-events', accountId, { s: String(last['sk']), f: fingerprint }) : null,
    };
  }

  /** The position just after the event a token names: 400 unless it is this account's, for these filters, and still there. */
  private async startAfter(accountId: string, plan: QueryPlan, fingerprint: string, token: string): Promise<Record<string, unknown>> {
    const { s, f } = await decodePageToken('audit-events', token, accountId, { s: SORT_KEY_PATTERN, f: /^[0-9A-Za-z_-]{16}$/ });
    const invalid = () => ValidationError.field('next_token', 'is not a valid page token for these filters (or its event is gone): list again from the start');
    if (f !== fingerprint) throw invalid();
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { account_id: accountId, sk: s }, ConsistentRead: true }),
    );
    const item = out.Item;
    if (!item || item[plan.partitionAttribute] !== plan.partition) throw invalid();
    return { account_id: accountId, sk: s, ...(plan.index ? { [plan.partitionAttribute]: plan.partition } : {}) };
  }
}

interface QueryPlan {
  readonly index?: string;
  readonly partitionAttribute: string;
  readonly partition: string;
  readonly filter?: string;
  readonly filterNames: Record<string, string>;
  readonly filterValues: Record<string, unknown>;
}

function queryPlan(accountId: string, filters: AuditFilters): QueryPlan {
  const conditions: string[] = [];
  const filterNames: Record<string, string> = {};
  const filterValues: Record<string, unknown> = {};
  const also = (attribute: string, value: string) => {
    conditions.push(`#f_${attribute} = :f_${attribute}`);
    filterNames[`#f_${attribute}`] = attribute;
    filterValues[`:f_${attribute}`] = `${accountId}#${value}`;
  };
  let base: Pick<QueryPlan, 'index' | 'partitionAttribute' | 'partition'>;
  if (filters.targetId !== undefined) {
    base = { index: AUDIT_BY_TARGET_INDEX, partitionAttribute: 'target_key', partition: `${accountId}#${filters.targetId}` };
    if (filters.actorId !== undefined) also('actor_key', filters.actorId);
    if (filters.action !== undefined) also('action_key', filters.action);
  } else if (filters.actorId !== undefined) {
    base = { index: AUDIT_BY_ACTOR_INDEX, partitionAttribute: 'actor_key', partition: `${accountId}#${filters.actorId}` };
    if (filters.action !== undefined) also('action_key', filters.action);
  } else if (filters.action !== undefined) {
    base = { index: AUDIT_BY_ACTION_INDEX, partitionAttribute: 'action_key', partition: `${accountId}#${filters.action}` };
  } else {
    base = { partitionAttribute: 'account_id', partition: accountId };
  }
  return { ...base, ...(conditions.length > 0 ? { filter: conditions.join(' AND ') } : {}), filterNames, filterValues };
}

/** A short digest of the filters a page was read with: its token is valid with the same filters only. */
function filtersFingerprint(filters: AuditFilters): string {
  const canonical = JSON.stringify([
    filters.action ?? null,
    filters.targetId ?? null,
    filters.actorId ?? null,
    filters.since?.toISOString() ?? null,
    filters.until?.toISOString() ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}
