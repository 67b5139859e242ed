/**
 * Local calendar days as a date input speaks them (`YYYY-MM-DD`, in the reader's time zone), and the
 * instants that bound them.
 */

/** `YYYY-MM-DD` of a local day. */
export function localDay(at: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

/**
 * The local day `day` plus `offset` days, at `hours:minutes:seconds` (or the first time after it that
 * exists, where a daylight-saving change skips midnight); null when `day` is no calendar day, or the
 * instant's UTC year has not four digits.
 */
function at(day: string, offset: number, hours: number, minutes: number, seconds: number): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]) - 1, Number(m[3])];
  // setFullYear, not the constructor: it reads years 0–99 as 1900–1999.
  const date = new Date(2000, 0, 1);
  date.setFullYear(y, mo, d);
  if (date.getFullYear() !== y || date.getMonth() !== mo || date.getDate() !== d) return null;
  date.setFullYear(y, mo, d + offset);
  date.setHours(hours, minutes, seconds, 0);
  // ISO-8601's four-digit years only: toISOString writes others as ±YYYYYY, which the API refuses.
  const utcYear = date.getUTCFullYear();
  return utcYear >= 0 && utcYear <= 9999 ? date : null;
}

/** When a local day starts; null for text that is no calendar day. */
export const startOfDay = (day: string): Date | null => at(day, 0, 0, 0, 0);

/** When the local day after `day` starts (a day's end, exclusive); null for text that is no calendar day. */
export const startOfNextDay = (day: string): Date | null => at(day, 1, 0, 0, 0);

/** The last second of a local day, as an exact instant; null for text that is no calendar day. */
export const endOfDay = (day: string): Date | null => at(day, 0, 23, 59, 59);
