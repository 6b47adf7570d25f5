import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { apiError, fakeFetch, person, renderWithProviders, server, signIn } from "../../shared/test-utils";
import { App } from "../App";
import { browser } from "./returnTo";

const jane = person("user", { name: "Jane Doe", email: "jane@example.com" });
const QUERY =
  "response_type=code&client_id=gh_crm&redirect_uri=https%3A%2F%2Fcrm.example.com%2Fcallback&scope=openid%20email%20offline_access&state=s1&code_challenge=abc&code_challenge_method=S256";
const request = {
  client: { client_id: "gh_crm", name: "Acme CRM", logo_url: null },
  scopes: ["openid", "email", "offline_access"],
  new_scopes: ["offline_access"],
  redirect_uri: "https://crm.example.com/callback",
};

let assign: MockInstance<(url: string) => void>;

beforeEach(() => {
  server.reset();
  assign = vi.spyOn(browser, "assign").mockImplementation(() => {});
});

afterEach(() => vi.restoreAllMocks());

describe("the consent page", () => {
  it("says who asks for what, in plain words, new scopes marked", async () => {
    signIn(jane);
    server.on("GET /api/v1/oauth2/consent", { body: request });
    renderWithProviders(<App />, { route: `/consent?${QUERY}` });
    expect(await screen.findByRole("heading", { name: "Allow Acme CRM?" })).toBeInTheDocument();
    expect(screen.getByText("at crm.example.com")).toBeInTheDocument();
    const asked = screen.getByRole("list", { name: "What the application asks for" });
    const items = within(asked).getAllByRole("listitem");
    expect(items.map((item) => item.textContent)).toEqual([
      "✓Sign you inAllowed before",
      "✓See your email addressAllowed before",
      "✓Keep access while you are awayNew",
    ]);
    // The authorize request went to the API as it came, byte for byte.
    const [read] = server.callsTo("GET", "/api/v1/oauth2/consent");
    expect(read!.query.toString()).toBe(new URLSearchParams(QUERY).toString());
    expect(read!.headers.get("Authorization")).toBe("Bearer test-token");
  });

  it("Allow records the consent and follows the answer", async () => {
    signIn(jane);
    server.on("GET /api/v1/oauth2/consent", { body: request });
    server.on("POST /api/v1/oauth2/consent", { body: { redirect_to: `/oauth2/authorize?${QUERY}` } });
    renderWithProviders(<App />, { route: `/consent?${QUERY}` });
    await userEvent.click(await screen.findByRole("button", { name: "Allow" }));
    await waitFor(() => expect(assign).toHaveBeenCalledWith(`/oauth2/authorize?${QUERY}`));
    const posted = server.callsTo("POST", "/api/v1/oauth2/consent");
    expect(posted).toHaveLength(1);
    expect(posted[0]!.body).toEqual({ query: QUERY });
    // Bearer on JSON: what makes the answer CSRF-proof.
    expect(posted[0]!.headers.get("Authorization")).toBe("Bearer test-token");
    expect(server.callsTo("POST", "/api/v1/oauth2/consent/deny")).toHaveLength(0);
  });

  it("Deny refuses and sends the browser back to the application", async () => {
    signIn(jane);
    const back = "https://crm.example.com/callback?error=access_denied&state=s1&iss=http%3A%2F%2Flocalhost";
    server.on("GET /api/v1/oauth2/consent", { body: request });
    server.on("POST /api/v1/oauth2/consent/deny", { body: { redirect_to: back } });
    renderWithProviders(<App />, { route: `/consent?${QUERY}` });
    await userEvent.click(await screen.findByRole("button", { name: "Deny" }));
    await waitFor(() => expect(assign).toHaveBeenCalledWith(back));
    expect(server.callsTo("POST", "/api/v1/oauth2/consent/deny")[0]!.body).toEqual({ query: QUERY });
    expect(server.callsTo("POST", "/api/v1/oauth2/consent")).toHaveLength(0);
  });

  it("shows an invalid request plainly, and offers no buttons", async () => {
    signIn(jane);
    server.on(
      "GET /api/v1/oauth2/consent",
      apiError(400, "OAUTH_REQUEST_INVALID", { error: "invalid_scope" }, "The client may not ask for roles"),
    );
    renderWithProviders(<App />, { route: `/consent?${QUERY}` });
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The application's sign-in request is not valid");
    expect(alert).toHaveTextContent("The client may not ask for roles");
    expect(alert).toHaveTextContent("Error code: invalid_scope");
    expect(screen.queryByRole("button", { name: "Allow" })).not.toBeInTheDocument();
  });

  it("keeps the page when the answer fails, saying so", async () => {
    signIn(jane);
    server.on("GET /api/v1/oauth2/consent", { body: request });
    server.on("POST /api/v1/oauth2/consent", apiError(400, "OAUTH_REQUEST_INVALID", { error: "invalid_request" }));
    renderWithProviders(<App />, { route: `/consent?${QUERY}` });
    await userEvent.click(await screen.findByRole("button", { name: "Allow" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Your answer was not recorded");
    expect(assign).not.toHaveBeenCalled();
    expect(screen.getByRole("button", { name: "Allow" })).toBeEnabled();
  });

  it("sends a signed-out visitor to the login, which leads back through the authorize endpoint", async () => {
    const calls = fakeFetch(() => undefined);
    renderWithProviders(<App />, { route: `/consent?${QUERY}` });
    expect(await screen.findByRole("heading", { name: "Log in" })).toBeInTheDocument();
    expect(screen.getByText("An application asks you to log in with your Gatehouse account.")).toBeInTheDocument();
    expect(calls).toHaveLength(0);
  });
});
