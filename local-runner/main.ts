/**
 * `npm start`: the whole Knouds API on this machine. Prints progress, then `Admin API key: <key>`, the
 * console's URL and `Console sign-in: demo@knouds.local <password>`, then one line per request. Ctrl-C
 * stops everything it started.
 *
 *   PORT=3000                 the API's port
 *   DYNAMODB_ENDPOINT=url     use this DynamoDB instead of starting DynamoDB Local
 *   --persist <dir>           keep DynamoDB Local's data, and the local provider's people and signing key
 *                             (<dir>/oidc/), in <dir> across restarts
 *   --skip-synth              serve the cloud assembly already in cdk.out (or --cdk-out <dir>)
 *   --quiet-logs              do not echo the functions' log lines
 *   --no-iam                  do not hold the functions to their roles' IAM policies (held by default: a
 *                             call a role does not allow fails with AccessDeniedException, as on AWS)
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { StartupError } from './dynamodb-local.js';
import { startLocalStack, type LocalStack } from './stack.js';
import { PROJECT_ROOT, STATE_FILE } from './state.js';

const USAGE = `Usage: npm start [-- --persist <dir>] [--skip-synth] [--cdk-out <dir>] [--quiet-logs] [--no-iam]
Environment: PORT (default 3000), DYNAMODB_ENDPOINT (use an existing DynamoDB instead of DynamoDB Local)`;

function fail(message: string): never {
  process.stderr.write(`\nnpm start: ${message}\n`);
  process.exit(1);
}

let args;
try {
  args = parseArgs({
    options: {
      persist: { type: 'string' },
      'skip-synth': { type: 'boolean', default: false },
      'cdk-out': { type: 'string' },
      'quiet-logs': { type: 'boolean', default: false },
      'no-iam': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (error) {
  fail(`${(error as Error).message}\n${USAGE}`);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const portText = process.env['PORT'] ?? '3000';
const port = Number(portText);
if (!/^\d+$/.test(portText) || port < 1 || port > 65535) fail(`PORT must be a port number (1-65535), got '${portText}'`);

const started = Date.now();
const say = (line: string) => process.stdout.write(`${line}\n`);
let stack: LocalStack | undefined;
let stopping = false;

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  say('\nStopping…');
  if (stack) say(stack.iam.summary());
  await stack?.close();
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  stack = await startLocalStack({
    port,
    ...(process.env['DYNAMODB_ENDPOINT'] ? { dynamodbEndpoint: process.env['DYNAMODB_ENDPOINT'] } : {}),
    ...(args.persist ? { persistDir: path.resolve(args.persist) } : {}),
    // Where the data outlives this run, so does the key that seals its webhook secrets.
    ...(args.persist
      ? { secretsKeyFile: path.join(path.resolve(args.persist), 'webhook-secrets.key') }
      : process.env['DYNAMODB_ENDPOINT']
        ? { secretsKeyFile: path.join(PROJECT_ROOT, '.knouds-secrets.key') }
        : {}),
    skipSynth: args['skip-synth'],
    ...(args['cdk-out'] ? { cdkOut: path.resolve(args['cdk-out']) } : {}),
    stateFile: STATE_FILE,
    onProgress: say,
    iam: !args['no-iam'],
    // Always shown, even with --quiet-logs: each is a grant missing from the template.
    onIamRefusal: (r) => say(`IAM refused: ${r.functionId} ${r.action} on ${r.resource} (${r.effect}${r.detail ? `: ${r.detail}` : ''})`),
    ...(args['quiet-logs'] ? {} : { onFunctionLog: (fn: string, line: string) => say(`  [${fn}] ${line}`) }),
    onAccessLog: (e) =>
      say(`${e.httpMethod} ${e.path} ${e.status} ${e.latencyMs}ms${e.errorType ? ` ${e.errorType}` : ''} (${e.requestId})`),
  });
} catch (error) {
  if (error instanceof StartupError) fail(error.message);
  fail(error instanceof Error ? (error.stack ?? error.message) : String(error));
}
if (stopping) process.exit(0);

// None when the demo account can hold no new key: start-up said why above.
if (stack.adminKey) say(`Admin API key: ${stack.adminKey}`);
say(`Console: ${stack.url}/`);
if (stack.demoPerson) say(`Console sign-in: ${stack.demoPerson.email} ${stack.demoPerson.password}`);
say(
  stack.iam.enabled
    ? 'IAM: each function is held to its role policies from the template (npm start -- --no-iam turns this off)'
    : 'IAM: not enforced (--no-iam): every function may call anything',
);
say(`Knouds API ready in ${((Date.now() - started) / 1000).toFixed(1)} s at ${stack.apiUrl}`);
say(`  curl ${stack.apiUrl}/health`);
say(`  curl -H "x-api-key: <the admin key>" ${stack.apiUrl}/keys/verify`);
say('Press Ctrl-C to stop.');
