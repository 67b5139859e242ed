/**
 * The console (API.md §6): the web application in `console/`, built by Vite when the stack synthesizes
 * (local asset bundling: no Docker) and deployed into a private S3 bucket. The local runner serves the same
 * asset, read from the template.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { DockerImage, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, type CfnBucket } from 'aws-cdk-lib/aws-s3';
import { BucketDeployment, Source } from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import { PROJECT_ROOT } from './knouds-function.js';

/** The console's sources (a Vite project). */
export const CONSOLE_DIR = path.join(PROJECT_ROOT, 'console');

/** The built console: `vite build` of `console/`, run by the CDK's local bundling into the asset folder. */
export function consoleAsset() {
  return Source.asset(CONSOLE_DIR, {
    exclude: ['dist', 'node_modules'],
    bundling: {
      // Never pulled: the local bundler below always builds.
      image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:24'),
      local: {
        tryBundle(outputDir: string): boolean {
          const vite = path.join(PROJECT_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
          execFileSync(process.execPath, [vite, 'build', CONSOLE_DIR, '--outDir', outputDir, '--emptyOutDir'], {
            cwd: PROJECT_ROOT,
            stdio: ['ignore', process.stderr, process.stderr],
          });
          return true;
        },
      },
    },
  });
}

export class KnoudsConsole extends Construct {
  readonly bucket: Bucket;

  constructor(scope: Construct, id: string, props: { removalPolicy?: RemovalPolicy } = {}) {
    super(scope, id);
    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
      autoDeleteObjects: (props.removalPolicy ?? RemovalPolicy.DESTROY) === RemovalPolicy.DESTROY,
    });
    new BucketDeployment(this, 'Deployment', {
      sources: [consoleAsset()],
      destinationBucket: this.bucket,
      prune: true,
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'The bucket holds only the console’s public build output, written by the deployment; reads go through CloudFront, whose logs are the deployer’s choice.',
    });
    // The CDK's own deployment function (one per stack): copies the built asset into the bucket at deploy time.
    const handler = Stack.of(this).node.children.find((c) => c.node.id.startsWith('Custom::CDKBucketDeployment'));
    if (handler) {
      const reason = 'The CDK’s BucketDeployment function: it runs only at deploy time, copies the console’s asset from the CDK asset bucket into the console bucket, and its runtime and policy are the CDK’s.';
      for (const id of [
        'AwsSolutions-L1',
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'AwsSolutions-IAM5[Action::s3:Abort*]',
        'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
        'AwsSolutions-IAM5[Action::s3:GetBucket*]',
        'AwsSolutions-IAM5[Action::s3:GetObject*]',
        'AwsSolutions-IAM5[Action::s3:List*]',
        `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnBucket)}.Arn>/*]`,
        // The CDK's asset bucket, as the bootstrap names it (the region a token, or fixed by the stack's env).
        'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]',
        ...(Token.isUnresolved(Stack.of(this).region) ? [] : [`AwsSolutions-IAM5[Resource::arn:aws:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-${Stack.of(this).region}/*]`]),
      ]) {
        Validations.of(handler).acknowledge({ id, reason });
      }
    }
  }
}
