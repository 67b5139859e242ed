/**
 * NOT_A_MEMBER's messages (API.md §1, §3): a `Knouds-Account` value that is no account id says so,
 * shown cut and escaped, rather than that the person belongs to no account.
 */
import { NotAMemberError, SHOWN_ACCOUNT_HEADER_LENGTH } from '../lambdas/shared/errors.js';

describe('NotAMemberError', () => {
  it('no account named: not a member of any account; an account id: not a member of that one', () => {
    expect(new NotAMemberError(null).message).toBe('You are not a member of any account: ask an account admin to add you');
    expect(new NotAMemberError('acct_1').message).toMatch(/^You are not a member of account 'acct_1': /);
  });

  it('an empty or malformed value says what is wrong with it, cut and escaped', () => {
    expect(new NotAMemberError('').message).toMatch(/^The Knouds-Account header is empty: /);
    expect(new NotAMemberError('a b').message).toMatch(/^'a b' is not an account id: name one of your accounts in the Knouds-Account header/);
    expect(new NotAMemberError('x\u0000\u001b[31m\n\u2028\\').message).toMatch(/^'x\\u0000\\u001b\[31m\\u000a\\u2028\\\\' is not an account id: /);
    const long = new NotAMemberError('z'.repeat(SHOWN_ACCOUNT_HEADER_LENGTH + 1)).message;
    expect(long).toMatch(new RegExp(`^'z{${SHOWN_ACCOUNT_HEADER_LENGTH}}…' is not an account id: `));
    for (const value of ['', 'a b', '\u0007', 'y'.repeat(65)]) expect(new NotAMemberError(value).message).not.toMatch(/any account/);
  });
});
