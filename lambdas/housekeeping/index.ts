/**
 * Housekeeping Lambda (API.md §7), run by an EventBridge rule every `sweepInterval` (5 minutes by
 * default): one bounded run of services/housekeeping.ts `sweep` over every account, the slots of expired
 * keys released, overdue runs failed "timed out", and webhook secrets an earlier release kept in the clear
 * sealed in place. Any event runs it (the schedule's, or a manual
 * invocation); runs may overlap, every change is conditional. A run that stops on an error, or that
 * leaves a plaintext secret unsealed, throws after publishing what it did, so Lambda counts the error (the
 * stack's HousekeepingErrors alarm) and the next run continues. It is not reachable through the API.
 */
import type { Context } from 'aws-lambda';
import { createDocumentClient, TABLE_ENV } from '../shared/ddb.js';
import { requireEnv } from '../shared/env.js';
import { countMetric, log, METRIC, startInvocation } from '../shared/log.js';
import { AccountsRepository } from '../shared/repositories/accounts.js';
import { AuditRepository } from '../shared/repositories/audit.js';
import { ExecutionsRepository } from '../shared/repositories/executions.js';
import { KeysRepository } from '../shared/repositories/keys.js';
import { HOUSEKEEPING_RESERVE_MS } from '../shared/run-budget.js';
import { secretBoxFromEnv } from '../shared/secret-box.js';
import { settingsFromEnv } from '../shared/settings.js';
import { sweep, SweepStopped, type HousekeepingDeps, type SweepResult } from '../shared/services/housekeeping.js';

const doc = createDocumentClient();
const accountsTable = requireEnv(TABLE_ENV.accounts);
const deps: HousekeepingDeps = {
  keys: new KeysRepository(doc, { keys: requireEnv(TABLE_ENV.keys), accounts: accountsTable }),
  executions: new ExecutionsRepository(doc, requireEnv(TABLE_ENV.executions), accountsTable),
  // It only seals (kms:Encrypt): a plaintext secret of an earlier release, read by its scan.
  accounts: new AccountsRepository(doc, accountsTable, secretBoxFromEnv()),
  sealPlaintextSecrets: true,
  // Events kept `auditRetentionDays` (the stack's settings).
  audit: new AuditRepository(doc, requireEnv(TABLE_ENV.audit), settingsFromEnv().auditRetentionDays),
};

/** What a run did; `HousekeepingErrors` counts each run that failed once (stopped, or a secret left unsealed). */
function publish(run: SweepResult, stopped: boolean): void {
  countMetric(METRIC.housekeepingReleasedKeys, undefined, run.released_keys);
  countMetric(METRIC.housekeepingFailedExecutions, undefined, run.failed_executions);
  if (stopped || run.seal_failures > 0) countMetric(METRIC.housekeepingErrors);
}

/** A run that did all it could but left plaintext secrets unsealed: an error, thrown when all else is done. */
class SealFailures extends Error {
  override readonly name = 'SealFailures';
}

export async function handler(_event: unknown, context: Context): Promise<SweepResult> {
  startInvocation();
  const startBy = Date.now() + context.getRemainingTimeInMillis() - HOUSEKEEPING_RESERVE_MS;
  let run: SweepResult;
  try {
    run = await sweep(deps, { startBy });
  } catch (error) {
    if (error instanceof SweepStopped) publish(error.partial, true);
    else countMetric(METRIC.housekeepingErrors);
    const cause = error instanceof SweepStopped ? error.cause : error;
    log('error', 'housekeeping run stopped on an error; the next run continues', {
      request_id: context.awsRequestId,
      ...(error instanceof SweepStopped ? error.partial : {}),
      error: cause instanceof Error ? cause.name : 'Error',
      message: cause instanceof Error ? cause.message : String(cause),
    });
    throw error;
  }
  publish(run, false);
  log(run.seal_failures > 0 ? 'error' : 'info', 'housekeeping run', { request_id: context.awsRequestId, ...run });
  // A plaintext secret that could not be sealed stops nothing else, but is an error all the same, and the
  // function fails so that Lambda counts it: the HousekeepingErrors alarm watches the function's Errors (a
  // key policy or grant that drifted would otherwise go unseen). The next run tries again.
  if (run.seal_failures > 0) {
    throw new SealFailures(`${run.seal_failures} webhook secret(s) kept in the clear by an earlier release could not be sealed; the next run tries again`);
  }
  return run;
}
