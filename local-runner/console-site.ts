/**
 * Serves the console locally (API.md §6) as CloudFront serves it deployed: the files of the stack's own
 * console asset (read from the template's bucket deployment), `index.html` for the console's own routes
 * (paths whose last segment has no dot), 404 for a file the build does not have, and `/config.json`
 * written for the local OpenID Connect provider instead of the deployed one.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { ConsoleConfig } from '../lib/console.js';
import { ASSET_CACHE_CONTROL, consoleSecurityHeaderFields, PAGE_CACHE_CONTROL } from '../lib/console-security.js';

/** What the console reads from `GET /config.json` (API.md §6): one type for the deployed file and this one. */
export type { ConsoleConfig };

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};


/**
 * A request handler for everything of the console: GET and HEAD only. `dirs` are the deployment's asset
 * folders in order (a later folder's file wins).
 */
export function createConsoleSite(dirs: readonly string[], config: ConsoleConfig): (req: IncomingMessage, res: ServerResponse) => void {
  const configBody = JSON.stringify(config);
  // As CloudFront sends them deployed (the provider shares this origin locally).
  const CONSOLE_SECURITY_HEADERS = consoleSecurityHeaderFields([new URL(config.issuer).origin]);
  const find = async (relative: string): Promise<string | undefined> => {
    for (const dir of [...dirs].reverse()) {
      const file = path.join(dir, relative);
      if (!file.startsWith(dir + path.sep)) return undefined;
      const s = await stat(file).catch(() => undefined);
      if (s?.isFile()) return file;
    }
    return undefined;
  };
  return (req, res) => {
    void (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8', ...CONSOLE_SECURITY_HEADERS }).end('Method not allowed\n');
        return;
      }
      let pathname: string;
      let route: boolean;
      try {
        const raw = new URL(req.url ?? '/', 'http://localhost').pathname;
        // As the stack's CloudFront Function decides (lib/console.ts), on the path as sent: a last segment
        // without a dot is one of the console's routes, anything else names a file of the build. The
        // function is not on the `/assets/*` behaviour: everything there names a file.
        route = !raw.startsWith('/assets/') && !raw.slice(raw.lastIndexOf('/') + 1).includes('.');
        pathname = decodeURIComponent(raw);
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', ...CONSOLE_SECURITY_HEADERS }).end('Bad request\n');
        return;
      }
      if (pathname === '/config.json') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', ...CONSOLE_SECURITY_HEADERS });
        res.end(req.method === 'HEAD' ? undefined : configBody);
        return;
      }
      const relative = path.normalize(pathname).replace(/^[/\\]+/, '');
      // A route gets index.html (the console's router decides what it shows); a file missing from the build
      // is 404, not the page (deployed, the bucket refuses it with 403): a stale asset name fails plainly.
      const file = route ? await find('index.html') : await find(relative);
      if (!file) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...CONSOLE_SECURITY_HEADERS }).end('Not found\n');
        return;
      }
      const hashed = file.includes(`${path.sep}assets${path.sep}`);
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        // Vite names the built files by their content: cache them for good; index.html never.
        'cache-control': hashed ? ASSET_CACHE_CONTROL : PAGE_CACHE_CONTROL,
        ...CONSOLE_SECURITY_HEADERS,
      });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end();
    });
  };
}
