/**
 * The admin endpoint of the local provider, through which the admin CLI (another process) adds, finds,
 * lists and removes people of the running `npm start`, and gives one a new password:
 *
 *   GET    /oidc/admin/people                → 200 {people: [{subject, email, created_at}]}
 *   GET    /oidc/admin/people?email=<email>  → 200 {subject, email, created_at} | 404
 *   POST   /oidc/admin/people {email}        → 201 {subject, email, password} (new) | 200 {…, password: null}
 *   DELETE /oidc/admin/people?email=<email>  → 200 {removed: true} | 404
 *   POST   /oidc/admin/people/password {email} → 200 {subject, email, password} (a fresh one) | 404
 *
 * The password reset is for a person whose password was lost (a `user add` killed after the provider
 * made them answers `password: null` when tried again): their old password stops working, their subject,
 * sessions and tokens already issued are kept. No password is ever logged; it is in the answer only.
 *
 * Why an endpoint rather than the CLI writing the people file itself: the running provider stays the one
 * writer of its people (no lock between processes, no update lost when two CLI calls overlap), a change
 * applies at once (a removed person cannot sign in from the next attempt on), and it works the same
 * whether people live in a file (--persist) or only in memory.
 *
 * It is guarded by a random bearer token (256 bits) that only the state file holds (mode 0600, readable
 * by the user who ran `npm start`), compared in constant time; the server listens on loopback only. A
 * request with an `Origin` header (a browser's) is refused: a web page cannot use it even by guessing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidEmailError, type PeopleStore } from './people.js';

export const ADMIN_PATH = '/admin/people';
export const ADMIN_PASSWORD_PATH = `${ADMIN_PATH}/password`;
const MAX_BODY_BYTES = 4096;

const digest = (value: string) => createHash('sha256').update(value).digest();

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export async function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Serves `<issuer path>/admin/people`; `url` is the request's URL within the provider's mount. */
export function createAdminHandler(people: PeopleStore, token: string) {
  const expected = digest(token);
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (req.headers.origin !== undefined) return sendJson(res, 403, { error: 'the admin endpoint is not for browsers' });
    const presented = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!presented || !timingSafeEqual(digest(presented), expected)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return sendJson(res, 401, { error: 'the admin token of the state file is required' });
    }
    const emailOfBody = async (): Promise<{ email: unknown } | { refused: [number, string] }> => {
      const text = await readBody(req, MAX_BODY_BYTES);
      if (text === undefined) return { refused: [413, `the body must be at most ${MAX_BODY_BYTES} bytes`] };
      try {
        return { email: (JSON.parse(text) as { email?: unknown } | null)?.email };
      } catch {
        return { refused: [400, 'the body must be JSON: {"email": "<email>"}'] };
      }
    };
    if (url.pathname !== ADMIN_PATH && url.pathname !== ADMIN_PASSWORD_PATH) return sendJson(res, 404, { error: 'not found' });
    const email = url.searchParams.get('email');
    try {
      if (url.pathname === ADMIN_PASSWORD_PATH) {
        if (req.method !== 'POST') {
          res.setHeader('Allow', 'POST');
          return sendJson(res, 405, { error: `${req.method} is not allowed` });
        }
        const body = await emailOfBody();
        if ('refused' in body) return sendJson(res, ...body.refused);
        const reset = await people.resetPassword(body.email as string);
        return reset ? sendJson(res, 200, reset) : sendJson(res, 404, { error: `no person with email ${String(body.email)}` });
      }
      switch (req.method) {
        case 'GET': {
          if (email === null) return sendJson(res, 200, { people: await people.listPeople() });
          const person = await people.findPerson(email);
          return person ? sendJson(res, 200, person) : sendJson(res, 404, { error: `no person with email ${email}` });
        }
        case 'POST': {
          const body = await emailOfBody();
          if ('refused' in body) return sendJson(res, ...body.refused);
          const added = await people.addPerson(body.email as string);
          return sendJson(res, added.password === null ? 200 : 201, added);
        }
        case 'DELETE': {
          if (email === null) return sendJson(res, 400, { error: 'the email query parameter is required' });
          return (await people.removePerson(email))
            ? sendJson(res, 200, { removed: true })
            : sendJson(res, 404, { error: `no person with email ${email}` });
        }
        default:
          res.setHeader('Allow', 'GET, POST, DELETE');
          return sendJson(res, 405, { error: `${req.method} is not allowed` });
      }
    } catch (error) {
      if (error instanceof InvalidEmailError) return sendJson(res, 400, { error: error.message });
      throw error;
    }
  };
}
