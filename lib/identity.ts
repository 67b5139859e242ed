/**
 * People's identity provider (API.md §6): by default an Amazon Cognito user pool with its managed login
 * pages and one public app client for the console; with the `identityProvider` prop, the deployer's own
 * OpenID Connect provider instead, and no Cognito resource at all. Either way it hands the authorizer an
 * `IdentityProviderConfig` (lambdas/shared/identity-provider.ts) through its environment.
 */
import { Aws, Duration, Fn, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import {
  AccountRecovery,
  CfnManagedLoginBranding,
  CfnUserPoolRiskConfigurationAttachment,
  ClientAttributes,
  FeaturePlan,
  ManagedLoginVersion,
  Mfa,
  OAuthScope,
  StandardThreatProtectionMode,
  UserPool,
  UserPoolClient,
  UserPoolClientIdentityProvider,
  UserPoolDomain,
} from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';
import { cognitoJwksUri, identityProviderEnvironment, type IdentityProviderConfig } from '../lambdas/shared/identity-provider.js';
import { STACK_OUTPUTS } from './outputs.js';

/**
 * The deployer's own OpenID Connect provider, one that issues RFC 9068 access tokens (`typ: at+jwt`) for
 * the API, such as an Auth0 API with its RFC 9068 token profile. (Okta's and Entra ID's access tokens are
 * not in that profile, and are refused: README, "Your own OpenID Connect provider".)
 */
export interface ExternalIdentityProvider {
  /**
   * The provider's issuer identifier, exactly as its tokens' `iss` claim carries it: an `https` URL with
   * no query or fragment (`http` only on localhost). A trailing `/` is kept (Auth0's issuers have one).
   */
  readonly issuer: string;
  /** The OAuth client id the console signs in with (a public client: authorization code with PKCE). */
  readonly clientId: string;
  /**
   * The `aud` the API requires in an access token (RFC 9068): the identifier under which the API is
   * registered with the provider (an Auth0 API's identifier, for example).
   * @default the `clientId`
   */
  readonly audience?: string;
  /**
   * The provider's JSON Web Key Set URL.
   * @default none: the authorizer reads `jwks_uri` from the issuer's `/.well-known/openid-configuration`
   */
  readonly jwksUri?: string;
}

/** The stack's Cognito user pool, when there is no `identityProvider`. */
export interface UserPoolOptions {
  /**
   * The prefix of the managed login domain, `https://<prefix>.auth.<region>.amazoncognito.com`: 1–63
   * lowercase letters, digits and hyphens, neither first nor last a hyphen, without `aws`, `amazon` or
   * `cognito`, and free in the region (prefixes are shared by every AWS account).
   * @default the stack name in lowercase (those words left out), a hyphen, and the first 8 hex digits of
   * the stack's id (a UUID), e.g. `knoudsapi-1c2fa620`: unique without a choice to make
   */
  readonly domainPrefix?: string;
  /**
   * Where the provider may send the browser back with the code, besides the deployed console's own
   * (`<ConsoleUrl>auth/callback`, always allowed when the stack deploys the console): `https` URLs (`http`
   * only on localhost, which is all Cognito accepts), no fragment.
   * @default none besides the console's; with the stack's `console: false`,
   * ['http://localhost:3000/auth/callback'] (a console run locally)
   */
  readonly callbackUrls?: readonly string[];
  /**
   * Where the provider may send the browser after signing out, besides the deployed console's own
   * (`<ConsoleUrl>`) (same rules).
   * @default none besides the console's; with the stack's `console: false`, ['http://localhost:3000/']
   */
  readonly signOutUrls?: readonly string[];
  /**
   * Cognito's threat protection (the Plus feature plan) in full-function mode: compromised passwords are
   * refused, and risky sign-ins are challenged for MFA (medium risk, when the person has it) or refused
   * unless they pass it (high risk). Plus bills every monthly active user; `false` keeps the Essentials
   * plan (free up to its monthly allowance) and no threat protection.
   * @default true
   */
  readonly threatProtection?: boolean;
}

export interface IdentityProps {
  /** @default none: a Cognito user pool */
  readonly identityProvider?: ExternalIdentityProvider;
  /** @default see UserPoolOptions */
  readonly userPool?: UserPoolOptions;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /** @default true, false when `removalPolicy` is `DESTROY` (as for the tables) */
  readonly deletionProtection?: boolean;
  /**
   * The deployed console's sign-in return and sign-out URLs (a deploy-time value may be a token): the
   * console's client allows these first, then the `userPool` prop's. Not with `identityProvider`: the
   * deployer registers them with their own provider.
   * @default none: the `userPool` prop's URLs, or the localhost defaults
   */
  readonly console?: { readonly callbackUrl: string; readonly signOutUrl: string };
}

export const DEFAULT_CALLBACK_URLS: readonly string[] = ['http://localhost:3000/auth/callback'];
export const DEFAULT_SIGN_OUT_URLS: readonly string[] = ['http://localhost:3000/'];

/** Passwords: at least 12 characters with a lowercase and an uppercase letter, a digit and a symbol. */
export const PASSWORD_MIN_LENGTH = 12;
/** How long the temporary password of `user add` works before an admin must send a new one. */
export const TEMPORARY_PASSWORD_DAYS = 3;
/**
 * The console's tokens: access and ID tokens for an hour. Cognito also issues a refresh token with every
 * sign-in, which the console never uses nor keeps: it lives Cognito's shortest, an hour too.
 */
export const ACCESS_TOKEN_VALIDITY = Duration.hours(1);
export const REFRESH_TOKEN_VALIDITY = Duration.minutes(60);

const DOMAIN_PREFIX_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const RESERVED_IN_DOMAIN_PREFIX = /aws|amazon|cognito/;

export class Identity extends Construct {
  /** What the authorizer verifies a person's access token against. */
  readonly config: IdentityProviderConfig;
  /** The user pool, unless the deployer brings a provider. */
  readonly userPool?: UserPool;
  /** The console's app client, with the user pool. */
  readonly consoleClient?: UserPoolClient;
  /** The managed login domain, with the user pool. */
  readonly domain?: UserPoolDomain;

  constructor(scope: Construct, id: string, props: IdentityProps = {}) {
    super(scope, id);
    const external = props.identityProvider;
    if (external) {
      if (props.userPool) throw new Error('userPool configures the Cognito user pool, which identityProvider replaces: give one of them');
      validateExternalProvider(external);
      const audience = external.audience ?? external.clientId;
      this.config = {
        tokenUse: 'rfc9068',
        issuer: external.issuer,
        clientId: external.clientId,
        audience,
        ...(external.jwksUri === undefined ? {} : { jwksUri: external.jwksUri }),
      };
      return;
    }

    const options = props.userPool ?? {};
    // With the console deployed, its own URLs and those the props add, nothing else: a localhost redirect is
    // low-risk with PKCE, but a client allows what is needed only. Without it, the localhost defaults.
    const consoleUrls = props.console;
    // The props' own lists, named as the deployer wrote them (an empty one only beside the console's URLs).
    if (options.callbackUrls && (options.callbackUrls.length > 0 || !consoleUrls)) validateRedirectUrls('userPool.callbackUrls', options.callbackUrls);
    if (options.signOutUrls && (options.signOutUrls.length > 0 || !consoleUrls)) validateRedirectUrls('userPool.signOutUrls', options.signOutUrls);
    const callbackUrls = consoleUrls
      ? [consoleUrls.callbackUrl, ...(options.callbackUrls ?? [])]
      : [...(options.callbackUrls ?? DEFAULT_CALLBACK_URLS)];
    const signOutUrls = consoleUrls
      ? [consoleUrls.signOutUrl, ...(options.signOutUrls ?? [])]
      : [...(options.signOutUrls ?? DEFAULT_SIGN_OUT_URLS)];
    validateRedirectUrls('the console client’s callback URLs', callbackUrls);
    validateRedirectUrls('the console client’s sign-out URLs', signOutUrls);
    if (options.domainPrefix !== undefined) validateDomainPrefix(options.domainPrefix);
    const threatProtection = options.threatProtection ?? true;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    const userPool = new UserPool(this, 'UserPool', {
      // People are added by an operator (`user add`: AdminCreateUser), never by themselves.
      selfSignUpEnabled: false,
      userInvitation: {
        emailSubject: 'Your Knouds API console account',
        emailBody:
          'You have been added to the Knouds API console. Sign in with {username} and the temporary password {####} ' +
          `within ${TEMPORARY_PASSWORD_DAYS} days, then choose your own password.`,
      },
      // The email address is the username, compared without regard to case.
      signInAliases: { email: true },
      signInCaseSensitive: false,
      passwordPolicy: {
        minLength: PASSWORD_MIN_LENGTH,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(TEMPORARY_PASSWORD_DAYS),
        passwordHistorySize: 5,
      },
      // TOTP MFA (an authenticator app) for whoever sets it up; no SMS, so no SNS role and no phone numbers.
      mfa: Mfa.OPTIONAL,
      mfaSecondFactor: { sms: false, otp: true, email: false },
      accountRecovery: AccountRecovery.EMAIL_ONLY,
      featurePlan: threatProtection ? FeaturePlan.PLUS : FeaturePlan.ESSENTIALS,
      ...(threatProtection ? { standardThreatProtectionMode: StandardThreatProtectionMode.FULL_FUNCTION } : {}),
      removalPolicy,
      deletionProtection: props.deletionProtection ?? removalPolicy !== RemovalPolicy.DESTROY,
    });

    const client = new UserPoolClient(this, 'ConsoleClient', {
      userPool,
      // A public client (the console runs in the browser): no secret; PKCE protects the code.
      generateSecret: false,
      supportedIdentityProviders: [UserPoolClientIdentityProvider.COGNITO],
      oAuth: {
        flows: { authorizationCodeGrant: true, implicitCodeGrant: false, clientCredentials: false },
        scopes: [OAuthScope.OPENID, OAuthScope.EMAIL, OAuthScope.PROFILE],
        callbackUrls,
        logoutUrls: signOutUrls,
      },
      // Password sign-in on the managed login pages (SRP, Cognito's default, never the password itself).
      authFlows: { userSrp: true },
      // A person may change their display name, never their email (their username): only an operator can.
      writeAttributes: new ClientAttributes().withStandardAttributes({ fullname: true }),
      accessTokenValidity: ACCESS_TOKEN_VALIDITY,
      idTokenValidity: ACCESS_TOKEN_VALIDITY,
      refreshTokenValidity: REFRESH_TOKEN_VALIDITY,
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
    });

    const stack = Stack.of(this);
    const domain = new UserPoolDomain(this, 'Domain', {
      userPool,
      cognitoDomain: { domainPrefix: options.domainPrefix ?? defaultDomainPrefix(stack.stackName) },
      managedLoginVersion: ManagedLoginVersion.NEWER_MANAGED_LOGIN,
    });
    // Managed login (version 2) shows "Login pages unavailable" to an app client without a style: this is
    // Cognito's default style, assigned to the console's client.
    new CfnManagedLoginBranding(this, 'ConsoleLoginStyle', {
      userPoolId: userPool.userPoolId,
      clientId: client.userPoolClientId,
      useCognitoProvidedValues: true,
    });

    if (threatProtection) {
      new CfnUserPoolRiskConfigurationAttachment(this, 'ThreatProtection', {
        userPoolId: userPool.userPoolId,
        clientId: 'ALL',
        compromisedCredentialsRiskConfiguration: {
          eventFilter: ['SIGN_IN', 'PASSWORD_CHANGE', 'SIGN_UP'],
          actions: { eventAction: 'BLOCK' },
        },
        // No notification emails: they need an SES identity, which the stack does not have.
        accountTakeoverRiskConfiguration: {
          actions: {
            lowAction: { eventAction: 'NO_ACTION', notify: false },
            mediumAction: { eventAction: 'MFA_IF_CONFIGURED', notify: false },
            highAction: { eventAction: 'MFA_REQUIRED', notify: false },
          },
        },
      });
    }

    Validations.of(userPool).acknowledge({
      id: 'AwsSolutions-COG2',
      reason:
        'MFA is optional by contract (API.md §6: TOTP MFA optional): people are added by an operator and may turn TOTP on; ' +
        'with threat protection on, a high-risk sign-in of a person without MFA is refused.',
    });
    if (!threatProtection) {
      Validations.of(userPool).acknowledge({
        id: 'AwsSolutions-COG8',
        reason:
          'The userPool.threatProtection prop is off: the deployer chose the Essentials feature plan (no per-user Plus charge) ' +
          'and so no compromised-credential or adaptive-authentication checks.',
      });
    }

    const issuer = `https://cognito-idp.${stack.region}.${Aws.URL_SUFFIX}/${userPool.userPoolId}`;
    this.userPool = userPool;
    this.consoleClient = client;
    this.domain = domain;
    this.config = { tokenUse: 'cognito-access', issuer, clientId: client.userPoolClientId, jwksUri: cognitoJwksUri(issuer) };
  }

  /** The authorizer's environment variables (IDENTITY_PROVIDER_ENV). */
  get authorizerEnvironment(): Record<string, string> {
    return identityProviderEnvironment(this.config);
  }

  /** The stack outputs the admin CLI and the console read (STACK_OUTPUTS). */
  get outputs(): Record<string, string> {
    return {
      [STACK_OUTPUTS.identityIssuer]: this.config.issuer,
      [STACK_OUTPUTS.consoleClientId]: this.config.clientId,
      ...(this.userPool ? { [STACK_OUTPUTS.userPoolId]: this.userPool.userPoolId } : {}),
      ...(this.domain ? { [STACK_OUTPUTS.loginDomainUrl]: this.domain.baseUrl() } : {}),
    };
  }
}

/** `<stack name, lowercase, without the reserved words>-<first 8 hex digits of the stack id>`. */
function defaultDomainPrefix(stackName: string): string {
  const slug = Token.isUnresolved(stackName)
    ? ''
    : stackName
        .toLowerCase()
        .replace(new RegExp(RESERVED_IN_DOMAIN_PREFIX.source, 'g'), '')
        .replace(/[^a-z0-9]+/g, '-')
        .slice(0, 54)
        .replace(/^-+|-+$/g, '');
  // arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid> → the uuid's first group.
  const stackUuidHead = Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', Aws.STACK_ID))));
  return `${slug || 'knouds'}-${stackUuidHead}`;
}

function validateDomainPrefix(prefix: string): void {
  if (Token.isUnresolved(prefix)) return;
  if (!DOMAIN_PREFIX_PATTERN.test(prefix) || RESERVED_IN_DOMAIN_PREFIX.test(prefix)) {
    throw new Error(
      `userPool.domainPrefix must be 1–63 lowercase letters, digits and hyphens, neither first nor last a hyphen, without 'aws', 'amazon' or 'cognito', got '${prefix}'`,
    );
  }
}

/** An absolute URL, `https` (or `http` on a loopback host), without query or fragment when `bare`. */
function checkUrl(what: string, value: string, opts: { bare: boolean; loopbackHosts: readonly string[] }): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${what} must be an absolute URL, got '${value}'`);
  }
  if (/\s/.test(value)) throw new Error(`${what} must not contain whitespace, got '${value}'`);
  const loopback = opts.loopbackHosts.includes(url.hostname);
  if (!(url.protocol === 'https:' || (url.protocol === 'http:' && loopback))) {
    throw new Error(`${what} must use https (http only on ${opts.loopbackHosts.join(' or ')}), got '${value}'`);
  }
  if (value.includes('#')) throw new Error(`${what} must not have a fragment, got '${value}'`);
  if (opts.bare && url.search !== '') throw new Error(`${what} must not have a query, got '${value}'`);
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

function validateExternalProvider(p: ExternalIdentityProvider): void {
  if (!Token.isUnresolved(p.issuer)) {
    checkUrl('identityProvider.issuer', p.issuer, { bare: true, loopbackHosts: LOOPBACK_HOSTS });
    // The usual slip: the discovery document's URL given for the issuer, which no token's `iss` matches.
    if (p.issuer.includes('/.well-known/')) {
      throw new Error(`identityProvider.issuer is the issuer identifier (the tokens' iss), not a /.well-known/ document, got '${p.issuer}'`);
    }
  }
  if (p.jwksUri !== undefined && !Token.isUnresolved(p.jwksUri)) {
    checkUrl('identityProvider.jwksUri', p.jwksUri, { bare: false, loopbackHosts: LOOPBACK_HOSTS });
  }
  const nonBlank = (what: string, value: string | undefined) => {
    if (value === undefined || Token.isUnresolved(value)) return;
    if (value.trim() === '' || /\s/.test(value)) throw new Error(`${what} must be a non-empty string without whitespace, got '${value}'`);
  };
  if (typeof p.clientId !== 'string') throw new Error(`identityProvider.clientId must be a string, got ${String(p.clientId)}`);
  nonBlank('identityProvider.clientId', p.clientId);
  nonBlank('identityProvider.audience', p.audience);
}

/** Cognito accepts `https`, and `http` only for `localhost`. */
function validateRedirectUrls(what: string, urls: readonly string[]): void {
  if (urls.length === 0) throw new Error(`${what} must hold at least one URL`);
  if (urls.length > 100) throw new Error(`${what} may hold at most 100 URLs (Cognito's limit), got ${urls.length}`);
  for (const url of urls) {
    if (!Token.isUnresolved(url)) checkUrl(what, url, { bare: false, loopbackHosts: ['localhost'] });
  }
}
