/**
 * Audit log (API.md §7): the account's events newest first, a page at a time, filtered by action, by key
 * and by dates. The filters live in the URL (`/audit?action=key.created&target_id=key_…&from=2026-11-01&to=2026-11-30`),
 * so a key's history is a link: the API Keys page's "History" and each key named in the table lead there.
 * Dates are whole days in the reader's time zone, both included: `from` is sent as `since` (the day's
 * start), `to` as `until` (the next day's start, which the API excludes). Pages follow the API's
 * next_token; "Newer events" goes back through the tokens already seen.
 */
import { useEffect, useId, useState } from 'react';
import { Link, useSearchParams } from 'wouter';
import { ErrorMessage, Notice, StatusMessage } from '../../components/Messages';
import { KeepsFocus } from '../../components/KeepsFocus';
import { markNavigation, Page } from '../../components/Page';
import { messageOf } from '../../api/errors';
import { useAccount } from '../../lib/account';
import { startOfDay, startOfNextDay } from '../../lib/days';
import { listKeys, type Key } from '../keys/api';
import { historyHref, listAuditEvents, type AuditEvent, type AuditQuery } from './api';
import { ACTION_LABELS, actionLabel, actorText, emailsFromEvents, fieldLabel, formatWhen, isAuditAction, namesFromEvents, changeText, orderedChanges, setFromNothing } from './describe';

type Loaded =
  | { readonly status: 'loading' }
  | { readonly status: 'ready'; readonly items: readonly AuditEvent[]; readonly next: string | null }
  | { readonly status: 'failed'; readonly message: string };

/**
 * What the page knows of a key, its name (from the key list or the events) and prefix (active keys only),
 * and of a person, their email (from the events).
 */
interface Naming {
  name(id: string): string | undefined;
  prefix(id: string): string | undefined;
  email(subject: string): string | undefined;
}

/**
 * A key named in an event, linked to its history: by its name and prefix where known, else by its name and
 * id, else by its id. Both keys of a rotation have one name: what follows it tells their links apart.
 */
function KeyRef({ id, naming }: { readonly id: string; readonly naming: Naming }) {
  const name = naming.name(id);
  const prefix = naming.prefix(id);
  const href = historyHref(id);
  return (
    <Link href={href} onClick={() => markNavigation(href)}>
      {name ? `“${name}”` : <span className="mono">{id}</span>}
      {name && prefix && <> (<span className="mono">{prefix}…</span>)</>}
      {name && !prefix && <span className="mono muted block">{id}</span>}
      <span className="visually-hidden">: its history</span>
    </Link>
  );
}

function Target({ event, naming }: { readonly event: AuditEvent; readonly naming: Naming }) {
  const { kind, id } = event.target;
  if (kind === 'key') {
    return (
      <>
        Key <KeyRef id={id} naming={naming} />
      </>
    );
  }
  if (kind === 'member') {
    const email = naming.email(id);
    return email ? <>Member {email}<span className="mono muted block">{id}</span></> : <>Member <span className="mono">{id}</span></>;
  }
  if (kind === 'webhook_secret') return <>Webhook signing secret</>;
  return <>The account</>;
}

/** Fields whose value is another key's id: shown as that key, linked to its history. */
const KEY_ID_FIELDS = new Set(['rotated_to', 'rotated_from']);

function Changes({ changes, action, naming }: { readonly changes: AuditEvent['changes']; readonly action: AuditEvent['action']; readonly naming: Naming }) {
  if (!changes || Object.keys(changes).length === 0) return <span className="muted">No fields recorded</span>;
  const text = (field: string, value: unknown) =>
    KEY_ID_FIELDS.has(field) && typeof value === 'string' ? <KeyRef id={value} naming={naming} /> : changeText(field, value);
  return (
    <dl className="changes">
      {orderedChanges(changes).map(([field, { from, to }]) => (
        <div key={field}>
          <dt>{fieldLabel(field)}</dt>
          <dd>
            {setFromNothing(action, field, from) ? (
              text(field, to)
            ) : (
              <>
                {text(field, from)} <span aria-hidden="true">→</span>
                <span className="visually-hidden"> changed to </span> {text(field, to)}
              </>
            )}
          </dd>
        </div>
      ))}
    </dl>
  );
}

function Source({ event }: { readonly event: AuditEvent }) {
  if (!event.request_id && !event.source_ip && !event.user_agent) return <span className="muted">Not through the API</span>;
  return (
    <>
      {event.source_ip && <span className="mono block">{event.source_ip}</span>}
      {event.user_agent && <span className="block small">{event.user_agent}</span>}
      {event.request_id && (
        <span className="block small muted">
          Request <span className="mono">{event.request_id}</span>
        </span>
      )}
    </>
  );
}

/** A date the filter takes: a calendar day whose year has four digits. */
const isWholeDate = (text: string) => startOfDay(text) !== null && Number(text.slice(0, 4)) >= 1000;

/**
 * A date filter. What is typed stays in the field until it is a whole date: Chromium reports a year being
 * typed digit by digit ("0002", "0020", "0202", "2026"), and a date whose day or month is being typed again
 * as "" (with `validity.badInput`); each of those would otherwise be a filter, a request and a URL of its
 * own, and the field, set again, would lose the typing. A date is taken once it is whole, or when the field
 * is emptied; leaving the field with an unfinished date puts back the one in force. Dates replace each
 * other in the browser's history (a date typed or stepped with the arrow keys is many changes, one choice).
 */
function DateFilter(props: {
  readonly id: string;
  readonly label: string;
  /** The date in the URL ('' for none). */
  readonly value: string;
  readonly bound: { readonly min?: string; readonly max?: string };
  readonly describedBy: string;
  readonly invalid: boolean;
  readonly onCommit: (value: string) => void;
}) {
  const { id, label, value, bound, describedBy, invalid, onCommit } = props;
  const [draft, setDraft] = useState(value);
  const [shown, setShown] = useState(value);
  // The URL changed by other means (Clear filters, a link, Back): the field follows it.
  if (value !== shown) {
    setShown(value);
    setDraft(value);
  }
  const takes = (next: string, input: HTMLInputElement) => (next === '' ? !input.validity.badInput : isWholeDate(next));
  return (
    <div className="field field-date">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="date"
        className="input"
        value={draft}
        min={bound.min || undefined}
        max={bound.max || undefined}
        aria-describedby={describedBy}
        aria-invalid={invalid ? 'true' : undefined}
        onChange={(e) => {
          const next = e.target.value;
          setDraft(next);
          if (next !== value && takes(next, e.currentTarget)) onCommit(next);
        }}
        onBlur={(e) => {
          if (draft === value) return;
          if (takes(draft, e.currentTarget)) onCommit(draft);
          else setDraft(value);
        }}
      />
    </div>
  );
}

export function AuditPage() {
  const account = useAccount();
  const id = useId();
  const [params, setParams] = useSearchParams();
  const action = params.get('action');
  const targetId = params.get('target_id') ?? undefined;
  // A date in the URL that is no calendar day is left out, as an unknown action is.
  const fromDay = params.get('from') ?? '';
  const toDay = params.get('to') ?? '';
  const since = startOfDay(fromDay);
  const until = startOfNextDay(toDay);
  const from = since ? fromDay : '';
  const to = until ? toDay : '';
  // Both dates chosen, the first after the second: nothing is asked, and the page says why.
  const backwards = since !== null && until !== null && since.getTime() >= until.getTime();
  const query: AuditQuery = {
    ...(isAuditAction(action) ? { action } : {}),
    ...(targetId ? { target_id: targetId } : {}),
    ...(since ? { since: since.toISOString() } : {}),
    ...(until ? { until: until.toISOString() } : {}),
  };
  const filterKey = `${query.action ?? ''}|${query.target_id ?? ''}|${query.since ?? ''}|${query.until ?? ''}`;

  /**
   * The tokens of the pages before this one (the first page's is null) and this page's, for these
   * filters; `paged`: these filters have more than one page, so the pager stays (and keeps the focus)
   * while a page loads.
   */
  const [trail, setTrail] = useState<{ readonly filters: string; readonly tokens: readonly (string | null)[]; readonly paged: boolean }>({
    filters: filterKey,
    tokens: [null],
    paged: false,
  });
  const [loaded, setLoaded] = useState<Loaded>({ status: 'loading' });
  const [attempt, setAttempt] = useState(0);
  const [keys, setKeys] = useState<{ readonly status: 'loading' | 'ready' | 'failed'; readonly list: readonly Key[] }>({ status: 'loading', list: [] });

  const canRead = account.capabilities.includes('audit:read');
  const canListKeys = account.capabilities.includes('keys:read');
  // Other filters (chosen here, by a link, or by the browser's Back) start at their first page.
  const here = trail.filters === filterKey ? trail : { filters: filterKey, tokens: [null], paged: false };
  if (here !== trail) setTrail(here);
  const { tokens } = here;
  const token = tokens[tokens.length - 1] ?? null;

  useEffect(() => {
    if (!canRead || backwards) return undefined;
    let current = true;
    setLoaded({ status: 'loading' });
    listAuditEvents(query, token).then(
      (page) => {
        if (!current) return;
        setLoaded({ status: 'ready', items: page.items, next: page.next_token });
        if (page.next_token) setTrail((t) => (t.filters === filterKey ? { ...t, paged: true } : t));
      },
      (error: unknown) => current && setLoaded({ status: 'failed', message: messageOf(error) }),
    );
    return () => {
      current = false;
    };
    // `query` is what filterKey spells.
  }, [canRead, backwards, filterKey, token, attempt]);

  useEffect(() => {
    if (!canRead || !canListKeys) return undefined;
    let current = true;
    listKeys().then(
      (list) => current && setKeys({ status: 'ready', list }),
      // The filter then offers only the key in the URL; the events still show.
      () => current && setKeys({ status: 'failed', list: [] }),
    );
    return () => {
      current = false;
    };
  }, [canRead, canListKeys]);

  const eventNames = loaded.status === 'ready' ? namesFromEvents(loaded.items) : new Map<string, string>();
  const activeNames = new Map(keys.list.map((k) => [k.key_id, k.name]));
  const keyName = (keyId: string) => activeNames.get(keyId) ?? eventNames.get(keyId);
  const prefixes = new Map(keys.list.map((k) => [k.key_id, k.prefix]));
  const emails = loaded.status === 'ready' ? emailsFromEvents(loaded.items) : new Map<string, string>();
  const naming: Naming = { name: keyName, prefix: (keyId) => prefixes.get(keyId), email: (subject) => emails.get(subject) };

  const setFilter = (name: 'action' | 'target_id' | 'from' | 'to', value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    // A date replaces the URL it changes (see DateFilter); a choice from a list is a step of its own.
    setParams(next, name === 'from' || name === 'to' ? { replace: true } : undefined);
  };

  if (!canRead) {
    return (
      <Page title="Audit log">
        <Notice>
          {account.tier === 'free'
            ? 'The audit log needs the Pro tier or higher, and this account is on the Free tier. To see it, have the account upgraded: ask whoever manages your Knouds subscription.'
            : 'You cannot see the audit log of this account: it needs the audit:read permission. Ask an admin of the account.'}
        </Notice>
      </Page>
    );
  }

  const pageNumber = tokens.length;
  const filtered = query.action !== undefined || query.target_id !== undefined || since !== null || until !== null;
  // A target in the URL that is not an active key: a deleted key's history (once the keys are known), or
  // a member's or the account's events, which the API filters by the same id.
  const unlisted = query.target_id !== undefined && !activeNames.has(query.target_id) ? query.target_id : undefined;
  const unlistedLabel =
    unlisted === undefined
      ? ''
      : !unlisted.startsWith('key_')
        ? unlisted === account.accountId
          ? 'This account'
          : `Member ${unlisted}`
        : `${keyName(unlisted) ?? unlisted}${keys.status === 'ready' ? ' (deleted or expired)' : ''}`;
  const canOlder = !backwards && loaded.status === 'ready' && loaded.next !== null;
  const canNewer = !backwards && pageNumber > 1;
  const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const describedBy = `${id}-dates-hint${backwards ? ` ${id}-dates-error` : ''}`;

  return (
    <Page title="Audit log">
      <p>
        Every change to this account’s keys, members, tier and webhook secret, newest first: who made it, when, from where, and what changed. Keys, key hashes and
        secrets are never recorded.
      </p>
      <form className="filters" aria-label="Filter events" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor={`${id}-action`}>Action</label>
          <select id={`${id}-action`} className="input" value={query.action ?? ''} onChange={(e) => setFilter('action', e.target.value)}>
            <option value="">All actions</option>
            {Object.entries(ACTION_LABELS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-key`}>Key</label>
          <select id={`${id}-key`} className="input" value={query.target_id ?? ''} onChange={(e) => setFilter('target_id', e.target.value)}>
            <option value="">All events</option>
            {keys.list.map((k) => (
              <option key={k.key_id} value={k.key_id}>
                {k.name} ({k.prefix}…)
              </option>
            ))}
            {unlisted !== undefined && <option value={unlisted}>{unlistedLabel}</option>}
          </select>
        </div>
        <DateFilter id={`${id}-from`} label="From" value={from} bound={{ max: to }} describedBy={describedBy} invalid={backwards} onCommit={(v) => setFilter('from', v)} />
        <DateFilter id={`${id}-to`} label="To" value={to} bound={{ min: from }} describedBy={describedBy} invalid={backwards} onCommit={(v) => setFilter('to', v)} />
        {filtered && (
          <button
            type="button"
            className="button"
            onClick={() => {
              setParams(new URLSearchParams());
              // The button goes with the filters: the keyboard's focus goes to the first filter, not to the page's start.
              document.getElementById(`${id}-action`)?.focus();
            }}
          >
            Clear filters
          </button>
        )}
        <p id={`${id}-dates-hint`} className="hint filters-hint">
          Dates are whole days in your time zone ({timeZone}), both included.
        </p>
        {backwards && (
          <p id={`${id}-dates-error`} className="field-error filters-hint" role="alert">
            “From” is after “To”: choose a From date on or before the To date.
          </p>
        )}
      </form>
      {/* The events wait for the key list too, so that a key is named at once, not by its id and then renamed. */}
      {backwards ? null : loaded.status === 'loading' || (canListKeys && keys.status === 'loading') ? (
        <StatusMessage>Loading the audit log…</StatusMessage>
      ) : loaded.status === 'failed' ? (
        <ErrorMessage>
          {loaded.message}{' '}
          <KeepsFocus>
            <button type="button" className="button button-small" onClick={() => setAttempt((a) => a + 1)}>
              Try again
            </button>
          </KeepsFocus>
        </ErrorMessage>
      ) : loaded.items.length === 0 ? (
        <div className="empty">
          <p>
            <strong>{pageNumber > 1 ? 'No older events.' : filtered ? 'No events match these filters.' : 'No events yet.'}</strong>
          </p>
          <p>{filtered ? 'Choose “Clear filters” to see every event.' : 'Creating, editing, rotating or deleting a key is recorded here.'}</p>
        </div>
      ) : (
        <>
          <table className="data-table audit-table">
            <caption className="visually-hidden">Audit events of this account, newest first, page {pageNumber}</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">By</th>
                <th scope="col">Changes</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              {loaded.items.map((event) => (
                <tr key={event.event_id}>
                  <td data-label="When">
                    <time dateTime={event.occurred_at}>{formatWhen(event.occurred_at)}</time>
                  </td>
                  <th scope="row" data-label="Action" className="row-name">
                    {actionLabel(event.action)}
                  </th>
                  <td data-label="Target" className="names">
                    <Target event={event} naming={naming} />
                  </td>
                  <td data-label="By" className="names">{actorText(event.actor, keyName)}</td>
                  <td data-label="Changes">
                    <Changes changes={event.changes} action={event.action} naming={naming} />
                  </td>
                  <td data-label="Source">
                    <Source event={event} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {!backwards && (here.paged || canNewer || canOlder) && (
        // aria-disabled, not disabled: a button pressed stays focused when it can go no further.
        <nav className="pager" aria-label="Audit log pages">
          <button
            type="button"
            className="button"
            aria-disabled={!canNewer}
            onClick={() => canNewer && setTrail({ ...here, tokens: tokens.slice(0, -1) })}
          >
            Newer events
          </button>
          <span>Page {pageNumber}</span>
          <button
            type="button"
            className="button"
            aria-disabled={!canOlder}
            onClick={() => canOlder && setTrail({ ...here, tokens: [...tokens, loaded.next] })}
          >
            Older events
          </button>
        </nav>
      )}
    </Page>
  );
}
