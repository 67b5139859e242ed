/**
 * The provider's own pages: sign-in, sign-out, signed out, and errors. Plain server-rendered HTML with no
 * script, every user-supplied value escaped, each page with `lang`, a title and one heading, form fields
 * with their `<label>`s, and messages in words.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export const escapeHtml = (value: unknown): string => String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const STYLE = `body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24}
main{max-width:24rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.2)}
h1{font-size:1.5rem;margin:0 0 1rem}label{display:block;font-weight:600;margin:1rem 0 .25rem}
input{box-sizing:border-box;width:100%;padding:.5rem;font-size:1rem;border:1px solid #6b7280;border-radius:4px}
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;cursor:pointer}
button.secondary{background:#e5e7eb;color:#1b1f24;margin-left:.5rem}
button:focus-visible,input:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.error{color:#b91c1c;background:#fef2f2;border:1px solid #b91c1c;border-radius:4px;padding:.75rem}
.note{color:#4b5563;font-size:.9rem}`;

/** The style's hash for the Content-Security-Policy: no inline script or style is allowed but this one. */
const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/**
 * Security headers of every page: no script at all, no framing (clickjacking), forms may post only to
 * this server and be redirected to `formTargets` (the console's origins, where the flow ends), no caching.
 */
export function pageHeaders(formTargets: readonly string[]): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': [
      "default-src 'none'",
      `style-src ${STYLE_HASH}`,
      `form-action 'self' ${formTargets.join(' ')}`.trim(),
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'X-Frame-Options': 'DENY',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  };
}

function layout(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Knouds (local)</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export interface LoginPageOptions {
  /** Where the form posts (the interaction's login URL). */
  readonly action: string;
  /** The email typed before, kept in the field after a failed attempt (or the `login_hint`). */
  readonly email?: string;
  /** Shows that the email or the password was wrong. */
  readonly failed?: boolean;
}

export const WRONG_CREDENTIALS_MESSAGE = 'The email or password is not correct. Check both and try again.';

export function loginPage({ action, email = '', failed = false }: LoginPageOptions): string {
  const error = failed ? `<p class="error" id="sign-in-error" role="alert">${escapeHtml(WRONG_CREDENTIALS_MESSAGE)}</p>\n` : '';
  const describedBy = failed ? ' aria-describedby="sign-in-error"' : '';
  return layout(
    'Sign in',
    `<h1>Sign in to Knouds</h1>
${error}<form method="post" action="${escapeHtml(action)}" novalidate>
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${escapeHtml(email)}"${describedBy}${failed || !email ? ' autofocus' : ''}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${describedBy}${!failed && email ? ' autofocus' : ''}>
<button type="submit">Sign in</button>
</form>
<p class="note">This is the local sign-in of <code>npm start</code>. It prints the demo person's password when it starts; the admin CLI adds other people.</p>`,
  );
}

/** The sign-out confirmation; `form` is the provider's own hidden form (with its CSRF token). */
export function logoutPage(form: string): string {
  return layout(
    'Sign out',
    `<h1>Sign out of Knouds</h1>
<p>Do you want to sign out? You will need your email and password to sign in again.</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button>`,
  );
}

export function signedOutPage(): string {
  return layout('Signed out', `<h1>You are signed out</h1>\n<p>You can close this page, or go back to the console to sign in again.</p>`);
}

export function messagePage(heading: string, message: string): string {
  return layout(heading, `<h1>${escapeHtml(heading)}</h1>\n<p>${escapeHtml(message)}</p>`);
}

export function sendPage(res: ServerResponse, status: number, html: string, formTargets: readonly string[]): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { ...pageHeaders(formTargets), 'Content-Length': Buffer.byteLength(html) });
  res.end(html);
}
