/**
 * A Jest reporter beside the default one: when a test file fails, it prints where that file's logs are
 * (its local stacks' function logs, access logs and IAM refusals, and what the functions' code logged in
 * the test's own process: see stack.ts and global-test-logs.mjs), with the last lines of each; at the end
 * of a run with a failure it prints the run's log folder, and after a run without one it deletes it.
 * The folder is KNOUDS_TEST_LOG_DIR (made by the global setup); a test file's logs are in
 * `<folder>/<test path from the root, / as __>` (testLogDir in stack.ts names it the same way).
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const TAIL_LINES = 20;
const LINE_CHARS = 300;

export default class LogReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onTestResult(_test, result) {
    const failed = result.numFailingTests > 0 || result.testExecError !== undefined;
    const root = process.env.KNOUDS_TEST_LOG_DIR;
    if (!failed || !root) return;
    const relative = path.relative(this.rootDir, result.testFilePath);
    const dir = path.join(root, relative.replace(/[\\/]/g, '__'));
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.log')).sort() : [];
    if (files.length === 0) return;
    const out = [`\n  Logs of ${relative} (last ${TAIL_LINES} lines of each):`];
    for (const name of files) {
      const file = path.join(dir, name);
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      out.push(`    ${file}`, ...lines.slice(-TAIL_LINES).map((l) => `      ${l.length > LINE_CHARS ? `${l.slice(0, LINE_CHARS)}…` : l}`));
    }
    process.stderr.write(`${out.join('\n')}\n`);
  }

  onRunComplete(_contexts, results) {
    const root = process.env.KNOUDS_TEST_LOG_DIR;
    if (!root || !existsSync(root)) return;
    if (results.numFailedTests === 0 && results.numFailedTestSuites === 0 && results.numRuntimeErrorTestSuites === 0) {
      rmSync(root, { recursive: true, force: true });
    } else {
      process.stderr.write(`\nLogs of this run's local stacks and in-process code: ${root}\n`);
    }
  }
}
