/**
 * Secrets at rest (the accounts' webhook signing secrets): sealed before they are written to DynamoDB
 * and opened when they are needed, bound to the account they belong to, so a sealed value copied onto
 * another account's item does not open.
 *
 * Deployed, the seal is AWS KMS (`WEBHOOK_SECRETS_KEY_ARN`, the stack's key; the account id is the
 * encryption context). The local runner has no KMS: it gives the functions whose template names the key a
 * 256-bit key in `KNOUDS_LOCAL_SECRETS_KEY` and they seal with AES-256-GCM (the account id as additional
 * data). With IAM enforced it also says, in `KNOUDS_LOCAL_SECRETS_OPERATIONS`, which of `seal` and `open`
 * the function's role allows (kms:Encrypt, kms:Decrypt): the other is refused as KMS would refuse it. With
 * neither key, sealing fails: a secret is never written in the clear.
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const SECRETS_KEY_ARN_ENV = 'WEBHOOK_SECRETS_KEY_ARN';
export const LOCAL_SECRETS_KEY_ENV = 'KNOUDS_LOCAL_SECRETS_KEY';
/** The local box's operations the function's role allows, comma-separated (`seal`, `open`); all when unset. */
export const LOCAL_SECRETS_OPERATIONS_ENV = 'KNOUDS_LOCAL_SECRETS_OPERATIONS';

export type SecretOperation = 'seal' | 'open';
/** The KMS action of each operation: what the local runner asks the function's role about. */
export const SECRET_OPERATION_ACTIONS: Readonly<Record<SecretOperation, string>> = { seal: 'kms:Encrypt', open: 'kms:Decrypt' };

export interface SecretBox {
  seal(plaintext: string, accountId: string): Promise<string>;
  open(sealed: string, accountId: string): Promise<string>;
}

const LOCAL_PREFIX = 'local:v1:';
const KMS_PREFIX = 'kms:v1:';

/** What KMS answers a call the caller's role does not allow. */
export class SecretAccessDenied extends Error {
  override readonly name = 'AccessDeniedException';
}

/**
 * AES-256-GCM under a key given as 32 bytes of base64. `allowed`: the operations the caller's role allows
 * (the local runner's stand-in for the key's IAM check); the others are refused (SecretAccessDenied).
 */
export class LocalSecretBox implements SecretBox {
  private readonly key: Buffer;

  constructor(
    keyBase64: string,
    private readonly allowed: ReadonlySet<SecretOperation> = new Set(['seal', 'open']),
  ) {
    this.key = Buffer.from(keyBase64, 'base64');
    if (this.key.length !== 32) throw new Error(`${LOCAL_SECRETS_KEY_ENV} must be 32 bytes of base64`);
  }

  private check(operation: SecretOperation): void {
    if (!this.allowed.has(operation)) throw new SecretAccessDenied(`this function's role does not allow ${SECRET_OPERATION_ACTIONS[operation]} on the webhook secrets key`);
  }

  static newKey(): string {
    return randomBytes(32).toString('base64');
  }

  // async: every failure is a rejection, never a synchronous throw.
  async seal(plaintext: string, accountId: string): Promise<string> {
    this.check('seal');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(accountId, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${LOCAL_PREFIX}${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  async open(sealed: string, accountId: string): Promise<string> {
    this.check('open');
    if (!sealed.startsWith(LOCAL_PREFIX)) throw new Error('not sealed with the local key');
    const [ivText, bodyText] = sealed.slice(LOCAL_PREFIX.length).split('.');
    const iv = Buffer.from(ivText ?? '', 'base64url');
    const body = Buffer.from(bodyText ?? '', 'base64url');
    if (iv.length !== 12 || body.length < 16) throw new Error('malformed sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(accountId, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - 16));
    // final() throws when the key, the account or the bytes differ.
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
  }
}

/** AWS KMS Encrypt and Decrypt with the account id as encryption context. The client loads on first use. */
export class KmsSecretBox implements SecretBox {
  private client?: Promise<KMSClient>;

  constructor(private readonly keyArn: string) {}

  private kms() {
    this.client ??= import('@aws-sdk/client-kms').then(({ KMSClient }) => new KMSClient({}));
    return this.client;
  }

  async seal(plaintext: string, accountId: string): Promise<string> {
    const { EncryptCommand } = await import('@aws-sdk/client-kms');
    const out = await (await this.kms()).send(
      new EncryptCommand({ KeyId: this.keyArn, Plaintext: Buffer.from(plaintext, 'utf8'), EncryptionContext: { account_id: accountId } }),
    );
    if (!out.CiphertextBlob) throw new Error('KMS returned no ciphertext');
    return `${KMS_PREFIX}${Buffer.from(out.CiphertextBlob).toString('base64')}`;
  }

  async open(sealed: string, accountId: string): Promise<string> {
    if (!sealed.startsWith(KMS_PREFIX)) throw new Error('not sealed with KMS');
    const { DecryptCommand } = await import('@aws-sdk/client-kms');
    const out = await (await this.kms()).send(
      new DecryptCommand({
        KeyId: this.keyArn,
        CiphertextBlob: Buffer.from(sealed.slice(KMS_PREFIX.length), 'base64'),
        EncryptionContext: { account_id: accountId },
      }),
    );
    if (!out.Plaintext) throw new Error('KMS returned no plaintext');
    return Buffer.from(out.Plaintext).toString('utf8');
  }
}

/**
 * The local key when the runner gives one, else the stack's KMS key. With neither, a box whose every use
 * fails (the function still starts; only the webhook-secret paths refuse, with a 500).
 */
export function secretBoxFromEnv(env: NodeJS.ProcessEnv = process.env): SecretBox {
  const local = env[LOCAL_SECRETS_KEY_ENV];
  if (local) return new LocalSecretBox(local, parseOperations(env[LOCAL_SECRETS_OPERATIONS_ENV]));
  const arn = env[SECRETS_KEY_ARN_ENV];
  if (arn) return new KmsSecretBox(arn);
  const missing = () => Promise.reject(new Error(`neither ${SECRETS_KEY_ARN_ENV} nor ${LOCAL_SECRETS_KEY_ENV} is set: secrets cannot be sealed`));
  return { seal: missing, open: missing };
}

/** `KNOUDS_LOCAL_SECRETS_OPERATIONS`: unset is both; otherwise only those named (none when empty). */
function parseOperations(text: string | undefined): ReadonlySet<SecretOperation> {
  if (text === undefined) return new Set(['seal', 'open']);
  const named = text.split(',').map((t) => t.trim()).filter(Boolean);
  for (const name of named) if (name !== 'seal' && name !== 'open') throw new Error(`${LOCAL_SECRETS_OPERATIONS_ENV}: unknown operation '${name}' (seal, open)`);
  return new Set(named as SecretOperation[]);
}
