/**
 * Once per `npm test`: synthesizes the CDK app into cdk.out.test (the bundles the end-to-end tests run)
 * and starts DynamoDB Local, unless DYNAMODB_ENDPOINT names one. Test files read the endpoint from
 * KNOUDS_TEST_DYNAMODB_ENDPOINT and create their own tables under a prefix of their own.
 * `KNOUDS_TEST_SKIP_SYNTH=1` reuses the assembly already in cdk.out.test (a quicker rerun of tests that
 * did not change the app).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDynamoDbLocal, waitForDynamoDb } from '../../local-runner/dynamodb-local.js';
import { synthesize } from '../../local-runner/stack.js';
import { TEST_CDK_OUT } from './paths.js';

/** Returns the teardown. */
export async function setup(): Promise<() => Promise<void>> {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  // This run's logs (the local stacks' and the in-process code's): global-log-reporter.mjs shows a failed
  // file's, and deletes the folder after a run without failure.
  process.env['KNOUDS_TEST_LOG_DIR'] = mkdtempSync(path.join(tmpdir(), 'knouds-test-logs-'));
  const given = process.env['DYNAMODB_ENDPOINT'];
  let stop = async () => {};
  const [endpoint] = await Promise.all([
    given
      ? waitForDynamoDb(given, 10_000).then(() => given)
      : startDynamoDbLocal().then((ddb) => {
          stop = ddb.stop;
          if (ddb.warning) process.stdout.write(`\nglobal setup: ${ddb.warning}\n`);
          return ddb.endpoint;
        }),
    // With the example model, so the tests cover a deployer's own model end to end.
    process.env['KNOUDS_TEST_SKIP_SYNTH'] === '1' && existsSync(path.join(TEST_CDK_OUT, 'manifest.json'))
      ? Promise.resolve()
      : synthesize(TEST_CDK_OUT, { exampleModel: 'true' }),
  ]);
  process.env['KNOUDS_TEST_DYNAMODB_ENDPOINT'] = endpoint;
  return stop;
}
