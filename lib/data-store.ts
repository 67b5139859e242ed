import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, ProjectionType, TableV2, type ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { EXECUTIONS_BY_STATUS_INDEX, EXECUTIONS_BY_WORKFLOW_INDEX, WEBHOOKS_DUE_INDEX } from '../lambdas/shared/repositories/executions.js';
import { KEYS_BY_ACCOUNT_INDEX, KEYS_HOLDING_SLOTS_INDEX } from '../lambdas/shared/repositories/keys.js';
import { MEMBERSHIPS_BY_ACCOUNT_INDEX } from '../lambdas/shared/repositories/memberships.js';
import { AUDIT_BY_ACTION_INDEX, AUDIT_BY_ACTOR_INDEX, AUDIT_BY_TARGET_INDEX } from '../lambdas/shared/repositories/audit.js';

export interface DataStoreProps {
  /**
   * What happens to the tables when they leave the stack.
   * @default RemovalPolicy.RETAIN — data outlives the stack unless the deployer says otherwise
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * DynamoDB deletion protection on every table: no DeleteTable succeeds (from the console, the API, or
   * CloudFormation replacing or deleting the table) until it is turned off.
   * @default true — but false when `removalPolicy` is `DESTROY`, which asks for the tables to go with the stack
   */
  readonly deletionProtection?: boolean;
}

/**
 * The stateful half of the stack: every DynamoDB table, on-demand, with point-in-time recovery and
 * deletion protection.
 * Functions receive the tables through typed props, so redeploying code never touches data.
 * The access patterns behind each key and index are in docs/data-model.md.
 */
export class DataStore extends Construct {
  /** `pk` = `H#<sha256(key)>` (key record) or `K#<key_id>` (pointer to the hash); GSIs `by-account`, `by-account-slot` (sparse). */
  readonly keysTable: ITableV2;
  /** `account_id`: tier and the active-key counter. */
  readonly accountsTable: ITableV2;
  /** (`key_id`, `hour`): per-minute windows, hourly totals, last use. */
  readonly usageTable: ITableV2;
  /** (`account_id`, `sk`): workflow heads `W#<slug>` and versions `V#<slug>#<n>`. */
  readonly workflowsTable: ITableV2;
  /** (`account_id`, `execution_id`); GSIs `by-workflow`, `by-status` and `webhooks-due` (sparse). */
  readonly executionsTable: ITableV2;
  /** (`subject`, `account_id`): a person's role in an account; GSI `by-account`. */
  readonly membershipsTable: ITableV2;
  /** `pk` = `<account_id>#<sha256(Idempotency-Key)>`: a request's record and its kept answer, 24 h, then TTL. */
  readonly idempotencyTable: ITableV2;
  /**
   * (`account_id`, `sk` = `<occurred_at>#<event_id>`): the audit trail, each event written in its change's
   * transaction; GSIs `by-target`, `by-actor` (sparse), `by-action`; TTL after `auditRetentionDays`.
   */
  readonly auditTable: ITableV2;

  constructor(scope: Construct, id: string, props: DataStoreProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const common = {
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
      deletionProtection: props.deletionProtection ?? removalPolicy !== RemovalPolicy.DESTROY,
    };

    this.keysTable = new TableV2(this, 'KeysTable', {
      ...common,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
      globalSecondaryIndexes: [
        {
          indexName: KEYS_BY_ACCOUNT_INDEX,
          partitionKey: { name: 'account_id', type: AttributeType.STRING },
          sortKey: { name: 'created_at', type: AttributeType.STRING },
        },
        {
          // Sparse: only keys that hold a slot carry slot_account.
          indexName: KEYS_HOLDING_SLOTS_INDEX,
          partitionKey: { name: 'slot_account', type: AttributeType.STRING },
          sortKey: { name: 'created_at', type: AttributeType.STRING },
        },
      ],
    });

    this.accountsTable = new TableV2(this, 'AccountsTable', {
      ...common,
      partitionKey: { name: 'account_id', type: AttributeType.STRING },
    });

    this.usageTable = new TableV2(this, 'UsageTable', {
      ...common,
      partitionKey: { name: 'key_id', type: AttributeType.STRING },
      sortKey: { name: 'hour', type: AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
    });

    this.workflowsTable = new TableV2(this, 'WorkflowsTable', {
      ...common,
      partitionKey: { name: 'account_id', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
    });

    this.executionsTable = new TableV2(this, 'ExecutionsTable', {
      ...common,
      partitionKey: { name: 'account_id', type: AttributeType.STRING },
      sortKey: { name: 'execution_id', type: AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
      globalSecondaryIndexes: [
        {
          indexName: EXECUTIONS_BY_WORKFLOW_INDEX,
          partitionKey: { name: 'account_workflow', type: AttributeType.STRING },
          sortKey: { name: 'execution_id', type: AttributeType.STRING },
        },
        {
          // An account's executions in one status (`<account_id>#<status>`), newest first.
          indexName: EXECUTIONS_BY_STATUS_INDEX,
          partitionKey: { name: 'account_status', type: AttributeType.STRING },
          sortKey: { name: 'execution_id', type: AttributeType.STRING },
        },
        {
          // Sparse: only pending webhooks carry webhook_shard and webhook_due (a few fixed shards, due time
          // in epoch ms); keys only, the sender claims each item and gets it whole from the claim.
          indexName: WEBHOOKS_DUE_INDEX,
          partitionKey: { name: 'webhook_shard', type: AttributeType.STRING },
          sortKey: { name: 'webhook_due', type: AttributeType.NUMBER },
          projectionType: ProjectionType.KEYS_ONLY,
        },
      ],
    });

    this.membershipsTable = new TableV2(this, 'MembershipsTable', {
      ...common,
      partitionKey: { name: 'subject', type: AttributeType.STRING },
      sortKey: { name: 'account_id', type: AttributeType.STRING },
      globalSecondaryIndexes: [
        {
          // An account's people, for `user list` and the console (eventually consistent: never for decisions).
          indexName: MEMBERSHIPS_BY_ACCOUNT_INDEX,
          partitionKey: { name: 'account_id', type: AttributeType.STRING },
          sortKey: { name: 'subject', type: AttributeType.STRING },
        },
      ],
    });

    this.idempotencyTable = new TableV2(this, 'IdempotencyTable', {
      ...common,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
    });

    // Every index is partitioned by `<account_id>#<value>`: a filter never reads another account's events.
    const byAccountValue = (indexName: string, attribute: string) => ({
      indexName,
      partitionKey: { name: attribute, type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
    });
    this.auditTable = new TableV2(this, 'AuditTable', {
      ...common,
      partitionKey: { name: 'account_id', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
      globalSecondaryIndexes: [
        byAccountValue(AUDIT_BY_TARGET_INDEX, 'target_key'),
        // Sparse: only events by a key or a person carry actor_key.
        byAccountValue(AUDIT_BY_ACTOR_INDEX, 'actor_key'),
        byAccountValue(AUDIT_BY_ACTION_INDEX, 'action_key'),
      ],
    });
  }
}
