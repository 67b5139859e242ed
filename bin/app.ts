#!/usr/bin/env node
/**
 * The CDK app. `npx cdk deploy` deploys it; `npm start` synthesizes it and serves the template locally.
 * Stack props can be set from context: `npx cdk deploy -c stackName=MyApi -c keyPrefix=acme`.
 */
import { App, Duration, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { KnoudsApiStack, type CustomModel } from '../lib/knouds-api-stack.js';
import { KnoudsFunction } from '../lib/knouds-function.js';

const app = new App();
// cdk-nag's AwsSolutions rules run on every synth (and so on every `npm start`): a finding that lib/nag.ts
// does not acknowledge with its reason fails the synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'KnoudsApi';
const keyPrefix = app.node.tryGetContext('keyPrefix') as string | undefined;

const exampleModel = String(app.node.tryGetContext('exampleModel') ?? 'false') === 'true';

new KnoudsApiStack(app, stackName, {
  ...(keyPrefix ? { keyPrefix } : {}),
  env: { account: process.env['CDK_DEFAULT_ACCOUNT'], region: process.env['CDK_DEFAULT_REGION'] },
  // `-c exampleModel=true`: a model backed by a function of the deployer's, as the `models` prop allows.
  models: (scope) =>
    exampleModel
      ? [
          {
            id: 'reverse',
            description: 'Reverses `text` (an example of a model backed by your own Lambda function).',
            inputSchema: {
              type: 'object',
              required: ['text'],
              // sleep_ms: answer that much later, as a slow model would (the tests of the run deadlines use it).
              properties: { text: { type: 'string' }, sleep_ms: { type: 'integer', minimum: 0, maximum: 60_000 } },
            },
            handler: new KnoudsFunction(scope, 'ReverseModelFunction', {
              lambda: 'example-model',
              description: 'Example model: reverse',
              // Longer than a sync run's budget, so a slow answer meets the run's deadline, not this timeout.
              timeout: Duration.seconds(70),
            }),
          } satisfies CustomModel,
        ]
      : [],
});

app.synth();
