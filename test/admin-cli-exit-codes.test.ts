/**
 * The admin CLI's judgement of a failed write (admin-cli/exit-codes.ts `mayHaveLanded`): OUTCOME_UNKNOWN
 * ("look before trying again") wherever the functions would settle the outcome, never for a request that
 * surely went nowhere or was surely refused.
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { mayHaveLanded } from '../admin-cli/exit-codes.js';

const failure = (name: string, fields: Record<string, unknown>) => Object.assign(new Error(name), { name, ...fields });

describe('mayHaveLanded', () => {
  it.each([
    ['no answer (the SDK’s request timeout)', failure('TimeoutError', { $metadata: { attempts: 4 } })],
    ['a cut connection', failure('Error', { code: 'ECONNRESET' })],
    ['a 5xx', failure('InternalServerError', { $fault: 'server', $metadata: { httpStatusCode: 500, attempts: 4 } })],
    ['a transaction still in progress under its token', failure('TransactionInProgressException', { $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 1 } })],
    ['throttling after an earlier attempt (which may have landed)', failure('ThrottlingException', { $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 4 } })],
  ])('may have landed: %s', (_name, error) => {
    expect(mayHaveLanded(error)).toBe(true);
  });

  it.each([
    ['a connection refused (after retries)', failure('Error', { code: 'ECONNREFUSED', $metadata: { attempts: 3 } })],
    ['a name not found', failure('Error', { code: 'ENOTFOUND' })],
    ['an IAM refusal', failure('AccessDeniedException', { $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 1 } })],
    ['throttling on the only attempt', failure('ThrottlingException', { $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 1 } })],
    ['a cancelled transaction, even after retries', new TransactionCanceledException({ message: 'Transaction cancelled', $metadata: { httpStatusCode: 400, attempts: 3 }, CancellationReasons: [] })],
    ['no credentials', failure('CredentialsProviderError', {})],
  ])('surely did not land: %s', (_name, error) => {
    expect(mayHaveLanded(error)).toBe(false);
  });
});
