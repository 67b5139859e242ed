/**
 * The account's active keys: one row each, with its "Actions for <key name>" menu. A key replaced by a
 * rotation and still in its grace period shares its name with its replacement: its row says "Replaced",
 * names the replacement's prefix and when it stops, its button is "Actions for <key name> (replaced)",
 * and its menu has no Edit, Disable or Rotate (the API refuses them: the replacement is the key to change).
 */
import type { ReactNode } from 'react';
import { KeepsFocus } from '../../components/KeepsFocus';
import { MenuButton, type MenuItem } from '../../components/MenuButton';
import type { Key } from './api';
import { formatDate, formatDateTime } from './format';
import { badgesOf } from './permissions';

/**
 * The dialogs of a key's menu, and its history (the Audit log page, filtered to the key). `toggle` is
 * "Disable" for an enabled key, "Enable" for a disabled one.
 */
export type KeyAction = 'edit' | 'toggle' | 'rotate' | 'usage' | 'history' | 'delete';

/** What a replaced key (in its rotation's grace) still offers. */
const REPLACED_KEY_ACTIONS: ReadonlySet<KeyAction> = new Set(['usage', 'history', 'delete']);

/**
 * A badge's text with a line-break opportunity after each colon (`<wbr>`: nothing in the text or the
 * accessible name), so a capability such as `workflow:nightly-report:run` wraps there rather than widen
 * the table past its page.
 */
function breakable(text: string): ReactNode {
  const parts: ReactNode[] = [];
  let start = 0;
  for (let i = 0; i < text.length - 1; i++) {
    if (text[i] !== ':') continue;
    parts.push(text.slice(start, i + 1), <wbr key={i} />);
    start = i + 1;
  }
  parts.push(text.slice(start));
  return parts;
}

function Time({ iso, withTime = false }: { readonly iso: string; readonly withTime?: boolean }) {
  return <time dateTime={iso}>{withTime ? formatDateTime(iso) : formatDate(iso)}</time>;
}

function expires(key: Key, now: number): ReactNode {
  if (!key.expires_at) return 'Never';
  if (Date.parse(key.expires_at) <= now) return <span className="badge badge-warning">Expired</span>;
  return <Time iso={key.expires_at} />;
}

function createdBy(key: Key, names: ReadonlyMap<string, string>): ReactNode {
  const by = key.created_by;
  if (!by) return <span className="muted">Unknown</span>;
  switch (by.kind) {
    case 'person':
      // A person added by subject alone (a deployer's own identity provider) has no email.
      return by.email ?? (
        <>
          Person <span className="mono">{by.subject}</span>
        </>
      );
    case 'key':
      return (
        <>
          Key <span className="mono">{names.get(by.key_id) ?? by.key_id}</span>
        </>
      );
    case 'operator':
      return 'Operator (admin CLI)';
  }
}

export interface KeysTableProps {
  readonly keys: readonly Key[];
  /** The actions this person may take (a viewer: Usage only). */
  readonly actions: readonly KeyAction[];
  readonly onAction: (action: KeyAction, key: Key) => void;
}

const LABELS: Record<Exclude<KeyAction, 'toggle'>, string> = { edit: 'Edit', rotate: 'Rotate', usage: 'Usage', history: 'History', delete: 'Delete' };
const labelOf = (action: KeyAction, key: Key) => (action === 'toggle' ? (key.enabled ? 'Disable' : 'Enable') : LABELS[action]);

export function KeysTable({ keys, actions, onAction }: KeysTableProps) {
  const now = Date.now();
  const names = new Map(keys.map((k) => [k.key_id, k.name]));
  const prefixes = new Map(keys.map((k) => [k.key_id, k.prefix]));
  return (
    <table className="data-table keys-table">
      <caption className="visually-hidden">API keys of this account</caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Prefix</th>
          <th scope="col">Permissions</th>
          <th scope="col">Workspaces</th>
          <th scope="col">Environment</th>
          <th scope="col">Created</th>
          <th scope="col">Expires</th>
          <th scope="col">Last used</th>
          <th scope="col">Created by</th>
          <th scope="col">
            <span className="visually-hidden">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {keys.map((key) => {
          const replaced = key.rotated_to != null;
          const items: MenuItem[] = actions
            .filter((action) => !replaced || REPLACED_KEY_ACTIONS.has(action))
            .map((action) => ({ label: labelOf(action, key), onSelect: () => onAction(action, key) }));
          const replacement = key.rotated_to ? prefixes.get(key.rotated_to) : undefined;
          return (
            <tr key={key.key_id}>
              <th scope="row" data-label="Name" className="row-name">
                {key.name}
                {!key.enabled && (
                  <>
                    {' '}
                    <span className="badge badge-warning">Disabled</span>
                  </>
                )}
                {replaced && (
                  <>
                    {' '}
                    <span className="badge badge-warning">Replaced</span>
                    <span className="block small muted">
                      {replacement ? (
                        <>
                          by <span className="mono">{replacement}…</span>
                        </>
                      ) : (
                        'by a new key'
                      )}
                      {key.expires_at && (
                        <>
                          ; works until <Time iso={key.expires_at} withTime />
                        </>
                      )}
                    </span>
                  </>
                )}
              </th>
              <td data-label="Prefix" className="mono prefix">
                {key.prefix}…
              </td>
              <td data-label="Permissions">
                <ul className="badges">
                  {badgesOf(key.capabilities).map((badge) => (
                    <li key={badge} className="badge">
                      {breakable(badge)}
                    </li>
                  ))}
                </ul>
              </td>
              <td data-label="Workspaces">{key.workspaces.includes('*') ? 'All' : key.workspaces.join(', ')}</td>
              <td data-label="Environment">
                <span className={key.environment === 'live' ? 'badge badge-live' : 'badge badge-test'}>{key.environment}</span>
              </td>
              <td data-label="Created">
                <Time iso={key.created_at} />
              </td>
              <td data-label="Expires">{expires(key, now)}</td>
              <td data-label="Last used">{key.last_used ? <Time iso={key.last_used} withTime /> : <span className="muted">Never</span>}</td>
              <td data-label="Created by" className="names">{createdBy(key, names)}</td>
              <td className="actions-cell">
                {/* A rotation or a deletion removes the row at the list's reload, perhaps with its button focused. */}
                <KeepsFocus>
                  <MenuButton items={items}>
                    Actions<span className="visually-hidden"> for {replaced ? `${key.name} (replaced)` : key.name}</span>
                  </MenuButton>
                </KeepsFocus>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
