/**
 * Workflow versions (API.md §4 "Workflow versions", issue #21 item 4) end to end against the local stack
 * on DynamoDB Local: the versions list (newest first, paged), reading one version, deploying an older one
 * (a rollback that sync and async runs then use), the identical PUT that makes no version, and ETag /
 * If-Match on PUT, deploy and DELETE: 412 PRECONDITION_FAILED when stale with nothing changed, exactly one
 * winner of two updates sent with the same ETag, and what a retry after a lost answer gets.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { LOCAL_CREDENTIALS } from '../../local-runner/dynamodb-local.js';
import { LOCAL_REGION } from '../../local-runner/stack.js';
import { testEndpoint } from '../support/dynamodb.js';
import type { Reply } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

let t: TestStack;
let admin: string;
let adminKeyId: string;
let accountId: string;
let direct: DynamoDBDocumentClient;

beforeAll(async () => {
  t = await startTestStack('e2e-wfversions');
  ({ key: admin, keyId: adminKeyId, accountId } = await t.account('business'));
  direct = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: testEndpoint(), region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }), {
    marshallOptions: { removeUndefinedValues: true },
  });
}, 60_000);
afterAll(async () => {
  direct?.destroy();
  await t?.close();
});

/** Upper-cases `input.text` and appends a fixed suffix: each version is told apart by its output. */
const tagged = (tag: string) => ({
  input_schema: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
  steps: [
    { id: 'up', model: 'uppercase', input: { text: '$.input.text' } },
    { id: 'tag', model: 'echo', input: { text: '$.steps.up.output.text', tag } },
  ],
  output: '$.steps.tag.output',
});

function expectError(reply: Reply, status: number, code: string) {
  expect({ status: reply.status, code: reply.body['code'], request_id: reply.body['request_id'] }).toEqual({ status, code, request_id: reply.headers.get('x-request-id') });
}

const etagOf = (reply: Reply) => {
  const etag = reply.headers.get('etag');
  if (!etag) throw new Error(`no ETag on ${reply.status} ${reply.text.slice(0, 200)}`);
  return etag;
};

async function create(slug: string, versions = 1, key = admin): Promise<Reply> {
  const created = await t.api(key, 'POST', '/workflows', { slug, name: `${slug} v1`, description: 'first', definition: tagged('v1') });
  expect(created.status).toBe(201);
  let last = created;
  for (let n = 2; n <= versions; n++) {
    last = await t.api(key, 'PUT', `/workflows/${slug}`, { name: `${slug} v${n}`, definition: tagged(`v${n}`) });
    expect({ status: last.status, version: last.body['version'] }).toEqual({ status: 200, version: n });
  }
  return last;
}

const versionsOf = async (slug: string, query = '') => {
  const reply = await t.api(admin, 'GET', `/workflows/${slug}/versions${query}`);
  expect(reply.status).toBe(200);
  return reply.body as { items: Record<string, unknown>[]; next_token: string | null };
};

describe('reading versions', () => {
  it('lists every version newest first, with its definition, name, description, author and whether it is deployed', async () => {
    await create('listed', 3);
    await t.api(admin, 'POST', '/workflows/listed/deploy', { version: 2 });
    const page = await versionsOf('listed');
    expect(page.next_token).toBeNull();
    expect(page.items).toEqual([3, 2, 1].map((n) => ({
      slug: 'listed',
      version: n,
      name: `listed v${n}`,
      description: 'first',
      definition: tagged(`v${n}`),
      deployed: n === 2,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      created_by: { kind: 'key', key_id: adminKeyId },
    })));
  });

  it('GET ?version=n reads that version (with the latest named), with the workflow’s ETag; 404 for one it does not have; 400 for a non-integer', async () => {
    await create('read-one', 3);
    const latest = await t.api(admin, 'GET', '/workflows/read-one');
    expect(latest.body).toMatchObject({ version: 3, latest_version: 3, name: 'read-one v3', definition: tagged('v3') });
    const first = await t.api(admin, 'GET', '/workflows/read-one?version=1');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ ...latest.body, version: 1, latest_version: 3, name: 'read-one v1', definition: tagged('v1') });
    // The ETag names the workflow's state: the same whichever version is shown.
    expect(etagOf(first)).toBe(etagOf(latest));
    expect(etagOf(latest)).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
    expect((await t.api(admin, 'GET', '/workflows/read-one?version=3')).body).toEqual(latest.body);

    expectError(await t.api(admin, 'GET', '/workflows/read-one?version=4'), 404, 'NOT_FOUND');
    expectError(await t.api(admin, 'GET', '/workflows/read-one?version=999999999'), 404, 'NOT_FOUND');
    for (const bad of ['abc', '0', '-1', '1.5', '', '1e2', '01']) {
      const reply = await t.api(admin, 'GET', `/workflows/read-one?version=${bad}`);
      expectError(reply, 400, 'VALIDATION_ERROR');
      expect(reply.body['details']).toEqual([{ field: 'version', message: expect.any(String) }]);
    }
    expectError(await t.api(admin, 'GET', '/workflows/read-one?version=1&version=2'), 400, 'VALIDATION_ERROR');
  });

  it('pages versions newest first: full pages, the last one’s next_token null, tokens bound to the workflow and the account', async () => {
    await create('paged', 7);
    const seen: number[][] = [];
    let token: string | null = null;
    let first: string | null = null;
    do {
      const page: { items: Record<string, unknown>[]; next_token: string | null } = await versionsOf('paged', `?limit=3${token ? `&next_token=${encodeURIComponent(token)}` : ''}`);
      seen.push(page.items.map((v) => Number(v['version'])));
      token = page.next_token;
      first ??= token;
    } while (token);
    expect(seen).toEqual([[7, 6, 5], [4, 3, 2], [1]]);
    // Exactly a page's worth left: no empty page after it.
    expect((await versionsOf('paged', `?limit=3&next_token=${encodeURIComponent(first!)}`)).items.map((v) => v['version'])).toEqual([4, 3, 2]);
    const six = await versionsOf('paged', '?limit=6');
    expect({ n: six.items.length, next: six.next_token === null }).toEqual({ n: 6, next: false });
    expect((await versionsOf('paged', `?limit=6&next_token=${encodeURIComponent(six.next_token!)}`))).toEqual({ items: [expect.objectContaining({ version: 1 })], next_token: null });
    expect((await versionsOf('paged', '?limit=7')).next_token).toBeNull();

    // Another workflow's token, another account's, a forged one: 400.
    await create('paged-other', 2);
    expectError(await t.api(admin, 'GET', `/workflows/paged-other/versions?next_token=${encodeURIComponent(first!)}`), 400, 'VALIDATION_ERROR');
    const other = await t.account('business');
    await create('paged', 5, other.key);
    expectError(await t.api(other.key, 'GET', `/workflows/paged/versions?next_token=${encodeURIComponent(first!)}`), 400, 'VALIDATION_ERROR');
    expectError(await t.api(admin, 'GET', '/workflows/paged/versions?next_token=bm9wZQ'), 400, 'VALIDATION_ERROR');
    expectError(await t.api(admin, 'GET', '/workflows/paged/versions?limit=0'), 400, 'VALIDATION_ERROR');
  });

  it('another account’s workflow: its versions and its versions by number are 404, like the workflow', async () => {
    const other = await t.account('business');
    await create('theirs', 2, other.key);
    expectError(await t.api(admin, 'GET', '/workflows/theirs/versions'), 404, 'NOT_FOUND');
    expectError(await t.api(admin, 'GET', '/workflows/theirs?version=1'), 404, 'NOT_FOUND');
    expectError(await t.api(admin, 'POST', '/workflows/theirs/deploy', { version: 1 }), 404, 'NOT_FOUND');
    expectError(await t.api(admin, 'GET', '/workflows/missing/versions'), 404, 'NOT_FOUND');
    // Still theirs, untouched.
    expect((await t.api(other.key, 'GET', '/workflows/theirs/versions')).body['items']).toHaveLength(2);
  });

  it('a key outside the workflow’s workspace gets 403 WORKSPACE_DENIED on its versions', async () => {
    const created = await t.api(admin, 'POST', '/workflows', { slug: 'in-ws', name: 'w', definition: tagged('w'), workspace_id: 'ws-a' });
    expect(created.status).toBe(201);
    const { key } = await t.account('business', { name: 'ws-b reader', preset: 'read-only', workspaces: ['ws-b'] });
    // Another account's key: 404 first. A key of this account limited to ws-b:
    expectError(await t.api(key, 'GET', '/workflows/in-ws/versions'), 404, 'NOT_FOUND');
    const own = await t.api(admin, 'POST', '/keys', { name: 'ws-b', preset: 'read-only', workspaces: ['ws-b'] });
    expect(own.status).toBe(201);
    expectError(await t.api(String(own.body['api_key']), 'GET', '/workflows/in-ws/versions'), 403, 'WORKSPACE_DENIED');
    expectError(await t.api(String(own.body['api_key']), 'GET', '/workflows/in-ws?version=1'), 403, 'WORKSPACE_DENIED');
  });

  it('unknown query parameters are 400 naming them', async () => {
    await create('params');
    for (const [path, name] of [['/workflows/params/versions?order=asc', 'order'], ['/workflows/params?versions=1', 'versions'], ['/workflows/params?version=1&limit=2', 'limit']]) {
      const reply = await t.api(admin, 'GET', path!);
      expectError(reply, 400, 'VALIDATION_ERROR');
      expect(reply.body['details']).toEqual([{ field: name, message: expect.any(String) }]);
    }
  });
});

describe('deploying a version: rollback', () => {
  it('deploys an older version; sync and async runs use it, not the latest; deploying it again changes nothing', async () => {
    await create('roll', 3);
    const deployed = await t.api(admin, 'POST', '/workflows/roll/deploy');
    expect(deployed.body).toMatchObject({ version: 3, latest_version: 3, deployed_version: 3, status: 'deployed' });
    expect((await t.api(admin, 'POST', '/workflows/roll/run', { input: { text: 'a' } })).body).toMatchObject({ workflow_version: 3, output: { text: 'A', tag: 'v3' } });

    const back = await t.api(admin, 'POST', '/workflows/roll/deploy', { version: 1 });
    expect(back.status).toBe(200);
    // The workflow object is still the latest version's; the deployed one is 1.
    expect(back.body).toMatchObject({ version: 3, latest_version: 3, deployed_version: 1, status: 'deployed', definition: tagged('v3') });
    expect(etagOf(back)).not.toBe(etagOf(deployed));
    expect((await t.api(admin, 'POST', '/workflows/roll/run', { input: { text: 'b' } })).body).toMatchObject({ status: 'SUCCEEDED', workflow_version: 1, output: { text: 'B', tag: 'v1' } });
    const queued = await t.api(admin, 'POST', '/workflows/roll/run?async=true', { input: { text: 'c' } });
    expect(queued.status).toBe(202);
    expect((await t.execution(admin, String(queued.body['execution_id']))).body).toMatchObject({ status: 'SUCCEEDED', workflow_version: 1, output: { text: 'C', tag: 'v1' } });
    expect((await versionsOf('roll')).items.map((v) => [v['version'], v['deployed']])).toEqual([[3, false], [2, false], [1, true]]);

    // A PUT now makes version 4; the deployed version stays 1.
    expect((await t.api(admin, 'PUT', '/workflows/roll', { definition: tagged('v4') })).body).toMatchObject({ version: 4, deployed_version: 1 });

    // Deploying the version already deployed writes nothing: the same answer, the same ETag.
    const again = await t.api(admin, 'POST', '/workflows/roll/deploy', { version: 1 });
    const read = await t.api(admin, 'GET', '/workflows/roll');
    expect(again.status).toBe(200);
    expect(again.body).toEqual(read.body);
    expect(etagOf(again)).toBe(etagOf(read));

    // Forward again, to the latest (no body).
    expect((await t.api(admin, 'POST', '/workflows/roll/deploy')).body).toMatchObject({ deployed_version: 4 });
    expect((await t.api(admin, 'POST', '/workflows/roll/run', { input: { text: 'd' } })).body).toMatchObject({ workflow_version: 4, output: { tag: 'v4' } });
  }, 30_000);

  it('a version the workflow does not have, or not a positive integer, is 400 naming `version`; an unknown field is 400; nothing changes', async () => {
    await create('bad-deploy', 2);
    const before = await t.snapshot();
    for (const body of [{ version: 3 }, { version: 0 }, { version: 1.5 }, { version: '1' }, { version: null }, { versions: 1 }]) {
      const reply = await t.api(admin, 'POST', '/workflows/bad-deploy/deploy', body);
      expectError(reply, 400, 'VALIDATION_ERROR');
      expect((reply.body['details'] as { field: string }[])[0]!.field).toMatch(/^versions?$/);
    }
    expect(await t.snapshot()).toBe(before);
  });
});

describe('a PUT identical to the latest version makes no version', () => {
  it('the same definition (keys in any order), name and description: 200, the workflow unchanged, the same ETag', async () => {
    const latest = await create('same', 2);
    const before = await t.snapshot();
    const reordered = { output: '$.steps.tag.output', steps: tagged('v2').steps, input_schema: { properties: { text: { type: 'string' } }, required: ['text'], type: 'object' } };
    for (const body of [
      { name: 'same v2', definition: tagged('v2') },
      { name: 'same v2', description: 'first', definition: reordered },
      // name and description default to the latest version's.
      { definition: tagged('v2') },
    ]) {
      const reply = await t.api(admin, 'PUT', '/workflows/same', body);
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual(latest.body);
      expect(etagOf(reply)).toBe(etagOf(latest));
    }
    expect(await t.snapshot()).toBe(before);
    // Anything different is a version: the description alone, then the name alone.
    expect((await t.api(admin, 'PUT', '/workflows/same', { description: 'second', definition: tagged('v2') })).body).toMatchObject({ version: 3, description: 'second' });
    expect((await t.api(admin, 'PUT', '/workflows/same', { name: 'renamed', definition: tagged('v2') })).body).toMatchObject({ version: 4, name: 'renamed', description: 'second' });
    // Identical to an older version is still a new version (only the latest counts).
    expect((await t.api(admin, 'PUT', '/workflows/same', { name: 'same v2', description: 'first', definition: tagged('v2') })).body).toMatchObject({ version: 5 });
  });
});

describe('ETag and If-Match', () => {
  it('every answer of a workflow carries its ETag, which changes with each change', async () => {
    const created = await t.api(admin, 'POST', '/workflows', { slug: 'tags', name: 't', definition: tagged('1') });
    const read = await t.api(admin, 'GET', '/workflows/tags');
    expect(etagOf(created)).toBe(etagOf(read));
    const put = await t.api(admin, 'PUT', '/workflows/tags', { definition: tagged('2') });
    const deploy = await t.api(admin, 'POST', '/workflows/tags/deploy');
    const tags = [etagOf(created), etagOf(put), etagOf(deploy)];
    expect(new Set(tags).size).toBe(3);
    expect(etagOf(await t.api(admin, 'GET', '/workflows/tags'))).toBe(etagOf(deploy));
    // A workflow deleted and made again never matches its predecessor's ETag.
    expect((await t.api(admin, 'DELETE', '/workflows/tags')).status).toBe(204);
    const again = await t.api(admin, 'POST', '/workflows', { slug: 'tags', name: 't', definition: tagged('1') });
    expect(etagOf(again)).not.toBe(etagOf(created));
  });

  it('a current If-Match (or *, or a list holding it) lets PUT, deploy and DELETE through', async () => {
    let reply = await create('match', 1);
    reply = await t.api(admin, 'PUT', '/workflows/match', { definition: tagged('2') }, { 'If-Match': etagOf(reply) });
    expect(reply.body).toMatchObject({ version: 2 });
    reply = await t.api(admin, 'POST', '/workflows/match/deploy', { version: 1 }, { 'If-Match': `"nope", ${etagOf(reply)}` });
    expect(reply.body).toMatchObject({ deployed_version: 1 });
    reply = await t.api(admin, 'PUT', '/workflows/match', { definition: tagged('3') }, { 'If-Match': '*' });
    expect(reply.body).toMatchObject({ version: 3 });
    expect((await t.api(admin, 'DELETE', '/workflows/match', undefined, { 'If-Match': etagOf(reply) })).status).toBe(204);
    expectError(await t.api(admin, 'GET', '/workflows/match'), 404, 'NOT_FOUND');
  });

  it('a stale If-Match is 412 PRECONDITION_FAILED on PUT, deploy and DELETE, and nothing changes', async () => {
    const v1 = await create('stale', 1);
    const stale = etagOf(v1);
    await t.api(admin, 'PUT', '/workflows/stale', { definition: tagged('2') });
    const before = await t.snapshot();
    expectError(await t.api(admin, 'PUT', '/workflows/stale', { definition: tagged('3') }, { 'If-Match': stale }), 412, 'PRECONDITION_FAILED');
    // A PUT identical to the latest version asks for what is already so (RFC 9110 §13.1.1): 200, nothing written.
    const already = await t.api(admin, 'PUT', '/workflows/stale', { definition: tagged('2') }, { 'If-Match': stale });
    expect({ status: already.status, version: already.body['version'] }).toEqual({ status: 200, version: 2 });
    expectError(await t.api(admin, 'POST', '/workflows/stale/deploy', undefined, { 'If-Match': stale }), 412, 'PRECONDITION_FAILED');
    expectError(await t.api(admin, 'POST', '/workflows/stale/deploy', { version: 1 }, { 'If-Match': stale }), 412, 'PRECONDITION_FAILED');
    expectError(await t.api(admin, 'DELETE', '/workflows/stale', undefined, { 'If-Match': stale }), 412, 'PRECONDITION_FAILED');
    // A weak tag never matches (strong comparison), even with the current value.
    const current = etagOf(await t.api(admin, 'GET', '/workflows/stale'));
    expectError(await t.api(admin, 'DELETE', '/workflows/stale', undefined, { 'If-Match': `W/${current}` }), 412, 'PRECONDITION_FAILED');
    expect(await t.snapshot()).toBe(before);
    // A deploy makes the ETag of the version read stale too.
    await t.api(admin, 'POST', '/workflows/stale/deploy');
    expectError(await t.api(admin, 'PUT', '/workflows/stale', { definition: tagged('3') }, { 'If-Match': current }), 412, 'PRECONDITION_FAILED');
    expect((await t.api(admin, 'GET', '/workflows/stale')).body).toMatchObject({ version: 2, deployed_version: 2 });
  });

  it('an If-Match that is neither * nor quoted ETags is 400 naming the header', async () => {
    await create('malformed');
    for (const value of ['abc', '"unterminated', '"a" "b"', ',']) {
      const reply = await t.api(admin, 'PUT', '/workflows/malformed', { definition: tagged('2') }, { 'If-Match': value });
      expectError(reply, 400, 'VALIDATION_ERROR');
      expect(reply.body['details']).toEqual([{ field: 'If-Match', message: expect.any(String) }]);
    }
    expect((await t.api(admin, 'GET', '/workflows/malformed')).body).toMatchObject({ version: 1 });
  });

  it('two updates sent at once with the same If-Match: exactly one 200, the other 412, one version made', async () => {
    for (let round = 0; round < 4; round++) {
      const slug = `race-${round}`;
      const etag = etagOf(await create(slug));
      const replies = await Promise.all(['a', 'b'].map((who) => t.api(admin, 'PUT', `/workflows/${slug}`, { name: who, definition: tagged(who) }, { 'If-Match': etag })));
      expect(replies.map((r) => r.status).sort()).toEqual([200, 412]);
      const winner = replies.find((r) => r.status === 200)!;
      expect(winner.body).toMatchObject({ version: 2 });
      const versions = await versionsOf(slug);
      expect(versions.items.map((v) => [v['version'], v['name']])).toEqual([[2, winner.body['name']], [1, `${slug} v1`]]);
    }
  }, 30_000);

  it('a deploy and a PUT at once with the same If-Match: one wins', async () => {
    const etag = etagOf(await create('race-deploy', 2));
    const [put, deploy] = await Promise.all([
      t.api(admin, 'PUT', '/workflows/race-deploy', { definition: tagged('x') }, { 'If-Match': etag }),
      t.api(admin, 'POST', '/workflows/race-deploy/deploy', { version: 1 }, { 'If-Match': etag }),
    ]);
    expect([put.status, deploy.status].sort()).toEqual([200, 412]);
    const read = await t.api(admin, 'GET', '/workflows/race-deploy');
    expect(read.body).toMatchObject(put.status === 200 ? { version: 3, deployed_version: null } : { version: 2, deployed_version: 1 });
  });

  it('concurrent updates without If-Match each get their own version: none is lost', async () => {
    await create('many-writers');
    const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => t.api(admin, 'PUT', '/workflows/many-writers', { name: `w${i}`, definition: tagged(`w${i}`) })));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(replies.map((r) => r.body['version']).sort()).toEqual([2, 3, 4, 5, 6]);
    const versions = await versionsOf('many-writers');
    expect(versions.items.map((v) => v['name']).slice(0, 5).sort()).toEqual(['w0', 'w1', 'w2', 'w3', 'w4']);
  }, 30_000);

  it('retries: a PUT or a deploy retried with its If-Match after a lost answer is answered as the first was, and makes nothing twice', async () => {
    const etag = etagOf(await create('retry'));
    const body = { definition: tagged('2') };
    const first = await t.api(admin, 'PUT', '/workflows/retry', body, { 'If-Match': etag });
    expect(first.status).toBe(200);
    // The client never saw `first` and sends it again: its change is in place, so 200 (RFC 9110 §13.1.1).
    const again = await t.api(admin, 'PUT', '/workflows/retry', body, { 'If-Match': etag });
    expect({ status: again.status, body: again.body }).toEqual({ status: 200, body: first.body });
    // Without If-Match too.
    const retried = await t.api(admin, 'PUT', '/workflows/retry', body);
    expect(retried.body).toEqual(first.body);
    expect((await versionsOf('retry')).items).toHaveLength(2);
    // A deploy of version 1 with the ETag of version 2's answer, sent twice: the same answer twice.
    const tag = etagOf(first);
    const deployed = await t.api(admin, 'POST', '/workflows/retry/deploy', { version: 1 }, { 'If-Match': tag });
    expect(deployed.body).toMatchObject({ version: 2, deployed_version: 1 });
    const redeployed = await t.api(admin, 'POST', '/workflows/retry/deploy', { version: 1 }, { 'If-Match': tag });
    expect({ status: redeployed.status, body: redeployed.body }).toEqual({ status: 200, body: deployed.body });
    // Another version with that now stale tag is refused.
    expectError(await t.api(admin, 'POST', '/workflows/retry/deploy', { version: 2 }, { 'If-Match': tag }), 412, 'PRECONDITION_FAILED');
  });

  it('DELETE of a workflow of more than 99 versions (deleted in pages) honours If-Match too', async () => {
    const slug = 'long-history';
    const table = t.stack.state.tables.workflows;
    const created = await create(slug);
    const createdAt = String(created.body['created_at']);
    // 120 versions, written as the API writes them (faster than 119 PUTs).
    for (let n = 2; n <= 120; n++) {
      await direct.send(new PutCommand({ TableName: table, Item: { account_id: accountId, sk: `V#${slug}#${String(n).padStart(6, '0')}`, slug, version: n, definition: tagged(`v${n}`), name: `${slug} v1`, description: 'first', created_at: createdAt } }));
    }
    await direct.send(new PutCommand({ TableName: table, Item: { account_id: accountId, sk: `W#${slug}`, slug, name: `${slug} v1`, description: 'first', workspace_id: 'default', version: 120, deployed_version: null, created_at: createdAt, updated_at: createdAt } }));
    const read = await t.api(admin, 'GET', `/workflows/${slug}`);
    expect(read.body).toMatchObject({ version: 120 });
    await t.api(admin, 'POST', `/workflows/${slug}/deploy`, { version: 7 });
    const before = await t.snapshot();
    expectError(await t.api(admin, 'DELETE', `/workflows/${slug}`, undefined, { 'If-Match': etagOf(read) }), 412, 'PRECONDITION_FAILED');
    expect(await t.snapshot()).toBe(before);
    const current = etagOf(await t.api(admin, 'GET', `/workflows/${slug}`));
    expect((await t.api(admin, 'DELETE', `/workflows/${slug}`, undefined, { 'If-Match': current })).status).toBe(204);
    expectError(await t.api(admin, 'GET', `/workflows/${slug}/versions`), 404, 'NOT_FOUND');
  }, 30_000);
});

describe('workflows saved before versions recorded their name, description and author', () => {
  it('keep working: listed (with the workflow’s name and description, no author), read, updated, deployed and run', async () => {
    const slug = 'legacy';
    const table = t.stack.state.tables.workflows;
    const at = '2025-01-01T00:00:00.000Z';
    // As the API stored a workflow before this change: version items with the definition only.
    await direct.send(new PutCommand({ TableName: table, Item: { account_id: accountId, sk: `W#${slug}`, slug, name: 'Legacy', description: 'old', workspace_id: 'default', version: 2, deployed_version: 1, created_at: at, updated_at: at } }));
    for (const n of [1, 2]) {
      await direct.send(new PutCommand({ TableName: table, Item: { account_id: accountId, sk: `V#${slug}#00000${n}`, slug, version: n, definition: tagged(`v${n}`), created_at: at } }));
    }
    const page = await versionsOf(slug);
    expect(page.items).toEqual([2, 1].map((n) => ({ slug, version: n, name: 'Legacy', description: 'old', definition: tagged(`v${n}`), deployed: n === 1, created_at: at, created_by: null })));
    expect((await t.api(admin, 'GET', `/workflows/${slug}?version=1`)).body).toMatchObject({ version: 1, latest_version: 2, name: 'Legacy', definition: tagged('v1') });
    expect((await t.api(admin, 'POST', `/workflows/${slug}/run`, { input: { text: 'l' } })).body).toMatchObject({ workflow_version: 1, output: { tag: 'v1' } });
    // Identical to its latest version: no new version.
    const same = await t.api(admin, 'PUT', `/workflows/${slug}`, { name: 'Legacy', definition: tagged('v2') });
    expect(same.body).toMatchObject({ version: 2 });
    const etag = etagOf(same);
    expect((await t.api(admin, 'POST', `/workflows/${slug}/deploy`, undefined, { 'If-Match': etag })).body).toMatchObject({ deployed_version: 2 });
    const put = await t.api(admin, 'PUT', `/workflows/${slug}`, { definition: tagged('v3') });
    expect(put.body).toMatchObject({ version: 3, name: 'Legacy', description: 'old' });
    expect((await versionsOf(slug)).items[0]).toMatchObject({ version: 3, created_by: { kind: 'key', key_id: adminKeyId } });
  });
});
