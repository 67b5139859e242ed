/** Creates the tables a synthesized template declares (keys, indexes, TTL) in a local DynamoDB. */
import {
  CreateTableCommand,
  DescribeTimeToLiveCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { TableDef } from './template.js';

/** Creates each table unless it exists (a persisted data folder), then turns its TTL on. */
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
