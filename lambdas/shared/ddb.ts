import { randomUUID } from 'node:crypto';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, TransactWriteCommand, type QueryCommandInput, type TranslateConfig, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';

/**
 * How every DocumentClient of the codebase converts values. Numbers are JSON's (IEEE doubles: a body's
 * values are what `JSON.parse` made of them): one past ±2^53 (a 64-bit id sent as a number, a schema's
 * `maximum: 1e16`) is written as the double's own text, which the SDK refuses by default (a 500), and
 * read back as that double, where the SDK would make a BigInt that JSON cannot write. Magnitudes
 * DynamoDB cannot hold (≥ 1e126, or under 1e-130) are refused where values come in (`unstorableAt`).
 */
export const DOCUMENT_TRANSLATION: TranslateConfig = {
  marshallOptions: { removeUndefinedValues: true, allowImpreciseNumbers: true },
  unmarshallOptions: { wrapNumbers: (text: string) => Number(text) },
};

/**
 * A DocumentClient with the marshalling options and timeouts the whole codebase uses. Lambdas call it once at
 * module scope (one client per cold start); the admin CLI and the local runner pass their own config.
 * The endpoint comes from the standard `AWS_ENDPOINT_URL_DYNAMODB` when set, so the same bundle talks to
 * DynamoDB Local without a "local mode" branch.
 */
export function createDocumentClient(config: DynamoDBClientConfig = {}): DynamoDBDocumentClient {
  // A call that gets no answer is abandoned after 1.5 s (the SDK's default is to wait forever, and without
  // throwOnRequestTimeout it only warns) and retried like any transient fault (4 attempts, the SDK's
  // default for DynamoDB: about 6 s in all): a hung DynamoDB fails the request inside the functions' 10 s
  // timeout instead of holding it until Lambda kills the function.
  const client = new DynamoDBClient({ requestHandler: { connectionTimeout: 1000, requestTimeout: 1500, throwOnRequestTimeout: true }, ...config });
  retryTransactionConflicts(client);
  return DynamoDBDocumentClient.from(client, DOCUMENT_TRANSLATION);
}

/**
 * A plain write (PutItem, UpdateItem, DeleteItem) on an item that a transaction is writing at that moment
 * is refused with `TransactionConflictException`: it took no effect, and AWS advises sending it again,
 * but the SDK's retry strategy does not know the error. Marked retryable (`$retryable`, as the SDK marks a
 * modelled retryable error: a transient fault, with its short backoff), it is sent again within the
 * client's attempts (e.g. a deploy of a workflow while a PUT's transaction writes its head). Every client
 * of the code gets it: the functions' (createDocumentClient), the admin CLI's and the local runner's.
 * `singleAttemptClient` builds a client of its own without it, and makes one attempt whatever fails.
 */
export function retryTransactionConflicts(client: DynamoDBClient): void {
  // Inside the retry middleware (finalizeRequest, high priority), outside the deserializer: it sees the error as the SDK made it.
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (error instanceof Error && error.name === 'TransactionConflictException') Object.assign(error, { $retryable: {} });
        throw error;
      }
    },
    { step: 'finalizeRequest', priority: 'low', name: 'retryTransactionConflicts' },
  );
}

/**
 * A client on the same connections, endpoint, region and credentials as `doc` that makes one attempt per
 * call: for a write that must not be repeated when its answer is lost (the SDK's retry cannot know
 * whether the first attempt landed). Its caller retries only what surely did not land (throttling).
 */
export function singleAttemptClient(doc: DynamoDBDocumentClient): DynamoDBDocumentClient {
  const { region, credentials, endpoint, requestHandler } = doc.config;
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({ region, credentials, ...(endpoint ? { endpoint } : {}), requestHandler, maxAttempts: 1 } as DynamoDBClientConfig),
    DOCUMENT_TRANSLATION,
  );
}

/** DynamoDB refused the call for capacity: it did not take effect, so it may be tried again. */
export function isThrottled(error: unknown): boolean {
  return (
    error instanceof Error &&
    ['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'].includes(error.name)
  );
}

/** The table names a repository needs; Lambdas read them from their environment. */
export interface TableNames {
  readonly keys: string;
  readonly accounts: string;
  readonly usage: string;
  readonly workflows: string;
  readonly executions: string;
  readonly memberships: string;
  readonly idempotency: string;
  readonly audit: string;
}

export const TABLE_ENV: Readonly<Record<keyof TableNames, string>> = {
  keys: 'KEYS_TABLE',
  accounts: 'ACCOUNTS_TABLE',
  usage: 'USAGE_TABLE',
  workflows: 'WORKFLOWS_TABLE',
  executions: 'EXECUTIONS_TABLE',
  memberships: 'MEMBERSHIPS_TABLE',
  idempotency: 'IDEMPOTENCY_TABLE',
  audit: 'AUDIT_TABLE',
};

export function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** For a TransactionCanceledException: the reason code of each item, in request order. */
export function cancellationReasons(error: unknown): string[] | undefined {
  if (!(error instanceof Error) || error.name !== 'TransactionCanceledException') return undefined;
  const reasons = (error as Error & { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.map((r) => r.Code ?? 'None');
}

/**
 * Whether a write failed in a way that says nothing of whether it took effect: no answer at all (the
 * SDK's request timeout, a cut connection), a 5xx, a transaction still running under its token
 * (`TransactionInProgressException`), or any failure after more than one attempt, since an earlier
 * attempt may have landed (a timeout, then throttling). Only a cancelled transaction is sure after
 * several: a token's transaction that landed answers its later attempts with success. On a first
 * attempt, a throttled call and any other 4xx surely did not take effect.
 */
export function outcomeUnknown(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'TransactionInProgressException') return true;
  if (error.name === 'TransactionCanceledException') return false;
  const { $fault, $metadata } = error as { $fault?: 'client' | 'server'; $metadata?: { httpStatusCode?: number; attempts?: number } };
  if (($metadata?.attempts ?? 1) > 1) return true;
  // DynamoDB's own answers say whose fault: a client fault (4xx) did not take effect.
  if ($fault !== undefined) return $fault === 'server';
  const status = $metadata?.httpStatusCode;
  return status === undefined || status >= 500;
}

/** How often a transaction cancelled by another on the same item (`TransactionConflict`) is sent again. */
export const TRANSACTION_CONFLICT_RETRIES = 8;

/**
 * Whether a transaction was cancelled only because another one was writing an item it touches
 * (`TransactionConflict`, which the SDK does not retry): it did not take effect and may be sent again.
 * A condition that failed is the caller's to interpret, never a conflict.
 */
export function isTransactionConflict(error: unknown): boolean {
  const reasons = cancellationReasons(error);
  return reasons !== undefined && reasons.includes('TransactionConflict') && !reasons.includes('ConditionalCheckFailed');
}

/** The jittered wait before sending a conflicted transaction again (attempt 0, 1, …; at most 0.5 s). */
export const conflictBackoff = (attempt: number): Promise<void> => new Promise((r) => setTimeout(r, Math.random() * Math.min(500, 10 * 2 ** attempt)));

/**
 * One transaction; one cancelled by another on an item it touches (`TransactionConflict`) did not take
 * effect, and is sent again with jittered backoff. Any other failure, a failed condition included, is thrown.
 */
export async function transactWrite(
  doc: DynamoDBDocumentClient,
  input: TransactWriteCommandInput,
  /** Whether the transaction's effect is in place (one consistent read): when given, an unknown outcome is settled (settleTransaction). */
  landed?: (once: DynamoDBDocumentClient) => Promise<boolean>,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    // One token per attempt: the SDK sends it again with each of its retries, and so does settleTransaction.
    const token = randomUUID();
    try {
      await doc.send(new TransactWriteCommand({ ...input, ClientRequestToken: token }));
      return;
    } catch (error) {
      if (landed && outcomeUnknown(error)) {
        if ((await settleTransaction(doc, input.TransactItems ?? [], token, landed)) === 'landed') return;
      } else if (!isTransactionConflict(error)) throw error;
      if (attempt >= TRANSACTION_CONFLICT_RETRIES) throw error;
      await conflictBackoff(attempt);
    }
  }
}

/**
 * A transaction whose attempts (under `token`) ended without saying whether it took effect
 * (`outcomeUnknown`), where "did not happen" must not be assumed: the caller would fail, its
 * Idempotency-Key be released, and its retry do the work a second time (a second key, a second rotation
 * of a secret). `landed` (one consistent read) tells: true, it landed (its answers were lost). Not, or
 * the read failed, it is sent again with its token: DynamoDB applies a token's transaction once (for 10
 * minutes), so this lands it, finds it landed meanwhile, or fails as it would have, for the caller to
 * read. A transaction still running under the token is waited for (twice, briefly); one cancelled by
 * another's conflict is 'retry' (not applied, nothing runs under its token). One attempt per call here
 * (`singleAttemptClient`): the SDK's own attempts already took most of the function's time.
 */
export async function settleTransaction(
  doc: DynamoDBDocumentClient,
  items: NonNullable<TransactWriteCommandInput['TransactItems']>,
  token: string,
  landed: (once: DynamoDBDocumentClient) => Promise<boolean>,
): Promise<'landed' | 'retry'> {
  const once = singleAttemptClient(doc);
  if (await landed(once).catch(() => false)) return 'landed';
  for (let wait = 0; ; wait++) {
    try {
      await once.send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: token }));
      return 'landed';
    } catch (error) {
      if (isTransactionConflict(error)) return 'retry';
      if (!(error instanceof Error && error.name === 'TransactionInProgressException') || wait >= 2) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * (wait + 1)));
    }
  }
}

/** Contract §4: a list page holds at most 1 MB (fewer items, with a `next_token`). */
export const MAX_PAGE_BYTES = 1024 * 1024;
/** What a page's items may take of it: the rest is left for the envelope (`{"items":[…],"next_token":…}`). */
const PAGE_ITEMS_BYTES = MAX_PAGE_BYTES - 4 * 1024;

/**
 * One page of a Query with a FilterExpression, filled up to `limit` items (DynamoDB applies `Limit`
 * before the filter, so a single call can return fewer) and cut before the items' JSON would pass
 * 1 MB (each item counted as read, before any field is dropped: never less than what a reply shows);
 * it always holds at least one item when one matches. `more` says whether items follow: the page reads
 * one matching item past `limit` (in the same call when nothing is filtered) and only then says so, so
 * a full last page says nothing follows and no empty page ever comes after it (API.md §4). A page cut
 * by size says so too, and the caller's token, built from the last item returned, resumes right after it.
 */
/**
 * Items one list page may read (before filters): a filtered list of a long history answers a short (even
 * empty) page with a `next_token` rather than read on until the function times out.
 */
export const MAX_ITEMS_READ_PER_PAGE = 1000;
/**
 * Read units one list page may consume (DynamoDB's own count, asked with `ReturnConsumedCapacity`): 256
 * is about 2 MB read eventually consistent. The item bound alone let a page of a filtered list read 1,000
 * large items: a key limited to one workspace listing executions, 300 of 240 KB each in another, read
 * about 70 MB for an empty page (about 32,000 units and 250 calls on AWS, on the account's partition).
 * Past it the page is returned short, as past MAX_ITEMS_READ_PER_PAGE.
 */
export const MAX_READ_UNITS_PER_PAGE = 256;
/** How many items a filtered list reads per call. */
const FILTERED_READ_CHUNK = 100;

export async function queryPage(
  doc: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'Limit' | 'ExclusiveStartKey'>,
  limit: number,
  start?: Record<string, unknown>,
): Promise<{ items: Record<string, unknown>[]; more: boolean; resumeAfter?: Record<string, unknown> }> {
  const items: Record<string, unknown>[] = [];
  let bytes = 0;
  let read = 0;
  let units = 0;
  let from = start;
  do {
    // Unfiltered, read what the page needs. Filtered, read in chunks (a filter that matches little would
    // otherwise cost a round trip per item): items past the page are dropped, and the token resumes after
    // the last one returned, so none is skipped.
    // The page's items and the one after them, which only says whether anything follows.
    const wanted = limit + 1 - items.length;
    const chunk = input.FilterExpression ? Math.max(wanted, FILTERED_READ_CHUNK) : wanted;
    const out = await doc.send(
      new QueryCommand({
        ...input,
        Limit: Math.max(1, Math.min(chunk, MAX_ITEMS_READ_PER_PAGE - read)),
        ExclusiveStartKey: from,
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    read += out.ScannedCount ?? 0;
    units += out.ConsumedCapacity?.CapacityUnits ?? 0;
    for (const item of out.Items ?? []) {
      // One more match past a full page: something follows.
      if (items.length === limit) return { items, more: true };
      const size = Buffer.byteLength(JSON.stringify(item)) + 1;
      if (items.length > 0 && bytes + size > PAGE_ITEMS_BYTES) return { items, more: true };
      items.push(item);
      bytes += size;
    }
    from = out.LastEvaluatedKey;
    // A filter that matches little must not make one page read an account's whole history: past the
    // bounds (items, read units), the page is returned short, and its token resumes where the reading stopped.
    if (from && (read >= MAX_ITEMS_READ_PER_PAGE || units >= MAX_READ_UNITS_PER_PAGE)) return { items, more: true, resumeAfter: from };
  } while (from);
  return { items, more: false };
}
