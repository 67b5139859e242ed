/**
 * Loaded before each test file (Jest `setupFilesAfterEnv`). The functions' code that tests run in their
 * own process (services, handlers, the sweep) logs through Powertools Logger, which writes JSON lines
 * straight to stdout and stderr, past Jest's console capture: they would land between the results. They
 * go instead to `in-process.log` in this test file's log folder (see stack.ts, testLogDir), which the
 * run's reporter shows when a test of the file fails. Only whole Powertools lines (`{"level":"…`) are
 * moved; anything else written to the streams is left as it is.
 */
/* global expect */
import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const TARGET = Symbol.for('knouds.test.inProcessLog');
const PATCHED = Symbol.for('knouds.test.inProcessLogPatched');
const root = process.env.KNOUDS_TEST_LOG_DIR ?? path.join(tmpdir(), 'knouds-test-logs');
const rootDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const testPath = expect.getState().testPath ?? 'unknown-test';
const folder = path.join(root, path.relative(rootDir, testPath).replace(/[\\/]/g, '__'));

for (const stream of [process.stdout, process.stderr]) {
  // The streams outlive the test file (a worker runs several): patched once, pointed at each file's log.
  stream[TARGET] = path.join(folder, 'in-process.log');
  if (stream[PATCHED]) continue;
  const write = stream.write.bind(stream);
  stream.write = (chunk, encoding, callback) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
    if (!text.startsWith('{"level":"')) return write(chunk, encoding, callback);
    mkdirSync(path.dirname(stream[TARGET]), { recursive: true });
    appendFileSync(stream[TARGET], text.endsWith('\n') ? text : `${text}\n`);
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') done();
    return true;
  };
  stream[PATCHED] = true;
}
