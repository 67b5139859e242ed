#!/usr/bin/env node
/**
 * The CDK app. `npx cdk deploy` deploys it; `npm start` synthesizes it and serves the template locally.
 * Stack props can be set from context: `npx cdk deploy -c stackName=MyApi -c keyPrefix=acme`.
 */
import { App } from 'aws-cdk-lib';
import { KnoudsApiStack } from '../lib/knouds-api-stack.js';

const app = new App();
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'KnoudsApi';
const keyPrefix = app.node.tryGetContext('keyPrefix') as string | undefined;

new KnoudsApiStack(app, stackName, {
  ...(keyPrefix ? { keyPrefix } : {}),
  env: { account: process.env['CDK_DEFAULT_ACCOUNT'], region: process.env['CDK_DEFAULT_REGION'] },
});

app.synth();
