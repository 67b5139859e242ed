/**
 * The authorizer's session path (API.md §1): a person's access token, verified (session-token.ts), then
 * placed in an account by their membership. Budget: two consistent DynamoDB reads, the membership (a
 * GetItem when the request names its account in `Knouds-Account`, else a Query of at most two of the
 * person's memberships) and the account (its tier). Loaded only when a request carries no API key, so
 * the key path's cold start and its one read stay as they were.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { personCounterId, type PersonCaller, type Refusal } from '../shared/caller.js';
import { inForce, ROLES } from '../shared/capabilities.js';
import { SHOWN_ACCOUNT_HEADER_LENGTH } from '../shared/errors.js';
import { ACCOUNT_ID_PATTERN, AccountsRepository } from '../shared/repositories/accounts.js';
import { MembershipsRepository, type MembershipRecord } from '../shared/repositories/memberships.js';
import type { IdentityProviderConfig } from '../shared/identity-provider.js';
import { createSessionVerifier } from '../shared/session-token.js';
import { rateLimitFor, type Settings } from '../shared/settings.js';

export interface SessionTables {
  readonly memberships: string;
  readonly accounts: string;
}

/** A person placed in an account, or why not (answered by the handler with the contract's error). */
export type Placement = { caller: PersonCaller } | { refusal: Refusal; subject: string };

export interface Sessions {
  /**
   * Verifies `token` (InvalidSessionToken when it is not a valid access token for this API) and places
   * its person in `accountHeader`'s account, or in their only one. `firstAccountWhenSeveral`: `GET /me`,
   * which a person of several accounts may call without naming one.
   */
  place(token: string, accountHeader: string | undefined, firstAccountWhenSeveral: boolean): Promise<Placement>;
}

export function createSessions(doc: DynamoDBDocumentClient, tables: SessionTables, config: IdentityProviderConfig, settings: Settings): Sessions {
  const verifier = createSessionVerifier(config);
  const memberships = new MembershipsRepository(doc, tables.memberships);
  const accounts = new AccountsRepository(doc, tables.accounts);
  return {
    async place(token, accountHeader, firstAccountWhenSeveral) {
      const { subject } = await verifier.verify(token);
      let membership: MembershipRecord | undefined;
      if (accountHeader !== undefined) {
        // Not an account id (empty, or not of its shape): it names no account the person belongs to. The
        // refusal carries the value, cut (a header may be kilobytes long) to one character more than the
        // message shows, which is also past an id's longest (64), so that the cut value stays no id and
        // the message says what was wrong (errors.ts NotAMemberError).
        if (!ACCOUNT_ID_PATTERN.test(accountHeader)) {
          return { refusal: { code: 'NOT_A_MEMBER', account_id: accountHeader.slice(0, SHOWN_ACCOUNT_HEADER_LENGTH + 1) }, subject };
        }
        membership = await memberships.get(subject, accountHeader);
        if (!membership) return { refusal: { code: 'NOT_A_MEMBER', account_id: accountHeader }, subject };
      } else {
        const found = await memberships.ofPerson(subject);
        if (found.length === 0) return { refusal: { code: 'NOT_A_MEMBER', account_id: null }, subject };
        if (found.length > 1 && !firstAccountWhenSeveral) return { refusal: { code: 'ACCOUNT_REQUIRED' }, subject };
        membership = found[0]!;
      }
      const account = await accounts.get(membership.account_id);
      // A membership of an account that no longer exists places the person nowhere.
      if (!account) return { refusal: { code: 'NOT_A_MEMBER', account_id: membership.account_id }, subject };
      return {
        caller: {
          kind: 'person',
          subject,
          email: membership.email,
          role: membership.role,
          accountId: account.account_id,
          tier: account.tier,
          environment: 'live',
          capabilities: inForce(ROLES[membership.role], settings.tiers[account.tier].ceiling),
          workspaces: ['*'],
          rateLimit: rateLimitFor(settings, account.tier, 'live'),
          counterId: personCounterId(account.account_id, subject),
        },
      };
    },
  };
}
