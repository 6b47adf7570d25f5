import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { mfaStatus, person, server, signIn } from "../../shared/test-utils";
import { renderAdmin } from "../test-utils";
import { UserPage } from "./UserPage";

const grace = person("user", { name: "Grace Hopper", email: "grace@example.com" });
const withFactors = mfaStatus({
  enabled: true,
  totp: { enabled: true, confirmed_at: "2026-02-01T10:00:00Z" },
  passkeys: [
    {
      id: "7d1f3c52-0000-4000-8000-000000000003",
      name: "Work laptop",
      created_at: "2026-02-02T10:00:00Z",
      last_used_at: null,
      backed_up: true,
      transports: ["internal"],
    },
  ],
  recovery_codes_left: 7,
});

function serve(status = withFactors) {
  const { last_login_at: _login, deleted_at: _deleted, ...read } = grace;
  const state = { current: status };
  server.on("GET /api/v1/users/:id", { body: read, headers: { ETag: '"3"' } });
  server.on("GET /api/v1/users", {
    body: { data: [grace], meta: { page: 1, page_size: 100, total_count: 1, total_pages: 1 } },
  });
  server.on("GET /api/v1/users/:id/sessions", { body: [] });
  server.on("GET /api/v1/users/:id/mfa", () => ({ body: state.current }));
  server.on("GET /api/v1/audit-events", { body: { items: [], next_cursor: null } });
  return state;
}

const card = () => screen.findByRole("region", { name: "Two-factor authentication" });

beforeEach(() => server.reset());

describe("a user's two-factor card", () => {
  it("shows an admin the factors and resets them after a confirmation", async () => {
    signIn(person("admin"));
    const state = serve();
    server.on("DELETE /api/v1/users/:id/mfa", () => {
      state.current = mfaStatus();
      return { status: 204 };
    });
    renderAdmin(<UserPage />, { route: `/users/${grace.id}`, path: "/users/:id", withNotifications: true });
    const section = await card();
    expect(await within(section).findByText("Work laptop")).toBeInTheDocument();
    expect(within(section).getByText("Synced")).toBeInTheDocument();
    expect(within(section).getByText("7")).toBeInTheDocument();
    expect(within(section).getByText(/^Set up /)).toBeInTheDocument();

    await userEvent.click(within(section).getByRole("button", { name: "Reset MFA" }));
    const dialog = await screen.findByRole("dialog");
    expect(dialog).toHaveTextContent("Remove every second factor of Grace Hopper");
    expect(server.callsTo("DELETE", `/api/v1/users/${grace.id}/mfa`)).toHaveLength(0);
    await userEvent.click(within(dialog).getByRole("button", { name: "Reset MFA" }));
    expect(await screen.findByText(/Every second factor of Grace Hopper is removed/)).toBeInTheDocument();
    expect(server.callsTo("DELETE", `/api/v1/users/${grace.id}/mfa`)).toHaveLength(1);
    await waitFor(() => expect(within(section).queryByText("Work laptop")).not.toBeInTheDocument());
    expect(within(section).queryByRole("button", { name: "Reset MFA" })).not.toBeInTheDocument();
  });

  it("shows a readonly admin the same facts and no Reset MFA", async () => {
    signIn(person("readonly"));
    serve();
    renderAdmin(<UserPage />, { route: `/users/${grace.id}`, path: "/users/:id" });
    const section = await card();
    expect(await within(section).findByText("Work laptop")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Reset MFA" })).not.toBeInTheDocument();
  });
});
