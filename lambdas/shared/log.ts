/**
 * One JSON line per log event. Callers pass structured fields; nothing here ever receives a key,
 * a key hash or a full header set. `LOG_LEVEL` (debug, info, warn, error; default info) filters.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function threshold(): number {
  const configured = (process.env['LOG_LEVEL'] ?? 'info').toLowerCase();
  return RANK[configured as Level] ?? RANK.info;
}

export function log(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  if (RANK[level] < threshold()) return;
  const line = JSON.stringify({ level, message, time: new Date().toISOString(), ...fields });
  if (level === 'error' || level === 'warn') console.error(line);
  else console.log(line);
}
