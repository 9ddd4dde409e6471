// Proleptic Gregorian calendar arithmetic on plain numbers, all in UTC. The component's JS
// engine has no Intl, so nothing here depends on locales or time zones: a date is a day
// number (days since 1970-01-01), and conversions use Howard Hinnant's civil-date algorithms.

import { ToolError } from "capsule-sdk";

export const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
export const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
export const MIN_YEAR = 1;
export const MAX_YEAR = 9999;

const floorDiv = (a, b) => Math.floor(a / b);
const pad = (n, width = 2) => String(n).padStart(width, "0");

export const isLeap = (year) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;

export function daysInMonth(year, month) {
  return month === 2 ? (isLeap(year) ? 29 : 28) : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

/** Day number of a valid civil date. */
export function dayNumber(year, month, day) {
  const y = month <= 2 ? year - 1 : year;
  const era = floorDiv(y, 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = floorDiv(153 * mp + 2, 5) + day - 1;
  const doe = yoe * 365 + floorDiv(yoe, 4) - floorDiv(yoe, 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The civil date `{ year, month, day }` of a day number. */
export function civil(n) {
  const z = n + 719468;
  const era = floorDiv(z, 146097);
  const doe = z - era * 146097;
  const yoe = floorDiv(doe - floorDiv(doe, 1460) + floorDiv(doe, 36524) - floorDiv(doe, 146096), 365);
  const doy = doe - (365 * yoe + floorDiv(yoe, 4) - floorDiv(yoe, 100));
  const mp = floorDiv(5 * doy + 2, 153);
  const day = doy - floorDiv(153 * mp + 2, 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** ISO weekday: 1 = Monday … 7 = Sunday. */
export const isoWeekday = (n) => ((((n + 3) % 7) + 7) % 7) + 1;

/** `YYYY-MM-DD` of a day number. */
export function iso(n) {
  const { year, month, day } = civil(n);
  return `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
}

function checkYear(year, what) {
  if (!Number.isInteger(year) || year < MIN_YEAR || year > MAX_YEAR) {
    throw new ToolError(`${what}: year ${year} is outside the supported range ${MIN_YEAR}–${MAX_YEAR}`);
  }
}

/** The day number of year/month/day, or a `ToolError` that says why it is not a date. */
export function validDay(year, month, day, what) {
  checkYear(year, what);
  if (!Number.isInteger(month) || month < 1 || month > 12) {
    throw new ToolError(`${what}: month ${month} does not exist (months are 1–12)`);
  }
  const last = daysInMonth(year, month);
  if (!Number.isInteger(day) || day < 1 || day > last) {
    throw new ToolError(
      `${what}: ${pad(year, 4)}-${pad(month)}-${pad(day)} is not a date: ${MONTHS[month - 1]} ${year} has ${last} days`,
    );
  }
  return dayNumber(year, month, day);
}

/** Checks that a computed day number is still inside the supported years. */
export function inRange(n, what) {
  checkYear(civil(n).year, what);
  return n;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|z|[+-]\d{2}:?\d{2})?)?$/;

/** The day number of an ISO date `YYYY-MM-DD`; `field` names the argument in errors. */
export function parseDate(text, field) {
  const match = ISO_DATE.exec(text.trim());
  if (!match) throw new ToolError(`\`${field}\`: "${text}" is not an ISO date; write YYYY-MM-DD, e.g. 2025-03-01`);
  return validDay(Number(match[1]), Number(match[2]), Number(match[3]), `\`${field}\``);
}

/**
 * An ISO date or date-time (`2025-03-01`, `2025-03-01T14:30`, `2025-03-01T14:30:05.25+02:00`):
 * `{ day, hour, minute, second, millisecond, offset }` where `offset` is minutes east of UTC,
 * or null when the text has none. The wall time is kept as written (not converted to UTC).
 */
export function parseDateTime(text, field) {
  const match = ISO_DATE_TIME.exec(text.trim());
  if (!match) {
    throw new ToolError(
      `\`${field}\`: "${text}" is not an ISO date or date-time; write e.g. 2025-03-01 or 2025-03-01T14:30:00Z`,
    );
  }
  const [, y, mo, d, h = "0", mi = "0", s = "0", fraction = "", zone] = match;
  const day = validDay(Number(y), Number(mo), Number(d), `\`${field}\``);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (hour > 23 || minute > 59 || second > 59) {
    throw new ToolError(`\`${field}\`: ${h}:${mi}:${s} is not a time of day`);
  }
  return {
    day,
    hour,
    minute,
    second,
    millisecond: Number(fraction.padEnd(3, "0").slice(0, 3)),
    offset: zone === undefined ? null : parseOffset(zone, field),
  };
}

/** Minutes east of UTC of `Z`, `+05:30`, `-0800`. */
export function parseOffset(text, field) {
  if (text === "Z" || text === "z") return 0;
  const match = /^([+-])(\d{2}):?(\d{2})$/.exec(text);
  if (!match || Number(match[2]) > 14 || Number(match[3]) > 59) {
    throw new ToolError(`\`${field}\`: "${text}" is not a UTC offset; write Z, +05:30 or -08:00`);
  }
  return (match[1] === "-" ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3]));
}

/** `+05:30` / `Z`-less form of an offset in minutes (`+00:00` for UTC). */
export function formatOffset(minutes, separator = ":") {
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}${separator}${pad(abs % 60)}`;
}

/** Adds calendar months, clamping the day to the end of a shorter month (Jan 31 + 1 month = Feb 28/29). */
export function addMonths(n, months) {
  const { year, month, day } = civil(n);
  const index = year * 12 + (month - 1) + months;
  const newYear = floorDiv(index, 12);
  const newMonth = index - newYear * 12 + 1;
  checkYear(newYear, "the result");
  return dayNumber(newYear, newMonth, Math.min(day, daysInMonth(newYear, newMonth)));
}

const isBusinessDay = (n, holidays) => isoWeekday(n) <= 5 && !holidays.has(n);

/** Moves `count` business days (Mon–Fri, not in `holidays`) forward, or backward when negative. */
export function addBusinessDays(n, count, holidays = new Set()) {
  const step = count < 0 ? -1 : 1;
  let left = Math.abs(count);
  let day = n;
  while (left > 0) {
    day += step;
    if (isBusinessDay(day, holidays)) left--;
  }
  return day;
}

/** Business days in [from, to) — or minus those in [to, from) when `to` is earlier. */
export function businessDaysBetween(from, to, holidays = new Set()) {
  if (to < from) return -businessDaysBetween(to, from, holidays);
  const span = to - from;
  const fullWeeks = Math.floor(span / 7);
  let count = fullWeeks * 5;
  for (let day = from + fullWeeks * 7; day < to; day++) if (isoWeekday(day) <= 5) count++;
  for (const holiday of holidays) if (holiday >= from && holiday < to && isoWeekday(holiday) <= 5) count--;
  return count;
}

/** Whole years, months and days from `from` to `to` (from ≤ to), the way people count ages. */
export function calendarSpan(from, to) {
  const a = civil(from);
  const b = civil(to);
  let months = (b.year - a.year) * 12 + (b.month - a.month);
  if (addMonths(from, months) > to) months--;
  const days = to - addMonths(from, months);
  return { years: Math.floor(months / 12), months: months % 12, days };
}

/** ISO 8601 week `{ week, year }` (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(n) {
  const thursday = n - isoWeekday(n) + 4;
  const year = civil(thursday).year;
  return { year, week: Math.floor((thursday - dayNumber(year, 1, 1)) / 7) + 1 };
}

/** Day of the year, 1–366. */
export const dayOfYear = (n) => n - dayNumber(civil(n).year, 1, 1) + 1;

/** The `nth` (1–5, or -1 for the last) `weekday` (1 = Monday) of a month, or null if there is none. */
export function nthWeekday(year, month, weekday, nth) {
  if (nth > 0) {
    const first = dayNumber(year, month, 1);
    const day = first + ((weekday - isoWeekday(first) + 7) % 7) + (nth - 1) * 7;
    return civil(day).month === month ? day : null;
  }
  const last = dayNumber(year, month, daysInMonth(year, month));
  return last - ((isoWeekday(last) - weekday + 7) % 7);
}
