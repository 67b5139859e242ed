/**
 * API key format (API.md §1): `<prefix>_<live|test>_<body>`, where body is 32 characters of base62
 * CSPRNG output (190.5 bits) followed by a 6-character base62 CRC32 of everything before it.
 * Only sha256(key) is ever stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

export type KeyEnvironment = 'live' | 'test';
export const KEY_ENVIRONMENTS: readonly KeyEnvironment[] = ['live', 'test'];

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const RANDOM_LENGTH = 32;
export const CHECKSUM_LENGTH = 6;
export const DISPLAY_PREFIX_LENGTH = 16;

/** Uniform base62 string from the CSPRNG (rejection sampling: bytes ≥ 248 are dropped, so no modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function toBase62(value: number, width: number): string {
  let out = '';
  let n = value;
  for (let i = 0; i < width; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export function checksum(text: string): string {
  return toBase62(crc32(text), CHECKSUM_LENGTH);
}

export function generateApiKey(prefix: string, environment: KeyEnvironment): string {
  const head = `${prefix}_${environment}_${randomBase62(RANDOM_LENGTH)}`;
  return head + checksum(head);
}

export interface ParsedKey {
  readonly environment: KeyEnvironment;
}

const BODY = /^[0-9A-Za-z]+$/;

/** Structural check and checksum, no I/O. Returns undefined for anything malformed or mistyped. */
export function parseApiKey(key: string, prefix: string): ParsedKey | undefined {
  if (key.length > 256) return undefined;
  for (const environment of KEY_ENVIRONMENTS) {
    const lead = `${prefix}_${environment}_`;
    if (!key.startsWith(lead)) continue;
    const body = key.slice(lead.length);
    if (body.length < RANDOM_LENGTH + CHECKSUM_LENGTH || !BODY.test(body)) return undefined;
    const head = key.slice(0, key.length - CHECKSUM_LENGTH);
    return checksum(head) === key.slice(-CHECKSUM_LENGTH) ? { environment } : undefined;
  }
  return undefined;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_PREFIX_LENGTH);
}

/** Public identifiers (`key_…`, `acct_…` are chosen by callers): a type prefix and 20 base62 characters. */
export function newId(type: string): string {
  return `${type}_${randomBase62(20)}`;
}

/**
 * The authorizer context entry that carries a key's metadata (JSON) beside the caller's, for
 * GET /keys/verify, which answers from the context alone (no read).
 */
export const KEY_METADATA_CONTEXT = 'key_metadata';

/**
 * The authorizer context entry that carries a key's own capabilities (JSON) when they differ from those in
 * force (a tier ceiling below them), so GET /keys/verify shows the key's object as GET /keys/{id} does.
 */
export const KEY_CAPABILITIES_CONTEXT = 'key_capabilities';
