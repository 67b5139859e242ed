/**
 * `npm start`'s entry point as a user runs it: it prints the admin key and serves it, stops everything on
 * Ctrl-C (SIGINT), and refuses with a clear message and a non-zero exit when the port is busy or Java is
 * missing.
 */
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../local-runner/dynamodb-local.js';
import { testEndpoint } from '../support/dynamodb.js';
import { call } from '../support/http.js';
import { TEST_CDK_OUT } from '../support/paths.js';
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
      expect(existsSync(stateFile)).toBe(true);
      const reply = await call(`http://localhost:${port}/v1/keys/verify`, { headers: { 'x-api-key': key! } });
      expect(reply.status).toBe(200);
      expect(reply.body).toMatchObject({ account_id: 'acct_demo', tier: 'business' });

      const started = descendants(child.pid!);
      expect(started.some((p) => p.command.includes('DynamoDBLocal.jar'))).toBe(true);
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
    } finally {
      blocker.close();
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
