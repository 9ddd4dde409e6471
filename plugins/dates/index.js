// `dates`: calendar arithmetic a model should not do in its head — today's date, adding
// durations and business days, differences between dates, weekdays and ISO weeks, formatting
// and reading dates. Proleptic Gregorian calendar, years 1–9999, no time zones beyond fixed
// UTC offsets.

import { InvalidArguments, plugin, tool } from "capsule-sdk";

import {
  MONTHS,
  WEEKDAYS,
  addBusinessDays,
  addMonths,
  businessDaysBetween,
  calendarSpan,
  civil,
  dayOfYear,
  daysInMonth,
  formatOffset,
  inRange,
  iso,
  isLeap,
  isoWeek,
  isoWeekday,
  nthWeekday,
  parseDate,
  parseDateTime,
  parseOffset,
  validDay,
} from "./calendar.js";
import { DIRECTIVES, STYLES, parseHuman, strftime } from "./text.js";

const DAY_MS = 86_400_000;

const date = (description) => ({
  type: "string",
  format: "date",
  pattern: "^\\d{4}-\\d{2}-\\d{2}$",
  description,
});
const weekdayName = { type: "string", enum: WEEKDAYS, description: "English weekday name." };
const offsetField = {
  type: "string",
  description: 'UTC offset of the place whose date you want: "Z" (UTC, default), "+05:30", "-08:00".',
  default: "Z",
};

/** Today's day number at `offset` minutes east of UTC, from the WASI clock. */
const todayAt = (offset) => Math.floor((Date.now() + offset * 60_000) / DAY_MS);

const dated = (n) => ({ date: iso(n), weekday: WEEKDAYS[isoWeekday(n) - 1] });
const datedOutput = {
  date: { type: "string", format: "date", description: "The resulting date, YYYY-MM-DD." },
  weekday: { ...weekdayName, description: "Its weekday." },
};

function holidaySet(list) {
  return new Set((list ?? []).map((text, i) => parseDate(text, `holidays[${i}]`)));
}

export const today = tool(
  {
    title: "Today's date",
    description:
      "The current date and time from the machine's clock, in UTC or at a fixed UTC offset. " +
      "Call this instead of guessing what day it is, and before resolving words like 'next Friday'.",
    readOnly: true,
    input: { utc_offset: offsetField },
    output: {
      date: { type: "string", format: "date", description: "Today's date, YYYY-MM-DD." },
      time: { type: "string", description: "The time of day, HH:MM:SS." },
      weekday: weekdayName,
      iso_week: { type: "integer", description: "ISO 8601 week number (1–53)." },
      utc_offset: { type: "string", description: "The offset used, e.g. +00:00." },
      datetime: { type: "string", format: "date-time", description: "Date and time with offset, ISO 8601." },
    },
  },
  ({ utc_offset }) => {
    const offset = parseOffset(utc_offset, "utc_offset");
    const local = Date.now() + offset * 60_000;
    const n = Math.floor(local / DAY_MS);
    const seconds = Math.floor((local - n * DAY_MS) / 1000);
    const time = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60]
      .map((v) => String(v).padStart(2, "0"))
      .join(":");
    return {
      ...dated(n),
      time,
      iso_week: isoWeek(n).week,
      utc_offset: formatOffset(offset),
      datetime: `${iso(n)}T${time}${formatOffset(offset)}`,
    };
  },
);

export const add = tool(
  {
    title: "Add to a date",
    description:
      "Add (or, with negative numbers, subtract) years, months, weeks, days and business days to a " +
      "date. Calendar units are applied first, in that order; a day past the end of a shorter " +
      "month is clamped (2025-01-31 + 1 month = 2025-02-28). Business days skip Saturdays, " +
      "Sundays and the given holidays, e.g. 'the deadline is 10 business days after 2025-03-03'.",
    readOnly: true,
    idempotent: true,
    input: {
      date: date("Start date, YYYY-MM-DD."),
      years: { type: "integer", default: 0, description: "Years to add (negative to subtract)." },
      months: { type: "integer", default: 0, description: "Months to add (negative to subtract)." },
      weeks: { type: "integer", default: 0, description: "Weeks to add (negative to subtract)." },
      days: { type: "integer", default: 0, description: "Days to add (negative to subtract)." },
      business_days: {
        type: "integer",
        default: 0,
        description: "Business days (Monday–Friday) to move after the calendar units; negative moves back.",
      },
      holidays: {
        type: "array",
        items: date("A holiday, YYYY-MM-DD."),
        optional: true,
        description: "Dates that are not business days (only used with business_days).",
      },
    },
    output: datedOutput,
  },
  ({ date: start, years, months, weeks, days, business_days, holidays }) => {
    for (const [name, value] of Object.entries({ years, months, weeks, days, business_days })) {
      if (Math.abs(value) > 3_700_000) throw new InvalidArguments(`\`${name}\` is too large: ${value}`);
    }
    let n = parseDate(start, "date");
    n = addMonths(n, years * 12 + months);
    n = inRange(n + weeks * 7 + days, "the result");
    n = inRange(addBusinessDays(n, business_days, holidaySet(holidays)), "the result");
    return dated(n);
  },
);

export const diff = tool(
  {
    title: "Difference between dates",
    description:
      "How far apart two dates are: total days, whole weeks, business days (Monday–Friday, minus " +
      "holidays), and the span in years, months and days as people count it (2024-01-31 to " +
      "2024-03-01 is 1 month 1 day). Negative when `to` is before `from`. Business days count " +
      "`from` but not `to` (Monday to the next Monday is 5).",
    readOnly: true,
    idempotent: true,
    input: {
      from: date("Start date, YYYY-MM-DD."),
      to: date("End date, YYYY-MM-DD."),
      holidays: {
        type: "array",
        items: date("A holiday, YYYY-MM-DD."),
        optional: true,
        description: "Dates not counted as business days.",
      },
    },
    output: {
      days: { type: "integer", description: "Calendar days from `from` to `to`." },
      weeks: { type: "integer", description: "Whole weeks in that many days (truncated toward zero)." },
      business_days: { type: "integer", description: "Monday–Friday days in [from, to) that are not holidays." },
      years: { type: "integer", description: "Whole years of the span (negative if `to` < `from`)." },
      months: { type: "integer", description: "Further whole months (0–11), same sign as years." },
      remaining_days: { type: "integer", description: "Further days after the whole months." },
      text: { type: "string", description: "The span in words, e.g. '1 year, 2 months and 3 days'." },
    },
  },
  ({ from, to, holidays }) => {
    const a = parseDate(from, "from");
    const b = parseDate(to, "to");
    const sign = b < a ? -1 : 1;
    const span = sign < 0 ? calendarSpan(b, a) : calendarSpan(a, b);
    const parts = [
      [span.years, "year"],
      [span.months, "month"],
      [span.days, "day"],
    ]
      .filter(([count]) => count !== 0)
      .map(([count, unit]) => `${count} ${unit}${count === 1 ? "" : "s"}`);
    const words = parts.length === 0 ? "0 days" : parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`;
    return {
      days: b - a,
      weeks: Math.trunc((b - a) / 7),
      business_days: businessDaysBetween(a, b, holidaySet(holidays)),
      years: sign * span.years || 0,
      months: sign * span.months || 0,
      remaining_days: sign * span.days || 0,
      text: sign < 0 ? `${words} before` : words,
    };
  },
);

export const info = tool(
  {
    title: "Date facts",
    description:
      "Facts about one date: weekday, ISO 8601 week and week-year, day of the year, quarter, days " +
      "in its month and year, and whether the year is a leap year.",
    readOnly: true,
    idempotent: true,
    input: { date: date("The date, YYYY-MM-DD.") },
    output: {
      date: { type: "string", format: "date", description: "The date." },
      weekday: weekdayName,
      iso_weekday: { type: "integer", description: "1 = Monday … 7 = Sunday." },
      iso_week: { type: "integer", description: "ISO 8601 week number, 1–53." },
      iso_week_year: { type: "integer", description: "The year the ISO week belongs to (may differ near New Year)." },
      day_of_year: { type: "integer", description: "1–366." },
      quarter: { type: "integer", description: "1–4." },
      days_in_month: { type: "integer", description: "Days in the date's month." },
      days_in_year: { type: "integer", description: "365 or 366." },
      leap_year: { type: "boolean", description: "Whether the year has 29 February." },
    },
  },
  ({ date: text }) => {
    const n = parseDate(text, "date");
    const { year, month } = civil(n);
    const week = isoWeek(n);
    return {
      ...dated(n),
      iso_weekday: isoWeekday(n),
      iso_week: week.week,
      iso_week_year: week.year,
      day_of_year: dayOfYear(n),
      quarter: Math.floor((month - 1) / 3) + 1,
      days_in_month: daysInMonth(year, month),
      days_in_year: isLeap(year) ? 366 : 365,
      leap_year: isLeap(year),
    };
  },
);

export const format = tool(
  {
    title: "Format a date",
    description:
      "Write a date (or date-time) in a named style or a strftime-style pattern, in English. " +
      `Styles: ${Object.entries(STYLES)
        .map(([name, pattern]) => `${name} (${pattern})`)
        .join(", ")}. Pattern directives: ${DIRECTIVES}. A date-time keeps its own wall time ` +
      "and offset (no time-zone conversion); a date alone is midnight UTC.",
    readOnly: true,
    idempotent: true,
    input: {
      date: {
        type: "string",
        description: "ISO date or date-time: 2025-03-01, 2025-03-01T14:30:00, 2025-03-01T14:30:00+01:00.",
      },
      format: {
        type: "string",
        minLength: 1,
        description: 'A style name (e.g. "long") or a pattern with % directives (e.g. "%d %B %Y").',
      },
    },
  },
  ({ date: text, format: style }) => {
    const moment = parseDateTime(text, "date");
    if (style.includes("%")) return strftime(moment, style);
    const pattern = STYLES[style.trim().toLowerCase()];
    if (!pattern) {
      throw new InvalidArguments(
        `unknown style "${style}"; use one of ${Object.keys(STYLES).join(", ")}, or a pattern with % directives`,
      );
    }
    return strftime(moment, pattern);
  },
);

export const parse = tool(
  {
    title: "Read a date",
    description:
      "Turn a date as people write it into an ISO date (YYYY-MM-DD): '1 March 2025', 'March 1st, " +
      "2025', 'Sat, 1 Mar 2025', '2025/03/01', '20250301', '01/03/2025' (with `order`), and relative " +
      "words counted from today's date in UTC (or `utc_offset`): 'today', 'tomorrow', 'yesterday', " +
      "'in 3 days', '2 weeks ago', 'next friday', 'last monday'. English month and weekday names.",
    readOnly: true,
    input: {
      text: { type: "string", minLength: 1, description: "The date as written." },
      order: {
        type: "string",
        enum: ["dmy", "mdy"],
        optional: true,
        description:
          'How to read all-numeric dates such as 03/04/2025: "dmy" (3 April, most of the world) or "mdy" ' +
          "(March 4, US). Needed only when both readings are possible.",
      },
      utc_offset: offsetField,
    },
    output: {
      date: { type: "string", format: "date", description: "The date, YYYY-MM-DD." },
      weekday: weekdayName,
      read_as: { type: "string", description: "How the text was read, e.g. 'day month year'." },
    },
  },
  ({ text, order, utc_offset }) => {
    const { day, how } = parseHuman(text, order, todayAt(parseOffset(utc_offset, "utc_offset")));
    return { ...dated(inRange(day, "the result")), read_as: how };
  },
);

export const nth_weekday = tool(
  {
    title: "Nth weekday of a month",
    description:
      "The date of the nth given weekday of a month, e.g. the 4th Thursday of November 2025 " +
      "(n = 4) or the last Monday of May (n = -1). Fails when the month has no such day (a 5th " +
      "Friday).",
    readOnly: true,
    idempotent: true,
    input: {
      year: { type: "integer", minimum: 1, maximum: 9999, description: "The year." },
      month: { type: "integer", minimum: 1, maximum: 12, description: "The month, 1–12." },
      weekday: weekdayName,
      n: {
        type: "integer",
        enum: [1, 2, 3, 4, 5, -1],
        description: "Which occurrence: 1–5, or -1 for the last one in the month.",
      },
    },
    output: datedOutput,
  },
  ({ year, month, weekday, n }) => {
    validDay(year, month, 1, "year/month");
    const day = nthWeekday(year, month, WEEKDAYS.indexOf(weekday) + 1, n);
    if (day === null) {
      throw new InvalidArguments(`${MONTHS[month - 1]} ${year} has no ${n}th ${weekday}`);
    }
    return dated(day);
  },
);

export const tools = plugin({ today, add, diff, info, format, parse, nth_weekday });
