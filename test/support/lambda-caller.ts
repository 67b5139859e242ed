/** The one known caller the Lambda Invoke API suites sign with, as a runner's function would. */
import type { SigningIdentity } from '../../local-runner/sigv4.js';

export const REGION = 'us-east-1';
export const CALLER: SigningIdentity = {
  name: 'WorkflowsFunction',
  accessKeyId: 'local',
  secretAccessKey: 'the-callers-own-secret-key-0123456789',
  sessionToken: 'the-callers-own-session-token-0123456789',
};
