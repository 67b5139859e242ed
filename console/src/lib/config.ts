/**
 * The console's settings, read once from `GET /config.json` (API.md §6): written at deploy time next to
 * the console (locally by `npm start`), so one build serves every stack.
 */
import type { ConsoleConfig } from './config-shape';

export type { ConsoleConfig };

function text(body: Record<string, unknown>, name: string, fallback?: string): string {
  const value = body[name] ?? fallback;
  if (typeof value !== 'string' || value === '') throw new Error(`config.json has no ${name}`);
  return value;
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch('/config.json', { cache: 'no-store', credentials: 'omit' });
  if (!response.ok) throw new Error(`GET /config.json answered ${response.status}`);
  const body = (await response.json()) as unknown;
  if (!body || typeof body !== 'object') throw new Error('config.json is not a JSON object');
  const fields = body as Record<string, unknown>;
  const endSession = fields['end_session_endpoint'];
  return {
    api_url: text(fields, 'api_url'),
    issuer: text(fields, 'issuer'),
    client_id: text(fields, 'client_id'),
    redirect_uri: text(fields, 'redirect_uri'),
    post_logout_redirect_uri: text(fields, 'post_logout_redirect_uri', `${window.location.origin}/`),
    scope: text(fields, 'scope', 'openid email profile'),
    ...(typeof endSession === 'string' && endSession !== '' ? { end_session_endpoint: endSession } : {}),
  };
}
