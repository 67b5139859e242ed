/**
 * Webhooks per the Standard Webhooks spec: `webhook-id`, `webhook-timestamp`, and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the account's
 * `whsec_<base64>` secret. Delivery goes only to https URLs whose every resolved address is public, that
 * is plain global unicast as classified by ipaddr.js (checked again when connecting, so DNS cannot swap
 * in a private address). This module makes one attempt: one POST with one deadline (5 s by default) for
 * all of it, DNS to the last byte of the answer, so a receiver that trickles its answer cannot hold the
 * sender. Retries are scheduled, not waited for (services/webhooks.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

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

/**
 * A DNS query's first try, of two (c-ares waits longer on the second): against a name server that never
 * answers, 2.7 s in all (measured with c-ares 1.34, Node 20.20; tries of 1 s took 3.9 s), which leaves
 * an attempt's 5 s room to connect and send.
 */
const DNS_TRY_MS = 700;

/**
 * The addresses of `host` (IPv4 and IPv6), asked of DNS by c-ares (node:dns's Resolver), which does its
 * own networking and can be cancelled. Not the operating system's resolver (dns.lookup): it runs on
 * libuv's pool of 4 threads and holds one until it gives up, so a tenant whose name server stops
 * answering queued every other lookup of the process behind its own (other accounts' webhooks failed at
 * their deadline, and the SDK's new connections waited too), and a lookup abandoned at the deadline went
 * on holding its thread. `localhost` and the names under it are loopback without asking (RFC 6761).
 * `signal` cancels the queries.
 */
async function resolveHost(host: string, signal?: AbortSignal): Promise<string[]> {
  if (isIP(host)) return [host];
  const name = host.toLowerCase().replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return ['127.0.0.1', '::1'];
  const resolver = new Resolver({ timeout: DNS_TRY_MS, tries: 2 });
  const cancel = () => resolver.cancel();
  if (signal?.aborted) throw signal.reason;
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
    const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addresses.length === 0) throw v4.status === 'rejected' ? v4.reason : new Error(`${host} has no address`);
    return addresses;
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}

/**
 * Checks a webhook URL when a run asks for one, and before each attempt: https, no credentials, every
 * resolved address public. `signal` cancels its DNS queries.
 */
export async function checkWebhookUrl(raw: string, signal?: AbortSignal): Promise<URL> {
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
    addresses = await resolveHost(host, signal);
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

/** A DNS lookup that refuses non-public addresses at connection time (DNS rebinding); `signal` cancels it. */
const guardedLookup = (signal: AbortSignal): LookupFunction => (hostname, options, callback) => {
  resolveHost(hostname, signal)
    .then((addresses) => {
      const local = allowLoopback();
      const all = addresses.map((address) => ({ address, family: isIP(address) }));
      const ok = all.filter((a) => isPublicAddress(a.address, local));
      if (ok.length === 0 || ok.length !== all.length) throw new WebhookUrlError(`${hostname} resolves to a non-public address`);
      if ((options as { all?: boolean }).all) (callback as (e: null, a: typeof ok) => void)(null, ok);
      else callback(null, ok[0]!.address, ok[0]!.family);
    })
    .catch((error: Error) => callback(error as NodeJS.ErrnoException, '', 0));
};

/** One attempt's outcome: `status` is the receiver's HTTP status, null when none came (network error, deadline, refused URL). */
export interface Delivery {
  readonly delivered: boolean;
  readonly status: number | null;
  /** Why no 2xx came, for the log: the receiver's status, or the error's message. */
  readonly reason?: string;
}

/** The deadline of one attempt: 5 s for all of it (API.md §4 "Webhook delivery"). */
export const WEBHOOK_ATTEMPT_TIMEOUT_MS = 5000;

export interface DeliveryOptions {
  /** The whole attempt's deadline (DNS, connect, TLS, sending, reading the answer), not an idle timeout. @default 5000 */
  readonly timeoutMs?: number;
}

/**
 * What of a receiver's answer body an attempt reads at the most: its status decides, the body is never
 * used. Past it the connection is closed and the status stands. Reading every byte let a receiver
 * streaming an endless answer pull 2.4 GB into the shared sender in 5 s (19 such attempts), slowing other
 * accounts' deliveries beside them from 45 ms to 859 ms.
 */
export const MAX_ANSWER_BODY_BYTES = 64 * 1024;

/**
 * POSTs and reads the answer (its body up to MAX_ANSWER_BODY_BYTES). `signal` ends it wherever it is (DNS,
 * connect, TLS, sending, or a receiver trickling its answer): the request is destroyed and the promise
 * rejects with the signal's reason.
 */
function post(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<number> {
  const options: RequestOptions = { method: 'POST', headers, lookup: guardedLookup(signal), signal };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return beforeDeadline(
    new Promise<number>((resolve, reject) => {
      const req = send(url, options, (res) => {
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
        // Settles nothing if the answer already ended.
        res.on('close', () => reject(new Error('the connection closed before the answer ended')));
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read <= MAX_ANSWER_BODY_BYTES) return;
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
      });
      req.on('error', reject);
      req.end(body);
    }),
    signal,
  );
}

/** `work`'s outcome, unless `signal` aborts first: then its reason (work that cannot be cancelled is left to finish unheard). */
function beforeDeadline<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** `webhook-signature`: one `v1,<signature>` per secret, space-separated (the spec allows several). */
export function signatures(secrets: readonly string[], id: string, timestamp: number, body: string): string {
  if (secrets.length === 0) throw new Error('no secret to sign the webhook with');
  return secrets.map((secret) => sign(secret, id, timestamp, body)).join(' ');
}

/**
 * One attempt: signs `body` with every secret and POSTs it. A 2xx within `timeoutMs` (the whole attempt,
 * the URL check's DNS lookup included) is a delivery; anything else (another status, a network error,
 * the deadline, a URL refused at send time) is not. Never throws.
 */
export async function deliverWebhook(
  rawUrl: string,
  secrets: readonly string[],
  messageId: string,
  body: string,
  options: DeliveryOptions = {},
): Promise<Delivery> {
  const { timeoutMs = WEBHOOK_ATTEMPT_TIMEOUT_MS } = options;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    const url = await beforeDeadline(checkWebhookUrl(rawUrl, deadline.signal), deadline.signal);
    const timestamp = Math.floor(Date.now() / 1000);
    const status = await post(
      url,
      {
        'content-type': 'application/json',
        'user-agent': 'Knouds-Webhooks/1',
        'webhook-id': messageId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatures(secrets, messageId, timestamp, body),
      },
      body,
      deadline.signal,
    );
    return status >= 200 && status < 300 ? { delivered: true, status } : { delivered: false, status, reason: `answered ${status}` };
  } catch (error) {
    return { delivered: false, status: null, reason: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
