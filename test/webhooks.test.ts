import { isPublicAddress, sign } from '../lambdas/shared/webhooks.js';
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
