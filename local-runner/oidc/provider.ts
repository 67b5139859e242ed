/**
 * The configuration of oidc-provider (a certified OpenID Connect implementation) for the local provider:
 * one public client (the console), authorization code with PKCE S256 only, RFC 9068 JWT access tokens
 * for the API (`aud` = the API's identifier, RS256, 1 hour, with the `email` claim), no refresh tokens,
 * no consent screen for the console (a first-party client: its grant is made in the interaction, with
 * the `loadExistingGrant` helper as the library's documentation describes), and our own plain pages.
 */
import type { KoaContextWithOIDC, Configuration, JWKS } from 'oidc-provider';
import Provider, { errors, interactionPolicy } from 'oidc-provider';
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';
import { logoutPage, messagePage, pageHeaders, signedOutPage } from './pages.js';
import type { PeopleStore } from './people.js';
import type { PrivateJwks } from './signing-keys.js';
import { ACCESS_TOKEN_TTL_SECONDS, LOCAL_OIDC_ALGORITHMS, LOCAL_OIDC_PATH, type ConsoleClientSettings } from './settings.js';

/** An interaction's cookie or record is gone (expired, or another sign-in began in the browser since). */
export const { SessionNotFound } = errors;

export interface ProviderSetup {
  readonly issuer: string;
  /** The API's identifier: the resource of every access token, and its `aud`. */
  readonly audience: string;
  readonly consoleClient: ConsoleClientSettings;
  readonly jwks: PrivateJwks;
  readonly people: PeopleStore;
  /** Keys that sign the provider's cookies. */
  readonly cookieKeys: string[];
}

/** Scopes the console may ask for; its access tokens carry them too (as Cognito's do). */
const CONSOLE_SCOPE = 'openid email profile';
const HOUR = 3600;

/** The pages' headers on a Koa context (the provider's own pages: errors, sign-out). */
function setPageHeaders(ctx: KoaContextWithOIDC, formTargets: readonly string[]): void {
  for (const [name, value] of Object.entries(pageHeaders(formTargets))) ctx.set(name, value);
}

export function createProvider(setup: ProviderSetup): Provider {
  const { issuer, audience, consoleClient, people } = setup;
  const [alg] = LOCAL_OIDC_ALGORITHMS;
  const consoleOrigins = [...new Set(consoleClient.redirectUris.map((uri) => new URL(uri).origin))];

  // A session whose person was removed since asks for a sign-in again (the default policy would go on
  // with a session nobody owns).
  const policy = interactionPolicy.base();
  policy
    .get('login')!
    .checks.add(
      new interactionPolicy.Check('person_removed', 'the signed-in person no longer exists', (ctx) =>
        Boolean(ctx.oidc.session?.accountId) && !ctx.oidc.account ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT,
      ),
    );

  const configuration: Configuration = {
    adapter: createMemoryAdapter(),
    jwks: setup.jwks as JWKS,
    clients: [
      {
        client_id: consoleClient.clientId,
        client_name: 'Knouds console',
        application_type: 'web',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [...consoleClient.redirectUris],
        post_logout_redirect_uris: [...consoleClient.postLogoutRedirectUris],
        scope: CONSOLE_SCOPE,
        id_token_signed_response_alg: alg,
      },
    ],
    scopes: ['openid'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'] },
    responseTypes: ['code'],
    // PKCE for every request (the library accepts only S256 and refuses `plain`).
    pkce: { required: () => true },
    enabledJWA: { idTokenSigningAlgValues: [alg] },
    // No refresh tokens (the library's default issueRefreshToken needs the refresh_token grant and the
    // offline_access scope, which the console has not): it keeps its tokens in the tab's session storage;
    // after an hour it sends the browser to the provider again, whose session (8 hours) signs it in
    // without the form.
    // The console's client is public: no client secret, no client assertion.
    clientAuthMethods: ['none'],
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL_SECONDS,
      AuthorizationCode: 60,
      IdToken: HOUR,
      Interaction: 10 * 60,
      Session: 8 * HOUR,
      Grant: 8 * HOUR,
    },
    cookies: {
      keys: setup.cookieKeys,
      // The provider's session cookie goes to the provider's paths only, not with every API call.
      long: { httpOnly: true, sameSite: 'lax', path: LOCAL_OIDC_PATH },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    features: {
      devInteractions: { enabled: false },
      // The API takes bearer tokens only and refuses a key-bound one (cnf): issuing DPoP-bound tokens would
      // give the console tokens the API refuses, so the provider does not offer DPoP.
      dPoP: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          setPageHeaders(ctx, consoleOrigins);
          ctx.body = logoutPage(form);
        },
        async postLogoutSuccessSource(ctx) {
          setPageHeaders(ctx, consoleOrigins);
          ctx.body = signedOutPage();
        },
      },
      resourceIndicators: {
        enabled: true,
        // Every token is for the API unless the client names another resource (none exists).
        async defaultResource(_ctx, _client, oneOf) {
          if (oneOf) return oneOf.includes(audience) ? audience : oneOf;
          return audience;
        },
        // At the token endpoint the granted resource (the API) is used without a `resource` parameter.
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(_ctx, resourceIndicator, client) {
          if (resourceIndicator !== audience || client.clientId !== consoleClient.clientId) throw new errors.InvalidTarget();
          return {
            scope: CONSOLE_SCOPE,
            audience,
            accessTokenTTL: ACCESS_TOKEN_TTL_SECONDS,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        },
      },
    },
    async findAccount(_ctx, sub) {
      const person = people.findBySubject(sub);
      if (!person) return undefined;
      return {
        accountId: person.subject,
        claims: () => ({ sub: person.subject, email: person.email, email_verified: true, preferred_username: person.email }),
      };
    },
    // The API reads the person's email from the access token.
    async extraTokenClaims(_ctx, token) {
      const subject = 'accountId' in token ? token.accountId : undefined;
      const person = subject ? people.findBySubject(subject) : undefined;
      return person ? { email: person.email } : undefined;
    },
    // The console is a first-party client: it gets what it asks for (its registered scope caps that)
    // without a consent screen. Other clients (there are none) would keep the library's default.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const client = oidc.client!;
      const grantId = oidc.result?.consent?.grantId ?? oidc.session!.grantIdFor(client.clientId);
      const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      if (client.clientId !== consoleClient.clientId || !oidc.account) return existing;
      const grant = existing ?? new oidc.provider.Grant({ clientId: client.clientId, accountId: oidc.account.accountId });
      grant.addOIDCScope([...oidc.requestParamOIDCScopes]);
      grant.addOIDCClaims([...oidc.requestParamClaims]);
      for (const [indicator, server] of Object.entries(oidc.resourceServers ?? {})) {
        grant.addResourceScope(indicator, [...oidc.requestParamScopes].filter((scope) => server.scopes.has(scope)));
      }
      await grant.save();
      return grant;
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `${LOCAL_OIDC_PATH}/interaction/${interaction.uid}`,
    },
    // Same policy as the library's default (public clients, from their redirect URIs' origins), stated here.
    clientBasedCORS(_ctx, origin, client) {
      return client.clientAuthMethod === 'none' && (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin);
    },
    async renderError(ctx, out) {
      setPageHeaders(ctx, consoleOrigins);
      const description = typeof out.error_description === 'string' ? out.error_description : 'the request could not be completed';
      ctx.body = messagePage(
        'Sign-in cannot continue',
        `The sign-in request was refused (${String(out.error)}): ${description}. Go back to the console and sign in again; if this persists, the console's settings do not match the local provider.`,
      );
    },
  };
  return new Provider(issuer, configuration);
}
