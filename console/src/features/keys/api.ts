/** The keys feature's calls: all through the typed client; errors come back in words (ApiProblem). */
import { api, type Schemas } from '../../api/client';
import { call, type ProblemFacts } from '../../api/errors';

export type Key = Schemas['Key'];
export type KeyUsage = Schemas['KeyUsage'];
export type CreateKeyBody = Schemas['CreateKeyRequest'];
export type UpdateKeyBody = Schemas['UpdateKeyRequest'];

/** A page holds at most 100; an account holds 10 keys by default, so one or two pages. */
const MAX_PAGES = 20;

export async function listKeys(): Promise<Key[]> {
  const keys: Key[] = [];
  let next: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query: { limit: number; next_token?: string } = next ? { limit: 100, next_token: next } : { limit: 100 };
    const body = await call(api().GET('/keys', { params: { query } }));
    keys.push(...body.items);
    next = body.next_token;
    if (!next) break;
  }
  return keys;
}

/** A new key's object and its plaintext, which the caller shows once and drops. */
export interface NewKey {
  readonly key: Key;
  /** Null when the API replayed an earlier identical creation (it never keeps the plaintext). */
  readonly secret: string | null;
}

function newKey(created: Schemas['CreatedKeyOrReplay']): NewKey {
  if ('api_key' in created && typeof created.api_key === 'string') {
    const { api_key: secret, ...key } = created;
    return { key, secret };
  }
  return { key: created, secret: null };
}

export async function createKey(body: CreateKeyBody, idempotencyKey: string, facts: ProblemFacts): Promise<NewKey> {
  return newKey(await call(api().POST('/keys', { body, params: { header: { 'Idempotency-Key': idempotencyKey } } }), facts));
}

export async function updateKey(keyId: string, body: UpdateKeyBody): Promise<Key> {
  return call(api().PATCH('/keys/{key_id}', { params: { path: { key_id: keyId } }, body }));
}

export async function rotateKey(keyId: string, graceSeconds: number, idempotencyKey: string, facts: ProblemFacts): Promise<NewKey> {
  return newKey(
    await call(
      api().POST('/keys/{key_id}/rotate', {
        params: { path: { key_id: keyId }, header: { 'Idempotency-Key': idempotencyKey } },
        body: { grace_period_seconds: graceSeconds },
      }),
      facts,
    ),
  );
}

export async function deleteKey(keyId: string): Promise<void> {
  await call(api().DELETE('/keys/{key_id}', { params: { path: { key_id: keyId } } }));
}

export type DailyRequests = KeyUsage['daily'][number];

/** The usage chart's span. */
export const USAGE_DAYS = 30;

/** Today's, this month's and each of the last 30 UTC days' requests (oldest first, today last). */
export async function keyUsage(keyId: string): Promise<KeyUsage> {
  return call(api().GET('/keys/{key_id}/usage', { params: { path: { key_id: keyId }, query: { days: USAGE_DAYS } } }));
}

export interface Choices {
  /** Deployed or draft workflows the person can read: slug, name and workspace. */
  readonly workflows: readonly { readonly slug: string; readonly name: string; readonly workspace_id: string }[];
  readonly models: readonly { readonly id: string; readonly description: string }[];
  /** The lists that could not be read (a 429, a 5xx, no network): empty here, and the dialog says so. */
  readonly unavailable: readonly ('workflows' | 'models')[];
}

/** What the dialog offers for "Run one workflow", "Run one model" and the workspaces; empty where not readable. */
export async function loadChoices(canReadWorkflows: boolean): Promise<Choices> {
  const workflows = async () => {
    if (!canReadWorkflows) return [];
    const items: Choices['workflows'][number][] = [];
    let next: string | null = null;
    for (let page = 0; page < 5; page++) {
      const query: { limit: number; next_token?: string } = next ? { limit: 100, next_token: next } : { limit: 100 };
      const body = await call(api().GET('/workflows', { params: { query } }));
      items.push(...body.items.map(({ slug, name, workspace_id }) => ({ slug, name, workspace_id })));
      next = body.next_token;
      if (!next) break;
    }
    return items;
  };
  const models = async () => (await call(api().GET('/models'))).items.map(({ id, description }) => ({ id, description }));
  const [w, m] = await Promise.allSettled([workflows(), models()]);
  return {
    workflows: w.status === 'fulfilled' ? w.value : [],
    models: m.status === 'fulfilled' ? m.value : [],
    unavailable: [...(w.status === 'rejected' ? (['workflows'] as const) : []), ...(m.status === 'rejected' ? (['models'] as const) : [])],
  };
}
