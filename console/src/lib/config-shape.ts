/**
 * What the console reads from `GET /config.json`: the one definition, shared by the console (config.ts)
 * and the stack that writes the file (lib/console.ts; locally local-runner/console-site.ts). It imports
 * nothing, so both TypeScript projects can read it.
 */
export interface ConsoleConfig {
  /** The API's base URL, e.g. `https://console.example.com/v1`. */
  readonly api_url: string;
  /** The OpenID Connect provider (its discovery document is at `<issuer>/.well-known/openid-configuration`). */
  readonly issuer: string;
  readonly client_id: string;
  /** Where the provider sends the browser back with the code: the console's `/auth/callback`. */
  readonly redirect_uri: string;
  /** Where the provider sends the browser after signing out (default: the console's `/`). */
  readonly post_logout_redirect_uri: string;
  /** What the console asks the provider for (default `openid email profile`). */
  readonly scope: string;
  /**
   * Where to sign out, for a provider whose discovery has no `end_session_endpoint`: Cognito's `/logout` on
   * the managed login domain (it takes `client_id` and `logout_uri`). Absent: the discovery document's.
   */
  readonly end_session_endpoint?: string;
}
