/**
 * Stand-ins, on loopback, for the two AWS services the admin CLI calls that cannot run here:
 * CloudFormation (`DescribeStacks`, to find a stack's outputs) and the Cognito user pool API
 * (`AdminCreateUser`, `AdminGetUser`). The CLI reaches them through the SDK's own endpoint variables
 * (`AWS_ENDPOINT_URL_CLOUDFORMATION`, `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER`), so its real clients
 * serialize real requests; DynamoDB stays DynamoDB Local. Every call is recorded, and an action this
 * fake does not know is refused, so a test sees exactly what the operator's IAM must allow.
 *
 * Cognito as the stack configures it: the email is the username (an alias of the user's `sub`),
 * compared without case; a second AdminCreateUser of an email is UsernameExistsException.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeCall {
  readonly service: 'cloudformation' | 'cognito-idp';
  readonly action: string;
  readonly input: Record<string, unknown>;
}

export interface FakeUser {
  readonly sub: string;
  readonly email: string;
}

export interface FakeAws {
  readonly endpoint: string;
  readonly calls: FakeCall[];
  /** Stack name → outputs. */
  readonly stacks: Map<string, Record<string, string>>;
  /** User pool id → users by lower-case email. */
  readonly pools: Map<string, Map<string, FakeUser>>;
  /** Cognito action → the error it answers instead (an IAM refusal, say). */
  readonly failures: Map<string, { type: string; message: string }>;
  close(): Promise<void>;
}

const xml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeAws(): Promise<FakeAws> {
  const calls: FakeCall[] = [];
  const stacks = new Map<string, Record<string, string>>();
  const pools = new Map<string, Map<string, FakeUser>>();
  const failures = new Map<string, { type: string; message: string }>();

  const cognitoError = (res: ServerResponse, type: string, message: string) => {
    res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
    res.end(JSON.stringify({ __type: type, message }));
  };
  const userJson = (user: FakeUser) => [
    { Name: 'sub', Value: user.sub },
    { Name: 'email', Value: user.email },
    { Name: 'email_verified', Value: 'true' },
  ];

  function cognito(res: ServerResponse, action: string, input: Record<string, unknown>): void {
    calls.push({ service: 'cognito-idp', action, input });
    const failure = failures.get(action);
    if (failure) return cognitoError(res, failure.type, failure.message);
    const pool = pools.get(String(input['UserPoolId']));
    if (!pool) return cognitoError(res, 'ResourceNotFoundException', `User pool ${String(input['UserPoolId'])} does not exist.`);
    const username = String(input['Username']).toLowerCase();
    const found = pool.get(username) ?? [...pool.values()].find((u) => u.sub === input['Username']);
    const ok = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(body));
    };
    switch (action) {
      case 'AdminCreateUser': {
        if (found) return cognitoError(res, 'UsernameExistsException', 'An account with the given email already exists.');
        const attributes = (input['UserAttributes'] ?? []) as { Name: string; Value: string }[];
        const email = attributes.find((a) => a.Name === 'email')?.Value;
        if (email?.toLowerCase() !== username) return cognitoError(res, 'InvalidParameterException', 'the email attribute must be the username');
        const user = { sub: randomUUID(), email: username };
        pool.set(username, user);
        return ok({ User: { Username: user.sub, Attributes: userJson(user), Enabled: true, UserStatus: 'FORCE_CHANGE_PASSWORD' } });
      }
      case 'AdminGetUser':
        if (!found) return cognitoError(res, 'UserNotFoundException', 'User does not exist.');
        return ok({ Username: found.sub, UserAttributes: userJson(found), Enabled: true, UserStatus: 'CONFIRMED' });
      default:
        return cognitoError(res, 'AccessDeniedException', `the fake does not serve ${action}`);
    }
  }

  function cloudFormation(res: ServerResponse, form: URLSearchParams): void {
    const action = form.get('Action') ?? '';
    const name = form.get('StackName') ?? '';
    calls.push({ service: 'cloudformation', action, input: Object.fromEntries(form) });
    const outputs = stacks.get(name);
    if (action !== 'DescribeStacks' || !outputs) {
      res.writeHead(400, { 'content-type': 'text/xml' });
      res.end(
        `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>` +
          `<Code>ValidationError</Code><Message>Stack with id ${xml(name)} does not exist</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
      );
      return;
    }
    const members = Object.entries(outputs)
      .map(([key, value]) => `<member><OutputKey>${xml(key)}</OutputKey><OutputValue>${xml(value)}</OutputValue></member>`)
      .join('');
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(
      `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
        `<StackName>${xml(name)}</StackName><StackId>arn:aws:cloudformation:us-east-1:000000000000:stack/${xml(name)}/1</StackId>` +
        `<StackStatus>CREATE_COMPLETE</StackStatus><CreationTime>2026-01-01T00:00:00.000Z</CreationTime>` +
        `<Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult>` +
        `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeStacksResponse>`,
    );
  }

  const server: Server = createServer((req, res) => {
    void bodyOf(req).then((text) => {
      const target = req.headers['x-amz-target'];
      if (typeof target === 'string' && target.startsWith('AWSCognitoIdentityProviderService.')) {
        return cognito(res, target.slice(target.indexOf('.') + 1), JSON.parse(text || '{}') as Record<string, unknown>);
      }
      return cloudFormation(res, new URLSearchParams(text));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    stacks,
    pools,
    failures,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
