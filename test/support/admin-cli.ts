/**
 * The admin CLI as an operator runs it, for tests: against a local stack found through its state file,
 * or against a "deployed" stack (`--stack-name`, `--region`) whose CloudFormation and other AWS services
 * are a fake's endpoint (fake-aws.ts) and whose tables are DynamoDB Local's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LOCAL_CREDENTIALS } from '../../local-runner/dynamodb-local.js';
import { LOCAL_REGION, startLocalStack, type LocalStack } from '../../local-runner/stack.js';
import { testEndpoint, uniquePrefix } from './dynamodb.js';
import { TEST_CDK_OUT } from './paths.js';
import { runTs, type Finished } from './processes.js';

export interface CliStack {
  readonly stack: LocalStack;
  /** The state file the CLI finds the stack by (`KNOUDS_STATE_FILE`). */
  readonly stateFile: string;
  /** `npm run admin -- <args>` against this stack. */
  admin(...args: string[]): Promise<Finished>;
  close(): Promise<void>;
}

/** A local stack from the test assembly (unseeded) that writes its state file for the CLI. */
export async function startCliStack(name: string): Promise<CliStack> {
  const dir = mkdtempSync(path.join(tmpdir(), `knouds-${name}-`));
  const stateFile = path.join(dir, 'state.json');
  try {
    const stack = await startLocalStack({
      port: 0,
      cdkOut: TEST_CDK_OUT,
      skipSynth: true,
      dynamodbEndpoint: testEndpoint(),
      tableNamePrefix: uniquePrefix(name),
      seed: false,
      stateFile,
    });
    return {
      stack,
      stateFile,
      admin: (...args) => runTs('admin-cli/main.ts', args, { KNOUDS_STATE_FILE: stateFile }),
      close: async () => {
        await stack.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * `npm run admin -- <args> --stack-name <stackName> --region <local>` with the operator's credentials
 * only (no profile, no config file, no local state file), every AWS service at `awsEndpoint` but
 * DynamoDB, which is DynamoDB Local.
 */
export function deployedCli(awsEndpoint: string, stackName: string, args: readonly string[]): Promise<Finished> {
  return runTs('admin-cli/main.ts', [...args, '--stack-name', stackName, '--region', LOCAL_REGION], {
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    AWS_ENDPOINT_URL_CLOUDFORMATION: awsEndpoint,
    AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: awsEndpoint,
    AWS_ENDPOINT_URL_DYNAMODB: testEndpoint(),
    // Any Lambda call would go here, and the fake refuses what it does not know.
    AWS_ENDPOINT_URL_LAMBDA: awsEndpoint,
    KNOUDS_STATE_FILE: '/nonexistent/state.json',
  });
}
