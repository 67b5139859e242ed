/**
 * cdk-nag's AwsSolutions rules on the stack: no finding without a written acknowledgement, whatever the
 * props, and every acknowledgement says why.
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Code, Function as LambdaFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { KnoudsApiStack, type KnoudsApiStackProps } from '../lib/knouds-api-stack.js';

function stackWith(props: KnoudsApiStackProps): { app: App; stack: KnoudsApiStack } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  return { app, stack: new KnoudsApiStack(app, 'NagStack', props) };
}

const findings = (app: App, scope: IConstruct) =>
  new AwsSolutionsChecks(app).validateScope(scope).violations.map((v) => ({
    rule: v.ruleName,
    at: v.violatingResources.map((r) => r.constructPath),
  }));

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in the default stack', () => {
    const { app, stack } = stackWith({});
    expect(findings(app, stack)).toEqual([]);
  });

  it('finds nothing unacknowledged with a custom model, source maps and no CloudWatch role', () => {
    const { app, stack } = stackWith({
      cloudWatchRole: false,
      enableSourceMaps: true,
      models: (scope) => [
        {
          id: 'mine',
          description: 'mine',
          handler: new LambdaFunction(scope, 'MineModel', {
            runtime: Runtime.NODEJS_24_X,
            handler: 'index.handler',
            code: Code.fromInline('exports.handler = async () => ({})'),
          }),
        },
      ],
    });
    // The deployer's own function is theirs to answer for: only the stack's constructs are checked here.
    const ours = stack.node.children.filter((c) => c.node.id !== 'MineModel' && !c.node.id.startsWith('MineModel'));
    expect(ours.flatMap((c) => findings(app, c))).toEqual([]);
  });

  it('still finds what is not acknowledged (the check is live)', () => {
    const app = new App();
    const bare = new Stack(app, 'Bare');
    new LambdaFunction(bare, 'Old', { runtime: Runtime.NODEJS_20_X, handler: 'index.handler', code: Code.fromInline('exports.handler = 1') });
    expect(findings(app, bare).map((f) => f.rule)).toEqual(expect.arrayContaining(['AwsSolutions-L1']));
  });

  it('every acknowledgement gives a specific reason', () => {
    const { stack } = stackWith({});
    const acknowledged: [string, string][] = [];
    for (const c of stack.node.findAll()) {
      for (const entry of c.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) acknowledged.push([id, String(reason)]);
      }
    }
    expect(acknowledged.length).toBeGreaterThanOrEqual(5);
    for (const [id, reason] of acknowledged) {
      expect({ id, long: reason.length >= 60 }).toEqual({ id, long: true });
    }
  });
});

describe('cdk-nag AwsSolutions with the issue #17 console', () => {
  it('finds nothing unacknowledged without the console (console: false)', () => {
    const { app, stack } = stackWith({ console: false });
    expect(findings(app, stack)).toEqual([]);
  });

  it('acknowledges on the distribution only what a default *.cloudfront.net distribution cannot fix here (CFR1–CFR4): its origins use TLS 1.2 (CFR5) and its bucket an origin access control (CFR7)', () => {
    const { stack } = stackWith({});
    const distribution = stack.node.findChild('Console').node.findChild('Distribution');
    const acknowledged = distribution.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).flatMap((m) => Object.keys(m.data as object)));
    expect(acknowledged.map((id) => id.replace(/^Annotation::/, '')).sort()).toEqual(['AwsSolutions-CFR1', 'AwsSolutions-CFR2', 'AwsSolutions-CFR3', 'AwsSolutions-CFR4']);
  });
});

describe('cdk-nag AwsSolutions with the issue #14 props', () => {
  it('finds nothing unacknowledged with tracing on and deletion protection off', () => {
    const { app, stack } = stackWith({ tracing: true, deletionProtection: false });
    expect(findings(app, stack)).toEqual([]);
  });
});

describe('cdk-nag AwsSolutions with the issue #16 props', () => {
  it('finds nothing unacknowledged with the deployer’s own identity provider (no user pool)', () => {
    const { app, stack } = stackWith({ identityProvider: { issuer: 'https://login.example.com/oauth2/default', clientId: '0oa1example' } });
    expect(findings(app, stack)).toEqual([]);
  });

  it('finds nothing unacknowledged with threat protection off (Essentials: COG8 acknowledged with the prop as its reason)', () => {
    const { app, stack } = stackWith({ userPool: { threatProtection: false } });
    expect(findings(app, stack)).toEqual([]);
  });

  it('acknowledges only optional MFA (COG2) on the default user pool: its password policy and Plus plan pass the rules', () => {
    const { stack } = stackWith({});
    const acknowledged = stack.node
      .findChild('Identity')
      .node.findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY).flatMap((m) => Object.keys(m.data as object)));
    expect(acknowledged.map((id) => id.replace(/^Annotation::/, ''))).toEqual(['AwsSolutions-COG2']);
  });
});
