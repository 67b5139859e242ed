/**
 * The header's account area: the signed-in person (email and role), the account switcher for a person
 * of several accounts (a labelled select and a "Switch" button: choosing with the arrow keys changes
 * nothing until the button is pressed, so a keyboard user can look through the accounts without the page
 * changing under them; the switch then sets `Knouds-Account` on every call and is announced), and "Sign out".
 */
import { useEffect, useId, useRef, useState } from 'react';
import { useLocation } from 'wouter';
import { signOut } from '../../lib/auth';
import { tierName, useAccount } from '../../lib/account';
import { ErrorMessage } from '../../components/Messages';

export function AccountBar() {
  const account = useAccount();
  const selectId = useId();
  const accounts = account.me.person?.accounts ?? [];
  // The choice shows at once; the page follows when the account's details have arrived, or the select
  // goes back to the account shown when they could not be had.
  const [chosen, setChosen] = useState(account.accountId);
  useEffect(() => setChosen(account.accountId), [account.accountId]);
  // A switch that failed: back to the account shown (its problem put away leaves the choice alone).
  useEffect(() => {
    if (account.switchProblem) setChosen(account.accountId);
  }, [account.switchProblem, account.accountId]);
  // A page's filters name things of the account it was showing (the Audit log's key): once another account
  // is shown, the page starts over without them.
  const [path, navigate] = useLocation();
  // A failed switch's alert is about the moment it failed: it goes once the person moves to another page.
  const { dismissSwitchProblem } = account;
  const shownPath = useRef(path);
  useEffect(() => {
    if (shownPath.current === path) return;
    shownPath.current = path;
    dismissSwitchProblem();
  }, [path, dismissSwitchProblem]);
  const shown = useRef(account.accountId);
  useEffect(() => {
    if (shown.current === account.accountId) return;
    shown.current = account.accountId;
    if (window.location.search) navigate(path, { replace: true });
  }, [account.accountId, path, navigate]);
  // Said in the status region (present from the start, so that each change is announced): the switch in
  // flight, then the account it led to, from the same render that shows that account.
  const [asked, setAsked] = useState(false);
  const entry = accounts.find((a) => a.account_id === account.accountId);
  const status = account.switchingTo
    ? `Switching to ${account.switchingTo}…`
    : asked && !account.switchProblem
      ? `Now showing account ${account.accountId}${entry ? ` (${tierName(entry.tier)}, ${entry.role})` : ''}.`
      : '';
  // Not `disabled`: a button that disables itself under the keyboard's focus drops the focus.
  const unavailable = chosen === account.accountId || account.switchingTo !== null;
  // A choice not switched to yet says so (beside the select, and as its description).
  const pending = chosen !== account.accountId && account.switchingTo === null;
  const hintId = `${selectId}-hint`;

  return (
    <div className="account-bar">
      {accounts.length > 1 ? (
        <form
          className="account-switcher"
          onSubmit={(event) => {
            event.preventDefault();
            if (unavailable) return;
            setAsked(true);
            account.switchTo(chosen);
          }}
        >
          <label htmlFor={selectId}>Account</label>
          <select
            id={selectId}
            className="input"
            value={chosen}
            aria-describedby={pending ? hintId : undefined}
            onChange={(event) => {
              setChosen(event.target.value);
              dismissSwitchProblem();
            }}
          >
            {accounts.map((a) => (
              <option key={a.account_id} value={a.account_id}>
                {`${a.account_id} (${tierName(a.tier)}, ${a.role})`}
              </option>
            ))}
          </select>
          <button type="submit" className="button" aria-disabled={unavailable}>
            Switch
          </button>
          {pending && (
            <span id={hintId} className="switch-status">
              Not shown yet: press Switch.
            </span>
          )}
          <div role="status" className={account.switchingTo ? 'switch-status' : 'visually-hidden'}>
            {status}
          </div>
          {account.switchProblem && <ErrorMessage>{account.switchProblem.message}</ErrorMessage>}
        </form>
      ) : (
        <p className="account-name">
          <span className="label">Account</span> {account.accountId}
        </p>
      )}
      <p className="person">
        {/* A person added by subject alone (a deployer's own identity provider) has no email. */}
        <span className="person-email">{account.email ?? (account.subject ? `Person ${account.subject}` : 'Signed in')}</span>
        {account.role && <span className="badge">{account.role}</span>}
      </p>
      <button type="button" className="button" onClick={() => void signOut()}>
        Sign out
      </button>
    </div>
  );
}
