/**
 * Webhooks per the Standard Webhooks spec: `webhook-id`, `webhook-timestamp`, and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the account's
 * `whsec_<base64>` secret. Delivery goes only to https URLs whose every resolved address is public, that
 * is plain global unicast as classified by ipaddr.js (checked again when connecting, so DNS cannot swap
 * in a private address), retried with bounded exponential backoff. Each attempt has one deadline (5 s by
 * default) for all of it, DNS to the last byte of the answer, so a receiver that trickles its answer
 * cannot hold the worker.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
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

/**
 * IPv6 ranges ipaddr.js calls 'unicast' that are no public receiver; it names every other special range
 * itself (`range()`: private, linkLocal, uniqueLocal, ipv4Mapped, rfc6145, rfc6052, 6to4, teredo, …).
 */
const UNNAMED_IPV6: Record<string, [ipaddr.IPv6, number][]> = {
  // `::a.b.c.d` (RFC 4291 §2.5.5.1, deprecated): carries an IPv4 address like the mapped form.
  ipv4Compatible: [ipaddr.IPv6.parseCIDR('::/96')],
  // Deprecated by RFC 3879; ipaddr.js 2.5 names it `deprecatedSiteLocal`, earlier versions did not.
  siteLocal: [ipaddr.IPv6.parseCIDR('fec0::/10')],
};
/** IANA's global unicast space: everything else (`4000::/3`, …) is unallocated or special. */
const GLOBAL_UNICAST_IPV6 = ipaddr.IPv6.parseCIDR('2000::/3');

/**
 * The range an IP address falls in: ipaddr.js's name ('unicast', 'loopback', 'private', 'carrierGradeNat',
 * 'ipv4Mapped', 'rfc6052', '6to4', 'teredo', …) or one of `UNNAMED_IPV6`, 'notGlobalUnicast' for IPv6
 * outside 2000::/3, 'invalid' for anything `net.isIP` does not take (ipaddr.js alone would read '127.1'
 * or '0x7f000001' as an address). Only 'unicast' is a public receiver. No IPv6 form that embeds or
 * translates to an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo, SIIT) is 'unicast': they are
 * refused whatever IPv4 address they carry.
 */
function addressRange(address: string): string {
  if (isIP(address) === 0) return 'invalid';
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.parse(address);
  } catch {
    return 'invalid';
  }
  if (ip.kind() === 'ipv4') return ip.range();
  const v6 = ip as ipaddr.IPv6;
  const named = v6.range();
  if (named !== 'unicast') return named;
  // The module function: ipaddr.js 2.5 documents an instance `subnetMatch` but does not have one.
  const ours = ipaddr.subnetMatch(v6, UNNAMED_IPV6, 'unicast');
  if (ours !== 'unicast') return ours;
  return v6.match(GLOBAL_UNICAST_IPV6) ? 'unicast' : 'notGlobalUnicast';
}

/**
 * Whether a webhook may be sent to `address`: plain global unicast only; with `allowLoopback` (the local
 * runner), also 127.0.0.0/8 and ::1.
 */
export function isPublicAddress(address: string, allowLoopback = false): boolean {
  const range = addressRange(address);
  return range === 'unicast' || (allowLoopback && range === 'loopback');
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
    const what = bad ? `${bad}, ${addressRange(bad)}` : 'nothing';
    throw new WebhookUrlError(`must point to a public address (${host} resolves to ${what})`);
  }
  if (url.protocol === 'http:' && !addresses.every((a) => addressRange(a) === 'loopback')) {
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
