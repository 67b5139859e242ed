/**
 * What a key may do, in the words of the console (API.md §2): the capabilities, the presets the create
 * dialog offers, the legacy scopes the badges recognise, and what the tier ceiling and the person's own
 * capabilities allow. The preset and scope names are checked against the generated API types.
 */
import type { Schemas } from '../../api/client';

type PresetName = NonNullable<Schemas['CreateKeyRequest']['preset']>;
type ScopeName = NonNullable<Schemas['CreateKeyRequest']['scope']>;

/** The fixed capabilities, in the order the dialog lists them, each with what it reaches. */
export const CAPABILITIES = [
  ['workflow:read', 'List workflows, read definitions and input schemas'],
  ['workflow:run', 'Run any deployed workflow'],
  ['workflow:write', 'Create, update, deploy and delete workflows'],
  ['model:run', 'Run any model'],
  ['webhook:receive', 'Ask for a webhook on async runs'],
  ['execution:read', 'Read and list executions'],
  ['execution:cancel', 'Cancel executions in flight'],
  ['keys:read', 'List keys and read their usage'],
  ['keys:write', 'Create, edit, rotate and delete keys'],
  ['audit:read', 'Read the audit trail'],
] as const;

export const PRESETS: readonly { readonly name: PresetName; readonly label: string; readonly capabilities: readonly string[]; readonly description: string }[] = [
  { name: 'read-only', label: 'Read-only', capabilities: ['workflow:read'], description: 'Lists workflows and reads their definitions.' },
  { name: 'workflow-deploy', label: 'Workflow Deploy', capabilities: ['workflow:run', 'workflow:read'], description: 'Runs and reads workflows.' },
  { name: 'webhook-receiver', label: 'Webhook receiver', capabilities: ['webhook:receive'], description: 'Asks for webhooks on async runs.' },
  { name: 'full-deploy', label: 'Full deploy', capabilities: ['workflow:run', 'workflow:read', 'workflow:write'], description: 'Runs, reads and changes workflows.' },
];

const SCOPE_FREE = ['workflow:run', 'execution:read', 'execution:cancel'];
const SCOPE_DEPLOYMENT = [...SCOPE_FREE, 'workflow:read'];
const SCOPES: readonly { readonly name: ScopeName; readonly capabilities: readonly string[] }[] = [
  { name: 'free', capabilities: SCOPE_FREE },
  { name: 'deployment', capabilities: SCOPE_DEPLOYMENT },
  { name: 'admin', capabilities: [...SCOPE_DEPLOYMENT, 'workflow:write', 'model:run', 'webhook:receive', 'keys:read', 'keys:write', 'audit:read'] },
];

// Every preset the API offers is in the dialog (a new one fails the typecheck here).
type Missing = Exclude<PresetName, (typeof PRESETS)[number]['name']>;
const everyPreset: [Missing] extends [never] ? true : Missing = true;
void everyPreset;

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && new Set([...a, ...b]).size === a.length && new Set(a).size === a.length;

/** The preset whose set equals these capabilities, if one does. */
export function presetOf(capabilities: readonly string[]): (typeof PRESETS)[number] | undefined {
  return PRESETS.find((p) => sameSet(p.capabilities, capabilities));
}

/** The badges of a key: its preset's or legacy scope's name when the set equals one, else one per capability. */
export function badgesOf(capabilities: readonly string[]): string[] {
  const preset = presetOf(capabilities);
  if (preset) return [preset.label];
  const scope = SCOPES.find((s) => sameSet(s.capabilities, capabilities));
  if (scope) return [`${scope.name} (legacy scope)`];
  return [...capabilities].sort();
}

const SPECIFIC = /^(workflow|model):[a-z0-9][a-z0-9-]{0,62}:run$/;

/** Is `capability` held by `set` (held, or implied: workflow:run covers workflow:<slug>:run)? */
export function covers(set: readonly string[], capability: string): boolean {
  if (set.includes(capability)) return true;
  const specific = SPECIFIC.exec(capability);
  return specific ? set.includes(`${specific[1]}:run`) : false;
}

export interface Limits {
  readonly tierName: string;
  readonly ceiling: readonly string[];
  /** The signed-in person's own capabilities in force. */
  readonly own: readonly string[];
}

/** Why a capability cannot be given here (the tier first, as the API checks it), or null. */
export function whyUnavailable(capability: string, limits: Limits): string | null {
  if (!covers(limits.ceiling, capability)) return `Not available on the ${limits.tierName} tier.`;
  if (!covers(limits.own, capability)) return 'You do not hold this permission yourself.';
  return null;
}

export const workflowRun = (slug: string) => `workflow:${slug}:run`;
export const modelRun = (id: string) => `model:${id}:run`;
/** The slug or model id of a one-workflow or one-model capability. */
export function specificTarget(capability: string, kind: 'workflow' | 'model'): string | null {
  const match = SPECIFIC.exec(capability);
  return match && match[1] === kind ? capability.slice(kind.length + 1, -':run'.length) : null;
}
