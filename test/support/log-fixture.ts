/** Run by test/log.test.ts in a fresh process: three invocations' worth of log calls, at the env's settings. */
import { log, startInvocation } from '../../lambdas/shared/log.js';

for (let i = 0; i < 3; i++) {
  startInvocation();
  log('debug', 'debug line', { i });
  log('info', 'request', { i, key_id: 'key_x' });
}
