/**
 * People's identity provider (issue #16): the Cognito user pool, its console client and managed login
 * domain by default; the deployer's own OpenID Connect provider with the `identityProvider` prop (then no
 * Cognito resource); what the authorizer is told in its environment; the outputs; the props' validation.
 */
import { App, type CfnResource, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { discoveryUrl, IDENTITY_PROVIDER_ENV, identityProviderEnvironment, identityProviderFromEnv } from '../lambdas/shared/identity-provider.js';
import { environmentSize } from '../lib/environment-size.js';
import { Identity, type IdentityProps } from '../lib/identity.js';
import { KnoudsApiStack, type KnoudsApiStackProps } from '../lib/knouds-api-stack.js';
import { STACK_OUTPUTS } from '../lib/outputs.js';

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
type Json = unknown;

function build(props: KnoudsApiStackProps = {}, stackName = 'TestStack') {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new KnoudsApiStack(app, stackName, props);
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: Record<string, Resource>; Outputs: Record<string, { Value: Json }> };
  return { stack, template, resources: json.Resources, outputs: json.Outputs };
}
/** The Identity construct alone, in a bare stack: quicker than the whole stack where only it matters. */
function identityOnly(props: IdentityProps = {}, stackName = 'TestStack'): Record<string, Resource> {
  const stack = new Stack(new App(), stackName);
  new Identity(stack, 'Identity', props);
  return (Template.fromStack(stack).toJSON() as { Resources: Record<string, Resource> }).Resources;
}
/** Constructs the Identity construct alone (what throws on a bad prop), without synthesizing. */
const makeIdentity = (props: IdentityProps) => new Identity(new Stack(new App(), 'TestStack'), 'Identity', props);
const ofType = (resources: Record<string, Resource>, type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const only = (resources: Record<string, Resource>, type: string): [string, Resource] => {
  const found = ofType(resources, type);
  expect(found).toHaveLength(1);
  return found[0]!;
};
const authorizerEnv = (resources: Record<string, Resource>) => {
  const [, fn] = Object.entries(resources).find(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith('AuthorizerFunction'))!;
  return (fn.Properties['Environment'] as { Variables: Record<string, Json> }).Variables;
};

const byo = { issuer: 'https://login.example.com/oauth2/default', clientId: '0oa1example' };

describe('the Cognito user pool (default)', () => {
  const { template, resources, stack, outputs } = build();
  const [poolId, pool] = only(resources, 'AWS::Cognito::UserPool');

  it('admits no self sign-up: people are created by an operator (AdminCreateUser), with an invitation email', () => {
    expect(pool.Properties['AdminCreateUserConfig']).toEqual({
      AllowAdminCreateUserOnly: true,
      InviteMessageTemplate: { EmailSubject: expect.any(String), EmailMessage: expect.stringMatching(/\{username\}.*\{####\}.*3 days/) },
    });
  });

  it('uses the email address as the username, case-insensitively, and recovers accounts by email only', () => {
    expect(pool.Properties['UsernameAttributes']).toEqual(['email']);
    expect(pool.Properties['AliasAttributes']).toBeUndefined();
    expect(pool.Properties['UsernameConfiguration']).toEqual({ CaseSensitive: false });
    expect(pool.Properties['AccountRecoverySetting']).toEqual({ RecoveryMechanisms: [{ Name: 'verified_email', Priority: 1 }] });
  });

  it('has a strong password policy: 12 characters, every character class, no reuse of the last 5, a temporary password for 3 days', () => {
    expect(pool.Properties['Policies']).toEqual({
      PasswordPolicy: {
        MinimumLength: 12,
        RequireLowercase: true,
        RequireUppercase: true,
        RequireNumbers: true,
        RequireSymbols: true,
        PasswordHistorySize: 5,
        TemporaryPasswordValidityDays: 3,
      },
    });
  });

  it('offers optional TOTP MFA only: no SMS, no SMS role, no phone numbers', () => {
    expect(pool.Properties['MfaConfiguration']).toBe('OPTIONAL');
    expect(pool.Properties['EnabledMfas']).toEqual(['SOFTWARE_TOKEN_MFA']);
    expect(pool.Properties['SmsConfiguration']).toBeUndefined();
    const cognitoRoles = ofType(resources, 'AWS::IAM::Role').filter(([, r]) => JSON.stringify(r.Properties['AssumeRolePolicyDocument']).includes('cognito-idp'));
    expect(cognitoRoles).toEqual([]);
  });

  it('is on the Plus plan with threat protection in full-function mode: compromised passwords refused, risky sign-ins challenged', () => {
    expect(pool.Properties['UserPoolTier']).toBe('PLUS');
    expect(pool.Properties['UserPoolAddOns']).toEqual({ AdvancedSecurityMode: 'ENFORCED' });
    template.hasResourceProperties('AWS::Cognito::UserPoolRiskConfigurationAttachment', {
      UserPoolId: { Ref: poolId },
      ClientId: 'ALL',
      CompromisedCredentialsRiskConfiguration: { Actions: { EventAction: 'BLOCK' }, EventFilter: ['SIGN_IN', 'PASSWORD_CHANGE', 'SIGN_UP'] },
      AccountTakeoverRiskConfiguration: {
        Actions: {
          LowAction: { EventAction: 'NO_ACTION', Notify: false },
          MediumAction: { EventAction: 'MFA_IF_CONFIGURED', Notify: false },
          HighAction: { EventAction: 'MFA_REQUIRED', Notify: false },
        },
      },
    });
  });

  it('is retained with deletion protection by default, like the tables', () => {
    expect(pool.DeletionPolicy).toBe('Retain');
    expect(pool.Properties['DeletionProtection']).toBe('ACTIVE');
  });

  it('follows removalPolicy and deletionProtection as the tables do', () => {
    const destroyed = only(identityOnly({ removalPolicy: RemovalPolicy.DESTROY }), 'AWS::Cognito::UserPool')[1];
    expect({ policy: destroyed.DeletionPolicy, protection: destroyed.Properties['DeletionProtection'] }).toEqual({ policy: 'Delete', protection: 'INACTIVE' });
    const unprotected = only(identityOnly({ deletionProtection: false }), 'AWS::Cognito::UserPool')[1];
    expect({ policy: unprotected.DeletionPolicy, protection: unprotected.Properties['DeletionProtection'] }).toEqual({ policy: 'Retain', protection: 'INACTIVE' });
  });

  it('userPool.threatProtection false: the Essentials plan, no threat protection', () => {
    const r = identityOnly({ userPool: { threatProtection: false } });
    const essentials = only(r, 'AWS::Cognito::UserPool')[1];
    expect(essentials.Properties['UserPoolTier']).toBe('ESSENTIALS');
    expect(essentials.Properties['UserPoolAddOns']).toBeUndefined();
    expect(ofType(r, 'AWS::Cognito::UserPoolRiskConfigurationAttachment')).toEqual([]);
  });

  it('has one app client, public, for the console: authorization code only, no secret, OpenID scopes, short-lived tokens', () => {
    const [, client] = only(resources, 'AWS::Cognito::UserPoolClient');
    // The deployed console's URLs (test/console-hosting.test.ts); without it, the localhost defaults (below).
    const consoleDomain = { 'Fn::GetAtt': [only(resources, 'AWS::CloudFront::Distribution')[0], 'DomainName'] };
    expect(client.Properties).toEqual({
      UserPoolId: { Ref: poolId },
      GenerateSecret: false,
      AllowedOAuthFlowsUserPoolClient: true,
      AllowedOAuthFlows: ['code'],
      AllowedOAuthScopes: ['openid', 'email', 'profile'],
      SupportedIdentityProviders: ['COGNITO'],
      CallbackURLs: [{ 'Fn::Join': ['', ['https://', consoleDomain, '/auth/callback']] }],
      LogoutURLs: [{ 'Fn::Join': ['', ['https://', consoleDomain, '/']] }],
      ExplicitAuthFlows: ['ALLOW_USER_SRP_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
      // The email address is the username: only an operator changes it.
      WriteAttributes: ['name'],
      AccessTokenValidity: 60,
      IdTokenValidity: 60,
      // Cognito’s shortest: the console never uses nor keeps the refresh token it must issue.
      RefreshTokenValidity: 60,
      TokenValidityUnits: { AccessToken: 'minutes', IdToken: 'minutes', RefreshToken: 'minutes' },
      PreventUserExistenceErrors: 'ENABLED',
      EnableTokenRevocation: true,
    });
  });

  it('without a deployed console: the localhost defaults', () => {
    expect(only(identityOnly(), 'AWS::Cognito::UserPoolClient')[1].Properties).toMatchObject({
      CallbackURLs: ['http://localhost:3000/auth/callback'],
      LogoutURLs: ['http://localhost:3000/'],
    });
  });

  it('with a deployed console: its URLs first, then the userPool prop’s, and no localhost default', () => {
    const deployed = { callbackUrl: 'https://d111111abcdef8.cloudfront.net/auth/callback', signOutUrl: 'https://d111111abcdef8.cloudfront.net/' };
    expect(only(identityOnly({ console: deployed }), 'AWS::Cognito::UserPoolClient')[1].Properties).toMatchObject({
      CallbackURLs: [deployed.callbackUrl],
      LogoutURLs: [deployed.signOutUrl],
    });
    const both = identityOnly({ console: deployed, userPool: { callbackUrls: ['https://console.example.com/auth/callback'] } });
    expect(only(both, 'AWS::Cognito::UserPoolClient')[1].Properties).toMatchObject({
      CallbackURLs: [deployed.callbackUrl, 'https://console.example.com/auth/callback'],
      LogoutURLs: [deployed.signOutUrl],
    });
  });

  it('takes the console’s callback and sign-out URLs from the userPool prop', () => {
    const custom = identityOnly({
      userPool: { callbackUrls: ['https://console.example.com/auth/callback'], signOutUrls: ['https://console.example.com/'] },
    });
    expect(only(custom, 'AWS::Cognito::UserPoolClient')[1].Properties).toMatchObject({
      CallbackURLs: ['https://console.example.com/auth/callback'],
      LogoutURLs: ['https://console.example.com/'],
    });
  });

  it('serves the newer managed login pages on a Cognito domain, with Cognito’s default style assigned to the console’s client', () => {
    const [domainId, domain] = only(resources, 'AWS::Cognito::UserPoolDomain');
    expect(domain.Properties['ManagedLoginVersion']).toBe(2);
    expect(domain.Properties['UserPoolId']).toEqual({ Ref: poolId });
    expect(domain.Properties['CustomDomainConfig']).toBeUndefined();
    const [clientId] = only(resources, 'AWS::Cognito::UserPoolClient');
    template.hasResourceProperties('AWS::Cognito::ManagedLoginBranding', { UserPoolId: { Ref: poolId }, ClientId: { Ref: clientId }, UseCognitoProvidedValues: true });
    expect(domainId).toMatch(/^IdentityDomain/);
  });

  it('derives the default domain prefix from the stack name and the stack id’s first 8 hex digits', () => {
    const prefixOf = (r: Record<string, Resource>) => only(r, 'AWS::Cognito::UserPoolDomain')[1].Properties['Domain'];
    const stackUuidHead = { 'Fn::Select': [0, { 'Fn::Split': ['-', { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] }] }] };
    expect(prefixOf(resources)).toEqual({ 'Fn::Join': ['', ['teststack-', stackUuidHead]] });
    // Characters a prefix cannot hold become hyphens; the words it may not contain are left out.
    expect(prefixOf(identityOnly({}, 'My-AWS-Cognito-Api2'))).toEqual({ 'Fn::Join': ['', ['my-api2-', stackUuidHead]] });
    expect(prefixOf(identityOnly({}, 'Amazon'))).toEqual({ 'Fn::Join': ['', ['knouds-', stackUuidHead]] });
    expect(prefixOf(identityOnly({ userPool: { domainPrefix: 'acme-console' } }))).toBe('acme-console');
  });

  it('outputs the user pool id, the console’s client id, the issuer and the managed login URL', () => {
    const [clientId] = only(resources, 'AWS::Cognito::UserPoolClient');
    const [domainId] = only(resources, 'AWS::Cognito::UserPoolDomain');
    expect(outputs[STACK_OUTPUTS.userPoolId]!.Value).toEqual({ Ref: poolId });
    expect(outputs[STACK_OUTPUTS.consoleClientId]!.Value).toEqual({ Ref: clientId });
    expect(outputs[STACK_OUTPUTS.identityIssuer]!.Value).toEqual({
      'Fn::Join': ['', ['https://cognito-idp.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/', { Ref: poolId }]],
    });
    expect(outputs[STACK_OUTPUTS.loginDomainUrl]!.Value).toEqual({
      'Fn::Join': ['', ['https://', { Ref: domainId }, '.auth.', { Ref: 'AWS::Region' }, '.amazoncognito.com']],
    });
  });

  it('tells the authorizer the pool’s issuer, JWKS, the console’s client and the Cognito access-token profile', () => {
    const env = authorizerEnv(resources);
    const [clientId] = only(resources, 'AWS::Cognito::UserPoolClient');
    const issuerParts = ['https://cognito-idp.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/', { Ref: poolId }];
    expect({
      issuer: env[IDENTITY_PROVIDER_ENV.issuer],
      jwksUri: env[IDENTITY_PROVIDER_ENV.jwksUri],
      clientId: env[IDENTITY_PROVIDER_ENV.clientId],
      tokenUse: env[IDENTITY_PROVIDER_ENV.tokenUse],
      audience: env[IDENTITY_PROVIDER_ENV.audience],
    }).toEqual({
      issuer: { 'Fn::Join': ['', issuerParts] },
      jwksUri: { 'Fn::Join': ['', [...issuerParts, '/.well-known/jwks.json']] },
      clientId: { Ref: clientId },
      tokenUse: 'cognito-access',
      audience: undefined,
    });
  });

  it('no other function is told about the identity provider', () => {
    const others = ofType(resources, 'AWS::Lambda::Function').filter(([id]) => !id.startsWith('AuthorizerFunction'));
    expect(others.length).toBeGreaterThan(0);
    for (const [, fn] of others) {
      const vars = Object.keys((fn.Properties['Environment'] as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {});
      expect(vars.filter((v) => v.startsWith('KNOUDS_IDP_'))).toEqual([]);
    }
  });

  it('the authorizer’s environment is measured with each reference at its longest, and fits in 4 KB', () => {
    const longest: Record<string, number> = {
      'AWS::Region': 32,
      'AWS::URLSuffix': 32,
      'AWS::Cognito::UserPool': 55,
      'AWS::Cognito::UserPoolClient': 128,
      'AWS::DynamoDB::GlobalTable': 255,
    };
    const atLongest = (v: Json): string => {
      if (typeof v === 'string') return v;
      const o = v as { Ref?: string; 'Fn::Join'?: [string, Json[]] };
      if (o['Fn::Join']) return o['Fn::Join'][1].map(atLongest).join(o['Fn::Join'][0]);
      const ref = o.Ref!;
      return 'x'.repeat(longest[ref] ?? longest[resources[ref]!.Type]!);
    };
    const fn = stack.node.findChild('AuthorizerFunction') as LambdaFunction;
    const variables = authorizerEnv(resources);
    const measured = Buffer.byteLength(JSON.stringify(Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, atLongest(v)]))));
    expect(environmentSize(fn).bytes).toBe(measured);
    expect(measured).toBeLessThan(4096);
    expect(stack.resolve((fn.node.defaultChild as CfnResource).logicalId)).toMatch(/^AuthorizerFunction/);
  });
});

describe('the deployer’s own OpenID Connect provider (identityProvider prop)', () => {
  const { resources, outputs } = build({ identityProvider: byo });

  it('creates no Cognito resource at all', () => {
    expect(Object.values(resources).filter((r) => r.Type.startsWith('AWS::Cognito::'))).toEqual([]);
  });

  it('tells the authorizer the issuer, the client and the RFC 9068 profile, with the client id as the audience by default', () => {
    const env = authorizerEnv(resources);
    const idp = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('KNOUDS_IDP_')));
    expect(idp).toEqual({
      [IDENTITY_PROVIDER_ENV.issuer]: byo.issuer,
      [IDENTITY_PROVIDER_ENV.clientId]: byo.clientId,
      [IDENTITY_PROVIDER_ENV.tokenUse]: 'rfc9068',
      [IDENTITY_PROVIDER_ENV.audience]: byo.clientId,
    });
    // Read back as the authorizer will: no JWKS given, so it is discovered from the issuer.
    expect(identityProviderFromEnv(idp as Record<string, string>)).toEqual({ tokenUse: 'rfc9068', issuer: byo.issuer, clientId: byo.clientId, audience: byo.clientId });
  });

  it('passes the audience and the JWKS URL when given, and keeps an issuer’s trailing slash (exact iss match)', () => {
    const env = authorizerEnv(
      build({ identityProvider: { issuer: 'https://tenant.eu.auth0.com/', clientId: 'abc', audience: 'https://api.knouds.example', jwksUri: 'https://tenant.eu.auth0.com/.well-known/jwks.json' } })
        .resources,
    );
    expect(env[IDENTITY_PROVIDER_ENV.issuer]).toBe('https://tenant.eu.auth0.com/');
    expect(env[IDENTITY_PROVIDER_ENV.audience]).toBe('https://api.knouds.example');
    expect(env[IDENTITY_PROVIDER_ENV.jwksUri]).toBe('https://tenant.eu.auth0.com/.well-known/jwks.json');
  });

  it('outputs the issuer and the client id, and neither a user pool nor a login domain', () => {
    expect(outputs[STACK_OUTPUTS.identityIssuer]!.Value).toBe(byo.issuer);
    expect(outputs[STACK_OUTPUTS.consoleClientId]!.Value).toBe(byo.clientId);
    expect(outputs[STACK_OUTPUTS.userPoolId]).toBeUndefined();
    expect(outputs[STACK_OUTPUTS.loginDomainUrl]).toBeUndefined();
  });

  it('accepts http only on a loopback host (a provider run locally)', () => {
    expect(makeIdentity({ identityProvider: { issuer: 'http://localhost:3000/oidc', clientId: 'console' } }).config.issuer).toBe('http://localhost:3000/oidc');
    expect(() => makeIdentity({ identityProvider: { issuer: 'http://idp.example.com', clientId: 'console' } })).toThrow(
      "identityProvider.issuer must use https (http only on localhost or 127.0.0.1 or [::1]), got 'http://idp.example.com'",
    );
  });
});

describe('the props are validated at synth, the bad value named', () => {
  const cases: [string, IdentityProps, RegExp][] = [
    ['an issuer that is no URL', { identityProvider: { ...byo, issuer: 'login.example.com' } }, /identityProvider\.issuer must be an absolute URL, got 'login\.example\.com'/],
    ['an issuer with a query', { identityProvider: { ...byo, issuer: 'https://idp.example.com/?tenant=1' } }, /identityProvider\.issuer must not have a query, got/],
    ['an issuer with a fragment', { identityProvider: { ...byo, issuer: 'https://idp.example.com/#x' } }, /identityProvider\.issuer must not have a fragment/],
    [
      'the discovery URL given as the issuer',
      { identityProvider: { ...byo, issuer: 'https://idp.example.com/.well-known/openid-configuration' } },
      /identityProvider\.issuer is the issuer identifier \(the tokens' iss\), not a \/\.well-known\/ document, got 'https:\/\/idp\.example\.com\/\.well-known\/openid-configuration'/,
    ],
    ['an empty client id', { identityProvider: { ...byo, clientId: '' } }, /identityProvider\.clientId must be a non-empty string without whitespace, got ''/],
    ['a blank client id', { identityProvider: { ...byo, clientId: '  ' } }, /identityProvider\.clientId must be a non-empty string without whitespace, got ' {2}'/],
    ['a blank audience', { identityProvider: { ...byo, audience: ' ' } }, /identityProvider\.audience must be a non-empty string/],
    ['a JWKS URL over http', { identityProvider: { ...byo, jwksUri: 'http://idp.example.com/keys' } }, /identityProvider\.jwksUri must use https/],
    ['both identityProvider and userPool', { identityProvider: byo, userPool: { domainPrefix: 'acme' } }, /userPool configures the Cognito user pool, which identityProvider replaces/],
    ['an uppercase domain prefix', { userPool: { domainPrefix: 'Acme' } }, /userPool\.domainPrefix must be 1–63 lowercase letters, digits and hyphens.*got 'Acme'/],
    ['a domain prefix with a reserved word', { userPool: { domainPrefix: 'acme-aws' } }, /userPool\.domainPrefix .*without 'aws', 'amazon' or 'cognito', got 'acme-aws'/],
    ['a domain prefix starting with a hyphen', { userPool: { domainPrefix: '-acme' } }, /userPool\.domainPrefix .*got '-acme'/],
    ['a domain prefix of 64 characters', { userPool: { domainPrefix: 'a'.repeat(64) } }, /userPool\.domainPrefix .*got 'a{64}'/],
    ['a callback over http off localhost', { userPool: { callbackUrls: ['http://console.example.com/cb'] } }, /userPool\.callbackUrls must use https \(http only on localhost\), got 'http:\/\/console\.example\.com\/cb'/],
    ['a callback on 127.0.0.1 (Cognito takes http on localhost only)', { userPool: { callbackUrls: ['http://127.0.0.1:3000/cb'] } }, /userPool\.callbackUrls must use https/],
    ['a callback with a fragment', { userPool: { callbackUrls: ['https://console.example.com/cb#x'] } }, /userPool\.callbackUrls must not have a fragment/],
    ['no callback URL', { userPool: { callbackUrls: [] } }, /userPool\.callbackUrls must hold at least one URL/],
    ['a sign-out URL that is no URL', { userPool: { signOutUrls: ['/signed-out'] } }, /userPool\.signOutUrls must be an absolute URL, got '\/signed-out'/],
  ];
  it.each(cases)('%s', (_name, props, message) => {
    expect(() => makeIdentity(props)).toThrow(message);
  });

  it('by the stack, before it builds anything else that would fail', () => {
    expect(() => build({ identityProvider: { ...byo, clientId: '' } })).toThrow(/identityProvider\.clientId must be a non-empty string/);
    expect(() => build({ userPool: { domainPrefix: 'Acme' } })).toThrow(/userPool\.domainPrefix must be/);
  });
});

describe('the authorizer’s identity configuration (lambdas/shared/identity-provider.ts)', () => {
  it('round-trips both profiles through the environment', () => {
    const cognito = { tokenUse: 'cognito-access' as const, issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc', clientId: 'c1', jwksUri: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc/.well-known/jwks.json' };
    expect(identityProviderFromEnv(identityProviderEnvironment(cognito))).toEqual(cognito);
    const rfc = { tokenUse: 'rfc9068' as const, issuer: 'https://idp.example.com/', clientId: 'c2', audience: 'api://knouds', jwksUri: 'https://idp.example.com/keys' };
    expect(identityProviderFromEnv(identityProviderEnvironment(rfc))).toEqual(rfc);
  });

  it('fails at cold start naming the missing or invalid variable', () => {
    expect(() => identityProviderFromEnv({})).toThrow('environment variable KNOUDS_IDP_ISSUER is not set');
    const base = { KNOUDS_IDP_ISSUER: 'https://idp.example.com', KNOUDS_IDP_CLIENT_ID: 'c' };
    expect(() => identityProviderFromEnv({ ...base, KNOUDS_IDP_TOKEN_USE: 'id' })).toThrow("KNOUDS_IDP_TOKEN_USE must be one of cognito-access, rfc9068, got 'id'");
    expect(() => identityProviderFromEnv({ ...base, KNOUDS_IDP_TOKEN_USE: 'rfc9068' })).toThrow('environment variable KNOUDS_IDP_AUDIENCE is not set');
  });

  it('finds the discovery document below the issuer, with or without its trailing slash', () => {
    expect(discoveryUrl('https://tenant.auth0.com/')).toBe('https://tenant.auth0.com/.well-known/openid-configuration');
    expect(discoveryUrl('https://login.example.com/oauth2/default')).toBe('https://login.example.com/oauth2/default/.well-known/openid-configuration');
  });
});
