import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { apiError, person, server, signIn } from "../../shared/test-utils";
import { auditKeys } from "../audit/queries";
import { renderAdmin } from "../test-utils";
import { usersKeys } from "./queries";
import { UserPage } from "./UserPage";

const grace = person("user", {
  name: "Grace Hopper",
  email: "grace@example.com",
  last_login_at: "2026-01-16T09:00:00Z",
});
const session = {
  id: "5e0c7d2a-1b3f-4a6e-8c9d-0f1e2a3b4c5d",
  created_at: "2026-01-16T09:00:00Z",
  last_used_at: "2026-01-16T09:05:00Z",
  expires_at: "2026-01-30T09:05:00Z",
  user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
  ip: "203.0.113.7",
  current: false,
};

const noMfa = {
  enabled: false,
  required: false,
  totp: { enabled: false, confirmed_at: null },
  passkeys: [],
  recovery_codes_left: 0,
};

function serve(user: ReturnType<typeof person>) {
  const { last_login_at: _login, deleted_at: _deleted, ...read } = user;
  server.on("GET /api/v1/users/:id", { body: read, headers: { ETag: '"3"' } });
  server.on("GET /api/v1/users", {
    body: { data: [user], meta: { page: 1, page_size: 100, total_count: 1, total_pages: 1 } },
  });
  server.on("GET /api/v1/users/:id/sessions", { body: [session] });
  server.on("GET /api/v1/users/:id/mfa", { body: noMfa });
  server.on("GET /api/v1/audit-events", { body: { items: [], next_cursor: null } });
}

const WRITES = ["Edit name or email", "Change role", "Delete user", "End all sessions", "Export data"];

beforeEach(() => server.reset());

describe("a user's page", () => {
  it("shows an admin the details and every control", async () => {
    signIn(person("admin"));
    serve(grace);
    renderAdmin(<UserPage />, { route: `/users/${grace.id}`, path: "/users/:id" });
    expect(await screen.findByRole("heading", { name: "Grace Hopper" })).toBeInTheDocument();
    expect(screen.getByText("grace@example.com")).toBeInTheDocument();
    expect(await screen.findByRole("button", { name: /^End the session on Chrome on Linux/ })).toBeInTheDocument();
    for (const name of WRITES) expect(screen.getByRole("button", { name })).toBeInTheDocument();
    expect(await screen.findByText("Nothing has been recorded about this user.")).toBeInTheDocument();
    expect(server.callsTo("GET", "/api/v1/audit-events")[0]!.query.get("target_id")).toBe(grace.id);
  });

  it("shows a readonly admin the same data and no control that writes", async () => {
    signIn(person("readonly"));
    serve(grace);
    renderAdmin(<UserPage />, { route: `/users/${grace.id}`, path: "/users/:id" });
    await screen.findByRole("heading", { name: "Grace Hopper" });
    expect(await screen.findByRole("table", { name: "Sessions" })).toHaveTextContent("203.0.113.7");
    for (const name of WRITES) expect(screen.queryByRole("button", { name })).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /^End the session/ })).not.toBeInTheDocument();
    expect(screen.queryByRole("textbox", { name: "New role" })).not.toBeInTheDocument();
    expect(screen.getByText("Your role cannot see the audit trail.")).toBeInTheDocument();
    // Nothing is asked that the API would refuse.
    expect(server.callsTo("GET", "/api/v1/audit-events")).toHaveLength(0);
  });

  it("changes the role after a confirmation, sending the version it read", async () => {
    signIn(person("admin"));
    serve(grace);
    server.on("PATCH /api/v1/users/:id", (call) => ({
      body: { ...grace, role: (call.body as { role: string }).role },
      headers: { ETag: '"4"' },
    }));
    renderAdmin(<UserPage />, { route: `/users/${grace.id}`, path: "/users/:id" });
    await screen.findByRole("heading", { name: "Grace Hopper" });
    expect(screen.getByRole("button", { name: "Change role" })).toBeDisabled();
    await userEvent.click(screen.getByRole("textbox", { name: "New role" }));
    await userEvent.click(screen.getByRole("option", { name: "readonly" }));
    await userEvent.click(screen.getByRole("button", { name: "Change role" }));
    expect(server.callsTo("PATCH", `/api/v1/users/${grace.id}`)).toHaveLength(0);
    const dialog = await screen.findByRole("dialog");
    expect(dialog).toHaveTextContent("Make Grace Hopper readonly?");
    await userEvent.click(within(dialog).getByRole("button", { name: "Change role" }));
    await waitFor(() => expect(server.callsTo("PATCH", `/api/v1/users/${grace.id}`)).toHaveLength(1));
    const patch = server.callsTo("PATCH", `/api/v1/users/${grace.id}`)[0]!;
    expect(patch.body).toEqual({ role: "readonly" });
    expect(patch.headers.get("If-Match")).toBe('"3"');
  });

  it("keeps your own role out of reach, and says plainly why the last admin cannot be deleted", async () => {
    const me = person("admin", { name: "Only Admin" });
    signIn(me);
    serve(me);
    server.on(
      "DELETE /api/v1/users/:id",
      apiError(409, "LAST_ADMIN", {}, "The last active admin cannot be demoted or deleted"),
    );
    renderAdmin(<UserPage />, { route: `/users/${me.id}`, path: "/users/:id" });
    await screen.findByRole("heading", { name: "Only Admin" });
    expect(screen.getByText("You cannot change your own role; another admin can.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Change role" })).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Delete user" }));
    const dialog = await screen.findByRole("dialog");
    expect(dialog).toHaveTextContent("This is your own account");
    await userEvent.click(within(dialog).getByRole("button", { name: "Delete user" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(/^This is the last admin/);
  });

  it("after a delete, every cached users list and the audit trail are marked stale", async () => {
    signIn(person("admin"));
    serve(grace);
    server.on("DELETE /api/v1/users/:id", { status: 204 });
    const { queryClient } = renderAdmin(<UserPage />, { route: `/users/${grace.id}`, path: "/users/:id" });
    await screen.findByRole("heading", { name: "Grace Hopper" });
    // What other screens hold in the cache, not on screen now.
    const otherPage = usersKeys.list({ page: 2, page_size: 20, sort_by: "created_at", order: "desc" });
    const trail = auditKeys.trail({ action: "user." });
    queryClient.setQueryData(otherPage, {
      data: [grace],
      meta: { page: 2, page_size: 20, total_count: 21, total_pages: 2 },
    });
    queryClient.setQueryData(trail, { pages: [], pageParams: [] });
    await userEvent.click(screen.getByRole("button", { name: "Delete user" }));
    await userEvent.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Delete user" }));
    expect(await screen.findByText("Elsewhere")).toBeInTheDocument();
    expect(server.callsTo("DELETE", `/api/v1/users/${grace.id}`)).toHaveLength(1);
    expect(queryClient.getQueryState(otherPage)?.isInvalidated).toBe(true);
    expect(queryClient.getQueryState(trail)?.isInvalidated).toBe(true);
    expect(queryClient.getQueryState(usersKeys.detail(grace.id))).toBeUndefined();
  });

  it("says so when the user does not exist", async () => {
    signIn(person("admin"));
    server.on("GET /api/v1/users/:id", apiError(404, "USER_NOT_FOUND"));
    renderAdmin(<UserPage />, { route: "/users/0d9f0000-0000-4000-8000-000000000000", path: "/users/:id" });
    expect(await screen.findByText("This user does not exist, or has been deleted.")).toBeInTheDocument();
  });
});
