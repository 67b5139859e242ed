import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  CHECKSUM_LENGTH,
  RANDOM_LENGTH,
  checksum,
  displayPrefix,
  generateApiKey,
  hashApiKey,
  parseApiKey,
  randomBase62,
} from '../lambdas/shared/api-key.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** An independent decoding of the 6-character checksum, to check the encoder against the definition. */
function decodeBase62(text: string): number {
  return [...text].reduce((n, ch) => n * 62 + BASE62.indexOf(ch), 0);
}

describe('API key format (contract §1)', () => {
  it('is <prefix>_<environment>_<32 random base62><6 base62 checksum>', () => {
    for (const environment of ['live', 'test'] as const) {
      const key = generateApiKey('knouds', environment);
      expect(key).toMatch(new RegExp(`^knouds_${environment}_[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}$`));
    }
  });

  it('carries at least 190 bits of randomness', () => {
    expect(RANDOM_LENGTH * Math.log2(62)).toBeGreaterThanOrEqual(190);
  });

  it('ends with the base62 CRC32 of everything before it', () => {
    const key = generateApiKey('acme', 'live');
    const head = key.slice(0, -CHECKSUM_LENGTH);
    expect(decodeBase62(key.slice(-CHECKSUM_LENGTH))).toBe(crc32(head));
    expect(checksum(head)).toBe(key.slice(-CHECKSUM_LENGTH));
  });

  it('never repeats and spreads over the whole alphabet', () => {
    const keys = new Set(Array.from({ length: 2000 }, () => generateApiKey('knouds', 'live')));
    expect(keys.size).toBe(2000);
    const sample = randomBase62(62 * 500);
    const counts = new Map<string, number>();
    for (const ch of sample) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // Each character is expected 500 times; a modulo bias would push the first ones far above that.
    for (const n of counts.values()) expect(Math.abs(n - 500)).toBeLessThan(150);
  });

  it('displays its first 16 characters as the prefix', () => {
    const key = generateApiKey('knouds', 'live');
    expect(displayPrefix(key)).toBe(key.slice(0, 16));
    expect(displayPrefix(key)).toMatch(/^knouds_live_[0-9A-Za-z]{4}$/);
  });

  it('is stored as its SHA-256 hex digest', () => {
    const key = generateApiKey('knouds', 'test');
    expect(hashApiKey(key)).toBe(createHash('sha256').update(key).digest('hex'));
    expect(hashApiKey(key)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('parseApiKey', () => {
  const key = generateApiKey('knouds', 'live');

  it('accepts a well-formed key and tells its environment', () => {
    expect(parseApiKey(key, 'knouds')).toEqual({ environment: 'live' });
    expect(parseApiKey(generateApiKey('knouds', 'test'), 'knouds')).toEqual({ environment: 'test' });
  });

  it('rejects every single-character typo (the checksum catches it)', () => {
    let rejected = 0;
    const start = 'knouds_live_'.length;
    for (let i = start; i < key.length; i++) {
      const replacement = key[i] === 'a' ? 'b' : 'a';
      const typo = key.slice(0, i) + replacement + key.slice(i + 1);
      if (parseApiKey(typo, 'knouds') === undefined) rejected++;
    }
    expect(rejected).toBe(key.length - start);
  });

  it('rejects swapped neighbours, truncation, extension, other prefixes and environments', () => {
    const swapped = key.slice(0, 20) + key[21] + key[20] + key.slice(22);
    const cases = [
      key[20] === key[21] ? `${key}x` : swapped,
      key.slice(0, -1),
      `${key}a`,
      key.replace('knouds_', 'acme_'),
      key.replace('_live_', '_prod_'),
      key.replace('_live_', '_test_'),
      `Bearer ${key}`,
      ` ${key}`,
      '',
      'knouds_live_',
      `knouds_live_${'a'.repeat(300)}`,
      key.replace(/[0-9A-Za-z]$/, '-'),
    ];
    for (const bad of cases) expect(parseApiKey(bad, 'knouds')).toBeUndefined();
  });

  it('only accepts the configured prefix', () => {
    const acme = generateApiKey('acme', 'live');
    expect(parseApiKey(acme, 'acme')).toEqual({ environment: 'live' });
    expect(parseApiKey(acme, 'knouds')).toBeUndefined();
  });
});
