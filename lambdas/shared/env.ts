/** Fail fast on a missing variable at cold start, instead of `process.env.X || ''` failing later. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
}

/** The worker function the workflows function hands asynchronous runs to. */
export const WORKER_FUNCTION_ENV = 'WORKER_FUNCTION_NAME';

/** The webhook sender function the executions function asks to send a redelivered webhook at once. */
export const WEBHOOK_SENDER_FUNCTION_ENV = 'WEBHOOK_SENDER_FUNCTION_NAME';
