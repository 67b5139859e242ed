/**
 * The one API client: openapi-fetch typed by schema.ts, which is generated from the API's own OpenAPI
 * document (`npm run console:api`). A middleware adds the person's access token and the chosen account
 * to every call, and ends the session on a 401.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type ApiClient = ReturnType<typeof createClient<paths>>;

export interface ApiSession {
  /** The signed-in person's access token, or null. */
  accessToken(): string | null;
  /** The account to act for (`Knouds-Account`), or null to let the API choose (GET /me only). */
  account(): string | null;
  /** The API refused the token (expired, or revoked at the provider). */
  unauthorized(): void;
}

let client: ApiClient | undefined;

/**
 * Refusals that mean what the console knows of the person's access is out of date: their role or the
 * account's tier changed since /me was read (API.md §2: from the next request).
 */
const ACCESS_CHANGED = new Set(['CAPABILITY_DENIED', 'TIER_CEILING_EXCEEDED']);
const accessListeners = new Set<() => void>();

/** Calls `listener` after each answer that says the person's access changed; returns the unsubscribe. */
export function onAccessChanged(listener: () => void): () => void {
  accessListeners.add(listener);
  return () => {
    accessListeners.delete(listener);
  };
}

export function createApi(baseUrl: string, session: ApiSession): ApiClient {
  const api = createClient<paths>({ baseUrl: baseUrl.replace(/\/+$/, '') });
  const credentials: Middleware = {
    onRequest({ request }) {
      const token = session.accessToken();
      if (token) request.headers.set('Authorization', `Bearer ${token}`);
      const account = session.account();
      if (account && !request.headers.has('Knouds-Account')) request.headers.set('Knouds-Account', account);
      return request;
    },
    async onResponse({ response }) {
      if (response.status === 401) session.unauthorized();
      if (response.status === 403 && accessListeners.size > 0) {
        const code = ((await response
          .clone()
          .json()
          .catch(() => null)) as { code?: unknown } | null)?.code;
        if (typeof code === 'string' && ACCESS_CHANGED.has(code)) for (const listener of accessListeners) listener();
      }
      return response;
    },
  };
  api.use(credentials);
  client = api;
  return api;
}

/** The client createApi() made at start. */
export function api(): ApiClient {
  if (!client) throw new Error('createApi() first');
  return client;
}
