import { pbkdf2 } from 'node:crypto';
import { jest } from '@jest/globals';
import { Resolver } from 'node:dns/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { ALLOW_LOOPBACK_ENV, checkWebhookUrl, deliverWebhook, isPublicAddress, newWebhookSecret, sign, signatures } from '../lambdas/shared/webhooks.js';
import { resolveReferences } from '../lambdas/shared/references.js';
import { referenceProblem } from '../lambdas/shared/workflow-definition.js';

describe('Standard Webhooks signature', () => {
  it('matches the specification’s example', () => {
    // From the Standard Webhooks reference implementations' tests.
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    expect(sign(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });
});

describe('several secrets (a rotation’s grace period): one v1 signature each, space-separated', () => {
  afterEach(() => {
    delete process.env[ALLOW_LOOPBACK_ENV];
  });

  it('a delivery signed with two secrets verifies with either (the standardwebhooks library), and not with a third', async () => {
    const [current, previous, other] = [newWebhookSecret(), newWebhookSecret(), newWebhookSecret()];
    const seen: { headers: IncomingHttpHeaders; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.env[ALLOW_LOOPBACK_ENV] = 'true';
    try {
      const body = '{"type":"execution.succeeded","timestamp":"2026-01-01T00:00:00.000Z","data":{}}';
      const result = await deliverWebhook(`http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, [current, previous], 'msg_two', body);
      expect(result).toEqual({ delivered: true, status: 204 });
      const [delivery] = seen;
      const headers = delivery!.headers as Record<string, string>;
      expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
      expect(headers['webhook-signature']).toMatch(/^v1,\S+ v1,\S+$/);
      for (const secret of [current, previous]) expect(new Webhook(secret).verify(delivery!.body, headers)).toEqual(JSON.parse(body));
      expect(() => new Webhook(other).verify(delivery!.body, headers)).toThrow(/signature/i);
    } finally {
      server.close();
    }
  });

  it('refuses to sign with no secret at all', () => {
    expect(() => signatures([], 'msg_x', 1, '{}')).toThrow(/no secret/);
  });
});

describe('webhook addresses', () => {
  it.each([
    '127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe',
    '64:ff9b::10.0.0.1', '198.18.0.1', 'not-an-ip', '127.1', '0x7f000001', '1.2.3',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700:4700::1111', '2001:4860:4860::8888', '172.32.0.1'])('accepts %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it('accepts loopback only when the local runner allows it', () => {
    expect(isPublicAddress('127.0.0.1', true)).toBe(true);
    expect(isPublicAddress('127.255.255.254', true)).toBe(true);
    expect(isPublicAddress('::1', true)).toBe(true);
    expect(isPublicAddress('10.0.0.1', true)).toBe(false);
    expect(isPublicAddress('169.254.169.254', true)).toBe(false);
    expect(isPublicAddress('::', true)).toBe(false);
    expect(isPublicAddress('0.0.0.0', true)).toBe(false);
    expect(isPublicAddress('8.8.8.8', true)).toBe(true);
  });
});

/**
 * Issue #12, finding 8: what a webhook may point to is classified by ipaddr.js's named ranges plus a
 * short list of its own; only plain global unicast is public. Each address is tried as an IP literal
 * (no DNS lookup, no connection).
 */
describe('webhook addresses: special ranges (issue #12, finding 8)', () => {
  /** The five forms of the metadata address (169.254.169.254) the review found accepted. */
  const reviewFound: [string, string][] = [
    ['::a9fe:a9fe', 'IPv4-compatible ::/96'],
    ['::ffff:0:a9fe:a9fe', 'SIIT ::ffff:0:0/96 (RFC 6145)'],
    ['64:ff9b:1::a9fe:a9fe', 'local-use NAT64 64:ff9b:1::/48 (RFC 8215)'],
    ['2002:a9fe:a9fe::', '6to4 2002::/16'],
    ['fec0::1', 'site-local fec0::/10 (RFC 3879)'],
  ];
  const otherRanges: [string, string][] = [
    // IPv6 forms that embed or translate to an IPv4 address: refused whatever IPv4 address they carry.
    ['::ffff:169.254.169.254', 'IPv4-mapped'],
    ['::ffff:8.8.8.8', 'IPv4-mapped, of a public address'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, hex form'],
    ['::8.8.8.8', 'IPv4-compatible, dotted form'],
    ['::808:808', 'IPv4-compatible, of a public address'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 64:ff9b::/96'],
    ['64:ff9b::8.8.8.8', 'NAT64 of a public address'],
    ['64:ff9b:1:ffff::1', 'local-use NAT64, end of the /48'],
    ['::ffff:0:8.8.8.8', 'SIIT of a public address'],
    ['2002:808:808::1', '6to4 of a public address'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo 2001::/32'],
    ['2001::1', 'Teredo'],
    // Other IPv6 special ranges.
    ['feff::1', 'site-local, end of fec0::/10'],
    ['2001:db8::1', 'documentation 2001:db8::/32'],
    ['3fff::1', 'documentation 3fff::/20'],
    ['2001:2::1', 'benchmarking 2001:2::/48'],
    ['2001:10::1', 'ORCHID 2001:10::/28'],
    ['2001:20::1', 'ORCHIDv2 2001:20::/28'],
    ['2001:1::1', 'IETF protocol assignments 2001::/23'],
    ['ff02::1', 'multicast ff00::/8'],
    ['ff0e::1', 'global-scope multicast'],
    ['fc00::1', 'unique-local fc00::/7'],
    ['fdff:ffff::1', 'unique-local'],
    ['fe80::1', 'link-local fe80::/10'],
    ['febf::1', 'link-local, end of the /10'],
    ['100::1', 'discard 100::/64'],
    ['5f00::1', 'segment routing 5f00::/16'],
    ['::', 'unspecified'],
    ['4000::1', 'outside global unicast 2000::/3'],
    ['e000::1', 'outside global unicast 2000::/3'],
    // IPv4.
    ['100.64.0.1', 'CGNAT 100.64.0.0/10'],
    ['100.127.255.254', 'CGNAT, end of the /10'],
    ['0.1.2.3', '"this network" 0.0.0.0/8'],
    ['198.18.0.1', 'benchmarking 198.18.0.0/15'],
    ['198.19.255.254', 'benchmarking, end of the /15'],
    ['240.0.0.1', 'reserved 240.0.0.0/4'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.0.1', 'IETF protocol assignments 192.0.0.0/24'],
    ['192.0.2.1', 'documentation TEST-NET-1'],
    ['198.51.100.1', 'documentation TEST-NET-2'],
    ['203.0.113.1', 'documentation TEST-NET-3'],
    ['192.88.99.1', '6to4 relay anycast'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['169.254.169.254', 'link-local (metadata)'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.0.1', 'private'],
  ];

  it.each([...reviewFound, ...otherRanges])('refuses %s (%s), as an address and in a URL', async (address) => {
    expect(isPublicAddress(address)).toBe(false);
    // Not even the local runner's loopback exception lets these through.
    expect(isPublicAddress(address, true)).toBe(false);
    const host = address.includes(':') ? `[${address}]` : address;
    await expect(checkWebhookUrl(`https://${host}/hook`)).rejects.toThrow(/public address/);
  });

  it.each(['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e'])('accepts %s, also as a URL', async (address) => {
    expect(isPublicAddress(address)).toBe(true);
    const host = address.includes(':') ? `[${address}]` : address;
    await expect(checkWebhookUrl(`https://${host}/hook`)).resolves.toBeInstanceOf(URL);
  });

  describe('loopback', () => {
    afterEach(() => {
      delete process.env[ALLOW_LOOPBACK_ENV];
    });

    it.each(['127.0.0.1', '[::1]'])('is refused deployed, accepted (also over http) in local mode: %s', async (host) => {
      await expect(checkWebhookUrl(`https://${host}/hook`)).rejects.toThrow(/public address/);
      process.env[ALLOW_LOOPBACK_ENV] = 'true';
      await expect(checkWebhookUrl(`https://${host}/hook`)).resolves.toBeInstanceOf(URL);
      await expect(checkWebhookUrl(`http://${host}:4000/hook`)).resolves.toBeInstanceOf(URL);
      // http stays for loopback only, even in local mode.
      await expect(checkWebhookUrl('http://8.8.8.8/hook')).rejects.toThrow(/loopback/);
    });
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
      const refused = await deliverWebhook(url, ['whsec_' + Buffer.alloc(24).toString('base64')], 'msg_1', '{}');
      expect(refused).toEqual({ delivered: false, status: null, reason: expect.stringMatching(/https/) });
      // The local runner's rule: loopback allowed, through the same lookup used at connection time.
      process.env[ALLOW_LOOPBACK_ENV] = 'true';
      const delivered = await deliverWebhook(url, ['whsec_' + Buffer.alloc(24).toString('base64')], 'msg_2', '{"a":1}');
      expect(delivered).toEqual({ delivered: true, status: 200 });
      expect(seen).toEqual(['msg_2']);
    } finally {
      server.close();
    }
  });

  it('asks DNS without the thread pool: with all 4 of libuv\'s threads busy (as one tenant\'s stalled name server held them), a name still resolves at once', async () => {
    // The name server, stood in for: `hooks.example.test` is 127.0.0.1 (no IPv6). dns.lookup (the OS
    // resolver, run on the pool) would wait for a thread, and then not know the name at all.
    const v4 = jest.spyOn(Resolver.prototype, 'resolve4').mockImplementation(async (name: string) => {
      if (name !== 'hooks.example.test') throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return ['127.0.0.1'];
    });
    const v6 = jest.spyOn(Resolver.prototype, 'resolve6').mockRejectedValue(Object.assign(new Error('no data'), { code: 'ENODATA' }));
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const busy: Promise<unknown>[] = [];
    try {
      process.env[ALLOW_LOOPBACK_ENV] = 'true';
      const url = `http://hooks.example.test:${(server.address() as { port: number }).port}/hook`;
      // Each pbkdf2 holds a pool thread for about a second or more.
      const started = Date.now();
      for (let i = 0; i < 4; i++) busy.push(new Promise((r) => pbkdf2('x', 'y', 2_000_000, 32, 'sha256', r)));
      const result = await deliverWebhook(url, ['whsec_' + Buffer.alloc(24).toString('base64')], 'msg_pool', '{}');
      const took = Date.now() - started;
      expect(result).toEqual({ delivered: true, status: 204 });
      expect(v4).toHaveBeenCalledWith('hooks.example.test');
      // Before the pool is free again: the pool's work takes longer than this.
      const poolFree = await Promise.all(busy).then(() => Date.now() - started);
      expect(took).toBeLessThan(poolFree);
    } finally {
      v4.mockRestore();
      v6.mockRestore();
      await Promise.all(busy);
      server.close();
    }
  });
});
