import { createServer } from 'node:http';
import { ALLOW_LOOPBACK_ENV, checkWebhookUrl, deliverWebhook, isPublicAddress, sign } from '../lambdas/shared/webhooks.js';
import { referenceProblem, resolveReferences } from '../lambdas/shared/workflow-definition.js';

describe('Standard Webhooks signature', () => {
  it('matches the specification’s example', () => {
    // From the Standard Webhooks reference implementations' tests.
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    expect(sign(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });
});

describe('webhook addresses', () => {
  it.each([
    '127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe',
    '64:ff9b::10.0.0.1', '198.18.0.1', 'not-an-ip',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700:4700::1111', '::ffff:8.8.8.8', '172.32.0.1'])('accepts %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it('accepts loopback only when the local runner allows it', () => {
    expect(isPublicAddress('127.0.0.1', true)).toBe(true);
    expect(isPublicAddress('::1', true)).toBe(true);
    expect(isPublicAddress('10.0.0.1', true)).toBe(false);
  });
});

describe('workflow references', () => {
  it('resolve to the input or an earlier step', () => {
    const earlier = new Set(['a']);
    expect(referenceProblem('$.input', earlier)).toBeUndefined();
    expect(referenceProblem('$.input.name.first', earlier)).toBeUndefined();
    expect(referenceProblem('$.steps.a.output.text', earlier)).toBeUndefined();
    expect(referenceProblem('$.steps.b.output', earlier)).toMatch(/does not run before/);
    expect(referenceProblem('$.steps.a.input', earlier)).toMatch(/\$\.steps\.<id>\.output/);
    expect(referenceProblem('$.env.HOME', earlier)).toMatch(/must start with/);
    expect(referenceProblem('$.input..x', earlier)).toMatch(/empty path segment/);
  });

  it('are replaced at run time, deep inside objects and arrays', () => {
    const scope = { input: { name: 'ada', tags: ['x'] }, steps: { up: { output: { text: 'ADA' } } } };
    expect(
      resolveReferences({ a: '$.input.name', b: ['$.steps.up.output.text', 'plain', 3], c: { d: '$.input.missing' }, e: '$.input.tags' }, scope),
    ).toEqual({ a: 'ada', b: ['ADA', 'plain', 3], c: { d: null }, e: ['x'] });
  });
});

describe('delivery to a host name', () => {
  beforeAll(() => {
    process.env['LOG_LEVEL'] = 'error';
  });
  afterEach(() => {
    delete process.env[ALLOW_LOOPBACK_ENV];
  });

  it('resolves the name through the guarded lookup, and refuses it when it resolves to a private address', async () => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(String(req.headers['webhook-id']));
      req.resume();
      req.on('end', () => res.writeHead(200).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://localhost:${(server.address() as { port: number }).port}/hook`;
    try {
      // Deployed rules: localhost resolves to loopback, which is refused before any connection.
      await expect(checkWebhookUrl(url)).rejects.toThrow(/https/);
      await expect(checkWebhookUrl(url.replace('http:', 'https:'))).rejects.toThrow(/public address/);
      const refused = await deliverWebhook(url, 'whsec_' + Buffer.alloc(24).toString('base64'), 'msg_1', {}, { maxAttempts: 1 });
      expect(refused.delivered).toBe(false);
      // The local runner's rule: loopback allowed, through the same lookup used at connection time.
      process.env[ALLOW_LOOPBACK_ENV] = 'true';
      const delivered = await deliverWebhook(url, 'whsec_' + Buffer.alloc(24).toString('base64'), 'msg_2', { a: 1 }, { maxAttempts: 1 });
      expect(delivered).toEqual({ delivered: true, attempts: 1, lastStatus: 200 });
      expect(seen).toEqual(['msg_2']);
    } finally {
      server.close();
    }
  });
});
