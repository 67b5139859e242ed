/**
 * Idempotent retries (API.md §4 "Retries and idempotency"): a request sent with an `Idempotency-Key`
 * runs once; the same key with the same request within 24 h gets the first answer again, without the
 * work being done again. Plain functions over the idempotency repository; they know nothing of API
 * Gateway (the HTTP edge, http.ts, reads the header and the request and calls them).
 *
 * - A key is the caller's account's: the record's id is `<account_id>#<sha256(key)>`, never the key.
 * - The request's fingerprint covers the method, the route and its path parameters, the route's
 *   relevant query parameters, the calling key (so another key of the account, perhaps narrower, can
 *   never read a replay of the first key's answer: it gets 422) and the body, canonical (RFC 8785) when
 *   it is JSON, else its raw text.
 * - A 2xx answer is kept, and an error the route names as one that comes after its work was done
 *   (`Keeping.errors`: a model that ran and failed). Any other answer, or an error, deletes the record, so a
 *   retry runs again: a request that did nothing is not remembered (Stripe's rule for requests that
 *   failed validation or conflicted with another). An answer too large for an item, even gzipped, is not
 *   kept either.
 * - Fields named by the route (a key's plaintext `api_key`) are dropped from the kept answer.
 */
import { createHash, randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import canonicalize from 'canonicalize';
import { IdempotencyInProgressError, IdempotencyKeyReusedError, ValidationError } from '../errors.js';
import { IDEMPOTENCY_HEADER, IDEMPOTENCY_WINDOW_MS, REPLAYED_HEADER } from '../idempotency-contract.js';
import { log } from '../log.js';
import { jsonDepth, MAX_BODY_DEPTH } from '../references.js';
import type { TransactItem } from '../repositories/audit.js';
import type { IdempotencyRecord, IdempotencyRepository, StoredAnswer } from '../repositories/idempotency.js';

export { IDEMPOTENCY_HEADER, IDEMPOTENCY_WINDOW_MS, REPLAYED_HEADER };
/** The answer's headers that are kept and replayed (by lower-case name); the rate-limit headers are the replay's own. */
export const KEPT_HEADERS: readonly string[] = ['content-type', 'location', 'etag'];
/**
 * The largest gzipped body kept: a DynamoDB item holds 400 KB (409,600 bytes), names and values
 * together; the record's other attributes (id, fingerprint, owner, times, the kept headers) stay under
 * 2 KB, and the rest is left as margin.
 */
export const MAX_STORED_BODY_BYTES = 400 * 1024 - 8 * 1024;
/** Tries at taking a key whose record changes under us (released, or expiring, between the put and the read). */
const BEGIN_ATTEMPTS = 3;

export interface IdempotencyDeps {
  readonly records: IdempotencyRepository;
  readonly now?: () => Date;
}

const clock = (deps: IdempotencyDeps) => (deps.now ?? (() => new Date()))();

/**
 * The header's value: one value of 1–255 printable ASCII characters (0x20–0x7E), or 400 VALIDATION_ERROR
 * naming the header. `values` are every value the request carried under the name, in any case;
 * undefined when it carried none.
 */
export function checkIdempotencyKey(values: readonly string[]): string | undefined {
  if (values.length === 0) return undefined;
  if (values.length > 1) throw ValidationError.field(IDEMPOTENCY_HEADER, 'must be sent once');
  const key = values[0]!;
  if (!/^[\x20-\x7E]{1,255}$/.test(key)) throw ValidationError.field(IDEMPOTENCY_HEADER, 'must be 1 to 255 printable ASCII characters');
  return key;
}

/** What identifies a request, as the HTTP edge sees it. */
export interface RequestParts {
  readonly method: string;
  /** The route's path template (`/keys/{key_id}/rotate`); with `pathParameters`, the request path. */
  readonly route: string;
  readonly pathParameters: Readonly<Record<string, string | undefined>>;
  /** The route's relevant query parameters, each with every value it was given. */
  readonly query: Readonly<Record<string, readonly string[]>>;
  /** The calling key's id. */
  readonly principal: string;
  /** The body as text; undefined when empty. */
  readonly body: string | undefined;
}

/** The body as it counts for sameness: canonical JSON (RFC 8785) when it is JSON, else its raw text. */
function canonicalBody(body: string | undefined): { json: string } | { raw: string } | null {
  if (body === undefined || body.trim() === '') return null;
  try {
    const value = JSON.parse(body) as unknown;
    // Deeper than any body a route accepts: its text will do (and canonicalizing it costs nothing then).
    if (jsonDepth(value) <= MAX_BODY_DEPTH) {
      const json = canonicalize(value);
      if (json !== undefined) return { json };
    }
  } catch {
    // Not JSON, or not canonicalizable (a lone surrogate): the raw text.
  }
  return { raw: body };
}

/** sha256 (hex) of the request's identifying parts; equal for the same request whatever its key order or spacing. */
export function requestFingerprint(parts: RequestParts): string {
  const pathParameters = Object.fromEntries(Object.entries(parts.pathParameters).filter(([, v]) => v !== undefined));
  const canonical = canonicalize({
    method: parts.method,
    route: parts.route,
    path_parameters: pathParameters,
    query: parts.query,
    principal: parts.principal,
    body: canonicalBody(parts.body),
  });
  return createHash('sha256').update(canonical ?? '').digest('hex');
}

/** An answer, as the HTTP edge returns it. */
export interface Answer {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The record this request holds while it runs. */
export interface Attempt {
  readonly pk: string;
  readonly owner: string;
  readonly accountId: string;
}

export type Begun = { readonly attempt: Attempt } | { readonly replay: Answer };

export interface BeginInput {
  readonly accountId: string;
  readonly key: string;
  readonly fingerprint: string;
  /** How long this request may run at most (its function's time left), plus a margin for clock differences. */
  readonly leaseMs: number;
}

const recordId = (accountId: string, key: string) => `${accountId}#${createHash('sha256').update(key, 'utf8').digest('hex')}`;

function replayOf(record: IdempotencyRecord): Answer {
  return {
    statusCode: record.status ?? 200,
    headers: { ...record.headers, [REPLAYED_HEADER]: 'true' },
    body: record.body ? gunzipSync(record.body).toString('utf8') : '',
  };
}

/**
 * Takes the key for this request (`attempt`: run it, then `finish`), or answers from its record: the
 * kept answer (`replay`), 422 IDEMPOTENCY_KEY_REUSED for another request, 409 IDEMPOTENCY_IN_PROGRESS
 * while the first is in flight. Of concurrent first requests exactly one takes the key (one conditional
 * put). The put may land with its answer lost, and the SDK's retry then fails its condition on our own
 * record: the record names this attempt as its owner, so the request goes on.
 */
export async function beginIdempotent(deps: IdempotencyDeps, input: BeginInput): Promise<Begun> {
  const pk = recordId(input.accountId, input.key);
  const owner = `idem_${randomUUID()}`;
  for (let attempt = 1; ; attempt++) {
    const now = clock(deps);
    const nowMs = now.getTime();
    const taken = await deps.records.begin(
      {
        pk,
        state: 'in_progress',
        owner,
        fingerprint: input.fingerprint,
        lease_until: nowMs + input.leaseMs,
        expires_at: nowMs + IDEMPOTENCY_WINDOW_MS,
        created_at: now.toISOString(),
      },
      nowMs,
    );
    if (taken) return { attempt: { pk, owner, accountId: input.accountId } };
    const existing = await deps.records.get(pk);
    if (existing?.owner === owner) return { attempt: { pk, owner, accountId: input.accountId } };
    const live =
      existing !== undefined && existing.expires_at > nowMs && (existing.state === 'complete' || existing.lease_until >= nowMs);
    if (live) {
      if (existing.fingerprint !== input.fingerprint) throw new IdempotencyKeyReusedError();
      if (existing.state === 'in_progress') throw new IdempotencyInProgressError();
      log('info', 'idempotent replay', { account_id: input.accountId, status: existing.status ?? null });
      return { replay: replayOf(existing) };
    }
    // Released, expired or abandoned between our put and our read: try the put again.
    if (attempt >= BEGIN_ATTEMPTS) throw new IdempotencyInProgressError();
  }
}

/** The answer's kept headers, by their names as given. */
function keptHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => KEPT_HEADERS.includes(name.toLowerCase())));
}

/** The body without the top-level fields in `omit`; undefined when it is not a JSON object (so cannot be checked). */
function withoutFields(body: string, omit: readonly string[]): string | undefined {
  if (omit.length === 0) return body;
  try {
    const value = JSON.parse(body) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    const kept = Object.fromEntries(Object.entries(value).filter(([k]) => !omit.includes(k)));
    return JSON.stringify(kept);
  } catch {
    return undefined;
  }
}

/** What of an answer is kept: the top-level fields never kept (`omit`), and the error codes that are (`errors`). */
export interface Keeping {
  readonly omit?: readonly string[];
  readonly errors?: readonly string[];
}

/** Whether the answer is one to keep: a 2xx, or an error whose `code` is in `errors`. */
function isKept(answer: Answer, errors: readonly string[]): boolean {
  if (answer.statusCode >= 200 && answer.statusCode <= 299) return true;
  if (errors.length === 0 || answer.statusCode < 400) return false;
  try {
    const code = (JSON.parse(answer.body) as { code?: unknown }).code;
    return typeof code === 'string' && errors.includes(code);
  } catch {
    return false;
  }
}

/**
 * An answer as it is kept: its status, its kept headers and its body (without the `omit` fields)
 * gzipped. Or it is not kept: not one to keep (`notKept` null), or one that cannot be (why, for the log).
 */
function storedAnswer(answer: Answer, { omit = [], errors = [] }: Keeping): { stored: StoredAnswer } | { notKept: string | null; details?: Record<string, number> } {
  if (!isKept(answer, errors)) return { notKept: null };
  const body = withoutFields(answer.body, omit);
  // A body whose secret fields cannot be told apart is never kept.
  if (body === undefined) return { notKept: 'idempotency: an answer whose fields to leave out could not be found is not kept; a retry will run again' };
  const gzipped = gzipSync(Buffer.from(body, 'utf8'));
  if (gzipped.length > MAX_STORED_BODY_BYTES) {
    return {
      notKept: 'idempotency: the answer is too large to keep, even gzipped; a retry will run again',
      details: { body_bytes: Buffer.byteLength(body), gzipped_bytes: gzipped.length, limit_bytes: MAX_STORED_BODY_BYTES },
    };
  }
  return { stored: { status: answer.statusCode, headers: keptHeaders(answer.headers), body: gzipped } };
}

/**
 * The write that keeps `answer` for this request's key, for the transaction of the work itself: once
 * that commits, a retry gets this answer even if the request dies before `finishIdempotent` (after its
 * lease, it would otherwise run the work again: a second key). Undefined for an answer that is not kept
 * (finishIdempotent then releases the key as usual). The transaction is cancelled if another attempt
 * holds the key by then (this request outlived its lease).
 */
export function keepingItem(deps: IdempotencyDeps, attempt: Attempt, answer: Answer, keeping: Keeping = {}): TransactItem | undefined {
  const kept = storedAnswer(answer, keeping);
  return 'stored' in kept ? deps.records.completeItem(attempt.pk, attempt.owner, kept.stored, clock(deps)) : undefined;
}

/**
 * Ends this request's hold on the key: a 2xx answer, or an error `keeping.errors` names, is kept
 * (without the `keeping.omit` fields) for replays; any other answer releases the key. Never throws: the
 * answer goes to the client whatever happens here. A record that cannot be written stays in progress
 * until its lease ends, then a retry runs again.
 */
export async function finishIdempotent(deps: IdempotencyDeps, attempt: Attempt, answer: Answer, keeping: Keeping = {}): Promise<void> {
  const kept = storedAnswer(answer, keeping);
  if ('notKept' in kept) {
    if (kept.notKept) log('warn', kept.notKept, { account_id: attempt.accountId, status: answer.statusCode, ...kept.details });
    await releaseIdempotent(deps, attempt);
    return;
  }
  try {
    const done = await deps.records.complete(attempt.pk, attempt.owner, kept.stored, clock(deps));
    if (!done) {
      // Our lease passed and another attempt took the key (this request outlived its function's timeout).
      log('warn', 'idempotency: the key was taken by another attempt before this answer was kept', { account_id: attempt.accountId });
    }
  } catch (error) {
    log('error', 'idempotency: the answer could not be kept; the key stays in progress until its lease ends', {
      account_id: attempt.accountId,
      error: error instanceof Error ? error.name : String(error),
    });
  }
}

/** Gives the key up (the request failed): a retry runs again. Never throws; a record it cannot delete ends with its lease. */
export async function releaseIdempotent(deps: IdempotencyDeps, attempt: Attempt): Promise<void> {
  try {
    await deps.records.release(attempt.pk, attempt.owner);
  } catch (error) {
    log('error', 'idempotency: the key could not be released; it stays in progress until its lease ends', {
      account_id: attempt.accountId,
      error: error instanceof Error ? error.name : String(error),
    });
  }
}
