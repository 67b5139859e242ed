/** Names of the stack's CloudFormation outputs, read by the admin CLI (AWS) and the local runner. */
export const STACK_OUTPUTS = {
  apiUrl: 'ApiUrl',
  keysTable: 'KeysTableName',
  accountsTable: 'AccountsTableName',
  usageTable: 'UsageTableName',
  workflowsTable: 'WorkflowsTableName',
  executionsTable: 'ExecutionsTableName',
  membershipsTable: 'MembershipsTableName',
  idempotencyTable: 'IdempotencyTableName',
  auditTable: 'AuditTableName',
  settings: 'Settings',
  /** The `iss` of people's tokens: the user pool's, or the `identityProvider` prop's. */
  identityIssuer: 'IdentityIssuer',
  /** The console's OAuth client id. */
  consoleClientId: 'ConsoleClientId',
  /** The Cognito user pool (`user add` creates people there); absent with the `identityProvider` prop. */
  userPoolId: 'UserPoolId',
  /** The managed login pages, `https://<prefix>.auth.<region>.amazoncognito.com`; absent with the `identityProvider` prop. */
  loginDomainUrl: 'LoginDomainUrl',
  /** The console, `https://<distribution domain>/`; absent with the `console: false` prop. */
  consoleUrl: 'ConsoleUrl',
  /** The console's redirect URI, `<ConsoleUrl>auth/callback`, to register with a deployer's own provider; absent with `console: false`. */
  consoleRedirectUri: 'ConsoleRedirectUri',
} as const;
