// The dates tools under plain node (`npm test`): the same dispatch the component runs, with
// the SDK's stand-in host. Run by `cargo xtask test` too.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { call } from "capsule-sdk/testing";

import { addMonths, businessDaysBetween, civil, dayNumber, isoWeek, iso } from "../calendar.js";
import { tools } from "../index.js";

const structured = async (name, args) => (await call(tools, name, args)).structured;

async function failure(name, args) {
  try {
    await call(tools, name, args);
  } catch (error) {
    return error.payload;
  }
  assert.fail(`${name} ${JSON.stringify(args)} did not fail`);
}

describe("calendar", () => {
  it("round-trips day numbers across eras and leap years", () => {
    for (const [y, m, d] of [[1970, 1, 1], [2000, 2, 29], [1, 1, 1], [9999, 12, 31], [1900, 3, 1], [2024, 12, 31]]) {
      assert.deepEqual(civil(dayNumber(y, m, d)), { year: y, month: m, day: d });
    }
    assert.equal(dayNumber(1970, 1, 1), 0);
    assert.equal(iso(dayNumber(2025, 3, 1) - 1), "2025-02-28");
  });

  it("clamps month arithmetic and counts ISO weeks", () => {
    assert.equal(iso(addMonths(dayNumber(2024, 1, 31), 1)), "2024-02-29");
    assert.equal(iso(addMonths(dayNumber(2024, 3, 31), -1)), "2024-02-29");
    assert.deepEqual(isoWeek(dayNumber(2021, 1, 3)), { year: 2020, week: 53 });
    assert.deepEqual(isoWeek(dayNumber(2025, 12, 29)), { year: 2026, week: 1 });
  });

  it("counts business days in both directions", () => {
    const monday = dayNumber(2025, 3, 3);
    assert.equal(businessDaysBetween(monday, monday + 7), 5);
    assert.equal(businessDaysBetween(monday + 7, monday), -5);
    assert.equal(businessDaysBetween(monday + 5, monday + 7), 0);
    assert.equal(businessDaysBetween(monday, monday + 7, new Set([monday + 2, monday + 5])), 4);
  });
});

describe("tools", () => {
  it("adds months, days and business days", async () => {
    assert.deepEqual(await structured("add", { date: "2025-01-31", months: 1 }), {
      date: "2025-02-28",
      weekday: "Friday",
    });
    assert.equal((await structured("add", { date: "2025-03-07", business_days: 1 })).date, "2025-03-10");
    assert.equal(
      (await structured("add", { date: "2025-03-07", business_days: 2, holidays: ["2025-03-10"] })).date,
      "2025-03-12",
    );
    assert.equal((await structured("add", { date: "2025-03-01", days: -1, years: 1 })).date, "2026-02-28");
    assert.equal((await structured("add", { date: "2025-03-01", weeks: 2 })).date, "2025-03-15");
  });

  it("reports an impossible date as a failure that says why", async () => {
    assert.deepEqual(await failure("add", { date: "2025-02-30", days: 1 }), {
      tag: "failed",
      val: "`date`: 2025-02-30 is not a date: February 2025 has 28 days",
    });
    assert.match((await failure("add", { date: "9999-12-31", days: 1 })).val, /outside the supported range/);
  });

  it("measures differences", async () => {
    assert.deepEqual(await structured("diff", { from: "2024-01-31", to: "2024-03-01" }), {
      days: 30,
      weeks: 4,
      business_days: 22,
      years: 0,
      months: 1,
      remaining_days: 1,
      text: "1 month and 1 day",
    });
    const back = await structured("diff", { from: "2025-03-10", to: "2023-03-01" });
    assert.equal(back.days, -740);
    assert.equal(back.text, "2 years and 9 days before");
    assert.equal(back.years, -2);
  });

  it("describes a date", async () => {
    const facts = await structured("info", { date: "2024-02-29" });
    assert.equal(facts.weekday, "Thursday");
    assert.equal(facts.day_of_year, 60);
    assert.equal(facts.leap_year, true);
    assert.equal(facts.iso_week, 9);
  });

  it("formats with styles and patterns", async () => {
    const text = async (date, format) => (await call(tools, "format", { date, format })).text;
    assert.equal(await text("2025-03-01", "long"), "Saturday, 1 March 2025");
    assert.equal(await text("2025-03-01", "us"), "03/01/2025");
    assert.equal(await text("2025-03-01T14:05:09-08:00", "rfc2822"), "Sat, 01 Mar 2025 14:05:09 -0800");
    assert.equal(await text("2025-03-01T14:05:09", "%I:%M %p, %j, Q%q, %%"), "02:05 PM, 060, Q1, %");
    assert.equal(await text("2021-01-03", "iso-week"), "2020-W53-7");
    assert.equal((await failure("format", { date: "2025-03-01", format: "%Q" })).tag, "invalid-arguments");
    assert.equal((await failure("format", { date: "2025-03-01", format: "fancy" })).tag, "invalid-arguments");
    assert.equal((await failure("format", { date: "2025-13-01", format: "iso" })).tag, "failed");
  });

  it("reads dates as people write them", async () => {
    const read = async (text, order) => (await structured("parse", order ? { text, order } : { text })).date;
    assert.equal(await read("March 1st, 2025"), "2025-03-01");
    assert.equal(await read("Sat, 1 Mar 2025"), "2025-03-01");
    assert.equal(await read("the 3rd of September 2025"), "2025-09-03");
    assert.equal(await read("20250301"), "2025-03-01");
    assert.equal(await read("25/12/2025"), "2025-12-25");
    assert.equal(await read("03/04/2025", "mdy"), "2025-03-04");
    assert.equal((await failure("parse", { text: "03/04/2025" })).tag, "invalid-arguments");
    assert.equal((await failure("parse", { text: "soon" })).tag, "failed");
    const today = (await structured("today", {})).date;
    assert.equal(await read("today"), today);
    const next = await structured("parse", { text: "next friday" });
    assert.equal(next.weekday, "Friday");
    assert.ok(next.date > today);
  });

  it("finds the nth weekday of a month", async () => {
    const nth = async (n) => (await structured("nth_weekday", { year: 2025, month: 11, weekday: "Thursday", n })).date;
    assert.equal(await nth(4), "2025-11-27");
    assert.equal(await nth(-1), "2025-11-27");
    assert.equal(await nth(1), "2025-11-06");
    assert.match((await failure("nth_weekday", { year: 2025, month: 2, weekday: "Friday", n: 5 })).val, /no 5th Friday/);
  });

  it("tells today's date at an offset", async () => {
    const utc = await structured("today", {});
    assert.match(utc.datetime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$/);
    const kolkata = await structured("today", { utc_offset: "+05:30" });
    assert.equal(kolkata.utc_offset, "+05:30");
    assert.equal((await failure("today", { utc_offset: "CET" })).tag, "failed");
  });
});
