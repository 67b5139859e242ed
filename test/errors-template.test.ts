/**
 * What only AWS shows of uniform errors (issue #21 item 2), pinned in the synthesized template: the
 * local runner emulates these, so the template is where a deployed stack's behaviour is fixed.
 * - a known path with another method is 405 METHOD_NOT_ALLOWED with `Allow` (an ANY mock per resource);
 * - every answer of the gateway itself (its gateway responses, its mocks) maps `x-request-id` from
 *   `context.requestId`, the id its body repeats as `request_id`;
 * - the 401s carry `WWW-Authenticate`, and only the refused bearer token's speaks of it;
 * - the stage's own throttling answers THROTTLED.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { KnoudsApiStack, type KnoudsApiStackProps } from '../lib/knouds-api-stack.js';

type Resource = { Type: string; Properties: Record<string, unknown> };

function synth(props: KnoudsApiStackProps = {}): Record<string, Resource> {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(new KnoudsApiStack(app, 'ErrorsTemplate', props)).toJSON()['Resources'] as Record<string, Resource>;
}

const resources = synth();
const ofType = (type: string, from = resources) => Object.entries(from).filter(([, r]) => r.Type === type);

/** Every resource's full path, by logical id. */
const paths = (() => {
  const out = new Map<string, string>();
  const pathOf = (id: string): string => {
    const known = out.get(id);
    if (known) return known;
    const p = resources[id]!.Properties;
    const parent = (p['ParentId'] as { Ref?: string }).Ref;
    const full = `${parent ? pathOf(parent) : ''}/${String(p['PathPart'])}`;
    out.set(id, full);
    return full;
  };
  for (const [id] of ofType('AWS::ApiGateway::Resource')) pathOf(id);
  return out;
})();

const methods = ofType('AWS::ApiGateway::Method').map(([, m]) => ({
  path: paths.get((m.Properties['ResourceId'] as { Ref?: string }).Ref ?? '') ?? '/',
  method: String(m.Properties['HttpMethod']),
  props: m.Properties,
}));

describe('405 METHOD_NOT_ALLOWED with Allow, deployed', () => {
  const own = new Map<string, string[]>();
  for (const m of methods.filter((x) => x.method !== 'ANY')) own.set(m.path, [...(own.get(m.path) ?? []), m.method]);

  it('every path that has methods has one ANY method, a mock without credentials, and no other path has one', () => {
    const any = methods.filter((m) => m.method === 'ANY');
    expect(any.map((m) => m.path).sort()).toEqual([...own.keys()].sort());
    for (const m of any) {
      expect(m.props).toMatchObject({ AuthorizationType: 'NONE', Integration: { Type: 'MOCK', PassthroughBehavior: 'NEVER' } });
      expect(m.props['AuthorizerId']).toBeUndefined();
    }
  });

  it.each([...new Set(methods.map((m) => m.path))].sort())('%s: 405, its Allow the path’s own methods, the contract body with the request id', (path) => {
    const any = methods.find((m) => m.path === path && m.method === 'ANY')!;
    const integration = any.props['Integration'] as {
      RequestTemplates: Record<string, string>;
      IntegrationResponses: { StatusCode: string; SelectionPattern?: string; ResponseParameters: Record<string, string>; ResponseTemplates: Record<string, string> }[];
    };
    expect(JSON.parse(integration.RequestTemplates['application/json']!)).toEqual({ statusCode: 405 });
    expect(integration.IntegrationResponses).toHaveLength(1);
    const [response] = integration.IntegrationResponses;
    expect(response!.StatusCode).toBe('405');
    expect(response!.SelectionPattern).toBeUndefined();
    const allow = response!.ResponseParameters['method.response.header.Allow']!;
    expect(allow.replace(/'/g, '').split(', ').sort()).toEqual([...own.get(path)!].sort());
    expect(response!.ResponseParameters['method.response.header.x-request-id']).toBe('context.requestId');
    expect(response!.ResponseParameters['method.response.header.X-Content-Type-Options']).toBe("'nosniff'");
    const body = JSON.parse(response!.ResponseTemplates['application/json']!.replaceAll('$context.requestId', 'req-1').replaceAll('$context.httpMethod', 'PUT'));
    expect(body).toEqual({ error: expect.stringContaining(allow.replace(/'/g, '')), code: 'METHOD_NOT_ALLOWED', request_id: 'req-1' });
    // A header an integration response maps must be declared by the method response.
    expect(any.props['MethodResponses']).toEqual([
      { StatusCode: '405', ResponseParameters: { 'method.response.header.Allow': true, 'method.response.header.X-Content-Type-Options': true, 'method.response.header.x-request-id': true } },
    ]);
  });

  it('is not behind the request validator (nothing to validate)', () => {
    for (const m of methods.filter((x) => x.method === 'ANY')) expect(m.props['RequestValidatorId']).toBeUndefined();
  });
});

describe('x-request-id on every answer of the gateway itself', () => {
  it('every gateway response maps it from context.requestId, the id its body carries', () => {
    const responses = ofType('AWS::ApiGateway::GatewayResponse');
    expect(responses.length).toBe(21);
    for (const [, r] of responses) {
      const p = r.Properties;
      expect({ type: p['ResponseType'], header: (p['ResponseParameters'] as Record<string, string>)['gatewayresponse.header.x-request-id'] }).toEqual({
        type: p['ResponseType'],
        header: 'context.requestId',
      });
      expect((p['ResponseTemplates'] as Record<string, string>)['application/json']).toContain('"request_id": "$context.requestId"');
    }
  });

  it('GET /health (a mock) maps it too, with nosniff', () => {
    const health = methods.find((m) => m.path === '/health' && m.method === 'GET')!;
    const [response] = (health.props['Integration'] as { IntegrationResponses: { ResponseParameters: Record<string, string> }[] }).IntegrationResponses;
    expect(response!.ResponseParameters).toEqual({ 'method.response.header.x-request-id': 'context.requestId', 'method.response.header.X-Content-Type-Options': "'nosniff'" });
    expect(health.props['MethodResponses']).toEqual([
      { StatusCode: '200', ResponseParameters: { 'method.response.header.x-request-id': true, 'method.response.header.X-Content-Type-Options': true } },
    ]);
  });
});

describe('401s with WWW-Authenticate (RFC 9110 §11.6.1, RFC 6750 §3)', () => {
  const response = (type: string, from = resources) => ofType('AWS::ApiGateway::GatewayResponse', from).find(([, r]) => r.Properties['ResponseType'] === type)![1].Properties;
  const header = (type: string, from = resources) => (response(type, from)['ResponseParameters'] as Record<string, string>)['gatewayresponse.header.WWW-Authenticate'];
  const message = (type: string) => JSON.parse((response(type)['ResponseTemplates'] as Record<string, string>)['application/json']!.replace('$context.requestId', 'r'))['error'] as string;

  it('no credentials or a refused key (the authorizer throws Unauthorized): both schemes offered, and no word of bearer tokens in the message', () => {
    expect(response('UNAUTHORIZED')['StatusCode']).toBe('401');
    expect(header('UNAUTHORIZED')).toBe(`'ApiKey realm="knouds", Bearer realm="knouds"'`);
    expect(message('UNAUTHORIZED')).toMatch(/x-api-key/);
    expect(message('UNAUTHORIZED')).not.toMatch(/Bearer/i);
  });

  it('a refused bearer token (the authorizer denies it): 401 UNAUTHORIZED, Bearer error="invalid_token", a message about Authorization: Bearer', () => {
    expect(response('ACCESS_DENIED')['StatusCode']).toBe('401');
    expect(header('ACCESS_DENIED')).toMatch(/^'Bearer realm="knouds", error="invalid_token"/);
    expect(message('ACCESS_DENIED')).toMatch(/Authorization: Bearer/);
    expect(message('ACCESS_DENIED')).toMatch(/x-api-key/);
  });

  it('the realm is the deployment’s key prefix', () => {
    const other = synth({ keyPrefix: 'acme' });
    expect(header('UNAUTHORIZED', other)).toBe(`'ApiKey realm="acme", Bearer realm="acme"'`);
    expect(header('ACCESS_DENIED', other)).toMatch(/^'Bearer realm="acme", error="invalid_token"/);
  });
});

it('the stage’s own throttling answers 429 THROTTLED with Retry-After (a code of its own, not the per-key RATE_LIMIT_EXCEEDED)', () => {
  const throttled = ofType('AWS::ApiGateway::GatewayResponse').find(([, r]) => r.Properties['ResponseType'] === 'THROTTLED')![1].Properties;
  expect(throttled['StatusCode']).toBe('429');
  expect(JSON.parse((throttled['ResponseTemplates'] as Record<string, string>)['application/json']!.replace('$context.requestId', 'r'))['code']).toBe('THROTTLED');
  expect((throttled['ResponseParameters'] as Record<string, string>)['gatewayresponse.header.Retry-After']).toBe("'1'");
  const stage = ofType('AWS::ApiGateway::Stage')[0]![1].Properties;
  expect(stage['MethodSettings']).toEqual(expect.arrayContaining([expect.objectContaining({ ThrottlingRateLimit: 1000, ThrottlingBurstLimit: 2000 })]));
});
