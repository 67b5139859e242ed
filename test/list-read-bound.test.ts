/**
 * A list page's reading is bounded by read units as well as items (MAX_READ_UNITS_PER_PAGE): a key limited
 * to one workspace listing executions of large runs in another read up to 1,000 of them for one (empty)
 * page, 300 of 240 KB each being about 70 MB (found by a review). DynamoDB Local reports the units, as AWS
 * does when asked.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { MAX_READ_UNITS_PER_PAGE } from '../lambdas/shared/ddb.js';
import { ExecutionsRepository, newExecutionId } from '../lambdas/shared/repositories/executions.js';
import { listExecutions } from '../lambdas/shared/services/executions.js';
import { createTestDb, type TestDb } from './support/dynamodb.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('list-read-bound');
});
afterAll(() => db?.close());

it('a workspace-limited key listing 120 large runs of another workspace stops a page at the unit bound, not at 1,000 items, and every page after resumes where the last stopped: its own run is found', async () => {
  const accountId = `acct_lrb_${Date.now().toString(36)}`;
  const big = 'y'.repeat(100_000);
  const runs = 120;
  const put = (i: number, workspace: string) =>
    db.doc.send(
      new PutCommand({
        TableName: db.tables.executions,
        Item: {
          account_id: accountId, execution_id: newExecutionId(new Date(Date.now() - (runs + 1 - i) * 1000)), account_workflow: `${accountId}#wf`,
          account_status: `${accountId}#SUCCEEDED`, workflow_slug: 'wf', workflow_version: 1, workspace_id: workspace, status: 'SUCCEEDED',
          input: { big }, output: null, created_at: new Date().toISOString(), async: false,
        },
      }),
    );
  // The oldest run is ws-b's; 120 newer ones (about 100 KB each, 12.5 read units) are ws-a's.
  await put(0, 'ws-b');
  for (let i = 1; i <= runs; i++) await put(i, 'ws-a');
  let scanned = 0;
  let units = 0;
  db.doc.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const o = out.output as { ScannedCount?: number; ConsumedCapacity?: { CapacityUnits?: number } };
      scanned += o.ScannedCount ?? 0;
      units += o.ConsumedCapacity?.CapacityUnits ?? 0;
      return out;
    },
    { step: 'initialize', name: 'countReads' },
  );
  const actor = { accountId, principal: { kind: 'key' as const, key_id: 'key_lrb' }, workspaces: ['ws-b'] };
  const repo = { executions: new ExecutionsRepository(db.doc, db.tables.executions) };
  const first = await listExecutions(repo, actor, null, 50);
  expect(first.items).toEqual([]);
  expect(first.next_token).not.toBeNull();
  // Stopped at the bound, checked after each call: DynamoDB Local reads a call's whole Limit (here 100
  // items, 1,250 units), where AWS stops a call at 1 MB (about 128 units); without the bound the page read
  // on to the 121st item and answered ws-b's run with nothing after it.
  expect(units).toBeGreaterThanOrEqual(MAX_READ_UNITS_PER_PAGE);
  expect(scanned).toBeLessThan(runs);
  const pages = [first];
  while (pages.at(-1)!.next_token) pages.push(await listExecutions(repo, actor, null, 50, pages.at(-1)!.next_token!));
  expect(pages.length).toBeGreaterThan(1);
  expect(pages.flatMap((p) => p.items.map((e) => e.workspace_id))).toEqual(['ws-b']);
}, 120_000);
