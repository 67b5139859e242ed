/**
 * The provider's signing key: one RSA key (RS256, for ID tokens and access tokens). With a folder it is
 * kept as a private JWK set in `<folder>/signing-keys.json` (mode 0600, written atomically) and used again
 * at the next start, so tokens issued before a restart still verify after it; without one, a new key is
 * made at each start.
 */
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { StartupError } from '../dynamodb-local.js';
import { ensurePrivateDir, writePrivateFileAtomic } from './files.js';

export const SIGNING_KEYS_FILE = 'signing-keys.json';

export interface PrivateJwks {
  readonly keys: JsonWebKey[];
}

export function newSigningKeys(): PrivateJwks {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // The provider names the key (its RFC 7638 thumbprint) when it has no kid.
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' }] };
}

/** The keys in `<dir>/signing-keys.json`, made when missing; without `dir`, new keys held in memory only. */
export function loadOrCreateSigningKeys(dir?: string): PrivateJwks {
  if (!dir) return newSigningKeys();
  ensurePrivateDir(dir);
  const file = path.join(dir, SIGNING_KEYS_FILE);
  if (existsSync(file)) {
    let jwks: Partial<PrivateJwks> | null = null;
    try {
      jwks = JSON.parse(readFileSync(file, 'utf8')) as Partial<PrivateJwks> | null;
    } catch {
      // reported below
    }
    const keys = jwks?.keys;
    if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => k?.kty === 'RSA' && typeof k.d === 'string')) {
      throw new StartupError(`${file} is not a set of private RSA keys (JWK); move it away to start with a new key (tokens signed with the old one will not verify)`);
    }
    return { keys };
  }
  const jwks = newSigningKeys();
  writePrivateFileAtomic(file, `${JSON.stringify(jwks, null, 2)}\n`);
  return jwks;
}
