import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Set on the stack (before its functions exist) by the `enableSourceMaps` prop. */
export const SOURCE_MAPS_CONTEXT = 'knouds:enableSourceMaps';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface KnoudsFunctionProps extends Omit<NodejsFunctionProps, 'entry'> {
  /** The folder under `lambdas/` whose `index.ts` is the handler module. */
  readonly lambda: string;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
}

/**
 * Every function of the stack: Node.js 24 on ARM64, bundled by the local esbuild into one minified ESM
 * file that includes the AWS SDK (so the bundle that deploys is the bundle the local runner executes),
 * with source maps beside it, kept names, its own log group, and the caller's environment merged in.
 * Its role starts empty but for writing to its own log group (not AWS's managed basic-execution policy,
 * which may write to any); the stack grants the rest beside each function.
 */
export class KnoudsFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: KnoudsFunctionProps) {
    const { lambda, logRetention, environment, bundling, ...rest } = props;
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `${id}: its own log group, and what the stack grants it`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.seconds(10),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      logGroup,
      role,
      ...rest,
      entry: path.join(PROJECT_ROOT, 'lambdas', lambda, 'index.ts'),
      // Source maps ship with each bundle; Node applies them only when NODE_OPTIONS asks (stack prop
      // `enableSourceMaps`), because that costs every cold start 15–20 ms.
      environment: {
        ...(scope.node.tryGetContext(SOURCE_MAPS_CONTEXT) === true ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
        ...environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        // The lowest Node the bundles meet: the local runner executes them on Node 20 and up.
        target: 'node20',
        minify: true,
        sourceMap: true,
        keepNames: true,
        mainFields: ['module', 'main'],
        externalModules: [],
        // Some CommonJS dependencies of the SDK call require(); give the ESM bundle one.
        banner: "import { createRequire as __knoudsCreateRequire } from 'node:module'; const require = __knoudsCreateRequire(import.meta.url);",
        ...bundling,
      },
    });
  }
}
