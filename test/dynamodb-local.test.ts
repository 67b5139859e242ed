/**
 * Security review #12, finding 7: DynamoDB Local, as `startDynamoDbLocal()` starts it, listens on
 * 127.0.0.1 only (the engine alone would listen on every interface). Where its loopback launcher cannot
 * run, the plain jar starts instead and one line says the port is reachable from the network; a failure
 * of the engine itself is reported, not hidden by that fallback. The sockets are read from /proc: no
 * test connects to anything but loopback.
 */
import { jest } from '@jest/globals';
import { createServer, type Server } from 'node:net';
import { StartupError, startDynamoDbLocal, type DynamoDbLocal } from '../local-runner/dynamodb-local.js';
import { isLoopback, listenersOf, listeningSockets } from './support/listeners.js';

jest.setTimeout(120_000);

const portOf = (ddb: DynamoDbLocal) => Number(new URL(ddb.endpoint).port);

describe('startDynamoDbLocal', () => {
  it('listens on 127.0.0.1 only, and the engine opens no other listener', async () => {
    const ddb = await startDynamoDbLocal();
    try {
      const port = portOf(ddb);
      const onPort = listeningSockets().filter((l) => l.port === port);
      expect(onPort.length).toBeGreaterThan(0);
      expect(onPort.filter((l) => !isLoopback(l.address))).toEqual([]);
      // Every socket the Java process listens on, whatever its port.
      const all = listenersOf([ddb.process.pid!]);
      expect(all.map((l) => l.port)).toContain(port);
      expect(all.filter((l) => !isLoopback(l.address))).toEqual([]);
      expect(ddb.host).toBe('127.0.0.1');
      expect(ddb.warning).toBeUndefined();
    } finally {
      await ddb.stop();
    }
  });

  it('where the launcher cannot run (a Java without its compiler), starts the plain jar and says so in one line', async () => {
    // jdk.compiler left out of the module graph: what a JRE without javac looks like to the launcher.
    const ddb = await startDynamoDbLocal({ jvmOptions: ['--limit-modules=java.se,jdk.unsupported'] });
    try {
      const port = portOf(ddb);
      expect(ddb.host).toBe('all interfaces');
      expect(ddb.warning).toMatch(new RegExp(`DynamoDB Local .*port ${port} is reachable from the network`));
      expect(ddb.warning).toMatch(/no compiler/);
      expect(ddb.warning).not.toMatch(/\n/);
      // The warning tells the truth: this one listens on a wildcard address.
      const onPort = listeningSockets().filter((l) => l.port === port);
      expect(onPort.some((l) => l.address === '::' || l.address === '0.0.0.0')).toBe(true);
    } finally {
      await ddb.stop();
    }
  });

  it('a busy port fails the start with the engine’s own error, not a fallback to the plain jar', async () => {
    const blocker: Server = createServer();
    const port = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)),
    );
    try {
      const error = await startDynamoDbLocal({ port }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StartupError);
      const message = (error as Error).message;
      // The launcher ran (its marker is in the output) and the engine failed to bind: no second start.
      expect(message).toMatch(/DynamoDbLocalOnLoopback: running/);
      expect(message).toMatch(/DynamoDB Local failed to start/);
      expect(message).toMatch(/BindException|Address already in use|Failed to bind/);
      expect(message).not.toMatch(/reachable from the network/);
    } finally {
      blocker.close();
    }
  });
});
