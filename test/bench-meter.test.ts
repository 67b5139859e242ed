/**
 * The bench's meter (bench/meter.ts), fed as the IAM proxy feeds it: calls counted by operation; while
 * metering, reads and writes asked for their consumed capacity and added up as request units, a
 * transaction's counted twice as AWS charges it, an answer that is not JSON counted as nothing.
 */
import { createMeter } from '../bench/meter.js';

const body = (o: unknown) => Buffer.from(JSON.stringify(o));
const answer = (o: unknown) => Buffer.from(JSON.stringify(o));

it('counts every call, and meters capacity only while metering is on', () => {
  const meter = createMeter();
  expect(meter.observer('GetItem', body({ TableName: 't', Key: {} }))).toBeUndefined();
  expect(meter.observer('ListTables', body({}))).toBeUndefined();
  expect(meter.counts()).toEqual({ GetItem: 1, ListTables: 1 });

  meter.metering(true);
  // Not a read or a write: passed as it came.
  expect(meter.observer('DescribeTable', body({ TableName: 't' }))).toBeUndefined();
  const read = meter.observer('GetItem', body({ TableName: 't', Key: {}, ConsistentRead: true }))!;
  expect(JSON.parse(read.body.toString())).toEqual({ TableName: 't', Key: {}, ConsistentRead: true, ReturnConsumedCapacity: 'TOTAL' });
  read.onAnswer(answer({ Item: {}, ConsumedCapacity: { TableName: 't', CapacityUnits: 1 } }));
  // A call that asked for capacity itself keeps its own setting.
  const indexes = meter.observer('Query', body({ TableName: 't', ReturnConsumedCapacity: 'INDEXES' }))!;
  expect(JSON.parse(indexes.body.toString())['ReturnConsumedCapacity']).toBe('INDEXES');
  indexes.onAnswer(answer({ Items: [], ConsumedCapacity: { CapacityUnits: 0.5 } }));
  // A transaction: an array of tables' capacity, charged twice.
  meter.observer('TransactWriteItems', body({ TransactItems: [] }))!.onAnswer(answer({ ConsumedCapacity: [{ CapacityUnits: 2 }, { CapacityUnits: 1 }] }));
  meter.observer('UpdateItem', body({ TableName: 't' }))!.onAnswer(answer({ ConsumedCapacity: { CapacityUnits: 1 } }));
  // An error page: nothing consumed.
  meter.observer('PutItem', body({ TableName: 't' }))!.onAnswer(Buffer.from('<html>502</html>'));
  expect(meter.capacity()).toEqual({ readUnits: 1.5, writeUnits: 7 });

  meter.metering(false);
  expect(meter.observer('GetItem', body({ TableName: 't' }))).toBeUndefined();
  meter.reset();
  expect(meter.counts()).toEqual({});
  expect(meter.capacity()).toEqual({ readUnits: 0, writeUnits: 0 });
});
