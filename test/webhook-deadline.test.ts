/**
 * Issue #12, finding 6: a webhook attempt has a total deadline (DNS, connect, TLS, sending and reading
 * the answer), not an idle timeout, so a receiver that trickles its answer cannot hold the worker.
 * Every receiver here listens on 127.0.0.1 (local mode allows loopback over http); nothing leaves the machine.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { ALLOW_LOOPBACK_ENV, deliverWebhook, MAX_ANSWER_BODY_BYTES } from '../lambdas/shared/webhooks.js';

const SECRET = 'whsec_' + Buffer.alloc(24).toString('base64');

interface Trickler {
  readonly url: string;
  /** One entry per request: when it arrived and when its connection closed (ms since the epoch). */
  readonly requests: { arrived: number; closed?: number }[];
  close(): Promise<void>;
}

/** An http receiver that answers 200 with its headers at once, then one body byte every `everyMs`, `bytes` times. */
async function trickleBody(everyMs: number, bytes: number): Promise<Trickler> {
  const requests: { arrived: number; closed?: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res: ServerResponse) => {
    const entry: { arrived: number; closed?: number } = { arrived: Date.now() };
    requests.push(entry);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(bytes) });
      res.flushHeaders();
      let sent = 0;
      const timer = setInterval(() => {
        res.write('.');
        if (++sent === bytes) {
          clearInterval(timer);
          timers.delete(timer);
          res.end();
        }
      }, everyMs);
      timers.add(timer);
      res.on('close', () => {
        entry.closed = Date.now();
        clearInterval(timer);
        timers.delete(timer);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    requests,
    close: async () => {
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP receiver that reads the request, then sends its status line one byte every `everyMs`. */
async function trickleStatusLine(everyMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server: TcpServer = createTcpServer((socket) => {
    sockets.add(socket);
    socket.resume();
    const answer = 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n';
    let sent = 0;
    const timer = setInterval(() => {
      socket.write(answer[sent++]!);
      if (sent === answer.length) {
        clearInterval(timer);
        timers.delete(timer);
      }
    }, everyMs);
    timers.add(timer);
    socket.on('close', () => {
      clearInterval(timer);
      timers.delete(timer);
      sockets.delete(socket);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    close: async () => {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a webhook attempt has a total deadline (issue #12, finding 6)', () => {
  beforeAll(() => {
    process.env[ALLOW_LOOPBACK_ENV] = 'true';
  });
  afterAll(() => {
    delete process.env[ALLOW_LOOPBACK_ENV];
  });

  it('gives up on a receiver that trickles its body at the deadline, not when the trickle ends', async () => {
    // 15 bytes, one every 400 ms: never idle for the 1 s timeout, but 6 s in all.
    const receiver = await trickleBody(400, 15);
    try {
      const started = Date.now();
      const result = await deliverWebhook(receiver.url, [SECRET], 'msg_slow', '{}', { timeoutMs: 1000 });
      const elapsed = Date.now() - started;
      expect(result.delivered).toBe(false);
      expect(elapsed).toBeGreaterThanOrEqual(950);
      expect(elapsed).toBeLessThan(2500);
      // The connection is closed at the deadline too, not left to trickle on.
      await new Promise((r) => setTimeout(r, 200));
      expect(receiver.requests).toHaveLength(1);
      expect(receiver.requests[0]!.closed).toBeDefined();
      expect(receiver.requests[0]!.closed! - receiver.requests[0]!.arrived).toBeLessThan(2500);
    } finally {
      await receiver.close();
    }
  });

  it('gives up on a receiver that trickles its status line', async () => {
    const receiver = await trickleStatusLine(200);
    try {
      const started = Date.now();
      const result = await deliverWebhook(receiver.url, [SECRET], 'msg_slow_status', '{}', { timeoutMs: 1000 });
      expect(result).toEqual({ delivered: false, status: null, reason: 'no complete answer within 1000 ms' });
      expect(Date.now() - started).toBeLessThan(2500);
    } finally {
      await receiver.close();
    }
  });

  it('is one attempt: a timed-out one is not tried again inside the call (the next attempt is scheduled, not waited for)', async () => {
    const receiver = await trickleBody(400, 15);
    try {
      const started = Date.now();
      const result = await deliverWebhook(receiver.url, [SECRET], 'msg_slow_once', '{}', { timeoutMs: 1000 });
      const elapsed = Date.now() - started;
      expect(result).toEqual({ delivered: false, status: null, reason: 'no complete answer within 1000 ms' });
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests).toHaveLength(1);
      expect(elapsed).toBeLessThan(2000);
    } finally {
      await receiver.close();
    }
  });

  it('is 5 s for the whole attempt by default', async () => {
    // One byte a second for 8 s: an idle timeout of 5 s would never fire.
    const receiver = await trickleBody(1000, 8);
    try {
      const started = Date.now();
      const result = await deliverWebhook(receiver.url, [SECRET], 'msg_slow_default', '{}');
      const elapsed = Date.now() - started;
      expect(result.delivered).toBe(false);
      expect(elapsed).toBeGreaterThanOrEqual(4950);
      expect(elapsed).toBeLessThan(6500);
    } finally {
      await receiver.close();
    }
  });

  it('reads at most MAX_ANSWER_BODY_BYTES of an answer: an endless one is cut there and its status stands (2.4 GB in 5 s into the shared sender before)', async () => {
    // Answers `status` with 1 MB chunks, without end; counts what it could write until the connection closed.
    const endless = async (status: number) => {
      let written = 0;
      let closedAt = 0;
      const server = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(status, { 'content-type': 'application/octet-stream' });
          const chunk = Buffer.alloc(1024 * 1024, 120);
          const more = () => {
            while (!res.destroyed && res.write(chunk)) written += chunk.length;
            if (!res.destroyed) res.once('drain', more);
          };
          res.on('close', () => (closedAt = Date.now()));
          more();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return {
        url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
        written: () => written,
        closedAt: () => closedAt,
        close: () => {
          server.closeAllConnections();
          return new Promise<void>((resolve) => server.close(() => resolve()));
        },
      };
    };
    expect(MAX_ANSWER_BODY_BYTES).toBe(64 * 1024);
    for (const [status, delivered] of [[200, true], [500, false]] as const) {
      const receiver = await endless(status);
      try {
        const started = Date.now();
        const result = await deliverWebhook(receiver.url, [SECRET], `msg_endless_${status}`, '{}', { timeoutMs: 5000 });
        expect({ status: result.status, delivered: result.delivered }).toEqual({ status, delivered });
        expect(Date.now() - started).toBeLessThan(1500);
        await new Promise((r) => setTimeout(r, 200));
        // Closed at once: what the receiver wrote is what the sockets' buffers took, not a stream of gigabytes.
        expect(receiver.closedAt()).toBeGreaterThan(0);
        expect(receiver.written()).toBeLessThan(64 * 1024 * 1024);
      } finally {
        await receiver.close();
      }
    }
  });

  it('still delivers to a receiver that answers within the deadline', async () => {
    const receiver = await trickleBody(50, 4);
    try {
      const result = await deliverWebhook(receiver.url, [SECRET], 'msg_quick', '{}', { timeoutMs: 1000 });
      expect(result).toEqual({ delivered: true, status: 200 });
    } finally {
      await receiver.close();
    }
  });
});
