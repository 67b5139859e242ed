/** Whether year-month-day names a day of the calendar (`2026-02-30` does not: `Date` would roll it over to 2 March). */
export function isCalendarDate(year: number, month: number, day: number): boolean {
  const at = new Date(Date.UTC(year, month - 1, day));
  return at.getUTCMonth() === month - 1 && at.getUTCDate() === day;
}
