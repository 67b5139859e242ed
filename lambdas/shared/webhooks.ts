/**
 * Webhooks per the Standard Webhooks spec: `webhook-id`, `webhook-timestamp`, and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the account's
 * `whsec_<base64>` secret. Delivery goes only to https URLs whose every resolved address is public
 * (checked again when connecting, so DNS cannot swap in a private address), retried with bounded
 * exponential backoff. Each attempt has one deadline (5 s by default) for all of it, DNS to the last byte
 * of the answer, so a receiver that trickles its answer cannot hold the worker.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { log } from './log.js';

export const SECRET_PREFIX = 'whsec_';
/** Set by the local runner only: lets webhooks reach a receiver on this machine over http. */
export const ALLOW_LOOPBACK_ENV = 'KNOUDS_WEBHOOK_ALLOW_LOOPBACK';

export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString('base64');
}

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64], ['2001::', 23],
] as const) blocked.addSubnet(net, prefix, 'ipv6');

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** The IPv4 address an IPv6 address carries (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`), if any. */
function embeddedIPv4(address: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return m[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return undefined;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export function isPublicAddress(address: string, allowLoopback = false): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const v4 = family === 6 ? embeddedIPv4(address) : address;
  const [addr, type] = v4 ? [v4, 'ipv4' as const] : [address, 'ipv6' as const];
  if (allowLoopback && loopback.check(addr, type)) return true;
  return !blocked.check(addr, type);
}

export class WebhookUrlError extends Error {
  override readonly name = 'WebhookUrlError';
}

const allowLoopback = () => process.env[ALLOW_LOOPBACK_ENV] === 'true';

/** Checks a webhook URL when a run asks for one: https, no credentials, every resolved address public. */
export async function checkWebhookUrl(raw: string): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError('is not a URL');
  }
  const local = allowLoopback();
  if (url.username || url.password) throw new WebhookUrlError('must not carry credentials');
  if (url.protocol !== 'https:' && !(local && url.protocol === 'http:')) throw new WebhookUrlError('must be an https URL');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);
  } catch {
    throw new WebhookUrlError(`host '${host}' does not resolve`);
  }
  const bad = addresses.find((a) => !isPublicAddress(a, local));
  if (addresses.length === 0 || bad) {
    throw new WebhookUrlError(`must point to a public address (${host} resolves to ${bad ?? 'nothing'})`);
  }
  if (url.protocol === 'http:' && !addresses.every((a) => isPublicAddress(a, true) && !isPublicAddress(a, false))) {
    throw new WebhookUrlError('http is only accepted for loopback receivers (local mode)');
  }
  return url;
}

/** A DNS lookup that refuses non-public addresses at connection time (DNS rebinding). */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { all: true, verbatim: true })
    .then((all) => {
      const local = allowLoopback();
      const ok = all.filter((a) => isPublicAddress(a.address, local));
      if (ok.length === 0 || ok.length !== all.length) throw new WebhookUrlError(`${hostname} resolves to a non-public address`);
      if ((options as { all?: boolean }).all) (callback as (e: null, a: typeof ok) => void)(null, ok);
      else callback(null, ok[0]!.address, ok[0]!.family);
    })
    .catch((error: Error) => callback(error as NodeJS.ErrnoException, '', 0));
};

export interface Delivery {
  readonly delivered: boolean;
  readonly attempts: number;
  readonly lastStatus: number | null;
}

export interface DeliveryOptions {
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** The whole attempt's deadline (DNS, connect, TLS, sending, reading the answer), not an idle timeout. */
  readonly timeoutMs?: number;
}

/**
 * POSTs and reads the whole answer. `signal` ends it wherever it is (DNS, connect, TLS, sending, or a
 * receiver trickling its answer): the request is destroyed and the promise rejects with the signal's reason.
 */
function post(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<number> {
  const options: RequestOptions = { method: 'POST', headers, lookup: guardedLookup, signal };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return beforeDeadline(
    new Promise<number>((resolve, reject) => {
      const req = send(url, options, (res) => {
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
        // Settles nothing if the answer already ended.
        res.on('close', () => reject(new Error('the connection closed before the answer ended')));
        res.resume();
      });
      req.on('error', reject);
      req.end(body);
    }),
    signal,
  );
}

/** `work`'s outcome, unless `signal` aborts first: then its reason (work that cannot be cancelled, like a DNS lookup, is left to finish unheard). */
function beforeDeadline<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Signs and POSTs `payload`; retries non-2xx answers, network errors and attempts that do not end within
 * `timeoutMs`, with bounded backoff.
 */
export async function deliverWebhook(
  rawUrl: string,
  secret: string,
  messageId: string,
  payload: unknown,
  options: DeliveryOptions = {},
): Promise<Delivery> {
  const { maxAttempts = 5, baseDelayMs = 500, maxDelayMs = 8000, timeoutMs = 5000 } = options;
  const body = JSON.stringify(payload);
  let lastStatus: number | null = null;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    // One deadline for the whole attempt: the URL check's DNS lookup, connect, TLS, sending, and reading the answer.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      const url = await beforeDeadline(checkWebhookUrl(rawUrl), deadline.signal);
      const timestamp = Math.floor(Date.now() / 1000);
      lastStatus = await post(
        url,
        {
          'content-type': 'application/json',
          'user-agent': 'Knouds-Webhooks/1',
          'webhook-id': messageId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': sign(secret, messageId, timestamp, body),
        },
        body,
        deadline.signal,
      );
      if (lastStatus >= 200 && lastStatus < 300) return { delivered: true, attempts: attempt, lastStatus };
    } catch (error) {
      log('warn', 'webhook attempt failed', { message_id: messageId, attempt, error: (error as Error).message });
      if (error instanceof WebhookUrlError) return { delivered: false, attempts: attempt, lastStatus };
    } finally {
      clearTimeout(timer);
    }
    if (attempt < maxAttempts) await new Promise((r) => setTimeout(r, Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))));
  }
  return { delivered: false, attempts: maxAttempts, lastStatus };
}
