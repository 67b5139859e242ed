/**
 * Where the admin CLI works: the running local stack (found through the state file `npm start` writes),
 * or a deployed stack, found by name and region through its CloudFormation outputs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DOCUMENT_TRANSLATION, retryTransactionConflicts, type TableNames } from '../lambdas/shared/ddb.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { AuditRepository } from '../lambdas/shared/repositories/audit.js';
import { ExecutionsRepository } from '../lambdas/shared/repositories/executions.js';
import { KeysRepository } from '../lambdas/shared/repositories/keys.js';
import { MembershipsRepository } from '../lambdas/shared/repositories/memberships.js';
import { UsageRepository } from '../lambdas/shared/repositories/usage.js';
import type { HousekeepingDeps } from '../lambdas/shared/services/housekeeping.js';
import type { KeyServiceDeps } from '../lambdas/shared/services/keys.js';
import { resolveSettings, type Settings } from '../lambdas/shared/settings.js';
import { STACK_OUTPUTS } from '../lib/outputs.js';
import { LOCAL_CREDENTIALS } from '../local-runner/dynamodb-local.js';
import { LocalOidcAdminClient } from '../local-runner/oidc/admin-client.js';
import { STATE_FILE, type LocalState } from '../local-runner/state.js';
import type { MemberDeps } from './members.js';
import { cognitoPeople, localPeople, type PeopleDirectory } from './people.js';

/**
 * A DynamoDB call that gets no answer is given up after 5 s (the SDK's default is to wait forever): a hung
 * endpoint ends the command with an error (6, or 1 OUTCOME_UNKNOWN for a change) instead of hanging it.
 */
const REQUEST_HANDLER = { connectionTimeout: 2_000, requestTimeout: 5_000, throwOnRequestTimeout: true } as const;

export class TargetError extends Error {
  override readonly name = 'TargetError';
}

export interface Target {
  readonly description: string;
  readonly deps: KeyServiceDeps;
  /** The `user …` commands': the accounts, the memberships, and where people sign in. */
  readonly members: MemberDeps;
  /** `sweep`: the housekeeping's repositories, run here with the operator's credentials. */
  readonly housekeeping: HousekeepingDeps;
  close(): void;
}

function build(
  client: DynamoDBClient,
  tables: TableNames,
  settings: Settings,
  description: string,
  people: PeopleDirectory | undefined,
  closeMore: () => void = () => undefined,
): Target {
  retryTransactionConflicts(client);
  const doc = DynamoDBDocumentClient.from(client, DOCUMENT_TRANSLATION);
  const accounts = new AccountsRepository(doc, tables.accounts);
  // Every change the CLI makes records its event (actor: operator) in the change's transaction.
  const audit = new AuditRepository(doc, tables.audit, settings.auditRetentionDays);
  return {
    description,
    deps: {
      keys: new KeysRepository(doc, { keys: tables.keys, accounts: tables.accounts }),
      accounts,
      usage: new UsageRepository(doc, tables.usage),
      audit,
      settings,
    },
    members: { accounts, memberships: new MembershipsRepository(doc, tables.memberships), audit, people },
    housekeeping: {
      keys: new KeysRepository(doc, { keys: tables.keys, accounts: tables.accounts }),
      executions: new ExecutionsRepository(doc, tables.executions, tables.accounts),
      accounts,
      audit,
    },
    close: () => {
      client.destroy();
      closeMore();
    },
  };
}

function restartForLocalProvider(): never {
  throw new TargetError('The running npm start wrote no local provider into its state file; restart it with `npm start`.');
}

/** A state file from before the local provider: the `user` commands need `npm start` restarted. */
const noLocalProvider: PeopleDirectory = {
  description: 'no local provider',
  newPersonNote: '',
  ensurePerson: restartForLocalProvider,
  resetPassword: restartForLocalProvider,
};

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function localTarget(stateFile = STATE_FILE): Target {
  if (!existsSync(stateFile)) {
    throw new TargetError(
      'No local stack is running (no .knouds-local.json). Start one with `npm start`, ' +
        'or point at a deployed stack with --stack-name <name> --region <region>.',
    );
  }
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as LocalState;
  if (!isAlive(state.pid)) {
    throw new TargetError(`The local stack that wrote ${stateFile} (pid ${state.pid}) is not running. Start it with \`npm start\`.`);
  }
  const client = new DynamoDBClient({ endpoint: state.dynamodbEndpoint, region: state.region, credentials: LOCAL_CREDENTIALS, requestHandler: REQUEST_HANDLER });
  const people = state.oidc ? localPeople(new LocalOidcAdminClient(state.oidc), state.oidc.issuer) : noLocalProvider;
  return build(client, state.tables, state.settings, `local stack at ${state.apiUrl}`, people);
}

export async function awsTarget(stackName: string, region: string): Promise<Target> {
  const cfn = new CloudFormationClient({ region });
  let outputs: Record<string, string>;
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = out.Stacks?.[0];
    if (!stack) throw new TargetError(`Stack ${stackName} was not found in ${region}`);
    outputs = Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (error) {
    if (error instanceof TargetError) throw error;
    throw new TargetError(`Cannot read stack ${stackName} in ${region}: ${(error as Error).message}`);
  } finally {
    cfn.destroy();
  }
  const need = (name: string) => {
    const value = outputs[name];
    if (!value) throw new TargetError(`Stack ${stackName} has no ${name} output; is it a Knouds API stack?`);
    return value;
  };
  const tables: TableNames = {
    keys: need(STACK_OUTPUTS.keysTable),
    accounts: need(STACK_OUTPUTS.accountsTable),
    usage: need(STACK_OUTPUTS.usageTable),
    workflows: need(STACK_OUTPUTS.workflowsTable),
    executions: need(STACK_OUTPUTS.executionsTable),
    memberships: need(STACK_OUTPUTS.membershipsTable),
    idempotency: need(STACK_OUTPUTS.idempotencyTable),
    audit: need(STACK_OUTPUTS.auditTable),
  };
  const settings = resolveSettings(JSON.parse(need(STACK_OUTPUTS.settings)) as Settings);
  // With the stack's Cognito user pool, `user add` creates people there; without one (the deployer's own
  // provider), people are named by --subject.
  const userPoolId = outputs[STACK_OUTPUTS.userPoolId];
  const cognito = userPoolId ? new CognitoIdentityProviderClient({ region }) : undefined;
  return build(
    new DynamoDBClient({ region, requestHandler: REQUEST_HANDLER }),
    tables,
    settings,
    `stack ${stackName} in ${region}`,
    cognito && userPoolId ? cognitoPeople(cognito, userPoolId) : undefined,
    () => cognito?.destroy(),
  );
}
