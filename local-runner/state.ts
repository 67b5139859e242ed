/**
 * The file through which a running `npm start` tells the admin CLI where its DynamoDB and tables are, and
 * how to reach the local provider's people. Mode 0600: it holds that provider's admin token.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TableNames } from '../lambdas/shared/ddb.js';
import type { Settings } from '../lambdas/shared/settings.js';
import type { LocalOidcState } from './oidc/admin-client.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** `KNOUDS_STATE_FILE` moves it (tests run several stacks at once). */
export const STATE_FILE = process.env['KNOUDS_STATE_FILE'] ?? path.join(PROJECT_ROOT, '.knouds-local.json');

export interface LocalState {
  readonly pid: number;
  readonly apiUrl: string;
  readonly dynamodbEndpoint: string;
  readonly region: string;
  readonly tables: TableNames;
  readonly settings: Settings;
  /** The local OpenID Connect provider: issuer, and the admin endpoint and token for `user add` (oidc/admin.ts). */
  readonly oidc?: LocalOidcState;
}
