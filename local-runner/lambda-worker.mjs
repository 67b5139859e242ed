// One Lambda execution environment: a worker thread with the function's own environment, which
// imports the function's bundle once (its cold start) and then serves one invocation at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';

const { modulePath, exportName, functionName, memoryMb, sourceMaps, discardLogs } = workerData;
if (sourceMaps) process.setSourceMapsEnabled(true);
// Nobody reads this function's logs: drop them here rather than pay a message to the main thread per line.
if (discardLogs) {
  process.stdout.write = () => true;
  process.stderr.write = () => true;
}

const mod = await import(pathToFileURL(modulePath).href);
const handler = mod[exportName];
if (typeof handler !== 'function') {
  throw new Error(`${modulePath} does not export a function named ${exportName}`);
}

function serializeError(error) {
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: 'Error', message: String(error) };
}

parentPort.on('message', async ({ id, payload, requestId, deadline }) => {
  const event = JSON.parse(payload);
  const context = {
    awsRequestId: requestId,
    functionName,
    functionVersion: '$LATEST',
    memoryLimitInMB: String(memoryMb),
    invokedFunctionArn: `arn:aws:lambda:${process.env.AWS_REGION}:000000000000:function:${functionName}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  const started = performance.now();
  try {
    const value = await handler(event, context);
    // The result goes back as JSON too (undefined stays undefined, as Lambda returns null for it).
    const ms = performance.now() - started;
    parentPort.postMessage({ id, ok: true, result: value === undefined ? undefined : JSON.stringify(value), ms });
  } catch (error) {
    parentPort.postMessage({ id, ok: false, error: serializeError(error), ms: performance.now() - started });
  }
});
parentPort.postMessage({ ready: true });
