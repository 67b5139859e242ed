import { AuthorizationType, MockIntegration, PassthroughBehavior, type IResource, type Method, type RestApi } from 'aws-cdk-lib/aws-apigateway';
import { REQUEST_ID_HEADER_MAPPING } from './gateway-responses.js';

/** The order methods are listed in `Allow`. */
const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** The 405 body, a mapping template (VTL): the contract's error body with the request id (API.md §3). */
export function methodNotAllowedBody(allow: string): string {
  return `{"error": "This path does not take $context.httpMethod: it takes ${allow}", "code": "METHOD_NOT_ALLOWED", "request_id": "$context.requestId"}`;
}

/**
 * A known path with a method it does not have: 405 METHOD_NOT_ALLOWED with `Allow` listing the methods
 * it has (API.md §3; RFC 9110 §15.5.6), rather than API Gateway's 403 "Missing Authentication Token"
 * (which the stack answers as a 404 for an unknown path). Each resource that has methods gets an `ANY`
 * method, which API Gateway picks only when none of the resource's own methods matches: a mock
 * integration, so the gateway answers alone, without credentials, like a 404 (the paths are public in
 * the OpenAPI document anyway), at no function's cost. Call it once every route is added. Returns the
 * ANY methods.
 */
export function addMethodNotAllowed(api: RestApi): Method[] {
  const byResource = new Map<IResource, string[]>();
  for (const method of api.methods) {
    if (method.httpMethod === 'ANY') continue;
    byResource.set(method.resource, [...(byResource.get(method.resource) ?? []), method.httpMethod]);
  }
  const added: Method[] = [];
  for (const [resource, methods] of byResource) {
    const allow = [...new Set(methods)].sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b)).join(', ');
    const headers = { Allow: `'${allow}'`, 'X-Content-Type-Options': "'nosniff'", ...REQUEST_ID_HEADER_MAPPING };
    const method = resource.addMethod(
      'ANY',
      new MockIntegration({
        // Like GET /health: a JSON (or empty) request selects the 405; API Gateway answers any other
        // Content-Type with its own 415 UNSUPPORTED_MEDIA_TYPE first.
        passthroughBehavior: PassthroughBehavior.NEVER,
        requestTemplates: { 'application/json': '{"statusCode": 405}' },
        integrationResponses: [
          {
            statusCode: '405',
            responseParameters: Object.fromEntries(Object.entries(headers).map(([name, value]) => [`method.response.header.${name}`, value])),
            responseTemplates: { 'application/json': methodNotAllowedBody(allow) },
          },
        ],
      }),
      {
        authorizationType: AuthorizationType.NONE,
        authorizer: undefined,
        methodResponses: [{ statusCode: '405', responseParameters: Object.fromEntries(Object.keys(headers).map((name) => [`method.response.header.${name}`, true])) }],
      },
    );
    added.push(method);
  }
  return added;
}
