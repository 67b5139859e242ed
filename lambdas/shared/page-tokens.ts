/**
 * Page tokens (`next_token`, API.md §4): an opaque position that only the API can write. A token is the
 * position's JSON (with the list and the account it was issued for) in base64url, a dot, and an
 * HMAC-SHA256 of that text in base64url. A token the API did not issue (hand-made, altered, of an earlier
 * release), or issued for another list or account, is 400 VALIDATION_ERROR, whatever position it names.
 *
 * The MAC key is never stored anywhere. Deployed, it is what the stack's KMS HMAC key (`PAGE_TOKEN_KEY_ARN`)
 * answers `GenerateMac` over a fixed label: HMAC is deterministic, so every container derives the same key
 * with one KMS call, on its first page token, and keeps it in memory (a failed call is tried again on the
 * next request). The local runner has no KMS: it gives the functions whose template names the key 32 bytes
 * in `KNOUDS_LOCAL_PAGE_TOKEN_KEY` and they compute the same HMAC over the label; with IAM enforced,
 * `KNOUDS_LOCAL_PAGE_TOKEN_ALLOWED=false` says the role does not allow kms:GenerateMac, and the key is
 * refused as KMS would refuse it. With neither, a Lambda function fails every token (500: a key of its
 * own would make each container refuse the others' tokens); elsewhere (the admin CLI, tests that call the
 * services directly) the key is random for this process, its tokens good only within it, which is all
 * paging there needs.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ValidationError } from './errors.js';

export const PAGE_TOKEN_KEY_ARN_ENV = 'PAGE_TOKEN_KEY_ARN';
export const LOCAL_PAGE_TOKEN_KEY_ENV = 'KNOUDS_LOCAL_PAGE_TOKEN_KEY';
/** `false` when the function's role does not allow kms:GenerateMac on the key (the local runner's IAM check). */
export const LOCAL_PAGE_TOKEN_ALLOWED_ENV = 'KNOUDS_LOCAL_PAGE_TOKEN_ALLOWED';
/** The KMS action deriving the key: what the local runner asks the function's role about. */
export const PAGE_TOKEN_KEY_ACTION = 'kms:GenerateMac';
/** What the key derivation MACs: fixed, so every container derives the same key. */
export const PAGE_TOKEN_KEY_LABEL = 'knouds page tokens v1';

/** The lists that issue tokens: each token names its own, so one list never takes another's. */
export type PagedList = 'keys' | 'audit-events' | 'workflows' | 'workflow-versions' | 'models' | 'executions';

/** What KMS answers a call the caller's role does not allow. */
export class PageTokenKeyDenied extends Error {
  override readonly name = 'AccessDeniedException';
}

/** GenerateMac's stand-in: HMAC-SHA256 of the label under the local key material. */
export function localPageTokenKey(material: Buffer): Buffer {
  return createHmac('sha256', material).update(PAGE_TOKEN_KEY_LABEL).digest();
}

async function kmsPageTokenKey(keyArn: string): Promise<Buffer> {
  const { KMSClient, GenerateMacCommand } = await import('@aws-sdk/client-kms');
  // Bounded as the DynamoDB client is (ddb.ts): a call that gets no answer fails the request (and is tried
  // again by the next) instead of holding it, and every request after it, until Lambda's timeout.
  const kms = new KMSClient({ requestHandler: { connectionTimeout: 1000, requestTimeout: 1500, throwOnRequestTimeout: true } });
  try {
    const out = await kms.send(
      new GenerateMacCommand({ KeyId: keyArn, MacAlgorithm: 'HMAC_SHA_256', Message: Buffer.from(PAGE_TOKEN_KEY_LABEL, 'utf8') }),
    );
    if (out.Mac?.length !== 32) throw new Error('KMS returned no HMAC-SHA256 MAC');
    return Buffer.from(out.Mac);
  } finally {
    kms.destroy();
  }
}

/** The key as this process's environment says (the module's comment); every failure is a rejection. */
export async function pageTokenKeyFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  const local = env[LOCAL_PAGE_TOKEN_KEY_ENV];
  if (local) {
    if (env[LOCAL_PAGE_TOKEN_ALLOWED_ENV] === 'false') {
      throw new PageTokenKeyDenied(`this function's role does not allow ${PAGE_TOKEN_KEY_ACTION} on the page token key`);
    }
    const material = Buffer.from(local, 'base64');
    if (material.length !== 32) throw new Error(`${LOCAL_PAGE_TOKEN_KEY_ENV} must be 32 bytes of base64`);
    return localPageTokenKey(material);
  }
  const arn = env[PAGE_TOKEN_KEY_ARN_ENV];
  if (arn) return kmsPageTokenKey(arn);
  if (env['AWS_LAMBDA_FUNCTION_NAME']) throw new Error(`neither ${PAGE_TOKEN_KEY_ARN_ENV} nor ${LOCAL_PAGE_TOKEN_KEY_ENV} is set: this function cannot sign page tokens`);
  return randomBytes(32);
}

let cached: Promise<Buffer> | undefined;

/** This container's key: derived once; a failure is not kept, so the next request tries again. */
function pageTokenKey(): Promise<Buffer> {
  if (!cached) {
    const pending = pageTokenKeyFromEnv();
    cached = pending;
    pending.catch(() => {
      if (cached === pending) cached = undefined;
    });
  }
  return cached;
}

/** Forget the derived key (tests that change the environment). */
export function resetPageTokenKey(): void {
  cached = undefined;
}

const mac = (key: Buffer, body: string) => createHmac('sha256', key).update(body).digest();

/** A page token of `list` for `accountId`: an opaque position (string fields) that only this API can have written. */
export async function encodePageToken(list: PagedList, accountId: string, position: Record<string, string>): Promise<string> {
  if ('a' in position || 'l' in position) throw new Error('a page token position may not name the fields a and l: the token’s account and list');
  const body = Buffer.from(JSON.stringify({ ...position, a: accountId, l: list })).toString('base64url');
  return `${body}.${mac(await pageTokenKey(), body).toString('base64url')}`;
}

/** A MAC's length in base64url (32 bytes). */
const MAC_TEXT_LENGTH = 43;

/**
 * The position a page token of `list` names; 400 VALIDATION_ERROR for anything else: a token whose MAC
 * is not this deployment's (hand-made, altered, or of a release before tokens were signed), another list's
 * or another account's token, or one whose fields do not have the shape of what the API writes into its
 * tokens (`fields` gives each field's pattern: a second check, so nothing but a position the API wrote
 * reaches DynamoDB as a start key). A failure to derive the key is a 500, never a 400; a token that cannot
 * be one is 400 without the key.
 */
export async function decodePageToken<F extends string>(list: PagedList, token: string, accountId: string, fields: Readonly<Record<F, RegExp>>): Promise<Record<F, string>> {
  const [body, signature, ...rest] = token.split('.');
  if (body && signature?.length === MAC_TEXT_LENGTH && rest.length === 0) {
    // Compared as text, so each MAC has one spelling.
    const expected = Buffer.from(mac(await pageTokenKey(), body).toString('base64url'), 'utf8');
    const given = Buffer.from(signature, 'utf8');
    if (given.length === expected.length && timingSafeEqual(given, expected)) {
      try {
        const value = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
        const names = Object.keys(fields) as F[];
        if (value['a'] === accountId && value['l'] === list && names.every((f) => typeof value[f] === 'string' && fields[f].test(value[f]))) {
          return Object.fromEntries(names.map((f) => [f, value[f]])) as Record<F, string>;
        }
      } catch {
        // not base64url JSON: reported below
      }
    }
  }
  throw ValidationError.field('next_token', 'is not a valid page token');
}
