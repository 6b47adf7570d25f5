import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { apiError, mfaStatus, person, renderWithProviders, server, signIn } from "../../shared/test-utils";
import { SecurityPage } from "../pages/SecurityPage";

const jane = person("user", { name: "Jane Doe", email: "jane@example.com" });
const crm = {
  client_id: "gh_crm",
  name: "Acme CRM",
  logo_url: null,
  scopes: ["openid", "email"],
  granted_at: "2026-03-01T09:00:00Z",
  updated_at: "2026-03-01T09:00:00Z",
};
const wiki = { ...crm, client_id: "gh_wiki", name: "Team Wiki", scopes: ["offline_access", "profile", "openid"] };

beforeEach(() => {
  server.reset();
  signIn(jane);
  server.on("GET /api/v1/users/me/mfa", { body: mfaStatus() });
});

function render() {
  renderWithProviders(<SecurityPage />, { route: "/security", withNotifications: true, mantineEnv: "test" });
}

describe("connected apps", () => {
  it("lists the applications with what each may do", async () => {
    server.on("GET /api/v1/users/me/connected-apps", { body: [crm, wiki] });
    render();
    const card = await screen.findByRole("region", { name: "Connected apps" });
    const list = await within(card).findByRole("list", { name: "Connected apps" });
    const items = within(list).getAllByRole("listitem");
    expect(items).toHaveLength(2);
    expect(items[0]).toHaveTextContent("Acme CRM");
    expect(items[0]).toHaveTextContent("Sign you in");
    expect(items[0]).toHaveTextContent("See your email address");
    // Sign-in first, whatever order the API gave.
    expect(items[1]).toHaveTextContent("Sign you inSee your nameKeep access while you are away");
  });

  it("removes an application's access after a confirmation", async () => {
    const state = { apps: [crm, wiki] };
    server.on("GET /api/v1/users/me/connected-apps", () => ({ body: state.apps }));
    server.on("DELETE /api/v1/users/me/connected-apps/:client_id", (_, { client_id }) => {
      state.apps = state.apps.filter((app) => app.client_id !== client_id);
      return { status: 204 };
    });
    render();
    await userEvent.click(await screen.findByRole("button", { name: "Remove access of Acme CRM" }));
    const dialog = await screen.findByRole("dialog", { name: "Remove Acme CRM's access?" });
    expect(server.callsTo("DELETE", "/api/v1/users/me/connected-apps/gh_crm")).toHaveLength(0);
    await userEvent.click(within(dialog).getByRole("button", { name: "Remove access" }));
    await waitFor(() => expect(server.callsTo("DELETE", "/api/v1/users/me/connected-apps/gh_crm")).toHaveLength(1));
    expect(await screen.findByText("Access removed. The application has to ask again.")).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByText("Acme CRM")).not.toBeInTheDocument());
    expect(screen.getByText("Team Wiki")).toBeInTheDocument();
  });

  it("says when there is none", async () => {
    server.on("GET /api/v1/users/me/connected-apps", { body: [] });
    render();
    expect(await screen.findByText("No application has access to your account.")).toBeInTheDocument();
  });

  it("shows a failure in words", async () => {
    server.on("GET /api/v1/users/me/connected-apps", apiError(500, "INTERNAL_ERROR"));
    render();
    const card = await screen.findByRole("region", { name: "Connected apps" });
    expect(await within(card).findByRole("alert")).toHaveTextContent("Something went wrong on our side");
  });
});
