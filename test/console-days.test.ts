/**
 * The console's local days (console/src/lib/days.ts), which the Audit log's date filters and the custom
 * expiry of a new key are made of, in a zone that is not UTC and has a daylight-saving change: Auckland
 * (UTC+13 until 5 April 2026, 03:00, then UTC+12), and one where a day has no midnight: Santiago (on
 * 6 September 2026 the clocks go from 00:00 to 01:00). Jest cannot change the zone of its own process, so the
 * functions run in a Node child with TZ set, as a browser runs them in its reader's zone.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const DAYS = fileURLToPath(new URL('../console/src/lib/days.ts', import.meta.url));
const inAuckland = (expressions: readonly string[]) => inZone('Pacific/Auckland', expressions);

/** Each expression's value (ISO text for a date), evaluated in `zone` with the module's exports in scope. */
function inZone(zone: string, expressions: readonly string[]): unknown[] {
  const script = `
    const { endOfDay, localDay, startOfDay, startOfNextDay } = await import(${JSON.stringify(DAYS)});
    const out = [${expressions.join(', ')}].map((v) => (v instanceof Date ? v.toISOString() : v));
    process.stdout.write(JSON.stringify(out));`;
  const { NODE_OPTIONS: _omit, ...env } = process.env;
  return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...env, TZ: zone } }).toString()) as unknown[];
}

it('a day starts and ends at local midnight, in the reader’s zone', () => {
  expect(
    inAuckland([
      `startOfDay('2026-03-10')`,
      `startOfNextDay('2026-03-10')`,
      `endOfDay('2026-03-10')`,
      `localDay(new Date('2026-03-10T11:30:00Z'))`,
      `localDay(new Date('2026-03-10T10:30:00Z'))`,
      `startOfNextDay('2026-12-31')`,
    ]),
  ).toEqual([
    '2026-03-09T11:00:00.000Z',
    '2026-03-10T11:00:00.000Z',
    '2026-03-10T10:59:59.000Z',
    '2026-03-11',
    '2026-03-10',
    '2026-12-31T11:00:00.000Z',
  ]);
});

it('the day daylight saving ends has 25 hours; the next day starts at its own midnight', () => {
  expect(inAuckland([`startOfDay('2026-04-05')`, `startOfNextDay('2026-04-05')`])).toEqual(['2026-04-04T11:00:00.000Z', '2026-04-05T12:00:00.000Z']);
});

it('a year below 100 is that year (a year being typed), not 19xx; text that is no calendar day is null', () => {
  const bad = ['', '2026-02-30', '2026-13-01', '2026-3-1', '2026-03-10T00:00', 'yesterday', '10/03/2026'];
  expect(
    inAuckland([
      `startOfDay('0002-03-10').getFullYear()`,
      `startOfDay('0099-01-01').getFullYear()`,
      ...bad.map((text) => `[startOfDay(${JSON.stringify(text)}), startOfNextDay(${JSON.stringify(text)}), endOfDay(${JSON.stringify(text)})]`),
    ]),
  ).toEqual([2, 99, ...bad.map(() => [null, null, null])]);
});

it('a day whose midnight does not exist starts at its first hour', () => {
  expect(inZone('America/Santiago', [`startOfDay('2026-09-06')`, `startOfNextDay('2026-09-05')`, `startOfNextDay('2026-09-06')`])).toEqual([
    '2026-09-06T04:00:00.000Z',
    '2026-09-06T04:00:00.000Z',
    '2026-09-07T03:00:00.000Z',
  ]);
});

it('an instant whose UTC year has not four digits is null (the API takes ISO-8601 years 0000–9999 only)', () => {
  // East of UTC the first day of year 0 starts in year -1; west of UTC the day after 9999-12-31 starts in 10000.
  expect(inAuckland([`startOfDay('0000-01-01')`, `startOfDay('0000-01-02') !== null`])).toEqual([null, true]);
  expect(inZone('America/Los_Angeles', [`startOfDay('9999-12-31')`, `startOfNextDay('9999-12-31')`, `endOfDay('9999-12-31')`])).toEqual([
    '9999-12-31T08:00:00.000Z',
    null,
    null,
  ]);
});
