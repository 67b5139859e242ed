/**
 * The whole stack on one machine: synthesizes the CDK app (or reads an existing cloud assembly), starts
 * DynamoDB Local (or uses DYNAMODB_ENDPOINT), creates the template's tables, runs each function's bundle in
 * isolated workers, and serves the template's API over HTTP. `npm start` (main.ts) and the tests use it.
 */
import { IDENTITY_PROVIDER_ENV, identityProviderEnvironment, type IdentityProviderConfig } from '../lambdas/shared/identity-provider.js';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { cpus } from 'node:os';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DOCUMENT_TRANSLATION, retryTransactionConflicts, type TableNames } from '../lambdas/shared/ddb.js';
import { ALLOW_LOOPBACK_ENV } from '../lambdas/shared/webhooks.js';
import { parseRetrySchedule, RETRY_SCHEDULE_ENV } from '../lambdas/shared/webhook-schedule.js';
import { ApiError, ConflictError, KeyLimitReachedError } from '../lambdas/shared/errors.js';
import { inForce, SCOPES } from '../lambdas/shared/capabilities.js';
import { AccountsRepository } from '../lambdas/shared/repositories/accounts.js';
import { KeysRepository } from '../lambdas/shared/repositories/keys.js';
import { AuditRepository, memberAddedEvent } from '../lambdas/shared/repositories/audit.js';
import { LOCAL_PAGE_TOKEN_ALLOWED_ENV, LOCAL_PAGE_TOKEN_KEY_ENV, PAGE_TOKEN_KEY_ACTION, PAGE_TOKEN_KEY_ARN_ENV } from '../lambdas/shared/page-tokens.js';
import { LOCAL_SECRETS_KEY_ENV, LOCAL_SECRETS_OPERATIONS_ENV, LocalSecretBox, SECRET_OPERATION_ACTIONS, SECRETS_KEY_ARN_ENV, type SecretOperation } from '../lambdas/shared/secret-box.js';
import { createAccount, createKey, revokeKey, type KeyServiceDeps } from '../lambdas/shared/services/keys.js';
import { SETTINGS_ENV, type Settings } from '../lambdas/shared/settings.js';
import { STACK_OUTPUTS } from '../lib/outputs.js';
import { LOCAL_CREDENTIALS, StartupError, startDynamoDbLocal, waitForDynamoDb, type DynamoDbLocal } from './dynamodb-local.js';
import { FunctionPool } from './functions.js';
import { startDynamoDbIamProxy, type DynamoDbCallObserver } from './iam/dynamodb-proxy.js';
import { IamEnforcer, type IamRefusal } from './iam/enforcer.js';
import { createGateway, type AccessLogEntry } from './gateway.js';
import { PROJECT_ROOT, type LocalState } from './state.js';
import { createLambdaApi } from './lambda-api.js';
import { MembershipsRepository } from '../lambdas/shared/repositories/memberships.js';
import { createConsoleSite } from './console-site.js';
import { isLocalOidcPath, localAuthorizerSettings, localConsoleClient, startLocalOidc, type LocalOidc } from './oidc/index.js';
import type { SigningIdentity } from './sigv4.js';
import { ensureTables } from './tables.js';
import { functionIdByName, loadApiModel, type LocalApiModel, type ScheduleDef } from './template.js';

// Node 20 is supported locally (Lambda runs 22+); the SDK's notice about it is noise here.
const QUIET_SDK_ENV = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } as const;
Object.assign(process.env, QUIET_SDK_ENV);

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT_ID = '000000000000';
export const DEMO_ACCOUNT_ID = 'acct_demo';
export const LOCAL_ADMIN_KEY_NAME = 'Local admin key (npm start)';

export interface LocalStackOptions {
  /** HTTP port of the API; 0 picks a free one. @default 3000 */
  readonly port?: number;
  /** Use this DynamoDB instead of starting DynamoDB Local. */
  readonly dynamodbEndpoint?: string;
  /** Told of every call through the functions' DynamoDB endpoint, the IAM proxy (`npm run bench` meters there; needs IAM on). */
  readonly dynamodbObserver?: DynamoDbCallObserver;
  /** Keep DynamoDB Local's data in this folder. */
  readonly persistDir?: string;
  /** Synthesize into this folder. @default <project>/cdk.out */
  readonly cdkOut?: string;
  /** Use the cloud assembly already in `cdkOut` instead of synthesizing. */
  readonly skipSynth?: boolean;
  /** Local table names are `<prefix>-<logical id>` (tests use one prefix each). @default the stack name */
  readonly tableNamePrefix?: string;
  /** Seed acct_demo and a fresh admin key. @default true */
  readonly seed?: boolean;
  /** Write the state file the admin CLI reads to this path (main.ts: STATE_FILE). @default none */
  readonly stateFile?: string;
  readonly onProgress?: (message: string) => void;
  /**
   * Keep the local key that seals webhook secrets (KMS stands in for it when deployed) in this file,
   * made (mode 0600) when missing, so secrets written in one run open in the next. @default a new key
   * in memory for each start (right for data that does not outlive the run)
   */
  readonly secretsKeyFile?: string;
  /** Extra environment for every function (e.g. `LOG_LEVEL`), over what Lambda and the template would give it. */
  readonly functionEnv?: Record<string, string>;
  /**
   * Whose access tokens the authorizer accepts (the local OpenID Connect provider's, by default once it
   * runs): written over the authorizer's IDENTITY_* variables, which the template fills for AWS.
   */
  readonly identity?: IdentityProviderConfig;
  /** Each log line a function writes. */
  readonly onFunctionLog?: (functionId: string, line: string) => void;
  readonly onAccessLog?: (entry: AccessLogEntry) => void;
  /** Deliver this share (0–1) of asynchronous invocations twice, as Lambda's at-least-once delivery may. @default 0 */
  readonly duplicateDeliveryRate?: number;
  /**
   * When the template's EventBridge schedules (`rate(...)` rules with Lambda targets) fire: on their own
   * rate (`'declared'`), with a minute lasting `everyMs` ms (tests: a rate(1 minute) rule every `everyMs`,
   * a rate(5 minutes) one every 5 × `everyMs`, never more often than `everyMs`), or only when
   * `runSchedules()` is called (`'manual'`).
   * @default 'declared'
   */
  readonly schedules?: 'declared' | 'manual' | { readonly everyMs: number };
  /**
   * The webhook retry delays in seconds, comma-separated (e.g. `1,1,2`), for every function: tests only
   * (`WEBHOOK_RETRY_SCHEDULE_SECONDS`; deployed, the schedule is 1 min to 10 h over more than a day).
   * @default the deployed schedule
   */
  readonly webhookRetrySchedule?: string;
  /**
   * Hold each function to its role's policies from the template: its DynamoDB calls (through a checking
   * proxy) and its Lambda API calls; a call the role does not allow fails with AccessDeniedException as on
   * AWS (`npm start -- --no-iam`: false). @default true
   */
  readonly iam?: boolean;
  /** Each call IAM refused (when `iam`), as it happens. */
  readonly onIamRefusal?: (refusal: IamRefusal) => void;
}

/** What IAM enforcement did in this run. */
export interface LocalIam {
  readonly enabled: boolean;
  /** The DynamoDB endpoint the functions use: the checking proxy (undefined when IAM is off). */
  readonly dynamodbEndpoint?: string;
  /** The calls refused so far, oldest first: all of them, or the newest 1,000 (`refusalCount` counts all). */
  refusals(): readonly IamRefusal[];
  /** How many calls were refused so far. */
  refusalCount(): number;
  /** One line for the runner's summary. */
  summary(): string;
}

export interface LocalStack {
  readonly url: string;
  readonly apiUrl: string;
  readonly dynamodbEndpoint: string;
  /** The Lambda API the functions call each other through (it serves only requests they signed). */
  readonly lambdaEndpoint: string;
  readonly model: LocalApiModel;
  readonly state: LocalState;
  /** The admin key printed at startup (when seeded). */
  readonly adminKey?: string;
  /** The local OpenID Connect provider at `<url>/oidc`: its settings for the authorizer and the console, its people. */
  readonly oidc: LocalOidc;
  /** `demo@knouds.local` with this start's password (when seeded); its subject is kept across --persist restarts. */
  readonly demoPerson?: { readonly subject: string; readonly email: string; readonly password: string };
  /** An SDK client on the stack's DynamoDB, for operators and tests. */
  readonly doc: DynamoDBDocumentClient;
  readonly iam: LocalIam;
  /**
   * Fires every schedule of the template now, each target invoked as EventBridge does (an asynchronous
   * invocation with a "Scheduled Event"); resolves when those invocations have ended.
   */
  runSchedules(): Promise<void>;
  /**
   * Resolves when no asynchronous invocation is in flight, Lambda's retries and those started meanwhile
   * included; rejects if some still are after `deadlineMs` (60 s by default).
   */
  asyncInvocationsSettled(deadlineMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Runs `cdk synth` with the project's pinned CLI, as `npx cdk deploy` would. */
export function synthesize(outDir: string, context: Record<string, string> = {}): Promise<void> {
  const cli = path.join(PROJECT_ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');
  return new Promise((resolve, reject) => {
    const contextArgs = Object.entries(context).flatMap(([k, v]) => ['--context', `${k}=${v}`]);
    const child = spawn(process.execPath, [cli, 'synth', '--quiet', '--no-notices', '--output', outDir, ...contextArgs], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true', CI: process.env['CI'] ?? 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new StartupError(`cdk synth failed (exit code ${code}):\n${output}`)),
    );
  });
}

/**
 * A browser asking for a page outside the API (`/v1`) and the sign-in (`/oidc`): the console's paths,
 * where a person would rather read a page than JSON.
 */
function wantsPage(req: IncomingMessage): boolean {
  const pathname = (req.url ?? '/').split('?')[0]!;
  if (/^\/(v1|oidc)(\/|$)/.test(pathname)) return false;
  return req.method === 'GET' && /\btext\/html\b/.test(String(req.headers.accept ?? ''));
}

/** The console's page while the stack starts or stops: the sentence, and a reload in 5 s. */
function startingPage(sentence: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>Knouds API is starting</title></head><body><main><h1>Knouds API is starting</h1><p>${sentence} This page reloads itself.</p></main></body></html>`;
}

function listen(server: Server, port: number): Promise<number> {
  // port 0: any free port
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE') {
        reject(new StartupError(`Port ${port} is already in use. Stop what is using it, or choose another: PORT=3001 npm start`));
      } else reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, '127.0.0.1');
  });
}

function tableNamesOf(model: LocalApiModel): TableNames {
  const byOutput = (name: string) => {
    const value = model.outputs[name];
    if (!value) throw new StartupError(`the template has no ${name} output`);
    return value;
  };
  return {
    keys: byOutput(STACK_OUTPUTS.keysTable),
    accounts: byOutput(STACK_OUTPUTS.accountsTable),
    usage: byOutput(STACK_OUTPUTS.usageTable),
    workflows: byOutput(STACK_OUTPUTS.workflowsTable),
    executions: byOutput(STACK_OUTPUTS.executionsTable),
    memberships: byOutput(STACK_OUTPUTS.membershipsTable),
    idempotency: byOutput(STACK_OUTPUTS.idempotencyTable),
    audit: byOutput(STACK_OUTPUTS.auditTable),
  };
}

/** The seeded admin key, or why there is none (said at start-up, which goes on without it). */
type Seeded = { readonly adminKey: string } | { readonly noAdminKey: string };

/**
 * acct_demo (tier business) if missing, and a fresh admin-scope key that replaces the previous start's
 * one. A persisted run may have moved the account to another tier, or filled it with keys: the key then
 * holds what the admin scope has within the tier's ceiling, and when no key can be made (the free tier,
 * or no free slot) start-up goes on without one and says what to do.
 */
async function seed(deps: KeyServiceDeps, now: Date): Promise<Seeded> {
  try {
    await createAccount(deps, DEMO_ACCOUNT_ID, 'business');
  } catch (error) {
    if (!(error instanceof ApiError && error.code === 'ALREADY_EXISTS')) throw error;
  }
  let token: string | undefined;
  do {
    const page = await deps.keys.listActive(DEMO_ACCOUNT_ID, now, 100, token);
    for (const key of page.items) {
      if (key.name === LOCAL_ADMIN_KEY_NAME) await revokeKey(deps, DEMO_ACCOUNT_ID, key.key_id);
    }
    token = page.nextToken ?? undefined;
  } while (token);
  const tier = (await deps.accounts.get(DEMO_ACCOUNT_ID))?.tier ?? 'business';
  const capabilities = inForce(SCOPES.admin, deps.settings.tiers[tier].ceiling);
  if (capabilities.length === 0) {
    const setTier = `npm run admin -- account set-tier --id ${DEMO_ACCOUNT_ID} --tier business`;
    return { noAdminKey: `${DEMO_ACCOUNT_ID} is on the ${tier} tier, which has no API keys (${setTier} gives it one at the next start)` };
  }
  try {
    const body = capabilities.length === SCOPES.admin.length ? { scope: 'admin' } : { capabilities };
    return { adminKey: (await createKey(deps, DEMO_ACCOUNT_ID, { name: LOCAL_ADMIN_KEY_NAME, ...body })).apiKey };
  } catch (error) {
    if (!(error instanceof KeyLimitReachedError)) throw error;
    return {
      noAdminKey: `${DEMO_ACCOUNT_ID} holds ${error.active} active keys, its limit (npm run admin -- key revoke <key_id> frees a slot for the next start)`,
    };
  }
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const progress = options.onProgress ?? (() => {});
  const cleanups: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // keep closing the rest
      }
    }
    cleanups.length = 0;
  };
  try {
    if (options.webhookRetrySchedule !== undefined) {
      try {
        parseRetrySchedule(options.webhookRetrySchedule);
      } catch (error) {
        throw new StartupError((error as Error).message);
      }
    }
    const schedulesOption = options.schedules ?? 'declared';
    if (typeof schedulesOption === 'object' && !(Number.isInteger(schedulesOption.everyMs) && schedulesOption.everyMs >= 10)) {
      throw new StartupError(`schedules.everyMs must be an integer of at least 10, got ${schedulesOption.everyMs}`);
    }
    // The server listens first, before any other work: a busy port is said at once, not after the synth
    // and DynamoDB Local; and its origin names the local OpenID Connect provider, which the authorizer is
    // given before it starts. Requests are answered 503 until the handlers below are in place. The
    // provider shares the server (one origin).
    let serve: RequestListener | undefined = undefined;
    let oidc: LocalOidc | undefined = undefined;
    const server = createServer({ keepAlive: true, keepAliveTimeout: 5000 }, (req, res) => {
      if (serve) return serve(req, res);
      // Still starting (the synth and DynamoDB Local take up to a minute), or stopping: a local state, never an answer of the API.
      const requestId = randomUUID();
      const sentence = 'The local stack is starting (or stopping): try again in a few seconds.';
      if (wantsPage(req)) {
        // A browser opening the console that early: a page that says so and reloads itself.
        res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'retry-after': '5', 'x-request-id': requestId, 'cache-control': 'no-store' });
        res.end(startingPage(sentence));
        return;
      }
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5', 'x-request-id': requestId });
      res.end(JSON.stringify({ error: sentence, code: 'SERVICE_UNAVAILABLE', request_id: requestId }));
    });
    // A request Node's parser refuses (a byte outside ASCII in the URL, as a pasted `…` sends; a broken
    // header) is answered as every error is, a JSON body with a request id, not Node's bare 400.
    // As Node's own handler: nothing is written once an answer has begun on the socket, and a request that
    // timed out or whose headers are too large keeps Node's status (408, 431), in words that say so.
    server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
      if (error.code === 'ECONNRESET' || !socket.writable || answering) {
        socket.destroy();
        return;
      }
      const [status, sentence] =
        error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['408 Request Timeout', 'The request did not arrive in time.']
          : error.code === 'HPE_HEADER_OVERFLOW'
            ? ['431 Request Header Fields Too Large', 'The request headers are too large.']
            : ['400 Bad Request', 'The request could not be read: characters outside ASCII in the URL must be percent-encoded, and headers must be well formed.'];
      const requestId = randomUUID();
      const body = JSON.stringify({ error: sentence, code: 'VALIDATION_ERROR', request_id: requestId, details: [] });
      socket.end(
        `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\nx-request-id: ${requestId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    const port = await listen(server, options.port ?? 3000);
    let serverClosed: Promise<void> | undefined;
    const closeServer = () =>
      (serverClosed ??= new Promise<void>((resolve) => {
        serve = undefined;
        server.close(() => resolve());
        server.closeAllConnections();
      }));
    cleanups.push(closeServer);
    const cdkOut = options.cdkOut ?? path.join(PROJECT_ROOT, 'cdk.out');
    if (!options.skipSynth) {
      progress('Synthesizing the CDK app (cdk synth, bundling the functions with esbuild)…');
      await synthesize(cdkOut);
    } else if (!existsSync(path.join(cdkOut, 'manifest.json'))) {
      throw new StartupError(`no cloud assembly in ${cdkOut}; run npx cdk synth first`);
    }
    const model = loadApiModel(cdkOut, {
      region: LOCAL_REGION,
      accountId: LOCAL_ACCOUNT_ID,
      ...(options.tableNamePrefix ? { tableNamePrefix: options.tableNamePrefix } : {}),
    });

    let endpoint = options.dynamodbEndpoint;
    if (endpoint) {
      progress(`Using DynamoDB at ${endpoint}…`);
      await waitForDynamoDb(endpoint, 10_000);
    } else {
      progress(options.persistDir ? `Starting DynamoDB Local (data in ${options.persistDir})…` : 'Starting DynamoDB Local (in memory)…');
      const ddb: DynamoDbLocal = await startDynamoDbLocal(options.persistDir ? { dataDir: options.persistDir } : {});
      cleanups.push(() => ddb.stop());
      endpoint = ddb.endpoint;
      // Its port is open to the network (the loopback launcher could not run): say so, once.
      if (ddb.warning) progress(ddb.warning);
    }
    const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    retryTransactionConflicts(client);
    cleanups.push(() => client.destroy());
    const doc = DynamoDBDocumentClient.from(client, DOCUMENT_TRANSLATION);

    progress(`Creating ${model.tables.length} tables…`);
    await ensureTables(client, model.tables);

    const tables = tableNamesOf(model);
    const settings = JSON.parse(
      [...model.functions.values()].map((f) => f.environment[SETTINGS_ENV]).find(Boolean) ?? 'null',
    ) as Settings | null;
    if (!settings) throw new StartupError(`no function of the template carries ${SETTINGS_ENV}`);

    // What Lambda's environment gives every function, pointed at the local DynamoDB.
    const baseEnv: Record<string, string> = {
      AWS_REGION: LOCAL_REGION,
      AWS_DEFAULT_REGION: LOCAL_REGION,
      // The secret key and a session token are each function's own (below).
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      TZ: 'UTC',
      LANG: 'en_US.UTF-8',
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      ...QUIET_SDK_ENV,
      ...(options.webhookRetrySchedule !== undefined ? { [RETRY_SCHEDULE_ENV]: options.webhookRetrySchedule } : {}),
      ...options.functionEnv,
    };
    // The Lambda API the functions call each other through. It never closes a caller's idle connection
    // (keepAliveTimeout 0): the functions' SDK would race that close with its next request (see
    // iam/dynamodb-proxy.ts).
    const lambdaServer = createServer({ keepAlive: true, keepAliveTimeout: 0 });
    const lambdaPort = await listen(lambdaServer, 0);
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          lambdaServer.close(() => resolve());
          lambdaServer.closeAllConnections();
        }),
    );
    const lambdaEndpoint = `http://127.0.0.1:${lambdaPort}`;
    baseEnv['AWS_ENDPOINT_URL_LAMBDA'] = lambdaEndpoint;
    // Locally, webhooks may go to a receiver on this machine (deployed, only public https URLs).
    baseEnv[ALLOW_LOOPBACK_ENV] = 'true';

    const url = `http://localhost:${port}`;
    const apiUrl = `${url}/${model.stageName}`;
    const local = localAuthorizerSettings(url, apiUrl);
    const sessions: IdentityProviderConfig = options.identity ?? {
      tokenUse: 'rfc9068',
      issuer: local.issuer,
      clientId: local.clientId,
      audience: local.audience,
      jwksUri: local.jwksUri,
    };

    const onLog = options.onFunctionLog;
    const pools = new Map<string, FunctionPool>();
    // Instances per function: enough for the machine's cores; more would only queue on the CPU.
    const maxInstances = Math.max(8, cpus().length * 4);
    // Each function signs with credentials of its own, as a Lambda role's session would: the Lambda API
    // serves only requests signed with one of them. With IAM enforced, the access key id is the function's
    // logical id, so the DynamoDB proxy knows the caller (and forwards with LOCAL_CREDENTIALS' one key id);
    // without, it stays LOCAL_CREDENTIALS' for all: DynamoDB Local without -sharedDb keeps one database per
    // access key id (and region).
    const iamEnabled = options.iam ?? true;
    const callers = new Map<string, SigningIdentity>();
    const enforcer = iamEnabled
      ? new IamEnforcer(model, { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, ...(options.onIamRefusal ? { onRefusal: options.onIamRefusal } : {}) })
      : undefined;
    for (const warning of enforcer?.warnings ?? []) progress(`IAM: ${warning}`);
    let iamEndpoint: string | undefined;
    if (options.dynamodbObserver && !enforcer) throw new StartupError('a DynamoDB observer needs the IAM proxy: IAM enforcement is off');
    if (enforcer) {
      const tableKeys = new Map(
        model.tables.map((t) => [t.tableName, { partitionKey: t.keySchema.find((k) => k.KeyType === 'HASH')?.AttributeName ?? '' }]),
      );
      const proxy = await startDynamoDbIamProxy({
        upstream: endpoint,
        callers,
        runnerCredentials: LOCAL_CREDENTIALS,
        target: { region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, table: (name) => tableKeys.get(name) },
        enforcer,
        onLog: (line) => onLog?.('dynamodb-iam', line),
        ...(options.dynamodbObserver ? { observer: options.dynamodbObserver } : {}),
      });
      cleanups.push(() => proxy.close());
      iamEndpoint = proxy.endpoint;
      baseEnv['AWS_ENDPOINT_URL_DYNAMODB'] = proxy.endpoint;
    }
    // The stand-in for the webhook secrets' KMS key: given only to the functions the template gives the
    // key's ARN, and (IAM enforced) only for the operations their role allows with an account id as the
    // encryption context, as KMS would check them.
    const secretsKey = localSecretsKey(options.secretsKeyFile);
    const secretsEnvOf = (fn: { logicalId: string; environment: Record<string, string> }): Record<string, string> => {
      const keyArn = fn.environment[SECRETS_KEY_ARN_ENV];
      if (!keyArn) return {};
      if (!enforcer) return { [LOCAL_SECRETS_KEY_ENV]: secretsKey };
      const context = new Map([
        ['kms:encryptioncontextkeys', ['account_id']],
        ['kms:encryptioncontext:account_id', ['acct_local']],
      ]);
      const allowed = (Object.keys(SECRET_OPERATION_ACTIONS) as SecretOperation[]).filter((op) =>
        enforcer.allows(fn.logicalId, { action: SECRET_OPERATION_ACTIONS[op], resource: keyArn, context }),
      );
      return { [LOCAL_SECRETS_KEY_ENV]: secretsKey, [LOCAL_SECRETS_OPERATIONS_ENV]: allowed.join(',') };
    };
    // The stand-in for the page tokens' KMS HMAC key, the same way: key material (derived from the local
    // secrets key, so tokens outlive a restart as the secrets do) for the functions the template gives the
    // key's ARN, and (IAM enforced) whether their role allows kms:GenerateMac on it.
    const pageTokenMaterial = createHmac('sha256', Buffer.from(secretsKey, 'base64')).update('knouds local page token key').digest('base64');
    const pageTokenEnvOf = (fn: { logicalId: string; environment: Record<string, string> }): Record<string, string> => {
      const keyArn = fn.environment[PAGE_TOKEN_KEY_ARN_ENV];
      if (!keyArn) return {};
      const allowed = !enforcer || enforcer.allows(fn.logicalId, { action: PAGE_TOKEN_KEY_ACTION, resource: keyArn, context: new Map() });
      return { [LOCAL_PAGE_TOKEN_KEY_ENV]: pageTokenMaterial, ...(allowed ? {} : { [LOCAL_PAGE_TOKEN_ALLOWED_ENV]: 'false' }) };
    };
    const authorizerFunctions = new Set([...model.authorizers.values()].map((a) => a.functionId));
    // Every variable written, empty when unset, so none of the template's deployed values is left behind.
    const identityEnv = { ...Object.fromEntries(Object.values(IDENTITY_PROVIDER_ENV).map((name) => [name, ''])), ...identityProviderEnvironment(sessions) };
    for (const template of model.functions.values()) {
      // The authorizer's identity provider is this machine's (the template names the deployed one).
      const def = authorizerFunctions.has(template.logicalId) ? { ...template, environment: { ...template.environment, ...identityEnv } } : template;
      const identity: SigningIdentity = {
        name: def.logicalId,
        accessKeyId: iamEnabled ? def.logicalId : LOCAL_CREDENTIALS.accessKeyId,
        secretAccessKey: randomBytes(30).toString('base64'),
        sessionToken: randomBytes(48).toString('base64'),
      };
      callers.set(identity.sessionToken, identity);
      const env = { ...baseEnv, ...secretsEnvOf(def), ...pageTokenEnvOf(def), AWS_ACCESS_KEY_ID: identity.accessKeyId, AWS_SECRET_ACCESS_KEY: identity.secretAccessKey, AWS_SESSION_TOKEN: identity.sessionToken };
      // `functionEnv` goes over the template's own variables too (a test's settings, a log level).
      const withOverrides = options.functionEnv ? { ...def, environment: { ...def.environment, ...options.functionEnv } } : def;
      pools.set(def.logicalId, new FunctionPool(withOverrides, env, onLog, maxInstances));
    }
    cleanups.push(() => Promise.all([...pools.values()].map((p) => p.close())).then(() => undefined));
    const invoke = (functionId: string, event: unknown) => {
      const pool = pools.get(functionId);
      if (!pool) return Promise.reject(new Error(`no bundled function ${functionId}`));
      return pool.invoke(event);
    };

    const lambdaApi = createLambdaApi({
      invoke,
      resolve: (name) => {
        const id = functionIdByName(name);
        return pools.has(id) ? id : undefined;
      },
      callers,
      region: LOCAL_REGION,
      // A failed asynchronous invocation is retried as the function's EventInvokeConfig says (housekeeping
      // and the webhook sender: never; the worker: twice).
      asyncRetryAttempts: (functionId) => model.functions.get(functionId)?.asyncRetryAttempts,
      ...(enforcer
        ? {
            authorize: (caller: SigningIdentity, name: string) => {
              // The ARN IAM checks: the name as given (an ARN, or a name: `local-<id>` is function <id> here).
              const resource = (name.startsWith('arn:') ? name : `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:function:${name}`).replace(/(:function:)local-/, '$1');
              const decision = enforcer.authorize(caller.name, { action: 'lambda:InvokeFunction', resource, context: new Map() });
              return decision.ok ? undefined : decision.refusal.message;
            },
          }
        : {}),
      ...(options.duplicateDeliveryRate ? { duplicateDeliveryRate: options.duplicateDeliveryRate } : {}),
      onLog: (line) => onLog?.('lambda-api', line),
    });
    lambdaServer.on('request', lambdaApi.handler);

    // EventBridge: each rule's targets, invoked asynchronously (as EventBridge invokes Lambda) with a
    // "Scheduled Event", on the rule's rate or the option's.
    for (const u of model.unsupported) progress(`Not run locally: ${u.logicalId}: ${u.reason}`);
    // `everyMs` stands for a minute: a rate(1 minute) rule fires that often, a rate(5 minutes) one 5 times less.
    const periodOf = (rule: ScheduleDef) =>
      typeof schedulesOption === 'object' ? Math.max(schedulesOption.everyMs, Math.round((schedulesOption.everyMs * rule.rateMs) / 60_000)) : rule.rateMs;
    for (const rule of model.schedules) {
      const when = schedulesOption === 'manual' ? 'when asked' : typeof schedulesOption === 'object' ? `every ${periodOf(rule)} ms` : rule.expression;
      progress(`Schedule ${rule.logicalId}: ${rule.targets.map((t) => t.functionId).join(', ')}, ${when}`);
    }
    const fire = (rule: ScheduleDef): Promise<void> => {
      const time = new Date();
      time.setMilliseconds(0);
      const scheduled = {
        version: '0',
        id: randomUUID(),
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account: LOCAL_ACCOUNT_ID,
        time: time.toISOString().replace('.000Z', 'Z'),
        region: LOCAL_REGION,
        resources: [rule.ruleArn],
        detail: {},
      };
      return Promise.all(
        rule.targets.map((target) => lambdaApi.invokeAsync(target.functionId, `${rule.logicalId} → ${target.functionId}`, target.input ?? scheduled)),
      ).then(() => undefined);
    };
    const runSchedules = () => Promise.all(model.schedules.map(fire)).then(() => undefined);
    if (schedulesOption !== 'manual') {
      for (const rule of model.schedules) {
        // A tick while the rule's last run is still going is skipped: on a slow machine, a short `everyMs`
        // would otherwise pile up runs of every schedule (the webhook sender, housekeeping) without bound.
        let running = false;
        const tick = () => {
          if (running) return;
          running = true;
          void fire(rule).finally(() => (running = false));
        };
        const timer = setInterval(tick, periodOf(rule));
        timer.unref();
        cleanups.push(() => clearInterval(timer));
      }
    }

    const gateway = createGateway({ model, invoke, region: LOCAL_REGION, accountId: LOCAL_ACCOUNT_ID, ...(options.onAccessLog ? { accessLog: options.onAccessLog } : {}) });
    oidc = await startLocalOidc({ origin: url, audience: apiUrl, ...(options.persistDir ? { persistDir: options.persistDir } : {}) });
    // The console (the template's bucket deployment, if any) at every path outside the stage and the provider.
    const consoleClient = localConsoleClient(url);
    const site = model.sites[0]
      ? createConsoleSite(model.sites[0].assetDirs, {
          api_url: apiUrl,
          issuer: oidc.issuer,
          client_id: consoleClient.clientId,
          redirect_uri: consoleClient.redirectUri,
          post_logout_redirect_uri: consoleClient.postLogoutRedirectUri,
          scope: 'openid email profile',
        })
      : undefined;
    const stagePrefix = `/${model.stageName}`;
    const isApiPath = (u: string | undefined) => !!u && (u === stagePrefix || u.startsWith(`${stagePrefix}/`) || u.startsWith(`${stagePrefix}?`));
    serve = (req, res) =>
      oidc && isLocalOidcPath(req.url) ? oidc.handler(req, res) : site && !isApiPath(req.url) ? site(req, res) : gateway(req, res);
    // Stopping closes the server first again (cleanups run last in, first out), before the functions, the
    // proxies and DynamoDB Local it would otherwise send requests to while they close.
    cleanups.push(closeServer);

    let adminKey: string | undefined;
    if (options.seed ?? true) {
      progress(`Seeding account ${DEMO_ACCOUNT_ID}…`);
      const deps: KeyServiceDeps = {
        keys: new KeysRepository(doc, { keys: tables.keys, accounts: tables.accounts }),
        accounts: new AccountsRepository(doc, tables.accounts),
        audit: new AuditRepository(doc, tables.audit, settings.auditRetentionDays),
        settings,
      };
      const seeded = await seed(deps, new Date());
      if ('adminKey' in seeded) adminKey = seeded.adminKey;
      else progress(`No admin API key: ${seeded.noAdminKey}.`);
    }
    const demoPerson = (options.seed ?? true) ? await oidc.seedDemoPerson() : undefined;
    if (demoPerson) {
      // demo@knouds.local is an admin of acct_demo (kept as it is when a persisted run changed its role).
      const now = new Date();
      const added = memberAddedEvent(DEMO_ACCOUNT_ID, demoPerson.subject, demoPerson.email, 'admin', now);
      await new MembershipsRepository(doc, tables.memberships)
        .add(demoPerson.subject, DEMO_ACCOUNT_ID, demoPerson.email, 'admin', now, new AuditRepository(doc, tables.audit, settings.auditRetentionDays).putItem(added))
        .catch((error: unknown) => {
          if (!(error instanceof ConflictError)) throw error;
        });
    }

    const state: LocalState = { pid: process.pid, apiUrl, dynamodbEndpoint: endpoint, region: LOCAL_REGION, tables, settings, oidc: oidc.adminState };
    const stateFile = options.stateFile;
    if (stateFile) {
      // It holds the provider's admin token: for this user only (chmod too, for a file left by a crash).
      // A new file (a temporary one, renamed over any left by a crash): never an old file's wider mode.
      const temporary = `${stateFile}.${process.pid}.tmp`;
      writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      renameSync(temporary, stateFile);
      cleanups.push(() => rmSync(stateFile, { force: true }));
    }
    const iam: LocalIam = {
      enabled: iamEnabled,
      ...(iamEndpoint ? { dynamodbEndpoint: iamEndpoint } : {}),
      refusals: () => enforcer?.refusals() ?? [],
      refusalCount: () => enforcer?.refusalCount() ?? 0,
      summary: () => enforcer?.summary() ?? 'IAM: not enforced (--no-iam)',
    };
    return {
      url,
      apiUrl,
      dynamodbEndpoint: endpoint,
      lambdaEndpoint,
      model,
      state,
      ...(adminKey ? { adminKey } : {}),
      oidc,
      ...(demoPerson ? { demoPerson } : {}),
      doc,
      iam,
      runSchedules,
      asyncInvocationsSettled: lambdaApi.settled,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The key in `file` (made when missing), or a new one held only in memory. */
function localSecretsKey(file: string | undefined): string {
  if (!file) return LocalSecretBox.newKey();
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim();
    try {
      new LocalSecretBox(key);
    } catch {
      throw new StartupError(`${file} does not hold a 32-byte base64 key; move it away to start with a new one (webhook secrets sealed with it will not open)`);
    }
    return key;
  }
  const key = LocalSecretBox.newKey();
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}
