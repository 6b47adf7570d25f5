import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { person, server, signIn } from "../../shared/test-utils";
import { renderAdmin } from "../test-utils";
import { AuditPage } from "./AuditPage";

const event = (id: number, action: string) => ({
  id,
  seq: id,
  occurred_at: "2026-01-15T10:30:00.123456Z",
  action,
  outcome: "failure",
  reason: "invalid_password",
  actor_id: null,
  actor_role: null,
  target_type: "user",
  target_id: "9b2e4c1a-7f3d-4e8b-a2c6-5d1f0e9a8b7c",
  request_id: "req",
  details: {},
  pii: { ip: "203.0.113.7", identifier: "jane@example.com" },
});

beforeEach(() => {
  server.reset();
  server.on("GET /api/v1/audit-events", (call) =>
    call.query.get("cursor") === "older"
      ? { body: { items: [event(1, "auth.login")], next_cursor: null } }
      : { body: { items: [event(3, "auth.login"), event(2, "auth.login")], next_cursor: "older" } },
  );
});

describe("the audit trail", () => {
  it("filters by what the form holds, times with the reader's offset", async () => {
    signIn(person("admin"));
    renderAdmin(<AuditPage />, { route: "/audit" });
    await screen.findAllByText("auth.login");
    await userEvent.type(screen.getByLabelText(/^Action/), "auth.login");
    await userEvent.type(screen.getByLabelText(/^From/), "2026-01-15T10:30");
    await userEvent.click(screen.getByRole("button", { name: "Apply filters" }));
    await waitFor(() =>
      expect(server.callsTo("GET", "/api/v1/audit-events").at(-1)!.query.get("action")).toBe("auth.login"),
    );
    const since = server.callsTo("GET", "/api/v1/audit-events").at(-1)!.query.get("since")!;
    expect(since).toMatch(/^2026-01-15T10:30:00[+-]\d\d:\d\d$/);
    expect(new Date(since).getTime()).toBe(new Date(2026, 0, 15, 10, 30).getTime());
  });

  it("loads older events with the cursor, until there are none", async () => {
    signIn(person("admin"));
    renderAdmin(<AuditPage />, { route: "/audit?action=auth.login" });
    expect(await screen.findByText("2 events shown")).toBeInTheDocument();
    expect(screen.getAllByText("as jane@example.com")).toHaveLength(2);
    await userEvent.click(screen.getByRole("button", { name: "Load older" }));
    expect(await screen.findByText("3 events shown")).toBeInTheDocument();
    expect(screen.getByText("No older events")).toBeInTheDocument();
    const older = server.callsTo("GET", "/api/v1/audit-events").at(-1)!.query;
    expect(older.get("cursor")).toBe("older");
    expect(older.get("action")).toBe("auth.login");
  });

  it("tells a readonly admin their role cannot see it, without asking", async () => {
    signIn(person("readonly"));
    renderAdmin(<AuditPage />, { route: "/audit" });
    expect(await screen.findByText(/Your role cannot see the audit trail/)).toBeInTheDocument();
    expect(server.screenCalls()).toHaveLength(0);
  });
});
