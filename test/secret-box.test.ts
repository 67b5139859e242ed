/** Sealing secrets at rest: the local AES-256-GCM box (KMS's stand-in) and the choice between them. */
import { KmsSecretBox, LocalSecretBox, secretBoxFromEnv } from '../lambdas/shared/secret-box.js';

const box = new LocalSecretBox(LocalSecretBox.newKey());

describe('LocalSecretBox', () => {
  it('opens what it sealed, for the same account only', async () => {
    const sealed = await box.seal('whsec_abc', 'acct_1');
    expect(sealed).toMatch(/^local:v1:[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('whsec_abc');
    await expect(box.open(sealed, 'acct_1')).resolves.toBe('whsec_abc');
    await expect(box.open(sealed, 'acct_2')).rejects.toThrow();
  });

  it('seals the same secret differently each time (a fresh nonce)', async () => {
    expect(await box.seal('s', 'a')).not.toBe(await box.seal('s', 'a'));
  });

  it('refuses another key, a flipped byte and a malformed value', async () => {
    const sealed = await box.seal('whsec_abc', 'acct_1');
    await expect(new LocalSecretBox(LocalSecretBox.newKey()).open(sealed, 'acct_1')).rejects.toThrow();
    const body = sealed.slice(-4);
    const flipped = sealed.slice(0, -4) + (body[0] === 'A' ? 'B' : 'A') + body.slice(1);
    await expect(box.open(flipped, 'acct_1')).rejects.toThrow();
    await expect(box.open('local:v1:x.y', 'acct_1')).rejects.toThrow(/malformed/);
    await expect(box.open('kms:v1:abc', 'acct_1')).rejects.toThrow(/local key/);
  });

  it('needs a 32-byte key', () => {
    expect(() => new LocalSecretBox(Buffer.alloc(16).toString('base64'))).toThrow(/32 bytes/);
  });
});

describe('secretBoxFromEnv', () => {
  it('prefers the runner’s local key, else the stack’s KMS key', () => {
    expect(secretBoxFromEnv({ KNOUDS_LOCAL_SECRETS_KEY: LocalSecretBox.newKey(), WEBHOOK_SECRETS_KEY_ARN: 'arn:x' })).toBeInstanceOf(LocalSecretBox);
    expect(secretBoxFromEnv({ WEBHOOK_SECRETS_KEY_ARN: 'arn:aws:kms:eu-west-1:1:key/x' })).toBeInstanceOf(KmsSecretBox);
  });

  it('the local box does only the operations the runner says the function’s role allows (KNOUDS_LOCAL_SECRETS_OPERATIONS), refusing the others as KMS would', async () => {
    const key = LocalSecretBox.newKey();
    const sealed = await secretBoxFromEnv({ KNOUDS_LOCAL_SECRETS_KEY: key }).seal('whsec_abc', 'a');
    const openOnly = secretBoxFromEnv({ KNOUDS_LOCAL_SECRETS_KEY: key, KNOUDS_LOCAL_SECRETS_OPERATIONS: 'open' });
    await expect(openOnly.open(sealed, 'a')).resolves.toBe('whsec_abc');
    await expect(openOnly.seal('whsec_abc', 'a')).rejects.toMatchObject({ name: 'AccessDeniedException', message: expect.stringMatching(/kms:Encrypt/) });
    const sealOnly = secretBoxFromEnv({ KNOUDS_LOCAL_SECRETS_KEY: key, KNOUDS_LOCAL_SECRETS_OPERATIONS: 'seal' });
    await expect(sealOnly.seal('whsec_abc', 'a')).resolves.toMatch(/^local:v1:/);
    await expect(sealOnly.open(sealed, 'a')).rejects.toMatchObject({ name: 'AccessDeniedException', message: expect.stringMatching(/kms:Decrypt/) });
    const neither = secretBoxFromEnv({ KNOUDS_LOCAL_SECRETS_KEY: key, KNOUDS_LOCAL_SECRETS_OPERATIONS: '' });
    await expect(neither.open(sealed, 'a')).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect(() => secretBoxFromEnv({ KNOUDS_LOCAL_SECRETS_KEY: key, KNOUDS_LOCAL_SECRETS_OPERATIONS: 'seal,decrypt' })).toThrow(/unknown operation 'decrypt'/);
  });

  it('with neither, refuses to seal or open rather than store a secret in the clear', async () => {
    const none = secretBoxFromEnv({});
    await expect(none.seal('whsec_abc', 'a')).rejects.toThrow(/cannot be sealed/);
    await expect(none.open('local:v1:a.b', 'a')).rejects.toThrow(/cannot be sealed/);
  });
});
