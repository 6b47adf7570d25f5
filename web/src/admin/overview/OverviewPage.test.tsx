import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { apiError, person, server, signIn } from "../../shared/test-utils";
import { App } from "../App";
import { renderAdmin } from "../test-utils";
import { OverviewPage } from "./OverviewPage";
import { dayLabel, formatAge, hourLabel } from "./overviewFormat";
import type { Overview } from "./queries";

const HOUR = 3600_000;
const counts = { signups: 0, signups_failed: 0, logins: 0, logins_failed: 0 };

function series(first: string, step: number, size: number, busy: Record<number, Partial<typeof counts>>) {
  const buckets = Array.from({ length: size }, (_, n) => ({
    start: new Date(new Date(first).getTime() + n * step).toISOString().replace(".000Z", "Z"),
    ...counts,
    ...busy[n],
  }));
  const totals = { ...counts };
  for (const bucket of buckets)
    for (const key of Object.keys(counts) as (keyof typeof counts)[]) totals[key] += bucket[key];
  return { since: buckets[0]!.start, until: "2026-03-10T14:20:00Z", totals, buckets };
}

function overview(busy = true): Overview {
  return {
    generated_at: "2026-03-10T14:20:00Z",
    last_24_hours: series(
      "2026-03-09T15:00:00Z",
      HOUR,
      24,
      busy ? { 0: { logins: 3 }, 23: { signups: 2, signups_failed: 1, logins: 1204, logins_failed: 7 } } : {},
    ),
    last_30_days: series(
      "2026-02-09T00:00:00Z",
      24 * HOUR,
      30,
      busy
        ? {
            2: { signups: 5, logins: 40 },
            28: { logins: 3 },
            29: { signups: 2, signups_failed: 1, logins: 1204, logins_failed: 7 },
          }
        : {},
    ),
    sessions: { active: busy ? 212 : 0 },
    users: {
      total: busy ? 250 : 1,
      by_role: busy ? { admin: 2, user: 245, readonly: 3 } : { admin: 1, user: 0, readonly: 0 },
    },
    outbox: busy
      ? { pending_dispatch: 4, oldest_undispatched_seconds: 190, pending_publish: 6, oldest_unpublished_seconds: 42 }
      : {
          pending_dispatch: 0,
          oldest_undispatched_seconds: null,
          pending_publish: null,
          oldest_unpublished_seconds: null,
        },
    webhooks: busy
      ? { pending_deliveries: 9, oldest_pending_seconds: 7300 }
      : { pending_deliveries: 0, oldest_pending_seconds: null },
  };
}

const figure = (name: string) => screen.getByRole("figure", { name });
const card = (name: string) => screen.getByRole("group", { name });

beforeEach(() => {
  server.reset();
  // jsdom lays nothing out: the charts' containers get a size, as a browser gives them.
  vi.spyOn(HTMLElement.prototype, "getBoundingClientRect").mockReturnValue({
    width: 600,
    height: 200,
    top: 0,
    left: 0,
    right: 600,
    bottom: 200,
    x: 0,
    y: 0,
    toJSON: () => ({}),
  });
});

afterEach(() => vi.restoreAllMocks());

describe("the overview", () => {
  it("shows every figure with its number, and draws the activity", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/overview", { body: overview() });
    renderAdmin(<OverviewPage />, { route: "/" });

    expect(await screen.findByRole("heading", { name: "Overview" })).toBeInTheDocument();
    await screen.findByText(/hours and days in UTC/);
    expect(card("Sign-ups, 24 h")).toHaveTextContent("2");
    expect(card("Sign-ups, 24 h")).toHaveTextContent("1 refused");
    expect(card("Logins, 24 h")).toHaveTextContent("1,207");
    expect(card("Failed logins, 24 h")).toHaveTextContent("7");
    expect(card("Active sessions")).toHaveTextContent("212");

    const users = card("Users");
    expect(users).toHaveTextContent("250");
    expect(within(users).getByLabelText("admin: 2")).toBeInTheDocument();
    expect(within(users).getByLabelText("user: 245")).toBeInTheDocument();
    expect(within(users).getByLabelText("readonly: 3")).toBeInTheDocument();

    expect(card("Outbox")).toHaveTextContent("4");
    expect(card("Outbox")).toHaveTextContent("Oldest waiting 3 min");
    expect(card("Outbox")).toHaveTextContent("6 not yet published to the broker (oldest 42 s)");
    expect(card("Webhook deliveries")).toHaveTextContent("9");
    expect(card("Webhook deliveries")).toHaveTextContent("Oldest waiting 2 h");

    expect(figure("Logins per hour, last 24 hours")).toHaveTextContent("1,207 logins, 7 failed");
    expect(figure("Logins per day, last 30 days")).toHaveTextContent("1,247 logins, 7 failed");
    expect(figure("Sign-ups per hour, last 24 hours")).toHaveTextContent("2 sign-ups, 1 refused");
    expect(figure("Sign-ups per day, last 30 days")).toHaveTextContent("7 sign-ups, 1 refused");
    // A bar per non-empty bucket and series: the hourly logins have 2 busy hours, one
    // with failures too.
    const hourly = figure("Logins per hour, last 24 hours");
    await waitFor(() => expect(hourly.querySelectorAll(".recharts-bar-rectangle path")).toHaveLength(3));
    expect(within(hourly).getByText("Failed logins")).toBeInTheDocument(); // the legend
    const daily = figure("Logins per day, last 30 days");
    expect(daily.querySelectorAll(".recharts-bar-rectangle path")).toHaveLength(4);
    expect(server.screenCalls().map((call) => call.path)).toEqual(["/api/v1/overview"]);
  });

  it("says so where nothing happened, and draws no empty chart", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/overview", { body: overview(false) });
    renderAdmin(<OverviewPage />, { route: "/" });

    const hourly = await screen.findByRole("figure", { name: "Logins per hour, last 24 hours" });
    expect(hourly).toHaveTextContent("0 logins, 0 failed");
    expect(hourly).toHaveTextContent("No logins in this time.");
    expect(figure("Sign-ups per day, last 30 days")).toHaveTextContent("No sign-ups in this time.");
    expect(document.querySelectorAll(".recharts-bar-rectangle")).toHaveLength(0);
    expect(card("Outbox")).toHaveTextContent("Nothing waiting");
    expect(card("Outbox")).not.toHaveTextContent("broker");
    expect(card("Webhook deliveries")).toHaveTextContent("Nothing waiting");
    expect(card("Users")).toHaveTextContent("1");
  });

  it("shows a failure in words, and tries again on request", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/overview", apiError(500, "INTERNAL_ERROR", {}, "Internal server error"));
    renderAdmin(<OverviewPage />, { route: "/" });

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The overview could not be loaded");
    expect(screen.queryByRole("figure")).not.toBeInTheDocument();
    server.on("GET /api/v1/overview", { body: overview() });
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("figure", { name: "Logins per hour, last 24 hours" })).toBeInTheDocument();
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });

  it("is the first screen for an admin; a readonly admin starts at the users and has no Overview entry", async () => {
    server.on("GET /api/v1/overview", { body: overview() });
    server.on("GET /api/v1/users", {
      body: { data: [], meta: { page: 1, page_size: 20, total_count: 0, total_pages: 0 } },
    });
    signIn(person("admin"));
    const first = renderAdmin(<App />, { route: "/" });
    expect(await screen.findByRole("heading", { name: "Overview" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Overview" })).toHaveAttribute("aria-current", "page");
    expect(screen.getByRole("link", { name: "Users" })).not.toHaveAttribute("aria-current");
    first.unmount();

    server.reset();
    server.on("GET /api/v1/users", {
      body: { data: [], meta: { page: 1, page_size: 20, total_count: 0, total_pages: 0 } },
    });
    signIn(person("readonly"));
    renderAdmin(<App />, { route: "/" });
    expect(await screen.findByRole("heading", { name: "Users" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Overview" })).not.toBeInTheDocument();
    expect(server.callsTo("GET", "/api/v1/overview")).toHaveLength(0);
  });
});

describe("the overview's words", () => {
  it("labels buckets in UTC and ages as a person reads them", () => {
    expect(hourLabel("2026-03-09T15:00:00Z")).toBe("15:00");
    expect(dayLabel("2026-03-01T00:00:00Z")).toBe("1 Mar");
    expect([12.7, 190, 7300, 86400, 400000].map(formatAge)).toEqual(["12 s", "3 min", "2 h", "1 day", "4 days"]);
  });
});
