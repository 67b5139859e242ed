/**
 * When a webhook is tried again (API.md §4 "Webhook delivery": a schedule spanning more than a day, with
 * jitter). The first attempt is made by whoever ended the run, at once; after each failed attempt the
 * next is due after the next delay of the schedule, ±20 % at random; after the last delay's attempt the
 * webhook has failed. The default: 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, so 8 attempts over about
 * 31 h 36 min, and more than a day (25 h 17 min) even when every delay draws the shortest jitter. The scheduled sender runs every minute, so an attempt goes out up to a minute after it
 * is due.
 *
 * `WEBHOOK_RETRY_SCHEDULE_SECONDS` (tests only: the local runner's `webhookRetrySchedule` option sets
 * it; the stack never does) replaces the delays, e.g. `1,1,2`.
 */

/** The delays after each failed attempt, in seconds. */
export const DEFAULT_RETRY_SCHEDULE_SECONDS: readonly number[] = [60, 300, 1800, 7200, 18_000, 36_000, 50_400];

export const RETRY_SCHEDULE_ENV = 'WEBHOOK_RETRY_SCHEDULE_SECONDS';

/** Each delay is drawn from [delay × (1 − JITTER), delay × (1 + JITTER)). */
export const RETRY_JITTER = 0.2;

/** At most this many delays, each from 0.1 s to a week. */
const MAX_DELAYS = 20;
const MAX_DELAY_SECONDS = 7 * 86_400;

/** Parses a schedule (`1,1,2`: seconds, comma-separated); throws naming the bad value. */
export function parseRetrySchedule(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.length > MAX_DELAYS || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) {
    throw new Error(`${RETRY_SCHEDULE_ENV} must be 1 to ${MAX_DELAYS} numbers of seconds separated by commas, got '${text}'`);
  }
  const delays = parts.map(Number);
  const bad = delays.find((d) => !(d >= 0.1 && d <= MAX_DELAY_SECONDS));
  if (bad !== undefined) throw new Error(`${RETRY_SCHEDULE_ENV}: each delay must be from 0.1 to ${MAX_DELAY_SECONDS} seconds, got ${bad} in '${text}'`);
  return delays;
}

/** The schedule in force: the environment's (validated) or the default. */
export function retryScheduleFromEnv(env: Record<string, string | undefined> = process.env): readonly number[] {
  const text = env[RETRY_SCHEDULE_ENV];
  return text === undefined || text === '' ? DEFAULT_RETRY_SCHEDULE_SECONDS : parseRetrySchedule(text);
}

/**
 * When the attempt after `attemptsInRound` failed attempts of this round is due (epoch ms), or undefined
 * when those were all the schedule allows (the webhook has failed). A round starts when the run ends and
 * again with each redelivery. `random` is in [0, 1).
 */
export function nextAttemptAt(
  attemptsInRound: number,
  nowMs: number,
  schedule: readonly number[] = retryScheduleFromEnv(),
  random: () => number = Math.random,
): number | undefined {
  const delay = schedule[attemptsInRound - 1];
  if (attemptsInRound < 1 || delay === undefined) return undefined;
  const factor = 1 - RETRY_JITTER + 2 * RETRY_JITTER * random();
  return nowMs + Math.round(delay * 1000 * factor);
}
