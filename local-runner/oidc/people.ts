/**
 * The people of the local OpenID Connect provider: email (unique, compared case-insensitively), a random
 * subject that never changes, a password hashed with scrypt, and when they were added. Held in memory;
 * with a folder, also in `<folder>/people.json` (mode 0600, rewritten atomically at each change).
 *
 * The running provider is the only writer of that file: the admin CLI reaches the people through the
 * provider's admin endpoint (admin.ts), never through the file, so two processes never race on it.
 */
import { randomBytes, randomUUID, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { StartupError } from '../dynamodb-local.js';
import { ensurePrivateDir, writePrivateFileAtomic } from './files.js';

/** A person as others see them: never the password or its hash. */
export interface Person {
  readonly subject: string;
  readonly email: string;
  readonly created_at: string;
}

/** `password` is the new person's password, shown once; `null` when the email was already known. */
export interface AddedPerson {
  readonly subject: string;
  readonly email: string;
  readonly password: string | null;
}

/** A known person's new password, shown once. */
export interface PasswordReset {
  readonly subject: string;
  readonly email: string;
  readonly password: string;
}

/** What the admin CLI does with people (in-process here, over HTTP in admin-client.ts). */
export interface PeopleDirectory {
  /** Adds a person with a fresh random password; an email already known is returned as it is, password `null`. */
  addPerson(email: string): Promise<AddedPerson>;
  findPerson(email: string): Promise<Person | undefined>;
  listPeople(): Promise<Person[]>;
  /** True when someone was removed. Their next sign-in fails; tokens already issued run out (≤ 1 h). */
  removePerson(email: string): Promise<boolean>;
  /**
   * A fresh random password for a known person (their subject kept), undefined for an unknown email (no
   * one is added). Their old password fails from the next sign-in; their sessions at the provider and
   * tokens already issued are kept (they run out: sessions ≤ 8 h, in memory only; tokens ≤ 1 h).
   */
  resetPassword(email: string): Promise<PasswordReset | undefined>;
}

export class InvalidEmailError extends Error {}

interface PersonRecord extends Person {
  readonly password_hash: string;
}

interface PeopleFile {
  readonly version: 1;
  readonly people: PersonRecord[];
}

export const PEOPLE_FILE = 'people.json';
const MAX_EMAIL_LENGTH = 254;

/** Lower case, trimmed; refuses what cannot be an address (`x@y`, ≤ 254 characters, no spaces or markup). */
export function normalizeEmail(email: unknown): string {
  if (typeof email !== 'string') throw new InvalidEmailError('email must be a string');
  const normalized = email.trim().toLowerCase();
  if (normalized.length > MAX_EMAIL_LENGTH || !/^[^\s@<>"'()[\],;:\\]+@[^\s@<>"'()[\],;:\\]+$/.test(normalized)) {
    throw new InvalidEmailError(`'${email}' is not an email address`);
  }
  return normalized;
}

/** 24 characters of base64url: 144 bits from the CSPRNG. */
export const newPassword = (): string => randomBytes(18).toString('base64url');

// scrypt with N = 2^15, r = 8, p = 1 (32 MiB, some tens of milliseconds): enough for a local provider
// whose file is mode 0600, and quick enough for tests that sign in many times.
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 } as const;

function scryptAsync(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

const maxmem = (N: number, r: number) => 128 * N * r * 2;

/** `scrypt$N$r$p$<salt>$<hash>` (base64url), the parameters kept beside each hash. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keyLength } = SCRYPT;
  const hash = await scryptAsync(password, salt, keyLength, { N, r, p, maxmem: maxmem(N, r) });
  return ['scrypt', N, r, p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

/** Compares in constant time; a malformed stored hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((n) => Number.isSafeInteger(n) && n > 0) || N > 2 ** 20 || r > 32 || p > 16) return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (expected.length < 16) return false;
  const actual = await scryptAsync(password, salt, expected.length, { N, r, p, maxmem: maxmem(N, r) });
  return timingSafeEqual(actual, expected);
}

const publicView = ({ subject, email, created_at }: PersonRecord): Person => ({ subject, email, created_at });

export class PeopleStore implements PeopleDirectory {
  private readonly byEmail = new Map<string, PersonRecord>();
  private readonly file: string | undefined;
  /** A hash no password matches, checked for unknown emails so they take as long as known ones. */
  private decoy: Promise<string> | undefined;

  /** With `dir`, the people in `<dir>/people.json` (made when missing) and every change written there. */
  constructor(dir?: string) {
    this.file = dir ? path.join(dir, PEOPLE_FILE) : undefined;
    if (dir) ensurePrivateDir(dir);
    if (this.file && existsSync(this.file)) {
      for (const record of readPeopleFile(this.file)) this.byEmail.set(record.email, record);
    }
  }

  async addPerson(email: string): Promise<AddedPerson> {
    const normalized = normalizeEmail(email);
    const known = this.byEmail.get(normalized);
    if (known) return { subject: known.subject, email: known.email, password: null };
    const password = newPassword();
    const password_hash = await hashPassword(password);
    // Checked again after the wait: two calls for one email make one person.
    const raced = this.byEmail.get(normalized);
    if (raced) return { subject: raced.subject, email: raced.email, password: null };
    const record: PersonRecord = { subject: randomUUID(), email: normalized, password_hash, created_at: new Date().toISOString() };
    this.byEmail.set(normalized, record);
    this.save();
    return { subject: record.subject, email: record.email, password };
  }

  async findPerson(email: string): Promise<Person | undefined> {
    const record = this.byEmail.get(normalizeEmail(email));
    return record && publicView(record);
  }

  async listPeople(): Promise<Person[]> {
    return [...this.byEmail.values()].map(publicView).sort((a, b) => a.email.localeCompare(b.email));
  }

  async removePerson(email: string): Promise<boolean> {
    const removed = this.byEmail.delete(normalizeEmail(email));
    if (removed) this.save();
    return removed;
  }

  findBySubject(subject: string): Person | undefined {
    for (const record of this.byEmail.values()) if (record.subject === subject) return publicView(record);
    return undefined;
  }

  /**
   * A fresh random password for `email`, adding the person when missing (their subject is kept when
   * known): `npm start` does this for the demo person at each start.
   */
  async seedPerson(email: string): Promise<PasswordReset> {
    return (await this.freshPassword(normalizeEmail(email), true))!;
  }

  async resetPassword(email: string): Promise<PasswordReset | undefined> {
    return this.freshPassword(normalizeEmail(email), false);
  }

  /** A fresh password for a known person (subject kept), or, with `addWhenMissing`, for a new one. */
  private async freshPassword(normalized: string, addWhenMissing: boolean): Promise<PasswordReset | undefined> {
    if (!addWhenMissing && !this.byEmail.has(normalized)) return undefined;
    const password = newPassword();
    const password_hash = await hashPassword(password);
    // Read after the wait: a person removed meanwhile is not brought back by a reset.
    const known = this.byEmail.get(normalized);
    if (!known && !addWhenMissing) return undefined;
    const record: PersonRecord = known
      ? { ...known, password_hash }
      : { subject: randomUUID(), email: normalized, password_hash, created_at: new Date().toISOString() };
    this.byEmail.set(normalized, record);
    this.save();
    return { subject: record.subject, email: record.email, password };
  }

  /** The person whose email and password these are, else undefined (a wrong email or a wrong password alike). */
  async authenticate(email: string, password: string): Promise<Person | undefined> {
    let normalized: string | undefined;
    try {
      normalized = normalizeEmail(email);
    } catch {
      normalized = undefined;
    }
    const record = normalized === undefined ? undefined : this.byEmail.get(normalized);
    if (!record) {
      this.decoy ??= hashPassword(newPassword());
      await verifyPassword(password, await this.decoy);
      return undefined;
    }
    return (await verifyPassword(password, record.password_hash)) ? publicView(record) : undefined;
  }

  private save(): void {
    if (!this.file) return;
    const content: PeopleFile = { version: 1, people: [...this.byEmail.values()] };
    writePrivateFileAtomic(this.file, `${JSON.stringify(content, null, 2)}\n`);
  }
}

function readPeopleFile(file: string): PersonRecord[] {
  const fail = (why: string): never => {
    throw new StartupError(`${file} ${why}; move it away to start with no people (the demo person is added again)`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    fail('is not JSON');
  }
  const people = (parsed as Partial<PeopleFile> | null)?.people;
  if ((parsed as Partial<PeopleFile> | null)?.version !== 1 || !Array.isArray(people)) fail('is not a people file of version 1');
  return (people as unknown[]).map((entry, i) => {
    const p = entry as Partial<PersonRecord> | null;
    if (
      typeof p?.subject !== 'string' ||
      typeof p.email !== 'string' ||
      typeof p.password_hash !== 'string' ||
      typeof p.created_at !== 'string' ||
      p.email !== p.email.toLowerCase()
    ) {
      fail(`has a malformed person at index ${i}`);
    }
    return { subject: p!.subject!, email: p!.email!, password_hash: p!.password_hash!, created_at: p!.created_at! };
  });
}
