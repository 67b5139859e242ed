/**
 * Lambda's limit on a function's environment: 4 KB for all its variables together, measured as Lambda
 * does, on the JSON of the variables (`{"NAME":"value",…}`, quotes inside values escaped). Past it the
 * deployment fails in CloudFormation; measured here, it fails the synth instead, naming the function, the
 * size and the limit.
 *
 * Values that are only known at deployment (a table's name, another function's name, a key's ARN) count
 * at the longest they can be (a function name: 64 characters; a table name: 255), so a synth that passes
 * deploys.
 */
import { CfnResource, Stack, Token } from 'aws-cdk-lib';
import type { CfnFunction, Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';

/** Lambda's limit for all environment variables of a function together. */
export const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;

/** The longest a Lambda function name can be. */
export const MAX_FUNCTION_NAME_LENGTH = 64;

/** The longest value a deploy-time reference can resolve to, by resource type and `Ref` or attribute. */
const MAX_RESOLVED_LENGTH: Record<string, Record<string, number>> = {
  'AWS::Lambda::Function': { Ref: MAX_FUNCTION_NAME_LENGTH, Arn: 170 },
  'AWS::DynamoDB::GlobalTable': { Ref: 255 },
  'AWS::DynamoDB::Table': { Ref: 255 },
  // arn:<partition>:kms:<region>:<account>:key/<uuid>
  'AWS::KMS::Key': { Ref: 36, Arn: 128 },
  // A user pool id is at most 55 characters, an app client id 128.
  'AWS::Cognito::UserPool': { Ref: 55 },
  'AWS::Cognito::UserPoolClient': { Ref: 128 },
};
/** The longest a pseudo parameter can be (region and URL suffix generously: no documented maximum). */
const MAX_PSEUDO_LENGTH: Record<string, number> = {
  'AWS::Region': 32,
  'AWS::URLSuffix': 32,
  'AWS::Partition': 16,
  'AWS::AccountId': 12,
};
/** Any other reference (a pseudo parameter, an import): generous. */
const UNKNOWN_RESOLVED_LENGTH = 256;

/** Bytes of `s` inside a JSON string (without the quotes around it). */
const jsonBytes = (s: string) => Buffer.byteLength(JSON.stringify(s)) - 2;

/** The size of one environment variable as Lambda measures it: `"NAME":"value"`. */
export function variableBytes(name: string, value: string): number {
  return jsonBytes(name) + jsonBytes(value) + 5;
}

export interface EnvironmentSize {
  /** Bytes Lambda will measure, at most. */
  readonly bytes: number;
  /** Each variable's share, largest first. */
  readonly variables: readonly { readonly name: string; readonly bytes: number }[];
}

/** The size of a function's environment, as it stands now (call it once every variable is added). */
export function environmentSize(fn: LambdaFunction): EnvironmentSize {
  const stack = Stack.of(fn);
  const cfn = fn.node.defaultChild as CfnFunction;
  // The L1 property, resolved: `variables` (CloudFormation's `Variables`), each a string or a reference.
  const resolved = stack.resolve(cfn.environment) as { variables?: Record<string, unknown> } | undefined;
  const vars = Object.entries(resolved?.variables ?? {});
  if (vars.length === 0) return { bytes: 0, variables: [] };
  const types = resourceTypes(stack);
  const valueBytes = (value: unknown): number => {
    if (typeof value === 'string') return jsonBytes(value);
    if (typeof value === 'number' || typeof value === 'boolean') return jsonBytes(String(value));
    const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::Join'?: [string, unknown[]] } | null;
    if (v?.['Fn::Join']) {
      const [separator, parts] = v['Fn::Join'];
      return parts.reduce<number>((sum, part) => sum + valueBytes(part), 0) + jsonBytes(separator) * Math.max(0, parts.length - 1);
    }
    if (v?.Ref !== undefined) return MAX_PSEUDO_LENGTH[v.Ref] ?? MAX_RESOLVED_LENGTH[types.get(v.Ref) ?? '']?.['Ref'] ?? UNKNOWN_RESOLVED_LENGTH;
    if (v?.['Fn::GetAtt']) {
      const [id, attribute] = v['Fn::GetAtt'];
      return MAX_RESOLVED_LENGTH[types.get(id) ?? '']?.[attribute] ?? UNKNOWN_RESOLVED_LENGTH;
    }
    return UNKNOWN_RESOLVED_LENGTH;
  };
  const variables = vars
    .map(([name, value]) => ({ name, bytes: jsonBytes(name) + valueBytes(value) + 5 }))
    .sort((a, b) => b.bytes - a.bytes);
  // {"A":"1","B":"2"}: the braces, the commas, and each variable.
  const bytes = 2 + (variables.length - 1) + variables.reduce((sum, v) => sum + v.bytes, 0);
  return { bytes, variables };
}

/** Logical id → resource type, for every resource of the stack. */
function resourceTypes(stack: Stack): Map<string, string> {
  const types = new Map<string, string>();
  for (const c of stack.node.findAll()) {
    if (CfnResource.isCfnResource(c) && Stack.of(c) === stack) types.set(stack.resolve(c.logicalId) as string, c.cfnResourceType);
  }
  return types;
}

/** Fails the synth when the function's environment outgrows Lambda's limit. */
export function validateEnvironmentSize(fn: LambdaFunction): void {
  fn.node.addValidation({
    validate: () => {
      const { bytes, variables } = environmentSize(fn);
      if (bytes <= LAMBDA_ENVIRONMENT_LIMIT_BYTES) return [];
      const largest = variables
        .slice(0, 3)
        .map((v) => `${v.name} ${v.bytes} bytes`)
        .join(', ');
      return [
        `The function's environment variables take ${bytes} bytes (values known only at deployment counted at their longest), ` +
          `over Lambda's limit of ${LAMBDA_ENVIRONMENT_LIMIT_BYTES} bytes (4 KB) for all of a function's variables together. Largest: ${largest}.`,
      ];
    },
  });
}

/** A function name as it will be at most: itself when known now, else 64 characters. */
export function boundedFunctionName(name: string): string {
  return Token.isUnresolved(name) ? 'f'.repeat(MAX_FUNCTION_NAME_LENGTH) : name;
}
