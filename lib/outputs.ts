/** Names of the stack's CloudFormation outputs, read by the admin CLI (AWS) and the local runner. */
export const STACK_OUTPUTS = {
  apiUrl: 'ApiUrl',
  keysTable: 'KeysTableName',
  accountsTable: 'AccountsTableName',
  usageTable: 'UsageTableName',
  workflowsTable: 'WorkflowsTableName',
  executionsTable: 'ExecutionsTableName',
  idempotencyTable: 'IdempotencyTableName',
  settings: 'Settings',
} as const;
