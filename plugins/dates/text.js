// Dates to text (strftime-style patterns and named styles) and text to dates (the ways people
// write dates in English, plus a few relative expressions).

import { InvalidArguments, ToolError } from "capsule-sdk";

import {
  MONTHS,
  WEEKDAYS,
  addMonths,
  civil,
  dayOfYear,
  formatOffset,
  isoWeek,
  isoWeekday,
  validDay,
} from "./calendar.js";

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** Named styles of the `format` tool and the pattern each stands for. */
export const STYLES = {
  iso: "%Y-%m-%d",
  long: "%A, %-d %B %Y",
  medium: "%-d %b %Y",
  us: "%m/%d/%Y",
  "us-long": "%A, %B %-d, %Y",
  uk: "%d/%m/%Y",
  eu: "%d.%m.%Y",
  compact: "%Y%m%d",
  "iso-week": "%G-W%V-%u",
  "iso-datetime": "%Y-%m-%dT%H:%M:%S%:z",
  rfc2822: "%a, %d %b %Y %H:%M:%S %z",
};

/** The directives a pattern may use, for error messages and the tool description. */
export const DIRECTIVES =
  "%Y year, %y 2-digit year, %m month 01-12, %-m month 1-12, %B month name, %b short month name, " +
  "%d day 01-31, %-d day 1-31, %e day space-padded, %A weekday name, %a short weekday name, " +
  "%u ISO weekday 1-7 (Monday 1), %w weekday 0-6 (Sunday 0), %j day of year 001-366, " +
  "%V ISO week 01-53, %G ISO week year, %q quarter 1-4, %H hour 00-23, %I hour 01-12, %p AM/PM, " +
  "%M minute, %S second, %L millisecond 000-999, %z offset +0000, %:z offset +00:00, %% a percent sign";

/**
 * Formats `moment` (from `parseDateTime`) with a strftime-style `pattern`. A missing offset
 * prints as UTC (`+0000`).
 */
export function strftime(moment, pattern) {
  const { day: n, hour, minute, second, millisecond, offset } = moment;
  const { year, month, day } = civil(n);
  const weekday = isoWeekday(n);
  const hour12 = hour % 12 === 0 ? 12 : hour % 12;
  const values = {
    Y: () => pad(year, 4),
    y: () => pad(year % 100),
    m: () => pad(month),
    "-m": () => String(month),
    B: () => MONTHS[month - 1],
    b: () => MONTHS[month - 1].slice(0, 3),
    d: () => pad(day),
    "-d": () => String(day),
    e: () => String(day).padStart(2, " "),
    A: () => WEEKDAYS[weekday - 1],
    a: () => WEEKDAYS[weekday - 1].slice(0, 3),
    u: () => String(weekday),
    w: () => String(weekday % 7),
    j: () => pad(dayOfYear(n), 3),
    V: () => pad(isoWeek(n).week),
    G: () => pad(isoWeek(n).year, 4),
    q: () => String(Math.floor((month - 1) / 3) + 1),
    H: () => pad(hour),
    "-H": () => String(hour),
    I: () => pad(hour12),
    "-I": () => String(hour12),
    p: () => (hour < 12 ? "AM" : "PM"),
    M: () => pad(minute),
    S: () => pad(second),
    L: () => pad(millisecond, 3),
    z: () => formatOffset(offset ?? 0, ""),
    ":z": () => formatOffset(offset ?? 0, ":"),
    "%": () => "%",
  };
  return pattern.replace(/%(-[a-zA-Z]|:z|[a-zA-Z%])?/g, (directive, name) => {
    const value = name === undefined ? undefined : values[name];
    if (!value) {
      throw new InvalidArguments(`unknown directive "${directive}" in the pattern; use ${DIRECTIVES}`);
    }
    return value();
  });
}

const MONTH_NAMES = new Map();
MONTHS.forEach((name, i) => {
  MONTH_NAMES.set(name.toLowerCase(), i + 1);
  MONTH_NAMES.set(name.slice(0, 3).toLowerCase(), i + 1);
});
MONTH_NAMES.set("sept", 9);

const WEEKDAY_NAMES = new Map();
WEEKDAYS.forEach((name, i) => {
  WEEKDAY_NAMES.set(name.toLowerCase(), i + 1);
  WEEKDAY_NAMES.set(name.slice(0, 3).toLowerCase(), i + 1);
});

const UNITS = { day: 1, days: 1, week: 7, weeks: 7, month: "m", months: "m", year: "y", years: "y" };

function shift(today, amount, unit) {
  const step = UNITS[unit];
  if (step === "m") return addMonths(today, amount);
  if (step === "y") return addMonths(today, amount * 12);
  return today + amount * step;
}

const monthOf = (word) => MONTH_NAMES.get(word.toLowerCase().replace(/\.$/, ""));

/**
 * Reads a date written by a person. `order` ("dmy", "mdy" or "ymd") settles numeric dates such
 * as 03/04/2025; without it, such a date is read only when one reading is impossible (a part
 * above 12). `today` is the day number relative words count from. Returns `{ day, how }`.
 */
export function parseHuman(input, order, today) {
  const text = input
    .trim()
    .toLowerCase()
    .replace(/\s+/g, " ")
    .replace(/^(on|the) /, "");
  const what = `"${input}"`;
  let m;

  // Relative expressions.
  if (text === "today" || text === "now") return { day: today, how: "relative to today" };
  if (text === "tomorrow") return { day: today + 1, how: "relative to today" };
  if (text === "yesterday") return { day: today - 1, how: "relative to today" };
  if ((m = /^in (\d+) (days?|weeks?|months?|years?)$/.exec(text))) {
    return { day: shift(today, Number(m[1]), m[2]), how: "relative to today" };
  }
  if ((m = /^(\d+) (days?|weeks?|months?|years?) (ago|from now|later)$/.exec(text))) {
    const sign = m[3] === "ago" ? -1 : 1;
    return { day: shift(today, sign * Number(m[1]), m[2]), how: "relative to today" };
  }
  if ((m = /^(next|last|this) ([a-z]+)$/.exec(text)) && WEEKDAY_NAMES.has(m[2])) {
    const target = WEEKDAY_NAMES.get(m[2]);
    const now = isoWeekday(today);
    let delta;
    if (m[1] === "next") delta = ((target - now + 6) % 7) + 1;
    else if (m[1] === "last") delta = -(((now - target + 6) % 7) + 1);
    else delta = target - now;
    return { day: today + delta, how: `${m[1]} ${WEEKDAYS[target - 1]} (weeks start on Monday)` };
  }

  // ISO forms: 2025-03-01, 2025-03-01T10:00:00Z (time ignored), 20250301, 2025/03/01.
  if ((m = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[t ].*)?$/.exec(text)) || (m = /^(\d{4})(\d{2})(\d{2})$/.exec(text))) {
    return { day: validDay(Number(m[1]), Number(m[2]), Number(m[3]), what), how: "year-month-day" };
  }

  // Numeric with the year last: 03/04/2025, 3.4.2025, 03-04-25.
  if ((m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})$/.exec(text))) {
    const a = Number(m[1]);
    const b = Number(m[2]);
    const year = m[3].length === 2 ? 2000 + Number(m[3]) : Number(m[3]);
    let dayFirst;
    if (order === "dmy") dayFirst = true;
    else if (order === "mdy") dayFirst = false;
    else if (a > 12 && b <= 12) dayFirst = true;
    else if (b > 12 && a <= 12) dayFirst = false;
    else if (a === b) dayFirst = true;
    else {
      throw new InvalidArguments(
        `${what} is ambiguous: day ${a} of month ${b}, or month ${a} day ${b}? Pass order "dmy" or "mdy"`,
      );
    }
    const [day, month] = dayFirst ? [a, b] : [b, a];
    const how = dayFirst ? "day/month/year" : "month/day/year";
    return { day: validDay(year, month, day, what), how };
  }

  // Words: "Monday, 3 March 2025", "3rd of March, 2025", "March 3, 2025", "Mar 3rd 2025".
  const words = text
    .replace(/,/g, " ")
    .split(" ")
    .filter((w) => w !== "" && w !== "of");
  if (words.length > 0 && WEEKDAY_NAMES.has(words[0].replace(/\.$/, ""))) words.shift();
  const ordinal = (w) => (/^\d{1,2}(st|nd|rd|th)?$/.test(w) ? Number.parseInt(w, 10) : null);
  if (words.length === 3 && /^\d{1,4}$/.test(words[2])) {
    const year = Number(words[2]);
    if (monthOf(words[1]) && ordinal(words[0]) !== null) {
      return { day: validDay(year, monthOf(words[1]), ordinal(words[0]), what), how: "day month year" };
    }
    if (monthOf(words[0]) && ordinal(words[1]) !== null) {
      return { day: validDay(year, monthOf(words[0]), ordinal(words[1]), what), how: "month day year" };
    }
  }
  if (words.length === 3 && /^\d{4}$/.test(words[0]) && monthOf(words[1]) && ordinal(words[2]) !== null) {
    return { day: validDay(Number(words[0]), monthOf(words[1]), ordinal(words[2]), what), how: "year month day" };
  }
  throw new ToolError(
    `cannot read a date from ${what}; write it like 2025-03-01, 1 March 2025, March 1, 2025, ` +
      `03/01/2025 (with order), today, tomorrow, in 3 days, 2 weeks ago or next friday`,
  );
}
