/** Audit events in words: what happened, to what, by whom, and what changed. */
import { tierName } from '../../lib/account';
import { badgesOf, presetOf } from '../keys/permissions';
import type { AuditAction, AuditEvent } from './api';

/** Each action of API.md §7 as a person says it, in the contract's order (the filter's options). */
export const ACTION_LABELS: Readonly<Record<AuditAction, string>> = {
  'key.created': 'Key created',
  'key.updated': 'Key edited',
  'key.rotated': 'Key rotated',
  'key.revoked': 'Key deleted',
  'key.expired': 'Key expired',
  'webhook_secret.created': 'Webhook secret created',
  'webhook_secret.rotated': 'Webhook secret rotated',
  'account.created': 'Account created',
  'account.tier_changed': 'Tier changed',
  'member.added': 'Member added',
  'member.role_changed': 'Member’s role changed',
  'member.removed': 'Member removed',
};

export const isAuditAction = (value: string | null): value is AuditAction => value !== null && Object.hasOwn(ACTION_LABELS, value);

/** An event's action in words; one this console does not know (audit actions are an extensible enum), as it is. */
export const actionLabel = (action: string): string => (isAuditAction(action) ? ACTION_LABELS[action] : action);

/** Who did it. `keyName` names a key by its id when the page knows the name. */
export function actorText(actor: AuditEvent['actor'], keyName: (id: string) => string | undefined): string {
  switch (actor.kind) {
    case 'person':
      return actor.email ?? `Person ${actor.subject ?? ''}`.trim();
    case 'key': {
      const name = actor.key_id ? keyName(actor.key_id) : undefined;
      return name ? `Key “${name}”` : `Key ${actor.key_id ?? ''}`.trim();
    }
    case 'operator':
      return 'Operator (admin CLI)';
    case 'system':
      // Housekeeping, or a run's webhook making the account's first secret.
      return 'System (automatic)';
  }
}

/** Each field as a person says it, in the order an event's changes are shown (unknown fields last). */
const FIELD_LABELS: Readonly<Record<string, string>> = {
  rotated_from: 'Replaces',
  rotated_to: 'Replaced by',
  name: 'Name',
  capabilities: 'Permissions',
  workspaces: 'Workspaces',
  environment: 'Environment',
  expires_at: 'Expires',
  revoked_at: 'Stopped working',
  released_at: 'No longer counted toward the key limit',
  tier: 'Tier',
  email: 'Email',
  role: 'Role',
  previous_secret_expires_at: 'Old secret signs until',
  metadata: 'Metadata',
  enabled: 'State',
};
const FIELD_ORDER = Object.keys(FIELD_LABELS);

/** An event's changed fields in a steady order (the API's `changes` is a map: its order means nothing). */
export function orderedChanges<T>(changes: Readonly<Record<string, T>>): [string, T][] {
  const rank = (field: string) => {
    const i = FIELD_ORDER.indexOf(field);
    return i < 0 ? FIELD_ORDER.length : i;
  };
  return Object.entries(changes).sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

export const fieldLabel = (field: string) => FIELD_LABELS[field] ?? field;

/**
 * Whether a change is shown as its new value alone: a field set where there was none (every field of a
 * creation, `from` null). No expiry before a change is a value of its own ("Never → …"), not an absence.
 */
export const setFromNothing = (action: string, field: string, from: unknown) =>
  from === undefined || (from === null && (field !== 'expires_at' || action === 'key.created'));

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A changed field's value as text: "none" for null, lists joined, times in the reader's zone. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return 'none';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map((v) => (v === '*' ? 'all' : valueText(v))).join(', ');
  if (typeof value === 'string') return ISO_TIME.test(value) ? DATE_TIME.format(new Date(value)) : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

const TIERS = new Set(['free', 'pro', 'business', 'enterprise']);

/**
 * A changed field's value as a person reads it: a key's state as "Enabled"/"Disabled", metadata as
 * "key: value" pairs, no expiry as "Never", a tier by its name, permissions as the keys page names them;
 * anything else as `valueText`.
 */
export function changeText(field: string, value: unknown): string {
  switch (field) {
    case 'enabled':
      if (typeof value === 'boolean') return value ? 'Enabled' : 'Disabled';
      break;
    case 'metadata':
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const entries = Object.entries(value);
        return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ');
      }
      break;
    case 'expires_at':
      if (value === null) return 'Never';
      break;
    case 'capabilities':
      // As the keys page names them: a preset's name (with what it holds), a legacy scope's, or each capability.
      if (Array.isArray(value) && value.length > 0 && value.every((c) => typeof c === 'string')) {
        const preset = presetOf(value);
        return preset ? `${preset.label} (${[...value].sort().join(', ')})` : badgesOf(value).join(', ');
      }
      break;
    case 'tier':
      if (typeof value === 'string' && TIERS.has(value)) return tierName(value as Parameters<typeof tierName>[0]);
      break;
  }
  return valueText(value);
}

export const formatWhen = (iso: string) => DATE_TIME.format(new Date(iso));

/**
 * The name each key had, from the events on the page: created with it or renamed to it; a rotation's
 * replacement and the key it replaced share a name.
 */
export function namesFromEvents(events: readonly AuditEvent[]): Map<string, string> {
  const names = new Map<string, string>();
  // Oldest first, so the latest name wins.
  for (const event of [...events].reverse()) {
    if (event.target.kind !== 'key') continue;
    const to = event.changes?.['name']?.to;
    if (typeof to === 'string') names.set(event.target.id, to);
    const replacement = event.changes?.['rotated_to']?.to;
    const name = names.get(event.target.id);
    if (typeof replacement === 'string' && name !== undefined) names.set(replacement, name);
    // A replacement's creation names the key it replaced, which had the same name.
    const replaced = event.changes?.['rotated_from']?.to;
    if (typeof replaced === 'string' && name !== undefined && !names.has(replaced)) names.set(replaced, name);
  }
  return names;
}

/**
 * Each person's email, from the events on the page: those a member event records, and those of the
 * people who made changes (a `member.role_changed` event records only the role).
 */
export function emailsFromEvents(events: readonly AuditEvent[]): Map<string, string> {
  const emails = new Map<string, string>();
  for (const event of events) {
    if (event.actor.kind === 'person' && event.actor.subject && event.actor.email) emails.set(event.actor.subject, event.actor.email);
    if (event.target.kind !== 'member') continue;
    const email = event.changes?.['email'];
    const value = email?.to ?? email?.from;
    if (typeof value === 'string') emails.set(event.target.id, value);
  }
  return emails;
}
