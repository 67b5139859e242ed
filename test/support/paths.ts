import path from 'node:path';
import { PROJECT_ROOT } from '../../local-runner/state.js';

/** The tests synthesize into their own assembly so a running `npm start` keeps its cdk.out. */
export const TEST_CDK_OUT = path.join(PROJECT_ROOT, 'cdk.out.test');
