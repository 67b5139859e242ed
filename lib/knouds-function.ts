import { AssetHashType, DockerImage, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Code, Function as LambdaFunction, Runtime, type FunctionProps } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { PREBUILT_FLAG, writeRequestValidators } from './request-validators.js';

/** Set on the stack (before its functions exist) by the `enableSourceMaps` prop. */
export const SOURCE_MAPS_CONTEXT = 'knouds:enableSourceMaps';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where a bundle's lazily loaded code goes, beside its `index.mjs`. */
export const CHUNKS_DIR = 'chunks';

export interface KnoudsFunctionProps extends Omit<FunctionProps, 'code' | 'handler' | 'runtime'> {
  /** The folder under `lambdas/` whose `index.ts` is the handler module. */
  readonly lambda: string;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
}

/**
 * Bundles `lambdas/<lambda>/index.ts` into `outputDir`: one minified ESM `index.mjs` that includes the AWS
 * SDK (so the bundle that deploys is the bundle the local runner executes), with source maps beside it.
 * Code split: what the handler reaches only through a dynamic `import()` (the session path of
 * the authorizer, the KMS client, the SDK's own lazily loaded credential providers) goes into `chunks/`,
 * which Node reads and compiles only when that import first runs, so a cold start never parses it. The
 * request validators are Ajv standalone code generated at synth time (lib/request-validators.ts).
 */
export function bundleFunction(lambda: string, outputDir: string): void {
  buildSync({
    entryPoints: { index: path.join(PROJECT_ROOT, 'lambdas', lambda, 'index.ts') },
    outdir: outputDir,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    chunkNames: `${CHUNKS_DIR}/[name]-[hash]`,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The lowest Node the bundles meet: the local runner executes them on Node 20 and up.
    target: 'node20',
    minify: true,
    sourcemap: true,
    // Not `keepNames`: its `__name(fn, "…")` call for every function and class of the SDK ran at each cold
    // start (measured: 0.94 instead of 1.23 of the reference's init for Workflows). Minified names show in
    // stack traces unless the stack's `enableSourceMaps` is on; errors name themselves (`name = '…'`).
    mainFields: ['module', 'main'],
    absWorkingDir: PROJECT_ROOT,
    logLevel: 'error',
    inject: [writeRequestValidators(PROJECT_ROOT)],
    define: { [PREBUILT_FLAG]: 'true' },
    // Some CommonJS dependencies of the SDK call require(); give each ESM file one.
    banner: { js: "import { createRequire as __knoudsCreateRequire } from 'node:module'; const require = __knoudsCreateRequire(import.meta.url);" },
  });
}

/**
 * Every function of the stack: Node.js 24 on ARM64, bundled by the local esbuild (bundleFunction), its own
 * log group, and the caller's environment merged in. Its role starts empty but for writing to its own log
 * group (not AWS's managed basic-execution policy, which may write to any); the stack grants the rest
 * beside each function.
 */
export class KnoudsFunction extends LambdaFunction {
  constructor(scope: Construct, id: string, props: KnoudsFunctionProps) {
    const { lambda, logRetention, environment, ...rest } = props;
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
      logGroup,
      role,
      ...rest,
      handler: 'index.handler',
      code: Code.fromAsset(path.join(PROJECT_ROOT, 'lambdas'), {
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          // Never pulled: the local bundler below always builds.
          image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:24'),
          // Part of the CDK's bundling cache key (the local bundler is not): one bundle per entry.
          command: ['knouds-bundle', lambda],
          local: {
            tryBundle(outputDir: string): boolean {
              bundleFunction(lambda, outputDir);
              return true;
            },
          },
        },
      }),
      // Source maps ship with each bundle; Node applies them only when NODE_OPTIONS asks (stack prop
      // `enableSourceMaps`), because that costs every cold start 15–20 ms.
      environment: {
        ...(scope.node.tryGetContext(SOURCE_MAPS_CONTEXT) === true ? { NODE_OPTIONS: '--enable-source-maps' } : {}),
        ...environment,
      },
    });
  }
}
