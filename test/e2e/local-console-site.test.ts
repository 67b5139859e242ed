/**
 * The local runner serves the console from the stack's own asset (the template's bucket deployment) on the
 * API's origin, as CloudFront does deployed: files of the build (404 for any other file), index.html for
 * the console's own routes, /config.json for the local provider, the console's security headers; the API
 * and the provider keep their paths.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { consoleSecurityHeaderFields } from '../../lib/console-security.js';
import { call } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
let assetDir: string;

beforeAll(async () => {
  t = await startTestStack('console-site');
  assetDir = t.stack.model.sites[0]!.assetDirs[0]!;
});
afterAll(() => t.close());

/** A GET with the path exactly as given (fetch would normalize `..`). */
function rawGet(rawPath: string): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const { port } = new URL(t.stack.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console on the local stack', () => {
  it('is the template’s bucket deployment: one site whose asset is the Vite build', () => {
    expect(t.stack.model.sites).toHaveLength(1);
    expect(readdirSync(assetDir)).toEqual(expect.arrayContaining(['index.html', 'assets']));
  });

  it('serves index.html at / and at every route of the console, never cached, with the security headers', async () => {
    const index = readFileSync(path.join(assetDir, 'index.html'), 'utf8');
    const expected = consoleSecurityHeaderFields([new URL(t.stack.url).origin]);
    for (const route of ['/', '/keys', '/webhooks', '/auth/callback?code=x&state=y', '/no/such/page']) {
      const reply = await call(`${t.stack.url}${route}`);
      expect({ route, status: reply.status, type: reply.headers.get('content-type'), body: reply.text }).toEqual({
        route,
        status: 200,
        type: 'text/html; charset=utf-8',
        body: index,
      });
      expect(reply.headers.get('cache-control')).toBe('no-cache');
      for (const [name, value] of Object.entries(expected)) expect(reply.headers.get(name)).toBe(value);
    }
    expect(expected['content-security-policy']).toContain("script-src 'self'");
  });

  it('serves the built files by name, cached for good (their names carry their content hash)', async () => {
    const js = readdirSync(path.join(assetDir, 'assets')).find((f) => f.endsWith('.js'))!;
    const reply = await call(`${t.stack.url}/assets/${js}`);
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(reply.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(reply.text).toBe(readFileSync(path.join(assetDir, 'assets', js), 'utf8'));
  });

  it('answers /config.json with the local provider’s settings, which its discovery confirms', async () => {
    const reply = await call(`${t.stack.url}/config.json`);
    expect(reply.status).toBe(200);
    expect(reply.headers.get('cache-control')).toBe('no-store');
    expect(reply.body).toEqual({
      api_url: t.stack.apiUrl,
      issuer: `${t.stack.url}/oidc`,
      client_id: 'knouds-console',
      redirect_uri: `${t.stack.url}/auth/callback`,
      post_logout_redirect_uri: `${t.stack.url}/`,
      scope: 'openid email profile',
    });
    const discovery = await call(`${t.stack.url}/oidc/.well-known/openid-configuration`);
    expect(discovery.body['issuer']).toBe(reply.body['issuer']);
  });

  it('answers 404, not the console, for a file the build does not have (a stale asset name fails plainly)', async () => {
    // Under /assets/ every path names a file, as on the stack's `/assets/*` behaviour (no route rewriting there).
    for (const missing of ['/assets/index-0000000.js', '/favicon.ico', '/keys/logo.png', '/assets/no-extension']) {
      const reply = await call(`${t.stack.url}${missing}`);
      expect({ missing, status: reply.status, type: reply.headers.get('content-type') }).toEqual({ missing, status: 404, type: 'text/plain; charset=utf-8' });
    }
  });

  it('never serves a file outside the build (encoded dot segments name no file of it)', async () => {
    for (const raw of ['/..%2f..%2fpackage.json', '/%2e%2e/%2e%2e/package.json', '/assets/..%2f..%2f..%2fpackage.json']) {
      const reply = await rawGet(raw);
      expect({ raw, status: reply.status }).toEqual({ raw, status: 404 });
      expect(reply.body).not.toContain('"devDependencies"');
    }
  });

  it('answers only GET and HEAD', async () => {
    const head = await fetch(`${t.stack.url}/keys`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const post = await call(`${t.stack.url}/keys`, { method: 'POST', body: {} });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('leaves the API and the provider their paths: /v1 answers JSON, unknown API paths are still 404', async () => {
    expect((await call(`${t.stack.apiUrl}/health`)).body).toEqual({ status: 'ok' });
    const missing = await call(`${t.stack.apiUrl}/no-such-route`);
    expect(missing.status).toBe(404);
    expect(missing.body['code']).toBe('NOT_FOUND');
    expect((await call(`${t.stack.url}/v1`)).headers.get('content-type')).not.toContain('text/html');
    expect((await call(`${t.stack.url}/oidc/jwks`)).body['keys']).toEqual(expect.any(Array));
  });
});
