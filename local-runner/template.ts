/**
 * Reads a synthesized cloud assembly (cdk.out) into what the local gateway serves: the API's
 * Resource/Method tree, its authorizers and gateway responses, each function's bundled asset and
 * environment, and the tables to create. Everything comes from the template; nothing is hand-listed.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

type Json = unknown;
interface CfnResource {
  Type: string;
  Properties?: Record<string, Json>;
}
interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: Json }>;
}

/**
 * The logical id a function is named by: the template's Ref of a function resolves to `local-<logical
 * id>` here, and an ARN ends with the name.
 */
export function functionIdByName(nameOrArn: string): string {
  return nameOrArn.replace(/^arn:aws:lambda:[^:]*:[^:]*:function:/, '').replace(/^local-/, '');
}

export interface FunctionDef {
  readonly logicalId: string;
  /** The bundle's folder inside cdk.out. */
  readonly assetDir: string;
  /** Absolute path of the module file that exports the handler. */
  readonly modulePath: string;
  readonly exportName: string;
  readonly environment: Record<string, string>;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  /** The logical id of its execution role (`Role: {Fn::GetAtt: [<id>, Arn]}`), or the role's ARN when it is not in the template. */
  readonly role?: string;
  /**
   * How often Lambda retries a failed asynchronous invocation: its `AWS::Lambda::EventInvokeConfig`'s
   * `MaximumRetryAttempts` (0–2); absent, Lambda's default of 2.
   */
  readonly asyncRetryAttempts?: number;
}

/**
 * An IAM role of the template with every identity-based policy attached to it there (its inline
 * `Policies`, the `AWS::IAM::Policy` and `AWS::IAM::ManagedPolicy` resources naming it), each document
 * resolved with local values (tables' ARNs name the local tables, functions' ARNs end with their logical id).
 */
export interface RoleDef {
  readonly logicalId: string;
  /** `RoleName` when the template sets it, else the logical id (CloudFormation would generate one). */
  readonly name: string;
  readonly policies: { readonly name: string; readonly document: unknown }[];
  /** Managed policy ARNs that are not policies of the template (AWS managed ones): their statements are unknown here. */
  readonly externalManagedPolicies: string[];
  /** The permissions boundary's ARN, when set (as resolved). */
  readonly permissionsBoundary?: string;
}

export interface TableDef {
  readonly logicalId: string;
  readonly tableName: string;
  readonly keySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
  readonly attributeDefinitions: { AttributeName: string; AttributeType: 'S' | 'N' | 'B' }[];
  readonly globalSecondaryIndexes: {
    IndexName: string;
    KeySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
    Projection: { ProjectionType: 'ALL' | 'KEYS_ONLY' | 'INCLUDE'; NonKeyAttributes?: string[] };
  }[];
  readonly ttlAttribute?: string;
}

export interface AuthorizerDef {
  readonly logicalId: string;
  readonly type: 'REQUEST' | 'TOKEN';
  readonly functionId: string;
  /** e.g. `method.request.header.x-api-key` */
  readonly identitySources: string[];
  readonly resultTtlSeconds: number;
}

export type IntegrationDef =
  | { readonly type: 'AWS_PROXY'; readonly functionId: string }
  | {
      readonly type: 'MOCK';
      /** The content types the integration has a request template for (lowercase). */
      readonly requestContentTypes: readonly string[];
      /** `NEVER` and `WHEN_NO_TEMPLATES` (with templates) refuse any other content type with 415; `WHEN_NO_MATCH` (the default) does not. */
      readonly passthroughBehavior: string;
      readonly responses: { statusCode: string; selectionPattern?: string; template?: string; headers: Record<string, string> }[];
    };

export interface MethodDef {
  readonly resourcePath: string;
  readonly httpMethod: string;
  readonly authorizationType: string;
  readonly authorizerId?: string;
  readonly integration: IntegrationDef;
}

export interface GatewayResponseDef {
  readonly type: string;
  readonly statusCode?: string;
  readonly headers: Record<string, string>;
  readonly templates: Record<string, string>;
}

/** An EventBridge rule on a schedule (`rate(...)`) with Lambda targets. */
export interface ScheduleDef {
  readonly logicalId: string;
  readonly ruleArn: string;
  /** The expression as the template declares it, e.g. `rate(1 minute)`. */
  readonly expression: string;
  readonly rateMs: number;
  /** Each target function, and the constant `Input` it is given instead of the scheduled event, if any. */
  readonly targets: { readonly functionId: string; readonly input?: unknown }[];
}

/**
 * A `Custom::CDKBucketDeployment` (the console, API.md §6): the asset folders it copies into its bucket,
 * in order (a later folder's file wins, as in S3). Locally these folders are served as they are.
 */
export interface StaticSiteDef {
  readonly logicalId: string;
  readonly assetDirs: string[];
}

/** What the local runner cannot run of the template (said once at start-up), e.g. a cron() schedule. */
export interface Unsupported {
  readonly logicalId: string;
  readonly reason: string;
}

export interface LocalApiModel {
  readonly stackName: string;
  readonly stageName: string;
  readonly methods: MethodDef[];
  readonly authorizers: Map<string, AuthorizerDef>;
  readonly gatewayResponses: Map<string, GatewayResponseDef>;
  readonly functions: Map<string, FunctionDef>;
  /** The template's IAM roles, by logical id. */
  readonly roles: Map<string, RoleDef>;
  readonly tables: TableDef[];
  readonly schedules: ScheduleDef[];
  readonly sites: StaticSiteDef[];
  readonly unsupported: Unsupported[];
  readonly outputs: Record<string, string>;
}

export interface ResolveOptions {
  readonly region: string;
  readonly accountId: string;
  /** Local table names are `<prefix>-<logical id>`. @default the stack name */
  readonly tableNamePrefix?: string;
}

interface Manifest {
  artifacts: Record<string, { type: string; properties?: { templateFile?: string }; displayName?: string }>;
}

interface AssetsManifest {
  files: Record<string, { source: { path: string; packaging?: string }; destinations: Record<string, { objectKey: string }> }>;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** The one stack artifact of the assembly (this app has one stack). */
export function findStack(cdkOut: string): { stackName: string; templateFile: string; assetsFile: string } {
  const manifest = readJson<Manifest>(path.join(cdkOut, 'manifest.json'));
  const stacks = Object.entries(manifest.artifacts).filter(([, a]) => a.type === 'aws:cloudformation:stack');
  const [first] = stacks;
  if (!first || stacks.length !== 1) {
    throw new Error(`expected exactly one stack in ${cdkOut}, found ${stacks.length}`);
  }
  const [stackName, artifact] = first;
  const templateFile = path.join(cdkOut, artifact.properties?.templateFile ?? `${stackName}.template.json`);
  return { stackName, templateFile, assetsFile: path.join(cdkOut, `${stackName}.assets.json`) };
}

export function loadApiModel(cdkOut: string, options: ResolveOptions): LocalApiModel {
  const { stackName, templateFile, assetsFile } = findStack(cdkOut);
  const template = readJson<CfnTemplate>(templateFile);
  const assets = readJson<AssetsManifest>(assetsFile);
  const resources = template.Resources;

  // S3 object key → asset folder, from the assets manifest.
  const assetByKey = new Map<string, string>();
  for (const file of Object.values(assets.files)) {
    for (const dest of Object.values(file.destinations)) assetByKey.set(dest.objectKey, path.join(cdkOut, file.source.path));
  }

  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  const tableNames = new Map<string, string>();
  for (const [id] of [...ofType('AWS::DynamoDB::Table'), ...ofType('AWS::DynamoDB::GlobalTable')]) {
    tableNames.set(id, `${options.tableNamePrefix ?? stackName}-${id}`);
  }

  const resolve = makeResolver(resources, tableNames, options);

  const asyncRetries = new Map<string, number>();
  for (const [, r] of ofType('AWS::Lambda::EventInvokeConfig')) {
    const p = r.Properties ?? {};
    // The function by Ref, by name or by ARN, as a template may name it.
    const target = functionIdByName(String(resolveOr(resolve, p['FunctionName'] ?? '')));
    if (p['Qualifier'] === '$LATEST' && typeof p['MaximumRetryAttempts'] === 'number') asyncRetries.set(target, p['MaximumRetryAttempts']);
  }

  const functions = new Map<string, FunctionDef>();
  for (const [id, r] of ofType('AWS::Lambda::Function')) {
    const p = r.Properties ?? {};
    // Only Node.js functions run locally (not, e.g., the CDK's Python function that deploys the console).
    if (!String(p['Runtime'] ?? 'nodejs').startsWith('nodejs')) continue;
    const code = p['Code'] as { S3Key?: Json };
    const key = resolve(code.S3Key);
    const assetDir = typeof key === 'string' ? assetByKey.get(key) : undefined;
    if (!assetDir) continue; // not a bundled asset (e.g. inline code of a CDK-internal helper)
    const handler = String(p['Handler'] ?? 'index.handler');
    const dot = handler.lastIndexOf('.');
    const moduleBase = handler.slice(0, dot);
    const candidates = ['.mjs', '.js', '.cjs'].map((ext) => path.join(assetDir, moduleBase + ext));
    const modulePath = candidates.find((c) => existsSync(c)) ?? candidates[0]!;
    const roleRef = p['Role'];
    const roleGetAtt = (roleRef as { 'Fn::GetAtt'?: [string, string] } | undefined)?.['Fn::GetAtt'];
    const role = roleGetAtt && roleGetAtt[1] === 'Arn' ? roleGetAtt[0] : roleRef === undefined ? undefined : String(resolveOr(resolve, roleRef));
    const vars = ((p['Environment'] as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {}) as Record<string, Json>;
    const environment: Record<string, string> = {};
    for (const [name, value] of Object.entries(vars)) environment[name] = String(resolve(value));
    functions.set(id, {
      logicalId: id,
      assetDir,
      modulePath,
      exportName: handler.slice(dot + 1),
      environment,
      timeoutSeconds: Number(p['Timeout'] ?? 3),
      memoryMb: Number(p['MemorySize'] ?? 128),
      ...(role ? { role } : {}),
      ...(asyncRetries.has(id) ? { asyncRetryAttempts: asyncRetries.get(id)! } : {}),
    });
  }

  const roles = new Map<string, RoleDef>();
  for (const [id, r] of ofType('AWS::IAM::Role')) {
    const p = r.Properties ?? {};
    const inline = (p['Policies'] ?? []) as { PolicyName?: Json; PolicyDocument?: Json }[];
    const boundary = p['PermissionsBoundary'];
    roles.set(id, {
      logicalId: id,
      name: typeof p['RoleName'] === 'string' ? p['RoleName'] : id,
      policies: inline.map((x, i) => ({ name: `${id}/${typeof x.PolicyName === 'string' ? x.PolicyName : `Policies[${i}]`}`, document: resolveDocument(resolve, x.PolicyDocument) })),
      externalManagedPolicies: [],
      ...(boundary !== undefined ? { permissionsBoundary: String(resolveOr(resolve, boundary)) } : {}),
    });
  }
  // Policies attached by the policy's `Roles` (AWS::IAM::Policy, AWS::IAM::ManagedPolicy) or by the role's `ManagedPolicyArns`.
  const roleIdsOf = (value: Json): string[] =>
    ((value ?? []) as Json[]).map((x) => (x as { Ref?: string }).Ref).filter((x): x is string => typeof x === 'string');
  const managedById = new Map<string, Json>();
  for (const [id, r] of [...ofType('AWS::IAM::Policy'), ...ofType('AWS::IAM::ManagedPolicy')]) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::IAM::ManagedPolicy') managedById.set(id, p['PolicyDocument']);
    for (const roleId of roleIdsOf(p['Roles'])) {
      roles.get(roleId)?.policies.push({ name: id, document: resolveDocument(resolve, p['PolicyDocument']) });
    }
  }
  for (const [id, r] of ofType('AWS::IAM::Role')) {
    const role = roles.get(id)!;
    for (const arn of (r.Properties?.['ManagedPolicyArns'] ?? []) as Json[]) {
      const managedId = (arn as { Ref?: string }).Ref;
      if (managedId && managedById.has(managedId)) {
        if (!role.policies.some((x) => x.name === managedId)) role.policies.push({ name: managedId, document: resolveDocument(resolve, managedById.get(managedId)) });
      } else role.externalManagedPolicies.push(String(resolveOr(resolve, arn)));
    }
  }

  const tables: TableDef[] = [];
  for (const [id, r] of [...ofType('AWS::DynamoDB::Table'), ...ofType('AWS::DynamoDB::GlobalTable')]) {
    const p = r.Properties ?? {};
    const ttl = p['TimeToLiveSpecification'] as { AttributeName?: string; Enabled?: boolean } | undefined;
    const gsis = (p['GlobalSecondaryIndexes'] ?? []) as TableDef['globalSecondaryIndexes'];
    tables.push({
      logicalId: id,
      tableName: tableNames.get(id)!,
      keySchema: p['KeySchema'] as TableDef['keySchema'],
      attributeDefinitions: p['AttributeDefinitions'] as TableDef['attributeDefinitions'],
      globalSecondaryIndexes: gsis.map((g) => ({ IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection })),
      ...(ttl?.Enabled && ttl.AttributeName ? { ttlAttribute: ttl.AttributeName } : {}),
    });
  }

  const functionIdOf = (uri: Json): string => {
    const found = findGetAttArn(uri);
    if (!found) throw new Error(`cannot find the Lambda function of integration ${JSON.stringify(uri)}`);
    return found;
  };

  const authorizers = new Map<string, AuthorizerDef>();
  for (const [id, r] of ofType('AWS::ApiGateway::Authorizer')) {
    const p = r.Properties ?? {};
    authorizers.set(id, {
      logicalId: id,
      type: p['Type'] as 'REQUEST' | 'TOKEN',
      functionId: functionIdOf(p['AuthorizerUri']),
      identitySources: String(p['IdentitySource'] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      resultTtlSeconds: Number(p['AuthorizerResultTtlInSeconds'] ?? 300),
    });
  }

  // Resource tree: logical id → full path.
  const restApis = ofType('AWS::ApiGateway::RestApi');
  if (restApis.length !== 1) throw new Error(`expected one RestApi in the template, found ${restApis.length}`);
  const restApiId = restApis[0]![0];
  const pathOf = new Map<string, string>();
  const resourcePath = (ref: Json): string => {
    const getAtt = (ref as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    if (getAtt && getAtt[0] === restApiId && getAtt[1] === 'RootResourceId') return '/';
    const id = (ref as { Ref?: string }).Ref;
    if (!id) throw new Error(`unexpected resource reference ${JSON.stringify(ref)}`);
    const cached = pathOf.get(id);
    if (cached) return cached;
    const p = resources[id]?.Properties ?? {};
    const parent = resourcePath(p['ParentId']);
    const full = `${parent === '/' ? '' : parent}/${String(p['PathPart'])}`;
    pathOf.set(id, full);
    return full;
  };

  const methods: MethodDef[] = [];
  for (const [, r] of ofType('AWS::ApiGateway::Method')) {
    const p = r.Properties ?? {};
    const integration = p['Integration'] as Record<string, Json>;
    const type = integration['Type'];
    let def: IntegrationDef;
    if (type === 'AWS_PROXY') {
      def = { type: 'AWS_PROXY', functionId: functionIdOf(integration['Uri']) };
    } else if (type === 'MOCK') {
      const responses = (integration['IntegrationResponses'] ?? []) as Record<string, Json>[];
      def = {
        type: 'MOCK',
        requestContentTypes: Object.keys((integration['RequestTemplates'] ?? {}) as Record<string, string>).map((t) => t.toLowerCase()),
        passthroughBehavior: String(integration['PassthroughBehavior'] ?? 'WHEN_NO_MATCH'),
        responses: responses.map((x) => ({
          statusCode: String(x['StatusCode']),
          ...(x['SelectionPattern'] !== undefined ? { selectionPattern: String(x['SelectionPattern']) } : {}),
          template: (x['ResponseTemplates'] as Record<string, string> | undefined)?.['application/json'],
          headers: headerParams((x['ResponseParameters'] ?? {}) as Record<string, string>, 'method.response.header.'),
        })),
      };
    } else {
      throw new Error(`the local runner does not support ${String(type)} integrations`);
    }
    const authorizerRef = p['AuthorizerId'] as { Ref?: string } | undefined;
    methods.push({
      resourcePath: resourcePath(p['ResourceId']),
      httpMethod: String(p['HttpMethod']),
      authorizationType: String(p['AuthorizationType'] ?? 'NONE'),
      ...(authorizerRef?.Ref ? { authorizerId: authorizerRef.Ref } : {}),
      integration: def,
    });
  }

  const gatewayResponses = new Map<string, GatewayResponseDef>();
  for (const [, r] of ofType('AWS::ApiGateway::GatewayResponse')) {
    const p = r.Properties ?? {};
    const type = String(p['ResponseType']);
    gatewayResponses.set(type, {
      type,
      ...(p['StatusCode'] !== undefined ? { statusCode: String(p['StatusCode']) } : {}),
      headers: headerParams((p['ResponseParameters'] ?? {}) as Record<string, string>, 'gatewayresponse.header.'),
      templates: (p['ResponseTemplates'] ?? {}) as Record<string, string>,
    });
  }

  const stages = ofType('AWS::ApiGateway::Stage');
  const stageName = String(stages[0]?.[1].Properties?.['StageName'] ?? 'prod');

  const outputs: Record<string, string> = {};
  for (const [name, o] of Object.entries(template.Outputs ?? {})) {
    try {
      outputs[name] = String(resolve(o.Value));
    } catch {
      // outputs that reference things with no local meaning are left out
    }
  }

  const schedules: ScheduleDef[] = [];
  const unsupported: Unsupported[] = [];
  for (const [id, r] of ofType('AWS::Events::Rule')) {
    const p = r.Properties ?? {};
    const expression = p['ScheduleExpression'];
    if (expression === undefined) {
      unsupported.push({ logicalId: id, reason: 'event patterns are not run locally (only schedules)' });
      continue;
    }
    if ((p['State'] ?? 'ENABLED') !== 'ENABLED') continue;
    const rateMs = parseRate(String(expression));
    if (rateMs === undefined) {
      unsupported.push({ logicalId: id, reason: `schedule '${String(expression)}' is not run locally (only rate(...))` });
      continue;
    }
    const targets: ScheduleDef['targets'][number][] = [];
    for (const target of (p['Targets'] ?? []) as Record<string, Json>[]) {
      const functionId = findGetAttArn(target['Arn']);
      if (!functionId || !functions.has(functionId)) {
        unsupported.push({ logicalId: id, reason: `target ${String(target['Id'])} is not a bundled function` });
        continue;
      }
      if (target['InputPath'] !== undefined || target['InputTransformer'] !== undefined) {
        unsupported.push({ logicalId: id, reason: `target ${String(target['Id'])}: InputPath and InputTransformer are not run locally` });
        continue;
      }
      targets.push({ functionId, ...(target['Input'] !== undefined ? { input: JSON.parse(String(resolve(target['Input']))) as unknown } : {}) });
    }
    schedules.push({ logicalId: id, ruleArn: `arn:aws:events:${options.region}:${options.accountId}:rule/${id}`, expression: String(expression), rateMs, targets });
  }

  const sites: StaticSiteDef[] = [];
  for (const [id, r] of ofType('Custom::CDKBucketDeployment')) {
    const keys = (r.Properties?.['SourceObjectKeys'] ?? []) as Json[];
    const assetDirs = keys.map((k) => resolve(k)).map((k) => (typeof k === 'string' ? assetByKey.get(k) : undefined));
    if (assetDirs.some((d) => d === undefined)) {
      unsupported.push({ logicalId: id, reason: 'a source of this bucket deployment is not an asset of the assembly' });
      continue;
    }
    sites.push({ logicalId: id, assetDirs: assetDirs as string[] });
  }

  return { stackName, stageName, methods, authorizers, gatewayResponses, functions, roles, tables, schedules, sites, unsupported, outputs };
}

/** `rate(1 minute)`, `rate(5 minutes)`, `rate(2 hours)`, `rate(1 day)` in ms; undefined for anything else (cron()). */
export function parseRate(expression: string): number | undefined {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (!m || Number(m[1]) < 1) return undefined;
  const unit = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }[m[2]!.replace(/s$/, '') as 'minute' | 'hour' | 'day'];
  return Number(m[1]) * unit;
}

/** Static header values (`'application/json'`) of a ResponseParameters map. */
function headerParams(params: Record<string, string>, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) {
    if (!key.startsWith(prefix)) continue;
    const m = /^'(.*)'$/.exec(value);
    if (m) out[key.slice(prefix.length)] = m[1]!;
  }
  return out;
}

function findGetAttArn(value: Json): string | undefined {
  if (Array.isArray(value)) {
    for (const v of value) {
      const found = findGetAttArn(v);
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    const getAtt = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    if (getAtt && getAtt[1] === 'Arn') return getAtt[0];
    for (const v of Object.values(value)) {
      const found = findGetAttArn(v);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * The value resolved, or, where something in it has no local meaning (an `Fn::ImportValue`, a Ref to a
 * parameter), the value as the template has it: IAM refuses what such a statement would decide.
 */
function resolveOr(resolve: (value: Json) => Json, value: Json): Json {
  try {
    return resolve(value);
  } catch {
    return value;
  }
}

/** A policy document with each statement resolved on its own (one unresolvable statement leaves the others whole). */
function resolveDocument(resolve: (value: Json) => Json, document: Json): Json {
  const statements = (document as { Statement?: Json } | undefined)?.Statement;
  if (!document || typeof document !== 'object' || statements === undefined) return resolveOr(resolve, document);
  const list = Array.isArray(statements) ? statements : [statements];
  return { ...(document as Record<string, Json>), Statement: list.map((x) => resolveOr(resolve, x)) };
}

/** A resolver for the intrinsic functions a synthesized template uses, with local values. */
function makeResolver(
  resources: Record<string, CfnResource>,
  tableNames: Map<string, string>,
  { region, accountId }: ResolveOptions,
) {
  const pseudo: Record<string, string> = {
    'AWS::Region': region,
    'AWS::AccountId': accountId,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': 'local',
  };
  const ref = (id: string): string => {
    if (id in pseudo) return pseudo[id]!;
    const table = tableNames.get(id);
    if (table) return table;
    if (resources[id]) return `local-${id}`;
    throw new Error(`unresolvable Ref ${id}`);
  };
  const getAtt = (id: string, attr: string): string => {
    const r = resources[id];
    if (!r) throw new Error(`unresolvable GetAtt ${id}.${attr}`);
    if (attr === 'Arn') {
      if (r.Type.startsWith('AWS::DynamoDB::')) return `arn:aws:dynamodb:${region}:${accountId}:table/${ref(id)}`;
      if (r.Type === 'AWS::Lambda::Function') return `arn:aws:lambda:${region}:${accountId}:function:${id}`;
      return `arn:aws:local:${region}:${accountId}:${id}`;
    }
    return `local-${id}-${attr}`;
  };
  const resolve = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(resolve);
    if (!value || typeof value !== 'object') return value;
    const obj = value as Record<string, Json>;
    const [fn] = Object.keys(obj);
    const arg = fn ? obj[fn] : undefined;
    switch (fn) {
      case 'Ref':
        return ref(String(arg));
      case 'Fn::GetAtt': {
        const [id, attr] = Array.isArray(arg) ? arg : String(arg).split('.');
        return getAtt(String(id), String(attr));
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [string, Json[]];
        return (resolve(parts) as Json[]).map(String).join(sep);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [number, Json];
        return (resolve(list) as Json[])[Number(index)];
      }
      case 'Fn::Split': {
        const [sep, source] = arg as [string, Json];
        return String(resolve(source)).split(sep);
      }
      case 'Fn::Sub': {
        const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, Json>]) : [String(arg), {}];
        return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
          if (name in vars) return String(resolve(vars[name]));
          const [id, attr] = name.split('.');
          return attr ? getAtt(id!, attr) : ref(id!);
        });
      }
      default:
        return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, resolve(v)]));
    }
  };
  return resolve;
}

