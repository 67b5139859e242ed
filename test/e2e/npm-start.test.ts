/**
 * `npm start`'s entry point as a user runs it: it prints the admin key and serves it, listens on loopback
 * only (every socket of the runner and of what it starts, DynamoDB Local included), stops everything on
 * Ctrl-C (SIGINT), and refuses with a clear message and a non-zero exit when the port is busy or Java is
 * missing. Where DynamoDB Local cannot be kept on loopback, it says so in one line.
 */
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../local-runner/dynamodb-local.js';
import { testEndpoint } from '../support/dynamodb.js';
import { call } from '../support/http.js';
import { TEST_CDK_OUT } from '../support/paths.js';
import { isLoopback, listenersOf } from '../support/listeners.js';
import { exited, runTs, startTs, waitForOutput } from '../support/processes.js';

jest.setTimeout(90_000);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'knouds-start-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const START_ARGS = ['--skip-synth', '--cdk-out', TEST_CDK_OUT, '--quiet-logs'];

/** Every process below `pid` (the runner starts java, and tsx an esbuild service). */
function descendants(pid: number): { pid: number; command: string }[] {
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    // pgrep exits 1 when there are none
  }
  return children.flatMap((child) => {
    let command = '';
    try {
      command = execFileSync('ps', ['-o', 'args=', '-p', String(child)], { encoding: 'utf8' }).trim();
    } catch {
      // already gone
    }
    return [{ pid: child, command }, ...descendants(child)];
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start', () => {
  it('starts DynamoDB Local, prints the admin key, serves it, and leaves no process after Ctrl-C', async () => {
    const port = await freePort();
    const stateFile = path.join(dir, 'state.json');
    const child = startTs('local-runner/main.ts', START_ARGS, { PORT: String(port), KNOUDS_STATE_FILE: stateFile, DYNAMODB_ENDPOINT: undefined });
    try {
      const output = await waitForOutput(child, /ready in/);
      expect(output).toMatch(/Starting DynamoDB Local/);
      const key = /^Admin API key: (\S+)$/m.exec(output)?.[1];
      expect(key).toMatch(/^knouds_live_/);
      // §5: the console's URL and the demo person's sign-in, a password of its own at each start.
      expect(output).toMatch(new RegExp(`^Console: http://localhost:${port}/$`, 'm'));
      expect(output).toMatch(/^Console sign-in: demo@knouds\.local [A-Za-z0-9_-]{24}$/m);
      expect((await call(`http://localhost:${port}/oidc/.well-known/openid-configuration`)).body).toMatchObject({ issuer: `http://localhost:${port}/oidc` });
      expect(existsSync(stateFile)).toBe(true);
      const reply = await call(`http://localhost:${port}/v1/keys/verify`, { headers: { 'x-api-key': key! } });
      expect(reply.status).toBe(200);
      expect(reply.body).toMatchObject({ account_id: 'acct_demo', tier: 'business' });

      const started = descendants(child.pid!);
      expect(started.some((p) => p.command.includes('DynamoDBLocal.jar'))).toBe(true);
      // Security review #12, finding 7: nothing it started listens beyond loopback (read from /proc,
      // no connection made): the API, the functions' Lambda API and DynamoDB Local.
      const ddbPort = Number(new URL((JSON.parse(readFileSync(stateFile, 'utf8')) as { dynamodbEndpoint: string }).dynamodbEndpoint).port);
      const listeners = listenersOf([child.pid!, ...started.map((p) => p.pid)]);
      expect(listeners.map((l) => l.port)).toEqual(expect.arrayContaining([port, ddbPort]));
      expect(listeners.length).toBeGreaterThanOrEqual(3);
      expect(listeners.filter((l) => !isLoopback(l.address))).toEqual([]);
      expect(output).not.toMatch(/reachable from the network/);
      // Ctrl-C in a terminal signals the whole process group; signalling only the runner's process is
      // the stricter test: the runner itself must stop DynamoDB Local.
      child.kill('SIGINT');
      expect(await exited(child)).toBe(0);
      // Every process it started is gone (listed with its command line if not); tsx's esbuild service
      // ends when its pipe closes, a moment after the runner, so allow two seconds.
      const until = Date.now() + 2000;
      while (started.some(({ pid }) => alive(pid)) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(started.filter(({ pid }) => alive(pid))).toEqual([]);
      expect(existsSync(stateFile)).toBe(false);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  });

  it('where DynamoDB Local cannot be kept on loopback (a Java without its compiler), says so in one line and still starts', async () => {
    const port = await freePort();
    const child = startTs('local-runner/main.ts', START_ARGS, {
      PORT: String(port),
      KNOUDS_STATE_FILE: path.join(dir, 'jre.json'),
      DYNAMODB_ENDPOINT: undefined,
      // jdk.compiler left out of the module graph, as on a JRE: the loopback launcher cannot run.
      JDK_JAVA_OPTIONS: '--limit-modules=java.se,jdk.unsupported',
    });
    try {
      const output = await waitForOutput(child, /ready in/);
      const warnings = output.split('\n').filter((line) => /reachable from the network/.test(line));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^Warning: DynamoDB Local .*port \d+ is reachable from the network/);
      const ddbPort = Number(/port (\d+) is reachable/.exec(warnings[0]!)![1]);
      const state = JSON.parse(readFileSync(path.join(dir, 'jre.json'), 'utf8')) as { dynamodbEndpoint: string };
      expect(state.dynamodbEndpoint).toBe(`http://127.0.0.1:${ddbPort}`);
      child.kill('SIGINT');
      expect(await exited(child)).toBe(0);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  });

  it('refuses a busy port with a clear message and exit code 1', async () => {
    const blocker: Server = createServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)),
    );
    try {
      const result = await runTs('local-runner/main.ts', START_ARGS, {
        PORT: String(port),
        DYNAMODB_ENDPOINT: testEndpoint(),
        KNOUDS_STATE_FILE: path.join(dir, 'busy.json'),
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`Port ${port} is already in use`));
      // Said before any other start-up work (a synth, DynamoDB Local, the tables): at once, not after a minute.
      expect(result.stdout).not.toMatch(/Synthesizing|DynamoDB|Creating \d+ tables/);
    } finally {
      blocker.close();
    }
  });

  it('takes the port first: 503 SERVICE_UNAVAILABLE with Retry-After while it starts, and the port freed when the start fails', async () => {
    // A "DynamoDB" that accepts connections and never answers: the start waits for it (10 s), then gives up.
    const held: Socket[] = [];
    const silent: Server = createServer((socket) => void held.push(socket));
    const silentPort = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)));
    const port = await freePort();
    try {
      const run = runTs('local-runner/main.ts', START_ARGS, {
        PORT: String(port),
        DYNAMODB_ENDPOINT: `http://127.0.0.1:${silentPort}`,
        KNOUDS_STATE_FILE: path.join(dir, 'starting.json'),
      });
      let starting: Awaited<ReturnType<typeof call>> | undefined;
      for (const deadline = Date.now() + 8_000; !starting && Date.now() < deadline; ) {
        starting = await call(`http://127.0.0.1:${port}/v1/health`).catch(() => undefined);
        if (!starting) await new Promise((r) => setTimeout(r, 100));
      }
      expect(starting?.status).toBe(503);
      expect(starting?.headers.get('retry-after')).toBe('5');
      expect(starting?.body).toEqual({ error: expect.stringContaining('starting'), code: 'SERVICE_UNAVAILABLE', request_id: starting?.headers.get('x-request-id') });
      // A browser opening the console that early gets a page that says so and reloads itself; the API stays JSON.
      const page = await fetch(`http://127.0.0.1:${port}/keys`, { headers: { accept: 'text/html,application/xhtml+xml' } });
      expect({ status: page.status, type: page.headers.get('content-type'), retry: page.headers.get('retry-after') }).toEqual({ status: 503, type: 'text/html; charset=utf-8', retry: '5' });
      const html = await page.text();
      expect(html).toContain('<meta http-equiv="refresh" content="5">');
      expect(html).toContain('The local stack is starting');
      const api = await fetch(`http://127.0.0.1:${port}/v1/health`, { headers: { accept: 'text/html' } });
      expect({ status: api.status, type: api.headers.get('content-type') }).toEqual({ status: 503, type: 'application/json' });
      const result = await run;
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('did not answer within 10 s');
      await expect(call(`http://127.0.0.1:${port}/v1/health`)).rejects.toThrow();
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });

  it('refuses a missing Java with a clear message and exit code 1', async () => {
    const result = await runTs('local-runner/main.ts', START_ARGS, {
      PATH: path.join(dir, 'empty-path'),
      DYNAMODB_ENDPOINT: undefined,
      PORT: String(await freePort()),
      KNOUDS_STATE_FILE: path.join(dir, 'nojava.json'),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Java was not found/);
  });
});
