/**
 * The local runner's IAM policy evaluator (local-runner/iam/policy.ts) and what it checks for each
 * DynamoDB call (iam/dynamodb.ts), on hand-written statements: wildcards, an explicit Deny winning,
 * NotAction and NotResource, the condition operators and keys, and what it refuses because it cannot
 * evaluate it (naming the thing) rather than allow.
 */
import { dynamoDbAccess, type DynamoDbTarget } from '../local-runner/iam/dynamodb.js';
import { candidates, compileStatement, decide, statementsOf, type ContextValues, type Decision } from '../local-runner/iam/policy.js';

const TABLE = 'arn:aws:dynamodb:us-east-1:000000000000:table/Keys';
const OTHER = 'arn:aws:dynamodb:us-east-1:000000000000:table/Accounts';

function evaluate(statements: object[], action: string, resource: string, context: Record<string, ContextValues> = {}, limits = {}): Decision {
  const compiled = statementsOf('TestPolicy', { Version: '2012-10-17', Statement: statements }).map(compileStatement);
  return decide(candidates(compiled, action, resource), new Map(Object.entries(context)), limits);
}
const allow = (Action: unknown, Resource: unknown, Condition?: object) => ({ Effect: 'Allow', Action, Resource, ...(Condition ? { Condition } : {}) });
const deny = (Action: unknown, Resource: unknown, Condition?: object) => ({ Effect: 'Deny', Action, Resource, ...(Condition ? { Condition } : {}) });
const effect = (d: Decision) => d.effect;
const reason = (d: Decision) => (d.effect === 'unsupported' ? d.reason : '');

describe('actions and resources', () => {
  it('matches an action exactly, without case, and with * and ? wildcards', () => {
    expect(effect(evaluate([allow('dynamodb:GetItem', TABLE)], 'dynamodb:GetItem', TABLE))).toBe('allow');
    expect(effect(evaluate([allow('DynamoDB:getitem', TABLE)], 'dynamodb:GetItem', TABLE))).toBe('allow');
    expect(effect(evaluate([allow('dynamodb:Get*', TABLE)], 'dynamodb:GetItem', TABLE))).toBe('allow');
    expect(effect(evaluate([allow('dynamodb:?etItem', TABLE)], 'dynamodb:GetItem', TABLE))).toBe('allow');
    expect(effect(evaluate([allow('*', '*')], 'dynamodb:DeleteItem', TABLE))).toBe('allow');
    expect(effect(evaluate([allow(['dynamodb:Query', 'dynamodb:Get*'], TABLE)], 'dynamodb:PutItem', TABLE))).toBe('implicit-deny');
    expect(effect(evaluate([allow('dynamodb:GetItem', TABLE)], 'dynamodb:GetItems', TABLE))).toBe('implicit-deny');
  });

  it('matches a resource with case, and an index only by its own ARN or a wildcard', () => {
    expect(effect(evaluate([allow('dynamodb:Query', TABLE)], 'dynamodb:Query', `${TABLE}/index/by-account`))).toBe('implicit-deny');
    expect(effect(evaluate([allow('dynamodb:Query', `${TABLE}/index/*`)], 'dynamodb:Query', `${TABLE}/index/by-account`))).toBe('allow');
    expect(effect(evaluate([allow('dynamodb:Query', `${TABLE}/index/by-account`)], 'dynamodb:Query', `${TABLE}/index/by-slot`))).toBe('implicit-deny');
    expect(effect(evaluate([allow('dynamodb:Query', TABLE.toLowerCase())], 'dynamodb:Query', TABLE))).toBe('implicit-deny');
    expect(effect(evaluate([allow('dynamodb:Query', 'arn:aws:dynamodb:*:*:table/Ke?s')], 'dynamodb:Query', TABLE))).toBe('allow');
    // A table whose name only starts like the granted one is another table.
    expect(effect(evaluate([allow('dynamodb:GetItem', TABLE)], 'dynamodb:GetItem', `${TABLE}2`))).toBe('implicit-deny');
  });

  it('reads NotAction and NotResource as everything but', () => {
    const notAction = { Effect: 'Allow', NotAction: 'dynamodb:Delete*', Resource: TABLE };
    expect(effect(evaluate([notAction], 'dynamodb:PutItem', TABLE))).toBe('allow');
    expect(effect(evaluate([notAction], 'dynamodb:DeleteItem', TABLE))).toBe('implicit-deny');
    const notResource = { Effect: 'Allow', Action: 'dynamodb:GetItem', NotResource: OTHER };
    expect(effect(evaluate([notResource], 'dynamodb:GetItem', TABLE))).toBe('allow');
    expect(effect(evaluate([notResource], 'dynamodb:GetItem', OTHER))).toBe('implicit-deny');
  });

  it('lets an explicit Deny win over any Allow, and names the statement', () => {
    const d = evaluate([allow('dynamodb:*', '*'), { Sid: 'NoDeletes', ...deny('dynamodb:Delete*', TABLE) }], 'dynamodb:DeleteItem', TABLE);
    expect(d).toEqual({ effect: 'explicit-deny', statement: 'TestPolicy statement 2 (NoDeletes)' });
    expect(effect(evaluate([allow('dynamodb:*', '*'), deny('dynamodb:Delete*', TABLE)], 'dynamodb:DeleteItem', OTHER))).toBe('allow');
  });

  it('allows nothing with no statement at all', () => {
    expect(effect(evaluate([], 'dynamodb:GetItem', TABLE))).toBe('implicit-deny');
  });
});

describe('conditions', () => {
  const signalsOnly = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['*#signal'] } };

  it('ForAllValues:StringLike on dynamodb:LeadingKeys: every partition key must match (as the executions function is granted)', () => {
    const s = [allow('dynamodb:PutItem', TABLE, signalsOnly)];
    expect(effect(evaluate(s, 'dynamodb:PutItem', TABLE, { 'dynamodb:leadingkeys': ['acct_1#signal'] }))).toBe('allow');
    expect(effect(evaluate(s, 'dynamodb:PutItem', TABLE, { 'dynamodb:leadingkeys': ['acct_1'] }))).toBe('implicit-deny');
    expect(effect(evaluate(s, 'dynamodb:PutItem', TABLE, { 'dynamodb:leadingkeys': ['acct_1#signal', 'acct_1'] }))).toBe('implicit-deny');
    // ForAllValues over a key the request does not carry is true, as in IAM.
    expect(effect(evaluate(s, 'dynamodb:PutItem', TABLE, { 'dynamodb:leadingkeys': undefined }))).toBe('allow');
  });

  it('ForAnyValue needs one match, and is false for an absent key', () => {
    const s = [allow('dynamodb:Query', TABLE, { 'ForAnyValue:StringEquals': { 'dynamodb:LeadingKeys': ['a', 'b'] } })];
    expect(effect(evaluate(s, 'dynamodb:Query', TABLE, { 'dynamodb:leadingkeys': ['x', 'b'] }))).toBe('allow');
    expect(effect(evaluate(s, 'dynamodb:Query', TABLE, { 'dynamodb:leadingkeys': ['x'] }))).toBe('implicit-deny');
    expect(effect(evaluate(s, 'dynamodb:Query', TABLE, { 'dynamodb:leadingkeys': undefined }))).toBe('implicit-deny');
  });

  it('StringNotEquals, IgnoreCase, IfExists and Null on a single-valued key', () => {
    const key = 'dynamodb:returnvalues';
    const not = [allow('dynamodb:UpdateItem', TABLE, { StringNotEquals: { 'dynamodb:ReturnValues': 'ALL_OLD' } })];
    expect(effect(evaluate(not, 'dynamodb:UpdateItem', TABLE, { [key]: ['ALL_NEW'] }))).toBe('allow');
    expect(effect(evaluate(not, 'dynamodb:UpdateItem', TABLE, { [key]: ['ALL_OLD'] }))).toBe('implicit-deny');
    // A negated operator over an absent key is true; a positive one false, unless …IfExists.
    expect(effect(evaluate(not, 'dynamodb:UpdateItem', TABLE, { [key]: undefined }))).toBe('allow');
    const eq = [allow('dynamodb:UpdateItem', TABLE, { StringEqualsIgnoreCase: { 'dynamodb:ReturnValues': 'none' } })];
    expect(effect(evaluate(eq, 'dynamodb:UpdateItem', TABLE, { [key]: ['NONE'] }))).toBe('allow');
    expect(effect(evaluate(eq, 'dynamodb:UpdateItem', TABLE, { [key]: undefined }))).toBe('implicit-deny');
    const ifExists = [allow('dynamodb:UpdateItem', TABLE, { StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' } })];
    expect(effect(evaluate(ifExists, 'dynamodb:UpdateItem', TABLE, { [key]: undefined }))).toBe('allow');
    expect(effect(evaluate(ifExists, 'dynamodb:UpdateItem', TABLE, { [key]: ['ALL_OLD'] }))).toBe('implicit-deny');
    const absent = [allow('dynamodb:UpdateItem', TABLE, { Null: { 'dynamodb:ReturnValues': 'true' } })];
    expect(effect(evaluate(absent, 'dynamodb:UpdateItem', TABLE, { [key]: undefined }))).toBe('allow');
    expect(effect(evaluate(absent, 'dynamodb:UpdateItem', TABLE, { [key]: ['NONE'] }))).toBe('implicit-deny');
  });

  it('ANDs operators and keys, ORs a key’s values', () => {
    const s = [
      allow('dynamodb:GetItem', TABLE, {
        'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['a', 'b'] },
        StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
      }),
    ];
    expect(effect(evaluate(s, 'dynamodb:GetItem', TABLE, { 'dynamodb:leadingkeys': ['b'], 'dynamodb:returnvalues': undefined }))).toBe('allow');
    expect(effect(evaluate(s, 'dynamodb:GetItem', TABLE, { 'dynamodb:leadingkeys': ['b'], 'dynamodb:returnvalues': ['ALL_OLD'] }))).toBe('implicit-deny');
  });

  it('a Deny with a condition denies only when it holds', () => {
    const s = [allow('dynamodb:*', TABLE), deny('dynamodb:PutItem', TABLE, { 'ForAnyValue:StringLike': { 'dynamodb:LeadingKeys': ['admin*'] } })];
    expect(effect(evaluate(s, 'dynamodb:PutItem', TABLE, { 'dynamodb:leadingkeys': ['admin-1'] }))).toBe('explicit-deny');
    expect(effect(evaluate(s, 'dynamodb:PutItem', TABLE, { 'dynamodb:leadingkeys': ['user-1'] }))).toBe('allow');
  });
});

describe('what it cannot evaluate, it refuses and names', () => {
  it('an unknown condition operator', () => {
    const d = evaluate([allow('dynamodb:GetItem', TABLE, { DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } })], 'dynamodb:GetItem', TABLE);
    expect(effect(d)).toBe('unsupported');
    expect(reason(d)).toContain('the condition operator DateLessThan');
  });

  it('a condition key the runner does not compute for this call', () => {
    const d = evaluate([allow('dynamodb:GetItem', TABLE, { StringEquals: { 'aws:SourceVpce': 'vpce-1' } })], 'dynamodb:GetItem', TABLE, { 'dynamodb:leadingkeys': ['a'] });
    expect(effect(d)).toBe('unsupported');
    expect(reason(d)).toContain('the condition key aws:SourceVpce');
    expect(reason(d)).toContain('TestPolicy statement 1');
  });

  it('a single-valued operator on a multivalued key, and a policy variable', () => {
    expect(reason(evaluate([allow('dynamodb:GetItem', TABLE, { StringEquals: { 'dynamodb:LeadingKeys': 'a' } })], 'dynamodb:GetItem', TABLE, { 'dynamodb:leadingkeys': ['a'] }))).toContain(
      'multivalued key dynamodb:LeadingKeys',
    );
    expect(
      reason(evaluate([allow('dynamodb:GetItem', TABLE, { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': '${aws:userid}' } })], 'dynamodb:GetItem', TABLE, { 'dynamodb:leadingkeys': ['a'] })),
    ).toContain('the policy variable ${aws:userid}');
    expect(reason(evaluate([allow('dynamodb:GetItem', 'arn:aws:dynamodb:*:*:table/${aws:username}')], 'dynamodb:GetItem', TABLE))).toContain('${aws:username}');
  });

  it('a resource the template could not resolve locally', () => {
    const d = evaluate([allow('dynamodb:GetItem', { 'Fn::ImportValue': 'OtherStack-TableArn' })], 'dynamodb:GetItem', TABLE);
    expect(effect(d)).toBe('unsupported');
    expect(reason(d)).toContain('Fn::ImportValue');
  });

  it('but another statement that allows outright still allows; an undecidable Deny still refuses', () => {
    const unknown = allow('dynamodb:GetItem', TABLE, { StringEquals: { 'aws:SourceVpce': 'vpce-1' } });
    expect(effect(evaluate([unknown, allow('dynamodb:GetItem', TABLE)], 'dynamodb:GetItem', TABLE))).toBe('allow');
    const unknownDeny = deny('dynamodb:GetItem', TABLE, { StringEquals: { 'aws:SourceVpce': 'vpce-1' } });
    expect(effect(evaluate([allow('dynamodb:GetItem', TABLE), unknownDeny], 'dynamodb:GetItem', TABLE))).toBe('unsupported');
    // A Deny whose condition is false somewhere is false, whatever else it holds.
    const falseDeny = deny('dynamodb:GetItem', TABLE, { StringEquals: { 'aws:SourceVpce': 'vpce-1' }, 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['x'] } });
    expect(effect(evaluate([allow('dynamodb:GetItem', TABLE), falseDeny], 'dynamodb:GetItem', TABLE, { 'dynamodb:leadingkeys': ['a'] }))).toBe('allow');
  });

  it('policies whose statements are not in the template: an AWS managed policy, a permissions boundary', () => {
    expect(reason(evaluate([], 'dynamodb:GetItem', TABLE, {}, { unknownAllows: ['arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess'] }))).toContain(
      'AmazonDynamoDBReadOnlyAccess',
    );
    expect(reason(evaluate([allow('dynamodb:GetItem', TABLE)], 'dynamodb:GetItem', TABLE, {}, { unknownLimits: ['the permissions boundary B'] }))).toBe('the permissions boundary B');
  });
});

describe('what a DynamoDB call needs', () => {
  const target: DynamoDbTarget = {
    region: 'us-east-1',
    accountId: '000000000000',
    table: (name) => ({ Keys: { partitionKey: 'pk' }, Accounts: { partitionKey: 'account_id' } })[name],
  };
  const S = (s: string) => ({ S: s });

  it('an item call: its own action on the table, with the partition key as dynamodb:LeadingKeys', () => {
    const [put] = dynamoDbAccess('PutItem', { TableName: 'Keys', Item: { pk: S('H#1'), name: S('n') } }, target);
    expect(put).toMatchObject({ action: 'dynamodb:PutItem', resource: TABLE });
    expect(put!.context.get('dynamodb:leadingkeys')).toEqual(['H#1']);
    expect(dynamoDbAccess('GetItem', { TableName: TABLE, Key: { pk: S('H#2') } }, target)[0]).toMatchObject({ action: 'dynamodb:GetItem', resource: TABLE });
  });

  it('a transaction: each item’s own action on its own table', () => {
    const access = dynamoDbAccess(
      'TransactWriteItems',
      {
        TransactItems: [
          { Put: { TableName: 'Keys', Item: { pk: S('K#1') } } },
          { Update: { TableName: 'Accounts', Key: { account_id: S('acct_1') } } },
          { ConditionCheck: { TableName: 'Accounts', Key: { account_id: S('acct_2') } } },
          { Delete: { TableName: 'Keys', Key: { pk: S('K#2') } } },
        ],
      },
      target,
    );
    expect(access.map((a) => `${a.action} ${a.resource.split('/')[1]} ${a.context.get('dynamodb:leadingkeys')?.join()}`)).toEqual([
      'dynamodb:PutItem Keys K#1',
      'dynamodb:UpdateItem Accounts acct_1',
      'dynamodb:ConditionCheckItem Accounts acct_2',
      'dynamodb:DeleteItem Keys K#2',
    ]);
    expect(dynamoDbAccess('TransactGetItems', { TransactItems: [{ Get: { TableName: 'Keys', Key: { pk: S('a') } } }] }, target)[0]).toMatchObject({ action: 'dynamodb:GetItem' });
  });

  it('a Query or Scan of an index: the index’s ARN; a Query of the table: its partition key', () => {
    expect(dynamoDbAccess('Query', { TableName: 'Keys', IndexName: 'by-account', KeyConditionExpression: 'account_id = :a' }, target)[0]).toMatchObject({
      resource: `${TABLE}/index/by-account`,
    });
    expect(dynamoDbAccess('Scan', { TableName: 'Keys', IndexName: 'by-slot' }, target)[0]!.resource).toBe(`${TABLE}/index/by-slot`);
    const [query] = dynamoDbAccess(
      'Query',
      { TableName: 'Accounts', KeyConditionExpression: '#p = :p AND begins_with(#s, :s)', ExpressionAttributeNames: { '#p': 'account_id', '#s': 'sk' }, ExpressionAttributeValues: { ':p': S('acct_9'), ':s': S('x') } },
      target,
    );
    expect(query!.context.get('dynamodb:leadingkeys')).toEqual(['acct_9']);
    // Not computed for an index: a condition on it is then refused, not guessed.
    expect(dynamoDbAccess('Query', { TableName: 'Keys', IndexName: 'i', KeyConditionExpression: 'pk = :a', ExpressionAttributeValues: { ':a': S('x') } }, target)[0]!.context.has('dynamodb:leadingkeys')).toBe(false);
  });

  it('the batches: their own action on each table; account-level calls on *; PartiQL refused by name', () => {
    const writes = dynamoDbAccess(
      'BatchWriteItem',
      { RequestItems: { Keys: [{ PutRequest: { Item: { pk: S('a') } } }, { DeleteRequest: { Key: { pk: S('b') } } }], Accounts: [{ PutRequest: { Item: { account_id: S('c') } } }] } },
      target,
    );
    expect(writes.map((a) => [a.action, a.resource, a.context.get('dynamodb:leadingkeys')])).toEqual([
      ['dynamodb:BatchWriteItem', TABLE, ['a', 'b']],
      ['dynamodb:BatchWriteItem', OTHER, ['c']],
    ]);
    expect(dynamoDbAccess('BatchGetItem', { RequestItems: { Accounts: { Keys: [{ account_id: S('c') }] } } }, target)[0]).toMatchObject({ action: 'dynamodb:BatchGetItem', resource: OTHER });
    expect(dynamoDbAccess('ListTables', {}, target)[0]).toMatchObject({ action: 'dynamodb:ListTables', resource: '*' });
    expect(dynamoDbAccess('DescribeTable', { TableName: 'Keys' }, target)[0]).toMatchObject({ action: 'dynamodb:DescribeTable', resource: TABLE });
    expect(dynamoDbAccess('ExecuteStatement', { Statement: 'SELECT * FROM Keys' }, target)[0]!.unsupported).toBe('PartiQL (ExecuteStatement)');
  });
});
