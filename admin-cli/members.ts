/**
 * The people of an account (API.md §5, `user …`): a person is added to the stack's identity provider
 * (when the CLI can reach it, people.ts) and given a membership with a role; the authorizer reads the
 * membership on every request, so set-role and remove apply from the person's next request.
 */
import type { RoleName } from '../lambdas/shared/capabilities.js';
import { ConflictError, NotFoundError } from '../lambdas/shared/errors.js';
import type { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { memberAddedEvent, newAuditEvent, OPERATOR_ACTOR, type AuditAction, type AuditChanges, type AuditRepository } from '../lambdas/shared/repositories/audit.js';
import type { MembershipRecord, MembershipsRepository } from '../lambdas/shared/repositories/memberships.js';
import type { PeopleDirectory } from './people.js';
import type { PasswordReset } from '../local-runner/oidc/people.js';

export interface MemberDeps {
  readonly accounts: AccountsRepository;
  readonly memberships: MembershipsRepository;
  /** Where each change records its event, in the change's own transaction (API.md §7; the actor: operator). */
  readonly audit: AuditRepository;
  /** Absent with the deployer's own identity provider: people are named by `--subject` there. */
  readonly people: PeopleDirectory | undefined;
}

/** Who a command is about: an email (lower case) or a subject. */
export type Who = { readonly email: string } | { readonly subject: string };

/** A mistake only the stack reveals (the flag that fits its identity provider): bad usage, exit 2. */
export class MemberUsageError extends Error {}

export interface AddedMember {
  readonly subject: string;
  /** `null` for a person added by subject alone (a deployer's own identity provider). */
  readonly email: string | null;
  readonly account_id: string;
  readonly role: RoleName;
  /** The new person's password (local provider only), else `null`. */
  readonly password: string | null;
  /** The person was new to the identity provider. */
  readonly newPerson: boolean;
  /** They were a member with this role already: nothing changed. */
  readonly alreadyMember: boolean;
}

async function requireAccount(deps: MemberDeps, accountId: string): Promise<void> {
  if (!(await deps.accounts.get(accountId))) throw new NotFoundError(`Account '${accountId}' does not exist`);
}

const nameOf = (who: Who) => ('email' in who ? who.email : `subject ${who.subject}`);
/** How a member is named in messages: their email, or their subject when they have none. */
export const memberName = (m: { readonly subject: string; readonly email: string | null }) => m.email ?? `subject ${m.subject}`;

/** The Put of a member event by the operator (the admin CLI), for the membership write's transaction. */
const memberEvent = (deps: MemberDeps, action: AuditAction, accountId: string, subject: string, changes: AuditChanges, now: Date) =>
  deps.audit.putItem(newAuditEvent({ accountId, action, actor: OPERATOR_ACTOR, target: { kind: 'member', id: subject }, changes, now }));

/** Tries at a role change or removal whose member changes under it (then read again). */
const MEMBER_WRITE_ATTEMPTS = 5;

/**
 * Adds a person to an account with a role. The account is checked first, so an unknown account creates
 * nobody. The same person with the same role again changes nothing; another role is 409 ALREADY_EXISTS
 * (that is `set-role`).
 */
export async function addMember(
  deps: MemberDeps,
  input: { accountId: string; email?: string; subject?: string; role: RoleName },
  now: Date,
): Promise<AddedMember> {
  const { accountId, role } = input;
  const people = deps.people;
  if (people && input.subject !== undefined) {
    throw new MemberUsageError(`--subject is for a stack with its own identity provider; this one's people are in ${people.description}: name them by --email`);
  }
  if (!people && input.subject === undefined) {
    throw new MemberUsageError(
      "this stack uses its own identity provider (it has no UserPoolId output), where the CLI cannot create people: give the person's --subject (the sub of their tokens), and --email if you want it kept for display",
    );
  }
  if (people && input.email === undefined) throw new MemberUsageError(`name the person by --email: ${people.description} knows people by their email`);
  await requireAccount(deps, accountId);

  const members = await deps.memberships.ofAccount(accountId);
  // One email, one member: set-role and remove find people by email.
  const clash = (subject: string, email: string | null) => (email === null ? undefined : members.find((m) => m.email === email && m.subject !== subject));

  let person: { subject: string; email: string | null; password: string | null; created: boolean };
  if (people) {
    person = await people.ensurePerson(input.email!);
  } else {
    person = { subject: input.subject!, email: input.email ?? null, password: null, created: false };
  }
  const other = clash(person.subject, person.email);
  try {
    if (other) {
      throw new ConflictError(
        'ALREADY_EXISTS',
        `${person.email ?? ''} is already the email of another member of '${accountId}' (subject ${other.subject}); ` +
          `remove that one first: user remove --account ${accountId} --subject ${other.subject}`,
      );
    }
    const added = deps.audit.putItem(memberAddedEvent(accountId, person.subject, person.email, role, now));
    const membership = await deps.memberships.add(person.subject, accountId, person.email, role, now, added);
    return {
      subject: membership.subject,
      email: membership.email,
      account_id: accountId,
      role: membership.role,
      password: person.password,
      newPerson: person.created,
      // `add` answers a retry with what is stored: an earlier added_at.
      alreadyMember: membership.added_at !== now.toISOString(),
    };
  } catch (error) {
    // A new local person without any membership would show no password on a second try: take them back,
    // but only when certainly without one (the write may have landed with its answer lost, or a
    // concurrent add may have given them another account meanwhile).
    if (person.created && people?.forgetNewPerson) {
      const memberships = await deps.memberships.ofPerson(person.subject, 1).catch(() => undefined);
      if (memberships?.length === 0 && person.email !== null) await people.forgetNewPerson(person.email).catch(() => undefined);
    }
    if (error instanceof ConflictError && !other) {
      const held = (await deps.memberships.get(person.subject, accountId))?.role;
      throw new ConflictError(
        'ALREADY_EXISTS',
        `${memberName(person)} is already ${held ? `${article(held)} ${held}` : 'a member'} of '${accountId}'; change the role with ` +
          `user set-role --account ${accountId} ${person.email === null ? `--subject ${person.subject}` : `--email ${person.email}`} --role ${role}`,
      );
    }
    throw error;
  }
}

/**
 * A fresh password for a person of the local provider (by email, whatever their accounts): for one whose
 * password was lost (a `user add` whose answer never arrived answers `password: null` when tried again).
 * Their old password stops working at their next sign-in; their subject and memberships are kept, and so
 * are their sessions at the provider and their tokens already issued, until those run out. Elsewhere the
 * password is reset at the identity provider itself: said, nothing done (exit 2).
 */
export async function resetPassword(deps: MemberDeps, email: string): Promise<PasswordReset> {
  const people = deps.people;
  if (!people) {
    throw new MemberUsageError(
      'this stack uses its own identity provider (it has no UserPoolId output): passwords are reset at that provider, not by this CLI',
    );
  }
  if (!people.resetPassword) {
    throw new MemberUsageError(`passwords of ${people.description} are reset at that provider, not by this CLI: ${(people.resetElsewhere ?? 'there').replaceAll('<email>', email)}`);
  }
  const reset = await people.resetPassword(email);
  if (!reset) throw new NotFoundError(`${email} is not a person of ${people.description}: add them with user add --account <id> --email ${email} --role <role>`);
  return reset;
}

const article = (role: string) => (/^[aeiou]/.test(role) ? 'an' : 'a');

/** Code-unit order: the same on every machine, whatever its locale. */
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The account's members, by email (then subject; those without an email last). */
export async function listMembers(deps: MemberDeps, accountId: string): Promise<MembershipRecord[]> {
  await requireAccount(deps, accountId);
  const members = await deps.memberships.ofAccount(accountId);
  const emailOrder = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : byText(a, b));
  return members.sort((a, b) => emailOrder(a.email, b.email) || byText(a.subject, b.subject));
}

/** The member `who` names: by subject, a consistent read; by email, the account's memberships (its index). */
async function findMember(deps: MemberDeps, accountId: string, who: Who): Promise<MembershipRecord> {
  await requireAccount(deps, accountId);
  let found: MembershipRecord | undefined;
  if ('subject' in who) {
    found = await deps.memberships.get(who.subject, accountId);
  } else {
    const matches = (await deps.memberships.ofAccount(accountId)).filter((m) => m.email === who.email);
    if (matches.length > 1) {
      throw new ConflictError('ALREADY_EXISTS', `${who.email} is the email of ${matches.length} members of '${accountId}': name one by --subject`);
    }
    found = matches[0];
  }
  if (!found) throw new NotFoundError(`${nameOf(who)} is not a member of '${accountId}'`);
  return found;
}

/**
 * Changes a member's role, in force from their next request, with its member.role_changed event. The
 * same role again changes nothing and records nothing. The write is conditioned on the role as read (the
 * event's `from`); a concurrent change makes it read the member again, consistently, by subject.
 */
export async function setMemberRole(
  deps: MemberDeps,
  accountId: string,
  who: Who,
  role: RoleName,
  now: Date,
): Promise<{ before: RoleName; after: MembershipRecord }> {
  let member: MembershipRecord | undefined = await findMember(deps, accountId, who);
  for (let attempt = 1; ; attempt++) {
    if (!member) throw new NotFoundError(`${nameOf(who)} is not a member of '${accountId}'`);
    if (member.role === role) return { before: role, after: member };
    const event = memberEvent(deps, 'member.role_changed', accountId, member.subject, { role: { from: member.role, to: role } }, now);
    const after = await deps.memberships.setRole(member, role, now, event);
    if (after) return { before: member.role, after };
    if (attempt >= MEMBER_WRITE_ATTEMPTS) throw new Error(`the membership of ${nameOf(who)} in '${accountId}' kept changing`);
    member = await deps.memberships.get(member.subject, accountId);
  }
}

/**
 * Removes a member, refused from their next request (403 NOT_A_MEMBER), with its member.removed event.
 * Their sign-in at the identity provider is kept: they may belong to other accounts, and adding them back
 * needs no new invitation.
 */
export async function removeMember(deps: MemberDeps, accountId: string, who: Who, now: Date = new Date()): Promise<MembershipRecord> {
  let member: MembershipRecord | undefined = await findMember(deps, accountId, who);
  for (let attempt = 1; ; attempt++) {
    if (!member) throw new NotFoundError(`${nameOf(who)} is not a member of '${accountId}'`);
    const changes = { ...(member.email !== null ? { email: { from: member.email, to: null } } : {}), role: { from: member.role, to: null } };
    const event = memberEvent(deps, 'member.removed', accountId, member.subject, changes, now);
    if (await deps.memberships.remove(member, event)) return member;
    // Removed (a retry finds none: 404) or its role changed meanwhile (remove it as it is now).
    if (attempt >= MEMBER_WRITE_ATTEMPTS) throw new Error(`the membership of ${nameOf(who)} in '${accountId}' kept changing`);
    member = await deps.memberships.get(member.subject, accountId);
  }
}
