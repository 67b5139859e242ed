/**
 * Where the people of a stack sign in, as the admin CLI's `user add` sees it: the local provider of a
 * running `npm start`, or the stack's Cognito user pool. A stack with the deployer's own provider has no
 * directory here (the CLI cannot create people there; `user add` then takes `--subject`).
 *
 * Only `user add` and `user reset-password` talk to a directory: set-role, list and remove work on
 * memberships alone, and `user remove` keeps the person's sign-in (they may belong to another account;
 * see the README). Only the local provider's passwords are reset by the CLI: Cognito's are reset in
 * Cognito, a deployer's provider's at that provider.
 */
import {
  AdminCreateUserCommand,
  AdminGetUserCommand,
  UsernameExistsException,
  type AttributeType,
  type CognitoIdentityProviderClient,
} from '@aws-sdk/client-cognito-identity-provider';
import type { LocalOidcAdminClient } from '../local-runner/oidc/admin-client.js';
import type { PasswordReset } from '../local-runner/oidc/people.js';

export interface EnsuredPerson {
  readonly subject: string;
  /** Lower case. */
  readonly email: string;
  /** The new person's password, shown once: only the local provider makes one; `null` otherwise. */
  readonly password: string | null;
  /** False when the directory already knew the email. */
  readonly created: boolean;
}

export interface PeopleDirectory {
  /** For messages: "the local provider", "user pool eu-west-1_abc". */
  readonly description: string;
  /** What the person is told about their password when they are new (no password shown). */
  readonly newPersonNote: string;
  /** The person with this (normalized) email, created when unknown. */
  ensurePerson(email: string): Promise<EnsuredPerson>;
  /**
   * Takes back a person `ensurePerson` has just created, when their membership could not be written: a
   * second `user add` would otherwise find them and show no password. Absent where that is not needed.
   */
  forgetNewPerson?(email: string): Promise<void>;
  /**
   * A fresh password, shown once, for the person with this (normalized) email; undefined when the
   * directory does not know them. Only where the CLI makes passwords (the local provider); elsewhere
   * absent, and `resetElsewhere` says how it is done there.
   */
  resetPassword?(email: string): Promise<PasswordReset | undefined>;
  /** Where and how a password is reset when the CLI does not (`<email>` stands for the person's). */
  readonly resetElsewhere?: string;
}

/** The running `npm start`'s provider, through its admin endpoint (one writer of its people). */
export function localPeople(client: LocalOidcAdminClient, issuer: string): PeopleDirectory {
  return {
    description: `the local provider at ${issuer}`,
    newPersonNote: 'their password is shown below',
    async ensurePerson(email) {
      const added = await client.addPerson(email);
      return { subject: added.subject, email: added.email, password: added.password, created: added.password !== null };
    },
    async forgetNewPerson(email) {
      await client.removePerson(email);
    },
    resetPassword: (email) => client.resetPassword(email),
  };
}

/** Cognito's temporary password lasts this long (lib/identity.ts, TEMPORARY_PASSWORD_DAYS). */
export const COGNITO_INVITATION_NOTE = 'Cognito has emailed them a temporary password (valid 3 days)';

const attribute = (attributes: AttributeType[] | undefined, name: string): string | undefined =>
  attributes?.find((a) => a.Name === name)?.Value;

/**
 * The stack's Cognito user pool, where the email is the username (compared without case). The actions
 * called, and so the operator's IAM (README "People and sign-in (deployed)"): `AdminCreateUser` for a new
 * person, `AdminGetUser` (by email, an alias of the username) for one the pool already has.
 */
export function cognitoPeople(client: CognitoIdentityProviderClient, userPoolId: string): PeopleDirectory {
  const subjectOf = (attributes: AttributeType[] | undefined, what: string): { subject: string; email: string } => {
    const subject = attribute(attributes, 'sub');
    const email = attribute(attributes, 'email');
    if (!subject || !email) throw new Error(`user pool ${userPoolId} answered ${what} without the user's sub and email`);
    return { subject, email: email.toLowerCase() };
  };
  return {
    description: `user pool ${userPoolId}`,
    newPersonNote: COGNITO_INVITATION_NOTE,
    resetElsewhere:
      `in Cognito: aws cognito-idp admin-reset-user-password --user-pool-id ${userPoolId} --username <email> (Cognito emails them a code to choose a new one); ` +
      `for one who never signed in (temporary password lost or expired): aws cognito-idp admin-create-user --user-pool-id ${userPoolId} --username <email> --message-action RESEND`,
    async ensurePerson(email) {
      try {
        const out = await client.send(
          new AdminCreateUserCommand({
            UserPoolId: userPoolId,
            Username: email,
            UserAttributes: [
              { Name: 'email', Value: email },
              // The operator vouches for the address; Cognito sends the invitation there.
              { Name: 'email_verified', Value: 'true' },
            ],
            DesiredDeliveryMediums: ['EMAIL'],
          }),
        );
        return { ...subjectOf(out.User?.Attributes, 'AdminCreateUser'), password: null, created: true };
      } catch (error) {
        if (!(error instanceof UsernameExistsException)) throw error;
      }
      // Already in the pool (added to another account, or by hand): the same person, no new invitation.
      const out = await client.send(new AdminGetUserCommand({ UserPoolId: userPoolId, Username: email }));
      return { ...subjectOf(out.UserAttributes, 'AdminGetUser'), password: null, created: false };
    },
  };
}
