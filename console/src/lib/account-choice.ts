/**
 * The account a person of several accounts acts for (the `Knouds-Account` header on every call), kept
 * in this tab's session storage so a reload keeps it.
 */
const KEY = 'knouds.account';

export function accountChoice(): string | null {
  return window.sessionStorage.getItem(KEY);
}

export function chooseAccount(accountId: string): void {
  window.sessionStorage.setItem(KEY, accountId);
}

export function forgetAccountChoice(): void {
  window.sessionStorage.removeItem(KEY);
}
