/**
 * `npm run smoke`: checks a running Knouds API, deployed or local, without harming it (smoke.ts).
 *
 *   npm run --silent smoke -- --url <ApiUrl> --key <admin key> [--timeout <seconds>]
 *   KNOUDS_API_URL=<ApiUrl> KNOUDS_API_KEY=<admin key> npm run --silent smoke
 *
 * Prints one line per step as it ends, then a pass/fail table with timings. Exit status: 0 when every
 * step passed, 1 when one failed (or was skipped, or the run was stopped), 2 on bad usage. Ctrl-C
 * stops the checks and still removes what the run made; a second Ctrl-C exits at once.
 */
import { parseArgs } from 'node:util';
import { displayPrefix, formatTable, runSmoke, type StepResult } from './smoke.js';

const USAGE = `Usage: npm run --silent smoke -- --url <ApiUrl> --key <admin key> [--timeout <seconds>]
  --url      the stage URL: the stack output ApiUrl (https://<api-id>.execute-api.<region>.amazonaws.com/v1),
             or http://localhost:3000/v1 for npm start            (or the environment variable KNOUDS_API_URL)
  --key      an API key with keys:write, workflow:read, workflow:write, workflow:run and execution:read,
             e.g. one with the admin scope                          (or KNOUDS_API_KEY, which keeps it out of ps)
  --timeout  seconds the async run may take to end (default 60)`;

const say = (line: string) => process.stdout.write(`${line}\n`);

function usage(message: string): never {
  process.stderr.write(`smoke: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  }));
} catch (error) {
  usage((error as Error).message);
}
if (values.help) {
  say(USAGE);
  process.exit(0);
}

const url = values.url ?? process.env['KNOUDS_API_URL'];
const key = values.key ?? process.env['KNOUDS_API_KEY'];
if (!url) usage('no API URL: give --url or KNOUDS_API_URL');
if (!key) usage('no API key: give --key or KNOUDS_API_KEY');
let parsed: URL;
try {
  parsed = new URL(url);
} catch {
  usage(`--url is not a URL: '${url}'`);
}
if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') usage(`--url must be http(s), got '${parsed.protocol}'`);
if (parsed.search || parsed.hash) usage('--url takes no query or fragment: give the stage URL, e.g. https://<api-id>.execute-api.<region>.amazonaws.com/v1');
const timeoutText = values.timeout ?? '60';
if (!/^\d+$/.test(timeoutText) || Number(timeoutText) < 1 || Number(timeoutText) > 900) usage(`--timeout must be whole seconds from 1 to 900, got '${timeoutText}'`);

const stop = new AbortController();
process.on('SIGINT', () => {
  if (stop.signal.aborted) process.exit(130);
  process.stderr.write('\nsmoke: stopping; removing what this run made (Ctrl-C again to exit at once)\n');
  stop.abort();
});

const base = url.replace(/\/+$/, '');
say(`Smoke test of ${base} with key ${displayPrefix(key)}`);
const started = performance.now();
const mark: Record<StepResult['status'], string> = { pass: 'ok  ', fail: 'FAIL', skip: 'skip' };
const report = await runSmoke({
  url: base,
  key,
  runTimeoutMs: Number(timeoutText) * 1000,
  signal: stop.signal,
  onStep: (r) => say(`  ${mark[r.status]} ${r.name}`),
});

const count = (status: StepResult['status']) => report.results.filter((r) => r.status === status).length;
say('');
say(formatTable(report.results));
say('');
if (report.leftovers.length > 0) {
  say(`Left behind by ${report.runId} (remove them by hand; everything a smoke run makes is named smoke-…):`);
  for (const l of report.leftovers) say(`  ${l}`);
}
say(
  `smoke ${report.ok ? 'passed' : 'FAILED'}: ${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped in ${((performance.now() - started) / 1000).toFixed(1)} s (${report.runId})`,
);
process.exit(report.ok ? 0 : 1);
