/**
 * Who is signed in and for which account (GET /me, what the console asks first): the tier, its
 * ceiling, the person's role and capabilities in force, the key count, and the person's accounts for
 * the account switcher. The chosen account goes on every call as `Knouds-Account`.
 */
import { createContext, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { api, onAccessChanged, type Schemas } from '../api/client';
import { ApiProblem, call, messageOf } from '../api/errors';
import { accountChoice, chooseAccount, forgetAccountChoice } from './account-choice';

export type Me = Schemas['Me'];

export interface Account {
  readonly me: Me;
  readonly accountId: string;
  readonly tier: Me['account']['tier'];
  /** The capabilities the tier allows. */
  readonly ceiling: readonly string[];
  /** The signed-in person's capabilities in force in this account. */
  readonly capabilities: readonly string[];
  readonly role: 'admin' | 'viewer' | null;
  readonly email: string | null;
  /** The person's `sub`, by which one without an email is named; null for a key. */
  readonly subject: string | null;
  readonly activeKeys: number;
  readonly maxKeys: number;
  /** Refreshes GET /me (the key count after a change); keeps showing the old values meanwhile. */
  readonly refresh: () => void;
  /**
   * Acts for another of the person's accounts once its details have arrived: until then, and if they
   * cannot be had, every call stays with the account shown.
   */
  readonly switchTo: (accountId: string) => void;
  /** Why the last switch failed (the account shown is still the one acted for), or null. */
  readonly switchProblem: { readonly message: string } | null;
  /** Puts the failed switch's problem away: the person has moved on (another choice, another page). */
  readonly dismissSwitchProblem: () => void;
  /** The account a switch is waiting for (its GET /me), or null. */
  readonly switchingTo: string | null;
}

type State =
  | { readonly status: 'loading' }
  | { readonly status: 'ready'; readonly me: Me }
  | { readonly status: 'failed'; readonly message: string };

const AccountContext = createContext<Account | null>(null);

/** GET /me for the account chosen (the header), or for `switchingTo` alone, not yet chosen. */
async function loadMe(switchingTo?: string): Promise<Me> {
  try {
    return await call(switchingTo ? api().GET('/me', { headers: { 'Knouds-Account': switchingTo } }) : api().GET('/me'));
  } catch (error) {
    if (switchingTo) throw error;
    // An account chosen earlier that the person left since: ask again for their first account.
    if (error instanceof ApiProblem && error.code === 'NOT_A_MEMBER' && accountChoice()) {
      forgetAccountChoice();
      return loadMe();
    }
    if (error instanceof ApiProblem && error.code === 'NOT_A_MEMBER') {
      throw new ApiProblem('You are signed in, but you are not a member of any Knouds account. Ask an admin of your account to add you, then try again.', error.status, error.code);
    }
    throw error;
  }
}

export function AccountProvider({ children, loading }: { readonly children: ReactNode; readonly loading: (state: { failed?: string; retry: () => void }) => ReactNode }) {
  const [state, setState] = useState<State>({ status: 'loading' });
  const [version, setVersion] = useState(0);
  // The account a switch asked for, until GET /me has answered for it: only then is it chosen (the header
  // of every call), so that a page still showing the old account never acts on the new one.
  const switching = useRef<string | undefined>(undefined);
  const [switchProblem, setSwitchProblem] = useState<{ message: string } | null>(null);
  const [switchingTo, setSwitchingTo] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    const target = switching.current;
    loadMe(target).then(
      (me) => {
        if (!current) return;
        if (target) {
          switching.current = undefined;
          setSwitchingTo(null);
        }
        // Every later call names the account, as a person of several accounts must.
        if (me.kind === 'person' && accountChoice() !== me.account.account_id) chooseAccount(me.account.account_id);
        setSwitchProblem(null);
        setState({ status: 'ready', me });
      },
      (error: unknown) => {
        if (!current) return;
        if (target) {
          // The switch did not happen: the account shown stays the one acted for, and the bar says why.
          switching.current = undefined;
          setSwitchingTo(null);
          setSwitchProblem({ message: `Could not switch to ${target}: ${messageOf(error)}` });
        }
        // A refresh that fails keeps what is shown; the page that asked says what went wrong itself.
        setState((old) => (old.status === 'ready' ? old : { status: 'failed', message: messageOf(error) }));
      },
    );
    return () => {
      current = false;
    };
  }, [version]);

  const refresh = useCallback(() => setVersion((v) => v + 1), []);
  // A refusal that says the person's role or the tier changed: read /me again, so that the pages offer
  // what the person may do now (a demoted admin's pages turn read-only), beside the refusal's own words.
  useEffect(() => onAccessChanged(refresh), [refresh]);
  const dismissSwitchProblem = useCallback(() => setSwitchProblem(null), []);
  // The header (and its switcher, which has focus) stays; the page is shown anew for the new account.
  const switchTo = useCallback((accountId: string) => {
    switching.current = accountId;
    setSwitchingTo(accountId);
    setVersion((v) => v + 1);
  }, []);

  if (state.status !== 'ready') {
    return loading({
      ...(state.status === 'failed' ? { failed: state.message } : {}),
      retry: () => {
        setState({ status: 'loading' });
        refresh();
      },
    });
  }
  const { me } = state;
  const account: Account = {
    me,
    accountId: me.account.account_id,
    tier: me.account.tier,
    ceiling: me.account.ceiling,
    capabilities: me.capabilities,
    role: me.person?.role ?? null,
    email: me.person?.email ?? null,
    subject: me.person?.subject ?? null,
    activeKeys: me.account.active_keys,
    maxKeys: me.account.max_active_keys,
    refresh,
    switchTo,
    switchProblem,
    dismissSwitchProblem,
    switchingTo,
  };
  return <AccountContext.Provider value={account}>{children}</AccountContext.Provider>;
}

export function useAccount(): Account {
  const account = useContext(AccountContext);
  if (!account) throw new Error('useAccount() outside <AccountProvider>');
  return account;
}

const TIER_NAMES: Record<Me['account']['tier'], string> = { free: 'Free', pro: 'Pro', business: 'Business', enterprise: 'Enterprise' };

export function tierName(tier: Me['account']['tier']): string {
  return TIER_NAMES[tier];
}
