/**
 * The rate-limit counters of people (lambdas/shared/caller.ts): a person's requests in an account, and a
 * person's refused ones (no membership, or no Knouds-Account), never share a counter.
 */
import { personCounterId, refusedCounterId } from '../lambdas/shared/caller.js';
import { ACCOUNT_ID_PATTERN } from '../lambdas/shared/account-id.js';

it('a refused person’s counter is no account’s, not even one named "-" (a valid id an operator can make)', () => {
  for (const accountId of ['-', '_', 'acct_acme', 'A-1', '-'.repeat(64)]) {
    expect(accountId).toMatch(ACCOUNT_ID_PATTERN);
    // Before: refused requests counted under person#-#<subject>, the counter of the account named "-".
    expect(refusedCounterId('sub-1')).not.toBe(personCounterId(accountId, 'sub-1'));
  }
  expect(refusedCounterId('sub-1').startsWith('person#')).toBe(false);
  expect(refusedCounterId('sub-1')).not.toBe(refusedCounterId('sub-2'));
});
