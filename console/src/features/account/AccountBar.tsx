/**
 * The header's account area: the signed-in person (email and role), the account switcher for a person
 * of several accounts (a labelled select that sets `Knouds-Account` on every call), and "Sign out".
 */
import { useEffect, useId, useState } from 'react';
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
  useEffect(() => setChosen(account.accountId), [account.accountId, account.switchProblem]);

  return (
    <div className="account-bar">
      {accounts.length > 1 ? (
        <div className="account-switcher">
          <label htmlFor={selectId}>Account</label>
          <select
            id={selectId}
            className="input"
            value={chosen}
            onChange={(event) => {
              setChosen(event.target.value);
              account.switchTo(event.target.value);
            }}
          >
            {accounts.map((a) => (
              <option key={a.account_id} value={a.account_id}>
                {`${a.account_id} (${tierName(a.tier)}, ${a.role})`}
              </option>
            ))}
          </select>
          {account.switchProblem && <ErrorMessage>{account.switchProblem.message}</ErrorMessage>}
        </div>
      ) : (
        <p className="account-name">
          <span className="label">Account</span> {account.accountId}
        </p>
      )}
      <p className="person">
        <span className="person-email">{account.email ?? 'Signed in'}</span>
        {account.role && <span className="badge">{account.role}</span>}
      </p>
      <button type="button" className="button" onClick={() => void signOut()}>
        Sign out
      </button>
    </div>
  );
}
