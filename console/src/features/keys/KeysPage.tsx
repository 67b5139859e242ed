/**
 * API Keys (the first page after sign-in): the tier and "N of 10 keys", "Create key", the table of the
 * account's active keys and each key's actions. A free account learns that keys need the Pro tier or
 * higher; a viewer sees everything read-only (Usage and History still work).
 */
import { useCallback, useEffect, useId, useState } from 'react';
import { useLocation } from 'wouter';
import { markNavigation, Page } from '../../components/Page';
import { historyHref } from '../audit/api';
import { ErrorMessage, Notice, StatusMessage } from '../../components/Messages';
import { KeepsFocus } from '../../components/KeepsFocus';
import { messageOf } from '../../api/errors';
import { tierName, useAccount } from '../../lib/account';
import { listKeys, type Key } from './api';
import { CreateKeyDialog } from './CreateKeyDialog';
import { DeleteKeyDialog } from './DeleteKeyDialog';
import { EditKeyDialog } from './EditKeyDialog';
import { EnableKeyDialog } from './EnableKeyDialog';
import { KeysTable, type KeyAction } from './KeysTable';
import { RotateKeyDialog } from './RotateKeyDialog';
import { UsageDialog } from './UsageDialog';
import { useChoices } from './useChoices';

type Open = { readonly kind: 'create' } | { readonly kind: Exclude<KeyAction, 'history'>; readonly key: Key } | null;

type List = { readonly status: 'loading' } | { readonly status: 'ready'; readonly keys: readonly Key[] } | { readonly status: 'failed'; readonly message: string };

export function KeysPage() {
  const account = useAccount();
  const noticeId = useId();
  const [list, setList] = useState<List>({ status: 'loading' });
  const [version, setVersion] = useState(0);
  const [open, setOpen] = useState<Open>(null);
  const [result, setResult] = useState<string | null>(null);

  const free = account.tier === 'free';
  const canRead = account.capabilities.includes('keys:read');
  const canWrite = account.capabilities.includes('keys:write');
  const { refresh } = account;
  const { choices, reload: reloadChoices } = useChoices(canWrite && !free, account.capabilities.includes('workflow:read'));

  useEffect(() => {
    if (!canRead) return undefined;
    let current = true;
    listKeys().then(
      (keys) => current && setList({ status: 'ready', keys }),
      (error: unknown) => current && setList({ status: 'failed', message: messageOf(error) }),
    );
    return () => {
      current = false;
    };
  }, [version, canRead]);

  /** After every change: the list and "N of 10 keys" again. */
  const changed = useCallback(
    (message: string) => {
      setResult(message);
      setVersion((v) => v + 1);
      refresh();
    },
    [refresh],
  );

  const reload = useCallback(() => {
    setVersion((v) => v + 1);
    refresh();
  }, [refresh]);

  const canAudit = account.capabilities.includes('audit:read');
  const actions: KeyAction[] = [...(canWrite ? (['edit', 'toggle', 'rotate', 'usage'] as const) : (['usage'] as const)), ...(canAudit ? (['history'] as const) : []), ...(canWrite ? (['delete'] as const) : [])];
  const [, navigate] = useLocation();
  const close = () => setOpen(null);
  const openDialog = (next: NonNullable<Open>) => {
    if (next.kind === 'create' || next.kind === 'edit') reloadChoices();
    setOpen(next);
  };

  let why: string | null = null;
  // A tier is changed by whoever manages the account's Knouds subscription (the operator), not by its admins.
  if (free)
    why = `API keys need the Pro tier or higher. This account is on the Free tier, so it cannot hold a usable key. To create keys, have the account upgraded to Pro or higher: ${
      account.role === 'admin' ? 'ask whoever manages your Knouds subscription' : 'ask an admin of the account, or whoever manages your Knouds subscription'
    }.`;
  else if (!canWrite)
    why = account.role === 'viewer' ? 'You can look at the keys but not change them: your role in this account is viewer. Ask an admin of the account to change your role.' : 'You cannot change keys in this account.';

  return (
    <Page title="API Keys">
      <div className="page-bar">
        <p className="summary">
          <span>
            Tier: <strong>{tierName(account.tier)}</strong>
          </span>
          <span>
            <strong>
              {account.activeKeys} of {account.maxKeys} keys
            </strong>
          </span>
        </p>
        {!free && canWrite ? (
          <button type="button" className="button button-primary" onClick={() => openDialog({ kind: 'create' })}>
            Create key
          </button>
        ) : free && account.role === 'admin' ? (
          <button type="button" className="button button-primary" disabled aria-describedby={noticeId}>
            Create key
          </button>
        ) : null}
      </div>
      {why && <Notice id={noticeId}>{why}</Notice>}
      <StatusMessage>{result}</StatusMessage>
      {!canRead ? null : list.status === 'loading' ? (
        <StatusMessage>Loading your API keys…</StatusMessage>
      ) : list.status === 'failed' ? (
        <ErrorMessage>
          {list.message}{' '}
          <KeepsFocus>
            <button type="button" className="button button-small" onClick={() => setVersion((v) => v + 1)}>
              Try again
            </button>
          </KeepsFocus>
        </ErrorMessage>
      ) : list.keys.length === 0 ? (
        <div className="empty">
          <p>
            <strong>No API keys yet.</strong>
          </p>
          <p>
            {!free && canWrite
              ? 'Create one with “Create key”, copy it when it is shown (only once), and send it in the x-api-key header of your requests.'
              : 'When an admin of the account creates one, it is listed here.'}
          </p>
        </div>
      ) : (
        <KeysTable
          keys={list.keys}
          actions={actions}
          onAction={(kind, key) => {
            if (kind !== 'history') return openDialog({ kind, key });
            markNavigation();
            navigate(historyHref(key.key_id));
          }}
        />
      )}
      {open?.kind === 'create' && <CreateKeyDialog onClose={close} onCreated={() => changed('The key was created.')} choices={choices} />}
      {open?.kind === 'edit' && <EditKeyDialog apiKey={open.key} choices={choices} onClose={close} onSaved={(name) => changed(`The key “${name}” was saved.`)} onStale={reload} />}
      {open?.kind === 'toggle' && (
        <EnableKeyDialog
          apiKey={open.key}
          enable={!open.key.enabled}
          onClose={close}
          onDone={() => changed(`The key “${open.key.name}” was ${open.key.enabled ? 'disabled: requests with it are refused' : 'enabled'}.`)}
          onStale={reload}
        />
      )}
      {open?.kind === 'rotate' && <RotateKeyDialog apiKey={open.key} onClose={close} onRotated={() => changed(`The key “${open.key.name}” was rotated.`)} onStale={reload} />}
      {open?.kind === 'usage' && <UsageDialog apiKey={open.key} onClose={close} onStale={reload} />}
      {open?.kind === 'delete' && (
        <DeleteKeyDialog
          apiKey={open.key}
          onClose={close}
          onDeleted={() => {
            // Gone from the table at once; the refresh follows.
            const gone = open.key.key_id;
            setList((l) => (l.status === 'ready' ? { ...l, keys: l.keys.filter((k) => k.key_id !== gone) } : l));
            changed(`The key “${open.key.name}” was deleted.`);
          }}
          onStale={reload}
        />
      )}
    </Page>
  );
}
