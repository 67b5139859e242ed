/** Creates the tables a synthesized template declares (keys, indexes, TTL) in a local DynamoDB. */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  ResourceInUseException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { TableDef } from './template.js';

/**
 * Creates each table unless it exists (a persisted data folder); an existing one gains the indexes the
 * template added since (as a deploy would); then turns its TTL on.
 */
export async function ensureTables(client: DynamoDBClient, tables: readonly TableDef[]): Promise<void> {
  await Promise.all(
    tables.map(async (table) => {
      try {
        await client.send(
          new CreateTableCommand({
            TableName: table.tableName,
            KeySchema: table.keySchema,
            AttributeDefinitions: table.attributeDefinitions,
            BillingMode: 'PAY_PER_REQUEST',
            ...(table.globalSecondaryIndexes.length > 0 ? { GlobalSecondaryIndexes: table.globalSecondaryIndexes } : {}),
          }),
        );
      } catch (error) {
        if (!(error instanceof ResourceInUseException)) throw error;
        await addMissingIndexes(client, table);
      }
      if (table.ttlAttribute) {
        const current = await client.send(new DescribeTimeToLiveCommand({ TableName: table.tableName }));
        if (current.TimeToLiveDescription?.TimeToLiveStatus !== 'ENABLED') {
          await client.send(
            new UpdateTimeToLiveCommand({
              TableName: table.tableName,
              TimeToLiveSpecification: { AttributeName: table.ttlAttribute, Enabled: true },
            }),
          );
        }
      }
    }),
  );
}

async function addMissingIndexes(client: DynamoDBClient, table: TableDef): Promise<void> {
  const described = await client.send(new DescribeTableCommand({ TableName: table.tableName }));
  const present = new Set((described.Table?.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName));
  for (const index of table.globalSecondaryIndexes) {
    if (present.has(index.IndexName)) continue;
    await client.send(
      new UpdateTableCommand({
        TableName: table.tableName,
        AttributeDefinitions: table.attributeDefinitions,
        GlobalSecondaryIndexUpdates: [{ Create: index }],
      }),
    );
  }
}
