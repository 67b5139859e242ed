/**
 * The console's security headers, one definition for both places that serve it: CloudFront's response
 * headers policy (lib/console.ts) and the local runner (local-runner/console-site.ts). The Content
 * Security Policy allows scripts, styles and requests to the console's own origin only, plus requests to
 * the identity provider (its discovery, token and keys endpoints); no inline script or style.
 */

/** Browsers revalidate index.html and /config.json on every load, so a deployment shows at once. */
export const PAGE_CACHE_CONTROL = 'no-cache';
/** Vite names the built files under /assets by their content: a new build has new names. */
export const ASSET_CACHE_CONTROL = 'public, max-age=31536000, immutable';

export interface ConsoleSecurityHeaders {
  readonly contentSecurityPolicy: string;
  readonly referrerPolicy: 'no-referrer';
  readonly frameOptions: 'DENY';
  readonly contentTypeOptions: 'nosniff';
}

/** `providerOrigins`: where the console's OpenID Connect library may fetch (e.g. `https://cognito-idp.<region>.amazonaws.com`). */
export function consoleSecurityHeaders(providerOrigins: readonly string[]): ConsoleSecurityHeaders {
  const connect = ["'self'", ...providerOrigins].join(' ');
  return {
    contentSecurityPolicy: [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      "font-src 'self'",
      `connect-src ${connect}`,
      "manifest-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    referrerPolicy: 'no-referrer',
    frameOptions: 'DENY',
    contentTypeOptions: 'nosniff',
  };
}

/** The same headers as HTTP header fields (the local runner sends these). */
export function consoleSecurityHeaderFields(providerOrigins: readonly string[]): Record<string, string> {
  const h = consoleSecurityHeaders(providerOrigins);
  return {
    'content-security-policy': h.contentSecurityPolicy,
    'referrer-policy': h.referrerPolicy,
    'x-frame-options': h.frameOptions,
    'x-content-type-options': h.contentTypeOptions,
  };
}
