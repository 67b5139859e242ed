/**
 * A scripted browser for the local OpenID Connect provider: follows redirects one by one (from the
 * `Location` headers), keeps cookies by hand, fills the sign-in form, and exchanges the code, as the
 * console does in a real browser. Other suites can get a person's tokens with `signIn`.
 */
import { createHash, randomBytes } from 'node:crypto';

interface StoredCookie {
  readonly value: string;
  readonly path: string;
}

/** Enough of RFC 6265 for one host: name → value per path, expired or emptied cookies dropped. */
export class CookieJar {
  private readonly cookies = new Map<string, StoredCookie>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let cookiePath = '/';
      let expired = value === '';
      for (const attribute of attributes) {
        const [key = '', attrValue = ''] = attribute.split('=');
        if (key.toLowerCase() === 'path') cookiePath = attrValue;
        if (key.toLowerCase() === 'expires' && Date.parse(attrValue) <= Date.now()) expired = true;
        if (key.toLowerCase() === 'max-age' && Number(attrValue) <= 0) expired = true;
      }
      const key = `${cookiePath}\u0000${name}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { value, path: cookiePath });
    }
  }

  header(url: string): string {
    const { pathname } = new URL(url);
    const matches = (p: string) => pathname === p || pathname.startsWith(p.endsWith('/') ? p : `${p}/`);
    return [...this.cookies.entries()]
      .filter(([, c]) => matches(c.path))
      .map(([key, c]) => `${key.slice(key.indexOf('\u0000') + 1)}=${c.value}`)
      .join('; ');
  }

  names(): string[] {
    return [...this.cookies.keys()].map((key) => key.slice(key.indexOf('\u0000') + 1));
  }
}

/** One request without following redirects, with the jar's cookies. */
export async function browse(jar: CookieJar, url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
  const cookie = jar.header(url);
  const response = await fetch(url, {
    method: init.method ?? (init.form ? 'POST' : 'GET'),
    redirect: 'manual',
    headers: {
      ...(cookie ? { cookie } : {}),
      ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    },
    ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
  });
  jar.store(response);
  return response;
}

export interface Landing {
  /** The URL the last redirect pointed at outside the provider (the client's redirect URI), if any. */
  readonly redirectedTo?: URL;
  /** The last answer of the provider when it did not redirect (a page, an error). */
  readonly page?: Response;
  readonly pageText?: string;
}

/** Follows the provider's redirects from `response` until it answers a page or leaves for another path. */
export async function follow(jar: CookieJar, response: Response, from: string, issuer: string): Promise<Landing> {
  let current = response;
  let url = from;
  for (let hops = 0; hops < 10; hops++) {
    const location = current.headers.get('location');
    if (current.status < 300 || current.status >= 400 || !location) {
      return { page: current, pageText: await current.text() };
    }
    await current.body?.cancel();
    const next = new URL(location, url);
    if (!next.href.startsWith(`${issuer}/`)) return { redirectedTo: next };
    url = next.href;
    current = await browse(jar, url);
  }
  throw new Error('more than 10 redirects');
}

export interface Pkce {
  readonly verifier: string;
  readonly challenge: string;
}

export function newPkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface Discovery {
  readonly issuer: string;
  readonly authorization_endpoint: string;
  readonly token_endpoint: string;
  readonly jwks_uri: string;
  readonly end_session_endpoint: string;
  readonly [key: string]: unknown;
}

export async function discover(issuer: string): Promise<Discovery> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (response.status !== 200) throw new Error(`discovery answered ${response.status}`);
  return (await response.json()) as Discovery;
}

export function authorizationUrl(
  discovery: Discovery,
  params: { clientId: string; redirectUri: string; state?: string; scope?: string; pkce?: Pkce | null; method?: string; extra?: Record<string, string> },
): string {
  const url = new URL(discovery.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', params.clientId);
  url.searchParams.set('redirect_uri', params.redirectUri);
  url.searchParams.set('scope', params.scope ?? 'openid email profile');
  url.searchParams.set('state', params.state ?? randomBytes(8).toString('hex'));
  if (params.pkce) {
    url.searchParams.set('code_challenge', params.method === 'plain' ? params.pkce.verifier : params.pkce.challenge);
    url.searchParams.set('code_challenge_method', params.method ?? 'S256');
  }
  for (const [key, value] of Object.entries(params.extra ?? {})) url.searchParams.set(key, value);
  return url.href;
}

/** The sign-in form's action in a login page. */
export function formAction(html: string, base: string): string {
  const action = /<form[^>]*\saction="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error(`no form in the page:\n${html}`);
  return new URL(action.replaceAll('&amp;', '&'), base).href;
}

export interface SignInResult {
  readonly jar: CookieJar;
  readonly discovery: Discovery;
  readonly pkce: Pkce;
  /** Where the provider sent the browser back: the client's redirect URI with code, state, iss. */
  readonly callback?: URL;
  /** The login page answered again instead (a wrong email or password). */
  readonly loginPage?: string;
}

/** Starts an authorization request, signs in on the login page, and follows back to the client. */
export async function signInToCallback(
  issuer: string,
  options: { email: string; password: string; clientId: string; redirectUri: string; jar?: CookieJar; state?: string },
): Promise<SignInResult> {
  const jar = options.jar ?? new CookieJar();
  const discovery = await discover(issuer);
  const pkce = newPkce();
  const start = authorizationUrl(discovery, { clientId: options.clientId, redirectUri: options.redirectUri, pkce, ...(options.state ? { state: options.state } : {}) });
  const landing = await follow(jar, await browse(jar, start), start, issuer);
  if (landing.redirectedTo) return { jar, discovery, pkce, callback: landing.redirectedTo };
  if (landing.page?.status !== 200) throw new Error(`the provider answered ${landing.page?.status}: ${landing.pageText}`);
  const action = formAction(landing.pageText!, issuer);
  const posted = await browse(jar, action, { form: { email: options.email, password: options.password } });
  const after = await follow(jar, posted, action, issuer);
  if (after.redirectedTo) return { jar, discovery, pkce, callback: after.redirectedTo };
  return { jar, discovery, pkce, loginPage: after.pageText! };
}

export interface TokenResponse {
  readonly access_token: string;
  readonly id_token: string;
  readonly token_type: string;
  readonly expires_in: number;
  readonly scope?: string;
  readonly refresh_token?: string;
}

export async function exchangeCode(
  discovery: Discovery,
  params: { code: string; verifier?: string; clientId: string; redirectUri: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const form: Record<string, string> = {
    grant_type: 'authorization_code',
    code: params.code,
    redirect_uri: params.redirectUri,
    client_id: params.clientId,
    ...(params.verifier ? { code_verifier: params.verifier } : {}),
  };
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Signs a person in through the login page and returns their tokens (throws when it fails). */
export async function signIn(
  issuer: string,
  options: { email: string; password: string; clientId: string; redirectUri: string },
): Promise<TokenResponse> {
  const result = await signInToCallback(issuer, options);
  const code = result.callback?.searchParams.get('code');
  if (!code) throw new Error(`no code: ${result.callback?.href ?? 'the login page answered again'}`);
  const { status, body } = await exchangeCode(result.discovery, { code, verifier: result.pkce.verifier, clientId: options.clientId, redirectUri: options.redirectUri });
  if (status !== 200) throw new Error(`the token endpoint answered ${status}: ${JSON.stringify(body)}`);
  return body as unknown as TokenResponse;
}
