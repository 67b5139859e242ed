/**
 * The model registry: the five built-in models of the contract, and the deployer's own models, each
 * backed by a Lambda function of theirs (stack prop `models`, passed to the functions in
 * `KNOUDS_MODELS`). Models are pure steps: they take an input and return an output, or throw
 * ModelFailure with the message the execution records.
 */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { CANCEL_POLL_MS } from '../run-budget.js';

export class ModelFailure extends Error {
  override readonly name = 'ModelFailure';
}

/**
 * The characters a run's `error` (and a direct model run's 422) may hold. A deployer's model may fail with
 * any message (one echoing its input: 300 KB), and a run's record with its input must stay within
 * DynamoDB's 400 KB item: its final write failed, a 500 that left the run RUNNING until housekeeping.
 */
export const MAX_ERROR_CHARS = 1000;

/** `message` within MAX_ERROR_CHARS, saying how much was cut; never ends in half a surrogate pair. */
export function boundedMessage(message: string): string {
  if (message.length <= MAX_ERROR_CHARS) return message;
  const note = ` … (${message.length.toLocaleString('en-US')} characters, cut)`;
  let end = MAX_ERROR_CHARS - note.length;
  const code = message.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return message.slice(0, end) + note;
}

/** What a running step can ask of its execution. */
export interface StepContext {
  /** True once the execution has been cancelled (a read of its small cancellation signal). */
  isCancelled(): Promise<boolean>;
  /** Epoch milliseconds by which the step must be done: a model that cannot finish by then throws DeadlineExceeded. */
  readonly deadline: number;
}

export class StepCancelled extends Error {
  override readonly name = 'StepCancelled';
}

/** The run would outlast its time budget (a synchronous request's 29 s, or the worker's timeout). */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
}

export interface ModelInfo {
  readonly id: string;
  readonly description: string;
  readonly input_schema: Record<string, unknown>;
}

export interface Model extends ModelInfo {
  run(input: unknown, context: StepContext): Promise<unknown>;
  /**
   * The model may hold the function for seconds (it waits: `sleep`, a deployer's model). A direct run of
   * one takes a sync slot, as a sync workflow run does; the others answer at once and take none.
   */
  readonly waits?: boolean;
}

/** A deployer's model as the stack passes it to the functions. */
export interface CustomModelSpec extends ModelInfo {
  readonly function_name: string;
}

export const MODELS_ENV = 'KNOUDS_MODELS';
export const MAX_SLEEP_MS = 30_000;

const textSchema = {
  type: 'object',
  required: ['text'],
  properties: { text: { type: 'string', maxLength: 100_000 } },
  additionalProperties: false,
};

const BUILT_INS: readonly Model[] = [
  {
    id: 'echo',
    description: 'Returns its input unchanged.',
    input_schema: {},
    run: async (input) => input,
  },
  {
    id: 'uppercase',
    description: 'Upper-cases `text`.',
    input_schema: textSchema,
    run: async (input) => ({ text: (input as { text: string }).text.toUpperCase() }),
  },
  {
    id: 'word-count',
    description: 'Counts the words of `text`.',
    input_schema: textSchema,
    run: async (input) => {
      const text = (input as { text: string }).text.trim();
      return { count: text === '' ? 0 : text.split(/\s+/).length };
    },
  },
  {
    id: 'sleep',
    waits: true,
    description: `Waits \`ms\` milliseconds (at most ${MAX_SLEEP_MS}); stops early when the execution is cancelled.`,
    input_schema: {
      type: 'object',
      required: ['ms'],
      properties: { ms: { type: 'integer', minimum: 0, maximum: MAX_SLEEP_MS } },
      additionalProperties: false,
    },
    run: async (input, context) => {
      const { ms } = input as { ms: number };
      const started = Date.now();
      if (started + ms > context.deadline) throw new DeadlineExceeded(`sleep of ${ms} ms would outlast the time left`);
      for (;;) {
        const left = started + ms - Date.now();
        if (left <= 0) return { slept_ms: ms };
        await new Promise((r) => setTimeout(r, Math.min(left, CANCEL_POLL_MS)));
        if (Date.now() < started + ms && (await context.isCancelled())) throw new StepCancelled('cancelled');
      }
    },
  },
  {
    id: 'fail',
    description: 'Fails the step with `message`.',
    input_schema: {
      type: 'object',
      required: ['message'],
      properties: { message: { type: 'string', maxLength: 1000 } },
      additionalProperties: false,
    },
    run: async (input) => {
      throw new ModelFailure((input as { message: string }).message);
    },
  },
];

let lambda: LambdaClient | undefined;

/**
 * A model whose work is the deployer's Lambda function, invoked synchronously with `{input}`. The call is
 * bounded by the step's deadline (the run's remaining budget): past it the request is aborted and the
 * step fails as too long, whatever the function's own timeout.
 */
function customModel(spec: CustomModelSpec): Model {
  return {
    id: spec.id,
    description: spec.description,
    input_schema: spec.input_schema,
    waits: true,
    run: async (input, context) => {
      // Loaded by the first custom model's run: built-in models never need it.
      const { LambdaClient, InvokeCommand } = await import('@aws-sdk/client-lambda');
      lambda ??= new LambdaClient({});
      const left = context.deadline - Date.now();
      if (left <= 0) throw new DeadlineExceeded(`model ${spec.id} has no time left`);
      // A cancel stops the wait, as the sleep model's: checked every CANCEL_POLL_MS. Without it a cancelled
      // run's worker waited for the model (up to the worker's deadline) while the cancel had already given
      // the account its slot back: cancel and start again, and one account held any number of workers.
      // The model's own function is not stopped (Lambda cannot): it runs to its end or its timeout.
      // One controller, aborted by the deadline's timer or by a cancel. (Not AbortSignal.any over
      // AbortSignal.timeout: the combined signal holds its sources weakly, and a collected timeout never
      // fired: a direct run of a 40 s model answered after 40 s, not at its 25 s.)
      const stop = new AbortController();
      let cancelled = false;
      let waiting = true;
      const deadlineTimer = setTimeout(() => stop.abort(), left);
      let pollTimer: ReturnType<typeof setTimeout> | undefined;
      const watch = () => {
        pollTimer = setTimeout(() => {
          void context
            .isCancelled()
            .catch(() => false) // a failed check is no cancel: the next one sees it
            .then((yes) => {
              if (yes && waiting) {
                cancelled = true;
                stop.abort();
              } else if (waiting) watch();
            });
        }, CANCEL_POLL_MS);
      };
      watch();
      let out;
      try {
        out = await lambda.send(
          new InvokeCommand({ FunctionName: spec.function_name, Payload: Buffer.from(JSON.stringify({ input })) }),
          { abortSignal: stop.signal },
        );
      } catch (error) {
        if (cancelled) throw new StepCancelled('cancelled');
        if (Date.now() >= context.deadline || stop.signal.aborted || (error as Error).name === 'AbortError') {
          throw new DeadlineExceeded(`model ${spec.id} did not answer in the time left`);
        }
        const name = error instanceof Error && /^\w{1,64}$/.test(error.name) ? error.name : 'Error';
        throw new ModelFailure(`model ${spec.id} could not be invoked (${name})`);
      } finally {
        waiting = false;
        clearTimeout(deadlineTimer);
        clearTimeout(pollTimer);
      }
      const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : 'null';
      if (out.FunctionError) {
        let message = `model ${spec.id} failed`;
        try {
          message = String((JSON.parse(text) as { errorMessage?: unknown }).errorMessage ?? message);
        } catch {
          // not JSON: keep the generic message
        }
        throw new ModelFailure(boundedMessage(message));
      }
      return JSON.parse(text) as unknown;
    },
  };
}

export class ModelRegistry {
  private readonly models = new Map<string, Model>();

  constructor(custom: readonly CustomModelSpec[] = []) {
    for (const m of [...BUILT_INS, ...custom.map(customModel)]) this.models.set(m.id, m);
  }

  static fromEnv(): ModelRegistry {
    const raw = process.env[MODELS_ENV];
    return new ModelRegistry(raw ? (JSON.parse(raw) as CustomModelSpec[]) : []);
  }

  get(id: string): Model | undefined {
    return this.models.get(id);
  }

  list(): ModelInfo[] {
    return [...this.models.values()].map(({ id, description, input_schema }) => ({ id, description, input_schema }));
  }
}

export const BUILT_IN_MODEL_IDS = BUILT_INS.map((m) => m.id);
