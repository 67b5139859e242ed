/**
 * DynamoDB Local for tests: the endpoint the global setup started, and tables created from the
 * synthesized template under a prefix of the test file's own, so test files never share data.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DOCUMENT_TRANSLATION, type TableNames } from '../../lambdas/shared/ddb.js';
import { AccountsRepository } from '../../lambdas/shared/repositories/accounts.js';
import { AuditRepository } from '../../lambdas/shared/repositories/audit.js';
import { KeysRepository } from '../../lambdas/shared/repositories/keys.js';
import type { KeyServiceDeps } from '../../lambdas/shared/services/keys.js';
import { DEFAULT_SETTINGS, type Settings } from '../../lambdas/shared/settings.js';
import { STACK_OUTPUTS } from '../../lib/outputs.js';
import { LOCAL_CREDENTIALS } from '../../local-runner/dynamodb-local.js';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from '../../local-runner/stack.js';
import { ensureTables } from '../../local-runner/tables.js';
import { loadApiModel } from '../../local-runner/template.js';
import { TEST_CDK_OUT } from './paths.js';

export function testEndpoint(): string {
  const endpoint = process.env['KNOUDS_TEST_DYNAMODB_ENDPOINT'];
  if (!endpoint) throw new Error('KNOUDS_TEST_DYNAMODB_ENDPOINT is not set: run the tests with npm test');
  return endpoint;
}

/** A prefix no other test file (or run) uses. */
export function uniquePrefix(name: string): string {
  return `t-${name}-${randomBytes(4).toString('hex')}`;
}

export interface TestDb {
  readonly client: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;
  readonly tables: TableNames;
  /** The audit trail's repository (what account creations in test setups record their event with). */
  readonly audit: AuditRepository;
  deps(settings?: Settings, now?: () => Date): KeyServiceDeps;
  close(): void;
}

export async function createTestDb(name: string): Promise<TestDb> {
  const prefix = uniquePrefix(name);
  const model = loadApiModel(TEST_CDK_OUT, { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, tableNamePrefix: prefix });
  const client = new DynamoDBClient({ endpoint: testEndpoint(), region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  await ensureTables(client, model.tables);
  const doc = DynamoDBDocumentClient.from(client, DOCUMENT_TRANSLATION);
  const out = (n: string) => model.outputs[n]!;
  const tables: TableNames = {
    keys: out(STACK_OUTPUTS.keysTable),
    accounts: out(STACK_OUTPUTS.accountsTable),
    usage: out(STACK_OUTPUTS.usageTable),
    workflows: out(STACK_OUTPUTS.workflowsTable),
    executions: out(STACK_OUTPUTS.executionsTable),
    memberships: out(STACK_OUTPUTS.membershipsTable),
    idempotency: out(STACK_OUTPUTS.idempotencyTable),
    audit: out(STACK_OUTPUTS.auditTable),
  };
  const audit = new AuditRepository(doc, tables.audit, DEFAULT_SETTINGS.auditRetentionDays);
  return {
    client,
    doc,
    tables,
    audit,
    deps: (settings = DEFAULT_SETTINGS, now) => ({
      keys: new KeysRepository(doc, { keys: tables.keys, accounts: tables.accounts }),
      accounts: new AccountsRepository(doc, tables.accounts),
      audit: settings.auditRetentionDays === DEFAULT_SETTINGS.auditRetentionDays ? audit : new AuditRepository(doc, tables.audit, settings.auditRetentionDays),
      settings,
      ...(now ? { now } : {}),
    }),
    close: () => client.destroy(),
  };
}
