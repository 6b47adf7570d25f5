import { describe, expect, it } from "vitest";
import {
  EMPTY_FILTERS,
  filterProblems,
  hasFilters,
  localToRfc3339,
  readAuditFilters,
  toAuditQuery,
  writeAuditFilters,
} from "./auditFilters";

const paris = () => 60;
const newYork = () => -300;
const mumbai = () => 330;
const utc = () => 0;

describe("datetime-local → RFC 3339 with an offset", () => {
  it("keeps the wall-clock time and adds the reader's offset", () => {
    expect(localToRfc3339("2026-01-15T10:30", paris)).toBe("2026-01-15T10:30:00+01:00");
    expect(localToRfc3339("2026-01-15T10:30", newYork)).toBe("2026-01-15T10:30:00-05:00");
    expect(localToRfc3339("2026-01-15T10:30:45", mumbai)).toBe("2026-01-15T10:30:45+05:30");
    expect(localToRfc3339("2026-01-15T00:00", utc)).toBe("2026-01-15T00:00:00+00:00");
  });

  it("asks for the offset in force at that date (summer time differs from winter)", () => {
    const seen: Date[] = [];
    localToRfc3339("2026-07-01T12:00", (date) => {
      seen.push(date);
      return 120;
    });
    expect(seen[0]?.getMonth()).toBe(6);
    expect(seen[0]?.getHours()).toBe(12);
  });

  it("uses the browser's own offset by default", () => {
    const value = localToRfc3339("2026-03-01T08:15");
    expect(value).toMatch(/^2026-03-01T08:15:00[+-]\d\d:\d\d$/);
    expect(new Date(value!).getTime()).toBe(new Date(2026, 2, 1, 8, 15).getTime());
  });

  it("refuses what is not a real date and time", () => {
    expect(localToRfc3339("", utc)).toBeNull();
    expect(localToRfc3339("2026-01-15", utc)).toBeNull();
    expect(localToRfc3339("2026-02-30T10:00", utc)).toBeNull();
    expect(localToRfc3339("2026-01-15T24:00", utc)).toBeNull();
    expect(localToRfc3339("yesterday", utc)).toBeNull();
  });
});

describe("audit filters", () => {
  const filters = {
    action: " auth.login ",
    outcome: "failure" as const,
    actorId: "",
    targetId: "9b2e4c1a-7f3d-4e8b-a2c6-5d1f0e9a8b7c",
    requestId: "",
    since: "2026-01-15T10:30",
    until: "",
  };

  it("become the API's query: trimmed, times with an offset, empty ones left out", () => {
    expect(toAuditQuery(filters, paris)).toEqual({
      action: "auth.login",
      outcome: "failure",
      target_id: "9b2e4c1a-7f3d-4e8b-a2c6-5d1f0e9a8b7c",
      since: "2026-01-15T10:30:00+01:00",
    });
    expect(toAuditQuery(EMPTY_FILTERS)).toEqual({});
  });

  it("round-trip through the URL as typed (local times, not converted)", () => {
    const query = writeAuditFilters(filters);
    expect(query.get("since")).toBe("2026-01-15T10:30");
    expect(query.get("action")).toBe("auth.login");
    expect(query.has("actor")).toBe(false);
    expect(readAuditFilters(query)).toEqual({ ...filters, action: "auth.login" });
    expect(readAuditFilters(new URLSearchParams("outcome=maybe")).outcome).toBeNull();
  });

  it("name a malformed time so the form can show it", () => {
    expect(filterProblems({ ...EMPTY_FILTERS, since: "2026-13-01T00:00" })).toEqual({
      since: "Enter a date and a time",
    });
    expect(filterProblems(filters)).toEqual({});
  });

  it("know when any filter is set", () => {
    expect(hasFilters(EMPTY_FILTERS)).toBe(false);
    expect(hasFilters({ ...EMPTY_FILTERS, outcome: "denied" })).toBe(true);
  });
});
